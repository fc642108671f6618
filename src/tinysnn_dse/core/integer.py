"""The integer datapath of a fully quantized design at inference (method.md section 4,
"Integer semantics"; docs/model.md, "Integer inference").

A design whose weights, Vmem and Vth are all fixed point runs its inference as integer
arithmetic on the formats' codes, so that an exported integer-only implementation
(``tinysnn export``, ``DIR/c/``) reproduces the simulator bit for bit. With the codes
``W`` (weights, ``fw`` fractional bits), ``V`` (Vmem, ``fv``) and ``T`` (Vth, ``ft``),
``L`` = :data:`LEAK_BITS`, ``F = max(fv + L, fw)`` and ``k = F - fv``, one step of a
neuron is::

    A  = (V - REST) * D * 2**(F - fv - L) + REST * 2**k                  (leak)
       + [not refractory] * (sum_{i spiked} W_i * 2**(F - fw) + IREC * 2**k)
    V' = clamp(round_k(A), lo, hi)                                         (one rounding)
    spike where V' >= THR,   THR = ceil(T * 2**(fv - ft));   then V' = RESET

with ``D = round(exp(-dt / tau_m) * 2**L)`` (``2**L`` for IF neurons), ``REST``, ``RESET``
and the recurrent weights the constants on the Vmem grid (round to nearest), and
``round_k`` the design's rounding of ``A / 2**k`` to an integer: truncation ``A >> k``,
nearest ``(A + 2**(k-1)) >> k`` (a tie rounds up), stochastic ``(A >> k) + [r * 2**24 >
u * 2**k]`` with ``r = A mod 2**k`` and ``u`` the top 24 bits of
:func:`kernels.hash_bits` (key of the image's presentation, step t, ``layer * N + j``)
(the same decision as :func:`kernels.fxp_code` with the same uniform). ``IREC`` is the
recurrent input of the previous step: ``-WREC * (spikes of the others)`` (tinySNN's
lateral inhibition ``WREC = w_lateral``; the baseline's inhibitory layer ``WREC =
w_inh_exc``, whose own neurons take ``WEI = w_exc_inh`` from their excitatory partner
and compare against the inhibitory threshold on the Vth grid). Every quantity is an
integer below 2**62 (checked, :func:`why_not`), so int64 arithmetic, in the Numba
kernel, the torch reference and C alike, is exact.

Designs with a float part (an FP32 weight, Vmem or Vth) keep the float32 datapath with
Vmem rounded after every step (:mod:`reference`, :mod:`kernels`); ITQ training does too.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from tinysnn_dse.core import kernels, step
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
    KC_LEN,
    KC_P2A,
    KC_P2B,
    KC_P2K,
    KC_REF,
    KC_RESET,
    KC_REST,
    KC_REST_K,
    KC_ROUNDING,
    KC_SCALE_W,
    KC_SH_W,
    KC_V_HI,
    KC_V_LO,
    KC_WEI,
    KC_WREC,
)
from tinysnn_dse.core.modes import RoundMode, Topology
from tinysnn_dse.core.neuron import LIFConsts, consts, floor_code, floor_mv
from tinysnn_dse.core.params import ModelConfig
from tinysnn_dse.core.quant import FixedPoint, Quantizers, quantize

Tensor = torch.Tensor

#: Fractional bits of the leak factor ``D`` (exp(-1/100) -> 64,884 / 2**16).
LEAK_BITS = 16
#: Every accumulator of the datapath stays below 2**ACC_LIMIT_BITS (int64 with margin).
ACC_LIMIT_BITS = 62
#: Bits of the uniform a stochastic rounding compares with (:func:`kernels.hash_uniform`).
UNIFORM_BITS = 24


def code_nearest(x: float, frac_bits: int) -> int:
    """``floor(x * 2**frac_bits + 1/2)``, exactly (``x`` a float; a tie rounds up)."""
    num, den = float(x).as_integer_ratio()  # den is a power of two
    if frac_bits >= 0:
        num <<= frac_bits
    else:
        den <<= -frac_bits
    return (2 * num + den) // (2 * den)


def ceil_shift(x: int, s: int) -> int:
    """``ceil(x * 2**s)`` for an integer ``x`` and any integer ``s``."""
    return x << s if s >= 0 else -((-x) >> -s)


@dataclass(frozen=True)
class IntLayer:
    """One population's constants: resting and reset potentials (Vmem codes), the leak
    factor ``decay`` (``D``, :data:`LEAK_BITS` fractional bits), the refractory steps and
    the share of the overshoot a spike keeps (:func:`step.reset_to`)."""

    rest: int
    reset: int
    decay: int
    ref_steps: int
    keep: int


@dataclass(frozen=True)
class IntDesign:
    """The integer datapath of one design point (module docstring)."""

    topology: Topology
    rounding: RoundMode
    weight: FixedPoint
    vmem: FixedPoint
    vth: FixedPoint
    exc: IntLayer
    inh: IntLayer
    w_rec: int  # Vmem codes: lateral inhibition, or inhibitory -> excitatory
    w_exc_inh: int  # Vmem codes: excitatory -> inhibitory (baseline)
    inh_thr: int  # Vth code of the inhibitory threshold (baseline)
    n_in: int
    n_exc: int
    floor: int  # Vmem code of the excitatory membrane floor (the format's lowest: none)

    @property
    def acc_frac(self) -> int:
        """``F``: fractional bits of the accumulator."""
        return max(self.vmem.frac_bits + LEAK_BITS, self.weight.frac_bits)

    @property
    def k(self) -> int:
        """Bits a step's rounding discards (``F - fv``, at least :data:`LEAK_BITS`)."""
        return self.acc_frac - self.vmem.frac_bits

    @property
    def sh_w(self) -> int:
        return self.acc_frac - self.weight.frac_bits

    @property
    def sh_leak(self) -> int:
        return self.k - LEAK_BITS

    def vmem_thresholds(self, vth_codes: np.ndarray) -> np.ndarray:
        """``THR = ceil(T * 2**(fv - ft))`` [N] (int64): a potential code ``V`` fires where
        ``V >= THR``, i.e. where ``V * 2**-fv >= T * 2**-ft``."""
        s = self.vmem.frac_bits - self.vth.frac_bits
        return np.array([ceil_shift(int(t), s) for t in vth_codes], dtype=np.int64)

    @property
    def inh_thr_v(self) -> int:
        return ceil_shift(self.inh_thr, self.vmem.frac_bits - self.vth.frac_bits)

    def acc_bound_bits(self) -> int:
        """Bits (with sign) that bound every accumulator of a step."""
        v, k = self.vmem, self.k
        span = 2**v.bits  # |V - REST| for codes and constants inside the format
        leak = span * max(self.exc.decay, self.inh.decay) << self.sh_leak
        rest = max(abs(self.exc.rest), abs(self.inh.rest), 2 ** (v.bits - 1)) << k
        inp = self.n_in * self.weight.hi_code << self.sh_w
        rec = (self.n_exc * abs(self.w_rec) + abs(self.w_exc_inh)) << k
        return (leak + rest + inp + rec + (1 << k)).bit_length() + 1

    def consts(self) -> np.ndarray:
        """The datapath's constants, int64 [KC_LEN] (``layout.KC_*``): what the integer
        kernel (:func:`kernel_consts`), the torch reference and the exported C's
        ``model.h`` all read."""
        c = np.zeros(KC_LEN, dtype=np.int64)
        k, e, i = self.k, self.exc, self.inh
        c[KC_REST], c[KC_RESET], c[KC_REF] = e.rest, e.reset, e.ref_steps
        c[KC_IREST], c[KC_IRESET], c[KC_IREF] = i.rest, i.reset, i.ref_steps
        c[KC_DSH], c[KC_IDSH] = e.decay << self.sh_leak, i.decay << self.sh_leak
        c[KC_REST_K], c[KC_IREST_K] = e.rest << k, i.rest << k
        c[KC_WREC], c[KC_WEI] = self.w_rec, self.w_exc_inh
        c[KC_ITHR] = self.inh_thr_v
        c[KC_SH_W], c[KC_SCALE_W] = self.sh_w, 1 << self.sh_w
        c[KC_HALF] = half_offset(self.rounding, k)
        c[KC_INV_K] = 0  # 2**-k: set in the float64 form only (kernel_consts)
        c[KC_P2A], c[KC_P2B] = 1 << max(0, UNIFORM_BITS - k), 1 << max(0, k - UNIFORM_BITS)
        c[KC_V_LO], c[KC_V_HI] = self.vmem.lo_code, self.vmem.hi_code
        c[KC_ROUNDING] = self.rounding.code
        c[KC_INHIBITORY] = 1 if self.topology == Topology.INHIBITORY else 0
        c[KC_K], c[KC_P2K] = k, 1 << k
        c[KC_KEEP] = e.keep  # the inhibitory layer resets to its value
        c[KC_FLOOR] = self.floor
        return c


