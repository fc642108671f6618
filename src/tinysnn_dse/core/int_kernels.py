"""The compiled inference of the integer datapath (:mod:`integer`; docs/model.md,
"Integer inference"): a batch of images in parallel threads, in int64 arithmetic on the
formats' codes. The input current of each image is summed first, as in
:func:`kernels.infer_batch` (:func:`kernels.image_current`, here over weight codes),
then the neurons run. The exported C (``tinysnn export``) computes the same numbers.
"""

from __future__ import annotations

import numpy as np

from tinysnn_dse.core.integer import (
    IC_DSH,
    IC_HI,
    IC_IDSH,
    IC_INHIB,
    IC_IREF,
    IC_IRESET,
    IC_IREST,
    IC_ITHR,
    IC_K,
    IC_LO,
    IC_MODE,
    IC_REF,
    IC_RESET,
    IC_REST,
    IC_SHW,
    IC_WEI,
    IC_WREC,
)
from tinysnn_dse.core.kernels import (
    M_SAT,
    hash_bits,
    image_current,
    image_key,
    njit,
    prange,
)

_SH24 = np.uint64(40)  # a uniform is the top 24 bits of hash_bits


@njit(cache=True, nogil=True, inline="always")
def _stoch_up(a, q, k, u24):  # type: ignore[no-untyped-def]
    """Whether stochastic rounding steps ``q = a >> k`` up: the remainder ``a - q 2**k``
    over ``2**k`` against the uniform ``u24 / 2**24``, compared exactly in integers."""
    r = a - (q << k)
    if k <= 24:
        return (r << (24 - k)) > u24
    return r > (u24 << (k - 24))


@njit(cache=True, nogil=True)
def _layer_step(v, refr, inp, t, thr, c, rest, dsh, ukey, row, s):  # type: ignore[no-untyped-def]
    """One step of a population: leak and integrate ``inp`` (accumulator units; only
    where not refractory), round onto the Vmem grid, clamp, fire where ``v >= thr``
    (reset, refractory), clear ``inp``. ``s`` receives the spikes (0/1); returns (spikes,
    clipped roundings)."""
    n = v.shape[0]
    k, mode, lo, hi = c[IC_K], c[IC_MODE], c[IC_LO], c[IC_HI]
    rest_k = rest << k
    half = (np.int64(1) << (k - 1)) if mode == 1 else np.int64(0)
    sat = 0
    n_fire = 0
    if mode == 2:
        for j in range(n):
            a = (v[j] - rest) * dsh + rest_k
            a = a + inp[j] if refr[j] <= 0 else a
            q = a >> k
            u = np.int64(hash_bits(ukey, t, row * n + j) >> _SH24)
            q = q + 1 if _stoch_up(a, q, k, u) else q
            x = min(max(q, lo), hi)
            sat += x != q
            v[j] = x
            n_fire += x >= thr[j]
            inp[j] = 0
    else:  # truncation (half 0) or nearest: branch-free, vectorizes
        for j in range(n):
            a = (v[j] - rest) * dsh + rest_k
            a = a + inp[j] if refr[j] <= 0 else a
            q = (a + half) >> k
            x = min(max(q, lo), hi)
            sat += x != q
            v[j] = x
            n_fire += x >= thr[j]
            inp[j] = 0
    if n_fire == 0:
        for j in range(n):
            s[j] = 0
            refr[j] -= 1
        return 0, sat
    reset, ref = c[IC_RESET], c[IC_REF]
    if row == 1:
        reset, ref = c[IC_IRESET], c[IC_IREF]
    for j in range(n):
        fire = v[j] >= thr[j]
        s[j] = 1 if fire else 0
        v[j] = reset if fire else v[j]
        refr[j] = ref if fire else refr[j] - 1
    return n_fire, sat


@njit(cache=True, nogil=True, parallel=True)
def infer_batch_int(w, trains, keys, n_steps, thr, images, c, n_threads):  # type: ignore[no-untyped-def]  # noqa: E501
    """Inference of a batch of images on the integer datapath of a design (constants
    ``c``, :meth:`integer.IntDesign.consts`): weight codes ``w`` [n_in, N] (int32 or
    int64; the current buffer takes its type), Vmem-unit thresholds ``thr`` [N] (int64).
    ``trains`` and ``keys[0]`` as in :func:`kernels.infer_batch`; ``keys[1]`` the batch's
    stochastic-rounding key, image b's being :func:`kernels.image_key` (keys[1], b), whose
    uniform for step t, layer l (0 excitatory, 1 inhibitory) and neuron j is the top 24
    bits of :func:`kernels.hash_bits` (image key, t, l * N + j). ``images``
    (:class:`kernels.Images`; ``v0`` and ``iv0`` unused: every potential starts at its
    resting level) receives counts, input spikes, pruned events and clipped roundings."""
    _, _, counts, n_in_spikes, meters, pruned, pruned_events = images
    key, ukey = keys[0], keys[1]
    n_img = counts.shape[0]
    n = w.shape[1]
    n_par = min(n_img, 4 * n_threads)
    inhibitory = c[IC_INHIB] != 0
    shw, wrec, wei, ithr = c[IC_SHW], c[IC_WREC], c[IC_WEI], c[IC_ITHR]
    for p in prange(n_par):
        cur = np.zeros((n_steps, n), dtype=w.dtype)
        times = np.zeros(n_steps, dtype=np.int64)
        v = np.empty(n, dtype=np.int64)
        refr = np.empty(n, dtype=np.int64)
        inp = np.zeros(n, dtype=np.int64)
        s = np.zeros(n, dtype=np.int64)
        vi = np.empty(n, dtype=np.int64)
        irefr = np.empty(n, dtype=np.int64)
        iinp = np.zeros(n, dtype=np.int64)
        si = np.zeros(n, dtype=np.int64)
        ithr_v = np.full(n, ithr, dtype=np.int64)
        cnt = np.zeros(n, dtype=np.int64)
        for b in range(p, n_img, n_par):
            n_sp, n_pr = image_current(b, trains, key, w, cur, times, pruned)
            n_in_spikes[b] = n_sp
            pruned_events[b] = n_pr
            bkey = image_key(ukey, b)
            sat = 0
            for j in range(n):
                v[j] = c[IC_REST]
                refr[j] = 0
                inp[j] = 0
                vi[j] = c[IC_IREST]
                irefr[j] = 0
                iinp[j] = 0
                s[j] = 0
                cnt[j] = 0
            for t in range(n_steps):
                for j in range(n):  # inp holds the recurrent input of the previous step
                    inp[j] += np.int64(cur[t, j]) << shw
                    cur[t, j] = 0
                n_fire, st = _layer_step(v, refr, inp, t, thr, c, c[IC_REST], c[IC_DSH],
                                         bkey, 0, s)  # fmt: skip
                sat += st
                if inhibitory:
                    n_inh, st = _layer_step(vi, irefr, iinp, t, ithr_v, c, c[IC_IREST],
                                            c[IC_IDSH], bkey, 1, si)  # fmt: skip
                    sat += st
                    for j in range(n):  # for the next step
                        inp[j] = (si[j] - n_inh) * wrec
                        iinp[j] = s[j] * wei
                        cnt[j] += s[j]
                elif n_fire:
                    for j in range(n):
                        inp[j] = (s[j] - n_fire) * wrec
                        cnt[j] += s[j]
            for j in range(n):
                counts[b, j] = cnt[j]
            meters[b, M_SAT] += sat
