"""Training: one engine for every run, whatever runs through it. A single run's modules or a population's
stacked weights share one step (n_critic D updates, one G update), run eagerly or captured as one CUDA graph.

- ``engine``: the loop (logging, samples, checkpoints, callbacks, divergence, interruption);
- ``trainer``: one run (``Trainer``, ``train``, ``resume``); ``population``: P runs as one vmapped population;
- ``step``: what both step bodies share; ``graphs``: eager or captured execution; ``capture``: finding host
  syncs from a CPU; ``averaging``: G's moving average; ``tensorboard``: event files.

Reference page: ``ganzoo/training/README.md``.
"""

from __future__ import annotations

from ganzoo.training.engine import Engine, RunResult, StopTraining, TrainState
from ganzoo.training.population import PopulationTrainer
from ganzoo.training.trainer import Trainer, resume, train

__all__ = ["Engine", "PopulationTrainer", "RunResult", "StopTraining", "TrainState", "Trainer", "resume", "train"]
