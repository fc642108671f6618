"""The one table of design axes (tinysnn_dse.axes): what derives from it, key stability,
the distributions stored studies hold, and the nearest-point map of per-axis samplers."""

from __future__ import annotations

import dataclasses

import pytest

from tinysnn_dse.axes import AXES, BY_NAME, FP32_ORDINAL, NAMES, nearest
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.explore.distributions import (
    display_distribution,
    grid_params,
    search_distribution,
)
from tinysnn_dse.explore.space import DESIGN_KEYS, parse_space
from tinysnn_dse.records import DesignPoint
from tinysnn_dse.report import CSV_FIELDS


def test_design_point_fields_are_the_axes_in_order() -> None:
    fields = dataclasses.fields(DesignPoint)
    assert tuple(f.name for f in fields) == (*NAMES, "params")
    for f, a in zip(fields, AXES, strict=False):
        if f.default is not dataclasses.MISSING:  # model and neurons are required
            assert f.default == a.default, a.name


def test_every_list_of_axes_derives_from_the_table() -> None:
    assert set(NAMES) <= set(DESIGN_KEYS)
    assert CSV_FIELDS[2 : 2 + len(NAMES)] == list(NAMES)
    assert set(DesignPoint("tinysnn", 10).to_dict()) == {*NAMES, "params", "key"}


def test_design_keys_of_existing_points_are_stable() -> None:
    """Keys written by every earlier version (studies resume and de-duplicate by key)."""
    assert DesignPoint("baseline", 400).key == "baseline-n400-fp32"
    assert (
        DesignPoint("tinysnn", 400, "itq", "stochastic", 8, 16, 16).key
        == "tinysnn-n400-itq-stochastic-w8-v16-t16"
    )
    assert DesignPoint("sl-stdp", 100, "ptq", "truncate", 4).key == (
        "sl-stdp-n100-ptq-truncate-w4-vfp32-tfp32"
    )
    p = DesignPoint("tinysnn", 10, params=(("theta_plus_mv", 1.0),))
    assert p.key.startswith("tinysnn-n10-fp32-p") and len(p.key) == len("tinysnn-n10-fp32-p") + 8


def test_grid_distributions_are_those_stored_studies_hold() -> None:
    """A grid study written by commit 027c933 resumes only if every axis keeps the
    distribution it was stored with (Optuna refuses a changed categorical)."""
    bits = ["fp32", *(str(b) for b in range(2, 33))]
    want = {
        "model": ["baseline", "sl-stdp", "tinysnn"],
        "scheme": ["fp32", "ptq", "itq"],
        "rounding": ["-", "truncate", "nearest", "stochastic"],
        "weight_bits": bits,
        "vmem_bits": bits,
        "vth_bits": bits,
        "leak": ["lif", "if"],  # issue 15 (a new study's parameter)
        "prune_method": ["-", "stdp", "magnitude"],
        "encoding": ["direct", "poisson"],  # issue 24 (new parameters of a study)
        "trainable": ["none", "leak", "threshold", "both"],
        "schedule": ["direct", "iir"],  # issue 25
        "init": ["random", "ann"],
    }
    for a in AXES:
        d = display_distribution(a)
        if a.kind == "count":  # neurons, t_present_ms (t_present_infer_ms from 0, linear)
            want_c = (1, 1_000_000, True) if a.log else (0, 1_000_000, False)
            assert (d.low, d.high, d.log) == want_c  # type: ignore[attr-defined]
        elif a.kind == "fraction":  # prune
            assert (d.low, d.high) == (0.0, 1.0)  # type: ignore[attr-defined]
        else:
            assert list(d.choices) == want[a.name], a.name  # type: ignore[attr-defined]
    fp32 = grid_params(DesignPoint("tinysnn", 100, "itq", "stochastic"))
    assert fp32 == {"model": "tinysnn", "neurons": 100, "scheme": "fp32", "rounding": "-",
                    "weight_bits": "fp32", "vmem_bits": "fp32", "vth_bits": "fp32",
                    "t_present_ms": 250, "leak": "lif", "t_present_infer_ms": 0,
                    "vmem_floor": 0, "prune": 0.0, "prune_method": "-",
                    "family": "stdp"}  # fmt: skip
    q = grid_params(DesignPoint("tinysnn", 100, "itq", "stochastic", 8, 16, None))
    assert (q["scheme"], q["rounding"], q["weight_bits"], q["vth_bits"]) == (
        "itq", "stochastic", "8", "fp32"
    )  # fmt: skip


