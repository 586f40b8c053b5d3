"""What is PostgreSQL's own beyond the storage contract (tests/test_sweep_storages.py runs that on it
too): machines starting at the same instant on an empty database, and bad storage URLs.

Each test gets a fresh database on a throwaway cluster (tests/pg.py). Workers are real
``python -m ganzoo sweep`` processes, as on machines that share only the database.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import pg
from support.presets import tiny_preset
from support.storages import open_study
from support.workers import (
    PAIR,
    STUDY,
    TIMEOUT,
    spawner,
    sweep_command,
    wait_for,
    worker_env,
)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    with pg.cluster() as url:
        yield pg.server_url(url)


@pytest.fixture
def spawn(tmp_path):
    yield from spawner(tmp_path)


def test_workers_starting_together_on_an_empty_database(tmp_path, postgres_server, spawn):
    """Machines started by one script open a new database at the same instant: creating Optuna's
    tables must not fail for the ones that lose the race."""
    preset = tiny_preset(tmp_path, n_trials=1, steps=10)
    # Each process imports everything, then waits for the go file, so their first queries coincide.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ganzoo.core.errors import GanzooError\n"
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
    assert open_study(url, f"{STUDY}/{PAIR}").user_attrs["variant"] == "nsgan"


# ---- bad input ---------------------------------------------------------------------------


SECRET = "s3cretpw"


@pytest.mark.parametrize(
    "storage, message",
    [
        ("postgresql://ganzoo:{secret}@127.0.0.1:{port}/db", "refused"),  # the form the help text gives
        ("postgresql+psycopg2://ganzoo:{secret}@127.0.0.1:{port}/db", "refused"),
        ("mysql://ganzoo:{secret}@127.0.0.1/db", "storage must be one of sqlite:///PATH, journal:PATH, postgresql://"),
        ("notaurl", "storage must be one of"),
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
