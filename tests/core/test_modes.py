"""The modes (core/modes.py): parsed once from their spellings where the frozen specs are
built, carried as enum members below, spelled exactly as before in JSON and text, and
never compared as strings in the core."""

from __future__ import annotations

import ast
import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from tinysnn_dse.axes import ROUNDINGS
from tinysnn_dse.core import kernels
from tinysnn_dse.core.modes import Mode, RoundMode, Rule, Topology
from tinysnn_dse.core.params import (
    PRESETS,
    RULES,
    TOPOLOGIES,
    QuantSpec,
    apply_overrides,
    model_from_dict,
    preset,
    quant_from_dict,
)
from tinysnn_dse.core.quant import Quantizers
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.records import quant_label

SRC = Path(__file__).resolve().parents[2] / "src" / "tinysnn_dse"


def test_vocabularies_are_the_enums() -> None:
    assert tuple(m.value for m in RoundMode) == ROUNDINGS  # the axis table's rounding choices
    assert tuple(m.value for m in Rule) == RULES
    assert tuple(m.value for m in Topology) == TOPOLOGIES
    for topology, rule in PRESETS.values():
        assert isinstance(topology, Topology) and isinstance(rule, Rule)
    for cls in (RoundMode, Rule, Topology):
        assert [m.code for m in cls] == list(range(len(cls)))


def test_parsed_once_where_the_specs_are_built() -> None:
    cfg = preset("baseline", 10, 4)
    assert cfg.topology is Topology.INHIBITORY and cfg.rule is Rule.PAIR
    lat = apply_overrides(cfg, {"topology": "lateral"})
    assert lat.topology is Topology.LATERAL
    assert model_from_dict(json.loads(json.dumps(dataclasses.asdict(lat)))) == lat
    q = QuantSpec(rounding="stochastic", weight_bits=8)  # type: ignore[arg-type]
    assert q.rounding is RoundMode.STOCHASTIC
    assert quant_from_dict(json.loads(json.dumps(dataclasses.asdict(q)))) == q
    qz = Quantizers.from_spec(q)
    assert qz.rounding is RoundMode.STOCHASTIC and qz.stochastic
    assert Quantizers(None, None, None, "truncate").rounding is RoundMode.TRUNCATE  # type: ignore[arg-type]
    assert not Quantizers.fp32().stochastic
    with pytest.raises(ConfigError, match="unknown rounding 'round'; choose one of truncate, "):
        QuantSpec(rounding="round")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown topology 'ring'"):
        apply_overrides(cfg, {"topology": "ring"})
    with pytest.raises(ConfigError, match="unknown rule 'hebb'; choose one of pair, sl-stdp"):
        apply_overrides(cfg, {"rule": "hebb"})


def test_members_are_spelled_as_the_strings_they_replace() -> None:
    """Records and checkpoints store ``asdict`` of the specs as JSON: byte for byte what
    the plain strings gave."""
    q = QuantSpec(rounding="truncate")  # type: ignore[arg-type]
    text = json.dumps(dataclasses.asdict(q), sort_keys=True)
    assert '"rounding": "truncate"' in text
    assert json.loads(text)["rounding"] == "truncate"
    cfg = preset("sl-stdp", 10, 4)
    d = json.dumps(dataclasses.asdict(cfg))
    assert '"topology": "inhibitory", "rule": "sl-stdp"' in d
    assert f"{cfg.rule} / {cfg.topology!s}" == "sl-stdp / inhibitory"
    q8 = QuantSpec(rounding="truncate", weight_bits=8)  # type: ignore[arg-type]
    assert q8.label() == quant_label("ptq", "truncate", 8, None, None)
    assert "-truncate-w8-" in q8.label()
    for m in (RoundMode.NEAREST, Rule.SL_STDP, Topology.LATERAL):
        assert pickle.loads(pickle.dumps(m)) is m
        assert m == m.value and hash(m) == hash(m.value)


def test_kernel_codes_come_from_the_enums() -> None:
    assert Rule.PAIR.code == kernels.RULE_PAIR and Rule.SL_STDP.code == kernels.RULE_SL_STDP
    assert kernels.RULE_PAIR != kernels.RULE_SL_STDP
    from tinysnn_dse.core import int_kernels

    assert RoundMode.STOCHASTIC.code == int_kernels.ROUND_STOCHASTIC


SPELLINGS = {m.value for cls in (RoundMode, Rule, Topology) for m in cls}


def _string_compares(path: Path) -> list[str]:
    """``x == "nearest"``, ``"pair" in ...``: a mode's spelling in a comparison."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                elts = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                for e in elts:
                    if isinstance(e, ast.Constant) and e.value in SPELLINGS:
                        out.append(f"{path.name}:{node.lineno} {e.value!r}")
    return out


def test_no_mode_compared_as_a_string_below_the_entry() -> None:
    files = [*(SRC / "core").glob("*.py"), SRC / "export" / "c.py", SRC / "export" / "nir_graph.py"]
    bad = [hit for f in files for hit in _string_compares(f)]
    assert not bad, bad


def test_mode_subclasses_are_enums_of_str() -> None:
    assert issubclass(RoundMode, Mode) and isinstance(RoundMode.NEAREST, str)
    assert RoundMode.of(RoundMode.NEAREST) is RoundMode.NEAREST
