"""The training policy on its own, without a study: what is shared, batched, cached."""

from __future__ import annotations

from pathlib import Path

import yaml

from tinysnn_dse import runner
from tinysnn_dse.explore.policy import Trainings
from tinysnn_dse.explore.space import parse_space

SPACE = """
study: policy
data: {dataset: digits, train_samples: 40, test_samples: 20}
itq_batch: 2
designs:
  - model: tinysnn
    neurons: 8
    scheme: [ptq, itq]
    rounding: nearest
    weight_bits: [fp32, 8]
    neuron_bits: [fp32, 16]
"""


def trainings(tmp: Path) -> Trainings:
    sp = parse_space(yaml.safe_load(SPACE), "policy")
    s = runner.RunSettings(dataset="digits", train_samples=40, test_samples=20, device="cpu")
    return Trainings(sp, s, tmp / "art")


def test_shares_batches_and_caches_trainings(tmp_path: Path, monkeypatch) -> None:
    t = trainings(tmp_path)
    pts = {p.key: p for p in t.space.points}
    fp32 = pts["tinysnn-n8-fp32"]
    ptq = pts["tinysnn-n8-ptq-nearest-w8-vfp32-tfp32"]
    itq = [p for k, p in pts.items() if k.startswith("tinysnn-n8-itq")]
    assert len(itq) == 3 and all(len(t.space.itq_group(p)) >= 1 for p in itq)
    made: list[str] = []
    real_train, real_batch = runner.train, runner.train_batch

    def train(model, quant, *a, **k):  # type: ignore[no-untyped-def]
        made.append(f"train {quant.label()}")
        return real_train(model, quant, *a, **k)

    def batch(model, quants, *a, **k):  # type: ignore[no-untyped-def]
        made.append(f"batch of {len(quants)}")
        return real_batch(model, quants, *a, **k)

    monkeypatch.setattr(runner, "train", train)
    monkeypatch.setattr(runner, "train_batch", batch)
    tr, q, shared = t.train_point(fp32)
    assert not shared and q.is_fp32 and made == ["train fp32"]
    tr2, q2, shared2 = t.train_point(ptq)  # PTQ reuses the FP32 training
    assert shared2 and made == ["train fp32"] and tr2.net.w.equal(tr.net.w)
    for p in itq:
        _, qi, shared = t.train_point(p)
        assert not shared
        if qi.vmem_bits is not None:  # ranges observed on the shared FP32 training
            assert "FP32 training of the same network" in (qi.ranges_source or "")
    # 3 ITQ points in groups of at most 2: a batch of 2 and one single training, once each
    assert made[0] == "train fp32" and sorted(m.split(" ")[0] for m in made[1:]) == [
        "batch",
        "train",
    ]
    assert "batch of 2" in made and sum(m.startswith("train itq") for m in made) == 1
    assert len(list((tmp_path / "art" / "trainings").glob("*.pt"))) == 1 + 3
    # another process with the same artifact folder trains nothing
    made.clear()
    again = trainings(tmp_path)
    for p in [fp32, ptq, *itq]:
        again.train_point(p)
    assert made == []
