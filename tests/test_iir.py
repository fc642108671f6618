"""IIR-SNN's schedule for the gradient-trained family (issue 25 item 2): trained at
``iir_start`` steps, then retrained at each smaller number of steps down to the point's,
every stage starting from exactly the previous stage's tensors; the record names the
schedule and its stages; explore shares every stage between the points that pass
through it; a schedule that cannot descend is a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinysnn_dse import runner
from tinysnn_dse.core import diet
from tinysnn_dse.core.params import QuantSpec
from tinysnn_dse.errors import ConfigError
from tinysnn_dse.explore.policy import Trainings
from tinysnn_dse.explore.space import parse_space

SETTINGS = runner.RunSettings(dataset="digits", train_samples=300, test_samples=100,
                              device="cpu").validate()  # fmt: skip
PARAMS = {"schedule": "iir", "iir_start": 3, "epochs": 4, "iir_epochs": 2}


def test_each_stage_starts_from_the_previous_stages_tensors(monkeypatch) -> None:
    calls: list[tuple[int, list[torch.Tensor], list[torch.Tensor]]] = []
    real = diet.train

    def spy(net, x, y, tc, generator, on_epoch=None, formats=None):  # type: ignore[no-untyped-def]
        start = [t.detach().clone() for t in (*net.w, *net.leak, *net.theta)]
        out = real(net, x, y, tc, generator, on_epoch, formats)
        end = [t.detach().clone() for t in (*net.w, *net.leak, *net.theta)]
        calls.append((net.cfg.timesteps, start, end))
        return out

    monkeypatch.setattr(diet, "train", spy)
    from tinysnn_dse import data as data_mod

    split = runner.make_split(data_mod.load("digits"), SETTINGS, torch.device("cpu"))
    m = runner.family_of("diet").model("diet", 64, 16, 10, "digits", {**PARAMS, "timesteps": 1})
    t = runner.train(m, QuantSpec(), SETTINGS, split)
    assert [c[0] for c in calls] == [3, 2, 1]
    for prev, nxt in zip(calls, calls[1:], strict=False):
        assert all(torch.equal(a, b) for a, b in zip(prev[2], nxt[1], strict=True))
    # the first stage starts from the seed's initial network
    init = diet.init_net(diet.DietConfig(n_in=64, hidden=(16,), timesteps=3),
                         torch.Generator().manual_seed(SETTINGS.seed))  # fmt: skip
    assert all(torch.equal(a, b.detach()) for a, b in zip(calls[0][1], init.w, strict=False))
    assert t.train_ops is not None and t.train_ops["stages"] == [[3, 1200], [2, 600], [1, 600]]
    assert t.train_images == 2400
    ev = runner.evaluate(t, QuantSpec(), split)
    assert ev.record.key == "diet-n16-fp32-T1-sch-iir"
    assert ev.record.design_point.schedule == "iir"
    assert ev.record.config["train_stages"] == [[3, 1200], [2, 600], [1, 600]]


def test_explore_shares_every_stage(tmp_path: Path) -> None:
    """T = 1 and T = 2 by IIR from 3 steps: three FP32 trainings in all (3 direct, 2 and
    1 IIR), each made once, the T = 2 point's the T = 1 point's stage."""
    rest = {k: v for k, v in PARAMS.items() if k != "schedule"}  # the axis, not a param
    sp = parse_space({"study": "t", "data": {"train_samples": 300, "test_samples": 100},
                      "params": rest,
                      "designs": [{"model": "diet", "neurons": 16, "timesteps": [1, 2],
                                   "schedule": "iir"}]}, "t.yaml")  # fmt: skip
    assert sp.trainings == 3
    tr = Trainings(sp, SETTINGS, tmp_path)
    p1 = next(p for p in sp.points if p.timesteps == 1)
    p2 = next(p for p in sp.points if p.timesteps == 2)
    t1, _q, shared1 = tr.train_point(p1)
    assert sorted(tmp_path.joinpath("trainings").glob("*.pt")).__len__() == 3
    assert not shared1 and t1.train_ops["stages"] == [[3, 1200], [2, 600], [1, 600]]  # type: ignore[index]
    t2, _q, shared2 = tr.train_point(p2)
    assert shared2  # made as the first point's stage, loaded now
    assert t2.train_ops["stages"] == [[3, 1200], [2, 600]]  # type: ignore[index]
    assert len(list(tmp_path.joinpath("trainings").glob("*.pt"))) == 3


@pytest.mark.parametrize(
    ("params", "needle"),
    [({"schedule": "iir", "timesteps": 5}, "descends from iir_start = 5 steps"),
     ({"schedule": "iir", "timesteps": 2, "iir_start": 1}, "iir_start in 2..256"),
     ({"schedule": "cosine"}, "schedule: unknown value 'cosine'")],
)  # fmt: skip
def test_a_schedule_that_cannot_descend_is_one_line(params: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as e:
        diet.model_for(784, 10, 10, None, params)
    assert "\n" not in str(e.value)
    axes = {k: v for k, v in params.items() if k in ("schedule", "timesteps")}
    rest = {k: v for k, v in params.items() if k not in axes}
    with pytest.raises(ConfigError):
        parse_space({"study": "t", "designs": [{"model": "diet", "neurons": 10, **axes,
                                                "params": rest}]}, "t.yaml")  # fmt: skip