def _layer(c: LIFConsts, v: FixedPoint) -> IntLayer:
    fv = v.frac_bits

    def clamp(c: int) -> int:  # a potential the register holds
        return min(max(c, v.lo_code), v.hi_code)

    rest, reset = clamp(code_nearest(c.v_rest, fv)), clamp(code_nearest(c.v_reset, fv))
    return IntLayer(rest, reset, code_nearest(c.decay, LEAK_BITS), int(c.ref_steps), int(c.keep))


def kernel_dtype(d: IntDesign) -> type:
    """The dtype :func:`int_kernels.infer_batch_int` holds the state in: float64 where
    every value of a step stays below 2**52 (exact there), else int64."""
    return np.float64 if d.acc_bound_bits() <= 53 else np.int64


def kernel_consts(d: IntDesign, dtype: type) -> np.ndarray:
    """The constants as :func:`int_kernels.infer_batch_int` reads them: :meth:`IntDesign.consts`
    in the state's ``dtype`` (every value exact there), with 2**-k for a float64 state."""
    arr: np.ndarray = d.consts().astype(dtype)
    if dtype == np.float64:
        arr[KC_INV_K] = 2.0**-d.k
    return arr


def _checked(cfg: ModelConfig, qz: Quantizers) -> tuple[IntDesign | None, str | None]:
    """The integer datapath of ``qz`` on ``cfg`` and None, or None and why it has none."""
    missing = [n for n, f in (("weights", qz.weight), ("Vmem", qz.vmem), ("Vth", qz.vth))
               if f is None]  # fmt: skip
    if missing:
        why = f"{' and '.join(missing)} in FP32 (an integer datapath needs all three fixed point)"
        return None, why
    d = _design(cfg, qz)
    if d.acc_bound_bits() > ACC_LIMIT_BITS:
        return None, (
            f"a step's accumulator needs {d.acc_bound_bits()} bits with these formats "
            f"({qz.describe()}); at most {ACC_LIMIT_BITS} fit int64"
        )
    return d, None


