"""What a report reads: the trials of a study, from its folder, a trials.csv or a PostgreSQL study.

Reports read only what sweeps and runs wrote (the study storage, trials.csv, run directories);
they never import the trainer and never train.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ganzoo.core import rundir
from ganzoo.core.errors import GanzooError
from ganzoo.sweep.files import (
    ATTR,
    PAIR_ATTR,
    REPEAT,
    REPEAT_SUFFIX,
    SWEEP_FILE,
    TRIALS_CSV,
    trials_frame,
)
from ganzoo.sweep.storage import JOURNAL_FILE, SQLITE_FILE, Storage, redact

LOCAL_STORAGES = (SQLITE_FILE, JOURNAL_FILE)


@dataclasses.dataclass(frozen=True)
class StudyResults:
    name: str
    source: str  # what was read, for the report's header
    study_dir: Path | None  # where run directories are looked up (None: nowhere local)
    trials: pd.DataFrame  # one row per search trial, the columns of trials.csv
    settings: dict[str, Any] | None  # the sweep's settings, when known
    pairs: list[str]  # "variant@dataset" of the sweep, when known (else those seen)
    repeats: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # a row per repeat run (phase repeat)
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)  # pair -> its protocol record, when stored

    @property
    def n_requested(self) -> int | None:
        if not self.settings:
            return None
        return int(self.settings["n_trials"]) * len(self.pairs)

    def run_dir(self, recorded: str) -> Path | None:
        """A run directory as recorded by the sweep, found here: as written (relative to where the sweep
        ran), or inside this study folder (the folder was moved or copied)."""
        path = Path(recorded)
        candidates = [path]
        if self.study_dir is not None and "runs" in path.parts:
            candidates.append(self.study_dir.joinpath(*path.parts[path.parts.index("runs"):]))
        return next((p for p in candidates if p.is_dir()), None)


MODE_METRICS = ("modes_covered", "n_modes", "high_quality_share", "mode_reverse_kl")  # what a mixture run scores


def run_metrics(results: StudyResults, trials: pd.DataFrame, keys: tuple[str, ...] = MODE_METRICS) -> pd.DataFrame:
    """A row per run (seed) of ``trials``: its trial (variant, dataset, number), the seed, whether its
    folder is here, and ``keys`` of its final evaluation as the trial recorded it: the last record of
    its metrics.jsonl with the trial's extractor, sample count and reference (a later ``ganzoo evaluate``
    with other settings appends its own). A run that did not complete (its status.json says so) has
    NaNs, as the trial's means over seeds leave it out; so has a run whose folder is not here."""
    rows = []
    for _, trial in trials.iterrows():
        scored = {k: trial.get(k) for k in ("extractor", "n_samples", "reference")}
        for recorded in trial["run_dirs"]:
            run_dir = results.run_dir(recorded)
            row: dict[str, Any] = {"variant": trial["variant"], "dataset": trial["dataset"], "number": trial["number"],
                                   "seed": _seed(run_dir), "found": run_dir is not None, **dict.fromkeys(keys)}
            if run_dir is not None and _completed(run_dir):
                final = [m for m in rundir.read_jsonl(run_dir / rundir.METRICS)
                         if all(pd.isna(v) or m.get(k) == v for k, v in scored.items())]
                if final:
                    row.update({k: final[-1].get(k) for k in keys})
            rows.append(row)
    frame = pd.DataFrame(rows, columns=["variant", "dataset", "number", "seed", "found", *keys])
    return frame.astype({k: float for k in keys})  # None (reverse KL without a high-quality sample) -> NaN


def _completed(run_dir: Path) -> bool:
    path = run_dir / rundir.STATUS
    return not path.exists() or rundir.read_json(path).get("status") == "completed"


def _seed(run_dir: Path | None) -> int | None:
    path = None if run_dir is None else run_dir / rundir.CONFIG
    return rundir.read_json(path).get("seed") if path is not None and path.exists() else None


def load(source: str, study: str | None = None) -> StudyResults:
    """``source``: a study folder, a trials.csv, or a PostgreSQL URL (then ``study`` names the study)."""
    if source.startswith(("postgresql://", "postgresql+", "postgres://")):
        if not study:
            raise GanzooError("a PostgreSQL source needs --study NAME")
        return _from_storage(study, source, None, source_label=redact(source))
    path = Path(source)
    if path.is_file():
        if path.suffix != ".csv":
            raise GanzooError(f"{path} is not a study folder or a trials.csv")
        return _from_csv(path, study)
    if not path.is_dir():
        raise GanzooError(f"{path} not found: expected a study folder, a trials.csv or a PostgreSQL URL")
    sweep_file = path / SWEEP_FILE
    meta = rundir.read_json(sweep_file) if sweep_file.exists() else {}
    name = study or meta.get("study") or path.name
    for filename in LOCAL_STORAGES:
        if (path / filename).exists():
            url = _local_url(path / filename)
            return _from_storage(name, url, path, source_label=str(path / filename), meta=meta)
    if (path / TRIALS_CSV).exists():
        return _from_csv(path / TRIALS_CSV, name, meta=meta)
    raise GanzooError(f"{path} holds no study (no {', '.join(LOCAL_STORAGES)} or {TRIALS_CSV})")


