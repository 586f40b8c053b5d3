"""A throwaway store of every registered storage kind, for the sweep's contract tests (the habit of
Optuna's ``testing/storages.py``: one supplier, ``STORAGE_MODES`` listing every backend). A kind
registered in ganzoo.sweep.storage joins ``STORAGE_MODES`` at once; the supplier below fails until it
knows how to make a throwaway store of it, so no kind goes untested."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ganzoo.sweep.storage import STORAGES
from support import pg

STORAGE_MODES = STORAGES.in_order()


def throwaway_url(mode: str, folder: Path, postgres_server: Callable[[], str]) -> str:
    """A new, empty store of kind ``mode`` (``postgres_server()``: a running cluster's URL, started on demand)."""
    folder.mkdir(parents=True, exist_ok=True)
    if mode == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"
    if mode == "journal":
        return f"journal:{folder / 'store.log'}"
    if mode == "postgresql":
        return pg.create_database(postgres_server(), f"t{uuid.uuid4().hex[:12]}")
    pytest.fail(f"tests/storages.py has no throwaway store of kind {mode!r}: add one to throwaway_url", pytrace=False)


def open_study(url: str, name: str):
    """The study as a bystander reads it: never creating Optuna's tables (racing a worker's own creation
    of them fails one side), through psycopg2 on PostgreSQL."""
    import optuna

    from ganzoo.sweep.storage import Storage

    if url.startswith("postgresql"):
        storage = optuna.storages.RDBStorage(pg.psycopg2_url(url), skip_table_creation=True)
    elif url.startswith("sqlite"):
        storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    else:
        storage = Storage(url, Path("unused.lock")).open()
    return optuna.load_study(study_name=name, storage=storage)
