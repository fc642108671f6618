"""Compiled kernels for the CPU fast path (learning and inference).

The reference path (:func:`tinysnn_dse.core.sim.simulate`) issues ~25 tiny torch ops per
time step, and at 400 neurons their dispatch cost, not arithmetic, sets the speed. Here
Numba-compiled calls take Python out of the inner loop:

- :func:`learn_tinysnn`: a whole tinySNN-rule presentation (FP32 or deterministic weight
  rounding), input current from the active rows of W only, the rule applied in place.
  With stochastic weight rounding the caller runs its parts window by window
  (:func:`tinysnn_steps`, then :func:`tinysnn_rule` with W's uniforms drawn in between,
  as the reference draws them). Equal to the reference within float32 rounding (the
  summation order differs).
- :func:`learn_stepwise`: a whole ``pair`` / ``sl-stdp`` presentation.
- :func:`infer_batch`: inference of a batch of images in parallel threads; each image's
  input current for all steps is summed first (W is fixed), then the neurons run, with
  lateral inhibition in one fused pass per step (:func:`_infer_lateral`).

All of them cover excitatory DC15 neurons with the one-spike rule, adaptive thresholds,
lateral or inhibitory-layer recurrence, and Vmem/Vth quantization with any rounding.
Random numbers come from the run's torch generator, in the order the reference path
draws them: single-point learning takes its Vmem/Vth rounding uniforms as one block draw
(equal to the same draws made one step at a time). Tie-breaks, the rounding uniforms of
design batches and of inference, and W's stochastic rounding in batches come from the
counter-based :func:`hash_uniform` under keys drawn from that generator, either
materialised by :func:`hash_block` (the reference path gets the same block) or computed
in place. Anything else runs on the reference path.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a declared dependency; the reference path works without it
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        def wrap(f):  # type: ignore[no-untyped-def]
            return f

        return wrap

    prange = range  # type: ignore[misc]


F32 = np.float32


def set_threads(n: int) -> None:
    """Use ``n`` threads for the parallel kernels (capped by numba's pool size)."""
    if HAVE_NUMBA:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


@njit(cache=True, nogil=True)
def _q(x, inv, eps, lo, hi, off, u):  # type: ignore[no-untyped-def]
    """Fixed-point rounding of one float32: ``off`` 0 = truncate, 0.5 = nearest, -1 =
    stochastic with the uniform ``u`` (drawn by the caller from the run's generator, in
    the reference path's order, so both paths round alike)."""
    if off < 0:
        y = x * inv
        fl = np.floor(y)
        y = fl + 1.0 if u < y - fl else fl
    else:
        y = np.floor(x * inv + off)
    if y < lo:
        y = lo
    elif y > hi:
        y = hi
    return F32(y * eps)


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True)
def hash_uniform(key, a, b):  # type: ignore[no-untyped-def]
    """A uniform float32 in [0, 1) that depends only on (``key``, ``a``, ``b``): SplitMix64's
    finaliser over the combined counter, top 24 bits. Counter-based, so parallel threads
    draw the same numbers in any order. ``key`` comes from the run's torch generator."""
    z = (
        np.uint64(key)
        + (np.uint64(a) * np.uint64(2654435761) + np.uint64(b) + np.uint64(1)) * _GOLD
    )
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return F32(z >> np.uint64(40)) * F32(5.9604645e-08)  # 2**-24


@njit(cache=True, nogil=True)
def hash_block(key, n_rows, n_cols):  # type: ignore[no-untyped-def]
    """[n_rows, n_cols] float32 uniforms, element (a, b) = :func:`hash_uniform` (key, a,
    b): what a kernel computes in place, materialised for the reference path and the
    callers that pass uniforms as arrays (tie-breaks, rounding)."""
    out = np.empty((n_rows, n_cols), dtype=np.float32)
    for a in range(n_rows):
        for b in range(n_cols):
            out[a, b] = hash_uniform(key, a, b)
    return out