def _local_url(path: Path) -> str:
    if path.name == JOURNAL_FILE:
        return f"journal:{path}"
    return f"sqlite:///{path}"


def _from_storage(name: str, url: str, study_dir: Path | None, source_label: str,
                  meta: dict[str, Any] | None = None) -> StudyResults:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = Storage(url, lock_file=Path("unused.lock")).open()  # reading takes no lock
    try:
        names = [s for s in optuna.study.get_all_study_names(storage) if s.startswith(f"{name}/")]
    except Exception as e:  # SQLAlchemy and the drivers raise many types for a bad or absent server
        raise GanzooError(f"cannot read the study storage {source_label}: {' '.join(str(e).split())[:200]}") from None
    if not names:
        raise GanzooError(f"no study {name!r} in {source_label}")
    studies = {n.removeprefix(f"{name}/"): optuna.load_study(study_name=n, storage=storage) for n in names}
    settings = (meta or {}).get("settings") or next(iter(studies.values())).user_attrs.get(ATTR)
    pairs = (meta or {}).get("pairs") or sorted(n for n in studies if not n.endswith(REPEAT_SUFFIX))
    protocol = (meta or {}).get("protocol") or {n: s.user_attrs[PAIR_ATTR] for n, s in studies.items()
                                               if PAIR_ATTR in s.user_attrs}
    return _results(name, source_label, study_dir, trials_frame(studies), settings, pairs, protocol)


def _results(name: str, source: str, study_dir: Path | None, frame: pd.DataFrame, settings: dict[str, Any] | None,
             pairs: list[str], protocol: dict[str, Any]) -> StudyResults:
    """The search trials and the repeat runs apart (a trials.csv of an older ganzoo has no phase: all search)."""
    frame = _typed(frame)
    repeat = frame["phase"] == REPEAT if "phase" in frame else pd.Series(False, index=frame.index)
    return StudyResults(name, source, study_dir, frame[~repeat].reset_index(drop=True), settings, pairs,
                        frame[repeat].reset_index(drop=True), protocol)


def _from_csv(path: Path, study: str | None, meta: dict[str, Any] | None = None) -> StudyResults:
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise GanzooError(f"{path} is not a readable trials.csv: {' '.join(str(e).split())[:200]}") from None
    missing = {"variant", "dataset", "state"} - set(frame.columns)
    if missing:
        raise GanzooError(f"{path} is not a ganzoo trials.csv (missing columns: {', '.join(sorted(missing))})")
    meta = meta or {}
    name = study or meta.get("study") or path.parent.name
    pairs = meta.get("pairs") or sorted({f"{v}@{d}" for v, d in zip(frame["variant"], frame["dataset"])})
    return _results(name, str(path), path.parent, frame, meta.get("settings"), pairs, meta.get("protocol") or {})


# Optuna adds a user-attribute column only once some trial has it: a study whose trials all
# failed or still run has no fid_mean. Every column the report reads exists, NaN where unknown.
NUMERIC = ("number", "value", "fid_mean", "fid_std", "best_fid", "best_trial", "diverged_seeds", "n_samples", "modes_covered",
           "classes_covered", "class_kl", "high_quality_share", "mode_reverse_kl", "d_saturated_share", "train_images_per_second",
           "ms_per_step", "peak_memory_bytes", "precision", "recall", "density", "coverage",
           "extraction_images_per_second")
TEXT = ("extractor", "extractor_precision", "reference", "device", "torch", "dtype")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The same columns whether read from storage or CSV: states as names, run_dirs as lists, FIDs as
    floats, a diverged trial's infinite objective kept apart from its FID."""
    frame = frame.copy()
    for column in ("variant", "dataset", "state", "status", *TEXT, "run_dirs", "fid_per_seed"):
        if column not in frame:
            frame[column] = None
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else float("nan")
    if frame.empty:
        return frame
    frame["state"] = frame["state"].map(lambda s: getattr(s, "name", s)).astype(str)
    # A trial that ended before its record was written (RUNNING, FAIL, WAITING) has no status of its own.
    frame["status"] = [s if isinstance(s, str) else state.lower() for s, state in zip(frame["status"], frame["state"])]
    frame.loc[frame["state"] == "PRUNED", "status"] = "pruned"
    for column in TEXT:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame["run_dirs"] = [_json_list(v) for v in frame["run_dirs"]]
    frame["fid_per_seed"] = [_json_list(v) for v in frame["fid_per_seed"]]
    return frame.sort_values(["dataset", "variant", "number"], kind="stable").reset_index(drop=True)


def _json_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        return []
    try:
        out = json.loads(value)
    except json.JSONDecodeError:
        return []
    return [None if isinstance(v, float) and math.isnan(v) else v for v in out] if isinstance(out, list) else []

