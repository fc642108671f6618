"""The integer datapath of a fully fixed-point design of the gradient-trained family
(docs/model.md, "The gradient-trained family", "Integer inference"), as
:mod:`integer` is the STDP family's: inference as integer arithmetic on the formats'
codes, one rounding of a wide accumulator per neuron and step, so that the exported C
reproduces it bit for bit.

Codes: ``W_l`` (layer l's weights, ``fw_l`` fractional bits), ``U_l`` (its membranes,
``fv_l``), ``TH_l`` (a hidden layer's threshold, ``ft_l``), ``LAM_l`` (its leak,
:data:`diet.LEAK_BITS` = L fractional bits, ``round(lambda * 2**L)``), and the input
``P`` (direct encoding: the pixel 0..255 as the unsigned value ``P / 2**8``; Poisson: a
spike where the top 24 bits of :func:`kernels.hash_bits` (image key, the step's input
stream, pixel) fall below ``P * 65793``, a probability of ``P / 255`` to 2**-24; events:
the step's frame, a spike where it is 1).
One step of hidden neuron j of layer l, with ``x`` its input (pixels or the previous
layer's spikes of this step), ``fi`` the input's fractional bits (``fw_0 + 8`` for
pixels, else ``fw_l``) and ``F = max(fv + L, fi, ft)``::

    A  = LAM * U * 2**(F - fv - L) + (sum_i x_i W_ij) * 2**(F - fi) - s * TH * 2**(F - ft)
    U' = clamp(round_(F - fv)(A), lo, hi)
    s' = [U' >= ceil(TH * 2**(fv - ft))]

with ``s`` the neuron's spike of the previous step (reset by subtraction of the
threshold, un-leaked), and the output layer without leak or spike, ``A = U * 2**(F - fv)
+ (sum_i s_i W_ij) * 2**(F - fw)``, ``F = max(fv, fw)``. The prediction is the first
output with the largest final ``U``. ``round_k`` is :func:`integer.round_shift`:
truncation, nearest (a tie up), or stochastic with the top 24 bits of
:func:`kernels.hash_bits` (image key, ``4 t + 1 + l``, neuron) as the uniform (the input's Poisson
stream is ``4 t``: the streams never meet, depth <= 2). Every
quantity is an int64 below 2**62 (:func:`why_not` checks the bounds), so torch int64 here
and C alike are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tinysnn_dse.core import diet, integer, kernels, step
from tinysnn_dse.core.modes import RoundMode
from tinysnn_dse.core.quant import FixedPoint

Tensor = torch.Tensor

#: fractional bits of an input pixel (0..255 as P / 2**8)
PIXEL_FRAC = 8
#: 2**24 / 255 rounded down: a Poisson spike where a 24-bit uniform < P * POISSON_SCALE
POISSON_SCALE = 65793
#: the integer bound every accumulator stays below (int64 with a bit to spare)
BOUND = 2**62


@dataclass(frozen=True)
class IntLayer:
    """One layer's integer constants (hidden layers have a leak and a threshold)."""

    w: np.ndarray  # [n_in, n_out] int64 codes
    w_bits: int  # the weights' width
    fw: int  # the weights' fractional bits
    fi: int  # the input's fractional bits (pixels: fw + 8; spikes: fw)
    fv: int
    lo: int
    hi: int
    lam: int  # leak code (2**L: none)
    th: int  # threshold code (0 for the output layer)
    ft: int
    thr: int  # the spike threshold on the Vmem grid: ceil(th * 2**(fv - ft))
    big: int  # F: the accumulator's fractional bits

    @property
    def k(self) -> int:
        return self.big - self.fv


@dataclass(frozen=True)
class IntDiet:
    """A fixed-point design of the family as integer constants."""

    layers: tuple[IntLayer, ...]  # hidden layers, then the output
    timesteps: int
    encoding: diet.Encoding
    rounding: RoundMode

    @property
    def depth(self) -> int:
        return len(self.layers) - 1


def _codes(x: Tensor, f: FixedPoint) -> np.ndarray:
    return integer.codes(x, f)


