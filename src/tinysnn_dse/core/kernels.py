"""Compiled kernels for the CPU fast path (learning and inference).

The reference path (:func:`tinysnn_dse.core.sim.simulate_reference`) issues ~25 tiny torch
ops per time step, and at 400 neurons their dispatch cost, not arithmetic, sets the
speed. Here Numba-compiled calls take Python out of the inner loop:

- :func:`learn_tinysnn`: a whole tinySNN-rule presentation (FP32 or deterministic weight
  rounding), input current from the active rows of W only, the rule applied in place.
  With stochastic weight rounding the caller runs its parts window by window
  (:func:`tinysnn_steps`, then :func:`tinysnn_rule` with W's uniforms drawn in between,
  as the reference draws them), then :func:`theta_decay`. Equal to the reference within
  float32 rounding (the summation order differs).
- :func:`learn_boosted`, :func:`learn_batch_boosted`: a training sample's
  presentations to one point or a design batch, DC15's boosted re-presentations
  included, each drawing its trains (where learning draws no torch uniforms: FP32 or
  deterministic rounding; nothing pruned).
- :func:`learn_stepwise`: a whole ``pair`` / ``sl-stdp`` presentation, the presynaptic
  traces read lazily.
- :func:`infer_batch`: inference of a batch of images in parallel threads; each image's
  input current for all steps is summed first (W is fixed), then the neurons run, with
  lateral inhibition in one fused pass per step (:func:`_infer_lateral`).

Shared layouts (the kernels' typed records; :mod:`marshal` packs them), declared once in
:mod:`layout`, whose indices this module imports:

- a fixed-point format is a float64 array of ``QP_LEN`` (:func:`quant.qparams`), read by
  the one fixed-point operation :func:`fxp` that every kernel calls (``QP_ON`` = 0: FP32);
  a point's four formats are the rows ``F_W`` (weights), ``F_V`` (Vmem), ``F_T`` (Vth) and
  ``F_A`` (the accumulator an ITQ threshold learns in) of an [F_LEN, QP_LEN] array ``fq``;
- the neuron state of a population is a float32 [S_LEN, N] array (rows ``S_*``), plus the
  float64 [N] threshold accumulator ``acc`` while thresholds learn under ITQ;
- the neuron and inhibition constants are a float32 [C_LEN] array (``C_*``);
- the hash keys of a presentation are an int64 [K_LEN] array (``K_*``);
- the learning parameters are float32 [LR_LEN] (tinySNN rule, ``LR_*``) or [SR_LEN]
  (per-step rules, ``SR_*``) arrays.

Thresholds (docs/model.md): a spike adds ``theta_plus`` to its neuron's threshold; the
decay ``exp(-T dt / tau_theta)`` is applied once per presentation of T steps, by
:func:`theta_decay`. A quantized threshold learns in ``acc`` (``F_A``: the threshold's
format with 16 more fractional bits) and the neuron compares against ``acc`` rounded to
the threshold's own format, so neither a decay far below one step nor a ``theta_plus``
off the grid is rounded away or drifts.

Random numbers come from the run's torch generator, in the order the reference path
draws them: single-point learning takes its Vmem rounding uniforms as one block draw
(equal to the same draws made one step at a time). Tie-breaks, threshold rounding, the
Vmem rounding of design batches and of inference, and W's stochastic rounding in
batches come from the counter-based :func:`hash_uniform` under keys drawn from that
generator, either materialised by :func:`hash_block` (the reference path gets the same
numbers) or computed in place.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinysnn_dse.core import layout, step
from tinysnn_dse.core.layout import (
    C_DECAY,
    C_FLOOR,
    C_I_DECAY,
    C_I_REF,
    C_I_RESET,
    C_I_REST,
    C_INH_THR,
    C_INHIB,
    C_KEEP,
    C_ONE_SPIKE,
    C_REF,
    C_THETA_PLUS,
    C_V_RESET,
    C_V_REST,
    C_V_TH,
    C_W_EXC_INH,
    C_W_LAT,
    F_A,
    F_T,
    F_V,
    F_W,
    K_LEN,
    K_TIE,
    K_VTH,
    K_W,
    LR_DT_TAU,
    LR_ETA,
    LR_S_TH,
    LR_W_MAX,
    M_HI,
    M_LO,
    M_SAT,
    M_TCLIP,
    M_TRACK,
    M_TUPD,
    QP_CUT,
    QP_EPS,
    QP_HI,
    QP_HI32,
    QP_INV,
    QP_LO,
    QP_NARROW,
    QP_ON,
    QP_STOCH,
    S_COUNTS,
    S_INHREFR,
    S_INHV,
    S_IREC,
    S_LEN,
    S_REFR,
    S_SPREV,
    S_THETA,
    S_V,
    SR_ETA_POST,
    SR_ETA_PRE,
    SR_ETA_SL,
    SR_W_MAX,
    SR_X_TAR,
)
from tinysnn_dse.core.modes import Rule

#: the layouts (core/layout.py) this file's kernels read; Numba's disk cache of them is
#: keyed on this file, so a changed layout is refused until this line is edited
LAYOUT_STAMP = "ba0fbfc1"
layout.require(LAYOUT_STAMP, __name__)
#: a digest of the neuron step's statements (core/step.py) this file's kernels inline, for
#: the same reason: tests/core/test_step.py fails until it is the statements' digest
STEP_STAMP = "a237eaa6"

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

# the neuron step (core/step.py), compiled inline into every loop below that runs it
leak = njit(cache=True, nogil=True, inline="always")(step.leak)
gate = njit(cache=True, nogil=True, inline="always")(step.gate)
reset_to = njit(cache=True, nogil=True, inline="always")(step.reset_to)
floor_at = njit(cache=True, nogil=True, inline="always")(step.floor_at)

# the per-step learning rules :func:`learn_stepwise` runs (``ModelConfig.rule``), each by
# its code; a rule not named here (nor ``tinysnn``, :func:`learn_tinysnn`) runs in the
# reference loop only
STEP_RULES = (Rule.PAIR, Rule.SL_STDP)
RULE_PAIR = Rule.PAIR.code
RULE_SL_STDP = Rule.SL_STDP.code
RULE_TINYSNN = Rule.TINYSNN.code

# the loop :func:`_infer_lateral` runs a step in, by the Vmem format: FP32; rounding in
# float64, deterministic or stochastic; the same in float32 arithmetic (narrow formats)
LOOP_FP32, LOOP_ROUND, LOOP_STOCH, LOOP_ROUND32, LOOP_STOCH32 = range(5)


class Point(NamedTuple):
    """A design point as the learning and neuron kernels read it (one typed record, so no
    kernel takes more than about ten arguments): state ``st`` [S_LEN, N] float32,
    threshold accumulators ``acc`` [N] float64, neuron constants ``nc`` [C_LEN] float32,
    formats ``fq`` [F_LEN, QP_LEN] float64, hash keys ``keys`` [K_LEN] int64 and the
    ``meter`` [M_LEN] float64 that counts what its quantizers did. A design batch passes
    one ``Point`` whose arrays have a leading K axis (``keys`` shared);
    :func:`learn_tinysnn_multi` takes point ``k`` out of it."""

    st: np.ndarray
    acc: np.ndarray
    nc: np.ndarray
    fq: np.ndarray
    keys: np.ndarray
    meter: np.ndarray


#: the columns of a :class:`Sample`'s keys: each presentation's trains, tie-break, Vmem
#: rounding, threshold rounding and weight rounding keys (0: not drawn)
BK_TRAINS, BK_TIE, BK_U, BK_VTH, BK_W = range(5)


class Sample(NamedTuple):
    """A training sample's draws as the boosted kernels (:func:`learn_boosted`,
    :func:`learn_batch_boosted`) read them: its non-zero inputs ``pix`` [M] (int64,
    ascending), their spike probabilities ``p`` [B, M] (float64) at each of the B
    possible presentations, and each presentation's keys ``keys`` [B, 5] (int64,
    columns ``BK_*``)."""

    pix: np.ndarray
    p: np.ndarray
    keys: np.ndarray


class BatchLog(NamedTuple):
    """What :func:`learn_batch_boosted` reports for a sample: each point's counts of its
    last presentation ``final`` [K, N] (float32), and per presentation the input spikes
    ``pre`` [B] (int64), each point's excitatory spikes ``post`` [B, K] (float32),
    updated columns ``cols`` [B, K] (int64) and whether it was presented ``active``
    [B, K] (bool)."""

    final: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    cols: np.ndarray
    active: np.ndarray


class Images(NamedTuple):
    """A batch of inference images' own arrays (:func:`infer_batch`): initial potentials
    ``v0`` / ``iv0`` [B, N] and the pruned synapses of each input ``pruned`` [n_in]
    (int64; [0] when nothing is pruned) in; spike ``counts`` [B, N], input spikes
    ``n_in_spikes`` [B], the synaptic events not performed (input spikes onto a pruned
    synapse) ``pruned_events`` [B] and ``meters`` [B, M_LEN] out."""

    v0: np.ndarray
    iv0: np.ndarray
    counts: np.ndarray
    n_in_spikes: np.ndarray
    meters: np.ndarray
    pruned: np.ndarray
    pruned_events: np.ndarray


def set_threads(n: int) -> None:
    """Use ``n`` threads for the parallel kernels (capped by numba's pool size)."""
    if HAVE_NUMBA:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


@njit(cache=True, nogil=True)
def fxp_code(x, inv, lo, hi, stoch, cut, u):  # type: ignore[no-untyped-def]
    """The integer code (float64) of ``x`` on a fixed-point grid, and whether it was
    clamped: ``y = x * inv`` (``inv`` = 1/eps), ``fl = floor(y)``, one step up where
    nearest rounding finds ``y >= fl + cut`` (``cut`` 1/2; inf for truncation, never) or,
    ``stoch``, the remainder ``y - fl`` exceeds the uniform ``u`` (the remainder is exact
    but for ``-1 < y < 0``, where ``y > u - 1`` is compared instead), then clamped to
    [lo, hi]. Every decision is an exact comparison and the body is branch-free, so hot
    loops that call it with their format's scalars hoisted vectorize. The one fixed-point
    operation of every kernel (method.md section 4); exact for every input whose
    ``x * inv`` is zero or a normal float64."""
    y = np.float64(x) * inv
    fl = np.floor(y)
    u64 = np.float64(u)
    rem = y > u64 - 1.0 if fl == -1.0 else y - fl > u64
    up = rem if stoch else y >= fl + cut
    code = fl + 1.0 if up else fl
    c = min(max(code, lo), hi)
    return c, c != code


@njit(cache=True, nogil=True)
def fxp_code32(x, inv, lo, hi, stoch, cut, u):  # type: ignore[no-untyped-def]
    """:func:`fxp_code` in float32 arithmetic (all arguments float32; ``hi`` the largest
    float32 at or below the top code, as :func:`grid_scalars` gives it), for any format
    with ``inv`` >= 1 (no negative fractional bits), of any width up to 32: exact there
    too. Scaling by a power of two >= 1 cannot underflow, so ``y`` and its floor are exact;
    a ``y`` that is not an integer is below 2**23 in magnitude, where ``fl + 1/2``, ``fl +
    1``, ``u - 1`` and the remainder are exact; an integer ``y`` (every float32 at or above
    2**23) is its own code, so no rounding step is taken there (``y != fl``), whatever
    ``fl + cut`` rounds to; the codes that result are float32 integers, so the clamp to
    ``hi`` equals the clamp to the top code. Twice the lanes of a float64 vector (the
    learning step's Vmem rounding, inference's narrow formats and the weight normalisation
    run it)."""
    one = F32(1.0)
    y = x * inv
    fl = np.floor(y)
    rem = y > u - one if fl == -one else y - fl > u
    up = rem if stoch else y >= fl + cut
    code = fl + one if up and y != fl else fl
    c = min(max(code, lo), hi)
    return c, c != code


@njit(cache=True, nogil=True)
def fxp(x, q, u):  # type: ignore[no-untyped-def]
    """``x`` on the grid of format ``q`` (a QP_LEN array, ``QP_ON`` != 0), exactly, as
    float64 (:func:`fxp_code` times eps)."""
    c, _ = fxp_code(x, q[QP_INV], q[QP_LO], q[QP_HI], q[QP_STOCH] != 0, q[QP_CUT], u)
    return c * q[QP_EPS]


@njit(cache=True, nogil=True)
def fxp_sat(x, q, u):  # type: ignore[no-untyped-def]
    """:func:`fxp` and whether the value saturated."""
    c, clip = fxp_code(x, q[QP_INV], q[QP_LO], q[QP_HI], q[QP_STOCH] != 0, q[QP_CUT], u)
    return c * q[QP_EPS], clip


@njit(cache=True, nogil=True)
def store32(y, q):  # type: ignore[no-untyped-def]
    """A grid value ``y`` (float64) as the float32 state holds it: the nearest float32,
    never above the format's ceiling (exact up to 24 significant bits)."""
    return min(F32(y), F32(q[QP_HI32]))


@njit(cache=True, nogil=True)
def fxp32(x, q, u):  # type: ignore[no-untyped-def]
    """:func:`fxp`, stored as float32 (:func:`store32`)."""
    return store32(fxp(x, q, u), q)


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True, inline="always")
def hash_bits(key, a, b):  # type: ignore[no-untyped-def]
    """64 random bits (uint64) that depend only on (``key``, ``a``, ``b``): SplitMix64's
    finaliser over the combined counter ``key + (a * 2654435761 + b + 1) * 0x9E3779B97F4A7C15``
    (arithmetic mod 2**64). Counter-based, so parallel threads draw the same numbers in
    any order; the exported C (``tsnn_hash``) computes the same."""
    z = (
        np.uint64(key)
        + (np.uint64(a) * np.uint64(2654435761) + np.uint64(b) + np.uint64(1)) * _GOLD
    )
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def hash_uniform(key, a, b):  # type: ignore[no-untyped-def]
    """A uniform float32 in [0, 1): the top 24 bits of :func:`hash_bits` (``key``, ``a``,
    ``b``) times 2**-24. ``key`` comes from the run's torch generator."""
    return F32(hash_bits(key, a, b) >> np.uint64(40)) * F32(5.9604645e-08)  # 2**-24