@njit(cache=True, nogil=True)
def _exc_step(  # type: ignore[no-untyped-def]
    i_in, tkey, t, s, si, v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev,
    ex_c, in_c, v_th, theta_decay, theta_plus, one_spike, inhibitory,
    w_lat, w_exc_inh, inh_thr, vq, tq, u,
):  # fmt: skip
    """One learning step (step ``t``) of the excitatory layer (and the inhibitory one);
    fills ``s``.

    ``u`` [3, N]: uniforms for stochastic rounding of Vmem, inhibitory Vmem and Vth.
    The one-spike rule keeps, of the neurons that fire, the one with the largest
    tie-break :func:`hash_uniform` (``tkey``, t, j), computed only on steps where
    several fire (the reference path reads the same numbers from :func:`hash_block`).
    """
    n = v.shape[0]
    v_rest, v_reset, decay, ref_steps = ex_c[0], ex_c[1], ex_c[2], ex_c[3]
    i_rest, i_reset, i_decay, i_ref = in_c[0], in_c[1], in_c[2], in_c[3]
    one = F32(1.0)
    zero = F32(0.0)
    frozen = theta_decay == one and theta_plus == zero  # inference: thresholds never move
    n_fire = 0
    if vq[0] != 0 and vq[5] >= 0:  # deterministic Vmem rounding: branch-free, vectorizes
        inv, eps, lo, hi, off = vq[1], vq[2], vq[3], vq[4], vq[5]
        for j in range(n):
            x = (v[j] - v_rest) * decay + v_rest
            x = x + (i_in[j] + i_rec[j]) if refr[j] <= 0 else x
            y = min(max(np.floor(x * inv + off), lo), hi)
            v[j] = F32(y * eps)
            n_fire += v[j] >= theta[j] + v_th
    elif vq[0] != 0:  # stochastic Vmem rounding: _q's arithmetic, branch-free
        inv, eps, lo, hi = vq[1], vq[2], vq[3], vq[4]
        for j in range(n):
            x = (v[j] - v_rest) * decay + v_rest
            x = x + (i_in[j] + i_rec[j]) if refr[j] <= 0 else x
            y = x * inv
            fl = np.floor(y)
            y = min(max(fl + 1.0 if u[0, j] < y - fl else fl, lo), hi)
            v[j] = F32(y * eps)
            n_fire += v[j] >= theta[j] + v_th
    else:
        for j in range(n):
            x = (v[j] - v_rest) * decay + v_rest
            v[j] = x + (i_in[j] + i_rec[j]) if refr[j] <= 0 else x
            n_fire += v[j] >= theta[j] + v_th
    if n_fire == 0 and not inhibitory:  # most steps: no spike, nothing to reset or inhibit
        for j in range(n):
            s[j] = zero
            refr[j] = refr[j] - one
            i_rec[j] = zero
        if frozen:
            return 0
        if tq[0] == 0:
            for j in range(n):
                theta[j] = theta[j] * theta_decay + zero
        elif tq[5] >= 0:  # deterministic Vth rounding: branch-free
            inv, eps, lo, hi, off = tq[1], tq[2], tq[3], tq[4], tq[5]
            for j in range(n):
                th = theta[j] * theta_decay + zero + v_th
                y = min(max(np.floor(th * inv + off), lo), hi)
                theta[j] = F32(y * eps) - v_th
        else:  # stochastic Vth rounding: _q's arithmetic, branch-free
            inv, eps, lo, hi = tq[1], tq[2], tq[3], tq[4]
            for j in range(n):
                y = (theta[j] * theta_decay + zero + v_th) * inv
                fl = np.floor(y)
                y = min(max(fl + 1.0 if u[2, j] < y - fl else fl, lo), hi)
                theta[j] = F32(y * eps) - v_th
        return 0
    best = F32(-1.0)
    best_j = -1
    n_spk = 0
    for j in range(n):
        fire = v[j] >= theta[j] + v_th
        s[j] = one if fire else zero
        if fire:
            n_spk += 1
            if one_spike:
                r = hash_uniform(tkey, t, j)
                if r > best:
                    best = r
                    best_j = j
    if one_spike and n_spk > 1:
        for j in range(n):
            s[j] = one if j == best_j else F32(0.0)
        n_spk = 1
    for j in range(n):
        if s[j] > 0:
            v[j] = v_reset
            refr[j] = ref_steps
        else:
            refr[j] = refr[j] - one
        counts[j] += s[j]
    if inhibitory:
        n_inh = 0
        for j in range(n):
            x = (inh_v[j] - i_rest) * i_decay + i_rest
            if inh_refr[j] <= 0:
                x = x + s_prev[j] * w_exc_inh
            if vq[0] != 0:
                x = _q(x, vq[1], vq[2], vq[3], vq[4], vq[5], u[1, j])
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
    if not frozen:
        for j in range(n):
            th = theta[j] * theta_decay + s[j] * theta_plus
            if tq[0] != 0:
                th = _q(th + v_th, tq[1], tq[2], tq[3], tq[4], tq[5], u[2, j]) - v_th
            theta[j] = th
    return n_spk


