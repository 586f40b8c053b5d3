"""Sweep workers as real processes (``python -m ganzoo sweep``), each in its own session with its
output in files, and what the tests look at while they run. Shared by the storage contract tests and
the PostgreSQL ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from support.paths import ROOT

STUDY, PAIR = "s", "nsgan@ring8"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A worker that notices a dead trial within seconds (the defaults are 10 s and 60 s).
FAST_HEARTBEAT = {"GANZOO_HEARTBEAT_SECONDS": "1", "GANZOO_GRACE_SECONDS": "2"}
TIMEOUT = 120  # seconds for any one worker; the tests take a fraction of it


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


def spawner(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """A fixture's body (``yield from spawner(tmp_path)``): start Python processes (``sweep_command``
    ones, mostly), each in its own session, with stdout and stderr in files; none outlives the test."""
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


def sweep_command(preset: Path, results: Path, storage: str | None, *extra: str) -> list[str]:
    return ["-m", "ganzoo", "sweep", "--preset", str(preset), "--study", STUDY, "--results", str(results),
            *(["--storage", storage] if storage else []), *extra]


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
