"""Search-space parsing: enumeration, FP32 collapse, shared trainings, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tinysnn_dse.errors import ConfigError
from tinysnn_dse.explore.space import DesignPoint, parse_space

SPACES = Path(__file__).resolve().parents[2] / "src" / "tinysnn_dse" / "spaces"


def space(designs: list, **top: object):
    return parse_space({"study": "t", "designs": designs, **top}, "t.yaml")


def test_paper_spaces_have_the_papers_points() -> None:
    for name in ("paper-mnist", "paper-fashion", "paper-mnist-2k"):
        sp = parse_space(yaml.safe_load((SPACES / f"{name}.yaml").read_text()), name)
        # baseline + SL-STDP + tinySNN FP32, then 2 schemes x 3 roundings x 6 x 3 precisions
        assert len(sp.points) == 3 + 2 * 3 * 6 * 3 == 111
        # PTQ points share the tinySNN FP32 training: 3 FP32 trainings + 54 ITQ
        assert sp.trainings == 57
        full = name != "paper-mnist-2k"
        assert (sp.budget.train_samples is None) == full
        assert sp.budget.dataset in ("mnist", "fashion-mnist")
        assert {p.neurons for p in sp.points} == {400}


def test_seeds_spaces_vary_the_new_axes() -> None:
    """Issue 15: neurons, presentation time and leak beside PTQ precision; >= 300 grid
    points on 2,000 images, the NSGA-II twin the same points in a quarter of the trials."""
    grid, nsga, full = (
        parse_space(yaml.safe_load((SPACES / f"{n}.yaml").read_text()), n)
        for n in ("seeds-mnist-2k", "seeds-mnist-2k-nsga2", "seeds-mnist")
    )
    # per network: 2 roundings x (5 x 3 precisions - the FP32 one) + the FP32 point = 29
    assert len(grid.points) == 2 * 5 * 2 * 29 == 580 and grid.trainings == 20
    assert {p.key for p in nsga.points} == {p.key for p in grid.points}
    assert nsga.sampler == "nsga2" and nsga.n_trials == 145 == len(grid.points) // 4
    assert {p.t_present_ms for p in grid.points} == {250, 150, 100, 50, 25}
    assert {p.leak for p in grid.points} == {"lif", "if"}
    assert {p.neurons for p in grid.points} == {100, 400}
    # full data: 3 presentation times x 7 pruning settings x (4 x 2 precisions) = 168
    assert full.budget.train_samples is None and len(full.points) == 168
    assert full.trainings == 3 * 4  # unpruned + 3 STDP fractions; magnitude shares
    assert {p.prune for p in full.points} == {0.0, 0.5, 0.75, 0.9}


def test_prune_space_counts_its_points_and_trainings_by_hand() -> None:
    sp = parse_space(yaml.safe_load((SPACES / "seeds-prune-mnist-2k.yaml").read_text()), "p")
    # 2 presentation times x 2 leaks x (1 unpruned + 3 fractions x 2 methods) x 8 precisions
    assert len(sp.points) == 2 * 2 * 7 * 8 == 224
    assert sp.trainings == 2 * 2 * 4
    assert {p.prune_method for p in sp.points if not p.is_pruned} == {"stdp"}


def test_smoke_space_is_small_on_digits_and_holds_both_families() -> None:
    sp = parse_space(yaml.safe_load((SPACES / "smoke.yaml").read_text()), "smoke")
    assert sp.budget.dataset == "digits"
    assert 10 <= len(sp.points) <= 24
    assert {p.family for p in sp.points} == {"stdp", "diet"}


def test_fp32_collapses_to_one_point_and_comes_first() -> None:
    sp = space(
        [
            {
                "model": "tinysnn",
                "neurons": 10,
                "scheme": ["ptq", "itq"],
                "rounding": ["nearest", "stochastic"],
                "weight_bits": ["fp32", 8],
            }
        ]
    )
    keys = [p.key for p in sp.points]
    assert keys[0] == "tinysnn-n10-fp32"
    assert len(keys) == 1 + 4 and len(set(keys)) == len(keys)
    # ITQ before PTQ, so that the FP32 training exists when the PTQ points need it
    assert [p.scheme for p in sp.points[1:]] == ["itq", "itq", "ptq", "ptq"]


def test_neuron_bits_moves_vmem_and_vth_together() -> None:
    sp = space([{"model": "tinysnn", "neurons": 5, "weight_bits": 8, "neuron_bits": [16, 8]}])
    assert {(p.vmem_bits, p.vth_bits) for p in sp.points} == {(16, 16), (8, 8)}


def test_t_present_train_ms_names_the_training_time() -> None:
    """`t_present_train_ms` is t_present_ms by the name that pairs it with
    t_present_infer_ms: the same points, keys and trainings; both at once is an error."""
    a = space([{"model": "tinysnn", "neurons": 5, "t_present_train_ms": [250, 100],
                "t_present_infer_ms": [0, 50]}])  # fmt: skip
    b = space([{"model": "tinysnn", "neurons": 5, "t_present_ms": [250, 100],
                "t_present_infer_ms": [0, 50]}])  # fmt: skip
    assert [p.key for p in a.points] == [p.key for p in b.points]
    assert {(p.t_present_ms, p.t_present_infer_ms) for p in a.points} == {
        (250, 0), (250, 50), (100, 0), (100, 50)
    }  # fmt: skip
    with pytest.raises(ConfigError, match="give t_present_train_ms or t_present_ms"):
        space([{"model": "tinysnn", "t_present_ms": 100, "t_present_train_ms": 100}])


def test_ptq_points_share_one_training_itq_points_do_not() -> None:
    a = DesignPoint("tinysnn", 10, "ptq", "nearest", 8, None, None)
    b = DesignPoint("tinysnn", 10, "ptq", "stochastic", 4, 8, 8)
    c = DesignPoint("tinysnn", 10, "itq", "nearest", 8, None, None)
    assert a.training_key == b.training_key == DesignPoint("tinysnn", 10).key
    assert c.training_key == c.key != a.training_key
    assert DesignPoint.from_dict(b.to_dict()) == b


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"study": "t", "designs": [{"model": "tinysnn"}], "bogus": 1}, "bogus: unknown key"),
        ({"study": "t", "designs": []}, "designs: expected a non-empty list"),
        ({"study": "t"}, "designs: missing"),
        ({"study": "t", "designs": [{"model": "resnet"}]}, "designs[0].model: unknown value"),
        ({"study": "t", "designs": [{"model": "tinysnn", "weight_bits": [8, 1]}]},
         "designs[0].weight_bits: 1 is an impossible width"),
        ({"study": "t", "designs": [{"model": "tinysnn", "weight_bits": []}]},
         "designs[0].weight_bits: empty list"),
        ({"study": "t", "designs": [{"model": "tinysnn", "neurons": "many"}]},
         "designs[0].neurons: 'many' is not allowed"),
        ({"study": "t", "designs": [{"model": "tinysnn", "colour": 1}]},
         "designs[0].colour: unknown key"),
        ({"study": "t", "data": {"dataset": "cifar"}, "designs": [{"model": "tinysnn"}]},
         "data.dataset: unknown data set 'cifar'"),
        ({"study": "t", "data": {"epochs": 0}, "designs": [{"model": "tinysnn"}]},
         "data.epochs: 0 is not allowed"),
        ({"study": "t", "sampler": "bayes", "designs": [{"model": "tinysnn"}]},
         "sampler: unknown value 'bayes'"),
        ({"study": "t", "params": {"no_such": 1}, "designs": [{"model": "tinysnn"}]},
         "params: unknown parameter 'no_such'"),
        (["not", "a", "mapping"], "expected a mapping at the top level"),
        ({"study": "t", "itq_batch": 0, "designs": [{"model": "tinysnn"}]},
         "itq_batch: 0 is not allowed; expected an integer >= 1"),
    ],
)  # fmt: skip
def test_errors_name_file_key_and_what_is_allowed(raw: object, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_space(raw, "space.yaml")
    msg = str(e.value)
    assert msg.startswith("space.yaml"), msg
    assert needle in msg, msg
    assert "\n" not in msg


def test_itq_batch_groups_itq_points_of_one_tinysnn_network() -> None:
    designs = [
        {"model": "baseline", "neurons": 10, "scheme": "itq", "weight_bits": [8, 4]},
        {"model": "tinysnn", "neurons": 10, "scheme": ["itq", "ptq"],
         "rounding": ["nearest", "stochastic"], "weight_bits": ["fp32", 8, 6, 4]},
    ]  # fmt: skip
    sp = space(designs, itq_batch=4)
    itq = [p for p in sp.points if p.model == "tinysnn" and p.scheme == "itq" and not p.is_fp32]
    assert len(itq) == 6
    groups = {tuple(q.key for q in sp.itq_group(p)) for p in itq}
    assert sorted(len(g) for g in groups) == [2, 4]  # 6 points cut into groups of <= 4
    assert all(len(sp.itq_group(p)) == 1 for p in sp.points if p not in itq)  # others alone
    # the same groups whatever order the blocks come in; the queue interleaves them
    again = space(designs[::-1], itq_batch=4)
    assert {tuple(q.key for q in again.itq_group(p)) for p in itq} == groups
    first_two = [p for p in sp.points if p in itq][:2]
    assert sp.itq_group(first_two[0]) != sp.itq_group(first_two[1])
    # batching changes the networks, so it is part of the study's budget; 1 changes nothing
    assert sp.budget_dict()["itq_batch"] == 4
    assert "itq_batch" not in space(designs).budget_dict()
    assert all(len(space(designs).itq_group(p)) == 1 for p in itq)


def test_itq_points_with_quantized_neurons_count_their_fp32_range_training() -> None:
    sp = space([{"model": "tinysnn", "neurons": 10, "scheme": "itq", "weight_bits": 8,
                 "neuron_bits": [16, "fp32"]}])  # fmt: skip
    assert sp.trainings == 3  # two ITQ trainings + the FP32 one their 16-bit formats read


def test_queue_starts_shared_and_long_trainings_first() -> None:
    sp = space(
        [
            {"model": ["baseline", "tinysnn"], "neurons": 10},
            {
                "model": "tinysnn",
                "neurons": 10,
                "scheme": ["ptq", "itq"],
                "rounding": ["nearest", "stochastic"],
                "weight_bits": [8, 4],
                "neuron_bits": [16, "fp32"],
            },
        ],
        itq_batch=4,
    )
    order = sp.queue_order()
    assert sorted(p.key for p in order) == sorted(p.key for p in sp.points)  # a permutation
    # the FP32 network that PTQ points share and ITQ ranges come from, then the baseline
    assert [p.key for p in order[:2]] == ["tinysnn-n10-fp32", "baseline-n10-fp32"]
    # then one point of each ITQ group (8 ITQ points, groups of 4) starts that group
    leaders = order[2:4]
    assert {tuple(q.key for q in sp.itq_group(p)) for p in leaders} == {
        tuple(q.key for q in sp.itq_group(p)) for p in sp.points if p.scheme == "itq"
    }
    # every other point reuses a training started before it (PTQ ones the FP32 network,
    # ITQ ones their group's), in the order those trainings start
    for p in order[4:]:
        assert p.scheme == "ptq" or set(sp.itq_group(p)) & set(leaders), p.key
    assert [p.scheme for p in order[4:]] == ["ptq"] * 8 + ["itq"] * 6
    last = [p for p in order[4:] if sp.itq_group(p) == sp.itq_group(leaders[1])]
    assert [order.index(p) for p in last] == list(range(len(order) - len(last), len(order)))
