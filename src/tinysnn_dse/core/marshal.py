"""Kernel marshalling: the state, constants, formats and keys of a design point packed in
the layouts the compiled kernels read (:mod:`layout`: ``S_*``, ``C_*``, ``F_*``, ``K_*``,
``LR_*``, ``SR_*``), the
random numbers drawn in the reference path's order, and the calls of the Numba kernels
for one point's learning presentations, its normalisation and batched inference."""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch

from tinysnn_dse.core import int_kernels, integer, kernels
from tinysnn_dse.core import layout as L
from tinysnn_dse.core.encoding import SpikeTrains, draw_key, kernel_threads, rate_scale
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.events import count_learning
from tinysnn_dse.core.modes import RoundMode, Rule, Topology
from tinysnn_dse.core.neuron import (
    Net,
    QuantMeter,
    consts,
    inference_thresholds,
    new_meter,
    roundings,
    start_acc,
    uniform_rows,
    vmem_floor,
)
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.prune import fan_in, pruned_per_input
from tinysnn_dse.core.quant import Quantizers, qparams, quantize
from tinysnn_dse.core.rules import normalize, trace_table

Tensor = torch.Tensor
K = kernels


def neuron_consts(cfg: ModelConfig, qz: Quantizers, learn: bool) -> np.ndarray:
    """The neuron and inhibition constants of ``cfg`` as the kernels read them
    (float32 [C_LEN], rows ``kernels.C_*``); at inference thresholds are frozen
    (theta_plus 0) and every neuron may fire (no one-spike rule)."""
    c = consts(cfg)
    inhibitory = cfg.topology == Topology.INHIBITORY
    nc = np.zeros(L.C_LEN, dtype=np.float32)
    nc[[L.C_V_REST, L.C_V_RESET, L.C_DECAY, L.C_REF, L.C_KEEP]] = c.exc
    nc[[L.C_I_REST, L.C_I_RESET, L.C_I_DECAY, L.C_I_REF]] = c.inh[:4]  # keep 0: to its value
    nc[L.C_V_TH] = cfg.exc.v_th_mv
    nc[L.C_THETA_PLUS] = cfg.exc.theta_plus_mv if learn else 0.0
    nc[L.C_W_LAT] = cfg.inh.w_inh_exc if inhibitory else cfg.inh.w_lateral
    nc[L.C_W_EXC_INH] = cfg.inh.w_exc_inh
    nc[L.C_INH_THR] = float(quantize(torch.tensor(cfg.inh.v_th_mv), qz.vth, RoundMode.NEAREST))
    nc[L.C_ONE_SPIKE] = 1.0 if learn and cfg.exc.one_spike else 0.0
    nc[L.C_INHIB] = 1.0 if inhibitory else 0.0
    nc[L.C_FLOOR] = vmem_floor(cfg, qz)
    return nc


def formats(qz: Quantizers) -> np.ndarray:
    """A point's four formats as the kernels read them: float64 [F_LEN, QP_LEN], rows
    weights, Vmem, Vth and the threshold accumulator (``kernels.F_*``)."""
    fq = np.zeros((L.F_LEN, L.QP_LEN), dtype=np.float64)
    fq[L.F_W] = qparams(qz.weight, qz.rounding)
    fq[L.F_V] = qparams(qz.vmem, qz.rounding)
    fq[L.F_T] = qparams(qz.vth, qz.rounding)
    fq[L.F_A] = qparams(qz.vth_acc, qz.rounding)
    return fq


def tinysnn_rates(cfg: ModelConfig) -> np.ndarray:
    """The tinySNN rule's learning parameters as the kernels read them (float32 [LR_LEN])."""
    lp = cfg.learning
    lr = np.zeros(L.LR_LEN, dtype=np.float32)
    lr[L.LR_ETA], lr[L.LR_S_TH], lr[L.LR_W_MAX] = lp.eta, lp.s_th, lp.w_max
    lr[L.LR_DT_TAU] = cfg.encoding.dt_ms / lp.tau_trace_ms
    return lr


def stepwise_rates(cfg: ModelConfig) -> np.ndarray:
    """The per-step rules' learning parameters as the kernels read them (float32 [SR_LEN])."""
    lp = cfg.learning
    lr = np.zeros(L.SR_LEN, dtype=np.float32)
    lr[L.SR_ETA_PRE], lr[L.SR_ETA_POST], lr[L.SR_ETA_SL] = lp.eta_pre, lp.eta_post, lp.eta_sl
    lr[L.SR_X_TAR], lr[L.SR_W_MAX] = lp.x_tar, lp.w_max
    return lr


