"""Search spaces: the distributions a variant's space and a preset's ``extra_space`` are written in,
and how a trial draws from them (Optuna's suggest calls) or a grid is laid over them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ganzoo.errors import GanzooError


def suggest(trial: Any, key: str, dist: Any) -> Any:
    from ganzoo.variants import Choice, LogUniform, Uniform

    if isinstance(dist, LogUniform):
        return trial.suggest_float(key, dist.low, dist.high, log=True)
    if isinstance(dist, Uniform):
        return trial.suggest_float(key, dist.low, dist.high)
    if isinstance(dist, Choice):
        return trial.suggest_categorical(key, list(dist.values))
    raise GanzooError(f"search space entry {key!r} has unknown distribution {dist!r}")


def parse_distribution(key: str, spec: Any) -> Any:
    """A search dimension written in a preset: {choice = [...]}, {uniform = [lo, hi]} or
    {log_uniform = [lo, hi]}."""
    from ganzoo.variants import Choice, LogUniform, Uniform

    kinds = {"choice": Choice, "uniform": Uniform, "log_uniform": LogUniform}
    if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in kinds:
        raise GanzooError(f"extra_space.{key}: expected one of {{choice = [...]}}, {{uniform = [lo, hi]}}, "
                          f"{{log_uniform = [lo, hi]}}, got {spec!r}")
    kind, value = next(iter(spec.items()))
    if kind == "choice":
        return Choice(tuple(value))
    if not (isinstance(value, list) and len(value) == 2 and value[0] < value[1]):
        raise GanzooError(f"extra_space.{key}: {kind} needs [low, high] with low < high, got {value!r}")
    if kind == "log_uniform" and value[0] <= 0:
        raise GanzooError(f"extra_space.{key}: log_uniform needs low > 0, got {value[0]}")
    return kinds[kind](float(value[0]), float(value[1]))


def grid_values(space: Mapping[str, Any], points: int = 3) -> dict[str, list[Any]]:
    """A grid from a search space: choices as they are, ranges at ``points`` even (log) steps."""
    from ganzoo.variants import Choice, LogUniform

    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, Choice):
            grid[key] = list(dist.values)
        elif isinstance(dist, LogUniform):
            lo, hi = math.log10(dist.low), math.log10(dist.high)
            grid[key] = [10 ** (lo + (hi - lo) * i / (points - 1)) for i in range(points)]
        else:
            grid[key] = [dist.low + (dist.high - dist.low) * i / (points - 1) for i in range(points)]
    return grid