@njit(cache=True, nogil=True)
def image_key(ukey, b):  # type: ignore[no-untyped-def]
    """The stochastic-rounding key of image ``b`` of an inference batch presented under
    ``ukey``: :func:`hash_bits` (ukey, 0, b), as int64 (docs/model.md, "Integer
    inference")."""
    return np.int64(hash_bits(ukey, 0, b))


@njit(cache=True, nogil=True)
def u24_block(keys, n_steps, rows, n):  # type: ignore[no-untyped-def]
    """int64 [T, rows, B, N]: element (t, l, b, j) = the top 24 bits of :func:`hash_bits`
    (keys[b], t, l * n + j), the uniforms of the integer datapath's stochastic rounding."""
    out = np.empty((n_steps, rows, keys.shape[0], n), dtype=np.int64)
    for t in range(n_steps):
        for r in range(rows):
            for b in range(keys.shape[0]):
                for j in range(n):
                    out[t, r, b, j] = np.int64(hash_bits(keys[b], t, r * n + j) >> np.uint64(40))
    return out


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
def hash_row(key, a, n):  # type: ignore[no-untyped-def]
    """[n] float32 uniforms, element b = :func:`hash_uniform` (key, a, b)."""
    out = np.empty(n, dtype=np.float32)
    for b in range(n):
        out[b] = hash_uniform(key, a, b)
    return out


# ------------------------------------------------------------------------- thresholds


@njit(cache=True, nogil=True)
def theta_set(j, x, t, pt):  # type: ignore[no-untyped-def]
    """Threshold of neuron ``j`` learns the new value ``x`` (mV, ``v_th + theta``
    before rounding). FP32: ``theta = x - v_th``. Quantized: the accumulator takes ``x`` on
    its grid (``F_A``) and the neuron's threshold is the accumulator on the threshold's
    grid (``F_T``), both with the run's rounding; stochastic uniforms are
    :func:`hash_uniform` (key, t, 2j) and (key, t, 2j + 1) under ``keys[K_VTH]``. The
    point's meter counts the quantized updates and those the accumulator clipped (M_TUPD,
    M_TCLIP)."""
    theta, acc, v_th, fq, meter = pt.st[S_THETA], pt.acc, pt.nc[C_V_TH], pt.fq, pt.meter
    key = pt.keys[K_VTH]
    tq = fq[F_T]
    if tq[QP_ON] == 0:
        theta[j] = F32(x - v_th)
        return
    u1 = F32(0.0)
    u2 = F32(0.0)
    if tq[QP_STOCH] != 0:
        u1 = hash_uniform(key, t, 2 * j)
        u2 = hash_uniform(key, t, 2 * j + 1)
    a, clip = fxp_sat(x, fq[F_A], u1)
    acc[j] = a
    meter[M_TUPD] += 1.0
    meter[M_TCLIP] += clip
    theta[j] = F32(np.float64(store32(fxp(a, tq, u2), tq)) - v_th)


@njit(cache=True, nogil=True)
def theta_decay(pt, decay, t):  # type: ignore[no-untyped-def]
    """The threshold decay of one presentation of point ``pt``, for every neuron: ``theta
    <- theta * decay`` (``decay`` = exp(-T dt / tau_theta), float64), through
    :func:`theta_set` at counter ``t`` (the presentation's length, past every step's
    counter)."""
    theta, acc, v_th = pt.st[S_THETA], pt.acc, pt.nc[C_V_TH]
    quantized = pt.fq[F_T, QP_ON] != 0
    for j in range(theta.shape[0]):
        if quantized:
            theta_set(j, v_th + (acc[j] - v_th) * decay, t, pt)
        else:
            theta[j] = F32(np.float64(theta[j]) * decay)