@njit(cache=True, nogil=True)
def tinysnn_steps(  # type: ignore[no-untyped-def]
    w, iptr, times, rows, pos, t0, t1, last, tkey, u,
    v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev,
    ex_c, in_c, v_th, theta_decay, theta_plus, one_spike, inhibitory,
    w_lat, w_exc_inh, inh_thr, vq, tq,
):  # fmt: skip
    """Steps ``t0 .. t1-1`` of a tinySNN-rule learning presentation (W unchanged inside).

    Input spikes come input by input: input ``m`` is row
    ``rows[m]`` of W (ascending) and spikes at steps ``times[iptr[m] .. iptr[m+1]-1]``
    (ascending); ``pos`` [M] (int64, starting at ``iptr[:-1]``) is each input's next
    unread spike, advanced window by window. W is constant inside the window, so its
    input currents are summed first, into a [t1-t0, N] buffer, input by input: each
    active row of W is read once per window (it stays in the L1 cache while it is added
    to every step it spikes at) instead of once per spike, and every step still adds its
    rows in ascending input order, the same floats as a sum step by step. ``last``
    [n_in] (int64, -1 = none yet) records each input's last spike step, for the traces.
    ``u`` [t1-t0, 3, N] holds the Vmem/Vth rounding uniforms of these steps, or is
    [1, 3, N] when rounding is deterministic.
    """
    n = w.shape[1]
    s = np.zeros(n, dtype=np.float32)
    si = np.zeros(n, dtype=np.float32)
    cur = np.zeros((t1 - t0, n), dtype=np.float32)
    per_step = u.shape[0] > 1
    for m in range(rows.shape[0]):
        a = pos[m]
        end = iptr[m + 1]
        row = rows[m]
        while a < end and times[a] < t1:
            ta = times[a] - t0
            for j in range(n):
                cur[ta, j] += w[row, j]
            last[row] = times[a]
            a += 1
        pos[m] = a
    for t in range(t0, t1):
        _exc_step(
            cur[t - t0], tkey, t, s, si, v, refr, theta, counts, i_rec, inh_v, inh_refr,
            s_prev, ex_c, in_c, v_th, theta_decay, theta_plus, one_spike, inhibitory,
            w_lat, w_exc_inh, inh_thr, vq, tq, u[t - t0] if per_step else u[0],
        )  # fmt: skip


@njit(cache=True, nogil=True)
def tinysnn_rule(w, t, last, cols, s_max, lr, wq, uw, key):  # type: ignore[no-untyped-def]
    """The tinySNN rule at update point ``t``: the columns ``cols`` (ascending; neurons
    that fired since the previous update point) move by ``k * eta * x_pre * (w_max - w)``
    with ``k = s_max / s_th`` and ``x_pre = exp(-(t - last) dt / tau)`` (0 for inputs
    that have not spiked), then are clipped and put on the weight grid. ``lr`` = (eta,
    s_th, w_max, dt/tau); ``uw`` [n_in, len(cols)] the uniforms of stochastic weight
    rounding, in the reference's order, or (a [1, 1] array) take them from
    :func:`hash_uniform` with ``key`` (batched design points)."""
    n_in, n = w.shape
    eta, s_th, w_max, dt_tau = lr[0], lr[1], lr[2], lr[3]
    coef = F32((float(s_max) / s_th) * eta)
    stochastic = wq[0] != 0 and wq[5] < 0
    hashed = uw.shape[0] != n_in
    x_pre = np.zeros(n_in, dtype=np.float32)
    for i in range(n_in):
        if last[i] >= 0:
            x_pre[i] = np.exp(-F32(t - last[i]) * dt_tau)
    for c in range(cols.shape[0]):
        j = cols[c]
        for i in range(n_in):
            wc = w[i, j]
            r = F32(0.0)
            if stochastic:
                r = hash_uniform(key, t, i * n + j) if hashed else uw[i, c]
            w[i, j] = _clip_q(wc + coef * x_pre[i] * (w_max - wc), w_max, wq, r)


