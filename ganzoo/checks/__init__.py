"""Checks that ganzoo and what users add to it work as promised: the contract every registered entry
passes (``ganzoo check``, and the tests), throughput against a tutorial loop (``ganzoo bench``), and the
GPU self-check to run first on a new GPU (``ganzoo bench --self-check``).

- ``contract``: the contract checks, parametrized over every registry; ``bench``: the throughput
  benchmarks and their CSVs; ``selfcheck``: the self-check, one concern a module.

Reference page: ``ganzoo/checks/README.md``.
"""

from __future__ import annotations

from ganzoo.checks.bench import BenchSpec, TutorialLoop
from ganzoo.checks.contract import CheckResult, check_plugin

__all__ = ["BenchSpec", "CheckResult", "TutorialLoop", "check_plugin"]
