"""The compiled inference of the integer datapath (:mod:`integer`; docs/model.md,
"Integer inference"): a batch of images in parallel threads, exact integer arithmetic on
the formats' codes. The input current of each image is summed first, as in
:func:`kernels.infer_batch` (:func:`kernels.image_times`, :func:`kernels.add_rows`, here
over weight codes, in 16 bits wherever no step's sum can pass 2**16 - 1:
:func:`_image_current`), then the neurons run. The exported C (``tinysnn export``)
computes the same numbers.

The state and constants are integers held either in int64 or, where every value of a
step stays below 2**53 (:meth:`integer.IntDesign.acc_bound_bits`, nearly every design),
in float64, where each operation on them is exact as well: the same numbers, but AVX2
multiplies 4 float64 lanes natively and int64 ones only in three instructions (measured:
the int64 form ran nearest-rounding inference at 0.78x the float32 datapath). The one
operation that differs between the two, the floor of a division by ``2**k``, is
:func:`floor_shift`; everything else is written once.
"""

from __future__ import annotations

import numpy as np

from tinysnn_dse.core import layout, step
from tinysnn_dse.core.kernels import (
    CODE_MAX,
    HAVE_NUMBA,
    add_rows,
    busiest_inputs,
    gate,
    hash_bits,
    image_key,
    image_times,
    leak,
    njit,
    prange,
    reset_to,
)
from tinysnn_dse.core.layout import (
    KC_DSH,
    KC_FLOOR,
    KC_HALF,
    KC_IDSH,
    KC_INHIBITORY,
    KC_INV_K,
    KC_IREF,
    KC_IRESET,
    KC_IREST,
    KC_IREST_K,
    KC_ITHR,
    KC_K,
    KC_KEEP,
    KC_P2A,
    KC_P2B,
    KC_P2K,
    KC_REF,
    KC_RESET,
    KC_REST,
    KC_REST_K,
    KC_ROUNDING,
    KC_SCALE_W,
    KC_V_HI,
    KC_V_LO,
    KC_WEI,
    KC_WREC,
    M_SAT,
)
from tinysnn_dse.core.modes import RoundMode

#: the layouts this file's kernels read (see :data:`kernels.LAYOUT_STAMP`)
LAYOUT_STAMP = "ba0fbfc1"
layout.require(LAYOUT_STAMP, __name__)
#: the neuron step's statements inlined here (see :data:`kernels.STEP_STAMP`)
STEP_STAMP = "a237eaa6"

round_up = njit(cache=True, nogil=True, inline="always")(step.round_up)
floor_at = njit(cache=True, nogil=True, inline="always")(step.floor_at)
clamp = njit(cache=True, nogil=True, inline="always")(step.clamp)

_SH24 = np.uint64(40)  # a uniform is the top 24 bits of hash_bits

ROUND_STOCHASTIC = RoundMode.STOCHASTIC.code  # KC_ROUNDING of stochastic rounding


def floor_shift(a, k, inv):  # type: ignore[no-untyped-def]
    """``floor(a / 2**k)``: ``a >> k`` for an int64, ``floor(a * inv)`` (``inv`` =
    2**-k, exact) for a float64 holding an integer."""
    return np.floor(a * inv) if isinstance(a, float) else a >> k


if HAVE_NUMBA:
    from numba import types
    from numba.extending import overload

    @overload(floor_shift)
    def _floor_shift(a, k, inv):  # type: ignore[no-untyped-def]
        if isinstance(a, types.Float):
            return lambda a, k, inv: np.floor(a * inv)
        return lambda a, k, inv: a >> k


@njit(cache=True, nogil=True, inline="always")
def _integrate(v, refr, inp, cur, scale_w, t, thr, cs, base, ukey, row, stoch):  # type: ignore[no-untyped-def]  # noqa: E501
    """The step of a population up to the threshold test, in place: the statements of
    :mod:`step` (leak, gated input ``inp + cur * scale_w``, the floor shift, with
    ``stoch`` (a literal) :func:`step.round_up` under uniforms hashed in place, else the
    nearest-rounding offset ``half`` added first, clamp), the test, the refractory count,
    clearing ``inp`` and ``cur``. ``base`` = (rest, dsh, rest * 2**k, floor) of the
    population.
    Returns (neurons at threshold, clipped roundings)."""
    n = v.shape[0]
    rest, dsh, rest_k, floor = base
    k, half, inv = np.int64(cs[KC_K]), cs[KC_HALF], cs[KC_INV_K]
    p2a, p2b, p2k, lo, hi = cs[KC_P2A], cs[KC_P2B], cs[KC_P2K], cs[KC_V_LO], cs[KC_V_HI]
    sat = 0
    n_fire = 0
    for j in range(n):
        a = gate(leak(v[j], rest, dsh, rest_k), inp[j] + cur[j] * scale_w, refr[j])
        if stoch:
            q = floor_shift(a, k, inv)
            u = np.int64(hash_bits(ukey, t, row * n + j) >> _SH24)
            q = round_up(a, q, u, p2k, p2a, p2b)
        else:  # truncation (half 0) or nearest: branch-free, vectorizes
            q = floor_shift(a + half, k, inv)
        x = clamp(q, lo, hi)
        sat += x != q
        x = floor_at(x, floor)  # the membrane floor (the inhibitory layer's: lo, none)
        v[j] = x
        n_fire += x >= thr[j]
        inp[j] = 0
        cur[j] = 0
        refr[j] -= 1  # set again by the caller where the neuron fires
    return n_fire, sat