@njit(cache=True, nogil=True)
def spikes_by_input(spikes):  # type: ignore[no-untyped-def]
    """One image's compact trains ``spikes`` [M, T] (bool), input by input, as
    :func:`tinysnn_steps` reads them: (iptr [M+1], times) with input m's spike steps,
    ascending, at ``times[iptr[m] .. iptr[m+1]-1]``."""
    m_total, n_steps = spikes.shape
    iptr = np.zeros(m_total + 1, dtype=np.int64)
    times = np.empty(m_total * n_steps, dtype=np.int64)
    a = 0
    for m in range(m_total):
        for t in range(n_steps):
            if spikes[m, t]:
                times[a] = t
                a += 1
        iptr[m + 1] = a
    return iptr, times[:a]


@njit(cache=True, nogil=True)
def learn_tinysnn(  # type: ignore[no-untyped-def]
    w, iptr, times, rows, n_steps, tkey, u, window, lr, wq, key,
    v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev,
    ex_c, in_c, v_th, theta_decay, theta_plus, one_spike, inhibitory,
    w_lat, w_exc_inh, inh_thr, vq, tq,
):  # fmt: skip
    """A whole tinySNN-rule learning presentation in one call, updating ``w`` [n_in, N] in
    place: :func:`tinysnn_steps` over each window of ``window`` steps, then
    :func:`tinysnn_rule` at its last step. ``u`` [T, 3, N] or [1, 3, N] as there.
    Stochastic weight rounding takes :func:`hash_uniform` numbers under ``key`` (the
    single-point path rounds W stochastically window by window instead). Returns the
    number of columns updated (event counts)."""
    n_in, n = w.shape
    last = np.full(n_in, -1, dtype=np.int64)
    pos = iptr[:-1].copy()
    at_update = counts.copy()
    per_step = u.shape[0] > 1
    uw = np.zeros((1, 1), dtype=np.float32)
    n_cols = 0
    for t0 in range(0, n_steps, window):
        t1 = min(t0 + window, n_steps)
        tinysnn_steps(
            w, iptr, times, rows, pos, t0, t1, last, tkey, u[t0:t1] if per_step else u,
            v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev,
            ex_c, in_c, v_th, theta_decay, theta_plus, one_spike, inhibitory,
            w_lat, w_exc_inh, inh_thr, vq, tq,
        )  # fmt: skip
        s_max = counts.max()
        if s_max > 0:
            cols = np.nonzero(counts - at_update > 0)[0]
            n_cols += cols.shape[0]
            tinysnn_rule(w, t1 - 1, last, cols, s_max, lr, wq, uw, key)
        at_update[:] = counts
    return n_cols


@njit(cache=True, nogil=True, parallel=True)
def learn_tinysnn_multi(  # type: ignore[no-untyped-def]
    w, active, iptr, times, rows, n_steps, tkey, u, window, lr, wq, key,
    v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev,
    ex_c, in_c, v_th, theta_decay, one_spike, inhibitory, w_exc_inh,
    theta_plus, w_lat, inh_thr, vq, tq, n_cols,
):  # fmt: skip
    """One presentation of shared input spikes to K design points at once, in parallel
    threads: :func:`learn_tinysnn` for every point ``k`` with ``active[k]``. Arrays with
    a leading K axis hold each point's own weights [K, n_in, N], state [K, N], quantizers
    (``wq``, ``vq``, ``tq`` [K, 6]), inhibitory threshold ``inh_thr`` [K] and learning
    parameters (``lr`` [K, 4], ``theta_plus``, ``w_lat`` [K]); the spikes, tie-breaks and
    rounding uniforms are common to all points. ``n_cols`` [K] accumulates the updated
    columns."""
    for k in prange(w.shape[0]):
        if active[k]:
            n_cols[k] += learn_tinysnn(
                w[k], iptr, times, rows, n_steps, tkey, u, window, lr[k], wq[k], key,
                v[k], refr[k], theta[k], counts[k], i_rec[k], inh_v[k], inh_refr[k],
                s_prev[k], ex_c, in_c, v_th, theta_decay, theta_plus[k], one_spike,
                inhibitory, w_lat[k], w_exc_inh, inh_thr[k], vq[k], tq[k],
            )  # fmt: skip


