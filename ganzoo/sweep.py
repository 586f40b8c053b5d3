"""Optuna studies over the registry: one study per (variant, dataset) in ``results/<study>/``.

Exactness across workers and machines: a worker takes its next trial under a lock (a file lock
on one machine, a PostgreSQL advisory lock across machines). Under it, a WAITING trial (a retry)
is popped with ``study.ask()``; otherwise a new trial is created only while fewer than
``n_trials`` trials are complete, pruned or running. A trial whose worker died (SIGKILL, power
loss) stops sending heartbeats (RDB storages), is marked failed by the next worker that looks,
and Optuna's retry callback queues it again as WAITING, so every study still ends with exactly
``n_trials`` finished trials. Ctrl-C records the running trial as interrupted and queues it
again; re-running the same command resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ganzoo import rundir
from ganzoo.config import EvalSpec, from_dict, to_dict
from ganzoo.errors import GanzooError, describe_exception

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
SPACES = ("wide", "narrow")
SWEEP_FILE = "sweep.json"
TRIALS_CSV = "trials.csv"
ATTR = "ganzoo_sweep"  # study user attribute holding the sweep's settings
# How often a running trial's worker signals it is alive, and after how long without a signal its
# trial counts as dead. GANZOO_HEARTBEAT_SECONDS / GANZOO_GRACE_SECONDS override them.
HEARTBEAT_SECONDS, GRACE_SECONDS = 10, 60


def _seconds(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise GanzooError(f"{name} must be a positive whole number of seconds, got {value!r}")
    return int(value)


def heartbeat_seconds() -> int:
    return _seconds("GANZOO_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)


def grace_seconds() -> int:
    return _seconds("GANZOO_GRACE_SECONDS", GRACE_SECONDS)
MAX_RETRIES = 3


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    variants: tuple[str, ...]
    datasets: tuple[str, ...]
    n_trials: int = 10  # finished trials per (variant, dataset)
    seeds: int = 1  # every configuration runs with seeds 0..seeds-1; the objective is their mean
    sampler: str = "tpe"
    pruner: str = "none"
    space: str = "wide"
    arch: str | None = None  # one architecture for every loss (Lucic et al. 2018)
    steps: int = 1000
    epochs: float | None = None  # overrides steps: epochs of the training split
    batch_size: int = 64
    eval_every: int = 0  # intermediate evaluations for pruning; 0: only the final one
    evaluation: EvalSpec = EvalSpec(n_samples=2000)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # fixed dotted settings
    variant_settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # {variant: {key: value}}
    extra_space: dict[str, Any] = dataclasses.field(default_factory=dict)  # {key: {choice|uniform|log_uniform: ...}}
    device: str = "auto"
    sampler_seed: int = 0
    optional_datasets: tuple[str, ...] = ()  # used when present, skipped with a note otherwise
    # {label: {key: value}}: every variant runs under each set of fixed settings, as a study of its own
    # named VARIANT+LABEL (Kurach et al. 2019's loss x normalisation grid); {}: each variant as it is
    conditions: dict[str, Any] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        from ganzoo.variants import VARIANTS

        if not self.variants or not self.datasets:
            raise GanzooError("a sweep needs at least one variant and one dataset")
        for name in self.variants:
            VARIANTS.get(name)
        for field, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("space", SPACES)):
            if getattr(self, field) not in allowed:
                raise GanzooError(f"{field} must be one of {', '.join(allowed)}, got {getattr(self, field)!r}")
        for field in ("n_trials", "seeds", "steps", "batch_size"):
            if getattr(self, field) < 1:
                raise GanzooError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.eval_every < 0:
            raise GanzooError(f"eval_every must be >= 0, got {self.eval_every}")
        unknown = sorted(set(self.variant_settings) - set(self.variants))
        if unknown:
            raise GanzooError(f"variant_settings for variants not in the sweep: {', '.join(unknown)}")
        for key, spec in self.extra_space.items():
            parse_distribution(key, spec)
        for label, settings in self.conditions.items():
            if not label or any(c.isspace() or c in "@+/:" for c in label):
                raise GanzooError(f"condition label must be a plain word (no whitespace, @, +, / or :), got {label!r}")
            if not isinstance(settings, Mapping) or not settings:
                raise GanzooError(f"conditions.{label}: expected a table of settings (key = value), got {settings!r}")
        if self.pruner != "none" and self.eval_every == 0:
            raise GanzooError("a pruner needs intermediate results: set eval_every > 0")
        self.evaluation.validate()


# ---- settings of a stored study ------------------------------------------------------------

_MISSING = object()


def _leaves(cls: type, prefix: str = "") -> list[str]:
    """Dotted paths of a config's settings: nested dataclasses are walked, dicts are one setting."""
    import typing

    hints = typing.get_type_hints(cls)
    out: list[str] = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        path = prefix + field.name
        out.extend(_leaves(hint, path + ".") if dataclasses.is_dataclass(hint) else [path])
    return out