def pack_keys(tie: int = 0, vth: int = 0, w: int = 0) -> np.ndarray:
    keys = np.zeros(L.K_LEN, dtype=np.int64)
    keys[L.K_TIE], keys[L.K_VTH], keys[L.K_W] = tie, vth, w
    return keys


class FastState(NamedTuple):
    """The learning state of one point as the kernels read it: ``st`` [S_LEN, N] float32
    (``theta_t`` and ``counts_t`` are torch views of two rows), ``acc`` [N] float64."""

    st: np.ndarray
    acc: np.ndarray
    theta_t: Tensor
    counts_t: Tensor
    nc: np.ndarray
    fq: np.ndarray
    keys: np.ndarray

    def point(self, meter: np.ndarray) -> kernels.Point:
        """The state as the kernels' :class:`kernels.Point`, counting into ``meter``."""
        return K.Point(self.st, self.acc, self.nc, self.fq, self.keys, meter)


def start_state(net: Net, cfg: ModelConfig, qz: Quantizers, g: torch.Generator) -> np.ndarray:
    """A learning presentation's initial state [S_LEN, N] (float32): potentials at rest on
    the Vmem grid (stochastic rounding draws from ``g``, as the reference does), the
    thresholds ``net.theta``, the rest zero."""
    c = consts(cfg)
    n = cfg.n_exc
    st = np.zeros((L.S_LEN, n), dtype=np.float32)
    st[L.S_THETA] = net.theta.detach().cpu().numpy()
    st[L.S_V] = qz.v(torch.full((1, n), c.exc.v_rest), g)[0].numpy()
    inh_t = torch.full((1, n), c.inh.v_rest)
    if cfg.topology == Topology.INHIBITORY:  # drawn only where the reference draws it
        inh_t = qz.v(inh_t, g)
    st[L.S_INHV] = inh_t[0].numpy()
    return st


def fast_state(net: Net, cfg: ModelConfig, qz: Quantizers, g: torch.Generator) -> FastState:
    """Initial state and constants, drawing random numbers as the reference does."""
    st = start_state(net, cfg, qz, g)
    tkey = draw_key(g) if cfg.exc.one_spike else 0  # the kernels hash the reference's tie-breaks
    vkey = draw_key(g) if qz.vth is not None and qz.stochastic else 0
    acc = start_acc(net, cfg, qz).numpy()
    theta_t = torch.from_numpy(st[L.S_THETA])
    counts_t = torch.from_numpy(st[L.S_COUNTS])
    nc, fq = _learning_consts(cfg, qz)
    return FastState(st, acc, theta_t, counts_t, nc.copy(), fq.copy(), pack_keys(tkey, vkey))


@functools.lru_cache(maxsize=64)
def _learning_consts(cfg: ModelConfig, qz: Quantizers) -> tuple[np.ndarray, np.ndarray]:
    """A point's learning constants and formats, computed once per (cfg, qz): building
    them took a tenth of a late single-point presentation (measured)."""
    return neuron_consts(cfg, qz, True), formats(qz)


def fast_net(w: Tensor, fs: FastState, qz: Quantizers, keep: Tensor | None = None) -> Net:
    acc = torch.from_numpy(fs.acc) if qz.vth is not None else None
    return Net(w=w, theta=fs.theta_t.clone(), vth_acc=acc, keep=keep)


def keep_mask(net: Net) -> np.ndarray:
    """``net.keep`` as the learning kernels read it: float32 [n_in, N] of 0 and 1, or
    [0, 0] (nothing pruned)."""
    if net.keep is None:
        return np.zeros((0, 0), dtype=np.float32)
    return net.keep.to(torch.float32).contiguous().numpy()


