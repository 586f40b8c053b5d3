"""Optuna sweeps over the registry, one concern a module (in the way Optuna lays out its storages):

- ``config``: ``SweepConfig`` (a preset's keys), the shipped presets, stored settings compared;
- ``spaces``: search-space distributions and how a trial draws from them;
- ``storage``: a registry of storage kinds (SQLite, journal file, PostgreSQL), their claim locks;
- ``liveness``: heartbeats and the repair of trials whose worker died (Optuna's internals, all here);
- ``sizing``: how many trials train at once (``--population``);
- ``trials``: the one path a claimed trial takes, alone or in a population, and its record;
- ``files``: the study folder's file names and trials.csv, which reports read;
- ``study``: ``Sweep``, the studies of a sweep and the loop that claims their trials.
"""

from __future__ import annotations

from ganzoo.sweep.config import (
    PRUNERS,
    SAMPLERS,
    SPACES,
    Pair,
    SweepConfig,
    load_preset,
    mismatch_message,
    preset_dir,
    settings_difference,
    shipped_presets,
)
from ganzoo.sweep.files import ATTR, SWEEP_FILE, TRIALS_CSV, export, trials_frame
from ganzoo.sweep.spaces import grid_values, parse_distribution, suggest
from ganzoo.sweep.storage import (
    STORAGES,
    Storage,
    redact,
    register_storage,
    resolve_storage,
)
from ganzoo.sweep.study import Sweep
from ganzoo.sweep.trials import summarise

__all__ = [
    "ATTR", "PRUNERS", "SAMPLERS", "SPACES", "STORAGES", "SWEEP_FILE", "TRIALS_CSV", "Pair", "Storage", "Sweep",
    "SweepConfig", "register_storage",
    "export", "grid_values", "load_preset", "mismatch_message", "parse_distribution", "preset_dir", "redact",
    "resolve_storage", "settings_difference", "shipped_presets", "suggest", "summarise", "trials_frame",
]
