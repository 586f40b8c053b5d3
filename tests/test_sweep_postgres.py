"""Sweeps shared through PostgreSQL: two machines on one study, machines starting at the same
instant, a worker killed mid-trial or right after its claim, bad storage URLs.

Each test gets a fresh database on a throwaway cluster (tests/pg.py). Workers are real
``python -m ganzoo sweep`` processes with their own --results folders, as on machines that share
only the database. The tests read the study through psycopg2 themselves (pg.psycopg2_url); the
workers get the URL a user would type.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import pg
from presets import tiny_preset

ROOT = Path(__file__).resolve().parents[1]
STUDY, PAIR = "s", "nsgan@ring8"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A worker that notices a dead trial within seconds (the defaults are 10 s and 60 s).
FAST_HEARTBEAT = {"GANZOO_HEARTBEAT_SECONDS": "1", "GANZOO_GRACE_SECONDS": "2"}
TIMEOUT = 120  # seconds for any one worker; the tests take a fraction of it


# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    with pg.cluster() as url:
        yield pg.server_url(url)


@pytest.fixture
def database(postgres_server: str) -> str:
    """A new empty database: ``postgresql://USER:PASSWORD@127.0.0.1:PORT/DB``."""
    return pg.create_database(postgres_server, f"t{uuid.uuid4().hex[:12]}")


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen
    err: Path

    def stderr(self) -> str:
        return self.err.read_text()

    def wait(self, timeout: float = TIMEOUT, stuck: str = "") -> int:
        """The exit code; a worker still running after ``timeout`` fails the test (``stuck``: why it might be)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"worker {self.name} still running after {timeout} s{stuck}; stderr:\n{self.stderr()}",
                        pytrace=False)

    def kill(self) -> None:
        """SIGKILL the worker's whole process group, as a power loss would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start Python processes (``sweep_command`` ones, mostly), each in its own session, with
    stdout and stderr in files; none outlives the test."""
    started: list[Worker] = []

    def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> Worker:
        err = tmp_path / f"{name}.stderr"
        with err.open("w") as err_file, (tmp_path / f"{name}.stdout").open("w") as out_file:
            proc = subprocess.Popen([sys.executable, *argv], cwd=tmp_path, env=worker_env(env),
                                    stdout=out_file, stderr=err_file, start_new_session=True)
        started.append(Worker(name, proc, err))
        return started[-1]

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            os.killpg(worker.proc.pid, signal.SIGCONT)
            worker.kill()


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # One thread each: the workers share this machine's cores as separate machines would not.
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **(extra or {})}


def sweep_command(preset: Path, results: Path, storage: str) -> list[str]:
    return ["-m", "ganzoo", "sweep", "--preset", str(preset), "--study", STUDY, "--results", str(results),
            "--storage", storage]


# ---- looking at the study ----------------------------------------------------------------


def load_study(url: str) -> optuna.Study:
    storage = optuna.storages.RDBStorage(pg.psycopg2_url(url), skip_table_creation=True)
    return optuna.load_study(study_name=f"{STUDY}/{PAIR}", storage=storage)


def heartbeating_trials(url: str) -> list[int]:
    """Numbers of RUNNING trials whose worker has sent at least one heartbeat (Optuna's tables)."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('trial_heartbeats') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute("SELECT t.number FROM trials t JOIN studies s ON s.study_id = t.study_id "
                        "JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
                        "WHERE s.study_name = %s AND t.state = 'RUNNING'", (f"{STUDY}/{PAIR}",))
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def trained(results: Path) -> set[int]:
    """Trial numbers that this results folder (one machine) has started training."""
    return {int(p.name.removeprefix("trial-")) for p in (results / STUDY / "runs" / PAIR).glob("trial-*")}


