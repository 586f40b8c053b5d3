"""Search spaces: the distributions a variant's space and a preset's ``extra_space`` are written in,
and how a trial draws from them (Optuna's suggest calls) or a grid is laid over them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ganzoo.core.errors import GanzooError


def suggest(trial: Any, key: str, dist: Any) -> Any:
    from ganzoo.protocols.ranges import Choice, LogUniform, Uniform

    if isinstance(dist, LogUniform):
        return trial.suggest_float(key, dist.low, dist.high, log=True)
    if isinstance(dist, Uniform):
        return trial.suggest_float(key, dist.low, dist.high)
    if isinstance(dist, Choice):
        return trial.suggest_categorical(key, list(dist.values))
    raise GanzooError(f"search space entry {key!r} has unknown distribution {dist!r}")


def parse_distribution(key: str, spec: Any) -> Any:
    """A search dimension written in a preset: {choice = [...]}, {uniform = [lo, hi]} or
    {log_uniform = [lo, hi]}, each optionally with default = V (the first trial's value)."""
    from ganzoo.protocols.ranges import Choice, LogUniform, Uniform

    kinds = {"choice": Choice, "uniform": Uniform, "log_uniform": LogUniform}
    named = [k for k in spec if k in kinds] if isinstance(spec, Mapping) else []
    if len(named) != 1 or set(spec) - {named[0], "default"}:
        raise GanzooError(f"extra_space.{key}: expected one of {{choice = [...]}}, {{uniform = [lo, hi]}}, "
                          f"{{log_uniform = [lo, hi]}}, optionally with default = V, got {spec!r}")
    kind, value, default = named[0], spec[named[0]], spec.get("default")
    if kind == "choice":
        if not isinstance(value, list) or not value:
            raise GanzooError(f"extra_space.{key}: choice needs a non-empty list, got {value!r}")
        if default is not None and len(value) > 1 and default not in value:
            raise GanzooError(f"extra_space.{key}: default {default!r} is not among {value!r}")
        return Choice(tuple(value), default)
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
            and value[0] < value[1]):
        raise GanzooError(f"extra_space.{key}: {kind} needs [low, high] with low < high, got {value!r}")
    if kind == "log_uniform" and value[0] <= 0:
        raise GanzooError(f"extra_space.{key}: log_uniform needs low > 0, got {value[0]}")
    if default is not None and not isinstance(default, (int, float)):
        raise GanzooError(f"extra_space.{key}: default must be a number, got {default!r}")
    return kinds[kind](float(value[0]), float(value[1]), None if default is None else float(default))


def grid_values(space: Mapping[str, Any], points: int = 3) -> dict[str, list[Any]]:
    """A grid over a search space's searched dimensions: choices as they are, ranges at ``points`` even
    (log) steps (fixed dimensions are settings, not part of the grid)."""
    from ganzoo.protocols.ranges import Choice, LogUniform, fixed_value

    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if fixed_value(dist)[0]:
            continue
        if isinstance(dist, Choice):
            grid[key] = list(dist.values)
        elif isinstance(dist, LogUniform):
            lo, hi = math.log10(dist.low), math.log10(dist.high)
            grid[key] = [10 ** (lo + (hi - lo) * i / (points - 1)) for i in range(points)]
        else:
            grid[key] = [dist.low + (dist.high - dist.low) * i / (points - 1) for i in range(points)]
    return grid