def test_search_distributions_are_ordered_where_the_axis_is() -> None:
    pts = (DesignPoint("tinysnn", 100, "ptq", "nearest", 4), DesignPoint("tinysnn", 400),
           DesignPoint("baseline", 900, "itq", "nearest", 8, 16, 16))  # fmt: skip
    w = search_distribution(BY_NAME["weight_bits"], pts)
    n = search_distribution(BY_NAME["neurons"], pts)
    assert (w.low, w.high) == (4, FP32_ORDINAL)  # type: ignore[attr-defined]
    assert (n.low, n.high, n.log) == (100, 900, True)  # type: ignore[attr-defined]
    # the whole vocabulary, whatever the space names: a value added later is no new choice
    # (the models as stored studies hold them: the STDP family's; a family beside them is
    # suggested as ``family``, tests/test_families.py)
    assert search_distribution(BY_NAME["model"], pts).choices == ("baseline", "sl-stdp", "tinysnn")  # type: ignore[attr-defined]  # noqa: E501
    assert search_distribution(BY_NAME["rounding"], pts).choices == BY_NAME["rounding"].choices  # type: ignore[attr-defined]  # noqa: E501


def test_nearest_point_by_hand() -> None:
    a = DesignPoint("tinysnn", 100, "ptq", "nearest", 8).axes
    b = DesignPoint("tinysnn", 100, "itq", "stochastic", 4, 16, 16).axes
    c = DesignPoint("tinysnn", 400).axes  # FP32: its scheme and rounding do not count
    pts = [a, b, c]
    s = {"model": "tinysnn", "neurons": 100, "scheme": "itq", "rounding": "stochastic",
         "weight_bits": 8, "vmem_bits": 16, "vth_bits": 16, "t_present_ms": 250,
         "leak": "lif", "t_present_infer_ms": 0, "vmem_floor": 0, "prune": 0.0,
         "prune_method": "stdp", "depth": 1, "timesteps": 4, "encoding": "direct",
         "trainable": "both", "schedule": "direct", "init": "random"}  # fmt: skip
    # spans: neurons log2(400/100) = 2, weight 33-4 = 29, vmem/vth 33-16 = 17.
    # a: scheme and rounding differ (2) + vmem, vth 17/17 each (2) = 4.0
    # b: weight 4/29 = 0.138;  c: neurons 2/2 + weight 25/29 + 17/17 + 17/17 = 3.86
    assert nearest(s, pts) == 1
    s.update(scheme="ptq", rounding="nearest", vmem_bits=FP32_ORDINAL, vth_bits=FP32_ORDINAL)
    assert nearest(s, pts) == 0  # exact
    s.update(neurons=400, weight_bits=FP32_ORDINAL, scheme="itq")
    assert nearest(s, pts) == 2  # FP32 whatever the scheme
    assert nearest(s, [a, a]) == 0  # ties go to the earlier point


@pytest.mark.parametrize(
    ("axis", "value", "msg"),
    [
        ("model", "lenet", "unknown value 'lenet'; allowed: baseline, sl-stdp, tinysnn, diet"),
        ("rounding", "up", "unknown value 'up'"),
        ("neurons", 0, "0 is not allowed; expected an integer >= 1"),
        ("neurons", True, "expected an integer"),
        ("weight_bits", 1, "1 is an impossible width; use fp32 or 2-32"),
        ("weight_bits", 33, "impossible width"),
        ("weight_bits", "eight", "'eight' is not a width"),
    ],
)
def test_axis_parse_errors_name_the_place(axis: str, value: object, msg: str) -> None:
    with pytest.raises(ConfigError) as e:
        BY_NAME[axis].parse(value, "f.yaml: designs[0]." + axis)
    assert str(e.value).startswith(f"f.yaml: designs[0].{axis}: ") and msg in str(e.value)
    assert "\n" not in str(e.value)


def test_axes_beyond_the_papers_key_off_their_default_and_set_the_model() -> None:
    """Issue 15's axes: a point at their defaults keeps the key it always had; off them
    the key gains a fragment, and the axis sets its model parameter."""
    p = DesignPoint("tinysnn", 400, "ptq", "nearest", 8)
    assert p.key == "tinysnn-n400-ptq-nearest-w8-vfp32-tfp32"
    q = DesignPoint("tinysnn", 400, "ptq", "nearest", 8, t_present_ms=100, leak="if")
    assert q.key == "tinysnn-n400-ptq-nearest-w8-vfp32-tfp32-t100-leak-if"
    assert q.model_params == {"t_present_ms": 100, "leak": "if", "t_infer_ms": 0,
                              "vmem_floor_mv": 0, "prune": 0.0,
                              "prune_method": "stdp"}  # fmt: skip
    # an inference-only axis: its own key, the training of the point without it
    r = DesignPoint("tinysnn", 400, "ptq", "nearest", 8, t_present_infer_ms=50)
    assert r.key == "tinysnn-n400-ptq-nearest-w8-vfp32-tfp32-ti50"
    assert r.training_key == p.training_key == "tinysnn-n400-fp32"
    assert r.inference_params == {"t_infer_ms": 50}
    i = DesignPoint("tinysnn", 400, "itq", "nearest", 8, t_present_infer_ms=50)
    assert i.training_key == "tinysnn-n400-itq-nearest-w8-vfp32-tfp32"
    assert q.fp32.key == "tinysnn-n400-fp32-t100-leak-if"  # its own FP32 network
    assert q.training_key == q.fp32.key != p.training_key
    sp = parse_space({"designs": [{"model": "tinysnn", "neurons": 10, "t_present_ms": [250, 50],
                                   "leak": ["lif", "if"]}]}, "s.yaml")  # fmt: skip
    assert sorted(p.key for p in sp.points) == [
        "tinysnn-n10-fp32", "tinysnn-n10-fp32-leak-if", "tinysnn-n10-fp32-t50",
        "tinysnn-n10-fp32-t50-leak-if",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match=r"s.yaml: designs\[0\].t_present_ms: 0 is not allowed"):
        parse_space({"designs": [{"model": "tinysnn", "t_present_ms": 0}]}, "s.yaml")
    with pytest.raises(ConfigError, match=r"designs\[0\].leak: unknown value 'lf'; allowed: lif"):
        parse_space({"designs": [{"model": "tinysnn", "leak": "lf"}]}, "s.yaml")