def wait_for(condition: Callable[[], Any], workers: list[Worker], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll until ``condition()`` is truthy; fail early when a worker exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for worker in workers:
            if worker.proc.poll() is not None:
                pytest.fail(f"worker {worker.name} exited ({worker.proc.returncode}) before {what}:\n{worker.stderr()}")
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def assert_exact(trials: list[optuna.trial.FrozenTrial], n_trials: int, killed: Collection[int] = ()) -> None:
    """Exactly ``n_trials`` finished trials, each number once; nothing left running or queued."""
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == n_trials, [(t.number, t.state.name) for t in trials]
    unfinished = [(t.number, t.state.name) for t in trials if t.state not in FINISHED and t.number not in killed]
    assert not unfinished, f"trials neither finished nor killed: {unfinished}"


# ---- two machines ------------------------------------------------------------------------


def test_two_machines_share_one_study_exactly(tmp_path, database, spawn):
    n_trials = 4
    preset = tiny_preset(tmp_path, n_trials=n_trials, steps=60)
    folders = [tmp_path / "machine-a", tmp_path / "machine-b"]
    workers = [spawn(f"worker-{i}", sweep_command(preset, folder, database)) for i, folder in enumerate(folders)]

    # Both start at once on an empty database. Whichever trains first is paused until the other
    # has a trial of its own, so both take part however unevenly they start (the pause is far
    # shorter than the 60 s grace period, so its trial is not taken for dead).
    first = wait_for(lambda: [i for i, f in enumerate(folders) if trained(f)], workers, "either worker trains")[0]
    other = 1 - first
    os.killpg(workers[first].proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: trained(folders[other]), [workers[other]], f"{workers[other].name} started a trial")
    finally:
        os.killpg(workers[first].proc.pid, signal.SIGCONT)
    for worker in workers:
        assert worker.wait() == 0, worker.stderr()

    trials = load_study(database).get_trials()
    assert_exact(trials, n_trials)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    ran = [trained(f) for f in folders]
    assert ran[0] and ran[1], f"each machine runs at least one trial: {ran}"
    assert not ran[0] & ran[1], f"no trial runs on both machines: {ran}"
    assert ran[0] | ran[1] == set(range(n_trials))
    for t in trials:
        machine = folders[0] if t.number in ran[0] else folders[1]
        assert all(Path(d).is_relative_to(machine) for d in json.loads(t.user_attrs["run_dirs"]))
    for folder in folders:  # each machine's last export sees the whole study
        with (folder / STUDY / "trials.csv").open() as f:
            assert [row["state"] for row in csv.DictReader(f)] == ["COMPLETE"] * n_trials

    # The report reads the shared study straight from PostgreSQL, wherever its runs were made.
    report = subprocess.run([sys.executable, "-m", "ganzoo", "report", database, "--study", STUDY,
                             "--out", str(tmp_path / "report")], cwd=tmp_path, capture_output=True, text=True,
                            timeout=TIMEOUT, env=worker_env())
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"{n_trials} of {n_trials} requested trials finished" in text and "No figure" not in text.split("## 6")[0]


def test_workers_starting_together_on_an_empty_database(tmp_path, postgres_server, spawn):
    """Machines started by one script open a new database at the same instant: creating Optuna's
    tables must not fail for the ones that lose the race."""
    preset = tiny_preset(tmp_path, n_trials=1, steps=10)
    # Each process imports everything, then waits for the go file, so their first queries coincide.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ganzoo.errors import GanzooError\n"
        "from ganzoo.sweep import Sweep, load_preset\n"
        "preset, results, storage, go = sys.argv[1:]\n"
        "sweep = Sweep('s', load_preset(preset), results, storage=storage)\n"
        "Path(results + '.ready').touch()\n"
        "while not Path(go).exists():\n"
        "    time.sleep(0.001)\n"
        "try:\n"
        "    sweep.prepare()\n"
        "except GanzooError as e:\n"
        "    sys.exit(f'error: {e}')\n"
    )
    url, go = pg.create_database(postgres_server, f"t{uuid.uuid4().hex[:12]}"), tmp_path / "go"
    folders = [tmp_path / f"machine-{i}" for i in range(3)]  # three collide reliably: the window is milliseconds
    workers = [spawn(f.name, ["-c", script, str(preset), str(f), url, str(go)]) for f in folders]
    wait_for(lambda: all(Path(f"{f}.ready").exists() for f in folders), workers, "all workers are ready")
    go.touch()
    failures = [w.stderr().strip() for w in workers if w.wait() != 0]
    assert not failures, f"{len(failures)} of 3 workers could not open the study: {failures}"
    assert load_study(url).user_attrs["variant"] == "nsgan"


