"""Where a sweep's studies live, as a registry of storage kinds: SQLite or a journal file on one
machine, PostgreSQL across machines. A kind says which URLs are its own, how to open them, the lock
under which a worker claims its next trial, and what it promises: heartbeats (a dead worker's trial
is found while others run) and several workers (at once, exactly). ``tests/storages.py`` supplies a
throwaway store of every registered kind to the sweep's contract tests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ganzoo.core.errors import GanzooError
from ganzoo.core.registry import Registry, method_problem
from ganzoo.sweep.liveness import grace_seconds, heartbeat_seconds, retry_stale

LOCK_FILE, JOURNAL_FILE, SQLITE_FILE = ".lock", "journal.log", "study.db"


class StorageKind:
    forms: ClassVar[tuple[str, ...]]  # the URL prefixes it takes
    usage: ClassVar[str]  # the URL as a user writes it, for messages
    heartbeats: ClassVar[bool]  # running trials beat, so a dead worker's trial is found while others run
    workers: ClassVar[bool]  # several workers may share one study at once (and finish it exactly)
    machines: ClassVar[bool]  # ... on several machines

    def open(self, url: str, lock: Callable[[str], contextlib.AbstractContextManager[None]]) -> Any:
        """The Optuna storage behind ``url`` (``lock(key)``: the kind's lock, for a safe first open)."""
        raise NotImplementedError

    def dashboard_url(self, url: str) -> str:
        """What ``optuna-dashboard`` takes to open the store behind ``url``."""
        return url

    @contextlib.contextmanager
    def lock(self, url: str, key: str, lock_file: Path) -> Iterator[None]:
        """Serialise trial creation among the workers of a study: a file lock on this machine."""
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with lock_file.open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _check(kind: Any) -> str | None:
    if not (isinstance(kind, type) and issubclass(kind, StorageKind)):
        return "must be a subclass of ganzoo.sweep.storage.StorageKind"
    missing = [a for a in ("forms", "usage", "heartbeats", "workers", "machines") if not hasattr(kind, a)]
    return f"must set {', '.join(missing)}" if missing else method_problem(kind, StorageKind, required=("open",))


STORAGES: Registry[type[StorageKind]] = Registry("storage", _check)
K = TypeVar("K", bound=type[StorageKind])


def register_storage(name: str) -> Callable[[K], K]:
    return STORAGES.decorator(name)  # type: ignore[return-value]


def _rdb(url: str) -> Any:
    import optuna

    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=heartbeat_seconds(),
        grace_period=grace_seconds(),
        heartbeat_stale_trial_callback=retry_stale,
    )


@register_storage("sqlite")
class SQLiteStorage(StorageKind):
    """One file, one worker: SQLite serialises writers by locking the whole file, and concurrent
    workers meet "database is locked" (several local workers share a journal file instead)."""

    forms, usage = ("sqlite:///",), "sqlite:///PATH"
    heartbeats, workers, machines = True, False, False

    def open(self, url: str, lock: Callable[[str], contextlib.AbstractContextManager[None]]) -> Any:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return _rdb(url)


@register_storage("journal")
class JournalStorage(StorageKind):
    """Optuna's journal file: appends under a file lock, safe for the workers of one machine. It has no
    heartbeats: a RUNNING trial found before this machine's workers start was left by a dead one."""

    forms, usage = ("journal:",), "journal:PATH"
    heartbeats, workers, machines = False, True, False

    def dashboard_url(self, url: str) -> str:
        return url.removeprefix("journal:")  # optuna-dashboard opens a journal file given its path

    def open(self, url: str, lock: Callable[[str], contextlib.AbstractContextManager[None]]) -> Any:
        import optuna

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


