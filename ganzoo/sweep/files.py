"""A study's files and names, written by sweeps and read by reports (which import them from here):
the sweep's settings file, the trials table, the study user attribute holding the settings."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganzoo.core import rundir

SWEEP_FILE = "sweep.json"  # the study folder's settings, pairs and storage (its password redacted)
TRIALS_CSV = "trials.csv"  # one row per trial, rewritten after every trial
ATTR = "ganzoo_sweep"  # the Optuna study user attribute holding the sweep's settings
TENSORBOARD = "tensorboard"  # the study's TensorBoard log directory (tensorboard = true)
OBJECTIVE = "FID (mean over seeds)"  # what a trial's value is: the metric name Optuna and its dashboard show
PAIR_ATTR = "ganzoo_pair"  # the study user attribute holding its pair's protocol record (space and run settings)
# Trial user attributes that make a trial the configuration it is, carried by a retry (liveness.requeue):
SETTINGS = "settings"  # every dimension's value (an enqueued trial brings the fixed ones)
DEFAULT_TRIAL = "default_trial"  # the space's default configuration, run first
PHASE, REPEAT = "phase", "repeat"  # a repeat trial re-runs the best configuration on new seeds
SEEDS = "seeds"  # a repeat trial's seeds
BEST_TRIAL = "best_trial"  # the search trial whose configuration a repeat trial runs
IDENTITY = (SETTINGS, DEFAULT_TRIAL, PHASE, SEEDS, BEST_TRIAL)
REPEAT_SUFFIX = "#repeat"  # the repeat study of pair P is named P#repeat
LOST = "lost"  # a trial's status when its worker stopped without recording an outcome (killed, machine lost)
LOST_MESSAGE = "its worker stopped while it ran (killed, or its machine lost); the trial was queued again"


def trials_frame(studies: Mapping[str, Any]) -> Any:
    """One row per trial of ``studies`` (pair name -> study; a pair's repeat study as NAME#repeat), with
    its variant, dataset and phase (search or repeat)."""
    import pandas as pd

    frames = []
    for name, study in studies.items():
        frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
        if frame.empty:
            continue
        # Optuna names the value column after the study's metric name (value_FID ...): trials.csv keeps "value".
        frame = frame.rename(columns={c: "value" for c in frame.columns if c.startswith("value_")})
        variant, _, dataset = name.removesuffix(REPEAT_SUFFIX).partition("@")
        frame.insert(0, "dataset", dataset)
        frame.insert(0, "variant", variant)
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out.columns = [c.removeprefix("user_attrs_") for c in out.columns]
    # A repeat trial carries its phase as a user attribute; a search trial has none.
    phase = out.pop(PHASE).fillna("search") if PHASE in out else "search"
    out.insert(2, PHASE, phase)
    # A failed trial with no status of its own was failed by another worker when its own stopped
    # beating (ganzoo.sweep.liveness): it never recorded an outcome.
    status = out["status"] if "status" in out else pd.Series(None, index=out.index, dtype=object)
    out["status"] = status.mask(status.isna() & (out["state"] == "FAIL"), LOST)
    return out


def export(study_dir: Path, studies: Mapping[str, Any]) -> Path:
    buffer = io.StringIO()
    trials_frame(studies).to_csv(buffer, index=False)
    path = study_dir / TRIALS_CSV
    rundir.atomic_write(path, lambda f: f.write(buffer.getvalue().encode()))
    return path
