"""Failure paths of exploration (issue 29): signals, dead parents, database blips, foreign
or corrupt storages, hostile input. Each ends in one line, with nothing left running,
written or lost; each test here failed on 9695a4b."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState
from test_explore import (  # type: ignore[import-not-found]
    MINI,
    PG_URL,
    _pg_up,
    _wait_for,
    assert_each_point_once,
    cli_env,
    run,
    trials,
)

from tinysnn_dse.explore import stopping
from tinysnn_dse.explore.liveness import fail_stale
from tinysnn_dse.explore.progress import EtaClock, Progress
from tinysnn_dse.explore.storage import StorageError, open_storage, retry, transient
from tinysnn_dse.explore.study import Plan

# trials of several seconds each, so that a signal lands while trials run
LONG = MINI.replace("train_samples: 60", "train_samples: 1200").replace("epochs: 1", "epochs: 2")
CMD = [sys.executable, "-m", "tinysnn_dse.cli", "explore"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _running_pids(url: str) -> set[int]:
    try:
        ts = trials(url)
    except Exception:
        return set()
    return {
        int(t.user_attrs["worker_pid"])
        for t in ts
        if t.state == TrialState.RUNNING and "worker_pid" in t.user_attrs
    }


def _start(space: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CMD, str(space), "--storage", url, *extra],
        cwd=space.parent,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _ends_in_one_line(err: str) -> str:
    """A run's stderr (its progress lines first): one error line, the last."""
    lines = err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("error: ")] == lines[-1:], err
    assert "Traceback" not in err, err
    return lines[-1]


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_explore_stops_every_worker(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM or SIGHUP to `explore --workers 2`: both workers end with it, their trials
    are failed with the reason, one line, exit 128 + signal; the same command resumes."""
    space = tmp_path / "mini.yaml"
    space.write_text(LONG)
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = _start(space, url, "--workers", "2", "--threads", "1")
    _wait_for(lambda: len(_running_pids(url)) == 2, proc=proc)
    pids = _running_pids(url)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {sig.name}" in _ends_in_one_line(err)
    _wait_for(lambda: not any(_alive(p) for p in pids), timeout=10)
    ts = trials(url)
    assert not [t for t in ts if t.state == TrialState.RUNNING]
    stopped = [t for t in ts if t.state == TrialState.FAIL]
    # (the workers were stopped by the parent's SIGTERM)
    assert stopped and all(
        "interrupted by SIGTERM" in str(t.user_attrs.get("error")) for t in stopped
    ), [t.user_attrs.get("error") for t in stopped]
    if sig == signal.SIGTERM:  # resumed by the same command, each point once
        res = subprocess.run(proc.args, cwd=tmp_path, env=cli_env(), capture_output=True,
                             text=True, timeout=600)  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert_each_point_once(url)


def test_a_signal_while_the_floor_is_chosen_is_one_line(tmp_path: Path) -> None:
    """SIGTERM while `vmem_floor: auto` trains its candidates (before the study exists):
    one line, exit 143, no study and no chosen floor written; the same command then runs."""
    space = tmp_path / "floor.yaml"
    space.write_text("study: fl\ndata: {dataset: digits}\ndesigns:\n"
                     "  - {model: tinysnn, neurons: 50, vmem_floor: auto}\n")  # fmt: skip
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = _start(space, url)
    assert proc.stderr is not None
    seen = ""
    while "choosing the membrane floor" not in seen:  # the first candidate trains now
        line = proc.stderr.readline()
        assert line, proc.communicate(timeout=60)
        seen += line
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted by SIGTERM while choosing a membrane floor" in _ends_in_one_line(err)
    assert not (tmp_path / "s.db").exists()
    assert not list(tmp_path.rglob("*.tensors.pt"))  # no half-made choice is kept


def test_workers_end_when_explore_is_killed(tmp_path: Path) -> None:
    """kill -9 of the parent leaves no orphan worker taking trials."""
    space = tmp_path / "mini.yaml"
    space.write_text(LONG)
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = _start(space, url, "--workers", "2", "--threads", "1")
    _wait_for(lambda: len(_running_pids(url)) == 2, proc=proc)
    pids = _running_pids(url)
    proc.kill()
    proc.wait()
    _wait_for(lambda: not any(_alive(p) for p in pids), timeout=15)


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_ctrl_c_with_one_worker_fails_the_trial_with_its_reason(tmp_path: Path, delay) -> None:
    """SIGINT with one worker: exit 130 with one line; no trial is left RUNNING (a signal
    during Optuna's bookkeeping waits for its end), a failed one says why."""
    space = tmp_path / "mini.yaml"
    space.write_text(LONG)
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = _start(space, url, "--threads", "1")
    _wait_for(lambda: bool(_running_pids(url)), proc=proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in _ends_in_one_line(err)
    ts = trials(url)
    assert not [t for t in ts if t.state == TrialState.RUNNING]
    failed = [t for t in ts if t.state == TrialState.FAIL]
    assert failed and all("SIGINT" in str(t.user_attrs.get("error")) for t in failed)


def test_a_signal_inside_a_storage_call_waits_for_its_end() -> None:
    prev = signal.getsignal(signal.SIGINT)
    done: list[str] = []
    with stopping.handling():
        with pytest.raises(stopping.Stopped) as e, stopping.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            done.append("the transaction ended")
        assert done == ["the transaction ended"] and e.value.exit_code == 130
        # inside the objective's computation it is raised at once
        stopping.reset()
        with pytest.raises(stopping.Stopped), stopping.deferred(), stopping.interruptible():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            done.append("not reached")
        assert "not reached" not in done
    assert signal.getsignal(signal.SIGINT) is prev


def test_a_trial_nobody_claimed_is_failed_soon(tmp_path: Path) -> None:
    """A process killed between Optuna's ask and its objective leaves a RUNNING trial
    without a worker; the next explore fails it after 20 s, not after 90."""
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"),
                                directions=["maximize", "minimize", "minimize"])  # fmt: skip
    t = study.ask()
    now = time.time()
    assert fail_stale(study, now + 5) == 0
    assert fail_stale(study, now + 25) == 1
    assert study.trials[t.number].state == TrialState.FAIL


# --------------------------------------------------------------------------- options


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "s.db").exists()
    assert not (tmp_path / "tinysnn-artifacts").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--workers", "2", "--power-w", "inf"], "--power-w"),
        (["--workers", "2", "--threads", "-2"], "--threads"),
        (["--threads", "0"], "--threads"),
        (["--mu", "-1"], "--mu"),
        (["--mu", "nan"], "--mu"),
        (["--study", ""], "--study"),
        (["--artifacts", ""], "--artifacts"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_options_write_nothing(capsys, tmp_path: Path, extra, needle) -> None:
    space = tmp_path / "mini.yaml"
    space.write_text(MINI)
    code, _, err = run(capsys, "explore", str(space), "--storage", f"sqlite:///{tmp_path}/s.db",
                       *extra)  # fmt: skip
    assert code == 2 and needle in _one_line(err)
    _nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("dataset: digits", "dataset: mnist", "mnist"),  # no data in --data-dir
        ("train_samples: 60", "train_samples: 100000", "train"),
        ("seed: 0", "seed: 9223372036854775808", "seed"),
    ],
)
def test_a_space_that_cannot_run_writes_nothing(
    capsys, tmp_path, monkeypatch, old, new, needle
) -> None:
    monkeypatch.delenv("TINYSNN_DATA_DIR", raising=False)  # no MNIST anywhere it looks
    space = tmp_path / "mini.yaml"
    space.write_text(MINI.replace(old, new))
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "explore", str(space), "--storage", f"sqlite:///{tmp_path}/s.db",
                       "--data-dir", str(tmp_path / "empty"))  # fmt: skip
    assert code == 2 and needle in _one_line(err)
    _nothing_written(tmp_path)