@njit(cache=True, nogil=True, parallel=True)
def normalize_multi(w, norm, w_max, wq, key):  # type: ignore[no-untyped-def]
    """Weight normalisation of K design points in parallel: each column of ``w[k]``
    [n_in, N] rescaled to sum to ``norm[k]``, clipped to [0, w_max], then put on the point's
    weight grid ``wq[k]`` (stochastic rounding with :func:`hash_uniform` under ``key``).
    Branch-free inner loops per rounding mode, so that they vectorize."""
    for k in prange(w.shape[0]):
        wk = w[k]
        n_in, n = wk.shape
        col = np.zeros(n, dtype=np.float32)
        for i in range(n_in):
            for j in range(n):
                col[j] += wk[i, j]
        for j in range(n):
            col[j] = norm[k] / max(col[j], F32(1e-12))
        q = wq[k]
        zero = F32(0.0)
        if q[0] == 0:  # FP32
            for i in range(n_in):
                for j in range(n):
                    wk[i, j] = min(max(wk[i, j] * col[j], zero), w_max)
            continue
        inv, eps, lo, hi, off = F32(q[1]), F32(q[2]), F32(q[3]), F32(q[4]), F32(q[5])
        if off >= 0:  # truncate (0) or nearest (0.5)
            for i in range(n_in):
                for j in range(n):
                    x = min(max(wk[i, j] * col[j], zero), w_max)
                    y = np.floor(x * inv + off)
                    wk[i, j] = min(max(y, lo), hi) * eps
            continue
        for i in range(n_in):  # stochastic: _q's arithmetic, branch-free
            for j in range(n):
                x = min(max(wk[i, j] * col[j], zero), w_max)
                y = x * inv
                fl = np.floor(y)
                r = hash_uniform(key, 2147483647, i * n + j)
                wk[i, j] = F32(min(max(fl + 1.0 if r < y - fl else fl, lo), hi) * eps)


