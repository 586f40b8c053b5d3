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


@pytest.fixture(scope="session")
def bench_mode(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--bench-mode") or ("full" if torch.cuda.is_available() else "quick")


@pytest.fixture(scope="session")
def spec(bench_mode: str) -> BenchSpec:
    return BenchSpec() if bench_mode == "full" else BenchSpec.quick()


@pytest.fixture(scope="session")
def on_cuda() -> bool:
    return torch.cuda.is_available()