def why_not(cfg: ModelConfig, qz: Quantizers) -> str | None:
    """Why ``qz`` has no integer datapath (None: it has one, :func:`design_of`)."""
    return _checked(cfg, qz)[1]


def design_of(cfg: ModelConfig, qz: Quantizers) -> IntDesign | None:
    """The integer datapath of ``qz`` on ``cfg``, or None where it has none (:func:`why_not`)."""
    return _checked(cfg, qz)[0]


def _design(cfg: ModelConfig, qz: Quantizers) -> IntDesign:
    assert qz.weight is not None and qz.vmem is not None and qz.vth is not None
    c = consts(cfg)
    v, fv = qz.vmem, qz.vmem.frac_bits
    inhibitory = cfg.topology == Topology.INHIBITORY
    w_rec = cfg.inh.w_inh_exc if inhibitory else cfg.inh.w_lateral
    inh_thr = float(quantize(torch.tensor(cfg.inh.v_th_mv, dtype=torch.float64), qz.vth,
                             RoundMode.NEAREST))  # fmt: skip
    return IntDesign(
        topology=cfg.topology,
        rounding=qz.rounding,
        weight=qz.weight,
        vmem=v,
        vth=qz.vth,
        exc=_layer(c.exc, v),
        inh=_layer(c.inh, v),
        w_rec=code_nearest(w_rec, fv),
        w_exc_inh=code_nearest(cfg.inh.w_exc_inh, fv),
        inh_thr=code_nearest(inh_thr, qz.vth.frac_bits),
        n_in=cfg.n_in,
        n_exc=cfg.n_exc,
        floor=floor_code(floor_mv(cfg), v),
    )


def codes(x: Tensor, fmt: FixedPoint) -> np.ndarray:
    """The integer codes (int64) of values ``x`` that lie on ``fmt``'s grid; raises if one
    does not."""
    y = x.detach().cpu().to(torch.float64).numpy() * fmt.inv  # exact: a power of two
    c = np.rint(y)
    if not np.array_equal(c, y):
        raise ValueError(f"values off the {fmt.describe()} grid")
    return c.astype(np.int64)


#: The last weight codes made (a weak reference to the tensor, its version counter, the
#: format, the codes): an evaluation converts the same W for every batch of images.
_last_codes: list[tuple[Any, int, FixedPoint, np.ndarray]] = []