@njit(cache=True, nogil=True)
def learn_stepwise(  # type: ignore[no-untyped-def]
    w, ptr, idx, x_pre_all, tkey, rule, lr, wq,
    v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev,
    ex_c, in_c, v_th, theta_decay, theta_plus, one_spike, inhibitory,
    w_lat, w_exc_inh, inh_thr, vq, tq, trace_decay,
):  # fmt: skip
    """A whole learning presentation for the per-step rules ``pair`` (rule 1) and
    ``sl-stdp`` (rule 2), updating ``w`` [n_in, N] in place.

    Input spikes come as CSR rows (``ptr`` [T+1], ``idx``): the active inputs of each
    step, so the input current sums only those rows of W. ``x_pre_all`` [T, n_in] are
    the presynaptic traces (shared with the reference path). ``lr`` = (eta_pre, eta_post,
    eta_sl, x_tar, w_max); ``wq`` the weight quantizer (deterministic rounding only).
    """
    n_in, n = w.shape
    eta_pre, eta_post, eta_sl, x_tar, w_max = lr[0], lr[1], lr[2], lr[3], lr[4]
    s = np.zeros(n, dtype=np.float32)
    si = np.zeros(n, dtype=np.float32)
    i_in = np.zeros(n, dtype=np.float32)
    x_post = np.zeros(n, dtype=np.float32)
    b0 = np.zeros(n, dtype=np.float32)
    u0 = np.zeros((3, n), dtype=np.float32)  # deterministic rounding only here
    zero = F32(0.0)
    for t in range(ptr.shape[0] - 1):
        for j in range(n):
            i_in[j] = zero
        for a in range(ptr[t], ptr[t + 1]):
            row = idx[a]
            for j in range(n):
                i_in[j] += w[row, j]
        n_spk = _exc_step(
            i_in, tkey, t, s, si, v, refr, theta, counts, i_rec, inh_v, inh_refr,
            s_prev, ex_c, in_c, v_th, theta_decay, theta_plus, one_spike, inhibitory,
            w_lat, w_exc_inh, inh_thr, vq, tq, u0,
        )  # fmt: skip
        for j in range(n):
            x_post[j] = F32(1.0) if s[j] > 0 else x_post[j] * trace_decay
        x_pre = x_pre_all[t]
        if rule == 1:  # pair: rows of active inputs, columns of spiking neurons
            for j in range(n):
                b0[j] = x_post[j] * -eta_pre
            for a in range(ptr[t], ptr[t + 1]):
                i = idx[a]
                xi = x_pre[i]
                for j in range(n):
                    x = w[i, j] + (b0[j] + xi * (s[j] * eta_post))
                    x = min(max(x, zero), w_max)
                    if wq[0] != 0:
                        x = _q(x, wq[1], wq[2], wq[3], wq[4], wq[5], F32(0.0))
                    w[i, j] = x
            if n_spk > 0:
                for j in range(n):
                    if s[j] > 0:
                        post = s[j] * eta_post
                        a = ptr[t]
                        for i in range(n_in):
                            if a < ptr[t + 1] and idx[a] == i:
                                a += 1  # already updated with its row
                                continue
                            w[i, j] = _clip_q(w[i, j] + x_pre[i] * post, w_max, wq)
        elif rule == 2 and n_spk > 0:  # sl-stdp: columns of spiking neurons
            for j in range(n):
                if s[j] > 0:
                    for i in range(n_in):
                        d = x_pre[i] - x_tar
                        wij = w[i, j]
                        bound = (w_max - wij) if d >= 0 else wij
                        w[i, j] = _clip_q(wij + eta_sl * d * bound, w_max, wq)


@njit(cache=True, nogil=True)
def _clip_q(x, w_max, wq, u=F32(0.0)):  # type: ignore[no-untyped-def]
    """Clip a weight to [0, w_max], then round it to ``wq`` (``u``: stochastic uniform)."""
    if x < 0:
        x = F32(0.0)
    elif x > w_max:
        x = w_max
    if wq[0] != 0:
        x = _q(x, wq[1], wq[2], wq[3], wq[4], wq[5], u)
    return x


