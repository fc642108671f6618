"""Measured energy of a run (method.md section 6): the device's own counter where one exists.

In order of preference, and always named in the result (``method``):

- ``nvml``: on a CUDA device, NVML's total energy counter of that GPU
  (``nvmlDeviceGetTotalEnergyConsumption``, mJ since driver load; Volta and newer);
- ``rapl``: on the CPU, the package domains of Linux powercap RAPL
  (``/sys/class/powercap/intel-rapl:N/energy_uj``) when they are readable;
- ``time x power``: wall time times a declared power (``power_w``; default
  :data:`DEFAULT_POWER_W` for the device type) where no counter can be read.

A counter measures the whole device, not this process alone: other load on the machine is
included. That is why the modelled energy exists beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Declared power when no counter is readable, by device type (W). A typical desktop CPU
#: package TDP and a data-centre GPU's board power; override with ``--power-w``.
DEFAULT_POWER_W = {"cpu": 65.0, "cuda": 300.0}
RAPL_ROOT = Path("/sys/class/powercap")


@dataclass
class Measurement:
    """Energy of one measured block: filled in when the block ends."""

    method: str = ""
    energy_j: float = 0.0
    seconds: float = 0.0
    power_w: float | None = None  # the declared power, for "time x power"


def _rapl_domains(root: Path) -> list[tuple[Path, int]]:
    """Readable package domains (``intel-rapl:N``) and their counter ranges in uJ."""
    out = []
    for d in sorted(root.glob("intel-rapl:*")):
        if d.name.count(":") != 1:  # sub-domains (core, uncore, dram) are inside packages
            continue
        try:
            int((d / "energy_uj").read_text())
            rng = int((d / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        out.append((d / "energy_uj", rng))
    return out


def _nvml_reader(index: int) -> Callable[[], float] | None:
    """A function returning the GPU's total energy in J, or None if NVML cannot give it."""
    try:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
    except Exception:  # NVMLError without a GPU or driver, ImportError, old GPUs
        return None
    return lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0


def detect(device: str, power_w: float | None = None, rapl_root: Path = RAPL_ROOT) -> str:
    """The method :func:`measure` will use on ``device`` (``cpu``, ``cuda``, ``cuda:N``)."""
    if device.startswith("cuda"):
        idx = int(device.split(":")[1]) if ":" in device else 0
        if _nvml_reader(idx) is not None:
            return "nvml"
    elif _rapl_domains(rapl_root):
        return "rapl"
    return "time x power"


@contextmanager
def measure(
    device: str,
    power_w: float | None = None,
    sync: Callable[[], None] | None = None,
    rapl_root: Path = RAPL_ROOT,
) -> Iterator[Measurement]:
    """Measure the energy of the ``with`` block on ``device``; the result is filled at exit.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each reading so that queued GPU
    work is inside the block.
    """
    m = Measurement()
    kind = "cuda" if device.startswith("cuda") else "cpu"
    read: Callable[[], float] | None = None
    wrap = 0.0
    if kind == "cuda":
        read = _nvml_reader(int(device.split(":")[1]) if ":" in device else 0)
        m.method = "nvml" if read else ""
    else:
        domains = _rapl_domains(rapl_root)
        if domains:
            m.method = "rapl"

            def read() -> float:
                return sum(int(p.read_text()) for p, _ in domains) / 1e6

            wrap = sum(r for _, r in domains) / 1e6
    if not m.method:
        m.method = "time x power"
        m.power_w = power_w if power_w is not None else DEFAULT_POWER_W[kind]
    elif power_w is not None:
        m.power_w = None  # a counter exists: the declared power is not used
    if sync:
        sync()
    e0 = read() if read else 0.0
    t0 = time.perf_counter()
    try:
        yield m
    finally:
        if sync:
            sync()
        m.seconds = time.perf_counter() - t0
        if read:
            de = read() - e0
            if de < 0:  # the RAPL counter wrapped around (at most once in a sane block)
                de += wrap
            m.energy_j = de
        else:
            m.energy_j = m.seconds * float(m.power_w or 0.0)
