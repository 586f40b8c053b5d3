"""Samplers whose draws belong to the trial, not to the process.

Optuna's samplers keep one random stream per process, seeded once: a sweep resumed in a new process
(after Ctrl-C, a crash, or to finish failed trials) restarted that stream and proposed trial 0's
configuration again, a copy the report then counted as an independent trial. Here every draw is
seeded from (sampler seed, trial number, parameter): trial numbers are unique within a study across
processes, workers and machines, so no two trials share a stream, and a trial's random draws are
the same whichever process makes them. TPE's model-based draws still depend on the trials finished
before it (its model), as they must.
"""

from __future__ import annotations

import zlib
from typing import Any

import optuna
from optuna.samplers import GridSampler, RandomSampler, TPESampler

_WORD = 2**32  # numpy's RandomState takes seeds as 32-bit words


def _seed(rng: Any, *words: int) -> None:
    rng.rng.seed([w % _WORD for w in words])


class TrialSeeded:
    """Reseeds the sampler's random streams before each draw (mixed into an Optuna sampler)."""

    def __init__(self, *args: Any, seed: int, **kwargs: Any) -> None:
        super().__init__(*args, seed=seed, **kwargs)  # type: ignore[call-arg]
        self._base = seed

    def _streams(self) -> list[Any]:
        streams = [self._rng]  # type: ignore[attr-defined]
        inner = getattr(self, "_random_sampler", None)  # TPE's startup draws
        return streams + ([inner._rng] if inner is not None else [])

    def _reseed(self, trial: Any, *words: int) -> None:
        for i, stream in enumerate(self._streams()):
            _seed(stream, self._base, trial.number, i, *words)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        self._reseed(trial, zlib.crc32(param_name.encode()))
        return super().sample_independent(study, trial, param_name, param_distribution)  # type: ignore[misc]

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        self._reseed(trial, _WORD - 1)
        return super().sample_relative(study, trial, search_space)  # type: ignore[misc]

    def before_trial(self, study: Any, trial: Any) -> None:
        self._reseed(trial, _WORD - 2)  # the grid sampler picks its point here
        super().before_trial(study, trial)  # type: ignore[misc]


class TrialSeededRandom(TrialSeeded, RandomSampler):
    pass


class TrialSeededTPE(TrialSeeded, TPESampler):
    pass


class TrialSeededGrid(TrialSeeded, GridSampler):
    pass


def make_sampler(kind: str, seed: int, grid: dict[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    """``kind``: random, tpe or grid (``grid``: its values per dimension)."""
    if kind == "random":
        return TrialSeededRandom(seed=seed)
    if kind == "grid":
        assert grid is not None
        return TrialSeededGrid(grid, seed=seed)
    return TrialSeededTPE(seed=seed)
