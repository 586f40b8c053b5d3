"""A study's files and names, written by sweeps and read by reports (which import them from here):
the sweep's settings file, the trials table, the study user attribute holding the settings."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganzoo import rundir

SWEEP_FILE = "sweep.json"  # the study folder's settings, pairs and storage (its password redacted)
TRIALS_CSV = "trials.csv"  # one row per trial, rewritten after every trial
ATTR = "ganzoo_sweep"  # the Optuna study user attribute holding the sweep's settings
TENSORBOARD = "tensorboard"  # the study's TensorBoard log directory (tensorboard = true)
OBJECTIVE = "FID (mean over seeds)"  # what a trial's value is: the metric name Optuna and its dashboard show


def trials_frame(studies: Mapping[str, Any]) -> Any:
    import pandas as pd

    frames = []
    for name, study in studies.items():
        frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
        if frame.empty:
            continue
        # Optuna names the value column after the study's metric name (value_FID ...): trials.csv keeps "value".
        frame = frame.rename(columns={c: "value" for c in frame.columns if c.startswith("value_")})
        variant, _, dataset = name.partition("@")
        frame.insert(0, "dataset", dataset)
        frame.insert(0, "variant", variant)
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out.columns = [c.removeprefix("user_attrs_") for c in out.columns]
    return out


def export(study_dir: Path, studies: Mapping[str, Any]) -> Path:
    buffer = io.StringIO()
    trials_frame(studies).to_csv(buffer, index=False)
    path = study_dir / TRIALS_CSV
    rundir.atomic_write(path, lambda f: f.write(buffer.getvalue().encode()))
    return path