@njit(cache=True, nogil=True, inline="always")
def on_grid(x, q64, q32, narrow, stoch, u):  # type: ignore[no-untyped-def]
    """A potential ``x`` (float32) on the Vmem grid and whether it clipped: :func:`fxp_code`
    with the format's scalars ``q64`` = (inv, lo, hi, eps, cut, top) hoisted by the caller,
    stored as float32 (:func:`store32`); ``narrow``, :func:`fxp_code32` with ``q32`` =
    (inv, lo, hi, eps, cut) instead. Called with literal ``narrow`` and ``stoch``, so each
    loop compiles only its own branch."""
    if narrow:
        inv, lo, hi, eps, cut = q32
        c, clip = fxp_code32(x, inv, lo, hi, stoch, cut, u)
        return c * eps, clip
    inv, lo, hi, eps, cut, top = q64
    c, clip = fxp_code(x, inv, lo, hi, stoch, cut, u)
    return min(F32(c * eps), top), clip


@njit(cache=True, nogil=True, inline="always")
def grid_scalars(vq):  # type: ignore[no-untyped-def]
    """A format's scalars as :func:`on_grid` takes them: (q64, q32)."""
    inv, lo, hi, eps, cut = vq[QP_INV], vq[QP_LO], vq[QP_HI], vq[QP_EPS], vq[QP_CUT]
    top = F32(vq[QP_HI32])  # the largest float32 at or below the top value
    q64 = (inv, lo, hi, eps, cut, top)
    # truncation's cut, inf, fits no float32 compare; 2 is never reached either. The top
    # code as the largest float32 at or below it (2**31 - 1 has none): the ceiling in
    # code units, exact, as inv is a power of two
    q32 = (F32(inv), F32(lo), top * F32(inv), F32(eps), F32(min(cut, 2.0)))
    return q64, q32


@njit(cache=True, nogil=True, inline="always")
def _integrate(v, refr, i_in, i_rec, theta, nc):  # type: ignore[no-untyped-def]
    """The excitatory step's leak and gated input ``i_in + i_rec`` (FP32) for every neuron
    in place; returns how many reach their threshold."""
    v_rest, decay, v_th, floor = nc[C_V_REST], nc[C_DECAY], nc[C_V_TH], nc[C_FLOOR]
    n_fire = 0
    for j in range(v.shape[0]):
        x = gate(leak(v[j], v_rest, decay, v_rest), i_in[j] + i_rec[j], refr[j])
        x = floor_at(x, floor)
        v[j] = x
        n_fire += x >= theta[j] + v_th
    return n_fire


@njit(cache=True, nogil=True, inline="always")
def _integrate_q(v, refr, i_in, i_rec, theta, nc, vq, u, meter):  # type: ignore[no-untyped-def]
    """:func:`_integrate` with Vmem rounded to ``vq`` (:func:`on_grid`, uniforms ``u``
    [N]; clipped roundings into ``meter``). A loop of its own rather than a flag of
    :func:`_integrate`: one body for both ran baseline inference at 0.93x (measured). One
    call of :func:`_integrate_grid` per (float32, stochastic) with literal flags, so each
    loop compiles only its own rounding: in float32 (twice the lanes) wherever that is
    exact, every format without negative fractional bits (:func:`fxp_code32`)."""
    q64, q32 = grid_scalars(vq)
    if vq[QP_INV] >= 1.0:
        if vq[QP_STOCH] != 0:
            n_fire, sat = _integrate_grid(v, refr, i_in, i_rec, theta, nc, q64, q32, True, True, u)
        else:
            n_fire, sat = _integrate_grid(v, refr, i_in, i_rec, theta, nc, q64, q32, True, False, u)
    elif vq[QP_STOCH] != 0:
        n_fire, sat = _integrate_grid(v, refr, i_in, i_rec, theta, nc, q64, q32, False, True, u)
    else:
        n_fire, sat = _integrate_grid(v, refr, i_in, i_rec, theta, nc, q64, q32, False, False, u)
    meter[M_SAT] += sat
    return n_fire


@njit(cache=True, nogil=True, inline="always")
def _integrate_grid(v, refr, i_in, i_rec, theta, nc, q64, q32, narrow, stoch, u):  # type: ignore[no-untyped-def]  # noqa: E501
    """:func:`_integrate_q`'s loop for one rounding (``narrow``, ``stoch`` literal);
    returns (neurons at threshold, clipped roundings)."""
    v_rest, decay, v_th, floor = nc[C_V_REST], nc[C_DECAY], nc[C_V_TH], nc[C_FLOOR]
    n_fire = 0
    sat = np.int32(0)
    for j in range(v.shape[0]):
        x = gate(leak(v[j], v_rest, decay, v_rest), i_in[j] + i_rec[j], refr[j])
        x, clip = on_grid(x, q64, q32, narrow, stoch, u[j])
        x = floor_at(x, floor)  # after the rounding: a floored value stays on the grid
        v[j] = x
        sat += np.int32(clip)
        n_fire += x >= theta[j] + v_th
    return n_fire, sat


# ------------------------------------------------------------------------- neuron step


@njit(cache=True, nogil=True)
def _track(v, meter):  # type: ignore[no-untyped-def]
    """The lowest and highest of ``v`` into ``meter`` (M_LO, M_HI)."""
    lo = meter[M_LO]
    hi = meter[M_HI]
    for j in range(v.shape[0]):
        lo = min(lo, np.float64(v[j]))
        hi = max(hi, np.float64(v[j]))
    meter[M_LO] = lo
    meter[M_HI] = hi


@njit(cache=True, nogil=True)
def state_rows(st):  # type: ignore[no-untyped-def]
    """The rows of a point's state [S_LEN, N] that :func:`exc_step` updates, as separate
    arrays: (v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev). The caller takes
    them once, outside its loop over steps; taken from the 2-D state inside the step, its
    loops vectorize worse (measured: inference 0.63x in :func:`_infer_lateral`)."""
    return (st[S_V], st[S_REFR], st[S_THETA], st[S_COUNTS], st[S_IREC], st[S_INHV],
            st[S_INHREFR], st[S_SPREV])  # fmt: skip


@njit(cache=True, nogil=True)
def exc_step(i_in, t, rows, pt, u, s, si):  # type: ignore[no-untyped-def]
    """:func:`_exc_body`, one step (the per-step rules and inference call it)."""
    return _exc_body(i_in, t, rows, pt, u, s, si)


@njit(cache=True, nogil=True)
def exc_steps(cur, t0, t1, rows, pt, u, s, si):  # type: ignore[no-untyped-def]
    """:func:`_exc_body` for steps ``t0 .. t1-1`` with input currents ``cur`` [t1-t0, N]
    and Vmem uniforms ``u`` [t1-t0, 2, N] (or [1, 2, N]): one call per update window,
    the step inlined (a call per step cost tinySNN learning about 5 %)."""
    per_step = u.shape[0] > 1
    for t in range(t0, t1):
        _exc_body(cur[t - t0], t, rows, pt, u[t - t0] if per_step else u[0], s, si)