def test_train_refuses_a_seed_past_64_bits(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "train", "--seed", str(2**63), "--out", str(tmp_path / "o"))
    assert code == 2 and "seed" in _one_line(err)


def test_in_memory_storage_is_refused(capsys, tmp_path: Path) -> None:
    space = tmp_path / "mini.yaml"
    space.write_text(MINI)
    for cmd in (["explore", str(space)], ["select"], ["report"]):
        code, _, err = run(capsys, *cmd, "--storage", "sqlite:///:memory:")
        assert code == 2 and "in-memory" in _one_line(err)


# --------------------------------------------------------------------------- storages


def test_a_foreign_study_of_the_same_name_is_refused_untouched(capsys, tmp_path: Path) -> None:
    space = tmp_path / "mini.yaml"
    space.write_text(MINI)
    url = f"sqlite:///{tmp_path / 's.db'}"
    s = optuna.create_study(study_name="mini", storage=url,
                            directions=["maximize", "minimize", "minimize"])  # fmt: skip
    s.set_user_attr("owner", "someone else")
    s.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0, 1.0), n_trials=3)
    optuna.create_study(study_name="other", storage=url, directions=["minimize"])

    def snapshot() -> tuple[object, ...]:
        st = optuna.load_study(study_name="mini", storage=url)
        return (st.user_attrs, len(st.trials), [t.user_attrs for t in st.trials])

    before = snapshot()
    code, _, err = run(capsys, "explore", str(space), "--storage", url)
    assert code == 2 and "not made by tinysnn explore" in _one_line(err)
    code, _, err = run(capsys, "explore", str(space), "--storage", url, "--study", "other")
    assert code == 2 and "objectives" in _one_line(err)
    assert snapshot() == before


