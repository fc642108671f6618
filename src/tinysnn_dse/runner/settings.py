"""What a run is given: its settings (data set, budget, seed, device), checked, and the
data split they select (training, assignment and evaluation images)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse.errors import ConfigError

#: ``progress(phase, done, total)``: how progress reaches a caller (no CLI framework here)
Progress = Callable[[str, int, int], None]
EVAL_SEED_OFFSET = 1_000_003
#: the largest seed: the derived streams (seed + the offsets below) stay within a signed
#: 64-bit integer, which torch and numpy generators take
MAX_SEED = 2**62
RANGES_SEED_OFFSET = 2_000_003  # the FP32 pass that observes the Vmem and Vth ranges
#: images of the FP32 pass the Vmem and Vth ranges are observed on (the first ones of
#: the assignment set)
RANGE_SAMPLES = 1000


def no_progress(phase: str, done: int, total: int) -> None:
    """The default :data:`Progress`: tells no one."""


@dataclass(frozen=True)
class RunSettings:
    """Data set and budget of a run. ``None`` sample counts mean "all available"."""

    dataset: str = "digits"
    train_samples: int | None = None
    test_samples: int | None = None
    assign_samples: int | None = None  # default: every training sample used
    holdout: int = 0  # > 0: evaluate on the last `holdout` training images, not the test set
    epochs: int = 1
    seed: int = 0
    device: str = "auto"
    batch_size: int | None = None  # None: default_batch_size(device)
    threads: int | None = None
    power_w: float | None = None  # declared power for "time x power" energy (None: default)

    def validate(self) -> RunSettings:
        for name in ("train_samples", "test_samples", "assign_samples"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be at least 1, got {v}")
        if self.holdout < 0:
            raise ConfigError(f"holdout must be >= 0, got {self.holdout}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be in 0..2**62, got {self.seed}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if self.power_w is not None and not (self.power_w > 0 and math.isfinite(self.power_w)):
            raise ConfigError(f"power_w must be a positive number of watts, got {self.power_w}")
        resolve_device(self.device)
        return self


def default_batch_size(device: torch.device) -> int:
    """Inference batch when none is given: 256 images on the CPU (the kernel's threads
    need no more), 4096 on CUDA, where per-step launches dominate until batches are large
    (docs/benchmarks.md: 3.6k img/s at 256, 44k at 4096 on an H100)."""
    return 4096 if device.type == "cuda" else 256


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cpu``; ``cuda``; ``cuda:N``."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        idx = spec.split(":", 1)[1] if ":" in spec else "0"
        if not idx.isdigit():
            raise ConfigError(f"bad device {spec!r}; use auto, cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec} requested but CUDA is not available here")
        if int(idx) >= torch.cuda.device_count():
            raise ConfigError(f"device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(f"cuda:{idx}")
    raise ConfigError(f"bad device {spec!r}; use auto, cpu, cuda or cuda:N")


@dataclass
class Split:
    train_x: torch.Tensor
    train_y: torch.Tensor
    assign_x: torch.Tensor
    assign_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_set: str
    n_classes: int
    #: an event data set's binary frames (uint8 [S, bins, n_in]) of the training,
    #: assignment and evaluation samples, else None; ``*_x`` are then the samples' event
    #: counts as rates (the STDP family's input) and :meth:`frames` the gradient-trained
    #: family's view
    event_frames: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def frames(self) -> Split:
        """The split whose samples are the event frames (as it is without them)."""
        if self.event_frames is None:
            return self
        tr, asg, ev = self.event_frames
        return replace(self, train_x=tr, assign_x=asg, eval_x=ev, event_frames=None)


def _take(n: int | None, avail: int, what: str) -> int:
    if n is None:
        return avail
    if n > avail:
        raise ConfigError(f"{what}: asked for {n} samples but only {avail} are available")
    return n


def check_split(ds: data_mod.Dataset, s: RunSettings) -> tuple[int, int, int]:
    """(train, assign, available) counts of ``s`` on ``ds``, or a :class:`ConfigError`."""
    n_train_all = len(ds.train_images)
    if s.holdout >= n_train_all:
        raise ConfigError(f"holdout {s.holdout} leaves no training data ({n_train_all} images)")
    avail = n_train_all - s.holdout
    n_tr = _take(s.train_samples, avail, "train_samples")
    n_as = _take(s.assign_samples, n_tr, "assign_samples (at most train_samples)")
    n_eval = s.holdout if s.holdout else len(ds.test_images)
    _take(s.test_samples, n_eval, "test_samples" + (" (from the holdout)" if s.holdout else ""))
    return n_tr, n_as, avail


def make_split(ds: data_mod.Dataset, s: RunSettings, device: torch.device) -> Split:
    """Training, assignment and evaluation tensors (intensities in [0, 1])."""
    n_tr, n_as, avail = check_split(ds, s)

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(x, copy=True)).to(device)

    def px(x: np.ndarray) -> torch.Tensor:
        return t(x).to(torch.float32) / 255.0

    if s.holdout:
        ex = ds.train_images[avail:]
        ey = ds.train_labels[avail:]
        n_ev = _take(s.test_samples, len(ex), "test_samples (from the holdout)")
        eval_set = f"train[{avail}:{avail + n_ev}] (holdout)"
    else:
        ex, ey = ds.test_images, ds.test_labels
        n_ev = _take(s.test_samples, len(ex), "test_samples")
        eval_set = f"test[0:{n_ev}]"
    frames = None
    if ds.train_frames is not None and ds.test_frames is not None:
        fx = ds.train_frames[avail:] if s.holdout else ds.test_frames
        frames = (t(ds.train_frames[:n_tr]), t(ds.train_frames[:n_as]), t(fx[:n_ev]))
    return Split(
        event_frames=frames,
        train_x=px(ds.train_images[:n_tr]),
        train_y=t(ds.train_labels[:n_tr]),
        assign_x=px(ds.train_images[:n_as]),
        assign_y=t(ds.train_labels[:n_as]),
        eval_x=px(ex[:n_ev]),
        eval_y=t(ey[:n_ev]),
        eval_set=eval_set,
        n_classes=ds.n_classes,
    )


def sync(device: torch.device) -> Callable[[], None] | None:
    """What the energy meter calls to wait for ``device``'s queued work (CUDA), or None."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return None
