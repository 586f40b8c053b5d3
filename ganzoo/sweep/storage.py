"""Where a sweep's studies live: SQLite or a journal file on one machine, PostgreSQL across machines;
the lock under which a worker claims its next trial; storage URLs without their passwords."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError
from ganzoo.sweep.liveness import MAX_RETRIES, grace_seconds, heartbeat_seconds

LOCK_FILE, JOURNAL_FILE, SQLITE_FILE = ".lock", "journal.log", "study.db"


@dataclasses.dataclass(frozen=True)
class Storage:
    url: str  # sqlite:///..., postgresql://..., or journal:PATH
    lock_file: Path

    @property
    def is_rdb(self) -> bool:
        return not self.url.startswith("journal:")

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    def open(self) -> Any:
        import warnings

        import optuna

        # Heartbeats and their retry callback are marked experimental; ganzoo depends on them knowingly.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        # ganzoo beats for its trials itself (_heartbeat) since it drives them with ask/tell.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        if self.url.startswith(("sqlite:///", "journal:")):
            Path(self.url.removeprefix("sqlite:///").removeprefix("journal:")).parent.mkdir(parents=True, exist_ok=True)
        if not self.is_rdb:
            path = self.url.removeprefix("journal:")
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
        try:
            # Machines starting together would race on Optuna's table creation (create_all is not
            # safe concurrently on PostgreSQL): the first creates them while the others wait.
            with self.lock("ganzoo-storage-init") if self.is_postgres else contextlib.nullcontext():
                return optuna.storages.RDBStorage(
                    self.driver_url,
                    heartbeat_interval=heartbeat_seconds(),
                    grace_period=grace_seconds(),
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRIES
                    ),
                )
        except GanzooError:
            raise
        except Exception as e:  # sqlalchemy and driver errors: unreachable server, bad credentials
            raise GanzooError(f"cannot open storage {redact(self.url)}: {_reason(e)}") from None

    @property
    def driver_url(self) -> str:
        """SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; ganzoo ships psycopg2."""
        if self.url.startswith("postgresql://"):
            return "postgresql+psycopg2://" + self.url.removeprefix("postgresql://")
        return self.url

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Serialise trial creation among all workers of a study."""
        if self.is_postgres:
            import sqlalchemy

            engine = sqlalchemy.create_engine(self.driver_url, poolclass=sqlalchemy.pool.NullPool)
            try:
                conn_context = engine.connect()
            except Exception as e:
                raise GanzooError(f"cannot open storage {redact(self.url)}: {_reason(e)}") from None
            with conn_context as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
            engine.dispose()
        else:
            self.lock_file.parent.mkdir(parents=True, exist_ok=True)
            with self.lock_file.open("a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297].rsplit(" ", 1)[0] + " ..."


def redact(url: str) -> str:
    """A storage URL without its password, for messages."""
    import re

    url = re.sub(r"(password=)[^&]*", r"\1***", url)
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def resolve_storage(study_dir: Path, storage: str | None, workers: int) -> Storage:
    lock = study_dir / LOCK_FILE
    if storage:
        if storage.startswith(("postgresql://", "postgresql+psycopg2://", "sqlite:///", "journal:")):
            return Storage(storage, lock)
        raise GanzooError(
            "storage must be postgresql://USER:PASSWORD@HOST[:PORT]/DB, sqlite:///PATH or journal:PATH, "
            f"got {redact(storage)!r}"
        )
    journal, db = study_dir / JOURNAL_FILE, study_dir / SQLITE_FILE
    # Several local workers need a store safe for concurrent writers: a journal file. Whichever
    # kind a study started with is kept, so re-running a command always finds its study.
    if journal.exists() or (workers > 1 and not db.exists()):
        return Storage(f"journal:{journal}", lock)
    return Storage(f"sqlite:///{db}", lock)