def why_not(cfg: diet.DietConfig, formats: diet.Formats | None) -> str | None:
    """Why a design has no integer datapath (a float part, or an accumulator that could
    pass :data:`BOUND`), or None."""
    if formats is None:
        return "it has FP32 parts"
    if any(f is None for f in (*formats.weight, *formats.vmem, *formats.vth)):
        return "it has FP32 parts"
    sizes = cfg.sizes
    depth = len(cfg.hidden)
    for k, (fw, fv) in enumerate(zip(formats.weight, formats.vmem, strict=True)):
        assert fw is not None and fv is not None
        direct0 = k == 0 and cfg.encoding == diet.Encoding.DIRECT
        fi = fw.frac_bits + (PIXEL_FRAC if direct0 else 0)
        ft = formats.vth[k].frac_bits if k < depth else fv.frac_bits  # type: ignore[union-attr]
        big = max(fv.frac_bits + (diet.LEAK_BITS if k < depth else 0), fi, ft)
        w_max = max(-fw.lo_code, fw.hi_code)
        u_max = max(-fv.lo_code, fv.hi_code)
        th_max = formats.vth[k].hi_code if k < depth else 0  # type: ignore[union-attr]
        bound = (sizes[k] * (255 if direct0 else 1) * w_max * 2 ** (big - fi)
                 + u_max * 2 ** (big - fv.frac_bits) * 2 + th_max * 2 ** (big - ft))  # fmt: skip
        if bound >= BOUND:
            return f"layer {k}'s accumulator could reach 2**62"
    return None


def design_of(net: diet.DietNet, formats: diet.Formats) -> IntDiet:
    """The integer constants of ``net`` (on its formats' grids: :func:`diet.deployed`)."""
    cfg = net.cfg
    depth = len(cfg.hidden)
    layers = []
    for k in range(depth + 1):
        fw, fv = formats.weight[k], formats.vmem[k]
        assert fw is not None and fv is not None
        direct0 = k == 0 and cfg.encoding == diet.Encoding.DIRECT
        fi = fw.frac_bits + (PIXEL_FRAC if direct0 else 0)
        if k < depth:
            ftf = formats.vth[k]
            assert ftf is not None
            th = int(_codes(net.theta[k].reshape(1), ftf)[0])
            ft = ftf.frac_bits
            lam = leak_code(float(net.leak[k]))
            big = max(fv.frac_bits + diet.LEAK_BITS, fi, ft)
            d = fv.frac_bits - ft
            thr = th << d if d >= 0 else -((-th) >> -d)  # ceil(th * 2**d)
        else:
            th, ft, lam, thr = 0, 0, 1 << diet.LEAK_BITS, 0
            big = max(fv.frac_bits, fi)
        layers.append(IntLayer(_codes(net.w[k], fw), fw.bits, fw.frac_bits, fi, fv.frac_bits,
                               fv.lo_code, fv.hi_code, lam, th, ft, thr, big))  # fmt: skip
    return IntDiet(tuple(layers), cfg.timesteps, cfg.encoding, formats.rounding)


def leak_code(lam: float) -> int:
    """``round(lambda * 2**L)``, lambda in [0, 1] (round to nearest, a tie up)."""
    return int(np.floor(lam * 2**diet.LEAK_BITS + 0.5))


def pixels(x: Tensor) -> Tensor:
    """The pixel codes 0..255 (int64) of intensities ``x`` = P / 255 in [0, 1]."""
    return torch.round(x.to(torch.float64) * 255.0).to(torch.int64)