def by_input(spikes: Tensor | SpikeTrains) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's spikes, input by input, as :func:`kernels.tinysnn_steps` reads them:
    (iptr [M+1], times, rows [M]) with active input ``m`` = row ``rows[m]`` of W
    (ascending) spiking at steps ``times[iptr[m] .. iptr[m+1]-1]`` (ascending)."""
    if isinstance(spikes, SpikeTrains):
        rows, trains = spikes.pix, spikes.spikes
    else:  # dense [1, T, n_in]: its active inputs as compact trains
        sp = spikes[0].T
        rows = sp.any(dim=1).nonzero().flatten()
        trains = sp[rows].contiguous()
    iptr, times = kernels.spikes_by_input(trains.numpy())
    return iptr, times, rows.numpy().astype(np.int64)


def csr_one(spikes: Tensor | SpikeTrains) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows (``ptr`` [T+1], ``idx``) of the active inputs of each step of one image's
    ``spikes`` ([1, T, n] dense, or compact trains), inputs ascending within a step."""
    if isinstance(spikes, SpikeTrains):  # compiled from the compact trains, never dense
        return kernels.steps_of(*by_input(spikes), spikes.shape[1])
    sp = spikes[0]
    ptr = np.zeros(sp.shape[0] + 1, dtype=np.int64)
    np.cumsum(sp.sum(dim=1).numpy(), out=ptr[1:])
    return ptr, sp.nonzero()[:, 1].numpy().astype(np.int64)


def learn_presentation(
    net: Net,
    spikes: Tensor | SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    stats: OpCounts | None = None,
    meter: QuantMeter | None = None,
    inplace: bool = False,
) -> tuple[Net, Tensor]:
    """tinySNN-rule learning of one sample in compiled code (any rounding); ``inplace``:
    update ``net.w`` (contiguous float32, owned by the caller) instead of a copy.

    FP32 or deterministic weight rounding: one call of :func:`kernels.learn_tinysnn`.
    Stochastic weight rounding: per update window, :func:`kernels.tinysnn_steps`, then
    W's uniforms drawn here, then :func:`kernels.tinysnn_rule`; then the presentation's
    threshold decay. Either way the random numbers are the reference's, in its order.
    The input current sums only the active rows of W (the reference uses a window
    product) and the rule runs in the kernel, so results agree to float32 rounding, not
    bitwise (see tests/core/test_fast_path.py).
    """
    c = consts(cfg)
    fs = fast_state(net, cfg, qz, g)
    spk = by_input(spikes)
    t_steps, n, n_in = spikes.shape[1], cfg.n_exc, cfg.n_in
    rows = uniform_rows(cfg, qz)
    w = net.w if inplace else net.w.clone().contiguous()
    wn = w.numpy()
    f32 = np.float32
    lr = tinysnn_rates(cfg)
    m = new_meter()
    keep = keep_mask(net)
    if qz.weight is None or not qz.stochastic:
        u = np.zeros((t_steps if rows else 1, 2, n), dtype=np.float32)
        if rows:  # one block equals the reference's per-step draws, in its order
            u[:, rows] = torch.rand(t_steps, len(rows), n, generator=g).numpy()
        n_cols = kernels.learn_tinysnn(wn, spk, t_steps, c.window, fs.point(m), lr, u,
                                       c.theta_decay, keep)  # fmt: skip
    else:
        n_cols = 0
        counts = fs.st[L.S_COUNTS]
        at_update = counts.copy()
        last = np.full(n_in, -1, dtype=np.int64)
        pos = spk[0][:-1].copy()
        u_win = np.zeros((c.window if rows else 1, 2, n), dtype=np.float32)
        wq = fs.fq[L.F_W]
        no_codes = kernels.no_codes(n)  # every window summed in float32
        for t0 in range(0, t_steps, c.window):
            t1 = min(t0 + c.window, t_steps)
            uw_steps = u_win
            if rows:  # the window's Vmem uniforms, then (at its end) W's
                uw_steps = u_win[: t1 - t0]
                uw_steps[:, rows] = torch.rand(t1 - t0, len(rows), n, generator=g).numpy()
            kernels.tinysnn_steps(wn, spk, pos, t0, t1, last, fs.point(m), uw_steps, no_codes)
            s_max = float(counts.max())
            if s_max > 0:
                cols = np.nonzero(counts - at_update > 0)[0]
                if cols.size:
                    uw = torch.rand(n_in, cols.size, generator=g).numpy()
                    kernels.tinysnn_rule(wn, t1 - 1, last, cols, f32(s_max), lr, wq, uw, 0,
                                         keep)  # fmt: skip
                    n_cols += int(cols.size)
            at_update[:] = counts
        kernels.theta_decay(fs.point(m), c.theta_decay, t_steps)
    if stats is not None:
        stats.synapse_updates += int(n_cols) * fan_in(net.keep, n_in)
    if meter is not None:
        meter.add_kernel(m, roundings(cfg, qz, 1, t_steps))
    return fast_net(w, fs, qz, net.keep), fs.counts_t.clone().unsqueeze(0)