@njit(cache=True, nogil=True, inline="always")
def _exc_body(i_in, t, rows, pt, u, s, si):  # type: ignore[no-untyped-def]
    """One step ``t`` of the excitatory layer (and the inhibitory one, ``nc[C_INHIB]``) of
    point ``pt`` (:class:`Point`) driven by the input current ``i_in`` [N]; fills the
    spikes ``s`` (``si``: inhibitory) and returns the number of excitatory spikes.
    ``rows`` = :func:`state_rows` of ``pt.st``, taken by the caller outside its loop.

    ``u`` [2, N]: uniforms for stochastic Vmem rounding (excitatory, inhibitory). The
    one-spike rule (``nc[C_ONE_SPIKE]``) keeps, of the neurons that fire, the one with the
    largest tie-break :func:`hash_uniform` (``keys[K_TIE]``, t, j), computed only on steps
    where several fire. A spike raises its neuron's threshold by ``nc[C_THETA_PLUS]``
    (:func:`theta_set`; 0 at inference, where thresholds are frozen). ``meter`` [M_LEN]
    counts clipped Vmem roundings and, in FP32, the lowest and highest potential.
    """
    nc, fq, keys, meter = pt.nc, pt.fq, pt.keys, pt.meter
    v, refr, theta, counts, i_rec, inh_v, inh_refr, s_prev = rows
    n = v.shape[0]
    v_th = nc[C_V_TH]
    inhibitory = nc[C_INHIB] != 0
    vq = fq[F_V]
    one = F32(1.0)
    zero = F32(0.0)
    if vq[QP_ON] != 0:
        n_fire = _integrate_q(v, refr, i_in, i_rec, theta, nc, vq, u[0], meter)
    else:
        n_fire = _integrate(v, refr, i_in, i_rec, theta, nc)
        if meter[M_TRACK] != 0:  # a separate pass: a min/max inside would not vectorize
            _track(v, meter)
    if n_fire == 0 and not inhibitory:  # most steps: no spike, nothing to reset or inhibit
        for j in range(n):
            s[j] = zero
            refr[j] = refr[j] - one
            i_rec[j] = zero
        return 0
    one_spike = nc[C_ONE_SPIKE] != 0
    best = F32(-1.0)
    best_j = -1
    n_spk = 0
    for j in range(n):
        fire = v[j] >= theta[j] + v_th
        s[j] = one if fire else zero
        if fire:
            n_spk += 1
            if one_spike:
                r = hash_uniform(keys[K_TIE], t, j)
                if r > best:
                    best = r
                    best_j = j
    if one_spike and n_spk > 1:
        for j in range(n):
            s[j] = one if j == best_j else zero
        n_spk = 1
    v_reset, ref_steps, keep = nc[C_V_RESET], nc[C_REF], nc[C_KEEP]
    for j in range(n):
        if s[j] > 0:
            v[j] = reset_to(v[j], theta[j] + v_th, v_reset, keep)
            refr[j] = ref_steps
        else:
            refr[j] = refr[j] - one
        counts[j] += s[j]
    w_lat = nc[C_W_LAT]
    if inhibitory:
        i_reset, i_ref = nc[C_I_RESET], nc[C_I_REF]
        inh_thr = nc[C_INH_THR]
        i_rest, i_decay, w_in = nc[C_I_REST], nc[C_I_DECAY], nc[C_W_EXC_INH]
        # integrate (and round) first, in a loop of its own per case, then fire; the loops
        # here rather than in a function of their own, which ran baseline inference at
        # 0.97x (measured)
        if vq[QP_ON] != 0:
            q64, q32 = grid_scalars(vq)
            stoch = vq[QP_STOCH] != 0
            sat = np.int32(0)
            for j in range(n):
                x = gate(leak(inh_v[j], i_rest, i_decay, i_rest), s_prev[j] * w_in, inh_refr[j])
                x, clip = on_grid(x, q64, q32, False, stoch, u[1, j])
                inh_v[j] = x
                sat += np.int32(clip)
            meter[M_SAT] += sat
        else:
            for j in range(n):
                inh_v[j] = gate(leak(inh_v[j], i_rest, i_decay, i_rest), s_prev[j] * w_in,
                                inh_refr[j])  # fmt: skip
            if meter[M_TRACK] != 0:
                _track(inh_v, meter)
        n_inh = 0
        for j in range(n):
            fire = inh_v[j] >= inh_thr
            si[j] = one if fire else zero
            n_inh += fire
            # the inhibitory layer resets to its value (a select; reset_to with keep 0
            # here ran baseline inference at 0.96x, measured)
            inh_v[j] = i_reset if fire else inh_v[j]
            inh_refr[j] = i_ref if fire else inh_refr[j] - one
        tot = F32(n_inh)
        for j in range(n):
            i_rec[j] = (si[j] - tot) * w_lat
            s_prev[j] = s[j]
    else:
        tot = F32(n_spk)
        for j in range(n):
            i_rec[j] = (s[j] - tot) * w_lat
    if nc[C_THETA_PLUS] != 0:
        _theta_spikes(s, t, pt)
    return n_spk


@njit(cache=True, nogil=True)
def _theta_spikes(s, t, pt):  # type: ignore[no-untyped-def]
    """Each neuron that spiked (``s``) raises its threshold by theta_plus."""
    theta, acc = pt.st[S_THETA], pt.acc
    v_th, theta_plus = pt.nc[C_V_TH], pt.nc[C_THETA_PLUS]
    quantized = pt.fq[F_T, QP_ON] != 0
    for j in range(s.shape[0]):
        if s[j] > 0:
            x = np.float64(theta[j]) + v_th + theta_plus
            if quantized:
                x = acc[j] + theta_plus
            theta_set(j, x, t, pt)


# ---------------------------------------------------------------------- learning: tinySNN


@njit(cache=True, nogil=True)
def tinysnn_steps(w, spk, pos, t0, t1, last, pt, u, codes):  # type: ignore[no-untyped-def]
    """Steps ``t0 .. t1-1`` of a tinySNN-rule learning presentation (W unchanged inside).

    ``spk`` = (iptr [M+1], times, rows [M]): input ``m`` is row ``rows[m]`` of W
    (ascending) and spikes at steps ``times[iptr[m] .. iptr[m+1]-1]`` (ascending); ``pos``
    [M] (int64, starting at ``iptr[:-1]``) is each input's next unread spike, advanced
    window by window. W is constant inside the window, so its input currents are summed
    first, into a [t1-t0, N] buffer, input by input: each active row of W is read once
    per window instead of once per spike, and every step still adds its rows in
    ascending input order, the same floats as a sum step by step. ``last`` [n_in] (int64,
    -1 = none yet) records each input's last spike step, for the traces. ``u``
    [t1-t0, 2, N] holds the Vmem rounding uniforms of these steps, or is [1, 2, N] when
    rounding is deterministic. ``pt`` as in :func:`exc_step`. ``codes``
    (:func:`weight_codes`, or :func:`no_codes`): where a window allows it, the current is
    summed as 16-bit integer codes (:func:`_current_codes`), the same floats.
    """
    iptr, times, rows = spk
    n = w.shape[1]
    s = np.zeros(n, dtype=np.float32)
    si = np.zeros(n, dtype=np.float32)
    if _codes_fit(codes, t0, t1):
        cur = _current_codes(codes, spk, pos, t0, t1, last)
    else:
        cur = np.zeros((t1 - t0, n), dtype=np.float32)
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
    exc_steps(cur, t0, t1, state_rows(pt.st), pt, u, s, si)


# 16-bit codes of W's active rows: a design point's W lies on a fixed-point grid (eps = 2**-f),
# so while every partial sum of a step's codes stays below 2**16 (< 2**24) the float32 sum
# of its rows is exact and equals the integer sum times eps: the same floats from half the
# bytes and twice the lanes (a step's sum checked against the window's busiest step)
CODE_MAX = 65535


@njit(cache=True, nogil=True)
def no_codes(n):  # type: ignore[no-untyped-def]
    """The ``codes`` of :func:`tinysnn_steps` that sum every window in float32."""
    return (np.zeros((0, n), dtype=np.uint16), np.full(1, CODE_MAX + 1, dtype=np.int64),
            np.zeros(0, dtype=np.int64), F32(0.0), F32(0.0))  # fmt: skip


@njit(cache=True, nogil=True)
def weight_codes(w, rows, wq, per_step):  # type: ignore[no-untyped-def]
    """The ``codes`` of :func:`tinysnn_steps` for W ``w`` [n_in, N] on the grid ``wq``:
    (c [M, N] uint16 = ``w[rows[m]] / eps``, cmax [1] = the largest code, ``per_step``
    [T] = each step's input spikes (the caller fills it), eps, 1/eps). Off (cmax above
    :data:`CODE_MAX`) where W is not quantized, or a value is not a code in
    0..CODE_MAX."""
    m_total = rows.shape[0]
    n = w.shape[1]
    c = np.zeros((m_total, n), dtype=np.uint16)
    cmax = np.full(1, CODE_MAX + 1, dtype=np.int64)
    if wq[QP_ON] == 0:
        return (c[:0], cmax, per_step, F32(0.0), F32(0.0))
    eps, inv = F32(wq[QP_EPS]), F32(wq[QP_INV])
    cmax[0] = 0
    for m in range(m_total):
        _store_codes(c, cmax, w, rows, m, np.arange(n), inv)
    return (c, cmax, per_step, eps, inv)


@njit(cache=True, nogil=True, inline="always")
def _store_codes(c, cmax, w, rows, m, cols, inv):  # type: ignore[no-untyped-def]
    """Row ``m``'s codes of the columns ``cols`` from W; a value that is no code in
    0..CODE_MAX turns the codes off (cmax)."""
    for j in cols:
        x = w[rows[m], j] * inv
        if x < 0 or x > CODE_MAX or x != np.floor(x):
            cmax[0] = CODE_MAX + 1
            return
        c[m, j] = np.uint16(x)
        cmax[0] = max(cmax[0], np.int64(x))


@njit(cache=True, nogil=True)
def sync_codes(codes, w, rows, cols):  # type: ignore[no-untyped-def]
    """The codes of the columns ``cols`` after the rule changed them in W."""
    c, cmax, _, _, inv = codes
    if c.shape[0] == 0 or cmax[0] > CODE_MAX:
        return
    for m in range(c.shape[0]):
        _store_codes(c, cmax, w, rows, m, cols, inv)


