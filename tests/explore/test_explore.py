"""Exploration end to end through the CLI: resume, parallel workers, select, report, errors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from tinysnn_dse.axes import AXES, nearest
from tinysnn_dse.cli import main
from tinysnn_dse.explore.space import parse_space
from tinysnn_dse.explore.storage import open_storage
from tinysnn_dse.records import DesignPoint

MINI = """\
study: mini
data: {dataset: digits, train_samples: 60, test_samples: 40, epochs: 1, seed: 0}
designs:
  - {model: baseline, neurons: 10}
  - model: tinysnn
    neurons: 10
    scheme: ptq
    rounding: nearest
    weight_bits: [fp32, 8, 4]
  - {model: tinysnn, neurons: 10, scheme: itq, rounding: nearest, weight_bits: 8, neuron_bits: 16}
"""
MINI_KEYS = {
    "baseline-n10-fp32",
    "tinysnn-n10-fp32",
    "tinysnn-n10-ptq-nearest-w8-vfp32-tfp32",
    "tinysnn-n10-ptq-nearest-w4-vfp32-tfp32",
    "tinysnn-n10-itq-nearest-w8-v16-t16",
}
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    p = tmp_path / "mini.yaml"
    p.write_text(MINI)
    return p


def trials(url: str, study: str = "mini") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials()


def assert_each_point_once(url: str, study: str = "mini", keys: set[str] = MINI_KEYS) -> None:
    done = [
        t.user_attrs["design_key"]
        for t in trials(url, study)
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
    ]
    assert Counter(done) == Counter(keys), Counter(done)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TINYSNN_NO_DOWNLOAD"] = "1"
    return env


def test_explore_select_report(capsys, mini: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = run(capsys, "explore", str(mini), "--storage", url)
    assert code == 0, err
    assert "5/5 design points complete" in out
    assert_each_point_once(url)
    ts = [t for t in trials(url) if t.state == TrialState.COMPLETE]
    recs = {t.user_attrs["design_key"]: t.user_attrs["record"] for t in ts}
    # PTQ points reused the one FP32 training of tinySNN: 3 trainings for 5 points
    shared = {k for k, r in recs.items() if r["study"]["shared_training"]}
    assert len(shared) == 2 and all("ptq" in k for k in shared)
    # one cached training per network trained: the baseline's, tinySNN's FP32 (shared by
    # the PTQ points) and the ITQ point's
    assert len(list((tmp_path / "tinysnn-artifacts" / "trainings").glob("*.pt"))) == 3
    assert len(list((tmp_path / "tinysnn-artifacts" / "checkpoints").iterdir())) == 5
    for r in recs.values():
        assert 0 <= r["outcome"]["accuracy"] <= 1
        assert r["outcome"]["vth_saturated_fraction"] == 0.0  # bits from the observed range
        if r["design_point"]["vth_bits"] is not None:  # ITQ: the range of the FP32 training
            assert r["config"]["quant"]["vth_range_mv"][1] > -52.0
        for phase in ("train", "infer"):
            e = r["energy"][phase]
            assert e["modelled_j"] > 0 and e["measured_j"] > 0
            assert e["measured_method"] in ("rapl", "nvml", "time x power")
    assert set(ts[0].values) and optuna.load_study(study_name="mini", storage=url).metric_names

    # running again repeats nothing
    code, out, err = run(capsys, "explore", str(mini), "--storage", url)
    assert code == 0 and "5 already done, 0 queued" in err
    assert len(trials(url)) == 5

    # select: ranking recomputed independently from the stored records
    code, out, err = run(capsys, "select", "--storage", url, "--mu", "0.5", "--json")
    assert code == 0, err
    rows = json.loads(out)
    expect = sorted(
        recs.values(),
        key=lambda r: (
            -(r["outcome"]["accuracy"] - 0.5 * r["memory"]["normalized"]),
            r["memory"]["bits"],
        ),
    )
    assert [r["design_key"] for r in rows] == [r["design_point"]["key"] for r in expect]
    for r in rows:
        src = recs[r["design_key"]]
        want = src["outcome"]["accuracy"] - 0.5 * src["memory"]["normalized"]
        assert r["reward"] == pytest.approx(want)
    code, out, err = run(
        capsys, "select", "--storage", url, "--mu", "0.5", "--min-accuracy", "1.01"
    )
    assert code == 2 and "min accuracy" in err
    code, out, err = run(capsys, "select", "--storage", url, "--max-memory-kb", "0.001")
    assert code == 1 and "no design point meets the constraints" in err

    # export: the chosen checkpoint re-evaluates to its record
    exp = tmp_path / "chosen"
    code, out, err = run(capsys, "select", "--storage", url, "--export", str(exp))
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", str(exp / "model.pt"), "--json")
    assert code == 0, err
    chosen = json.loads((exp / "record.json").read_text())
    if chosen["design_point"]["scheme"] == "itq" or chosen["design_point"]["weight_bits"] is None:
        assert json.loads(out)["outcome"]["accuracy"] == chosen["outcome"]["accuracy"]

    # report: files and non-trivial figures
    rep = tmp_path / "rep"
    code, out, err = run(capsys, "report", "--storage", url, "--out", str(rep))
    assert code == 0, err
    for f in ("report.md", "index.html", "trials.csv", "selected.json"):
        assert (rep / f).is_file()
    import matplotlib.image as mpimg

    for name in ("fig6_accuracy", "fig7_memory", "fig8a_train_energy", "fig8b_infer_energy",
                 "fig9_reward", "pareto"):  # fmt: skip
        img = mpimg.imread(rep / f"{name}.png")
        assert img.shape[0] > 200 and img.shape[1] > 300
        assert img[..., :3].std() > 0.05, f"{name} is blank"
        assert (rep / f"{name}.svg").stat().st_size > 5000
        assert f'src="{name}.png"' in (rep / "index.html").read_text()
    lines = (rep / "trials.csv").read_text().splitlines()
    assert len(lines) == 1 + 5


def test_dry_run_runs_nothing(capsys, mini: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, "explore", str(mini), "--dry-run", "--json")
    assert code == 0
    got = json.loads(out)
    assert {p["key"] for p in got["points"]} == MINI_KEYS
    assert not any(tmp_path.glob("*.db")) and not Path("tinysnn.db").exists()


def test_bad_input_leaves_the_study_intact(capsys, mini: Path, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    code, _, err = run(capsys, "explore", str(mini), "--storage", url)
    assert code == 0, err
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    bad = tmp_path / "bad.yaml"
    for text, needle in [
        ("designs: [\n", "malformed YAML"),
        ("study: mini\ndesigns:\n  - {model: tinysnn, weight_bits: 99}\n", "impossible width"),
        ("study: mini\ndesigns:\n  - {model: tinysnn, scheme: []}\n", "empty list"),
        ("study: mini\nwat: 1\ndesigns:\n  - {model: tinysnn}\n", "wat: unknown key"),
    ]:
        bad.write_text(text)
        code, out, err = run(capsys, "explore", str(bad), "--storage", url)
        assert code == 2 and err.startswith("error: ") and needle in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # a different data budget on the same study is refused, not mixed in
    bad.write_text(MINI.replace("test_samples: 40", "test_samples: 30"))
    code, out, err = run(capsys, "explore", str(bad), "--storage", url)
    assert code == 2 and "another data budget" in err
    for store, needle in [
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot open storage"),
        (f"sqlite:///{tmp_path}/no/such/dir/x.db", "does not exist"),
        ("mysql+nodriver://x@127.0.0.1/x", "cannot open storage"),
        ("not-a-url", "not a database URL"),
    ]:
        code, out, err = run(capsys, "explore", str(mini), "--storage", store)
        assert code == 2 and needle in err, err
        assert len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "select", "--storage", f"sqlite:///{tmp_path}/absent.db")
    assert code == 2 and "no such study storage" in err
    assert not (tmp_path / "absent.db").exists()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def _wait_for(pred, timeout: float = 300.0, proc: subprocess.Popen | None = None) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        if proc is not None and proc.poll() is not None:  # it ended before pred held
            raise AssertionError(f"the run ended first (exit {proc.returncode})")
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_killed_run_resumes_without_repeats(mini: Path, tmp_path: Path) -> None:
    # trials long enough (several seconds each) to kill one mid-way: with 600 images a
    # 5-point run could finish between two reads of a busy SQLite file, and the wait
    # then timed out after 300 s (a flaky run of this test, 2026-12-04)
    mini.write_text(
        MINI.replace("train_samples: 60", "train_samples: 1200").replace("epochs: 1", "epochs: 2")
    )
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    cmd = [sys.executable, "-m", "tinysnn_dse.cli", "explore", str(mini), "--storage", url]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip

    def one_done_one_running() -> bool:
        if not db.exists():
            return False
        try:
            ts = trials(url)
        except Exception:
            return False
        done = sum(t.state == TrialState.COMPLETE for t in ts)
        # a running trial that has recorded its worker (killed in the instant between
        # the trial's start and that record, it would wait for a stale heartbeat instead)
        running = any(t.state == TrialState.RUNNING and "worker_pid" in t.user_attrs for t in ts)
        return done >= 1 and running

    _wait_for(one_done_one_running, proc=proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    states = Counter(t.state for t in trials(url))
    assert states[TrialState.RUNNING] == 1 and states[TrialState.COMPLETE] < 5
    res = subprocess.run(cmd, cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "stale trials failed" in res.stderr  # the killed trial, failed and retried
    assert_each_point_once(url)
    ts = trials(url)
    assert sum(t.state == TrialState.FAIL for t in ts) == 1
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in ts)


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_two_workers_complete_each_point_once(capsys, mini: Path, tmp_path: Path, storage):
    url = f"sqlite:///{tmp_path / 's.db'}" if storage == "sqlite" else f"journal:{tmp_path}/j.log"
    code, out, err = run(capsys, "explore", str(mini), "--storage", url, "--workers", "2")
    assert code == 0, err
    assert_each_point_once(url)
    pids = {t.user_attrs.get("worker_pid") for t in trials(url) if t.state == TrialState.COMPLETE}
    assert len(pids) == 2  # both worker processes ran trials


def _pg_up() -> bool:
    try:
        import psycopg

        psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3)
        return True
    except Exception:
        return False


_OPEN = (
    "import sys; from tinysnn_dse.explore.storage import open_storage; open_storage(sys.argv[1])"
)


@pytest.mark.postgres
@pytest.mark.skipif(not _pg_up(), reason="no PostgreSQL server on 127.0.0.1:5432")
def test_processes_opening_a_fresh_postgres_database_at_once() -> None:
    """Four processes open a brand-new database at the same moment: they race to create
    Optuna's tables, and every one of them must still get the storage."""
    import psycopg

    name = f"tinysnn_race_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        procs = [
            subprocess.Popen([sys.executable, "-c", _OPEN, url], stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        assert open_storage(url).get_all_studies() == []
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
@pytest.mark.skipif(not _pg_up(), reason="no PostgreSQL server on 127.0.0.1:5432")
def test_two_explore_processes_share_one_postgres_study(mini: Path, tmp_path: Path) -> None:
    """Two `tinysnn explore` processes, as on two machines, started at the same moment."""
    study = f"mini-{uuid.uuid4().hex[:8]}"
    art = tmp_path / "art"
    cmd = [sys.executable, "-m", "tinysnn_dse.cli", "explore", str(mini), "--storage", PG_URL,
           "--study", study, "--artifacts", str(art), "--threads", "1"]  # fmt: skip
    try:
        procs = [
            subprocess.Popen(
                cmd,
                cwd=tmp_path,
                env=cli_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(2)
        ]
        for p in procs:
            _, e = p.communicate(timeout=600)
            assert p.returncode == 0, e
        assert_each_point_once(PG_URL, study)
        # whichever process took them, every point ran once; duplicates queued by the two
        # explore processes were pruned, never run twice
        ran = [t for t in trials(PG_URL, study) if "record" in t.user_attrs]
        assert len(ran) == 5
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study, storage=PG_URL)


def test_tpe_sampler_runs_n_trials(capsys, tmp_path: Path) -> None:
    space = tmp_path / "tpe.yaml"
    space.write_text(MINI.replace("study: mini", "study: mini\nsampler: tpe\nn_trials: 3"))
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = run(capsys, "explore", str(space), "--storage", url)
    assert code == 0, err
    ts = trials(url)
    assert len(ts) == 3 and all(t.state == TrialState.COMPLETE for t in ts)
    assert all(t.user_attrs["design_key"] in MINI_KEYS for t in ts)
    # the sampler suggests each axis (ordered bits, FP32 as 33), not one opaque design
    for t in ts:
        assert set(t.params) == {a.name for a in AXES}
        assert isinstance(t.distributions["weight_bits"], IntDistribution)
        dp = DesignPoint.from_dict(t.user_attrs["design"])
        near = parse_space(yaml.safe_load(space.read_text()), "x").points
        assert dp == near[nearest(t.params, [q.axes for q in near])]
    code, out, err = run(capsys, "explore", str(space), "--storage", url, "--n-trials", "2")
    assert code == 0, err
    assert len(trials(url)) == 5  # 2 more; repeats of a done point reuse its values
    # a value added to an axis (and a new model): the study resumes and can reach them
    space.write_text(
        space.read_text().replace("weight_bits: [fp32, 8, 4]", "weight_bits: [fp32, 8, 6, 4]")
        + "  - {model: sl-stdp, neurons: 10}\n"
    )
    code, out, err = run(capsys, "explore", str(space), "--storage", url, "--n-trials", "2")
    assert code == 0, err
    assert len(trials(url)) == 7 and all(t.state == TrialState.COMPLETE for t in trials(url))
    # a grid run of the same study would mix two kinds of distribution per axis: refused
    grid = tmp_path / "grid.yaml"
    grid.write_text(space.read_text().replace("sampler: tpe", "sampler: grid"))
    code, out, err = run(capsys, "explore", str(grid), "--storage", url)
    assert code == 2 and "was run with sampler tpe" in err and err.count("\n") == 1, err
    assert len(trials(url)) == 7


def test_a_spaces_n_trials_is_shared_among_workers(capsys, tmp_path: Path) -> None:
    """n_trials in the space counts the run's trials in all, however many workers."""
    space = tmp_path / "tpe.yaml"
    space.write_text(MINI.replace("study: mini", "study: mini\nsampler: nsga2\nn_trials: 3"))
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = run(capsys, "explore", str(space), "--storage", url, "--workers", "2")
    assert code == 0, err
    assert len(trials(url)) == 3


def test_grid_study_resumes_after_a_value_is_added(capsys, mini: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    small = tmp_path / "small.yaml"
    small.write_text(MINI.replace("weight_bits: [fp32, 8, 4]", "weight_bits: [fp32, 8]"))
    code, out, err = run(capsys, "explore", str(small), "--storage", url)
    assert code == 0, err
    assert "4/4 design points complete" in out
    code, out, err = run(capsys, "explore", str(mini), "--storage", url)  # adds W4
    assert code == 0, err
    assert "5/5 design points complete" in out and "1 queued now" in err
    assert_each_point_once(url)
    t = next(t for t in trials(url) if t.user_attrs["design_key"].endswith("w4-vfp32-tfp32"))
    assert t.params["weight_bits"] == "4" and t.params["scheme"] == "ptq"


BATCHED = """\
study: batched
itq_batch: 3
data: {dataset: digits, train_samples: 60, test_samples: 40, epochs: 1, seed: 0}
designs:
  - model: tinysnn
    neurons: 10
    scheme: [itq, ptq]
    rounding: [nearest, stochastic]
    weight_bits: [8, 4]
    neuron_bits: [fp32, 16]
"""


def test_batched_itq_points_train_once_per_group(capsys, tmp_path: Path) -> None:
    """8 ITQ points in groups of <= 3 with 2 workers: every point completes once, each
    group is trained once (its members' energy says how many shared the run), and each
    record describes its own precision. (tests/core/test_design_batch.py checks what a
    batch computes.)"""
    sp = tmp_path / "batched.yaml"
    sp.write_text(BATCHED)
    url = f"sqlite:///{tmp_path / 'b.db'}"
    code, out, err = run(capsys, "explore", str(sp), "--dry-run")
    assert code == 0 and "9 trainings in 4 training runs (itq_batch 3)" in out.replace("\n", " ")
    code, out, err = run(capsys, "explore", str(sp), "--storage", url, "--workers", "2")
    assert code == 0, err
    keys = {p.key for p in parse_space(yaml.safe_load(BATCHED), "b").points}
    assert len(keys) == 16
    assert_each_point_once(url, "batched", keys)
    done = [t for t in trials(url, "batched") if t.state == TrialState.COMPLETE]
    recs = [t.user_attrs["record"] for t in done]
    itq = [r for r in recs if r["design_point"]["scheme"] == "itq"]
    assert len(itq) == 8
    sizes = Counter(r["study"]["train_batch_points"] for r in itq)
    assert sizes == {3: 6, 2: 2}
    assert all(
        r["energy"]["train"]["measured_shared_by"] == r["study"]["train_batch_points"] for r in itq
    )
    trainings = list((tmp_path / "tinysnn-artifacts" / "trainings").glob("*.pt"))
    assert len(trainings) == 1 + 8  # the FP32 training (PTQ, neuron ranges) + each ITQ point
    w4 = [r for r in itq if r["design_point"]["weight_bits"] == 4]
    assert all(
        r["memory"]["bits"] < min(q["memory"]["bits"] for q in itq if q not in w4) for r in w4
    )


def test_hypervolume_history_by_hand(tmp_path: Path) -> None:
    """Optuna's hypervolume of (accuracy up, memory down, energy down) against reference
    (0, 4, 5): one point (0.5, 2, 3) spans 0.5 x 2 x 2 = 2; adding (0.8, 3, 4) adds its box
    0.8 x 1 x 1 less the overlap 0.5 x 1 x 1: 2.3; a dominated point adds nothing."""
    from optuna.trial import create_trial

    from tinysnn_dse.explore import hypervolume_history

    url = f"sqlite:///{tmp_path / 'hv.db'}"
    s = optuna.create_study(study_name="hv", storage=open_storage(url),
                            directions=["maximize", "minimize", "minimize"])  # fmt: skip
    for v in ((0.5, 2.0, 3.0), (0.8, 3.0, 4.0), (0.4, 3.5, 4.5)):
        s.add_trial(create_trial(values=list(v)))
    hist = hypervolume_history(url, "hv", (0.0, 4.0, 5.0))
    assert [t for t, _ in hist] == [0, 1, 2]
    assert [h for _, h in hist] == pytest.approx([2.0, 2.3, 2.3])


def test_inference_time_is_an_axis_that_shares_the_training(capsys, tmp_path: Path) -> None:
    """t_present_infer_ms changes only the test passes: its points share one training,
    and their latency is the inference time x presentations per test image."""
    space = tmp_path / "ti.yaml"
    space.write_text(
        "study: ti\ndata: {dataset: digits, train_samples: 60, test_samples: 40, epochs: 1}\n"
        "designs:\n  - {model: tinysnn, neurons: 10, t_present_infer_ms: [0, 50],"
        " weight_bits: [fp32, 8]}\n"
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = run(capsys, "explore", str(space), "--storage", url)
    assert code == 0, err
    assert "(1 trainings)" in " ".join(err.split())
    assert len(list((tmp_path / "tinysnn-artifacts" / "trainings").glob("*.pt"))) == 1
    recs = {t.user_attrs["design_key"]: t.user_attrs["record"] for t in trials(url, "ti")}
    fast = recs["tinysnn-n10-ptq-nearest-w8-vfp32-tfp32-ti50"]
    ops = fast["energy"]["infer"]["ops"]
    assert ops["steps"] == 50 * ops["presentations"]
    assert fast["outcome"]["latency_ms"] == pytest.approx(50 * ops["presentations"] / 40)
    slow = recs["tinysnn-n10-ptq-nearest-w8-vfp32-tfp32"]["energy"]["infer"]["ops"]
    assert slow["steps"] == 250 * slow["presentations"]


def test_a_trial_found_finished_at_tell_does_not_end_the_explore(
    capsys, mini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna's tell finding a worker's trial already finished (seen once in CI on a
    resumed two-worker SQLite study): the stored trial stands and the grid worker goes on
    with the queue, so explore still ends with every point done once and exit 0. Here the
    first tell stores the trial and then raises as Optuna does in that case."""
    from optuna.study import _optimize

    real = _optimize._tell_with_warning
    raised: list[int] = []

    def tell_then_raise(*args: object, **kwargs: object) -> object:
        out = real(*args, **kwargs)  # type: ignore[arg-type]
        if not raised:
            raised.append(1)
            raise ValueError("Cannot tell a COMPLETE trial.")
        return out

    monkeypatch.setattr(_optimize, "_tell_with_warning", tell_then_raise)
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _out, err = run(capsys, "explore", str(mini), "--storage", url)
    assert code == 0, err
    assert raised
    assert_each_point_once(url)