# ---- a worker dies -----------------------------------------------------------------------


def test_killed_worker_trial_is_failed_and_retried(tmp_path, database, spawn):
    n_trials = 2
    preset = tiny_preset(tmp_path, n_trials=n_trials, steps=100)
    doomed = spawn("doomed", sweep_command(preset, tmp_path / "machine-a", database))
    # Killed mid-training: its trial is RUNNING and has sent a heartbeat (default settings).
    wait_for(lambda: heartbeating_trials(database), [doomed], "a trial is running with a heartbeat")
    doomed.kill()
    running = [t for t in load_study(database).get_trials() if t.state == TrialState.RUNNING]
    assert len(running) == 1, "the killed worker leaves exactly its one trial RUNNING"
    killed = running[0]  # as it was when its worker died

    rescuer = spawn("rescuer", sweep_command(preset, tmp_path / "machine-b", database), env=FAST_HEARTBEAT)
    assert rescuer.wait() == 0, rescuer.stderr()

    trials = load_study(database).get_trials()
    assert_exact(trials, n_trials, killed={killed.number})
    dead = trials[killed.number]
    assert dead.state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retries) == 1, "Optuna's RetryHeartbeatStaleTrialCallback queues the dead trial once"
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE
    # The same configuration again (a worker killed before suggesting has none to pass on).
    assert dead.params.items() <= retry.params.items()
    assert retry.number in trained(tmp_path / "machine-b")
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n_trials


def test_worker_dead_before_its_first_heartbeat_does_not_stall_the_study(tmp_path, database, spawn):
    """A worker can die between claiming a trial and its first heartbeat (while it suggests
    parameters, loads data, builds the networks, initialises CUDA). Optuna never counts a trial
    without heartbeats as stale, yet that trial must still be failed and retried: otherwise every
    other worker waits on it for ever."""
    preset = tiny_preset(tmp_path, n_trials=1, steps=20)
    # Exactly what a worker's claim leaves behind when it dies at once: a RUNNING trial, no beat.
    study = optuna.create_study(study_name=f"{STUDY}/{PAIR}", storage=pg.psycopg2_url(database),
                                direction="minimize")
    orphan = study.ask()

    rescuer = spawn("rescuer", sweep_command(preset, tmp_path / "machine-b", database), env=FAST_HEARTBEAT)
    # A healthy run takes about 10 s here.
    code = rescuer.wait(timeout=45, stuck=f": trial {orphan.number} stays RUNNING with no heartbeat, never stale")
    assert code == 0, rescuer.stderr()
    trials = load_study(database).get_trials()
    assert_exact(trials, 1, killed={orphan.number})
    assert trials[orphan.number].state == TrialState.FAIL


# ---- bad input ---------------------------------------------------------------------------


SECRET = "s3cretpw"


@pytest.mark.parametrize(
    "storage, message",
    [
        ("postgresql://ganzoo:{secret}@127.0.0.1:{port}/db", "refused"),  # the form the help text gives
        ("postgresql+psycopg2://ganzoo:{secret}@127.0.0.1:{port}/db", "refused"),
        ("mysql://ganzoo:{secret}@127.0.0.1/db", "storage must be postgresql://"),
        ("notaurl", "storage must be postgresql://"),
        ("postgresql://ganzoo:{secret}@127.0.0.1:notaport/db", "cannot open storage"),
    ],
    ids=["unreachable", "unreachable-psycopg2", "mysql", "not-a-url", "bad-port"],
)
def test_bad_storage_is_one_line_exit_2(tmp_path, storage, message):
    url = storage.format(secret=SECRET, port=pg.free_port())  # a loopback port nothing listens on
    preset, results = tiny_preset(tmp_path, n_trials=1, steps=10), tmp_path / "results"
    done = subprocess.run([sys.executable, *sweep_command(preset, results, url)],
                          cwd=tmp_path, env=worker_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("ganzoo sweep: error: ")
    assert message.lower() in lines[0].lower(), lines[0]
    assert SECRET not in done.stderr + done.stdout
    assert not (results / STUDY).exists(), "a study that cannot start leaves no folder behind"