@njit(cache=True, nogil=True, inline="always")
def _codes_fit(codes, t0, t1):  # type: ignore[no-untyped-def]
    """Whether the codes hold every step of ``t0 .. t1-1``: the busiest step's spikes
    times the largest code within :data:`CODE_MAX`."""
    c, cmax, per_step, _, _ = codes
    if c.shape[0] == 0 or cmax[0] > CODE_MAX:
        return False
    busiest = 0
    for t in range(t0, t1):
        busiest = max(busiest, per_step[t])
    return busiest * cmax[0] <= CODE_MAX


@njit(cache=True, nogil=True)
def _current_codes(codes, spk, pos, t0, t1, last):  # type: ignore[no-untyped-def]
    """:func:`tinysnn_steps`' window current summed as codes (uint16, in the same order),
    then times eps: [t1-t0, N] float32."""
    c, _, _, eps, _ = codes
    iptr, times, rows = spk
    n = c.shape[1]
    acc = np.zeros((t1 - t0, n), dtype=np.uint16)
    for m in range(rows.shape[0]):
        a = pos[m]
        end = iptr[m + 1]
        while a < end and times[a] < t1:
            ta = times[a] - t0
            for j in range(n):
                acc[ta, j] += c[m, j]
            last[rows[m]] = times[a]
            a += 1
        pos[m] = a
    cur = np.empty((t1 - t0, n), dtype=np.float32)
    for ta in range(t1 - t0):
        for j in range(n):
            cur[ta, j] = F32(acc[ta, j]) * eps
    return cur


@njit(cache=True, nogil=True)
def tinysnn_rule(w, t, last, cols, s_max, lr, wq, uw, key, keep):  # type: ignore[no-untyped-def]
    """The tinySNN rule at update point ``t``: the columns ``cols`` (ascending; neurons
    that fired since the previous update point) move by ``k * eta * x_pre * (w_max - w)``
    with ``k = s_max / s_th`` and ``x_pre = exp(-(t - last) dt / tau)`` (0 for inputs
    that have not spiked), then are clipped and put on the weight grid ``wq``. ``lr`` =
    (eta, s_th, w_max, dt/tau); ``uw`` [n_in, len(cols)] the uniforms of stochastic
    weight rounding, in the reference's order, or (a [1, 1] array) take them from
    :func:`hash_uniform` with ``key`` (batched design points). ``keep`` [n_in, N]
    (float32 0/1) re-zeroes the pruned synapses of each updated column, or is [0, 0]."""
    n_in, n = w.shape
    eta, s_th, w_max, dt_tau = lr[LR_ETA], lr[LR_S_TH], lr[LR_W_MAX], lr[LR_DT_TAU]
    coef = F32((float(s_max) / s_th) * eta)
    stochastic = wq[QP_ON] != 0 and wq[QP_STOCH] != 0
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
        if keep.shape[0] == n_in:
            for i in range(n_in):
                w[i, j] *= keep[i, j]


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
def steps_of(iptr, times, rows, n_steps):  # type: ignore[no-untyped-def]
    """Trains input by input (:func:`spikes_by_input`'s (iptr, times), rows ``rows``
    ascending) as :func:`learn_stepwise` reads them: CSR (ptr [T+1], idx), inputs
    ascending within each step."""
    ptr = np.zeros(n_steps + 1, dtype=np.int64)
    for a in range(times.shape[0]):
        ptr[times[a] + 1] += 1
    for t in range(n_steps):
        ptr[t + 1] += ptr[t]
    fill = ptr[:-1].copy()
    idx = np.empty(times.shape[0], dtype=np.int64)
    for m in range(rows.shape[0]):
        for a in range(iptr[m], iptr[m + 1]):
            t = times[a]
            idx[fill[t]] = rows[m]
            fill[t] += 1
    return ptr, idx


@njit(cache=True, nogil=True)
def learn_tinysnn(w, spk, n_steps, window, pt, lr, u, decay, keep):  # type: ignore[no-untyped-def]
    """:func:`learn_tinysnn_codes`, every window's current summed in float32."""
    return learn_tinysnn_codes(w, spk, n_steps, window, pt, lr, u, decay, keep,
                               no_codes(w.shape[1]))  # fmt: skip


@njit(cache=True, nogil=True)
def learn_tinysnn_codes(w, spk, n_steps, window, pt, lr, u, decay, keep, codes):  # type: ignore[no-untyped-def]  # noqa: E501
    """A whole tinySNN-rule learning presentation in one call, updating ``w`` [n_in, N]
    and the state in place: :func:`tinysnn_steps` over each window of ``window`` steps,
    :func:`tinysnn_rule` at its last step, then :func:`theta_decay` (``decay``).
    ``u`` [T, 2, N] or [1, 2, N] as there. Stochastic weight rounding takes
    :func:`hash_uniform` numbers under ``keys[K_W]`` (the single-point path rounds W
    stochastically window by window instead). The point's meter accumulates what the
    quantizers did (:func:`exc_step`). ``keep``: as :func:`tinysnn_rule`. ``codes``: as
    :func:`tinysnn_steps` (kept in step with W's updated columns). Returns the number of
    columns updated."""
    n_in, n = w.shape
    last = np.full(n_in, -1, dtype=np.int64)
    pos = spk[0][:-1].copy()
    counts = pt.st[S_COUNTS]
    at_update = counts.copy()
    per_step = u.shape[0] > 1
    uw = np.zeros((1, 1), dtype=np.float32)
    wq = pt.fq[F_W]
    n_cols = 0
    for t0 in range(0, n_steps, window):
        t1 = min(t0 + window, n_steps)
        tinysnn_steps(w, spk, pos, t0, t1, last, pt, u[t0:t1] if per_step else u, codes)
        s_max = counts.max()
        if s_max > 0:
            cols = np.nonzero(counts - at_update > 0)[0]
            n_cols += cols.shape[0]
            tinysnn_rule(w, t1 - 1, last, cols, s_max, lr, wq, uw, pt.keys[K_W], keep)
            sync_codes(codes, w, spk[2], cols)
        at_update[:] = counts
    theta_decay(pt, decay, n_steps)
    return n_cols


@njit(cache=True, nogil=True)
def learn_boosted(w, sample, n_steps, window, pt, rule, decay, min_spikes, log):  # type: ignore[no-untyped-def]  # noqa: E501
    """One training sample's presentations in one call: DC15's boosting loop of
    :func:`sim.train_sample` for a point whose learning draws no uniforms (FP32, or
    deterministic rounding), unpruned. Presentation ``b`` draws input m's train by
    :func:`geometric_times` with probability ``p[b, m]`` under ``keys[b, BK_TRAINS]``
    (``sample`` = :class:`Sample`; the trains :func:`encoding.skip_trains` draws; input m
    is row ``pix[m]`` of W) and takes its tie-breaks under ``keys[b, BK_TIE]``, starts
    from ``pt.st``'s potentials (the thresholds carried over) and runs the rule ``rule`` =
    (code, rates, traces, trace decay): :func:`learn_tinysnn` (code
    :data:`RULE_TINYSNN`) or :func:`learn_stepwise` (pair, SL-STDP; the rates, traces and
    decay as there). The loop ends at the first
    presentation with at least ``min_spikes`` excitatory spikes (or at once when
    ``min_spikes`` <= 0), or after the last row of ``p``. ``w`` and ``pt``'s thresholds
    and accumulators are updated in place; ``pt.st`` ends as the last presentation left
    it. ``log`` [rows of p, 3] receives each presentation's input spikes, excitatory
    spikes and updated columns. Returns the number of presentations."""
    pix, p, keys = sample
    code, lr, traces, trace_decay = rule
    m_total = pix.shape[0]
    levels = p.shape[0]
    st = pt.st
    start = st.copy()  # each presentation's initial potentials
    times = np.empty(m_total * n_steps + 1, dtype=np.int64)
    iptr = np.zeros(m_total + 1, dtype=np.int64)
    u = np.zeros((1, 2, st.shape[1]), dtype=np.float32)
    keep = np.zeros((0, 0), dtype=np.float32)
    for b in range(levels):
        a = 0
        for m in range(m_total):
            a += geometric_times(float(p[b, m]), keys[b, BK_TRAINS], m, times[a : a + n_steps])
            iptr[m + 1] = a
        theta = st[S_THETA].copy()
        st[:] = start
        st[S_THETA] = theta
        pt.keys[K_TIE] = keys[b, BK_TIE]
        n_cols = 0
        if code == RULE_TINYSNN:
            n_cols = learn_tinysnn(w, (iptr, times[:a], pix), n_steps, window, pt, lr, u, decay,
                                   keep)  # fmt: skip
        else:
            csr = steps_of(iptr, times[:a], pix, n_steps)
            learn_stepwise(w, csr, traces, code, lr, pt, u, trace_decay, decay, keep)
        n_post = st[S_COUNTS].sum()
        log[b, 0] = a
        log[b, 1] = n_post
        log[b, 2] = n_cols
        if min_spikes <= 0 or n_post >= min_spikes:
            return b + 1
    return levels


