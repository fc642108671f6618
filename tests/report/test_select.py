"""Selection: reward, constraints, tie-breaks and the Pareto set, recomputed by hand."""

from __future__ import annotations

import math

import pytest

from tinysnn_dse.errors import ConfigError
from tinysnn_dse.records import Record
from tinysnn_dse.report.select import Constraints, pareto, rank, row


def rec(n: int, acc: float, mem_bits: int, m: float, e_inf: float = 1e-3, model="tinysnn"):
    """A record, written in the flat form of tinysnn 0.1.0 (schema 1), as read back."""
    return Record.from_dict(raw(n, acc, mem_bits, m, e_inf, model))


def raw(n: int, acc: float, mem_bits: int, m: float, e_inf: float = 1e-3, model="tinysnn"):
    phase = {"samples": 100, "measured_power_w": 65.0, "measured_seconds": 1.0}
    return {
        "trial_number": n,
        "accuracy": acc,
        "memory_bits": mem_bits,
        "normalized_memory": m,
        "memory_vs_baseline_fp32": m / 4,
        "design_point": {"key": f"p{n}", "model": model, "neurons": 10, "scheme": "ptq",
                         "rounding": "nearest", "weight_bits": 8, "vmem_bits": None,
                         "vth_bits": None},
        "energy": {
            "infer": {"modelled_j": e_inf, "modelled_j_per_sample": e_inf / 100,
                      "measured_j": 2.0, "measured_j_per_sample": 0.02,
                      "measured_method": "time x power", **phase},
            "train": {"modelled_j": 10 * e_inf, "modelled_j_per_sample": e_inf / 10,
                      "measured_j": 20.0, "measured_j_per_sample": 0.2,
                      "measured_method": "time x power", **phase},
        },
    }  # fmt: skip


RECS = [
    rec(0, 0.90, 32_000, 1.00),
    rec(1, 0.88, 8_000, 0.25),
    rec(2, 0.80, 4_000, 0.125),
    rec(3, 0.60, 2_000, 0.0625),
]


@pytest.mark.parametrize("mu", [0.0, 0.1, 0.5, 1.0, 2.0, 10.0])
def test_rank_matches_reward_computed_by_hand(mu: float) -> None:
    rows = rank(RECS, mu)
    expect = sorted(RECS, key=lambda r: -(r.accuracy - mu * r.memory.normalized))
    assert [r["trial"] for r in rows] == [r.study["trial_number"] for r in expect]
    for r in rows:
        src = RECS[r["trial"]]
        assert r["reward"] == pytest.approx(src.accuracy - mu * src.memory.normalized)


def test_higher_mu_picks_smaller_models() -> None:
    picks = [rank(RECS, mu)[0]["memory_bits"] for mu in (0.0, 0.1, 0.5, 1, 2, 10)]
    assert picks == sorted(picks, reverse=True)
    assert picks[0] == 32_000 and picks[-1] == 2_000


def test_ties_break_on_memory_then_accuracy_then_trial() -> None:
    a = rec(5, 0.5, 1000, 0.0)
    b = rec(4, 0.5, 1000, 0.0)
    c = rec(6, 0.5, 500, 0.0)
    assert [r["trial"] for r in rank([a, b, c], 1.0)] == [6, 4, 5]
    assert [r["trial"] for r in rank([b, a, c], 1.0)] == [6, 4, 5]


def test_constraints_filter() -> None:
    assert [r["trial"] for r in rank(RECS, 2.0, Constraints(min_accuracy=0.85))] == [1, 0]
    kb = 8_000 / 8 / 1024
    assert {r["trial"] for r in rank(RECS, 0, Constraints(max_memory_kb=kb))} == {1, 2, 3}
    low = [rec(7, 0.9, 100, 0.1, e_inf=5e-3), rec(8, 0.5, 100, 0.1, e_inf=1e-3)]
    assert [r["trial"] for r in rank(low, 0, Constraints(max_energy_mj=2.0))] == [8]
    train = Constraints(max_energy_mj=20.0, energy_phase="train")  # train = 10 x infer here
    assert [r["trial"] for r in rank(low, 0, train)] == [8]
    meas = Constraints(max_energy_mj=1000.0, energy_source="measured")  # 2 J > 1 J
    assert rank(low, 0, meas) == []


def test_memory_reference_changes_m() -> None:
    r = rank(RECS, 1.0, reference="baseline-fp32")[0]
    assert r["normalized_memory"] == RECS[r["trial"]].memory.normalized / 4
    assert "baseline" in r["memory_reference"]


def test_json_row_schema() -> None:
    r = row(RECS[1], 0.5, "same-topology")
    for k in ("trial", "design_point", "accuracy", "memory_bits", "normalized_memory", "reward",
              "train_energy_modelled_mj", "infer_energy_measured_mj",
              "infer_energy_measured_method"):  # fmt: skip
        assert k in r
    assert r["infer_energy_modelled_mj"] == pytest.approx(1.0)
    # which schema and which backends produced the numbers (issue 29)
    assert r["schema_version"] == 2 and r["backend"] == RECS[1].backend