@njit(cache=True, nogil=True, inline="always")
def _layer_step(v, refr, inp, cur, scale_w, t, thr, cs, base, ukey, row, s):  # type: ignore[no-untyped-def]  # noqa: E501
    """One step of a population (:func:`_integrate`), then where some fired: ``s``
    receives the spikes (0/1; else it is left as it was), and those neurons reset and
    start their refractory period. Returns (spikes, clipped roundings)."""
    if cs[KC_ROUNDING] == ROUND_STOCHASTIC:
        n_fire, sat = _integrate(v, refr, inp, cur, scale_w, t, thr, cs, base, ukey, row, True)
    else:
        n_fire, sat = _integrate(v, refr, inp, cur, scale_w, t, thr, cs, base, ukey, row, False)
    if n_fire == 0:  # most steps; ``s`` is left as it was (the caller knows)
        return 0, sat
    reset, ref, keep = cs[KC_RESET], cs[KC_REF], cs[KC_KEEP]
    if row == 1:
        reset, ref, keep = cs[KC_IRESET], cs[KC_IREF], 0  # the inhibitory layer: to its value
    for j in range(v.shape[0]):
        fire = v[j] >= thr[j]
        s[j] = 1 if fire else 0
        v[j] = reset_to(v[j], thr[j], reset, keep) if fire else v[j]
        refr[j] = ref if fire else refr[j]
    return n_fire, sat


@njit(cache=True, nogil=True, inline="always")
def _image_current(b, trains, key, w, narrow, cur, acc, tbuf, tcnt, per_step, pruned):  # type: ignore[no-untyped-def]  # noqa: E501
    """Image ``b``'s input current into ``cur`` [T, N] (zero on entry), as
    :func:`kernels.image_current` sums it, but in 16 bits where that is exact:
    ``narrow`` = (W's codes as uint16 [n_in, N], their largest code [1]; no rows where
    some code is negative or above :data:`kernels.CODE_MAX`). Codes are non-negative, so a
    step's partial sums never exceed its total, which is at most its input spikes times
    the largest code: where that bound of the image's busiest step fits 16 bits, the
    rows are summed into ``acc`` [T, N] (uint16, zero on entry and left so), twice the
    SIMD lanes of int32, and widened into ``cur``. The same integers either way. (The
    busiest step holds at least the mean, so where the mean cannot fit, the steps are
    not counted: W's 16-bit formats.)
    Returns (input spikes, pruned input spikes, whether it summed in 16 bits)."""
    n_sp, n_pr = image_times(b, trains, key, tbuf, tcnt, pruned)
    w16, cmax = narrow
    n_steps = cur.shape[0]
    # the busiest step holds at least the mean: where that cannot fit, skip the count
    fits = w16.shape[0] > 0 and n_sp * cmax[0] <= CODE_MAX * n_steps
    if fits:
        for t in range(n_steps):
            per_step[t] = 0
        for i in range(trains[0][b + 1] - trains[0][b]):
            for a in range(tcnt[i]):
                per_step[tbuf[i, a]] += 1
        busiest = 0
        for t in range(n_steps):
            busiest = max(busiest, per_step[t])
        fits = busiest * cmax[0] <= CODE_MAX
    if not fits:  # in the codes' type, read as uint16 where they are (fewer bytes)
        if w16.shape[0] > 0:
            add_rows(b, trains, w16, cur, tbuf, tcnt)
        else:
            add_rows(b, trains, w, cur, tbuf, tcnt)
        return n_sp, n_pr, False
    add_rows(b, trains, w16, acc, tbuf, tcnt)
    n = cur.shape[1]
    for t in range(cur.shape[0]):
        for j in range(n):
            cur[t, j] = acc[t, j]
            acc[t, j] = 0
    return n_sp, n_pr, True