@njit(cache=True, nogil=True)
def _infer_lateral(cur, v, thr, cnt, refr, i_rec, s, ex_c, w_lat, vq, ukey, b):  # type: ignore[no-untyped-def]
    """One image's inference steps with direct lateral inhibition (theta frozen, no
    one-spike rule): what :func:`_exc_step` computes for this case, the same floats,
    with integration, Vmem rounding, the refractory count, clearing the recurrent and
    input currents and the threshold test fused into one pass per step. ``cur`` [T, N]
    holds the input current of each step (cleared as it is read); ``thr`` = theta + v_th;
    ``cnt`` receives the spike counts; ``ukey`` as in :func:`infer_batch` (image ``b``)."""
    n = v.shape[0]
    n_steps = cur.shape[0]
    v_rest, v_reset, decay, ref_steps = ex_c[0], ex_c[1], ex_c[2], ex_c[3]
    one = F32(1.0)
    zero = F32(0.0)
    mode = 0 if vq[0] == 0 else (1 if vq[5] >= 0 else 2)
    inv, eps, lo, hi, off = vq[1], vq[2], vq[3], vq[4], vq[5]
    for j in range(n):
        refr[j] = zero
        i_rec[j] = zero
        cnt[j] = zero
    for t in range(n_steps):
        n_fire = 0
        if mode == 0:
            for j in range(n):
                x = (v[j] - v_rest) * decay + v_rest
                x = x + (cur[t, j] + i_rec[j]) if refr[j] <= 0 else x
                v[j] = x
                n_fire += x >= thr[j]
                refr[j] = refr[j] - one
                i_rec[j] = zero
                cur[t, j] = zero
        elif mode == 1:  # deterministic rounding: branch-free, vectorizes
            for j in range(n):
                x = (v[j] - v_rest) * decay + v_rest
                x = x + (cur[t, j] + i_rec[j]) if refr[j] <= 0 else x
                y = min(max(np.floor(x * inv + off), lo), hi)
                x = F32(y * eps)
                v[j] = x
                n_fire += x >= thr[j]
                refr[j] = refr[j] - one
                i_rec[j] = zero
                cur[t, j] = zero
        else:  # stochastic rounding (_q's arithmetic), uniforms hashed in place
            for j in range(n):
                x = (v[j] - v_rest) * decay + v_rest
                x = x + (cur[t, j] + i_rec[j]) if refr[j] <= 0 else x
                y = x * inv
                fl = np.floor(y)
                r = hash_uniform(ukey, t, b * n + j)
                y = min(max(fl + 1.0 if r < y - fl else fl, lo), hi)
                x = F32(y * eps)
                v[j] = x
                n_fire += x >= thr[j]
                refr[j] = refr[j] - one
                i_rec[j] = zero
                cur[t, j] = zero
        if n_fire == 0:
            continue
        for j in range(n):
            if v[j] >= thr[j]:
                s[j] = one
                v[j] = v_reset
                refr[j] = ref_steps
                cnt[j] += one
            else:
                s[j] = zero
        tot = F32(n_fire)
        for j in range(n):
            i_rec[j] = (s[j] - tot) * w_lat


@njit(cache=True, nogil=True, parallel=True)
def infer_batch(  # type: ignore[no-untyped-def]
    w, img_ptr, pix, spikes, p, key, n_steps, theta, counts, n_in_spikes, v0, iv0, ukey,
    ex_c, in_c, v_th, inhibitory, w_lat, w_exc_inh, inh_thr, vq, tq, n_threads,
):  # fmt: skip
    """Inference (learning off, theta frozen, no one-spike rule) of a batch of images.

    Input spikes come as compact trains: image b's non-zero pixels are rows
    ``img_ptr[b] .. img_ptr[b+1]-1`` of ``pix`` [M] (input index) and ``spikes`` [M, T]
    (bool). With ``spikes`` of shape [0, 0] they are drawn here instead by
    :func:`geometric_times` from ``p`` [M] (float64) and ``key``, as
    :func:`geometric_spikes` draws them (the same trains, without storing them);
    ``n_in_spikes`` [B] receives each image's number of input spikes either way.

    W is fixed at inference, so the input current of every step is known before the
    neurons run: it is summed first, pixel by pixel, into a [T, N] buffer (each active
    row of W read once per image instead of once per spike; the buffer stays in the
    core's cache, W does not), adding rows in input order as the step-by-step sum does,
    so the currents are the same floats. ``counts`` [B, N] is filled with each image's
    spike counts. Images run in parallel threads, each thread reusing its buffers
    (``n_threads``: the number of threads to spread images over). With lateral
    inhibition the neuron step runs as one fused pass (:func:`_infer_lateral`); with the
    inhibitory layer as in learning (:func:`_exc_step`). ``v0``/``iv0`` [B, N] are the
    initial (quantized) potentials. Stochastic Vmem rounding takes its uniforms from
    :func:`hash_uniform` under ``ukey``: at step t, image b, neuron j, (ukey, t, b * N + j)
    for the excitatory layer and (ukey, t, (B + b) * N + j) for the inhibitory one, the
    elements of the [T, 2, B, N] block that :func:`hash_block` gives the reference path.
    """
    n_img = counts.shape[0]
    n = w.shape[1]
    stochastic = vq[0] != 0 and vq[5] < 0
    n_par = min(n_img, 4 * n_threads)
    draw = spikes.shape[1] == 0
    for c in prange(n_par):
        cur = np.zeros((n_steps, n), dtype=np.float32)
        times = np.zeros(n_steps, dtype=np.int64)
        ub = np.zeros((3, n), dtype=np.float32)
        refr = np.zeros(n, dtype=np.float32)
        inh_refr = np.zeros(n, dtype=np.float32)
        i_rec = np.zeros(n, dtype=np.float32)
        s_prev = np.zeros(n, dtype=np.float32)
        s = np.zeros(n, dtype=np.float32)
        si = np.zeros(n, dtype=np.float32)
        cnt = np.zeros(n, dtype=np.float32)
        thr = np.empty(n, dtype=np.float32)
        for j in range(n):
            thr[j] = theta[j] + v_th
        for b in range(c, n_img, n_par):
            n_sp = 0
            for m in range(img_ptr[b], img_ptr[b + 1]):
                row = pix[m]
                if not draw:
                    for t in range(n_steps):
                        if spikes[m, t]:
                            n_sp += 1
                            for j in range(n):
                                cur[t, j] += w[row, j]
                    continue
                # the spike times first, then the rows: two tight loops
                n_t = geometric_times(float(p[m]), key, m, times)
                n_sp += n_t
                for a in range(n_t):
                    ta = times[a]
                    for j in range(n):
                        cur[ta, j] += w[row, j]
            n_in_spikes[b] = n_sp
            v = v0[b].copy()
            if not inhibitory:  # the common case: one fused pass per step
                _infer_lateral(cur, v, thr, cnt, refr, i_rec, s, ex_c, w_lat, vq, ukey, b)
                for j in range(n):
                    counts[b, j] = cnt[j]
                continue
            inh_v = iv0[b].copy()
            th = theta.copy()
            for j in range(n):
                refr[j] = F32(0.0)
                inh_refr[j] = F32(0.0)
                i_rec[j] = F32(0.0)
                s_prev[j] = F32(0.0)
                cnt[j] = F32(0.0)
            for t in range(n_steps):
                if stochastic:
                    for j in range(n):
                        ub[0, j] = hash_uniform(ukey, t, b * n + j)
                        ub[1, j] = hash_uniform(ukey, t, (n_img + b) * n + j)
                i_in = cur[t]
                _exc_step(
                    i_in, 0, t, s, si, v, refr, th, cnt, i_rec, inh_v, inh_refr, s_prev,
                    ex_c, in_c, v_th, F32(1.0), F32(0.0), False, inhibitory,
                    w_lat, w_exc_inh, inh_thr, vq, tq, ub,
                )  # fmt: skip
                for j in range(n):
                    i_in[j] = F32(0.0)  # ready for the next image
            for j in range(n):
                counts[b, j] = cnt[j]


