"""The export folder's README is the same text for the same design, however it is
assembled (a template filled from named values): compared with the README that
`tinysnn export` wrote for two small designs (both topologies, deterministic and
stochastic rounding) when the template replaced the string assembly.

The networks are untrained (a seeded initialisation) and the test images few, so the
text depends on the export alone. After a deliberate change of the README (or of the C
arrays its memory map lists), rewrite the expected files with
``TINYSNN_REGEN_README=1 pytest tests/export/test_readme.py`` and review their diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tinysnn_dse.core.params import QuantSpec, preset
from tinysnn_dse.core.sim import init_net
from tinysnn_dse.export import export_design
from tinysnn_dse.runner import RunSettings, Trained

EXPECTED = Path(__file__).resolve().parents[1] / "fixtures" / "export_readme"


@pytest.mark.parametrize(
    ("model", "rounding"), [("tinysnn", "nearest"), ("baseline", "stochastic")]
)
def test_readme_text_is_unchanged(tmp_path: Path, model: str, rounding: str) -> None:
    cfg = preset(model, 64, 12, "digits")
    net = init_net(cfg, torch.Generator().manual_seed(0))
    s = RunSettings(dataset="digits", train_samples=60, test_samples=20, seed=0, device="cpu")
    q = QuantSpec(scheme="ptq", rounding=rounding, weight_bits=8, vmem_bits=16, vth_bits=16,
                  vmem_int_bits=8, vth_int_bits=8)  # fmt: skip
    export_design(Trained(net, cfg, QuantSpec(), s, 1.0, 60), q, tmp_path / "x", test_samples=7)
    got = (tmp_path / "x" / "README.md").read_text()
    want = EXPECTED / f"{model}.md"
    if os.environ.get("TINYSNN_REGEN_README"):
        want.write_text(got)
    assert got == want.read_text()