@njit(cache=True, nogil=True, parallel=True)
def learn_tinysnn_multi(w, active, spk, n_steps, window, pts, lr, u, decay, n_cols, keeps):  # type: ignore[no-untyped-def]  # noqa: E501
    """One presentation of shared input spikes to K design points at once, in parallel
    threads: :func:`learn_tinysnn` for every point ``k`` with ``active[k]``. Arrays with a
    leading K axis hold each point's own weights ``w`` [K, n_in, N], learning parameters
    ``lr`` [K, LR_LEN] and, in ``pts`` (:class:`Point`), state [K, S_LEN, N], accumulators
    [K, N], constants [K, C_LEN] (the learning parameters a batch may vary among them),
    formats [K, F_LEN, QP_LEN] and meters [K, M_LEN] (what each point's quantizers did);
    the spikes, ``pts.keys`` and the Vmem rounding uniforms are common to all points.
    ``n_cols`` [K] accumulates the updated columns. ``keeps`` [K, n_in, N] (float32 0/1):
    each point's retained synapses (STDP pruning), or [0, 0, 0] when none prunes."""
    none = np.zeros((0, 0), dtype=np.float32)
    for k in prange(w.shape[0]):
        if active[k]:
            pt = Point(pts.st[k], pts.acc[k], pts.nc[k], pts.fq[k], pts.keys, pts.meter[k])
            keep = keeps[k] if keeps.shape[0] > 0 else none
            n_cols[k] += learn_tinysnn(w[k], spk, n_steps, window, pt, lr[k], u, decay, keep)


@njit(cache=True, nogil=True, parallel=True)
def learn_batch_boosted(w, sample, n_steps, window, pts, lr, decay, n_cols, min_spikes, log):  # type: ignore[no-untyped-def]  # noqa: E501
    """One training sample's presentations to K design points in one call: the boosting
    loop of :meth:`batch.DesignBatch.train_sample` (CPU, nothing pruned). Presentation
    ``b`` draws the shared trains as :func:`learn_boosted` does (``sample`` =
    :class:`Sample`), the Vmem uniforms where ``keys[b, BK_U]`` is set (the block
    :func:`hash_block` (key, T, 2N) as [T, 2, N]), takes the other keys of its row, and
    presents them to the points still active, from the state ``pts.st`` [K, S_LEN, N]
    holds at entry (each point's thresholds carried over), as
    :func:`learn_tinysnn_multi`. A point stays active while its presentation drew fewer
    than ``min_spikes`` excitatory spikes (all stop after the first when ``min_spikes``
    <= 0). Fills ``log`` (:class:`BatchLog`). Returns the number of presentations."""
    pix, p, keys = sample
    final, log_pre, log_post, log_cols, log_active = log
    k_pts = w.shape[0]
    m_total = pix.shape[0]
    levels = p.shape[0]
    n = w.shape[2]
    start = pts.st.copy()
    times = np.empty(m_total * n_steps + 1, dtype=np.int64)
    iptr = np.zeros(m_total + 1, dtype=np.int64)
    active = np.ones(k_pts, dtype=np.bool_)
    none = np.zeros((0, 0), dtype=np.float32)
    no_u = np.zeros((1, 2, n), dtype=np.float32)
    pk = np.zeros(K_LEN, dtype=np.int64)
    per_step = np.zeros(n_steps, dtype=np.int64)  # each presentation's input spikes a step
    codes = [weight_codes(w[k], pix, pts.fq[k, F_W], per_step) for k in range(k_pts)]
    for b in range(levels):
        a = 0
        for m in range(m_total):
            a += geometric_times(float(p[b, m]), keys[b, BK_TRAINS], m, times[a : a + n_steps])
            iptr[m + 1] = a
        spk = (iptr, times[:a], pix)
        per_step[:] = 0
        for i in range(a):
            per_step[times[i]] += 1
        u = no_u
        if keys[b, BK_U] != 0:
            u = hash_block(keys[b, BK_U], n_steps, 2 * n).reshape((n_steps, 2, n))
        pk[K_TIE] = keys[b, BK_TIE]
        pk[K_VTH] = keys[b, BK_VTH]
        pk[K_W] = keys[b, BK_W]
        log_pre[b] = a
        for k in prange(k_pts):
            if active[k]:
                st = pts.st[k]
                theta = st[S_THETA].copy()
                st[:] = start[k]
                st[S_THETA] = theta
                pt = Point(st, pts.acc[k], pts.nc[k], pts.fq[k], pk, pts.meter[k])
                c = learn_tinysnn_codes(w[k], spk, n_steps, window, pt, lr[k], u, decay, none,
                                        codes[k])  # fmt: skip
                n_cols[k] += c
                log_cols[b, k] = c
                log_post[b, k] = st[S_COUNTS].sum()
                log_active[b, k] = True
                final[k] = st[S_COUNTS]
        if min_spikes <= 0:
            return b + 1
        more = False
        for k in range(k_pts):
            active[k] = active[k] and log_post[b, k] < min_spikes
            more = more or active[k]
        if not more:
            return b + 1
    return levels


@njit(cache=True, nogil=True, parallel=True)
def normalize_multi(w, norm, w_max, wq, key):  # type: ignore[no-untyped-def]
    """Weight normalisation of K design points in parallel: each column of ``w[k]``
    [n_in, N] rescaled to sum to ``norm[k]``, clipped to [0, w_max], then put on the point's
    weight grid ``wq[k]`` (:func:`fxp`; stochastic rounding with :func:`hash_uniform`
    under ``key``). One loop per rounding case, so that they vectorize."""
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
        if q[QP_ON] == 0:  # FP32
            for i in range(n_in):
                for j in range(n):
                    wk[i, j] = min(max(wk[i, j] * col[j], zero), w_max)
            continue
        stoch = q[QP_STOCH] != 0
        if q[QP_NARROW] != 0:  # float32: exact here, and twice the lanes
            inv, lo, hi = F32(q[QP_INV]), F32(q[QP_LO]), F32(q[QP_HI])
            eps, cut = F32(q[QP_EPS]), F32(min(q[QP_CUT], 2.0))  # inf fits no float32 cut
            if stoch:
                for i in range(n_in):
                    for j in range(n):
                        r = hash_uniform(key, 2147483647, i * n + j)
                        x = min(max(wk[i, j] * col[j], zero), w_max)
                        wk[i, j] = fxp_code32(x, inv, lo, hi, True, cut, r)[0] * eps
            else:
                for i in range(n_in):
                    for j in range(n):
                        x = min(max(wk[i, j] * col[j], zero), w_max)
                        wk[i, j] = fxp_code32(x, inv, lo, hi, False, cut, zero)[0] * eps
            continue
        inv64, lo64, hi64, eps64, cut64 = q[QP_INV], q[QP_LO], q[QP_HI], q[QP_EPS], q[QP_CUT]
        top = F32(q[QP_HI32])
        for i in range(n_in):
            for j in range(n):
                r = hash_uniform(key, 2147483647, i * n + j) if stoch else zero
                x = min(max(wk[i, j] * col[j], zero), w_max)
                c, _ = fxp_code(x, inv64, lo64, hi64, stoch, cut64, r)
                wk[i, j] = min(F32(c * eps64), top)


# -------------------------------------------------------------- learning: per-step rules