@pytest.fixture(scope="module")
def done_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed mini study, made once for the storage tests (copied before use)."""
    d = tmp_path_factory.mktemp("done")
    (d / "mini.yaml").write_text(MINI)
    res = subprocess.run([*CMD, str(d / "mini.yaml"), "--storage", f"sqlite:///{d / 's.db'}"],
                         cwd=d, env=cli_env(), capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return d / "s.db"


def test_a_corrupt_sqlite_file_is_one_line(capsys, tmp_path: Path, done_study: Path) -> None:
    db = tmp_path / "s.db"
    shutil.copy(done_study, db)
    size = db.stat().st_size
    with db.open("r+b") as f:  # 4 KB overwritten at a quarter, a half, three quarters
        for q in (1, 2, 3):  # (one page alone may be one no command reads: a free page)
            f.seek(size * q // 4 // 4096 * 4096)
            f.write(hashlib.sha256(b"x").digest() * 128)
    before = db.read_bytes()
    url = f"sqlite:///{db}"
    space = tmp_path / "mini.yaml"
    space.write_text(MINI)
    for cmd in (["select"], ["report", "--out", str(tmp_path / "r")], ["explore", str(space)]):
        code, _, err = run(capsys, *cmd, "--storage", url)
        assert code == 2, err
        _one_line(err)
    assert db.read_bytes() == before


def test_a_file_that_is_not_a_journal_is_left_alone(capsys, tmp_path: Path, done_study) -> None:
    space = tmp_path / "mini.yaml"
    space.write_text(MINI)
    notes = tmp_path / "notes.log"
    notes.write_text("my own notes\n")
    code, _, err = run(capsys, "explore", str(space), "--storage", f"journal:{notes}")
    assert code == 2 and "not an Optuna journal" in _one_line(err)
    assert notes.read_text() == "my own notes\n"
    db = tmp_path / "s.db"
    shutil.copy(done_study, db)
    before = db.read_bytes()
    code, _, err = run(capsys, "select", "--storage", f"journal:{db}")
    assert code == 2 and "SQLite database" in _one_line(err)
    assert db.read_bytes() == before


@pytest.fixture
def ro_mount(tmp_path: Path):
    """A small tmpfs made read-only after a study is copied in (skipped where mounting is
    not allowed: as root a chmod does not stop writes)."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_read_only_sqlite_file(capsys, tmp_path: Path, done_study: Path, ro_mount) -> None:
    shutil.copy(done_study, ro_mount / "s.db")
    subprocess.run(["mount", "-o", "remount,ro", str(ro_mount)], check=True)
    url = f"sqlite:///{ro_mount / 's.db'}"
    space = tmp_path / "mini.yaml"
    space.write_text(MINI)
    code, _, err = run(capsys, "explore", str(space), "--storage", url,
                       "--artifacts", str(tmp_path / "art"))  # fmt: skip
    assert code == 2 and "read-only" in _one_line(err)
    code, out, err = run(capsys, "select", "--storage", url)  # reading still works
    assert code == 0, err


def test_transient_errors_are_retried_and_others_are_one_line(monkeypatch) -> None:
    lost = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, Exception("server closed the connection")
    )
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise lost
        return "ok"

    assert transient(lost)
    assert retry("postgresql://u@h/db", flaky) == "ok" and len(calls) == 3
    bad = sqlalchemy.exc.DatabaseError(
        "SELECT 1", {}, Exception("database disk image is malformed")
    )
    assert not transient(bad)
    with pytest.raises(StorageError, match="corrupt"):
        retry("sqlite:///x.db", lambda: (_ for _ in ()).throw(bad))
    monkeypatch.setattr("tinysnn_dse.explore.storage.RETRY_S", 0.3)
    with pytest.raises(StorageError, match="unreachable"):
        retry("postgresql://u@h/db", lambda: (_ for _ in ()).throw(lost))


# --------------------------------------------------------------------------- PostgreSQL


