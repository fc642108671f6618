"""Input encoding: Poisson (Bernoulli-per-step) spike trains of pixel intensities, drawn
by torch's generator or by geometric skipping with counter-based uniforms, and the keys
and uniform blocks of :func:`kernels.hash_uniform` (method.md 1.1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch

from tinysnn_dse.core import kernels
from tinysnn_dse.core.params import ModelConfig

Tensor = torch.Tensor


def rate_scale(cfg: ModelConfig, boost: int = 0) -> float:
    """Spike probability per step at full intensity after ``boost`` rate boosts (<= 1)."""
    enc = cfg.encoding
    return min(1.0, (enc.max_rate_hz + boost * enc.rate_boost_hz) * enc.dt_ms / 1000.0)


class SpikeTrains(NamedTuple):
    """Poisson input of a batch in compact form: only pixels that can spike are stored.

    ``img``, ``pix`` [M] (long): image and input index of each non-zero pixel (sorted by
    image, then input); ``spikes`` [M, T] (bool): its spike train; ``shape`` = (B, T, n).
    """

    img: Tensor
    pix: Tensor
    spikes: Tensor
    shape: tuple[int, int, int]
    #: each image's key [B] (int64) where the counter encoder drew the trains, else None
    keys: np.ndarray | None = None
    #: the counter encoder's input: each image's pixel codes [B, n] (uint8), else None
    codes: np.ndarray | None = None

    def dense(self) -> Tensor:
        """[B, T, n] bool."""
        b, t, n = self.shape
        out = torch.zeros(b, n, t, dtype=torch.bool, device=self.spikes.device)
        out[self.img, self.pix] = self.spikes
        return out.transpose(1, 2)


def poisson_trains(
    pixels: Tensor, steps: int, rate_scale: float, generator: torch.Generator
) -> SpikeTrains:
    """Bernoulli-per-step spike trains for intensities ``pixels`` [B, n] in [0, 1].

    ``rate_scale`` = max_rate_hz * dt_ms / 1000 is the spike probability per step at full
    intensity. Uniforms are drawn only for non-zero pixels (zero pixels never spike), one
    [M, T] block from ``generator``.
    """
    b, n = pixels.shape
    img, pix = (pixels > 0).nonzero(as_tuple=True)
    p = pixels[img, pix] * rate_scale
    u = torch.rand(p.shape[0], steps, generator=generator, device=pixels.device)
    return SpikeTrains(img, pix, u < p.unsqueeze(1), (b, steps, n))


@contextmanager
def kernel_threads() -> Iterator[None]:
    """Run numba's parallel kernels on torch's thread count, and leave torch's count as it
    was: numba's OpenMP layer changes the count torch reads back."""
    n = torch.get_num_threads()
    kernels.set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def draw_key(generator: torch.Generator) -> int:
    """One key for :func:`kernels.hash_uniform`, drawn from ``generator``."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))


def hashed_uniforms(
    generator: torch.Generator, shape: tuple[int, ...], device: torch.device | None = None
) -> Tensor:
    """Uniforms in [0, 1) of ``shape`` from one key drawn from ``generator``: the element
    at leading index ``a`` and flat index ``b`` over the other axes is
    :func:`kernels.hash_uniform` (key, a, b), so a compiled kernel can compute any of them
    in place instead of reading the block. Tie-breaks and the rounding uniforms of design
    batches and inference come from here, far cheaper than torch's CPU generator."""
    rest = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    block = torch.from_numpy(kernels.hash_block(draw_key(generator), shape[0], rest))
    block = block.reshape(shape)
    return block if device is None else block.to(device)


def skip_trains(
    pixels: Tensor, steps: int, rate_scale: float, generator: torch.Generator
) -> SpikeTrains:
    """The same Bernoulli-per-step trains as :func:`poisson_trains`, drawn on the CPU by
    :func:`kernels.geometric_spikes` (geometric gaps between spikes, counter-based
    uniforms keyed by one draw from ``generator``): a few uniforms per spike instead of
    one per step, in parallel threads. Inference and learning on the CPU encode with it."""
    b, n = pixels.shape
    img, pix = (pixels > 0).nonzero(as_tuple=True)
    p = (pixels[img, pix] * rate_scale).numpy().astype(np.float64)
    key = draw_key(generator)
    with kernel_threads():
        spikes = torch.from_numpy(kernels.geometric_spikes(p, key, steps))
    return SpikeTrains(img, pix, spikes, (b, steps, n))


def learning_trains(
    pixels: Tensor, steps: int, rate_scale: float, generator: torch.Generator
) -> SpikeTrains:
    """Training spike trains for ``pixels`` [B, n]: :func:`skip_trains` where it runs (the
    pixels and the generator on the CPU, with numba), :func:`poisson_trains` elsewhere;
    the same Bernoulli-per-step process. Single-point learning and design batches both
    draw through here, so with the same generator they see the same spikes."""
    cpu = pixels.device.type == "cpu" and generator.device.type == "cpu"
    encode = skip_trains if cpu and kernels.HAVE_NUMBA else poisson_trains
    return encode(pixels, steps, rate_scale, generator)


def counter_thresholds(cfg: ModelConfig, boost: int = 0) -> np.ndarray:
    """The counter encoder's integer thresholds [256] (int64) of presentation ``boost``: a
    pixel P spikes at a step where a 24-bit uniform is below ``floor(P / 255 *
    rate_scale(cfg, boost) * 2**24)`` (exact rationals), a probability within 2**-24 of
    the geometric encoder's ``P / 255 * rate_scale``."""
    from fractions import Fraction

    scale = Fraction(rate_scale(cfg, boost)) * 2**24
    return np.array([int(Fraction(p, 255) * scale) for p in range(256)], dtype=np.int64)


def counter_trains(pixels: Tensor, steps: int, thr: np.ndarray, keys: np.ndarray,
                   boost: int) -> SpikeTrains:  # fmt: skip
    """Spike trains of ``pixels`` [B, n_in] (intensities P / 255) by the counter encoder
    (:func:`kernels.counter_spikes`: thresholds ``thr`` of :func:`counter_thresholds`,
    image keys ``keys`` [B] int64): every draw a function of (image key, boost, step,
    input) alone, so a chip draws the same trains from the pixels and the key."""
    b, n = pixels.shape
    codes = torch.round(pixels.detach().cpu().to(torch.float64) * 255.0).to(torch.int64)
    img, pix = (codes > 0).nonzero(as_tuple=True)
    p_thr = thr[codes[img, pix].numpy()]
    with kernel_threads():
        spikes = kernels.counter_spikes(keys[img.numpy()], pix.numpy(), p_thr, steps, boost)
    dev = pixels.device
    return SpikeTrains(img.to(dev), pix.to(dev), torch.from_numpy(spikes).to(dev), (b, steps, n),
                       keys, codes.numpy().astype(np.uint8))  # fmt: skip


def poisson(pixels: Tensor, steps: int, rate_scale: float, generator: torch.Generator) -> Tensor:
    """Dense spikes [B, T, n] (bool) of :func:`poisson_trains`."""
    return poisson_trains(pixels, steps, rate_scale, generator).dense()