@njit(cache=True, nogil=True, parallel=True)
def infer_batch_int(w, trains, keys, n_steps, thr, images, cs, n_threads, narrow):  # type: ignore[no-untyped-def]  # noqa: E501
    """Inference of a batch of images on the integer datapath of a design: weight codes
    ``w`` [n_in, N] (int32 or int64; the current buffer takes its type), Vmem-unit
    thresholds ``thr`` [N] and the constants ``cs`` [KC_LEN] (``layout.KC_*``), both in
    the state's dtype (int64, or float64 where exact; :func:`integer.kernel_consts`).
    ``trains`` and ``keys[0]`` as in :func:`kernels.infer_batch`; ``keys[1]`` the batch's
    stochastic-rounding key, image b's being :func:`kernels.image_key` (keys[1], b), whose
    uniform for step t, layer l (0 excitatory, 1 inhibitory) and neuron j is the top 24
    bits of :func:`kernels.hash_bits` (image key, t, l * N + j). ``images``
    (:class:`kernels.Images`; ``v0`` and ``iv0`` unused: every potential starts at its
    resting level) receives counts, input spikes, pruned events and clipped roundings.
    ``narrow``: W's codes in 16 bits, as :func:`_image_current` takes them
    (:func:`integer.narrow_codes`)."""
    _, _, counts, n_in_spikes, meters, pruned, pruned_events = images
    key, ukey = keys[0], keys[1]
    n_img = counts.shape[0]
    n = w.shape[1]
    n_par = min(n_img, 4 * n_threads)
    inhibitory = cs[KC_INHIBITORY] != 0
    scale_w, p2k = cs[KC_SCALE_W], cs[KC_P2K]
    wrec, wei = cs[KC_WREC] * p2k, cs[KC_WEI] * p2k  # Vmem codes to accumulator units
    exc = (cs[KC_REST], cs[KC_DSH], cs[KC_REST_K], cs[KC_FLOOR])
    inh = (cs[KC_IREST], cs[KC_IDSH], cs[KC_IREST_K], cs[KC_V_LO])
    rest, irest = exc[0], inh[0]
    n_act = busiest_inputs(trains[0])
    for p in prange(n_par):
        cur = np.zeros((n_steps, n), dtype=w.dtype)
        acc = np.zeros((n_steps if narrow[0].shape[0] > 0 else 0, n), dtype=np.uint16)
        tbuf = np.zeros((n_act, n_steps), dtype=np.int32)
        tcnt = np.zeros(n_act, dtype=np.int64)
        per_step = np.zeros(n_steps, dtype=np.int64)
        v = np.empty(n, dtype=thr.dtype)
        refr = np.empty(n, dtype=thr.dtype)
        inp = np.zeros(n, dtype=thr.dtype)
        s = np.zeros(n, dtype=thr.dtype)
        vi = np.empty(n, dtype=thr.dtype)
        irefr = np.empty(n, dtype=thr.dtype)
        iinp = np.zeros(n, dtype=thr.dtype)
        si = np.zeros(n, dtype=thr.dtype)
        ithr_v = np.full(n, cs[KC_ITHR], dtype=thr.dtype)
        no_cur = np.zeros(n, dtype=w.dtype)  # the inhibitory layer has no input current
        cnt = np.zeros(n, dtype=np.int64)
        for b in range(p, n_img, n_par):
            n_sp, n_pr, _ = _image_current(b, trains, key, w, narrow, cur, acc, tbuf, tcnt,
                                           per_step, pruned)  # fmt: skip
            n_in_spikes[b] = n_sp
            pruned_events[b] = n_pr
            bkey = image_key(ukey, b)
            sat = 0
            for j in range(n):
                v[j] = rest
                refr[j] = 0
                inp[j] = 0
                vi[j] = irest
                irefr[j] = 0
                iinp[j] = 0
                s[j] = 0
                cnt[j] = 0
            for t in range(n_steps):  # inp: the recurrent input of the previous step
                n_fire, st = _layer_step(v, refr, inp, cur[t], scale_w, t, thr, cs, exc, bkey, 0, s)
                sat += st
                if inhibitory:
                    n_inh, st = _layer_step(vi, irefr, iinp, no_cur, scale_w, t, ithr_v, cs, inh,
                                            bkey, 1, si)  # fmt: skip
                    sat += st
                    if n_inh:  # for the next step (left at 0 otherwise)
                        for j in range(n):
                            inp[j] = (si[j] - n_inh) * wrec
                    if n_fire:
                        for j in range(n):
                            iinp[j] = s[j] * wei
                            cnt[j] += np.int64(s[j])
                elif n_fire:
                    for j in range(n):
                        inp[j] = (s[j] - n_fire) * wrec
                        cnt[j] += np.int64(s[j])
            for j in range(n):
                counts[b, j] = cnt[j]
            meters[b, M_SAT] += sat