def boosts_in_one_call(net: Net, pixels: Tensor, cfg: ModelConfig, qz: Quantizers,
                       g: torch.Generator) -> bool:  # fmt: skip
    """Whether :func:`learn_sample` runs this sample: a point on the CPU whose learning
    draws nothing but keys (FP32 or deterministic rounding), unpruned, with a compiled
    rule (tinySNN, pair, SL-STDP)."""
    draws = qz.stochastic and (qz.weight, qz.vmem, qz.vth) != (None, None, None)
    compiled = cfg.rule == Rule.TINYSNN or cfg.rule in kernels.STEP_RULES
    return (compiled and not draws and net.keep is None
            and pixels.device.type == "cpu" and g.device.type == "cpu")  # fmt: skip


def boosted_draws(
    pixels: Tensor, cfg: ModelConfig, g: torch.Generator, cols: list[int]
) -> tuple[kernels.Sample, Tensor]:
    """What the boosted kernels draw from for a training sample ``pixels`` [n_in]: its
    non-zero inputs and their spike probabilities at every possible presentation
    (computed as :func:`encoding.skip_trains` computes them), and the keys a presentation
    draws from ``g``, the columns ``cols`` (``kernels.BK_*``, in the order the loop draws
    them), for every possible presentation. Returns (the :class:`kernels.Sample`, ``g``'s
    state before these draws, for :func:`settle_draws`)."""
    levels = int(cfg.encoding.max_boosts) + 1
    x = pixels.unsqueeze(0)
    img, pix = (x > 0).nonzero(as_tuple=True)
    vals = x[img, pix]
    p = np.stack([(vals * rate_scale(cfg, b)).numpy().astype(np.float64) for b in range(levels)])
    state = g.get_state()
    # one draw of all the keys equals the loop's single draws, in order (the digests of
    # tests/core/test_same_numbers.py)
    drawn = torch.randint(0, 2**62, (levels * len(cols),), generator=g, device=g.device)
    keys = np.zeros((levels, 5), dtype=np.int64)
    keys[:, cols] = drawn.numpy().reshape(levels, len(cols))
    return kernels.Sample(pix.numpy().astype(np.int64), p, keys), state


def settle_draws(g: torch.Generator, state: Tensor, presentations: int, per: int) -> None:
    """Set ``g`` to where the loop's ``presentations`` presentations of ``per`` keys each
    leave it (:func:`boosted_draws` drew keys for every possible one)."""
    g.set_state(state)
    torch.randint(0, 2**62, (presentations * per,), generator=g, device=g.device)


def learn_sample(
    net: Net,
    pixels: Tensor,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    stats: OpCounts | None = None,
    meter: QuantMeter | None = None,
) -> tuple[Net, Tensor]:
    """The presentations of one training sample (``pixels`` [n_in] in [0, 1]), boosted
    re-presentations included, in one compiled call (:func:`kernels.learn_boosted`);
    returns (net before the sample's normalisation, counts [N] of the last presentation).

    The same numbers as :func:`learn_presentation` called by the loop of
    :func:`sim.train_sample` (tests/core/test_same_numbers.py), where
    :func:`boosts_in_one_call` holds: each presentation's keys (its trains', its
    tie-breaks') are drawn ahead for every possible presentation, in the loop's order, and
    the generator is then set to where the presentations that ran leave it. A late-pass
    image takes about five presentations; the loop's Python between them cost more than
    the compiled presentations (measured: docs/benchmarks.md)."""
    enc = cfg.encoding
    c = consts(cfg)
    levels = int(enc.max_boosts) + 1
    cols = [K.BK_TRAINS] + ([K.BK_TIE] if cfg.exc.one_spike else [])
    sample, state = boosted_draws(pixels, cfg, g, cols)
    st = start_state(net, cfg, qz, g)  # (deterministic rounding: no draw)
    nc, fq = _learning_consts(cfg, qz)
    acc = start_acc(net, cfg, qz).numpy()
    m = new_meter()
    pt = K.Point(st, acc, nc.copy(), fq.copy(), pack_keys(), m)
    w = net.w.clone().contiguous()
    log = np.zeros((levels, 3), dtype=np.int64)
    lr = tinysnn_rates(cfg) if cfg.rule == Rule.TINYSNN else stepwise_rates(cfg)
    traces = trace_table(enc.steps, enc.dt_ms, cfg.learning.tau_trace_ms).numpy()
    rule = (cfg.rule.code, lr, traces, np.float32(c.trace_decay))
    used = kernels.learn_boosted(w.numpy(), sample, enc.steps, c.window, pt, rule,
                                 c.theta_decay, float(enc.min_spikes), log)  # fmt: skip
    settle_draws(g, state, used, len(cols))
    if stats is not None:
        for n_pre, n_post, n_cols in log[:used].tolist():
            stats.synapse_updates += n_cols * cfg.n_in
            count_learning([stats], n_pre, [n_post], cfg, 0, cfg.n_in)
    if meter is not None:
        meter.add_kernel(m, roundings(cfg, qz, used, enc.steps))
    vth_acc = torch.from_numpy(acc) if qz.vth is not None else None
    theta = torch.from_numpy(st[L.S_THETA].copy())
    return Net(w=w, theta=theta, vth_acc=vth_acc), torch.from_numpy(st[L.S_COUNTS].copy())


