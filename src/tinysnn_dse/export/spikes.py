"""The spike-train file of an export (``DIR/c/test_spikes.bin``): the input of every
presentation the simulator ran for each test image, as the exported C reads it.

Layout, little-endian::

    header   "TSNNSPK1" (8 bytes); uint32 version (1), images, inputs, steps,
             presentations at most (1 + max_boosts)
    image    int32 true label; uint32 presentations stored (1 + the boosts it took)
      presentation
             uint64 stochastic-rounding key (0 unless Vmem rounds stochastically)
             uint32 input spikes in all
             uint16 [steps]  input spikes at each step
             uint16 [spikes] the spiking inputs' indices, step by step, ascending
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from tinysnn_dse.core.encoding import SpikeTrains
from tinysnn_dse.errors import TinySNNError

MAGIC = b"TSNNSPK1"
VERSION = 1


class SpikeFileError(TinySNNError):
    """A spike file that cannot be read."""


@dataclass
class Presentation:
    """One presentation: its rounding key and the spiking inputs of each step."""

    key: int
    step_spikes: np.ndarray  # [T] uint16
    inputs: np.ndarray  # [sum] uint16

    def dense(self, n_in: int) -> np.ndarray:
        """[T, n_in] bool."""
        out = np.zeros((len(self.step_spikes), n_in), dtype=bool)
        steps = np.repeat(np.arange(len(self.step_spikes)), self.step_spikes.astype(np.int64))
        out[steps, self.inputs] = True
        return out


@dataclass
class CapturedImages:
    """What :func:`sim.infer` hands a capture, collected per image (a
    :data:`sim.Capture` callable): each image's presentations in order."""

    n_images: int
    n_steps: int
    presentations: dict[int, list[Presentation]] = field(default_factory=dict)
    #: the counter encoder's inputs (``encoder: counter``): each image's key (uint64) and
    #: pixel codes, from its first presentation
    image_keys: dict[int, int] = field(default_factory=dict)
    pixels: dict[int, np.ndarray] = field(default_factory=dict)

    def __call__(
        self, idx: torch.Tensor, boost: int, trains: SpikeTrains, keys: np.ndarray | None
    ) -> None:
        b, t_steps, _ = trains.shape
        img = trains.img.cpu().numpy()
        pix = trains.pix.cpu().numpy()
        m, t = np.nonzero(trains.spikes.cpu().numpy())
        order = np.lexsort((pix[m], t, img[m]))  # by image, then step, then input
        im, tm, pm = img[m][order], t[order], pix[m][order].astype(np.uint16)
        bounds = np.searchsorted(im, np.arange(b + 1))
        for local in range(b):
            lo, hi = bounds[local], bounds[local + 1]
            steps = np.bincount(tm[lo:hi], minlength=t_steps).astype(np.uint16)
            key = 0 if keys is None else int(np.uint64(np.int64(keys[local])))
            p = Presentation(key, steps, pm[lo:hi].copy())
            i = int(idx[local])
            if trains.keys is not None and trains.codes is not None and boost == 0:
                self.image_keys[i] = int(np.uint64(np.int64(trains.keys[local])))
                self.pixels[i] = trains.codes[local].copy()
            self.presentations.setdefault(i, []).append(p)
            if len(self.presentations[i]) != boost + 1:
                raise RuntimeError(f"image {i}: presentation {boost} arrived out of order")


PIXEL_MAGIC = b"TSNNPXK1"


def write_pixels(path: Path, cap: CapturedImages, labels: np.ndarray, n_in: int) -> None:
    """The test images for the counter encoder on the chip (``main.c --pixels``):
    ``TSNNPXK1``, then uint32 version (1), images and inputs, then per image int32 label,
    uint64 image key, uint32 presentations P, P uint64 stochastic-rounding keys (one a
    presentation, as the simulator drew them) and its pixel codes (uint8 each),
    little-endian."""
    with path.open("wb") as f:
        f.write(PIXEL_MAGIC)
        f.write(struct.pack("<3I", VERSION, cap.n_images, n_in))
        for i in range(cap.n_images):
            pres = cap.presentations.get(i)
            if not pres or i not in cap.image_keys:
                raise RuntimeError(f"image {i} was not presented by the counter encoder")
            f.write(struct.pack("<iQI", int(labels[i]), cap.image_keys[i], len(pres)))
            f.write(b"".join(struct.pack("<Q", p.key) for p in pres))
            f.write(np.asarray(cap.pixels[i], dtype=np.uint8).tobytes())


def write(
    path: Path, cap: CapturedImages, labels: np.ndarray, n_in: int, max_presentations: int
) -> None:
    """Write the captured presentations of images 0..n-1 with their true ``labels``."""
    with path.open("wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<5I", VERSION, cap.n_images, n_in, cap.n_steps, max_presentations))
        for i in range(cap.n_images):
            pres = cap.presentations.get(i)
            if not pres:
                raise RuntimeError(f"image {i} was never presented")
            f.write(struct.pack("<iI", int(labels[i]), len(pres)))
            for p in pres:
                f.write(struct.pack("<QI", p.key, int(p.inputs.shape[0])))
                f.write(p.step_spikes.astype("<u2").tobytes())
                f.write(p.inputs.astype("<u2").tobytes())


@dataclass
class SpikeFile:
    """A spike file read back: its dimensions and, per image, label and presentations."""

    n_in: int
    n_steps: int
    max_presentations: int
    labels: list[int]
    images: list[list[Presentation]]


def _take(f: BinaryIO, n: int, what: str) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise SpikeFileError(f"truncated {what}")
    return b


def read(path: Path) -> SpikeFile:
    """Read a spike file (:func:`write`); a malformed one raises :class:`SpikeFileError`."""
    try:
        with path.open("rb") as f:
            if f.read(8) != MAGIC:
                raise SpikeFileError(f"{path}: not a tinysnn spike file (magic {MAGIC!r})")
            version, n_img, n_in, n_steps, max_p = struct.unpack("<5I", _take(f, 20, "header"))
            if version != VERSION:
                raise SpikeFileError(f"{path}: version {version}, this reader knows {VERSION}")
            labels, images = [], []
            for _ in range(n_img):
                label, n_p = struct.unpack("<iI", _take(f, 8, "image header"))
                pres = []
                for _ in range(n_p):
                    key, n_sp = struct.unpack("<QI", _take(f, 12, "presentation header"))
                    steps = np.frombuffer(_take(f, 2 * n_steps, "step counts"), "<u2")
                    inputs = np.frombuffer(_take(f, 2 * n_sp, "inputs"), "<u2")
                    if int(steps.sum()) != n_sp or (n_sp and int(inputs.max()) >= n_in):
                        raise SpikeFileError(f"{path}: inconsistent presentation")
                    pres.append(Presentation(key, steps.copy(), inputs.copy()))
                labels.append(label)
                images.append(pres)
    except OSError as e:
        raise SpikeFileError(f"{path}: {e.strerror or e}") from None
    except SpikeFileError as e:
        raise SpikeFileError(
            f"{path}: {e}" if not str(e).startswith(str(path)) else str(e)
        ) from None
    return SpikeFile(n_in, n_steps, max_p, labels, images)