def _get(tree: Mapping[str, Any] | None, path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{prefix}.{key}").items()}
    return {prefix: value}


def settings_difference(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, stored value, current value) for each setting that differs.

    A setting the stored study lacks was added to ganzoo after the study began; it counts as its
    default, which keeps the behaviour of the version that did not have it. So an upgrade never
    locks a user out of their own study, while a setting they changed is always caught. Settings
    ganzoo no longer has cannot change a run and are ignored.
    """
    default = to_dict(SweepConfig(variants=(), datasets=()))
    diff: list[tuple[str, Any, Any]] = []
    for path in _leaves(SweepConfig):
        theirs, mine = _get(stored, path), _get(current, path)
        if theirs is _MISSING:
            theirs = _get(default, path)
        if theirs == mine:
            continue
        if isinstance(theirs, Mapping) and isinstance(mine, Mapping):  # name the entries that differ
            a, b = _flat(theirs, path), _flat(mine, path)
            diff.extend((k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        else:
            diff.append((path, theirs, mine))
    return diff


# Settings that ``ganzoo sweep`` has a flag for, so that a resume command can be given.
_SETTING_FLAG = {"n_trials": "--trials", "seeds": "--seeds", "sampler": "--sampler", "pruner": "--pruner",
                 "space": "--space", "steps": "--steps", "eval_every": "--eval-every", "arch": "--arch",
                 "device": "--device"}


def _with_flags(command: list[str], flags: Mapping[str, Any]) -> list[str]:
    """``command`` with each of ``flags`` set to its value (replacing the flag where it is given)."""
    out, skip = [], False
    for word in command:
        if skip:
            skip = False
            continue
        flag = word.split("=", 1)[0]
        if flag in flags:
            skip = "=" not in word
            continue
        out.append(word)
    return out + [w for flag, value in flags.items() for w in (flag, str(value))]


def mismatch_message(study: str, where: str, diff: list[tuple[str, Any, Any]], command: list[str] | None,
                     folder: Path | None) -> str:
    """One line naming every differing setting with both values, and commands that resolve it."""
    def show(value: Any) -> str:
        return "(unset)" if value is None else json.dumps(value)

    changes = "; ".join(f"{key} {show(old)} there, {show(new)} now" for key, old, new in diff)
    text = f"study {study!r} in {where} was run with other settings: {changes}."
    if command is None:
        return text + " Resume it with its own settings, or choose another study name."
    import shlex

    fixes = []
    if all(key in _SETTING_FLAG for key, _, _ in diff):
        resume = _with_flags(command, {_SETTING_FLAG[key]: old for key, old, _ in diff if old is not None})
        fixes.append(f"resume it as it was: {shlex.join(resume)}")
    fresh = next(f"{study}-{i}" for i in range(2, 10_000) if folder is None or not (folder.parent / f"{study}-{i}").exists())
    fixes.append(f"start a new study beside it: {shlex.join(_with_flags(command, {'--study': fresh}))}")
    if folder is not None:
        fixes.append(f"start it over: rm -r {shlex.quote(str(folder))} and run the same command again")
    return text + " To " + "; or to ".join(fixes)


# ---- presets -----------------------------------------------------------------------------


def preset_dir() -> Path:
    return Path(__file__).parent / "presets"


def shipped_presets() -> dict[str, str]:
    """Name -> purpose of each shipped preset: the first line of its leading comment."""
    out = {}
    for path in sorted(preset_dir().glob("*.toml")):
        first = next((line for line in path.read_text().splitlines() if line.strip()), "")
        out[path.stem] = first.lstrip("# ").strip() if first.startswith("#") else ""
    return out


def load_preset(name_or_path: str) -> SweepConfig:
    """A shipped preset by name (``smoke``, ``fashion-mnist``) or a TOML file of one's own."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(name_or_path)
    if not path.suffix:
        path = preset_dir() / f"{name_or_path}.toml"
        if not path.exists():
            known = ", ".join(shipped_presets())
            raise GanzooError(f"unknown preset {name_or_path!r}; shipped: {known}, or give a .toml path")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise GanzooError(f"preset file {path} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise GanzooError(f"preset {path} is not valid TOML: {e}") from None
    config = from_dict(SweepConfig, data, "preset")
    config.validate()
    return config


# ---- storage -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Storage:
    url: str  # sqlite:///..., postgresql://..., or journal:PATH
    lock_file: Path

    @property
    def is_rdb(self) -> bool:
        return not self.url.startswith("journal:")

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    def open(self) -> Any:
        import warnings

        import optuna

        # Heartbeats and their retry callback are marked experimental; ganzoo depends on them knowingly.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        # ganzoo beats for its trials itself (_heartbeat) since it drives them with ask/tell.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        if self.url.startswith(("sqlite:///", "journal:")):
            Path(self.url.removeprefix("sqlite:///").removeprefix("journal:")).parent.mkdir(parents=True, exist_ok=True)
        if not self.is_rdb:
            path = self.url.removeprefix("journal:")
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
        try:
            # Machines starting together would race on Optuna's table creation (create_all is not
            # safe concurrently on PostgreSQL): the first creates them while the others wait.
            with self.lock("ganzoo-storage-init") if self.is_postgres else contextlib.nullcontext():
                return optuna.storages.RDBStorage(
                    self.driver_url,
                    heartbeat_interval=heartbeat_seconds(),
                    grace_period=grace_seconds(),
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRIES
                    ),
                )
        except GanzooError:
            raise
        except Exception as e:  # sqlalchemy and driver errors: unreachable server, bad credentials
            raise GanzooError(f"cannot open storage {redact(self.url)}: {_reason(e)}") from None

    @property
    def driver_url(self) -> str:
        """SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; ganzoo ships psycopg2."""
        if self.url.startswith("postgresql://"):
            return "postgresql+psycopg2://" + self.url.removeprefix("postgresql://")
        return self.url

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Serialise trial creation among all workers of a study."""
        if self.is_postgres:
            import sqlalchemy

            engine = sqlalchemy.create_engine(self.driver_url, poolclass=sqlalchemy.pool.NullPool)
            try:
                conn_context = engine.connect()
            except Exception as e:
                raise GanzooError(f"cannot open storage {redact(self.url)}: {_reason(e)}") from None
            with conn_context as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": key})
            engine.dispose()
        else:
            self.lock_file.parent.mkdir(parents=True, exist_ok=True)
            with self.lock_file.open("a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297].rsplit(" ", 1)[0] + " ..."


def redact(url: str) -> str:
    """A storage URL without its password, for messages."""
    import re

    url = re.sub(r"(password=)[^&]*", r"\1***", url)
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def resolve_storage(study_dir: Path, storage: str | None, workers: int) -> Storage:
    lock = study_dir / ".lock"
    if storage:
        if storage.startswith(("postgresql://", "postgresql+psycopg2://", "sqlite:///", "journal:")):
            return Storage(storage, lock)
        raise GanzooError(
            "storage must be postgresql://USER:PASSWORD@HOST[:PORT]/DB, sqlite:///PATH or journal:PATH, "
            f"got {redact(storage)!r}"
        )
    journal, db = study_dir / "journal.log", study_dir / "study.db"
    # Several local workers need a store safe for concurrent writers: a journal file. Whichever
    # kind a study started with is kept, so re-running a command always finds its study.
    if journal.exists() or (workers > 1 and not db.exists()):
        return Storage(f"journal:{journal}", lock)
    return Storage(f"sqlite:///{db}", lock)


# ---- the sweep ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pair:
    variant: str
    dataset: str
    condition: str | None = None  # a label of SweepConfig.conditions

    @property
    def label(self) -> str:
        """The variant as trials and reports name it: VARIANT, or VARIANT+CONDITION."""
        return self.variant if self.condition is None else f"{self.variant}+{self.condition}"

    @property
    def name(self) -> str:
        return f"{self.label}@{self.dataset}"


class Sweep:
    def __init__(
        self,
        study: str,
        config: SweepConfig,
        results: Path | str = "results",
        storage: str | None = None,
        workers: int = 1,
        log: Any = None,
        shared: bool = False,
        population: int | str = 1,
        command: list[str] | None = None,
        progress: bool | None = None,
    ) -> None:
        """``shared``: this process is one of several working on the study (a spawned worker).
        ``population``: trials trained at once as one population (``auto``: from free device memory).
        ``command``: the command line that started it, for messages that say what to run instead.
        ``progress``: a progress bar (default: when stderr is a terminal, in the main process)."""
        if not study or "/" in study or study.startswith("."):
            raise GanzooError(f"study name must be a plain folder name, got {study!r}")
        config.validate()
        self.study, self.config, self.workers = study, config, workers
        self.shared = shared
        if not (population == "auto" or (isinstance(population, int) and population >= 1)):
            raise GanzooError(f"--population must be a positive integer or auto, got {population!r}")
        self.population = population
        self._populable: dict[str, bool] = {}
        self._sizes: dict[str, int] = {}
        self.dir = Path(results) / study
        self.storage = resolve_storage(self.dir, storage, workers)
        self._log = log
        self.command, self._progress_setting = command, progress
        self.progress: Any = None
        self.pairs, self.skipped = self._pairs()

    # -- setup

    def _pairs(self) -> tuple[list[Pair], list[str]]:
        from ganzoo.data import load_dataset
        from ganzoo.variants import build_architecture

        pairs, skipped = [], []
        for dataset in self.config.datasets + self.config.optional_datasets:
            try:
                data = load_dataset(dataset, "train", download=False)
            except GanzooError as e:
                if dataset in self.config.optional_datasets:
                    skipped.append(f"{dataset}: not available here ({e})")
                    continue
                raise
            for variant in self.config.variants:
                for condition in self.config.conditions or [None]:
                    pair = Pair(variant, dataset, condition)
                    try:
                        config = self._pair_config(pair)
                    except GanzooError as e:
                        where = f"conditions.{condition}" if condition else f"variant {variant}"
                        raise GanzooError(f"{pair.name}: {where}: {e}") from None
                    problem = build_architecture(config).check(data.sample_shape)
                    if problem is not None:
                        skipped.append(f"{pair.name}: {problem}")
                        continue
                    pairs.append(pair)
        if not pairs:
            raise GanzooError("no (variant, dataset) pair of this sweep can run: " + "; ".join(skipped))
        return pairs, skipped

    def settings(self) -> dict[str, Any]:
        return to_dict(self.config)

    def log(self, line: str) -> None:
        if self.progress is not None:
            self.progress.log(line)
        elif self._log is not None:
            self._log(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def _check_settings(self, stored: Mapping[str, Any] | None, where: str) -> None:
        diff = settings_difference(stored, self.settings())
        if diff:
            raise GanzooError(mismatch_message(self.study, where, diff, self.command, self.dir))

    def prepare(self) -> None:
        """Create or check the study folder; refuse a study of the same name with other settings
        (settings added to ganzoo since it began count as their defaults: see settings_difference)."""
        mine = self.settings()
        path = self.dir / SWEEP_FILE
        if path.exists():
            self._check_settings(rundir.read_json(path).get("settings"), str(self.dir))
        studies = {p.name: self._open_study(p) for p in self.pairs}  # checks the storage too
        rundir.write_json(path, {"study": self.study, "settings": mine, "storage": redact(self.storage.url),
                                 "pairs": [p.name for p in self.pairs], "skipped": self.skipped})
        self._studies = studies

    def _open_study(self, pair: Pair) -> Any:
        import optuna

        storage = self.storage.open()
        name = f"{self.study}/{pair.name}"
        study = optuna.create_study(
            study_name=name, storage=storage, direction="minimize", load_if_exists=True,
            sampler=self._sampler(pair), pruner=self._pruner(),
        )
        theirs = study.user_attrs.get(ATTR)
        if theirs is None:
            study.set_user_attr("variant", pair.variant)
            study.set_user_attr("dataset", pair.dataset)
            if pair.condition is not None:
                study.set_user_attr("condition", pair.condition)
        else:
            self._check_settings(theirs, redact(self.storage.url))
        if theirs != self.settings():  # new, or migrated: settings added since count as their defaults
            study.set_user_attr(ATTR, self.settings())
        return study

    def _space(self, pair: Pair) -> dict[str, Any]:
        from ganzoo.variants import VARIANTS

        v = VARIANTS.get(pair.variant)
        space = dict(v.search_space if self.config.space == "wide" else v.narrow_space)
        space.update({k: parse_distribution(k, spec) for k, spec in self.config.extra_space.items()})
        return space

    def _sampler(self, pair: Pair) -> Any:
        import optuna

        # Workers seeded alike would propose the same configurations; only a lone local worker
        # can replay the sequence that sampler_seed names.
        alone = not (self.shared or self.storage.is_postgres)
        seed = self.config.sampler_seed if alone else None
        if self.config.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.config.sampler == "grid":
            return optuna.samplers.GridSampler(grid_values(self._space(pair)), seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def _pruner(self) -> Any:
        import optuna

        if self.config.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        if self.config.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=self.config.eval_every, max_resource=self._steps(None))
        return optuna.pruners.NopPruner()

    # -- running

    def run(self) -> None:
        """Run this process's share: trials until every study has its finished trials."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.prepare()
        if not self.storage.is_rdb and not self.shared:
            self._requeue_orphans()  # before any worker of ours starts, RUNNING means orphaned
        from ganzoo.progress import SweepProgress

        counts = {name: o["finished"] for name, o in self.outcome().items()}
        # One bar where this process runs the trials; spawned workers print their own lines.
        bar = self._progress_setting if self.workers == 1 and not self.shared else False
        self.progress = SweepProgress(counts, self.config.n_trials, bar=bar if self._log is None else False,
                                      emit=self._log)
        try:
            if self.workers > 1:
                self._run_workers()
            else:
                self._work()
        finally:
            self.progress.close()
        self.export()

    def outcome(self) -> dict[str, dict[str, Any]]:
        """Per pair: trials finished (complete or pruned; diverged ones are complete with an
        infinite objective), failed (an error inside the run), and the first failure's message."""
        from optuna.trial import TrialState

        out = {}
        for name, study in self._studies.items():
            trials = study.get_trials(deepcopy=False)
            failed = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("status") == "failed"]
            out[name] = {
                "finished": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials),
                "failed": len(failed),
                "error": failed[0].user_attrs.get("error") if failed else None,
            }
        return out

    def export(self) -> Path:
        return export(self.dir, self._studies)

    def _work(self) -> None:
        while True:
            busy_elsewhere = False
            ran = False
            for pair in self.pairs:
                study = self._studies[pair.name]
                size = self._population_size(pair) if self._can_populate(pair) else 1
                trials = []
                while len(trials) < size and (trial := self._claim(study)) is not None:
                    trials.append(trial)
                if len(trials) > 1:
                    self._execute_population(pair, study, trials)
                elif trials:
                    self._execute(pair, study, trials[0])
                if trials:
                    self.export()
                    ran = True
                elif self._running(study):
                    busy_elsewhere = True
            if not ran:
                if busy_elsewhere and self.storage.is_rdb:
                    time.sleep(2)  # another worker may die; its heartbeat lapses and we retry its trial
                    continue
                return

    def _claim(self, study: Any) -> Any:
        import optuna
        from optuna.trial import TrialState

        with self.storage.lock(study.study_name):
            if self.storage.is_rdb:
                optuna.storages.fail_stale_trials(study)
                self._fail_unbeaten(study)
            trials = study.get_trials(deepcopy=False)
            if not any(t.state == TrialState.WAITING for t in trials):
                taken = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING) for t in trials)
                failed = sum(t.state == TrialState.FAIL and t.user_attrs.get("status") == "failed" for t in trials)
                if taken >= self.config.n_trials:
                    return None
                if failed >= self.config.n_trials:
                    self.log(f"{study.study_name}: {failed} trials failed; not starting more (see trials.csv)")
                    return None
            trial = study.ask()
            if self.storage.is_rdb:
                # The first heartbeat before the lock is released: a RUNNING trial without one can
                # then only belong to a worker that died, which _fail_unbeaten relies on.
                study._storage.record_heartbeat(trial._trial_id)
            return trial

    def _fail_unbeaten(self, study: Any) -> None:
        """Fail and queue again the RUNNING trials that never sent a heartbeat. Optuna's stale
        check skips them, so a worker dying between claim and first beat (older ganzoo, or a
        crash inside the claim) would otherwise keep every other worker waiting for ever."""
        import sqlalchemy
        from optuna.storages import RetryHeartbeatStaleTrialCallback
        from optuna.trial import TrialState

        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return
        backend = getattr(study._storage, "_backend", study._storage)  # Optuna wraps RDBStorage in a cache
        with backend.engine.connect() as conn:
            beaten = {row[0] for row in conn.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))}
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
        for t in running:
            if t._trial_id not in beaten and study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                retry(study, study._storage.get_trial(t._trial_id))

    def _running(self, study: Any) -> bool:
        from optuna.trial import TrialState

        return any(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))

    def _requeue_orphans(self) -> None:
        """A journal study has no heartbeats and only this machine's workers: a RUNNING trial
        before they start was left by a process that died, so it is failed and queued again."""
        from optuna.trial import TrialState

        for study in self._studies.values():
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                study.tell(t.number, state=TrialState.FAIL)
                study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})

    def _run_workers(self) -> None:
        import multiprocessing

        import torch

        context = multiprocessing.get_context("spawn")
        gpus = torch.cuda.device_count() if self.config.device in ("auto", "cuda") else 0
        processes = []
        for i in range(self.workers):
            env = {"CUDA_VISIBLE_DEVICES": str(i % gpus)} if gpus > 1 else {}
            # Each worker gets its share of the cores: torch's default (all of them) oversubscribes.
            env["GANZOO_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.workers))
            p = context.Process(
                target=_worker_main,
                args=(self.study, to_dict(self.config), str(self.dir.parent), self.storage.url, env, self.population),
                name=f"ganzoo-worker-{i}",
            )
            p.start()
            processes.append(p)
        try:
            for p in processes:
                p.join()
        except KeyboardInterrupt:
            for p in processes:  # the workers got the same Ctrl-C: let them record their trials
                p.join()
            raise
        bad = [p.exitcode for p in processes if p.exitcode not in (0, None)]
        if bad:
            raise GanzooError(f"{len(bad)} of {self.workers} workers failed (exit codes {bad}); re-run to resume")

    def _steps(self, n_train: int | None) -> int:
        if self.config.epochs is None or n_train is None:
            return self.config.steps
        return max(1, round(self.config.epochs * n_train / self.config.batch_size))

    def _execute(self, pair: Pair, study: Any, trial: Any) -> None:
        import optuna
        from optuna.trial import TrialState

        started = time.time()
        try:
            with _heartbeat(self.storage, trial):  # from the claim to the end of the last seed
                params = {key: suggest(trial, key, dist) for key, dist in self._space(pair).items()}
                seeds = [self._run_seed(pair, trial, params, seed) for seed in range(self.config.seeds)]
        except optuna.TrialPruned:
            trial.set_user_attr("status", "pruned")
            trial.set_user_attr("wall_seconds", time.time() - started)
            study.tell(trial, state=TrialState.PRUNED)
            self._finished(pair, f"trial {trial.number}: pruned")
            return
        except KeyboardInterrupt:
            trial.set_user_attr("status", "interrupted")
            study.tell(trial, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            self.export()
            raise
        except Exception as e:
            error = describe_exception(e)
            trial.set_user_attr("status", "failed")
            trial.set_user_attr("error", error)
            study.tell(trial, state=TrialState.FAIL)
            self._finished(pair, f"trial {trial.number}: failed: {error}")
            return
        self._tell(pair, study, trial, seeds, started)

    def _finished(self, pair: Pair, line: str) -> None:
        if self.progress is not None:
            self.progress.finished(pair.name, line)
        else:
            self.log(f"{pair.name} {line}")

    def _pair_config(self, pair: Pair, **overrides: Any) -> Any:
        """A run config of this pair: the preset's settings, the variant's own, its condition's, then
        ``overrides``."""
        from ganzoo.variants import resolve_config

        condition = self.config.conditions[pair.condition] if pair.condition is not None else {}
        return resolve_config(pair.variant, pair.dataset, arch=self.config.arch, overrides={
            **self.config.settings, **self.config.variant_settings.get(pair.variant, {}), **condition, **overrides})

    def _can_populate(self, pair: Pair) -> bool:
        """Whether this pair's trials can share a population, found by a probe step of two members
        (``population.probe``) before any trial is claimed; decided once per pair, and said once when
        it cannot, so that a network vmap cannot batch trains one trial at a time, never fails."""
        if self.population == 1:
            return False
        if pair.name not in self._populable:
            from ganzoo.population import probe

            config = self._pair_config(pair, device=self.config.device, batch_size=self.config.batch_size)
            problem = probe(config)
            self._populable[pair.name] = problem is None
            if problem is not None:
                self.log(f"{pair.name}: trained one trial at a time (a population cannot train it: {problem})")
        return self._populable[pair.name]

    def _population_size(self, pair: Pair) -> int:
        """Trials per population: as asked, or ``auto``: one on a CPU (a population is slower there:
        the cores are already busy with one run); on CUDA the size that trains the most member-steps
        per second, measured: one trial alone, then populations of 2, 4, 8, ... trials while they fit
        in 80% of the free memory, stopping when doubling gains less than 5%."""
        if self.population != "auto":
            return int(self.population)
        import torch

        from ganzoo.population import timed_members
        from ganzoo.trainer import resolve_device

        device = resolve_device(self.config.device)
        if device.type != "cuda":
            return 1
        if pair.name not in self._sizes:
            fixed, per_member = self._member_bytes(pair, device)
            torch.cuda.empty_cache()
            free, _ = torch.cuda.mem_get_info(device)
            # Evaluation needs room too (G's samples, the extractor): keep a fifth of the memory free.
            seeds = max(self.config.seeds, 1)
            fits = max(1, min(self.config.n_trials, int((0.8 * free - fixed) / max(per_member, 1)) // seeds))
            config = self._pair_config(pair, batch_size=self.config.batch_size, device=str(device))
            rates = {1: timed_members(config, 1)["member_steps_per_second"]}
            best, trials = 1, 2
            while trials <= fits:
                rates[trials] = timed_members(config, trials * seeds)["member_steps_per_second"]
                if rates[trials] < 1.05 * rates[best]:
                    break
                best, trials = trials, trials * 2
            self._sizes[pair.name] = best
            measured = ", ".join(f"{n}: {r:,.0f}" for n, r in rates.items())
            self.log(f"{pair.name}: population of {best} trials (member-steps/s by trials, {measured}; "
                     f"{per_member / 2**20:.0f} MiB a member, {fixed / 2**20:.0f} MiB shared, {fits} fit)")
        return self._sizes[pair.name]

    def _member_bytes(self, pair: Pair, device: Any) -> tuple[int, int]:
        """(shared, per member) peak CUDA bytes, from populations of 2 and 4 after a warm-up run
        (the first run also allocates cuBLAS and cuDNN workspaces, which are not a member's cost)."""
        import tempfile

        import torch

        from ganzoo.population import PopulationTrainer

        peaks = []
        for n in (1, 2, 4):
            config = self._pair_config(pair, steps=3, batch_size=self.config.batch_size, device=str(device),
                                       log_every=1, sample_every=0, checkpoint_every=0)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            with tempfile.TemporaryDirectory() as tmp:
                PopulationTrainer([config] * n, [Path(tmp) / str(i) for i in range(n)]).run()
            peaks.append(torch.cuda.max_memory_allocated(device) - base)
        per_member = max((peaks[2] - peaks[1]) // 2, 1)
        return max(peaks[1] - 2 * per_member, 0), per_member

    def _execute_population(self, pair: Pair, study: Any, trials: list[Any]) -> None:
        """Several trials as one population: each (trial, seed) is a member; trials whose discrete
        settings differ (n_critic, architecture switches) train in separate populations. Each trial
        gets the records ``_execute`` gives a trial run on its own, plus its ``population`` size."""
        import torch
        from optuna.trial import TrialState

        from ganzoo.population import PER_MEMBER, PopulationTrainer

        started = time.time()
        told: set[int] = set()

        def fail(group_trials: list[Any], e: BaseException, run_dirs: Sequence[Path] = ()) -> None:
            # Out of memory says the population was too large, not that the configurations are bad.
            retry = isinstance(e, torch.cuda.OutOfMemoryError)
            error = describe_exception(e)
            for run_dir in run_dirs:  # the members' run directories say so too, never "running"
                if (run_dir / rundir.STATUS).exists():
                    status = rundir.read_json(run_dir / rundir.STATUS)
                    rundir.write_json(run_dir / rundir.STATUS, {**status, "status": "interrupted" if retry
                                                               else "failed", "message": error})
            for trial in group_trials:
                trial.set_user_attr("status", "interrupted" if retry else "failed")
                trial.set_user_attr("error", error)
                study.tell(trial, state=TrialState.FAIL)
                if retry:
                    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
                    self.log(f"{pair.name} trial {trial.number}: out of memory, queued again: {error}")
                else:
                    self._finished(pair, f"trial {trial.number}: failed: {error}")
                told.add(trial.number)

        try:
            with contextlib.ExitStack() as stack:
                for trial in trials:
                    stack.enter_context(_heartbeat(self.storage, trial))
                groups: dict[str, list[Any]] = {}
                for trial in trials:
                    params = {key: suggest(trial, key, dist) for key, dist in self._space(pair).items()}
                    siblings = _Siblings()
                    for seed in range(self.config.seeds):
                        member = (trial, seed, *self._prepare_seed(pair, trial, params, seed, siblings))
                        key = json.dumps({k: v for k, v in member[2].to_dict().items() if k not in PER_MEMBER},
                                         sort_keys=True)
                        groups.setdefault(key, []).append(member)
                for group in groups.values():
                    group_trials = list({id(m[0]): m[0] for m in group}.values())
                    try:
                        population = PopulationTrainer([m[2] for m in group], [m[3] for m in group],
                                                       callbacks=[m[5] for m in group])
                        results = population.run(overwrite=True)
                    except Exception as e:  # this group only: the others' trials stand
                        fail(group_trials, e, [m[3] for m in group])
                        continue
                    records: dict[int, list[dict[str, Any]]] = {}
                    for (trial, seed, _, run_dir, evaluator, _), result in zip(group, results):
                        records.setdefault(trial.number, []).append(
                            self._seed_record(seed, result.status, run_dir, evaluator))
                    for trial in group_trials:
                        self._tell(pair, study, trial, sorted(records[trial.number], key=lambda r: r["seed"]),
                                   started, len(trials))
                        told.add(trial.number)
        except KeyboardInterrupt:
            for trial in trials:
                if trial.number in told:
                    continue
                trial.set_user_attr("status", "interrupted")
                study.tell(trial, state=TrialState.FAIL)
                study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            self.export()
            raise
        except Exception as e:  # before any population ran (suggesting, building configs)
            fail([t for t in trials if t.number not in told], e)

    def _tell(self, pair: Pair, study: Any, trial: Any, records: list[dict[str, Any]], started: float,
              population: int | None = None) -> None:
        """Record a trial from its seeds' results (``population``: how many trials trained with it)."""
        from optuna.trial import TrialState

        if population is not None:
            trial.set_user_attr("population", population)
        if any(r["status"] == "pruned" for r in records):
            trial.set_user_attr("status", "pruned")
            trial.set_user_attr("wall_seconds", time.time() - started)
            study.tell(trial, state=TrialState.PRUNED)
            self._finished(pair, f"trial {trial.number}: pruned")
            return
        from ganzoo.progress import fmt

        summary = summarise(records)
        summary["wall_seconds"] = time.time() - started
        for key, value in summary.items():
            trial.set_user_attr(key, value)
        study.tell(trial, summary["objective"])
        seeds = f"mean of {len(records)} seeds" if len(records) > 1 else "1 seed"
        self._finished(pair, f"trial {trial.number}: {summary['status']}, FID {fmt(summary['fid_mean'])} ({seeds}"
                       + (f", population of {population})" if population is not None else ")"))

    def _prepare_seed(self, pair: Pair, trial: Any, params: Mapping[str, Any], seed: int,
                      siblings: _Siblings | None = None) -> tuple[Any, Path, Any, list[Any]]:
        """One seed of a trial: its config, run directory, evaluator and callbacks."""
        from ganzoo.data import load_dataset
        from ganzoo.metrics import EvalCallback

        n_train = len(load_dataset(pair.dataset, "train", download=False)) if self.config.epochs else None
        steps = self._steps(n_train)
        config = self._pair_config(pair, **{
            **params, "seed": seed, "steps": steps, "batch_size": self.config.batch_size,
            "device": self.config.device, "log_every": max(1, min(100, steps // 10)), "sample_every": 0,
            "checkpoint_every": 0, "callback_every": self.config.eval_every,
            "evaluation": to_dict(self.config.evaluation),
        })
        run_dir = self.dir / "runs" / pair.name / f"trial-{trial.number:04d}" / f"seed-{seed}"
        evaluator = EvalCallback(self.config.evaluation)
        callbacks: list[Any] = [evaluator]
        if seed == 0 and self.config.pruner != "none":
            callbacks.append(_Pruning(trial, evaluator, siblings))  # pruning follows the first seed's curve
        elif siblings is not None:
            callbacks.append(siblings)  # in a population, the other seeds stop when the first is pruned
        return config, run_dir, evaluator, callbacks

    @staticmethod
    def _seed_record(seed: int, status: str, run_dir: Path, evaluator: Any) -> dict[str, Any]:
        last = evaluator.last if status == "completed" else None
        return {"seed": seed, "status": status, "run_dir": str(run_dir), "metrics": last,
                "stability": rundir.read_json(run_dir / rundir.STABILITY), "throughput": rundir.read_json(run_dir / rundir.THROUGHPUT)}

    def _run_seed(self, pair: Pair, trial: Any, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
        from ganzoo.trainer import Trainer

        config, run_dir, evaluator, callbacks = self._prepare_seed(pair, trial, params, seed)
        trainer = Trainer(config, run_dir, callbacks=callbacks, quiet=True)
        result = trainer.run(overwrite=True)
        if result.status == "pruned":
            import optuna

            raise optuna.TrialPruned()
        return self._seed_record(seed, result.status, run_dir, evaluator)


class _Siblings:
    """The seeds of one trial in a population: once the first seed is pruned, the others stop too
    (run alone, a pruned trial's later seeds never start)."""

    def __init__(self) -> None:
        self.pruned_at: int | None = None

    def __call__(self, state: Any) -> None:
        from ganzoo.trainer import StopTraining

        if self.pruned_at is not None:
            raise StopTraining("pruned", f"the trial's first seed was pruned at step {self.pruned_at}")


class _Pruning:
    def __init__(self, trial: Any, evaluator: Any, siblings: _Siblings | None = None) -> None:
        self.trial, self.evaluator, self.siblings = trial, evaluator, siblings

    def __call__(self, state: Any) -> None:
        from ganzoo.trainer import StopTraining

        if state.final or self.evaluator.last is None or self.evaluator.last.get("fid") is None:
            return
        self.trial.report(self.evaluator.last["fid"], state.step)
        if self.trial.should_prune():
            if self.siblings is not None:
                self.siblings.pruned_at = state.step
            raise StopTraining("pruned", f"FID {self.evaluator.last['fid']:.4g} at step {state.step}")


@contextlib.contextmanager
def _heartbeat(storage: Storage, trial: Any) -> Iterator[None]:
    """Heartbeats for the running trial (RDB storages), so a dead worker's trial is noticed.
    Optuna beats only inside study.optimize(); ganzoo drives trials through ask/tell."""
    if not storage.is_rdb:
        yield
        return
    opened = trial.study._storage  # the study's own storage object (Optuna has no public accessor)
    interval = heartbeat_seconds()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            opened.record_heartbeat(trial._trial_id)
            stop.wait(interval)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _worker_main(study: str, config: dict[str, Any], results: str, storage: str, env: dict[str, str],
                 population: int | str = 1) -> None:
    """One of ``--workers N`` processes: the same loop on the same storage."""
    os.environ.update(env)
    import torch

    torch.set_num_threads(int(env["GANZOO_THREADS"]))
    try:
        sweep = Sweep(study, from_dict(SweepConfig, config), results, storage=storage, shared=True,
                      population=population)
        sweep.prepare()
        sweep._work()
    except GanzooError as e:
        print(f"ganzoo sweep worker: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


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


def summarise(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """A trial's record from its seeds' runs; the objective is the mean final FID (inf if any seed
    diverged, so a configuration that diverges is never preferred)."""
    fids = [s["metrics"]["fid"] if s["metrics"] else None for s in seeds]
    diverged = sum(s["status"] == "diverged" for s in seeds)
    finite = [f for f in fids if f is not None]
    objective = math.inf if diverged or len(finite) < len(seeds) else statistics.fmean(finite)
    first = next((s["metrics"] for s in seeds if s["metrics"]), {}) or {}
    best = [s["stability"].get("best_fid") for s in seeds if s["stability"].get("best_fid") is not None]

    def mean_of(section: str, key: str) -> float | None:
        values = [s[section].get(key) for s in seeds if s[section].get(key) is not None]
        return statistics.fmean(values) if values else None

    def metric_mean(key: str) -> float | None:
        values = [s["metrics"].get(key) for s in seeds if s["metrics"] and s["metrics"].get(key) is not None]
        return statistics.fmean(values) if values else None

    return {
        "status": "diverged" if diverged else "complete",
        "objective": objective,
        "seeds": [s["seed"] for s in seeds],
        "fid_per_seed": json.dumps(fids),
        "fid_mean": statistics.fmean(finite) if finite else None,
        "fid_std": statistics.stdev(finite) if len(finite) > 1 else None,
        "best_fid": min(best) if best else None,
        "diverged_seeds": diverged,
        "extractor": first.get("extractor"),
        "n_samples": first.get("n_samples"),
        "reference": first.get("reference"),
        "extractor_precision": first.get("extractor_precision"),
        "g_ema_decay": first.get("g_ema_decay"),  # the generator evaluated: G (0) or its moving average
        "extraction_images_per_second": metric_mean("extraction_images_per_second"),
        "precision": metric_mean("precision"),  # precision and recall (Kynkaanniemi et al. 2019), density and
        "recall": metric_mean("recall"),  # coverage (Naeem et al. 2020): means over seeds, with metrics prc
        "density": metric_mean("density"),
        "coverage": metric_mean("coverage"),
        "modes_covered": metric_mean("modes_covered"),
        "high_quality_share": metric_mean("high_quality_share"),
        "classes_covered": metric_mean("classes_covered"),
        "class_kl": metric_mean("class_kl"),
        "d_saturated_share": mean_of("stability", "d_saturated_share"),
        "train_images_per_second": mean_of("throughput", "train_images_per_second"),
        "ms_per_step": mean_of("throughput", "ms_per_step"),
        "peak_memory_bytes": mean_of("throughput", "peak_memory_bytes"),
        "peak_memory_kind": seeds[0]["throughput"].get("peak_memory_kind"),  # CUDA's allocator, or process RSS
        "device": seeds[0]["throughput"].get("device"),
        "torch": seeds[0]["throughput"].get("torch"),
        "dtype": seeds[0]["throughput"].get("dtype"),
        "run_dirs": json.dumps([s["run_dir"] for s in seeds]),
    }


# ---- export ------------------------------------------------------------------------------


def trials_frame(studies: Mapping[str, Any]) -> Any:
    import pandas as pd

    frames = []
    for name, study in studies.items():
        frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
        if frame.empty:
            continue
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