class _Proxy:
    """A TCP proxy to the shared PostgreSQL server that the test can take down and bring
    back on the same port: a database restart, without touching the server."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.target = target
        self.port = 0
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.up()

    def up(self) -> None:
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.port = self.srv.getsockname()[1]
        self.srv.listen(64)
        threading.Thread(target=self._accept, args=(self.srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        self.srv.close()
        with self.lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
            self.conns.clear()


@pytest.mark.postgres
@pytest.mark.skipif(not _pg_up(), reason="no PostgreSQL server on 127.0.0.1:5432")
def test_a_database_restart_loses_no_training(tmp_path: Path) -> None:
    """The database away for 3 s while two workers train: the run completes every point
    once (the progress poll and the workers retry), exit 0."""
    space = tmp_path / "mini.yaml"
    space.write_text(LONG)
    proxy = _Proxy()
    study = f"blip-{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test"
    try:
        proc = _start(space, url, "--study", study, "--workers", "2", "--threads", "1",
                      "--artifacts", str(tmp_path / "art"))  # fmt: skip

        def one_done_two_running() -> bool:
            try:
                ts = trials(PG_URL, study)
            except Exception:
                return False
            states = [t.state for t in ts]
            return states.count(TrialState.COMPLETE) >= 1 and (
                states.count(TrialState.RUNNING) >= 1
            )

        _wait_for(one_done_two_running, proc=proc)
        proxy.down()
        time.sleep(3)
        proxy.up()
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert_each_point_once(PG_URL, study)
        assert not [t for t in trials(PG_URL, study) if t.state == TrialState.FAIL]
    finally:
        proxy.down()
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study, storage=PG_URL)


@pytest.mark.postgres
@pytest.mark.skipif(not _pg_up(), reason="no PostgreSQL server on 127.0.0.1:5432")
def test_reading_an_empty_postgres_database_creates_nothing(capsys, tmp_path: Path) -> None:
    import psycopg

    name = f"tinysnn_empty_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        for cmd in (["select"], ["report", "--out", str(tmp_path / "r")]):
            code, _, err = run(capsys, *cmd, "--storage", url)
            assert code == 2 and "no tinysnn study" in _one_line(err)
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={name}") as c:
            n = c.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
        assert n == (0,)
        assert not (tmp_path / "r").exists()
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --------------------------------------------------------------------------- inputs

BOMB = """\
study: bomb
{where}: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
x: {{b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a], c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b],
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c], e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d],
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e], g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]}}
designs:
  - {{model: tinysnn, neurons: *g}}