@njit(cache=True, nogil=True)
def geometric_times(pm, key, m, times):  # type: ignore[no-untyped-def]
    """Input ``m``'s Bernoulli spike train over ``len(times)`` steps, spiking at each step
    with probability ``pm`` (in (0, 1]): writes its spike steps, ascending, into ``times``
    and returns how many. Drawn by skipping: the gaps between spikes are geometric,
    ``floor(log(u) / log(1 - p)) + 1`` with ``u`` from :func:`hash_uniform` (key, m, k)
    for the k-th gap, so the cost follows the number of spikes, not of steps."""
    n_steps = times.shape[0]
    if pm >= 1.0:
        for t in range(n_steps):
            times[t] = t
        return n_steps
    inv = 1.0 / np.log1p(-pm)
    t = -1
    k = 0
    n_t = 0
    while True:
        u = 1.0 - float(hash_uniform(key, m, k))  # in (0, 1]
        k += 1
        t += int(np.floor(np.log(u) * inv)) + 1
        if t >= n_steps:
            return n_t
        times[n_t] = t
        n_t += 1


@njit(cache=True, nogil=True, parallel=True)
def geometric_spikes(p, key, n_steps):  # type: ignore[no-untyped-def]
    """Bernoulli spike trains [M, T] (bool) of :func:`geometric_times` for every input m
    (probability ``p[m]``), in parallel; the trains do not depend on the thread count."""
    m_total = p.shape[0]
    out = np.zeros((m_total, n_steps), dtype=np.bool_)
    for m in prange(m_total):
        times = np.empty(n_steps, dtype=np.int64)
        for a in range(geometric_times(float(p[m]), key, m, times)):
            out[m, times[a]] = True
    return out