def test_pareto_front() -> None:
    rows = [row(r, 0.5, "same-topology") for r in RECS]
    rows.append(row(rec(9, 0.70, 8_000, 0.25), 0.5, "same-topology"))  # dominated by 1
    front = pareto(rows, "infer_energy_modelled_uj_per_sample")
    assert {r["trial"] for r in front} == {0, 1, 2, 3}
    nan = [dict(r, x=math.nan) for r in rows]
    assert {r["trial"] for r in pareto(nan, "x")} == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "bad",
    [
        Constraints(min_accuracy=1.5),
        Constraints(max_memory_kb=-1),
        Constraints(energy_phase="sleep"),
        Constraints(energy_source="guess"),
    ],
)
def test_bad_constraints(bad: Constraints) -> None:
    with pytest.raises(ConfigError):
        rank(RECS, 0.5, bad)
    with pytest.raises(ConfigError):
        rank(RECS, -1.0)


def test_records_round_trip_and_read_schema_1() -> None:
    """A record reads back what it wrote (schema 2); a flat record of tinysnn 0.1.0 reads
    with one spelling (``neurons``), and a newer or broken one is a one-line RecordError."""
    import json

    from tinysnn_dse.records import RecordError

    r = RECS[1]
    d = json.loads(json.dumps(r.to_dict()))
    assert d["schema_version"] == 2 and d["design_point"]["neurons"] == 10
    assert "n_exc" not in json.dumps(d)
    assert Record.from_dict(d) == r
    for bad in ({**d, "schema_version": 3}, {"design_point": {}}, {"schema_version": 2}):
        with pytest.raises(RecordError) as e:
            Record.from_dict(bad)
        assert "\n" not in str(e.value)


def test_a_study_written_by_027c933_still_selects_and_reports(tmp_path, capsys) -> None:
    """Trial records of tinysnn at commit 027c933 (a 3-point digits study, kept in
    tests/fixtures/records_v1.json) load in `select` and `report` without re-running."""
    import json
    from pathlib import Path

    import optuna

    from tinysnn_dse.cli import main

    old = json.loads((Path(__file__).parents[1] / "fixtures" / "records_v1.json").read_text())
    url = f"sqlite:///{tmp_path / 'old.db'}"
    study = optuna.create_study(
        study_name="old", storage=url, directions=["maximize", "minimize", "minimize"]
    )
    for r in old["explore"]:
        study.add_trial(
            optuna.trial.create_trial(
                values=[r["accuracy"], r["memory_bytes"] / 1024, 1.0],
                user_attrs={"record": r, "design_key": r["design_point"]["key"]},
            )
        )
    with pytest.raises(SystemExit) as e:
        main(["select", "--storage", url, "--mu", "0.5", "--json"])
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    rows = json.loads(out)
    assert {r["design_key"] for r in rows} == {r["design_point"]["key"] for r in old["explore"]}
    assert all("neurons" in r["design_point"] and "n_exc" not in r["design_point"] for r in rows)
    with pytest.raises(SystemExit) as e:
        main(["report", "--storage", url, "--out", str(tmp_path / "rep")])
    assert e.value.code == 0, capsys.readouterr().err
    assert (tmp_path / "rep" / "trials.csv").read_text().count("\n") == 4
    train = Record.from_dict(old["train"])  # `train --json` of the same commit
    assert train.design_point.neurons == 10 and train.accuracy == old["train"]["accuracy"]
    # a record this version cannot read: one line naming the trial, exit 2
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.5, 1.0, 1.0], user_attrs={"record": {"junk": 1}, "design_key": "x"}
        )
    )
    with pytest.raises(SystemExit) as e:
        main(["select", "--storage", url, "--mu", "0.5"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "trial 3" in err and err.count("\n") == 1


def test_accuracy_against_an_axis_figure(tmp_path) -> None:
    """One line per precision and network, points at each presentation time."""
    from tinysnn_dse.records import DesignPoint
    from tinysnn_dse.report import figures

    rows = [
        {"design_point": DesignPoint("tinysnn", 100, "ptq", "nearest", w, t_present_ms=t).to_dict(),
         "accuracy": a}
        for w, t, a in ((8, 250, 0.8), (8, 50, 0.7), (None, 250, 0.82), (None, 50, 0.75))
    ]  # fmt: skip
    png = figures.accuracy_against(rows, "t_present_ms", "presentation time (ms)", tmp_path)
    assert png.name == "accuracy_vs_t_present_ms.png" and png.stat().st_size > 1000
    assert (tmp_path / "accuracy_vs_t_present_ms.svg").is_file()
