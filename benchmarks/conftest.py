"""Benchmarks (pytest-benchmark): ``python -m pytest benchmarks/ --benchmark-only``.

``--bench-mode quick`` (the default without CUDA) is small enough for CI on 2 CPU cores;
``full`` (the default on CUDA) is the protocol the committed results use. Speed targets are
asserted as ratios measured in one run, never as wall-clock times.
"""

from __future__ import annotations

import pytest
import torch

from ganzoo.bench import BenchSpec


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
    return BenchSpec() if bench_mode == "full" else BenchSpec.quick()


@pytest.fixture(scope="session")
def on_cuda() -> bool:
    return torch.cuda.is_available()
