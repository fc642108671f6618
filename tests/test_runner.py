"""The runner's own functions: settings and their checks, the data split, training with
STDP pruning (single and batched), the formats an evaluation takes, checkpoints saved and
loaded (and refused), and a checkpoint re-tested to the record it was saved with.

The pruning tests came from tests/core (a core test may not import the runner)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from tinysnn_dse import data as data_mod
from tinysnn_dse import runner
from tinysnn_dse.core import prune, sim
from tinysnn_dse.core.energy import OpCounts
from tinysnn_dse.core.params import QuantSpec, apply_overrides, preset
from tinysnn_dse.core.quant import Quantizers, with_ranges
from tinysnn_dse.errors import CheckpointError, ConfigError
from tinysnn_dse.runner.evaluation import design_formats
from tinysnn_dse.runner.training import _prune_round

PTQ8 = QuantSpec(scheme="ptq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16)

# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("train_samples", 0, "train_samples must be at least 1"),
        ("test_samples", -1, "test_samples must be at least 1"),
        ("assign_samples", 0, "assign_samples must be at least 1"),
        ("holdout", -1, "holdout must be >= 0"),
        ("epochs", 0, "epochs must be at least 1"),
        ("seed", -1, "seed must be in 0..2**62"),
        ("seed", runner.MAX_SEED + 1, "seed must be in 0..2**62"),
        ("batch_size", 0, "batch_size must be at least 1"),
        ("threads", 0, "threads must be at least 1"),
        ("power_w", 0.0, "power_w must be a positive number"),
        ("power_w", float("nan"), "power_w must be a positive number"),
        ("device", "gpu", "bad device 'gpu'"),
        ("device", "cuda:x", "bad device 'cuda:x'"),
    ],
)
def test_settings_refuse_each_bad_value_in_one_line(field: str, value: object, needle: str) -> None:
    s = dataclasses.replace(runner.RunSettings(device="cpu"), **{field: value})
    with pytest.raises(ConfigError, match=needle.replace("*", r"\*")) as e:
        s.validate()
    assert "\n" not in str(e.value)


def test_settings_accept_the_limits() -> None:
    s = runner.RunSettings(seed=runner.MAX_SEED, device="cpu", holdout=0, power_w=0.5)
    assert s.validate() is s
    assert runner.resolve_device("cpu") == torch.device("cpu")
    assert runner.default_batch_size(torch.device("cpu")) == 256
    assert runner.default_batch_size(torch.device("cuda")) == 4096


# --------------------------------------------------------------------------------- split


def test_check_split_counts_and_refusals() -> None:
    ds = data_mod.load("digits")
    n_train, n_test = len(ds.train_images), len(ds.test_images)
    s = runner.RunSettings(device="cpu")
    assert runner.check_split(ds, s) == (n_train, n_train, n_train)
    s = runner.RunSettings(train_samples=100, assign_samples=40, holdout=50, device="cpu")
    assert runner.check_split(ds, s) == (100, 40, n_train - 50)
    for bad, needle in (
        ({"holdout": n_train}, "leaves no training data"),
        ({"train_samples": n_train + 1}, "train_samples: asked for"),
        ({"train_samples": 10, "assign_samples": 11}, "at most train_samples"),
        ({"test_samples": n_test + 1}, "test_samples: asked for"),
        ({"holdout": 20, "test_samples": 21}, "from the holdout"),
    ):
        with pytest.raises(ConfigError, match=needle):
            runner.check_split(ds, runner.RunSettings(device="cpu", **bad))  # type: ignore[arg-type]


def test_make_split_names_its_evaluation_set() -> None:
    ds = data_mod.load("digits")
    cpu = torch.device("cpu")
    s = runner.RunSettings(train_samples=30, assign_samples=20, test_samples=10, device="cpu")
    sp = runner.make_split(ds, s, cpu)
    assert (sp.train_x.shape[0], sp.assign_x.shape[0], sp.eval_x.shape[0]) == (30, 20, 10)
    assert sp.eval_set == "test[0:10]" and sp.n_classes == 10
    assert float(sp.train_x.max()) <= 1.0 and sp.train_x.dtype == torch.float32
    held = runner.make_split(ds, dataclasses.replace(s, holdout=15), cpu)
    avail = len(ds.train_images) - 15
    assert held.eval_set == f"train[{avail}:{avail + 10}] (holdout)"
    assert torch.equal(held.eval_y.cpu(), torch.from_numpy(ds.train_labels[avail : avail + 10]))


# ------------------------------------------------------------- training and evaluation


Small = tuple[runner.Trained, runner.Evaluation]


@pytest.fixture(scope="module")
def small() -> Small:
    """A PTQ W8/V16/T16 design on 40 digits, trained and tested."""
    cfg = preset("tinysnn", 64, 10, "digits")
    s = runner.RunSettings(train_samples=40, test_samples=20, device="cpu").validate()
    return runner.train_and_evaluate(cfg, PTQ8, s)


def test_design_formats_ptq_observes_ranges_itq_keeps_its_training_ones(small: Small) -> None:
    trained, ev = small
    ds = data_mod.load("digits")
    split = runner.make_split(ds, trained.settings, torch.device("cpu"))
    infer_model = trained.model
    q = design_formats(trained, PTQ8, infer_model, split)
    assert not q.needs_ranges and "FP32 inference of train[0:40]" in (q.ranges_source or "")
    assert ev.record.config["quant"]["ranges_source"] == q.ranges_source
    itq = dataclasses.replace(PTQ8, scheme="itq")
    trained_itq = dataclasses.replace(
        trained, quant=dataclasses.replace(itq, vmem_range_mv=(-80.0, -40.0), ranges_source="t")
    )
    got = design_formats(trained_itq, itq, infer_model, split)
    assert got.vmem_range_mv == (-80.0, -40.0) and got.ranges_source == "t"
    fixed = dataclasses.replace(itq, vmem_int_bits=8, vth_int_bits=8)
    assert design_formats(trained_itq, fixed, infer_model, split) == fixed


def test_observed_ranges_are_remembered_by_value_and_equal_a_fresh_pass(
    small: Small, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study asks for one FP32 network's ranges once per quantized point: an equal
    network (other tensors, same values) gets the first pass's numbers without a second
    pass, and the numbers are the ones a pass gives; a changed weight or seed runs one."""
    from tinysnn_dse.runner import training

    trained, _ = small
    ds = data_mod.load("digits")
    split = runner.make_split(ds, trained.settings, torch.device("cpu"))
    net, model = trained.net, trained.model
    g = torch.Generator().manual_seed(7 + runner.settings.RANGES_SEED_OFFSET)
    fresh = sim.observe_ranges(net, split.assign_x[: runner.settings.RANGE_SAMPLES], model, g,
                               "x")  # fmt: skip
    training._RANGES.clear()
    calls: list[int] = []
    real = training.observe_ranges

    def counted(*a, **k):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(training, "observe_ranges", counted)
    first = runner.observed_quant(PTQ8, net, model, split, 7, "first")
    copy = sim.Net(net.w.clone(), net.theta.clone(), None, None)
    second = runner.observed_quant(PTQ8, copy, model, split, 7, "second")
    assert len(calls) == 1
    assert (first.vmem_range_mv, first.vth_range_mv) == (second.vmem_range_mv,
                                                          second.vth_range_mv)  # fmt: skip
    assert "second" in (second.ranges_source or "") and "first" not in (second.ranges_source or "")
    want = with_ranges(PTQ8, fresh, model)  # the formats of a pass outside the memo
    assert dataclasses.replace(first, ranges_source=None) == dataclasses.replace(
        want, ranges_source=None
    )
    changed = copy.w.clone()
    changed[0, 0] += 0.5
    runner.observed_quant(PTQ8, copy._replace(w=changed), model, split, 7, "w")
    runner.observed_quant(PTQ8, net, model, split, 8, "seed")
    assert len(calls) == 3


