"""Compiled per-step neuron dynamics for learning runs on the CPU (the fast path).

The reference path (:func:`tinysnn_dse.core.sim.simulate`) issues ~25 tiny torch ops per
time step, and at 400 neurons their dispatch cost, not arithmetic, sets the speed. Here
one Numba-compiled call runs the neuron dynamics of a whole update window. Everything
else stays in the shared torch code: the window's input current (one matrix product), the
learning rule, weight normalisation and weight quantization. The kernel repeats the
reference's float32 arithmetic in the same order, so both paths give the same spikes; a
test holds them to that.

It covers what learning needs at B == 1: excitatory DC15 neurons with the one-spike rule,
adaptive thresholds, lateral or inhibitory-layer recurrence, and Vmem/Vth quantization
with deterministic rounding (truncate, nearest). Anything else runs on the reference path.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a declared dependency; the reference path works without it
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        def wrap(f):  # type: ignore[no-untyped-def]
            return f

        return wrap


F32 = np.float32


@njit(cache=True, nogil=True)
def _q(x, inv, eps, lo, hi, off):  # type: ignore[no-untyped-def]
    """Deterministic fixed-point rounding of one float32 (off 0 = truncate, 0.5 = nearest)."""
    y = np.floor(x * inv + off)
    if y < lo:
        y = lo
    elif y > hi:
        y = hi
    return F32(y * eps)


@njit(cache=True, nogil=True)
def exc_window(  # type: ignore[no-untyped-def]
    i_win,  # [W, N] float32: input current of each step of the window
    tiebreak,  # [W, N] float32 (used when one_spike)
    v,  # [N] float32, in/out
    refr,  # [N] float32, in/out
    theta,  # [N] float32, in/out
    counts,  # [N] float32, in/out
    i_rec,  # [N] float32, in/out: recurrent input pending for the next step
    inh_v,  # [N] float32, in/out (inhibitory topology)
    inh_refr,  # [N] float32, in/out
    s_prev,  # [N] float32, in/out: previous step's excitatory spikes (inhibitory topology)
    ex_c,  # float32[4]: v_rest, v_reset, decay, ref_steps
    in_c,  # float32[4]: same for the inhibitory layer
    v_th,  # float32
    theta_decay,  # float32
    theta_plus,  # float32
    one_spike,  # bool
    inhibitory,  # bool
    w_lat,  # float32: lateral weight (lateral) or inh->exc weight (inhibitory)
    w_exc_inh,  # float32
    inh_thr,  # float32 (already on the Vth grid)
    vq,  # float64[6]: enabled, inv, eps, lo, hi, offset (Vmem quantizer)
    tq,  # float64[6]: same for Vth
):
    n_steps, n = i_win.shape
    v_rest, v_reset, decay, ref_steps = ex_c[0], ex_c[1], ex_c[2], ex_c[3]
    i_rest, i_reset, i_decay, i_ref = in_c[0], in_c[1], in_c[2], in_c[3]
    one = F32(1.0)
    s = np.zeros(n, dtype=np.float32)
    si = np.zeros(n, dtype=np.float32)
    for k in range(n_steps):
        # integrate and threshold
        best = F32(-1.0)
        best_j = -1
        n_spk = 0
        for j in range(n):
            x = (v[j] - v_rest) * decay + v_rest
            if refr[j] <= 0:
                x = x + (i_win[k, j] + i_rec[j])
            if vq[0] != 0:
                x = _q(x, vq[1], vq[2], vq[3], vq[4], vq[5])
            v[j] = x
            fire = x >= theta[j] + v_th
            s[j] = one if fire else F32(0.0)
            if fire:
                n_spk += 1
                if one_spike:
                    sc = tiebreak[k, j]
                    if sc > best:
                        best = sc
                        best_j = j
        if one_spike and n_spk > 1:
            for j in range(n):
                s[j] = one if j == best_j else F32(0.0)
            n_spk = 1
        # reset, refractory, counts
        for j in range(n):
            if s[j] > 0:
                v[j] = v_reset
                refr[j] = ref_steps
            else:
                refr[j] = refr[j] - one
            counts[j] += s[j]
        # recurrent inhibition for the next step
        if inhibitory:
            n_inh = 0
            for j in range(n):
                x = (inh_v[j] - i_rest) * i_decay + i_rest
                if inh_refr[j] <= 0:
                    x = x + s_prev[j] * w_exc_inh
                if vq[0] != 0:
                    x = _q(x, vq[1], vq[2], vq[3], vq[4], vq[5])
                if x >= inh_thr:
                    si[j] = one
                    n_inh += 1
                    inh_v[j] = i_reset
                    inh_refr[j] = i_ref
                else:
                    si[j] = F32(0.0)
                    inh_v[j] = x
                    inh_refr[j] = inh_refr[j] - one
            tot = F32(n_inh)
            for j in range(n):
                i_rec[j] = (si[j] - tot) * w_lat
                s_prev[j] = s[j]
        else:
            tot = F32(n_spk)
            for j in range(n):
                i_rec[j] = (s[j] - tot) * w_lat
        # adaptive thresholds (learning)
        for j in range(n):
            th = theta[j] * theta_decay + s[j] * theta_plus
            if tq[0] != 0:
                th = _q(th + v_th, tq[1], tq[2], tq[3], tq[4], tq[5]) - v_th
            theta[j] = th
