"""Measured energy: RAPL from a powercap tree, its wrap-around, and the declared-power fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinysnn_dse import meter


def fake_rapl(root: Path, uj: int, rng: int = 1_000_000) -> Path:
    d = root / "intel-rapl:0"
    d.mkdir(parents=True, exist_ok=True)
    (d / "energy_uj").write_text(str(uj))
    (d / "max_energy_range_uj").write_text(str(rng))
    sub = root / "intel-rapl:0:0"  # a sub-domain: must not be added to the package
    sub.mkdir(exist_ok=True)
    (sub / "energy_uj").write_text("5")
    (sub / "max_energy_range_uj").write_text(str(rng))
    return d


def test_rapl_difference_and_wraparound(tmp_path: Path) -> None:
    d = fake_rapl(tmp_path, 100_000)
    assert meter.detect("cpu", rapl_root=tmp_path) == "rapl"
    with meter.measure("cpu", rapl_root=tmp_path) as m:
        (d / "energy_uj").write_text("350000")
    assert m.method == "rapl" and m.energy_j == pytest.approx(0.25) and m.power_w is None
    with meter.measure("cpu", rapl_root=tmp_path) as m:
        (d / "energy_uj").write_text("50000")  # wrapped at 1 J
    assert m.energy_j == pytest.approx(0.7)


def test_fallback_is_time_times_declared_power(tmp_path: Path) -> None:
    empty = tmp_path / "none"
    assert meter.detect("cpu", rapl_root=empty) == "time x power"
    with meter.measure("cpu", rapl_root=empty) as m:
        pass
    assert m.method == "time x power" and m.power_w == meter.DEFAULT_POWER_W["cpu"]
    assert m.energy_j == pytest.approx(m.seconds * m.power_w)
    with meter.measure("cpu", power_w=10.0, rapl_root=empty) as m:
        sum(range(10_000))
    assert m.power_w == 10.0 and m.energy_j == pytest.approx(m.seconds * 10.0) and m.seconds > 0


def test_cuda_without_nvml_falls_back() -> None:
    # No GPU here (and in CI): NVML raises, so the declared GPU power is used.
    if meter._nvml_reader(0) is not None:
        pytest.skip("a GPU with NVML energy counters is present")
    assert meter.detect("cuda:0") == "time x power"
    with meter.measure("cuda:0") as m:
        pass
    assert m.power_w == meter.DEFAULT_POWER_W["cuda"]