@njit(cache=True, nogil=True)
def learn_stepwise(w, csr, traces, rule, lr, pt, u, trace_decay, decay, keep):  # type: ignore[no-untyped-def]  # noqa: E501
    """A whole learning presentation for the per-step rules ``pair`` (``rule`` =
    :data:`RULE_PAIR`) and ``sl-stdp`` (:data:`RULE_SL_STDP`), updating ``w`` [n_in, N]
    and the state in place, then :func:`theta_decay`.

    Input spikes come as CSR rows (``csr`` = (ptr [T+1], idx)): the active inputs of each
    step, so the input current sums only those rows of W. The presynaptic traces are read
    where the rule needs them, lazily: input i's trace at step t is ``traces[t - last_i]``
    (``last_i`` its latest spike step, this one included; 0 before its first spike), with
    ``traces`` [T] = :func:`rules.trace_table`, the same floats as
    :func:`rules.presyn_traces`'s [T, n_in] block, which cost the presentation more than
    this kernel did. ``lr`` = (eta_pre, eta_post, eta_sl, x_tar, w_max); weights are
    rounded deterministically (``fq[F_W]``). ``u`` [T, 2, N] or [1, 2, N]: Vmem rounding
    uniforms, as in :func:`tinysnn_steps`.
    ``keep`` [n_in, N] (float32 0/1, or [0, 0]): the step's updated rows and columns
    have their pruned synapses re-zeroed before the next step reads W.
    """
    ptr, idx = csr
    masked = keep.shape[0] == w.shape[0]
    n_in, n = w.shape
    eta_pre, eta_post, eta_sl = lr[SR_ETA_PRE], lr[SR_ETA_POST], lr[SR_ETA_SL]
    x_tar, w_max = lr[SR_X_TAR], lr[SR_W_MAX]
    wq = pt.fq[F_W]
    rows = state_rows(pt.st)
    s = np.zeros(n, dtype=np.float32)
    si = np.zeros(n, dtype=np.float32)
    i_in = np.zeros(n, dtype=np.float32)
    x_post = np.zeros(n, dtype=np.float32)
    b0 = np.zeros(n, dtype=np.float32)
    per_step = u.shape[0] > 1
    zero = F32(0.0)
    n_steps = ptr.shape[0] - 1
    last = np.full(n_in, -1, dtype=np.int64)
    x_pre = np.zeros(n_in, dtype=np.float32)
    for t in range(n_steps):
        for j in range(n):
            i_in[j] = zero
        for a in range(ptr[t], ptr[t + 1]):
            row = idx[a]
            last[row] = t
            for j in range(n):
                i_in[j] += w[row, j]
        n_spk = exc_step(i_in, t, rows, pt, u[t] if per_step else u[0], s, si)
        for j in range(n):
            x_post[j] = F32(1.0) if s[j] > 0 else x_post[j] * trace_decay
        # the traces the rule reads this step: every input's where a neuron fired (its
        # column moves), else only the active inputs' (their rows move)
        if n_spk > 0:
            for i in range(n_in):
                x_pre[i] = traces[t - last[i]] if last[i] >= 0 else zero
        else:
            for a in range(ptr[t], ptr[t + 1]):
                x_pre[idx[a]] = traces[0]
        if rule == RULE_PAIR:  # rows of active inputs, columns of spiking neurons
            for j in range(n):
                b0[j] = x_post[j] * -eta_pre
            for a in range(ptr[t], ptr[t + 1]):
                i = idx[a]
                xi = x_pre[i]
                for j in range(n):
                    w[i, j] = _clip_q(w[i, j] + (b0[j] + xi * (s[j] * eta_post)), w_max, wq)
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
            if masked:
                for a in range(ptr[t], ptr[t + 1]):
                    i = idx[a]
                    for j in range(n):
                        w[i, j] *= keep[i, j]
                if n_spk > 0:
                    for j in range(n):
                        if s[j] > 0:
                            for i in range(n_in):
                                w[i, j] *= keep[i, j]
        elif rule == RULE_SL_STDP and n_spk > 0:  # columns of spiking neurons
            for j in range(n):
                if s[j] > 0:
                    for i in range(n_in):
                        d = x_pre[i] - x_tar
                        wij = w[i, j]
                        bound = (w_max - wij) if d >= 0 else wij
                        w[i, j] = _clip_q(wij + eta_sl * d * bound, w_max, wq)
                    if masked:
                        for i in range(n_in):
                            w[i, j] *= keep[i, j]
    theta_decay(pt, decay, n_steps)


@njit(cache=True, nogil=True)
def _clip_q(x, w_max, wq, u=F32(0.0)):  # type: ignore[no-untyped-def]
    """Clip a weight to [0, w_max], then round it to ``wq`` (``u``: stochastic uniform);
    branch-free but for the format, so loops over it vectorize."""
    x = min(max(x, F32(0.0)), w_max)
    return fxp32(x, wq, u) if wq[QP_ON] != 0 else x


# ------------------------------------------------------------------------------ inference


@njit(cache=True, nogil=True, inline="always")
def _lateral_pass(t, cur, rows, thr, nc, q, quant, narrow, stoch, ukey, b):  # type: ignore[no-untyped-def]  # noqa: E501
    """Step ``t`` of :func:`_infer_lateral` up to the threshold test, for every neuron:
    leak, gated input, rounding onto the Vmem grid (``quant``; ``narrow`` in float32;
    ``stoch`` with uniforms hashed in place), the test, the refractory count and clearing
    the currents, in one pass. ``quant``, ``narrow`` and ``stoch`` are literals at every
    call, so each loop is compiled branch-free (the deterministic ones vectorize).
    Returns (neurons at threshold, clipped roundings)."""
    v, _, refr, i_rec = rows
    n = v.shape[0]
    rest, decay, floor = nc[C_V_REST], nc[C_DECAY], nc[C_FLOOR]
    q64, q32 = q
    one = F32(1.0)
    zero = F32(0.0)
    n_fire = 0
    sat = np.int32(0)
    for j in range(n):
        x = gate(leak(v[j], rest, decay, rest), cur[t, j] + i_rec[j], refr[j])
        if quant:
            r = hash_uniform(ukey, t, b * n + j) if stoch else zero
            x, clip = on_grid(x, q64, q32, narrow, stoch, r)
            sat += np.int32(clip)
        x = floor_at(x, floor)
        v[j] = x
        n_fire += x >= thr[j]
        refr[j] = refr[j] - one
        i_rec[j] = zero
        cur[t, j] = zero
    return n_fire, sat


@njit(cache=True, nogil=True)
def _infer_lateral(cur, rows, thr, s, nc, vq, ukey, b, meter):  # type: ignore[no-untyped-def]
    """One image's inference steps with direct lateral inhibition (theta frozen, no
    one-spike rule): what :func:`exc_step` computes for this case, the same floats, each
    step's integration fused into one pass (:func:`_lateral_pass`). ``cur`` [T, N] holds
    the input current of each step (cleared as it is read); ``thr`` = theta + v_th;
    ``rows`` = (v, cnt, refr, i_rec), rows of the state (potentials in, initial values;
    ``cnt`` receives the spike counts), passed as separate arrays: taken from the 2-D state
    inside, the loops below lose their vectorization (inference 0.63x, measured);
    ``ukey`` as in :func:`infer_batch` (image ``b``); ``meter`` [M_LEN] as in
    :func:`exc_step`."""
    v, cnt, refr, i_rec = rows
    n = v.shape[0]
    n_steps = cur.shape[0]
    v_reset, ref_steps, w_lat, keep = nc[C_V_RESET], nc[C_REF], nc[C_W_LAT], nc[C_KEEP]
    one = F32(1.0)
    zero = F32(0.0)
    stoch = vq[QP_STOCH] != 0
    if vq[QP_ON] == 0:
        loop = LOOP_FP32
    elif vq[QP_NARROW] != 0:  # float32 arithmetic is exact for the format
        loop = LOOP_STOCH32 if stoch else LOOP_ROUND32
    else:
        loop = LOOP_STOCH if stoch else LOOP_ROUND
    q = grid_scalars(vq)
    track = meter[M_TRACK] != 0
    sat = np.int32(0)
    for j in range(n):
        refr[j] = zero
        i_rec[j] = zero
        cnt[j] = zero
    for t in range(n_steps):
        # one call per loop kind, each with literal flags (one pass, five compiled loops)
        if loop == LOOP_FP32:
            n_fire, st = _lateral_pass(t, cur, rows, thr, nc, q, False, False, False, ukey, b)
        elif loop == LOOP_ROUND:
            n_fire, st = _lateral_pass(t, cur, rows, thr, nc, q, True, False, False, ukey, b)
        elif loop == LOOP_STOCH:
            n_fire, st = _lateral_pass(t, cur, rows, thr, nc, q, True, False, True, ukey, b)
        elif loop == LOOP_ROUND32:
            n_fire, st = _lateral_pass(t, cur, rows, thr, nc, q, True, True, False, ukey, b)
        else:
            n_fire, st = _lateral_pass(t, cur, rows, thr, nc, q, True, True, True, ukey, b)
        sat += st
        if track:  # a separate pass: a min/max inside would not vectorize
            _track(v, meter)
        if n_fire == 0:
            continue
        for j in range(n):
            if v[j] >= thr[j]:
                s[j] = one
                v[j] = reset_to(v[j], thr[j], v_reset, keep)
                refr[j] = ref_steps
                cnt[j] += one
            else:
                s[j] = zero
        tot = F32(n_fire)
        for j in range(n):
            i_rec[j] = (s[j] - tot) * w_lat
    meter[M_SAT] += sat


@njit(cache=True, nogil=True, inline="always")
def image_current(b, trains, key, w, cur, tbuf, tcnt, pruned):  # type: ignore[no-untyped-def]
    """Image ``b``'s input current of every step into ``cur`` [T, N] (zero on entry):
    :func:`image_times`, then :func:`add_rows`. Returns (input spikes, input spikes onto
    the pruned synapses counted in ``pruned`` [n_in], which is empty when nothing is
    pruned). Generic over the dtypes of ``w`` and ``cur`` (float32, or the integer
    datapath's codes)."""
    n_sp, n_pr = image_times(b, trains, key, tbuf, tcnt, pruned)
    add_rows(b, trains, w, cur, tbuf, tcnt)
    return n_sp, n_pr