@register_storage("postgresql")
class PostgreSQLStorage(StorageKind):
    """One database for every machine: trials claimed under an advisory lock, dead workers' trials
    found by their heartbeats."""

    forms, usage = ("postgresql://", "postgresql+psycopg2://"), "postgresql://USER:PASSWORD@HOST[:PORT]/DB"
    heartbeats, workers, machines = True, True, True

    @staticmethod
    def driver_url(url: str) -> str:
        """SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; ganzoo ships psycopg2."""
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url

    def dashboard_url(self, url: str) -> str:
        return self.driver_url(url)

    def open(self, url: str, lock: Callable[[str], contextlib.AbstractContextManager[None]]) -> Any:
        # Machines starting together would race on Optuna's table creation (create_all is not safe
        # concurrently on PostgreSQL): the first creates them while the others wait.
        with lock("ganzoo-storage-init"):
            return _rdb(self.driver_url(url))

    @contextlib.contextmanager
    def lock(self, url: str, key: str, lock_file: Path) -> Iterator[None]:
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.driver_url(url), poolclass=sqlalchemy.pool.NullPool)
        try:
            conn_context = engine.connect()
        except Exception as e:
            raise GanzooError(f"cannot open storage {redact(url)}: {_reason(e)}") from None
        with conn_context as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
        engine.dispose()


def storage_kind(url: str) -> StorageKind:
    """The registered kind whose URL form ``url`` has; one line naming every form when none has."""
    for name in STORAGES.in_order():
        kind = STORAGES.get(name)
        if url.startswith(kind.forms):
            return kind()
    forms = ", ".join(STORAGES.get(name).usage for name in STORAGES.in_order())
    raise GanzooError(f"storage must be one of {forms}, got {redact(url)!r}")


@dataclasses.dataclass(frozen=True)
class Storage:
    url: str  # a URL of a registered kind: sqlite:///..., journal:PATH, postgresql://...
    lock_file: Path  # the claim lock of the kinds that lock with a file

    @property
    def kind(self) -> StorageKind:
        return storage_kind(self.url)

    def open(self) -> Any:
        import warnings

        import optuna

        # Heartbeats and their retry callback are marked experimental; ganzoo depends on them knowingly.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        # ganzoo beats for its trials itself (liveness.heartbeat) since it drives them with ask/tell.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        try:
            return self.kind.open(url=self.url, lock=self.lock)
        except GanzooError:
            raise
        except Exception as e:  # sqlalchemy and driver errors: unreachable server, bad credentials, not a database
            file = Path(self.url.removeprefix("sqlite:///")) if self.url.startswith("sqlite:///") else None
            hint = (f"; if {file} is damaged, the study cannot be read: start over by removing it and its study "
                    "folder (move the run folders aside first to keep them)" if file is not None and file.exists() else "")
            raise GanzooError(f"cannot open storage {redact(self.url)}: {_reason(e)}{hint}") from None

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Serialise trial creation among all workers of a study."""
        return self.kind.lock(url=self.url, key=key, lock_file=self.lock_file)


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297].rsplit(" ", 1)[0] + " ..."


def redact(url: str) -> str:
    """A storage URL without its password, for messages."""
    url = re.sub(r"(password=)[^&]*", r"\1***", url)
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def resolve_storage(study_dir: Path, storage: str | None, workers: int) -> Storage:
    """The study's storage: ``storage`` as given (several workers only where its kind allows them),
    else a file in the study folder: SQLite for one worker, a journal file for several."""
    lock = study_dir / LOCK_FILE
    if storage:
        kind = storage_kind(storage)
        if workers > 1 and not kind.workers:
            raise GanzooError(f"{kind.usage.split(':')[0]} storage takes one worker at a time; for --workers "
                              f"{workers} use " + " or ".join(STORAGES.get(n).usage for n in STORAGES.in_order()
                                                              if STORAGES.get(n).workers))
        return Storage(storage, lock)
    journal, db = study_dir / JOURNAL_FILE, study_dir / SQLITE_FILE
    # Several local workers need a store safe for concurrent writers: a journal file. Whichever
    # kind a study started with is kept, so re-running a command always finds its study.
    if journal.exists() or (workers > 1 and not db.exists()):
        return Storage(f"journal:{journal}", lock)
    return Storage(f"sqlite:///{db}", lock)