def test_a_checkpoint_round_trips_and_re_tests_to_its_record(small: Small, tmp_path: Path) -> None:
    trained, ev = small
    ckpt, rec = runner.save(tmp_path, trained, ev)
    assert json.loads(rec.read_text()) == json.loads(json.dumps(ev.record.to_dict()))
    back = runner.load_checkpoint(ckpt)
    assert torch.equal(back.net.w, trained.net.w) and torch.equal(back.net.theta, trained.net.theta)
    assert back.model == trained.model and back.quant == trained.quant
    assert back.settings == trained.settings and back.train_ops == trained.train_ops
    assert back.design_quant is not None  # the design point's formats, from the record
    assert back.design_quant.ranges_source == ev.record.config["quant"]["ranges_source"]
    again = runner.evaluate_checkpoint(back, back.design_quant)
    assert torch.equal(again.test_counts, ev.test_counts)  # type: ignore[arg-type]
    a, b = again.record.to_dict(), ev.record.to_dict()
    timing = ("seconds", "per_s", "measured")
    for part in ("outcome", "memory", "design_point", "formats", "backend"):
        keep = {k: v for k, v in a[part].items() if not any(t in k for t in timing)}
        assert keep == {k: v for k, v in b[part].items() if not any(t in k for t in timing)}


def test_a_training_alone_round_trips_without_a_record(small: Small, tmp_path: Path) -> None:
    trained, _ = small
    path = runner.save_trained(tmp_path / "cache" / "t.pt", trained)
    back = runner.load_checkpoint(path)
    assert torch.equal(back.net.w, trained.net.w) and back.design_quant is None
    assert back.data_source is None and back.train_backend == trained.train_backend
    assert [p.name for p in path.parent.iterdir()] == ["t.pt"]  # no temporary file left