@njit(cache=True, nogil=True, inline="always")
def image_times(b, trains, key, tbuf, tcnt, pruned):  # type: ignore[no-untyped-def]
    """Image ``b``'s input spike steps: its i-th active input's, ascending, into
    ``tbuf[i, :tcnt[i]]`` (``tbuf`` [at least the image's active inputs, T]), from the
    stored ``trains`` (:func:`infer_batch`) or, where they hold no spikes, drawn by
    :func:`geometric_times` under ``key``. Returns (input spikes, input spikes onto the
    pruned synapses counted in ``pruned`` [n_in], empty when nothing is pruned)."""
    img_ptr, pix, spikes, _ = trains
    n_steps = tbuf.shape[1]
    has_pruned = pruned.shape[0] > 0
    draw = spikes.shape[1] == 0
    n_sp = 0
    n_pr = 0
    for m in range(img_ptr[b], img_ptr[b + 1]):
        i = m - img_ptr[b]
        times = tbuf[i]
        if draw:
            n_t = geometric_times(float(trains[3][m]), key, m, times)
        else:
            n_t = 0
            for t in range(n_steps):
                if spikes[m, t]:
                    times[n_t] = t
                    n_t += 1
        tcnt[i] = n_t
        n_sp += n_t
        if has_pruned:
            n_pr += n_t * pruned[pix[m]]
    return n_sp, n_pr


@njit(cache=True, nogil=True, inline="always")
def add_rows(b, trains, w, cur, tbuf, tcnt):  # type: ignore[no-untyped-def]
    """Add to ``cur`` [T, N] the rows of ``w`` of image ``b``'s input spikes
    (:func:`image_times`' ``tbuf`` and ``tcnt``), input by input in ascending order (the
    same sums as the step-by-step product), each row read once per input."""
    img_ptr, pix = trains[0], trains[1]
    n = w.shape[1]
    for m in range(img_ptr[b], img_ptr[b + 1]):
        i = m - img_ptr[b]
        row = pix[m]
        for a in range(tcnt[i]):
            ta = tbuf[i, a]
            for j in range(n):
                cur[ta, j] += w[row, j]


@njit(cache=True, nogil=True)
def busiest_inputs(img_ptr):  # type: ignore[no-untyped-def]
    """The most active inputs of any image of a batch (the rows :func:`image_times`
    needs)."""
    most = 0
    for b in range(img_ptr.shape[0] - 1):
        most = max(most, img_ptr[b + 1] - img_ptr[b])
    return most


@njit(cache=True, nogil=True, parallel=True)
def infer_batch(w, trains, keys, n_steps, theta, images, nc, fq, n_threads):  # type: ignore[no-untyped-def]  # noqa: E501
    """Inference (learning off, theta frozen, no one-spike rule) of a batch of images.

    Input spikes come as compact trains, ``trains`` = (img_ptr [B+1], pix [M], spikes
    [M, T] (bool), p [M] (float64)): image b's non-zero pixels are rows ``img_ptr[b] ..
    img_ptr[b+1]-1`` of ``pix`` (input index) and ``spikes``. With ``spikes`` of shape
    [0, 0] they are drawn here instead by :func:`geometric_times` from ``p`` and
    ``keys[0]``, as :func:`geometric_spikes` draws them (the same trains, without storing
    them); ``images.n_in_spikes`` [B] receives each image's number of input spikes either
    way, and ``images.pruned_events`` [B] the input spikes onto pruned synapses
    (``images``: :class:`Images`).

    W is fixed at inference, so the input current of every step is known before the
    neurons run: it is summed first, pixel by pixel, into a [T, N] buffer (each active
    row of W read once per image instead of once per spike; the buffer stays in the
    core's cache, W does not), adding rows in input order as the step-by-step sum does,
    so the currents are the same floats. ``images.counts`` [B, N] is filled with each image's
    spike counts. Images run in parallel threads, each thread reusing its buffers
    (``n_threads``: the number of threads to spread images over). With lateral
    inhibition the neuron step runs as one fused pass (:func:`_infer_lateral`); with the
    inhibitory layer as in learning (:func:`exc_step`). ``images.v0``/``iv0`` [B, N] are the
    initial (quantized) potentials. Stochastic Vmem rounding (``fq[F_V]``) takes its
    uniforms from :func:`hash_uniform` under ``keys[1]``: at step t, image b, neuron j,
    (key, t, b * N + j) for the excitatory layer and (key, t, (B + b) * N + j) for the
    inhibitory one, the elements of the [T, 2, B, N] block that :func:`hash_block` gives
    the reference path. ``images.meters`` [B, M_LEN] (lowest/highest initialised by the caller)
    receives each image's clipped Vmem roundings and range.
    """
    v0, iv0, counts, n_in_spikes, meters, pruned, pruned_events = images
    key, ukey = keys[0], keys[1]
    n_img = counts.shape[0]
    n = w.shape[1]
    vq = fq[F_V]
    stochastic = vq[QP_ON] != 0 and vq[QP_STOCH] != 0
    n_par = min(n_img, 4 * n_threads)
    inhibitory = nc[C_INHIB] != 0
    no_keys = np.zeros(K_LEN, dtype=np.int64)
    n_act = busiest_inputs(trains[0])
    for c in prange(n_par):
        cur = np.zeros((n_steps, n), dtype=np.float32)
        tbuf = np.zeros((n_act, n_steps), dtype=np.int32)
        tcnt = np.zeros(n_act, dtype=np.int64)
        ub = np.zeros((2, n), dtype=np.float32)
        st = np.zeros((S_LEN, n), dtype=np.float32)
        s = np.zeros(n, dtype=np.float32)
        si = np.zeros(n, dtype=np.float32)
        thr = np.empty(n, dtype=np.float32)
        acc = np.zeros(n, dtype=np.float64)
        for j in range(n):
            thr[j] = theta[j] + nc[C_V_TH]
        for b in range(c, n_img, n_par):
            n_sp, n_pr = image_current(b, trains, key, w, cur, tbuf, tcnt, pruned)
            n_in_spikes[b] = n_sp
            pruned_events[b] = n_pr
            v = st[S_V]
            v[:] = v0[b]
            if not inhibitory:  # the common case: one fused pass per step
                rows = (v, st[S_COUNTS], st[S_REFR], st[S_IREC])
                _infer_lateral(cur, rows, thr, s, nc, vq, ukey, b, meters[b])
                counts[b] = st[S_COUNTS]
                continue
            st[S_INHV] = iv0[b]
            st[S_THETA] = theta
            for r in (S_REFR, S_INHREFR, S_IREC, S_SPREV, S_COUNTS):
                st[r] = F32(0.0)
            mt = meters[b].copy()
            pt = Point(st, acc, nc, fq, no_keys, mt)
            rows = state_rows(st)
            for t in range(n_steps):
                if stochastic:
                    for j in range(n):
                        ub[0, j] = hash_uniform(ukey, t, b * n + j)
                        ub[1, j] = hash_uniform(ukey, t, (n_img + b) * n + j)
                i_in = cur[t]
                exc_step(i_in, t, rows, pt, ub, s, si)
                for j in range(n):
                    i_in[j] = F32(0.0)  # ready for the next image
            meters[b] = mt
            counts[b] = st[S_COUNTS]


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


#: the first counter of an image's encoder streams: presentation ``boost`` of an image
#: draws under ``hash_bits(image key, ENCODER_STREAM + boost, 0)``
ENCODER_STREAM = 2**32


@njit(cache=True, nogil=True, parallel=True)
def counter_spikes(keys, pix, thr, n_steps, boost):  # type: ignore[no-untyped-def]
    """Bernoulli spike trains [M, T] (bool) of the counter encoder: input ``pix[m]`` of
    the image with key ``keys[m]`` spikes at step t where the top 24 bits of
    :func:`hash_bits` (s, t, pix[m]) are below ``thr[m]``, with ``s = hash_bits(keys[m],
    ENCODER_STREAM + boost, 0)`` the presentation's stream: integers only, so the
    exported C's ``tsnn_encode`` draws the same; independent of the thread count."""
    m_total = keys.shape[0]
    out = np.zeros((m_total, n_steps), dtype=np.bool_)
    stream = np.uint64(ENCODER_STREAM) + np.uint64(boost)
    for m in prange(m_total):
        s = hash_bits(np.uint64(keys[m]), stream, np.uint64(0))
        j = np.uint64(pix[m])
        for t in range(n_steps):
            out[m, t] = np.int64(hash_bits(s, np.uint64(t), j) >> np.uint64(40)) < thr[m]
    return out


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