def learn_stepwise_presentation(
    net: Net,
    spikes: Tensor | SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
    inplace: bool = False,
) -> tuple[Net, Tensor]:
    """``pair`` / ``sl-stdp`` learning of one sample in one compiled call (``inplace`` as
    :func:`learn_presentation`).

    Same random numbers as the reference (stochastic Vmem rounding: its uniforms as one
    block); the input current sums only the active rows of W (the reference uses a dense
    product), so results agree to float32 rounding, not bitwise.
    """
    lp = cfg.learning
    c = consts(cfg)
    fs = fast_state(net, cfg, qz, g)
    traces = trace_table(spikes.shape[1], cfg.encoding.dt_ms, lp.tau_trace_ms)
    w = net.w if inplace else net.w.clone().contiguous()
    lr = stepwise_rates(cfg)
    rule = cfg.rule.code  # kernels.RULE_PAIR or RULE_SL_STDP
    rows = uniform_rows(cfg, qz)
    t_steps, n = spikes.shape[1], cfg.n_exc
    u = np.zeros((t_steps if rows else 1, 2, n), dtype=np.float32)
    if rows:  # one block equals the reference's per-step draws, in its order
        u[:, rows] = torch.rand(t_steps, len(rows), n, generator=g).numpy()
    m = new_meter()
    kernels.learn_stepwise(w.numpy(), csr_one(spikes), traces.numpy(), rule, lr,
                           fs.point(m), u, np.float32(c.trace_decay), c.theta_decay,
                           keep_mask(net))  # fmt: skip
    if meter is not None:
        meter.add_kernel(m, roundings(cfg, qz, 1, t_steps))
    return fast_net(w, fs, qz, net.keep), fs.counts_t.clone().unsqueeze(0)


def normalize_q(
    w: Tensor, cfg: ModelConfig, qz: Quantizers, g: torch.Generator, fast: bool
) -> Tensor:
    """Per-sample normalisation of ``w`` [n_in, N], then (ITQ) its rounding onto the weight
    grid: compiled (:func:`kernels.normalize_multi`, as design batches run it) when
    ``fast`` and the weights are quantized, else in torch (FP32: torch's threaded column
    sums beat the kernel, which parallelizes over design points only: 2-thread learning
    1,143 -> 1,240-1,277 images/s, measured). Stochastic rounding takes
    :func:`kernels.hash_uniform` (key, 2**31 - 1, i N + j) under one key drawn from
    ``g``, on both paths."""
    stochastic = qz.weight is not None and qz.stochastic
    key = draw_key(g) if stochastic else 0
    if fast and qz.weight is not None and kernels.HAVE_NUMBA and w.device.type == "cpu":
        out = w.detach().clone().contiguous()
        wq = qparams(qz.weight, qz.rounding)[None]
        norm = np.array([cfg.norm], dtype=np.float32)
        with kernel_threads():
            kernels.normalize_multi(
                out.numpy()[None], norm, np.float32(cfg.learning.w_max), wq, key
            )
        return out
    out = normalize(w, cfg.norm, cfg.learning.w_max)
    if qz.weight is None:
        return out
    u = None
    if stochastic:
        n_in, n = out.shape
        u = torch.from_numpy(kernels.hash_row(key, 2147483647, n_in * n)).view(n_in, n)
    return quantize(out, qz.weight, qz.rounding, u=u)


def infer_fast(
    net: Net,
    trains: SpikeTrains,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
) -> Tensor:
    return _infer_kernel(net, trains, None, cfg, qz, g, meter)[0]