def test_axis_values_parse() -> None:
    w = BY_NAME["weight_bits"]
    assert [w.parse(v, "x") for v in ("fp32", "FP32", None, "none", 8, "16")] == [
        None, None, None, None, 8, 16
    ]  # fmt: skip
    sp = parse_space(
        {"designs": [{"model": "tinysnn", "neurons": [10, 20], "weight_bits": [8, "fp32"],
                      "neuron_bits": [16]}]}, "s.yaml"
    )  # fmt: skip
    keys = sorted(p.key for p in sp.points)
    assert keys == [
        "tinysnn-n10-ptq-nearest-w8-v16-t16", "tinysnn-n10-ptq-nearest-wfp32-v16-t16",
        "tinysnn-n20-ptq-nearest-w8-v16-t16", "tinysnn-n20-ptq-nearest-wfp32-v16-t16",
    ]  # fmt: skip


def test_prune_axes_key_dedupe_and_share_trainings() -> None:
    """``prune`` and ``prune_method``: an unpruned point names no method (one point for
    both), a pruned one keys its fraction and, off the default, its method; magnitude
    pruning shares the unpruned FP32 training (as PTQ does), STDP pruning trains its own."""
    sp = parse_space({"designs": [{"model": "tinysnn", "neurons": 10, "weight_bits": 8,
                                   "prune": [0, 0.5], "prune_method": ["stdp", "magnitude"]}]},
                     "s.yaml")  # fmt: skip
    keys = sorted(p.key for p in sp.points)
    assert keys == [
        "tinysnn-n10-ptq-nearest-w8-vfp32-tfp32",
        "tinysnn-n10-ptq-nearest-w8-vfp32-tfp32-prune0.5",
        "tinysnn-n10-ptq-nearest-w8-vfp32-tfp32-prune0.5-pm-magnitude",
    ]
    by = {p.key: p for p in sp.points}
    plain, stdp, mag = (by[k] for k in keys)
    assert mag.training_key == plain.training_key == "tinysnn-n10-fp32"
    assert stdp.training_key == "tinysnn-n10-fp32-prune0.5"
    assert mag.inference_params == {"t_infer_ms": 0, "prune": 0.5, "prune_method": "magnitude"}
    assert stdp.model_params["prune"] == 0.5
    assert sp.trainings == 2
    assert grid_params(plain)["prune_method"] == "-" and grid_params(mag)["prune"] == 0.5


@pytest.mark.parametrize(
    ("blk", "msg"),
    [
        ({"prune": 1.0},
         "s.yaml: designs[0].prune: 1.0 is not allowed; expected a fraction in [0, 1)"),
        ({"prune": -0.1}, "expected a fraction in [0, 1)"),
        ({"prune": "half"}, "'half' is not allowed"),
        ({"prune_method": "random"},
         "designs[0].prune_method: unknown value 'random'; allowed: stdp, magnitude"),
    ],
)  # fmt: skip
def test_bad_prune_values_name_file_and_key(blk: dict, msg: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_space({"designs": [{"model": "tinysnn", **blk}]}, "s.yaml")
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_the_membrane_floor_axis() -> None:
    """``vmem_floor`` (mV below rest, 0: none): in the key only where set, sets the model
    parameter, and a negative value is a one-line error naming the axis."""
    sp = parse_space(
        {"designs": [{"model": "tinysnn", "neurons": 10, "vmem_floor": [0, 10]}]}, "s.yaml"
    )
    keys = sorted(p.key for p in sp.points)
    assert keys == ["tinysnn-n10-fp32", "tinysnn-n10-fp32-floor10"]
    floored = [p for p in sp.points if p.vmem_floor][0]
    assert floored.model_params["vmem_floor_mv"] == 10
    with pytest.raises(ConfigError, match="vmem_floor"):
        parse_space({"designs": [{"model": "tinysnn", "neurons": 10, "vmem_floor": -5}]}, "s.yaml")