def u24(keys: Tensor, a: int, n: int) -> Tensor:
    """The top 24 bits of :func:`kernels.hash_bits` (key, ``a``, j) for every key [B]
    and j < ``n``: [B, n] int64 (the same SplitMix64 finaliser, vectorized; uint64
    arithmetic wraps mod 2**64 as the kernel's and C's do)."""
    key = keys.cpu().numpy().astype(np.int64).view(np.uint64)[:, None]
    j = np.arange(n, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        z = key + (np.uint64(a) * np.uint64(2654435761) + j + np.uint64(1)) * kernels._GOLD
        z = (z ^ (z >> np.uint64(30))) * kernels._M1
        z = (z ^ (z >> np.uint64(27))) * kernels._M2
        z = z ^ (z >> np.uint64(31))
    return torch.from_numpy((z >> np.uint64(40)).astype(np.int64))


def infer(d: IntDiet, p: Tensor, keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Integer inference of pixel codes ``p`` [B, n_in] (:func:`pixels`; an event
    design's frames [B, bins, n_in] of 0/1, :func:`diet.frames_at`): the output
    membranes' codes after the last step [B, n_out] and each hidden layer's spike count,
    summed over its neurons [B, depth]. ``keys`` [B] (int64): each image's key of the
    counter-based uniforms (stochastic rounding, Poisson input)."""
    u, counts = run(d, p, keys)
    return u[-1], counts


def layer_sum(x: Tensor, w: Tensor) -> Tensor:
    """``x @ w`` exactly, for non-negative integer inputs ``x`` [B, n] (pixel codes or
    spikes) and int64 codes ``w`` [n, m]: every partial sum of a row is an integer of at
    most the row's sum times the largest |w|, so float32 BLAS is exact (in any order of
    addition) where that bound is below 2**24, float64 below 2**53, else int64."""
    w_max = int(w.abs().max()) if w.numel() else 0
    bound = w_max * (int(x.sum(dim=1, dtype=torch.int64).max()) if x.numel() else 0)
    if bound < 2**24:
        return (x.to(torch.float32) @ w.to(torch.float32)).to(torch.int64)
    if bound < 2**53:
        return (x.to(torch.float64) @ w.to(torch.float64)).to(torch.int64)
    return x.to(torch.int64) @ w


def run(d: IntDiet, p: Tensor, keys: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
    """:func:`infer`, with every layer's membrane codes after the last step.

    Each layer's sum is exact (:func:`layer_sum`: BLAS where it is), the step in int64
    with each power of two folded into one constant (``2**(F - fi)``, ``LAM * 2**(F - fv
    - L)``, ``TH * 2**(F - ft)``), in place."""
    b = p.shape[0]
    need_u = d.rounding.stochastic or d.encoding == diet.Encoding.POISSON
    if need_u and keys is None:
        raise ValueError("stochastic rounding and Poisson input need the images' keys")
    ws = [torch.from_numpy(layer.w) for layer in d.layers]

    def matmul(x: Tensor, k: int) -> Tensor:
        return layer_sum(x, ws[k])

    u = [torch.zeros(b, layer.w.shape[1], dtype=torch.int64) for layer in d.layers]
    s = [torch.zeros(b, layer.w.shape[1], dtype=torch.bool) for layer in d.layers[:-1]]
    counts = torch.zeros(b, d.depth, dtype=torch.int64)
    cur0 = matmul(p, 0) if d.encoding == diet.Encoding.DIRECT else None
    events = d.encoding == diet.Encoding.EVENTS
    if events:  # frames [B, bins, n_in] of 0/1 as the steps' input spikes
        p = diet.frames_at(p, d.timesteps)
    for t in range(d.timesteps):
        x: Tensor | None = None
        for k, layer in enumerate(d.layers):
            big, fv = layer.big, layer.fv
            if k == 0:
                if cur0 is not None:
                    cur = cur0
                elif events:
                    cur = matmul(p[:, t], 0)
                else:
                    assert keys is not None
                    cur = matmul(u24(keys, 4 * t, p.shape[1]) < p * POISSON_SCALE, 0)
            else:
                assert x is not None
                cur = matmul(x, k)
            if k < d.depth:  # the leak statement (core/step.py) with rest 0 and the input
                # as its base: LAM * U * 2**(F - fv - L) + cur * 2**(F - fi) - S * TH * 2**(F - ft)
                base = cur * (1 << (big - layer.fi))
                base.sub_(s[k].to(torch.int64), alpha=layer.th << (big - layer.ft))
                a = step.leak(u[k], 0, layer.lam << (big - fv - diet.LEAK_BITS), base)
            else:
                a = u[k] << (big - fv)
                a.add_(cur, alpha=1 << (big - layer.fi))
            uni = None
            if d.rounding.stochastic:
                assert keys is not None
                uni = u24(keys, 4 * t + 1 + k, layer.w.shape[1])
            # k = 0 (an output whose weights have no more fractional bits than its
            # membrane): the sum is on the grid already, nothing to round
            r = a if big == fv else integer.round_shift(a, big - fv, d.rounding, uni)
            u[k] = r.clamp_(layer.lo, layer.hi)
            if k < d.depth:
                s[k] = u[k] >= layer.thr
                counts[:, k] += s[k].sum(dim=1)
                x = s[k]
    return u, counts