"""


@pytest.mark.parametrize("where", ["description", "params"])
def test_a_yaml_alias_bomb_is_one_short_line(capsys, tmp_path: Path, where: str) -> None:
    space = tmp_path / "bomb.yaml"
    space.write_text(BOMB.format(where=where))
    t0 = time.perf_counter()
    code, _, err = run(capsys, "explore", str(space), "--dry-run")
    assert code == 2 and "aliases are expanded" in _one_line(err)
    assert time.perf_counter() - t0 < 20 and len(err) < 700


def test_hostile_sizes_are_one_short_line(capsys, tmp_path: Path) -> None:
    space = tmp_path / "big.yaml"
    # a value too big to quote: the line stays short
    space.write_text("study: s\ndesigns:\n  - {model: tinysnn, neurons: '" + "9" * 100_000 + "'}\n")
    code, _, err = run(capsys, "explore", str(space), "--dry-run")
    assert code == 2 and len(_one_line(err)) < 400
    # a file past the size limit
    space.write_text("study: s\ndesigns:\n  - {model: tinysnn, neurons: [" +
                     ", ".join(str(i) for i in range(1, 300_000)) + "]}\n")  # fmt: skip
    code, _, err = run(capsys, "explore", str(space), "--dry-run")
    assert code == 2 and "at most" in _one_line(err)
    # too many points: checked before they are enumerated
    space.write_text(
        "study: s\ndesigns:\n  - {model: tinysnn, neurons: [" + ", ".join(map(str, range(1, 201)))
        + "], weight_bits: [" + ", ".join(map(str, range(2, 33))) + "], vmem_bits: ["
        + ", ".join(map(str, range(2, 33))) + "], scheme: ptq}\n"
    )  # fmt: skip
    code, _, err = run(capsys, "explore", str(space), "--dry-run")
    assert code == 2 and "design points" in _one_line(err)


def test_workers_are_capped_and_next_commands_quoted(capsys, tmp_path: Path) -> None:
    """--workers 1000 on a 5-point space starts at most one per point and core; the
    printed commands survive a path with a space."""
    d = tmp_path / "my runs"
    d.mkdir()
    space = d / "mini.yaml"
    space.write_text(MINI)
    url = f"sqlite:///{d / 's.db'}"
    code, out, err = run(capsys, "explore", str(space), "--storage", url, "--workers", "1000")
    assert code == 0, err
    assert "note: --workers 1000: running" in err
    assert f"next: tinysnn select --storage 'sqlite:///{d}/s.db' --mu 0.5" in out
    assert_each_point_once(url)


# --------------------------------------------------------------------------- progress


def test_eta_counts_trainings_shared_and_batched(tmp_path: Path) -> None:
    """Hand-computed: the mini space has 3 trainings (baseline, tinySNN FP32 shared by
    two PTQ points, ITQ); after one training made in 100 s, 2 are left: 200 s, rough."""
    from tinysnn_dse.explore.policy import Trainings
    from tinysnn_dse.explore.space import parse_space
    from tinysnn_dse.runner import RunSettings

    sp = parse_space(__import__("yaml").safe_load(MINI), "mini")
    art = tmp_path / "art"
    clock = EtaClock(sp, art, Plan("mini", 5, 0, 5, 0, sp.trainings), workers=1)
    assert len(clock.groups) == 3
    p0 = Progress(5, 0, 0, 1, 4, None, [], [])
    assert clock.update(p0).eta_s is None
    # the FP32 training of tinySNN is cached: its PTQ points are trained, not yet done
    fp32 = next(p for p in sp.points if p.key == "tinysnn-n10-fp32")
    f = Trainings(sp, RunSettings(), art).training_file(fp32.training_key)
    f.parent.mkdir(parents=True)
    f.write_bytes(b"")
    clock.t0 -= 100.0
    p = clock.update(p0)
    assert (p.trainings, p.trainings_done) == (3, 1)
    assert p.eta_s == pytest.approx(200.0, rel=0.01) and p.eta_rough


# --------------------------------------------------------------------------- re-testing


def test_a_width_given_without_scheme_is_applied(capsys, tmp_path: Path) -> None:
    """`evaluate --weight-bits 4 --vmem-bits 8 --vth-bits 8` without --scheme re-tests
    under that PTQ (it reported the FP32 accuracy before); export takes it too."""
    import json

    out = tmp_path / "m"
    code, _, err = run(capsys, "train", "--neurons", "10", "--train-samples", "60",
                       "--test-samples", "40", "--out", str(out))  # fmt: skip
    assert code == 0, err
    code, text, err = run(capsys, "evaluate", str(out / "model.pt"), "--weight-bits", "4",
                          "--vmem-bits", "8", "--vth-bits", "8", "--json")  # fmt: skip
    assert code == 0, err
    dp = json.loads(text)["design_point"]
    assert (dp["scheme"], dp["weight_bits"], dp["vmem_bits"], dp["vth_bits"]) == ("ptq", 4, 8, 8)
    code, _, err = run(capsys, "export", str(out / "model.pt"), "--out", str(tmp_path / "x"),
                       "--weight-bits", "8", "--vmem-bits", "16", "--vth-bits", "16",
                       "--test-samples", "5")  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "x" / "c" / "model.h").is_file()


# --------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 200 KB tmpfs (skipped where mounting is not allowed; tests/test_outputs.py
    injects ENOSPC for the output commands instead)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_stops_explore_with_one_line(capsys, tmp_path, small_disk) -> None:
    """Storage and checkpoints on a disk that fills up mid-run: one line, exit 2, no trial
    left RUNNING and no partial checkpoint; with room again the same command completes
    every point once."""
    space = tmp_path / "mini.yaml"
    space.write_text(MINI)
    url = f"sqlite:///{small_disk / 's.db'}"
    code, _, err = run(capsys, "explore", str(space), "--storage", url)
    assert code == 2, err
    assert "no space left on the device" in _ends_in_one_line(err)
    assert not [t for t in trials(url) if t.state == TrialState.RUNNING]
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    code, _, err = run(capsys, "explore", str(space), "--storage", url)
    assert code == 0, err
    assert_each_point_once(url)
    for f in (small_disk / "tinysnn-artifacts" / "checkpoints").iterdir():
        assert f.stat().st_size > 1000  # whole checkpoints only


def test_processes_opening_a_fresh_sqlite_file_at_once(tmp_path: Path) -> None:
    """Four processes create Optuna's tables in one new SQLite file at the same moment
    ("table alembic_version already exists" was an OperationalError, not retried)."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    code = (
        "import sys; from tinysnn_dse.explore.storage import open_storage; "
        "open_storage(sys.argv[1])"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert open_storage(url).get_all_studies() == []
