"""A throwaway PostgreSQL cluster on loopback for tests that share a study through a database.

The cluster lives in a temporary folder owned by the ``postgres`` OS user (PostgreSQL refuses to
run as root), listens only on 127.0.0.1 on a free port, and its one role logs in with a password
over TCP. It is stopped with ``pg_ctl stop -m immediate`` and its folder deleted afterwards.
Missing binaries are a failure, not a skip: CI installs ``postgresql``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

USER, DATABASE = "ganzoo", "ganzoo"
OS_USER = "postgres"
BIN_GLOB = "/usr/lib/postgresql/*/bin"


def find_bin() -> Path:
    """The newest installed PostgreSQL's bin folder; fails the test when there is none."""
    found = [Path(d) for d in glob.glob(BIN_GLOB) if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()]
    if not found:
        pytest.fail(f"PostgreSQL server binaries not found under {BIN_GLOB}: apt-get install postgresql", pytrace=False)
    return max(found, key=lambda d: [int(p) for p in d.parent.name.split(".") if p.isdigit()] or [0])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(argv: list[str]) -> list[str]:
    """Root runs the server binaries as the postgres OS user; anyone else runs them as themselves."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", OS_USER, "--", *argv]
    return ["su", OS_USER, "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in argv)]


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(_as_owner(argv), cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stdout}{done.stderr}", pytrace=False)


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster and yield ``postgresql://USER:PASSWORD@127.0.0.1:PORT/DB``."""
    bin_dir = find_bin()
    root = Path(tempfile.mkdtemp(prefix="ganzoo-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(OS_USER)
        except KeyError:
            shutil.rmtree(root)
            pytest.fail(f"OS user {OS_USER!r} not found (it comes with the postgresql package)", pytrace=False)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, password, port = root / "data", secrets.token_hex(12), free_port()
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
              "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"], root)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off"
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "-t", "60",
              "start"], root)
        started = True
        url = f"postgresql://{USER}:{password}@127.0.0.1:{port}"
        create_database(url, DATABASE)
        yield f"{url}/{DATABASE}"
    finally:
        if started:
            subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate", "-w"]),
                           cwd=root, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the cluster at ``server_url`` (no database part); its URL."""
    import psycopg2

    conn = psycopg2.connect(f"{server_url}/postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return f"{server_url}/{name}"


def server_url(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0]


def psycopg2_url(url: str) -> str:
    """The same URL naming the psycopg2 driver, for the tests' own look at the database:
    SQLAlchemy >= 2.1 maps a bare ``postgresql://`` to psycopg 3, which ganzoo does not depend on."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)
