"""Design batches: K points of one tinySNN-rule model trained together on shared input,
in Numba threads on the CPU or in the fused Triton kernels on CUDA."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from tinysnn_dse.core import gpu_kernels, kernels, prune
from tinysnn_dse.core import layout as L
from tinysnn_dse.core.backend import choose
from tinysnn_dse.core.encoding import (
    SpikeTrains,
    draw_key,
    hashed_uniforms,
    kernel_threads,
    learning_trains,
    rate_scale,
)
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.events import count_learning
from tinysnn_dse.core.marshal import (
    boosted_draws,
    by_input,
    formats,
    neuron_consts,
    pack_keys,
    settle_draws,
    tinysnn_rates,
)
from tinysnn_dse.core.neuron import Net, QuantMeter, consts, grid, new_meter, roundings, start_acc
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.prune import fan_in, pruned_events
from tinysnn_dse.core.quant import Quantizers

Tensor = torch.Tensor
K = kernels


class DesignBatch:
    """K design points of one tinySNN-rule model, trained together on shared input.

    Each training sample is encoded once and presented to every point in one parallel
    compiled call (:func:`kernels.learn_tinysnn_multi`); each point keeps its own weights,
    thresholds and fixed-point formats (any mix of precisions and roundings). The points
    share their random numbers (common random numbers): spikes, tie-breaks, Vmem and
    Vth rounding uniforms and W's stochastic rounding, all from the counter-based hash
    keyed by draws from the run's generator. A point that draws too few spikes is
    re-presented at a boosted rate, as in :func:`train_sample`; the boosted spikes are
    drawn once for all points that need them.

    With deterministic rounding and no re-presentation each point computes what
    :func:`train_sample` computes from the same spikes and tie-breaks (to float32
    rounding; tests/core/test_design_batch.py). The numbers differ from K separate runs
    with the same seed only in which random numbers each point sees: separate runs draw
    their own, a batch shares them.

    On the CPU the points run in Numba threads; on CUDA (``device``, default the
    networks' device) in the fused Triton kernels of :mod:`gpu_kernels`, one program per
    point. Random numbers come from the generator passed to :meth:`train_sample`, on
    its own device: with a CPU generator a CUDA batch sees the numbers a CPU batch sees
    and ends where it ends, to float32 rounding (tests/test_cuda.py).
    """

    def __init__(
        self,
        nets: list[Net],
        cfg: ModelConfig,
        qzs: list[Quantizers],
        device: torch.device | str | None = None,
        cfgs: list[ModelConfig] | None = None,
    ) -> None:
        if not nets or len(nets) != len(qzs):
            raise ValueError("a design batch needs one quantizer per network, at least one")
        cfgs = cfgs or [cfg] * len(nets)
        if len(cfgs) != len(nets):
            raise ValueError("a design batch needs one model configuration per network")
        check_batch_configs(cfg, cfgs)
        self.device = torch.device(device) if device is not None else nets[0].w.device
        # numba on the CPU, triton on CUDA (a ConfigError naming why where neither runs)
        self.backend = choose("batch", cfg, qzs[0], self.device)
        self.cfg, self.qzs, self.k = cfg, qzs, len(nets)
        c = consts(cfg)
        n, f32 = cfg.n_exc, np.float32
        dev = self.device
        self.w = torch.stack([net.w.to(dev, torch.float32) for net in nets]).contiguous()
        self.fq = np.stack([formats(q) for q in qzs])
        self.nc = np.stack(
            [neuron_consts(q_cfg, q, True) for q_cfg, q in zip(cfgs, qzs, strict=True)]
        )
        self.acc = np.stack(
            [start_acc(net, cfg, q).numpy() for net, q in zip(nets, qzs, strict=True)]
        )
        # the state every presentation starts from: initial potentials on each Vmem grid
        # (round-to-nearest: a fixed value needs no random draw), thresholds as given
        self.st0 = np.zeros((self.k, L.S_LEN, n), dtype=f32)
        self.st0[:, L.S_V] = np.stack([grid(c.exc.v_rest, q.vmem, n) for q in qzs])
        self.st0[:, L.S_INHV] = np.stack([grid(c.inh.v_rest, q.vmem, n) for q in qzs])
        self.theta = torch.stack([net.theta.to(torch.float32).cpu() for net in nets])
        # each point's retained synapses once STDP pruning has begun (docs/model.md,
        # "Pruning"), else None: every point of a batch prunes on one schedule
        self.keep: Tensor | None = None
        if any(net.keep is not None for net in nets):
            full = torch.ones(cfg.n_in, n, dtype=torch.bool)
            self.keep = torch.stack([(net.keep if net.keep is not None else full).to(dev)
                                     for net in nets])  # fmt: skip
        self.neuron_draws = any(q.stochastic and q.vmem is not None for q in qzs)
        self.vth_draws = any(q.stochastic and q.vth is not None for q in qzs)
        self.weight_draws = any(q.stochastic and q.weight is not None for q in qzs)
        self.lr = np.stack([tinysnn_rates(q) for q in cfgs])  # [K, LR_LEN]
        self.norm = np.array([q.norm for q in cfgs], f32)
        self.window = c.window
        self.theta_decay = c.theta_decay
        self.n_cols = np.zeros(self.k, dtype=np.int64)
        # what each point's quantizers did, accumulated by the kernel over every
        # presentation (one array, not one per presentation: that cost the batch ~3 %)
        self._m = np.stack([new_meter() for _ in qzs])
        self._presented = np.zeros(self.k, dtype=np.int64)
        self.gpu = None
        if dev.type == "cuda":
            self.gpu = gpu_kernels.LearnLaunch(
                dev, self.fq, self.nc, self.lr, self.norm, self.window, self.theta_decay,
                cfg.n_in, n,
            )  # fmt: skip
            self.theta = self.theta.to(dev)
            self.acc_t = torch.as_tensor(self.acc, device=dev)
            self.n_cols_t = torch.zeros(self.k, dtype=torch.int64, device=dev)
            self.v0_t = torch.as_tensor(self.st0[:, L.S_V], device=dev)
            self.iv0_t = torch.as_tensor(self.st0[:, L.S_INHV], device=dev)

    def _key(self, g: torch.Generator, needed: bool) -> int:
        """A hash key, drawn only when some point needs one, so that deterministic
        batches consume the generator as single runs do."""
        return draw_key(g) if needed else 0

    def nets(self) -> list[Net]:
        """The current network of every point (copies)."""
        acc = self.acc_t.cpu().numpy() if self.gpu is not None else self.acc
        out = []
        for i, q in enumerate(self.qzs):
            a = torch.from_numpy(acc[i].copy()) if q.vth is not None else None
            keep = None if self.keep is None else self.keep[i].clone()
            out.append(Net(w=self.w[i].clone(), theta=self.theta[i].clone(), vth_acc=a,
                           keep=keep))  # fmt: skip
        return out

    def prune(self, fraction: float, generator: torch.Generator, stats: list[OpCounts]) -> None:
        """One STDP pruning round at every point (as :func:`runner._prune_round` does for
        one): each neuron's weakest retained synapses go until ``fraction`` of its inputs
        are pruned, then the normalisation (and the rounding) of a training sample gives
        each neuron its total drive back."""
        removed = prune.n_removed(self.cfg.n_in, fraction)
        keeps = [prune.prune_to(self.w[i], None if self.keep is None else self.keep[i],
                                removed) for i in range(self.k)]  # fmt: skip
        self.keep = torch.stack(keeps)
        self.w.mul_(self.keep.to(self.w.dtype))
        self._normalize(generator)
        n_pruned = int((~self.keep[0]).sum())
        for st in stats:
            st.normalisations += 1
            st.pruned_normalised += n_pruned

    def _normalize(self, g: torch.Generator) -> None:
        """The per-sample normalisation (and rounding onto each point's weight grid)."""
        key = self._key(g, self.weight_draws)
        if self.gpu is not None:
            self.gpu.normalize(self.w, key)
            return
        with kernel_threads():
            kernels.normalize_multi(
                self.w.numpy(), self.norm, np.float32(self.cfg.learning.w_max),
                np.ascontiguousarray(self.fq[:, L.F_W]), key,
            )  # fmt: skip

    def columns_updated(self) -> np.ndarray:
        """Columns updated by the rule so far, per point [K] (for the event counts)."""
        if self.gpu is not None:
            return self.n_cols_t.cpu().numpy().copy()
        return self.n_cols.copy()

    @property
    def meters(self) -> list[QuantMeter]:
        """Each point's :class:`QuantMeter` over the presentations so far."""
        out = []
        for i, qz in enumerate(self.qzs):
            qm = QuantMeter()
            if self._presented[i]:
                steps = self.cfg.encoding.steps
                qm.add_kernel(self._m[i], roundings(self.cfg, qz, int(self._presented[i]), steps))
            out.append(qm)
        return out

    def train_sample(
        self, pixels: Tensor, generator: torch.Generator, stats: list[OpCounts] | None = None
    ) -> Tensor:
        """Learn from ``pixels`` [n_in] in [0, 1] at every point; returns each point's spike
        counts [K, N] of its last presentation. ``stats`` (one per point) accumulate the
        events, as :func:`train_sample` counts them."""
        g = generator
        if self._one_call(pixels, g):
            final = self._boosted(pixels, g, stats)
        else:
            final = self._presentations(pixels, g, stats)
        self._normalize(g)
        if stats is not None:
            n_pruned = 0 if self.keep is None else int((~self.keep[0]).sum())
            for st in stats:
                st.samples += 1
                st.normalisations += 1
                st.pruned_normalised += n_pruned
        return torch.from_numpy(final)

    def _presentations(
        self, pixels: Tensor, g: torch.Generator, stats: list[OpCounts] | None
    ) -> np.ndarray:
        """:meth:`train_sample`'s presentations one by one (on CUDA, or once pruning has
        begun); returns each point's counts of its last presentation [K, N]."""
        cfg, enc = self.cfg, self.cfg.encoding
        k, n, t_steps = self.k, cfg.n_exc, enc.steps
        active = np.ones(k, dtype=np.bool_)
        final = np.zeros((k, n), dtype=np.float32)
        gdev = g.device
        for boost in range(int(enc.max_boosts) + 1):
            trains = learning_trains(
                pixels.to(gdev).unsqueeze(0), t_steps, rate_scale(cfg, boost), g
            )
            tkey = draw_key(g) if cfg.exc.one_spike else 0  # tie-breaks, hashed in the kernel
            u = None
            if self.neuron_draws:
                u = hashed_uniforms(g, (t_steps, 2, n), gdev)
            keys = pack_keys(tkey, self._key(g, self.vth_draws), self._key(g, self.weight_draws))
            cols_before = self.columns_updated() if stats is not None else None
            counts, n_pre = self._present(active, trains, keys, u)
            final[active] = counts[active]
            if stats is not None and cols_before is not None:
                cols_now = self.columns_updated()
                idx = np.flatnonzero(active)  # counted once for all points, on the host
                n_post = counts[idx].sum(axis=1, dtype=np.float64).astype(np.int64).tolist()
                if self.keep is None:
                    count_learning([stats[i] for i in idx], n_pre, n_post, cfg)
                for row, i in enumerate(idx):
                    keep = None if self.keep is None else self.keep[i]
                    fan = fan_in(keep, cfg.n_in)
                    if keep is not None:  # each point its own pruned synapses
                        n_pruned = pruned_events(trains, keep)
                        count_learning([stats[i]], n_pre, [n_post[row]], cfg, n_pruned, fan)
                    stats[i].synapse_updates += int(cols_now[i] - cols_before[i]) * fan
            if enc.min_spikes <= 0:
                break
            active &= counts.sum(axis=1) < enc.min_spikes
            if not active.any():
                break
        return final

    def _one_call(self, pixels: Tensor, g: torch.Generator) -> bool:
        """Whether a sample's presentations run in one compiled call (:meth:`_boosted`):
        on the CPU, nothing pruned; else the loop of :meth:`train_sample` presents them
        one by one (:meth:`_present`)."""
        cpu = pixels.device.type == "cpu" and g.device.type == "cpu"
        return self.gpu is None and self.keep is None and cpu

    def _boosted(
        self, pixels: Tensor, g: torch.Generator, stats: list[OpCounts] | None
    ) -> np.ndarray:
        """:meth:`train_sample`'s presentations in one compiled call
        (:func:`kernels.learn_batch_boosted`): the keys of every possible presentation are
        drawn ahead in the loop's order, then the generator is set to where the
        presentations that ran leave it, so the numbers are the loop's
        (tests/core/test_same_numbers.py). Returns each point's counts of its last
        presentation [K, N]."""
        cfg, enc = self.cfg, self.cfg.encoding
        k, n, t_steps = self.k, cfg.n_exc, enc.steps
        levels = int(enc.max_boosts) + 1
        # the keys a presentation draws, in the loop's order: trains, tie-breaks, Vmem
        # uniforms, threshold rounding, weight rounding (those that some point needs)
        cols = [K.BK_TRAINS]
        cols += [K.BK_TIE] if cfg.exc.one_spike else []
        cols += [K.BK_U] if self.neuron_draws else []
        cols += [K.BK_VTH] if self.vth_draws else []
        cols += [K.BK_W] if self.weight_draws else []
        sample, state = boosted_draws(pixels, cfg, g, cols)
        st = self.st0.copy()
        st[:, L.S_THETA] = self.theta.numpy()
        log = K.BatchLog(
            np.zeros((k, n), dtype=np.float32), np.zeros(levels, dtype=np.int64),
            np.zeros((levels, k), dtype=np.float32), np.zeros((levels, k), dtype=np.int64),
            np.zeros((levels, k), dtype=np.bool_),
        )  # fmt: skip
        with kernel_threads():
            pts = K.Point(st, self.acc, self.nc, self.fq, pack_keys(), self._m)
            used = kernels.learn_batch_boosted(
                self.w.numpy(), sample, t_steps, self.window, pts, self.lr, self.theta_decay,
                self.n_cols, float(enc.min_spikes), log,
            )  # fmt: skip
        settle_draws(g, state, used, len(cols))
        self.theta.copy_(torch.from_numpy(st[:, L.S_THETA]))
        self._presented += log.active[:used].sum(axis=0)
        if stats is not None:
            for b in range(used):
                idx = np.flatnonzero(log.active[b])
                n_post = log.post[b, idx].astype(np.int64).tolist()
                count_learning([stats[i] for i in idx], int(log.pre[b]), n_post, cfg)
                for i in idx:
                    stats[i].synapse_updates += int(log.cols[b, i]) * cfg.n_in
        return log.final

    def _present(
        self, active: np.ndarray, trains: SpikeTrains, keys: np.ndarray, u: Tensor | None
    ) -> tuple[np.ndarray, int]:
        """One presentation of ``trains`` to the ``active`` points; returns their spike
        counts [K, N] (zeros for inactive points) and the number of input spikes."""
        k, n = self.k, self.cfg.n_exc
        t_steps = trains.shape[1]
        if self.gpu is not None:
            dev = self.device
            tiebreak = torch.zeros(t_steps, n)
            if self.cfg.exc.one_spike:  # the numbers the CPU kernel hashes, as a block
                tiebreak = torch.from_numpy(kernels.hash_block(int(keys[L.K_TIE]), t_steps, n))
            counts_t = torch.zeros(k, n, device=dev)
            self.gpu(
                self.w, torch.as_tensor(active, dtype=torch.int32, device=dev), trains,
                tiebreak.to(dev), None if u is None else u.to(dev), keys,
                self.v0_t.clone(), self.theta, self.acc_t, counts_t, self.iv0_t.clone(),
                self.n_cols_t, None if self.keep is None else self.keep.to(torch.float32),
            )  # fmt: skip
            return counts_t.cpu().numpy(), int(trains.spikes.sum())
        spk = by_input(trains)
        un = np.zeros((1, 2, n), np.float32) if u is None else u.numpy()
        st = self.st0.copy()
        st[:, L.S_THETA] = self.theta.numpy()
        keeps = (np.zeros((0, 0, 0), np.float32) if self.keep is None
                 else self.keep.to(torch.float32).contiguous().numpy())  # fmt: skip
        with kernel_threads():
            pts = K.Point(st, self.acc, self.nc, self.fq, keys, self._m)
            kernels.learn_tinysnn_multi(
                self.w.numpy(), active, spk, t_steps, self.window, pts, self.lr, un,
                self.theta_decay, self.n_cols, keeps,
            )  # fmt: skip
        self.theta[torch.from_numpy(active)] = torch.from_numpy(st[active, L.S_THETA])
        self._presented += active
        return st[:, L.S_COUNTS], int(spk[0][-1])


BATCH_PARAMS = ("theta_plus_mv", "eta", "s_th", "w_lateral", "w_inh_exc", "norm_per_input")


def check_batch_configs(cfg: ModelConfig, cfgs: list[ModelConfig]) -> None:
    """Raise ValueError unless every one of ``cfgs`` equals ``cfg`` outside
    :data:`BATCH_PARAMS` (what a design batch may vary per point)."""
    r = dataclasses.replace

    def shape(c: ModelConfig) -> ModelConfig:
        return r(
            c,
            exc=r(c.exc, theta_plus_mv=0.0),
            inh=r(c.inh, w_lateral=0.0, w_inh_exc=0.0),
            learning=r(c.learning, eta=0.0, s_th=1.0, norm_per_input=0.0),
        )

    if any(shape(c) != shape(cfg) for c in cfgs):
        raise ValueError(
            "the points of a design batch may differ only in " + ", ".join(BATCH_PARAMS)
        )