def test_load_checkpoint_refuses_what_is_not_one_in_one_line(small: Small, tmp_path: Path) -> None:
    trained, ev = small
    ckpt, _ = runner.save(tmp_path, trained, ev)
    good = torch.load(ckpt, weights_only=True)
    bad = tmp_path / "bad.pt"
    cases = [
        (None, "no such checkpoint file"),
        (b"garbage", "not a readable tinysnn checkpoint"),
        ({**good, "format": "other"}, "not a tinysnn checkpoint"),
        ({k: v for k, v in good.items() if k != "model_json"}, "incomplete checkpoint"),
        ({**good, "keep": torch.ones(3, 3, dtype=torch.bool)}, "pruning mask shape"),
        ({**good, "w": good["w"][:-1]}, "does not match config"),
    ]
    for content, needle in cases:
        bad.unlink(missing_ok=True)
        if isinstance(content, bytes):
            bad.write_bytes(content)
        elif content is not None:
            torch.save(content, bad)
        with pytest.raises(CheckpointError, match=needle) as e:
            runner.load_checkpoint(bad)
        assert "\n" not in str(e.value)


# ------------------------------------------------------------------------ STDP pruning


def test_stdp_pruning_during_training_reaches_the_target_on_both_backends() -> None:
    """A training that prunes in rounds: the kernels and the reference train the same
    pruned network (equal masks, weights to float32 rounding), every neuron keeps the
    same number of inputs, and the pruned weights are 0 after every round."""
    if not sim.kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    cfg = preset("tinysnn", 36, 10, prune=0.5, prune_rounds=2, prune_until=0.5)
    pix = torch.rand(8, 36, generator=torch.Generator().manual_seed(2)) ** 2
    out = []
    for backend in ("reference", "numba"):
        g = torch.Generator().manual_seed(0)
        net = sim.init_net(cfg, g)
        ops = OpCounts()
        rounds = prune.schedule(8, cfg)
        assert rounds == {2: 0.25, 4: 0.5}
        for i in range(8):
            net, _ = sim.train_sample(net, pix[i], cfg, Quantizers.fp32(), g, backend, ops)
            if i + 1 in rounds:
                net = _prune_round(net, cfg, Quantizers.fp32(), g, sim.Backend(backend),
                                   rounds[i + 1], ops)  # fmt: skip
                assert net.keep is not None
                assert set(net.keep.sum(0).tolist()) == {36 - round(36 * rounds[i + 1])}
                assert torch.all(net.w[~net.keep] == 0)
        out.append((net, ops))
    (a, oa), (b, ob) = out
    assert torch.equal(a.keep, b.keep)
    torch.testing.assert_close(a.w, b.w, rtol=0, atol=1e-6)
    assert oa.synapse_updates == ob.synapse_updates
    # normalisations: 8 samples + 2 rounds; after round 2 (4 of 8 samples) 18 of 36 inputs
    # of each of 10 neurons are pruned, after round 1 (2 samples) 9
    assert oa.normalisations == 10
    assert oa.pruned_normalised == (9 * 10) * (2 + 1) + (18 * 10) * (4 + 1)


def test_stdp_pruning_in_a_batch_equals_single_runs() -> None:
    """STDP pruning in a design batch: bright images (no re-presentation), deterministic
    rounding, the pruning rounds of the schedule after their images. Each point ends where
    `runner.train` of that point ends: the same retained synapses (prune 0.5 of 196: 98
    per neuron), weights to float32 rounding, thresholds and every event count, pruned
    events and normalised weights included."""
    cfg = apply_overrides(preset("tinysnn", 196, 30), {"prune": 0.5, "prune_rounds": 3})
    specs = [
        QuantSpec(scheme="itq", rounding="nearest", weight_bits=8, vmem_bits=16, vth_bits=16),
        QuantSpec(scheme="itq", rounding="truncate", weight_bits=6),
        QuantSpec(scheme="itq", rounding="nearest", weight_bits=4, vmem_bits=12, vth_bits=12),
    ]
    pix = 0.3 + 0.7 * torch.rand(12, 196, generator=torch.Generator().manual_seed(5))
    y = torch.zeros(12, dtype=torch.long)
    split = runner.Split(pix, y, pix, y, pix[:2], y[:2], "test", 10)
    s = runner.RunSettings(dataset="digits", seed=3)
    got = runner.train_batch(cfg, specs, s, split)
    for q, b in zip(specs, got, strict=True):
        one = runner.train(cfg, q, s, split)
        assert one.net.keep is not None and b.net.keep is not None
        assert int((~one.net.keep).sum(dim=0).unique().item()) == 98
        assert torch.equal(b.net.keep, one.net.keep)
        assert torch.equal(b.net.theta, one.net.theta)
        torch.testing.assert_close(b.net.w, one.net.w, rtol=0, atol=1e-6)
        assert float(b.net.w[~b.net.keep].abs().max()) == 0.0  # pruned weights stay 0
        assert one.train_ops is not None and b.train_ops is not None
        assert one.train_ops["presentations"] == 12  # no boosts: the premise
        assert b.train_ops == one.train_ops
        assert b.train_ops["pruned_events"] > 0 and b.train_ops["pruned_normalised"] > 0