def infer_drawn(
    net: Net,
    pixels: Tensor,
    scale: float,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
) -> tuple[Tensor, tuple[int, int]]:
    """:func:`skip_trains` and :func:`infer_fast` in one kernel call: the same trains (the
    same key drawn from ``g``), summed into the input current as they are drawn, never
    stored. Returns the counts and (the number of input spikes, the input spikes onto
    pruned synapses)."""
    return _infer_kernel(net, None, (pixels, scale), cfg, qz, g, meter)


def _infer_kernel(
    net: Net,
    trains: SpikeTrains | None,
    draw: tuple[Tensor, float] | None,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    meter: QuantMeter | None = None,
) -> tuple[Tensor, tuple[int, int]]:
    if trains is not None:
        b, t_steps, _ = trains.shape
        img, pix, spikes = trains.img, trains.pix.numpy(), trains.spikes.numpy()
        p, key = np.zeros(0), 0
    else:
        assert draw is not None
        pixels, scale = draw
        b, t_steps = pixels.shape[0], cfg.encoding.steps
        img, pix_t = (pixels > 0).nonzero(as_tuple=True)
        pix = pix_t.numpy()
        p = (pixels[img, pix_t] * scale).numpy().astype(np.float64)
        key = draw_key(g)  # as skip_trains draws it
        spikes = np.zeros((0, 0), dtype=np.bool_)
    n = cfg.n_exc
    rows = uniform_rows(cfg, qz)
    ukey = draw_key(g) if rows else 0  # Vmem rounding uniforms, as infer_reference
    img_ptr = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(torch.bincount(img, minlength=b).numpy(), out=img_ptr[1:])
    inhibitory = cfg.topology == Topology.INHIBITORY
    n_in = np.zeros(b, dtype=np.int64)
    meters = np.repeat(new_meter(meter is not None and meter.track)[None], b, axis=0)
    pruned_ev = np.zeros(b, dtype=np.int64)
    counts = np.zeros((b, n), dtype=np.float32)
    none = np.zeros((0, 0), dtype=np.float32)  # v0, iv0: drawn by _infer_float if need be
    images = K.Images(none, none, counts, n_in, meters, pruned_per_input(net.keep), pruned_ev)
    ks = integer.kernel_setup(net.w, net.theta, cfg, qz)
    if ks is not None:  # the integer datapath: every potential starts at rest, no draw
        with kernel_threads():
            int_kernels.infer_batch_int(
                ks.w, (img_ptr, pix, spikes, p), np.array([key, ukey]), t_steps, ks.thr, images,
                ks.consts, torch.get_num_threads(), ks.narrow,
            )  # fmt: skip
    else:
        _infer_float(net, (img_ptr, pix, spikes, p), (key, ukey), t_steps, cfg, qz, g, images)
    if meter is not None:
        layers = 2 if inhibitory else 1
        meter.add(
            b * t_steps * n * layers if qz.vmem is not None else 0,
            meters[:, L.M_SAT].sum(), meters[:, L.M_LO].min(), meters[:, L.M_HI].max(),
        )  # fmt: skip
    return torch.from_numpy(counts), (int(n_in.sum()), int(pruned_ev.sum()))


def _infer_float(
    net: Net,
    trains: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    keys: tuple[int, int],
    t_steps: int,
    cfg: ModelConfig,
    qz: Quantizers,
    g: torch.Generator,
    out: kernels.Images,
) -> None:
    """:func:`kernels.infer_batch` into ``out`` (its ``v0`` and ``iv0`` drawn here)."""
    b, n = out.counts.shape
    theta = inference_thresholds(net.theta, cfg, qz)
    c = consts(cfg)
    # initial potentials, drawn as the reference draws them
    v0 = qz.v(torch.full((b, n), c.exc.v_rest), g).contiguous().numpy()
    iv0_t = torch.full((b, n), c.inh.v_rest)
    iv0 = (qz.v(iv0_t, g) if cfg.topology == Topology.INHIBITORY else iv0_t).contiguous().numpy()
    with kernel_threads():
        kernels.infer_batch(
            net.w.contiguous().numpy(), trains, np.array(keys), t_steps,
            theta.contiguous().numpy(), out._replace(v0=v0, iv0=iv0),
            neuron_consts(cfg, qz, False), formats(qz), torch.get_num_threads(),
        )  # fmt: skip