def weight_codes(w: Tensor, d: IntDesign) -> np.ndarray:
    """W [n_in, N] as codes, in the narrowest integer type that holds any input's sum:
    int32 where ``n_in * max code`` fits, else int64. Remembers the last conversion
    (W unchanged: the same tensor at the same version; 3-8 ms at 784 x 400, a tenth of a
    batch's inference)."""
    if _last_codes:
        ref, version, fmt, c = _last_codes[0]
        if ref() is w and version == w._version and fmt == d.weight:
            return c
    wide = d.n_in * d.weight.hi_code >= 2**31
    c = np.ascontiguousarray(codes(w, d.weight).astype(np.int64 if wide else np.int32))
    _last_codes[:] = [(weakref.ref(w), w._version, d.weight, c)]
    return c


def narrow_codes(wc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weight codes ``wc`` (:func:`weight_codes`) as the integer kernel's 16-bit
    current takes them (``int_kernels._image_current``): (uint16 codes, [largest code]),
    or no rows where some code is negative or above :data:`kernels.CODE_MAX`."""
    lo, hi = (int(wc.min()), int(wc.max())) if wc.size else (0, 0)
    if lo < 0 or hi > kernels.CODE_MAX:
        return np.zeros((0, wc.shape[1]), dtype=np.uint16), np.zeros(1, dtype=np.int64)
    return np.ascontiguousarray(wc.astype(np.uint16)), np.array([hi], dtype=np.int64)


class KernelSetup(NamedTuple):
    """What :func:`int_kernels.infer_batch_int` takes of a network and design beyond a
    batch's trains: W's codes (:func:`weight_codes`) and their 16-bit form
    (:func:`narrow_codes`), the Vmem-unit thresholds and the constants, both in the
    state's dtype (:func:`kernel_dtype`)."""

    w: np.ndarray
    thr: np.ndarray
    consts: np.ndarray
    narrow: tuple[np.ndarray, np.ndarray]


#: :func:`kernel_setup`'s last answer: (w, w's version, theta, theta's version, cfg, qz, setup)
_last_setup: list[tuple[Any, int, Any, int, ModelConfig, Quantizers, KernelSetup | None]] = []


def kernel_setup(w: Tensor, theta: Tensor, cfg: ModelConfig, qz: Quantizers) -> KernelSetup | None:
    """The integer kernel's arguments for the network (W ``w``, thresholds ``theta``) under
    ``qz`` on ``cfg``, or None where the design has no integer datapath
    (:func:`design_of`). Remembers the last answer (the same tensors at the same versions,
    the same configuration and quantizers): an inference pass calls the kernel once per
    batch and boost, about 370 times for 10,000 late-pass images, and computing these
    each time cost an evaluation 2-3 % (docs/benchmarks.md)."""
    if _last_setup:
        rw, vw, rt, vt, c, q, out = _last_setup[0]
        if (rw() is w and vw == w._version and rt() is theta and vt == theta._version
                and c is cfg and q is qz):  # fmt: skip
            return out
    d = design_of(cfg, qz)
    out = None
    if d is not None:
        wc = weight_codes(w, d)
        dt = kernel_dtype(d)
        thr: np.ndarray = d.vmem_thresholds(threshold_codes(theta, cfg, qz)).astype(dt)
        out = KernelSetup(wc, thr, kernel_consts(d, dt), narrow_codes(wc))
    _last_setup[:] = [(weakref.ref(w), w._version, weakref.ref(theta), theta._version, cfg, qz,
                       out)]  # fmt: skip
    return out


def threshold_codes(theta: Tensor, cfg: ModelConfig, qz: Quantizers) -> np.ndarray:
    """The Vth codes [N] (int64) of ``v_th + theta``, put on the Vth grid by round to
    nearest (as :func:`neuron.inference_thresholds`: a no-op for quantized networks)."""
    assert qz.vth is not None
    x = theta.detach().cpu().to(torch.float64) + cfg.exc.v_th_mv
    return codes(quantize(x, qz.vth, RoundMode.NEAREST), qz.vth)


def image_keys(ukey: int, n: int) -> np.ndarray:
    """The stochastic-rounding key of each of ``n`` images presented under the key
    ``ukey``: :func:`kernels.hash_bits` (ukey, 0, b) as int64 (two's complement of the
    uint64; the exported spike file stores it as uint64)."""
    return np.array([kernels.image_key(ukey, b) for b in range(n)], dtype=np.int64)


def half_offset(rounding: RoundMode, k: int) -> int:
    """What deterministic rounding adds to the accumulator before the floor shift by ``k``:
    ``(1 - cut) * 2**k`` (nearest: 2**(k-1)), so that ``floor((A + half) / 2**k)`` steps
    up exactly where the remainder reaches the cut; 0 where it never does."""
    if rounding.cut is None:
        return 0
    half = (1 - rounding.cut) * 2**k
    if half.denominator != 1:
        raise ValueError(f"{rounding} rounding: a cut of {rounding.cut} is no multiple of 2**-{k}")
    return int(half)


def round_shift(a: Tensor, k: int, rounding: RoundMode, u24: Tensor | None) -> Tensor:
    """``round_k(a)`` (module docstring) of int64 ``a``; ``u24`` the stochastic uniforms."""
    if not rounding.stochastic:
        return (a + half_offset(rounding, k)) >> k
    assert u24 is not None
    q = a >> k
    r = a - (q << k)
    up = (r << (UNIFORM_BITS - k)) > u24 if k <= UNIFORM_BITS else r > (u24 << (k - 24))
    return q + up.to(torch.int64)


def infer_reference(
    w: Tensor,
    thr: np.ndarray,
    spikes: Tensor,
    d: IntDesign,
    keys: np.ndarray | None,
) -> tuple[Tensor, int, Tensor]:
    """The plain per-step torch loop of the integer datapath over a batch: input spikes
    [B, T, n_in] (bool), weight codes ``w`` [n_in, N], Vmem-unit thresholds ``thr`` [N]
    (:meth:`IntDesign.vmem_thresholds`), ``keys`` [B] the images' stochastic-rounding
    keys (None otherwise). Returns (spike counts [B, N] float32, clipped roundings, the
    excitatory potentials' codes at the end [B, N] int64)."""
    dev = spikes.device
    b, t_steps, _ = spikes.shape
    n = d.n_exc
    c = d.consts()
    k, lo, hi = int(c[KC_K]), int(c[KC_V_LO]), int(c[KC_V_HI])
    inhibitory = d.topology == Topology.INHIBITORY
    u = None
    if d.rounding.stochastic:
        assert keys is not None
        u = torch.from_numpy(kernels.u24_block(keys, t_steps, 2 if inhibitory else 1, n)).to(dev)
    wf = w.to(dev, torch.float64)  # codes: float64 sums of them are exact below 2**53
    thr_t = torch.from_numpy(thr).to(dev)
    i64 = torch.int64

    def full(x: int) -> Tensor:
        return torch.full((b, n), int(x), dtype=i64, device=dev)

    v, refr, irec = full(c[KC_REST]), full(0), full(0)
    vi, irefr = full(c[KC_IREST]), full(0)
    wrec, wei = int(c[KC_WREC]) << k, int(c[KC_WEI]) << k  # accumulator units
    s_prev = torch.zeros(b, n, dtype=i64, device=dev)
    counts = torch.zeros(b, n, dtype=i64, device=dev)
    n_sat = 0

    def integrate(
        x: Tensor, rest: int, dsh: int, r: Tensor, inp: Tensor, uu: Tensor | None
    ) -> tuple[Tensor, int]:
        a = step.leak(x, rest, dsh, rest << k) + torch.where(r <= 0, inp, torch.zeros_like(inp))
        q = round_shift(a, k, d.rounding, uu)
        cl = q.clamp(lo, hi)
        return cl, int((cl != q).sum())

    for t in range(t_steps):
        cur = (spikes[:, t].to(torch.float64) @ wf).to(i64) << int(c[KC_SH_W])
        v, sat = integrate(v, int(c[KC_REST]), int(c[KC_DSH]), refr, cur + irec,
                           None if u is None else u[t, 0])  # fmt: skip
        v = v.clamp(min=int(c[KC_FLOOR]))  # step.floor_at, after the rounding
        n_sat += sat
        s = (v >= thr_t).to(i64)
        v = torch.where(s > 0, step.reset_to(v, thr_t, int(c[KC_RESET]), int(c[KC_KEEP])), v)
        refr = torch.where(s > 0, torch.full_like(refr, int(c[KC_REF])), refr - 1)
        counts += s
        if inhibitory:
            ui = None if u is None else u[t, 1]
            vi, sat = integrate(vi, int(c[KC_IREST]), int(c[KC_IDSH]), irefr, s_prev * wei,
                                ui)  # fmt: skip
            n_sat += sat
            si = (vi >= int(c[KC_ITHR])).to(i64)
            reset = step.reset_to(vi, int(c[KC_ITHR]), int(c[KC_IRESET]), 0)
            vi = torch.where(si > 0, reset, vi)
            irefr = torch.where(si > 0, torch.full_like(irefr, int(c[KC_IREF])), irefr - 1)
            irec = (si - si.sum(dim=1, keepdim=True)) * wrec
            s_prev = s
        else:
            irec = (s - s.sum(dim=1, keepdim=True)) * wrec
    return counts.to(torch.float32), n_sat, v
