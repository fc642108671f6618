"""Fused CUDA kernels (Triton) for tinySNN-rule learning: the GPU counterpart of
:func:`kernels.learn_tinysnn_multi` and :func:`kernels.normalize_multi`.

On CUDA the reference path issues ~25 tiny kernels per time step, 6,000 per image, and
their launch latency, not arithmetic, sets the speed (about 10 images/s on an H100).
Here one launch simulates a whole presentation: one Triton program per design point
holds its neurons' state in registers for all steps, sums the active rows of W for the
input current, applies the one-spike rule, lateral (or inhibitory-layer) inhibition,
adaptive thresholds and Vmem/Vth rounding, and at every update point applies the
tinySNN rule to the rows of inputs that have spiked. A second launch normalises and
re-quantizes W. K design points run as K programs, on K multiprocessors at once.

The arithmetic follows the Numba kernels step for step (fixed-point rounding in float64
as there, stochastic weight rounding by the same counter-based hash), so a batch on CUDA
ends where the same batch ends on the CPU, to float32 rounding (the GPU compiler fuses
multiply-adds). Triton ships with PyTorch's CUDA builds; without it (the CPU build) this
module reports ``HAVE_TRITON = False`` and CUDA learning runs the reference path.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import torch

from tinysnn_dse.core import layout as L
from tinysnn_dse.core import step

try:
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except ImportError:  # the CPU build of torch ships no Triton
    HAVE_TRITON = False

BLOCK_ROWS = 32  # rows of W per tile in the normalisation kernel
BLOCK_COLS = 128  # columns per program there


def available(device: torch.device) -> bool:
    """Whether the fused kernels can run on ``device``."""
    return HAVE_TRITON and device.type == "cuda"


if HAVE_TRITON:
    # The layout (core/layout.py) as the constants the kernels below index with: a jitted
    # function reads a global only as a tl.constexpr, so each is mirrored under its own
    # name, its value taken from the layout (tests/core/test_layout.py holds the names
    # equal and the kernels free of numeric offsets).
    QP_LEN = tl.constexpr(L.QP_LEN)
    QP_ON = tl.constexpr(L.QP_ON)
    QP_INV = tl.constexpr(L.QP_INV)
    QP_EPS = tl.constexpr(L.QP_EPS)
    QP_LO = tl.constexpr(L.QP_LO)
    QP_HI = tl.constexpr(L.QP_HI)
    QP_STOCH = tl.constexpr(L.QP_STOCH)
    QP_CUT = tl.constexpr(L.QP_CUT)
    QP_HI32 = tl.constexpr(L.QP_HI32)
    F_LEN = tl.constexpr(L.F_LEN)
    F_W = tl.constexpr(L.F_W)
    F_V = tl.constexpr(L.F_V)
    F_T = tl.constexpr(L.F_T)
    F_A = tl.constexpr(L.F_A)
    C_LEN = tl.constexpr(L.C_LEN)
    C_V_REST = tl.constexpr(L.C_V_REST)
    C_V_RESET = tl.constexpr(L.C_V_RESET)
    C_DECAY = tl.constexpr(L.C_DECAY)
    C_REF = tl.constexpr(L.C_REF)
    C_I_REST = tl.constexpr(L.C_I_REST)
    C_I_RESET = tl.constexpr(L.C_I_RESET)
    C_I_DECAY = tl.constexpr(L.C_I_DECAY)
    C_I_REF = tl.constexpr(L.C_I_REF)
    C_KEEP = tl.constexpr(L.C_KEEP)
    C_FLOOR = tl.constexpr(L.C_FLOOR)
    C_V_TH = tl.constexpr(L.C_V_TH)
    C_THETA_PLUS = tl.constexpr(L.C_THETA_PLUS)
    C_W_LAT = tl.constexpr(L.C_W_LAT)
    C_W_EXC_INH = tl.constexpr(L.C_W_EXC_INH)
    C_INH_THR = tl.constexpr(L.C_INH_THR)
    LR_LEN = tl.constexpr(L.LR_LEN)
    LR_ETA = tl.constexpr(L.LR_ETA)
    LR_S_TH = tl.constexpr(L.LR_S_TH)

    # the neuron step's leak and reset (core/step.py), jitted as written there; Triton's
    # interpreter wants triton.language among a jitted function's globals, so the function
    # is rebuilt over globals that hold it (the same code object, the same source)
    def _statement(f: Any) -> Any:
        return triton.jit(
            types.FunctionType(f.__code__, {"tl": tl, "__name__": __name__}, f.__name__)
        )

    _leak = _statement(step.leak)
    _reset_to = _statement(step.reset_to)

    @triton.jit
    def _hash_uniform(key, a, b):  # type: ignore[no-untyped-def]
        """:func:`kernels.hash_uniform` (SplitMix64 finaliser, top 24 bits), elementwise;
        ``key`` and ``a`` uint64, ``b`` int32."""
        z = (a * 2654435761 + b.to(tl.uint64) + 1) * 0x9E3779B97F4A7C15
        z = key + z
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
        z = z ^ (z >> 31)
        return (z >> 40).to(tl.float32) * 5.9604645e-08

    @triton.jit
    def _qload(q_ptr):  # type: ignore[no-untyped-def]
        """A format's float64 parameters (layout.QP_*) in the order :func:`_fxp` takes
        them, loaded once (all but QP_NARROW, a CPU matter: here every rounding runs in
        float64)."""
        return (
            tl.load(q_ptr + QP_ON), tl.load(q_ptr + QP_INV), tl.load(q_ptr + QP_EPS),
            tl.load(q_ptr + QP_LO), tl.load(q_ptr + QP_HI), tl.load(q_ptr + QP_STOCH),
            tl.load(q_ptr + QP_CUT), tl.load(q_ptr + QP_HI32),
        )  # fmt: skip

    @triton.jit
    def _fxp(x, on, inv, eps, lo, hi, stoch, cut, hi32, u):  # type: ignore[no-untyped-def]
        """:func:`kernels.fxp`, elementwise: the exact grid value (float64) of ``x``."""
        y = x.to(tl.float64) * inv
        fl = tl.floor(y)
        u64 = u.to(tl.float64)
        rem = tl.where(fl == -1.0, y > u64 - 1.0, y - fl > u64)
        up = tl.where(stoch != 0, rem, y >= fl + cut)
        code = tl.where(up, fl + 1.0, fl)
        return tl.minimum(tl.maximum(code, lo), hi) * eps

    @triton.jit
    def _quant(x, on, inv, eps, lo, hi, stoch, cut, hi32, u):  # type: ignore[no-untyped-def]
        """:func:`kernels.fxp32` for float32 ``x``: the grid value as the float32 state
        holds it (never above the ceiling); identity when the format is off (FP32)."""
        y = _fxp(x, on, inv, eps, lo, hi, stoch, cut, hi32, u)
        y = tl.minimum(y.to(tl.float32), hi32.to(tl.float32))
        return tl.where(on != 0, y, x)

    @triton.jit
    def _theta_set(  # type: ignore[no-untyped-def]
        x, theta, acc, v_th, key64, t, offs,
        t_on, t_inv, t_eps, t_lo, t_hi, t_st, t_cut, t_hi32,
        a_on, a_inv, a_eps, a_lo, a_hi, a_st, a_cut, a_hi32,
    ):  # fmt: skip
        """:func:`kernels.theta_set` for every lane: thresholds learn ``x`` (float64, mV);
        returns (theta, acc). ``t_*``/``a_*``: the Vth and accumulator formats."""
        tu = tl.cast(t, tl.uint64)
        u1 = _hash_uniform(key64, tu, 2 * offs)
        u2 = _hash_uniform(key64, tu, 2 * offs + 1)
        acc_q = _fxp(x, a_on, a_inv, a_eps, a_lo, a_hi, a_st, a_cut, a_hi32, u1)
        vth = _fxp(acc_q, t_on, t_inv, t_eps, t_lo, t_hi, t_st, t_cut, t_hi32, u2)
        vth = tl.minimum(vth.to(tl.float32), t_hi32.to(tl.float32))
        th_q = (vth.to(tl.float64) - v_th).to(tl.float32)
        th_f = (x - v_th).to(tl.float32)
        return tl.where(t_on != 0, th_q, th_f), tl.where(t_on != 0, acc_q, acc)

    @triton.jit(do_not_specialize=["n_pix", "t_steps", "key_w", "key_th"])
    def _learn_kernel(  # type: ignore[no-untyped-def]
        w_ptr, active_ptr, csr_ptr, idx_ptr, pix_ptr, xw_ptr, n_pix, tb_ptr, u_ptr,
        v_ptr, theta_ptr, acc_ptr, counts_ptr, inh_v_ptr, ncols_ptr, fq_ptr, nc_ptr, lr_ptr,
        keep_ptr, key_w, key_th, n_in, n, t_steps, window, theta_decay, w_max,
        ONE_SPIKE: tl.constexpr, INHIBITORY: tl.constexpr, NEURON_DRAWS: tl.constexpr,
        WEIGHT_DRAWS: tl.constexpr, PRUNED: tl.constexpr, BLOCK: tl.constexpr,
        ROWS: tl.constexpr,
    ):  # fmt: skip
        k = tl.program_id(0)
        if tl.load(active_ptr + k) != 0:
            offs = tl.arange(0, BLOCK)
            mask = offs < n
            sb = k * n
            wk = w_ptr + k.to(tl.int64) * n_in * n
            fk = fq_ptr + k * (F_LEN * QP_LEN)  # the formats of this point
            w_on, w_inv, w_eps, w_lo, w_hi, w_st, w_cut, w_hi32 = _qload(fk + F_W * QP_LEN)
            v_on, v_inv, v_eps, v_lo, v_hi, v_st, v_cut, v_hi32 = _qload(fk + F_V * QP_LEN)
            t_on, t_inv, t_eps, t_lo, t_hi, t_st, t_cut, t_hi32 = _qload(fk + F_T * QP_LEN)
            a_on, a_inv, a_eps, a_lo, a_hi, a_st, a_cut, a_hi32 = _qload(fk + F_A * QP_LEN)
            ck = nc_ptr + k * C_LEN  # the neuron constants of this point
            v_rest = tl.load(ck + C_V_REST)
            v_reset = tl.load(ck + C_V_RESET)
            decay = tl.load(ck + C_DECAY)
            ref_steps = tl.load(ck + C_REF)
            i_rest = tl.load(ck + C_I_REST)
            i_reset = tl.load(ck + C_I_RESET)
            i_decay = tl.load(ck + C_I_DECAY)
            i_ref = tl.load(ck + C_I_REF)
            keep = tl.load(ck + C_KEEP)
            floor = tl.load(ck + C_FLOOR)
            v_th = tl.load(ck + C_V_TH)
            theta_plus = tl.load(ck + C_THETA_PLUS)
            w_lat = tl.load(ck + C_W_LAT)
            w_exc_inh = tl.load(ck + C_W_EXC_INH)
            inh_thr = tl.load(ck + C_INH_THR)
            lk = lr_ptr + k * LR_LEN  # the learning parameters of this point
            eta = tl.load(lk + LR_ETA)
            s_th = tl.load(lk + LR_S_TH)
            rr = tl.arange(0, ROWS)
            v = tl.load(v_ptr + sb + offs, mask=mask, other=0.0)
            theta = tl.load(theta_ptr + sb + offs, mask=mask, other=0.0)
            acc = tl.load(acc_ptr + sb + offs, mask=mask, other=0.0)
            inh_v = tl.load(inh_v_ptr + sb + offs, mask=mask, other=0.0)
            refr = tl.zeros([BLOCK], tl.float32)
            counts = tl.zeros([BLOCK], tl.float32)
            at_update = tl.zeros([BLOCK], tl.float32)
            i_rec = tl.zeros([BLOCK], tl.float32)
            inh_refr = tl.zeros([BLOCK], tl.float32)
            s_prev = tl.zeros([BLOCK], tl.float32)
            u0 = tl.zeros([BLOCK], tl.float32)
            u1 = tl.zeros([BLOCK], tl.float32)
            n_cols = 0
            kw64 = tl.cast(key_w, tl.uint64)
            kt64 = tl.cast(key_th, tl.uint64)
            v_th64 = v_th.to(tl.float64)
            for t in range(0, t_steps):
                a0 = tl.load(csr_ptr + t)
                a1 = tl.load(csr_ptr + t + 1)
                i_in = tl.zeros([BLOCK], tl.float32)
                for a in range(a0, a1, ROWS):  # rows of the inputs that spike, ROWS at a time
                    ra = a + rr
                    rm = ra < a1
                    rows = tl.load(idx_ptr + ra, mask=rm, other=0)
                    tile = tl.load(
                        wk + rows[:, None] * n + offs[None, :],
                        mask=rm[:, None] & mask[None, :],
                        other=0.0,
                    )
                    i_in += tl.sum(tile, axis=0)
                if NEURON_DRAWS:
                    ub = u_ptr + t * 2 * n + offs
                    u0 = tl.load(ub, mask=mask, other=0.0)
                    u1 = tl.load(ub + n, mask=mask, other=0.0)
                x = _leak(v, v_rest, decay, v_rest)
                x = tl.where(refr <= 0, x + (i_in + i_rec), x)
                v = _quant(x, v_on, v_inv, v_eps, v_lo, v_hi, v_st, v_cut, v_hi32, u0)
                v = tl.maximum(v, floor)  # step.floor_at (Triton's max of tensors)
                fire = (v >= theta + v_th) & mask
                if ONE_SPIKE:  # the largest tie-break wins (first index on equal draws)
                    tb = tl.load(tb_ptr + t * n + offs, mask=mask, other=-1.0)
                    score = tl.where(fire, tb, -1.0)
                    best = tl.max(score, axis=0)  # -1 when nothing fires (most steps)
                    s = fire & (score == best)
                    if best >= 0:
                        s = offs == tl.min(tl.where(s, offs, BLOCK), axis=0)
                    sf = s.to(tl.float32)
                    n_spk = tl.where(best >= 0, 1.0, 0.0)
                else:
                    s = fire
                    sf = s.to(tl.float32)
                    n_spk = tl.sum(sf, axis=0)
                v = tl.where(s, _reset_to(v, theta + v_th, v_reset, keep), v)
                refr = tl.where(s, ref_steps, refr - 1.0)
                counts += sf
                if INHIBITORY:
                    xi = _leak(inh_v, i_rest, i_decay, i_rest)
                    xi = tl.where(inh_refr <= 0, xi + s_prev * w_exc_inh, xi)
                    xi = _quant(xi, v_on, v_inv, v_eps, v_lo, v_hi, v_st, v_cut, v_hi32, u1)
                    si = (xi >= inh_thr) & mask
                    sif = si.to(tl.float32)
                    inh_v = tl.where(si, i_reset, xi)  # to its value
                    inh_refr = tl.where(si, i_ref, inh_refr - 1.0)
                    i_rec = (sif - tl.sum(sif, axis=0)) * w_lat
                    s_prev = sf
                else:
                    i_rec = (sf - n_spk) * w_lat
                if n_spk > 0:  # a spike raises its neuron's threshold (kernels.exc_step)
                    base = tl.where(t_on != 0, acc, theta.to(tl.float64) + v_th64)
                    th_n, acc_n = _theta_set(
                        base + theta_plus.to(tl.float64), theta, acc, v_th64, kt64, t, offs,
                        t_on, t_inv, t_eps, t_lo, t_hi, t_st, t_cut, t_hi32,
                        a_on, a_inv, a_eps, a_lo, a_hi, a_st, a_cut, a_hi32,
                    )  # fmt: skip
                    theta = tl.where(s, th_n, theta)
                    acc = tl.where(s, acc_n, acc)
                if ((t + 1) % window == 0) | (t == t_steps - 1):
                    s_max = tl.max(counts, axis=0)  # > 0 wherever a column is new
                    cols = ((counts - at_update) > 0) & mask
                    n_new = tl.sum(cols.to(tl.int32), axis=0)
                    if n_new > 0:  # some neuron fired since the last update point
                        n_cols += n_new
                        sm = s_max.to(tl.float64)  # then f64 arithmetic, as kernels.tinysnn_rule
                        coef = ((sm / s_th) * eta).to(tl.float32)
                        xw = xw_ptr + (t // window) * n_pix
                        tu = tl.cast(t, tl.uint64)
                        for m0 in range(0, n_pix, ROWS):  # rows of non-zero pixels
                            mm = m0 + rr
                            xp = tl.load(xw + mm, mask=mm < n_pix, other=0.0)
                            rows = tl.load(pix_ptr + mm, mask=mm < n_pix, other=0)
                            # inputs that have not spiked (trace 0) keep their weights
                            um = (xp > 0)[:, None] & cols[None, :]
                            wp = wk + rows[:, None] * n + offs[None, :]
                            wc = tl.load(wp, mask=um, other=0.0)
                            y = wc + (coef * xp)[:, None] * (w_max - wc)
                            y = tl.minimum(tl.maximum(y, 0.0), w_max)
                            r = tl.zeros([ROWS, BLOCK], tl.float32)
                            if WEIGHT_DRAWS:
                                r = _hash_uniform(kw64, tu, rows[:, None] * n + offs[None, :])
                            y = _quant(y, w_on, w_inv, w_eps, w_lo, w_hi, w_st, w_cut, w_hi32, r)
                            if PRUNED:  # a pruned synapse is never moved (kernels.tinysnn_rule)
                                kp = keep_ptr + k.to(tl.int64) * n_in * n
                                y = y * tl.load(kp + rows[:, None] * n + offs[None, :], mask=um,
                                                other=0.0)  # fmt: skip
                            tl.store(wp, y, mask=um)
                    at_update = counts
            # the presentation's threshold decay (kernels.theta_decay)
            th_fp = (theta.to(tl.float64) * theta_decay).to(tl.float32)
            th_n, acc_n = _theta_set(
                v_th64 + (acc - v_th64) * theta_decay, theta, acc, v_th64, kt64, t_steps, offs,
                t_on, t_inv, t_eps, t_lo, t_hi, t_st, t_cut, t_hi32,
                a_on, a_inv, a_eps, a_lo, a_hi, a_st, a_cut, a_hi32,
            )  # fmt: skip
            theta = tl.where(t_on != 0, th_n, th_fp)
            acc = tl.where(t_on != 0, acc_n, acc)
            tl.store(v_ptr + sb + offs, v, mask=mask)
            tl.store(theta_ptr + sb + offs, theta, mask=mask)
            tl.store(acc_ptr + sb + offs, acc, mask=mask)
            tl.store(counts_ptr + sb + offs, counts, mask=mask)
            done = tl.cast(n_cols, tl.int64)
            tl.store(ncols_ptr + k, tl.load(ncols_ptr + k) + done)

    @triton.jit(do_not_specialize=["key"])
    def _normalize_kernel(  # type: ignore[no-untyped-def]
        w_ptr, fq_ptr, norm_ptr, key, n_in, n, w_max,
        BR: tl.constexpr, BC: tl.constexpr,
    ):  # fmt: skip
        k = tl.program_id(0)
        cb = tl.program_id(1)
        cols = cb * BC + tl.arange(0, BC)
        cmask = cols < n
        rows = tl.arange(0, BR)
        wk = w_ptr + k.to(tl.int64) * n_in * n
        acc = tl.zeros([BC], tl.float32)
        for r0 in range(0, n_in, BR):
            r = r0 + rows
            m = (r < n_in)[:, None] & cmask[None, :]
            acc += tl.sum(tl.load(wk + r[:, None] * n + cols[None, :], mask=m, other=0.0), 0)
        scale = tl.load(norm_ptr + k) / tl.maximum(acc, 1e-12)
        fw = fq_ptr + k * (F_LEN * QP_LEN) + F_W * QP_LEN  # the weight format of this point
        q_on, q_inv, q_eps, q_lo, q_hi, q_st, q_cut, q_hi32 = _qload(fw)
        key64 = tl.cast(key, tl.uint64)
        a = tl.full([1, 1], 2147483647, tl.uint64)
        for r0 in range(0, n_in, BR):
            r = r0 + rows
            m = (r < n_in)[:, None] & cmask[None, :]
            p = wk + r[:, None] * n + cols[None, :]
            x = tl.load(p, mask=m, other=0.0) * scale[None, :]
            x = tl.minimum(tl.maximum(x, 0.0), w_max)
            u = _hash_uniform(key64, a, r[:, None] * n + cols[None, :])
            y = _quant(x, q_on, q_inv, q_eps, q_lo, q_hi, q_st, q_cut, q_hi32, u)
            tl.store(p, y, mask=m)


class LearnLaunch:
    """Constants of :func:`_learn_kernel` for one model and K design points (built once,
    launched per presentation by :meth:`__call__`): formats ``fq`` [K, F_LEN, QP_LEN],
    neuron constants ``nc`` [K, C_LEN] and learning parameters ``lr`` [K, LR_LEN]
    (:mod:`layout`), as :class:`sim.DesignBatch` packs them for the CPU kernels."""

    def __init__(
        self,
        device: torch.device,
        fq: np.ndarray,
        nc: np.ndarray,
        lr: np.ndarray,
        norm: np.ndarray,
        window: int,
        theta_decay: float,
        n_in: int,
        n: int,
    ) -> None:
        assert fq.shape[1:] == (L.F_LEN, L.QP_LEN) and nc.shape[1] == L.C_LEN
        assert lr.shape[1] == L.LR_LEN
        self.device = device

        def dev(a: np.ndarray, dtype: Any) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a, dtype), device=device)

        self.fq, self.nc, self.lr = dev(fq, np.float64), dev(nc, np.float32), dev(lr, np.float32)
        self.norm = dev(norm, np.float32)
        self.w_max, self.dt_tau = float(lr[0, L.LR_W_MAX]), float(lr[0, L.LR_DT_TAU])
        wq = fq[:, L.F_W]
        self.weight_draws = bool(((wq[:, L.QP_ON] != 0) & (wq[:, L.QP_STOCH] != 0)).any())
        self.flags = {"ONE_SPIKE": bool(nc[0, L.C_ONE_SPIKE]), "INHIBITORY": bool(nc[0, L.C_INHIB])}
        self.window, self.theta_decay, self.n_in, self.n = window, theta_decay, n_in, n
        self.block = max(32, triton.next_power_of_2(n))
        self.num_warps = 4 if self.block >= 512 else 2
        self.rows = 8  # rows of W gathered per load
        self._ends: dict[int, torch.Tensor] = {}

    def __call__(
        self,
        w: torch.Tensor,
        active: torch.Tensor,
        trains: Any,
        tiebreak: torch.Tensor,
        u: torch.Tensor | None,
        keys: np.ndarray,
        v: torch.Tensor,
        theta: torch.Tensor,
        acc: torch.Tensor,
        counts: torch.Tensor,
        inh_v: torch.Tensor,
        n_cols: torch.Tensor,
        keep: torch.Tensor | None = None,
    ) -> None:
        """One presentation of ``trains`` (compact :class:`sim.SpikeTrains` of one image)
        to the active points, its threshold decay included. Updates ``w`` [K, n_in, N],
        ``theta``, ``acc`` (float64), ``v``, ``inh_v``, ``counts`` [K, N] and ``n_cols``
        [K] in place; ``keys`` as :func:`kernels.learn_tinysnn_multi` takes them;
        ``keep`` [K, n_in, N] (float32 0/1) each point's retained synapses (STDP
        pruning), which the rule never moves."""
        dev, k = self.device, w.shape[0]
        t_steps = trains.shape[1]
        spk = trains.spikes.to(dev)
        pix = trains.pix.to(dev)
        # CSR over steps: the active inputs of each step, ascending
        tt, mm = spk.t().nonzero(as_tuple=True)
        idx = pix[mm].to(torch.int32).contiguous()
        csr = torch.zeros(t_steps + 1, dtype=torch.int32, device=dev)
        csr[1:] = torch.cumsum(torch.bincount(tt, minlength=t_steps), 0)
        # traces at the update points, per non-zero pixel: exp(-(end - last) dt / tau)
        ends = self._ends.get(t_steps)
        if ends is None:
            pts = [min(t + self.window, t_steps) - 1 for t in range(0, t_steps, self.window)]
            ends = self._ends[t_steps] = torch.tensor(pts, device=dev)
        steps = torch.arange(t_steps, device=dev)
        last = torch.cummax(torch.where(spk, steps, -1), dim=1).values[:, ends]  # [M, W]
        xw = torch.where(
            last >= 0, torch.exp(-(ends - last).to(torch.float32) * self.dt_tau), 0.0
        ).t().contiguous()  # fmt: skip
        uu = u if u is not None else tiebreak
        _learn_kernel[(k,)](
            w, active, csr, idx, pix.to(torch.int32).contiguous(), xw, int(pix.shape[0]),
            tiebreak, uu, v, theta, acc, counts, inh_v, n_cols, self.fq, self.nc, self.lr,
            w if keep is None else keep,
            int(keys[L.K_W]), int(keys[L.K_VTH]), self.n_in, self.n, t_steps, self.window,
            self.theta_decay, self.w_max,
            NEURON_DRAWS=u is not None, WEIGHT_DRAWS=self.weight_draws, PRUNED=keep is not None,
            BLOCK=self.block, ROWS=self.rows,
            num_warps=self.num_warps,
            **self.flags,
        )  # fmt: skip

    def normalize(self, w: torch.Tensor, key: int) -> None:
        """:func:`kernels.normalize_multi` on the GPU, in place on ``w`` [K, n_in, N]."""
        grid = (w.shape[0], triton.cdiv(self.n, BLOCK_COLS))
        _normalize_kernel[grid](
            w, self.fq, self.norm, key, self.n_in, self.n, self.w_max,
            BR=BLOCK_ROWS, BC=BLOCK_COLS,
        )  # fmt: skip
