"""A sweep: one Optuna study per (variant, dataset) pair in ``results/<study>/``, and the loop that
claims their trials until each has its finished trials, in one process or several.

Exactness across workers and machines: a worker takes its next trial under a lock (a file lock
on one machine, a PostgreSQL advisory lock across machines). Under it, a WAITING trial (a retry)
is popped with ``study.ask()``; otherwise a new trial is created only while fewer than
``n_trials`` trials are complete, pruned or running. A trial whose worker died is failed and
queued again (``ganzoo.sweep.liveness``), so every study still ends with exactly ``n_trials``
finished trials. Ctrl-C records the running trial as interrupted and queues it again; re-running
the same command resumes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganzoo.core import rundir
from ganzoo.core.config import from_dict, to_dict
from ganzoo.core.errors import GanzooError
from ganzoo.protocols.published import published_lines
from ganzoo.protocols.tables import counted
from ganzoo.sweep.config import (
    Pair,
    SweepConfig,
    mismatch_message,
    record_difference,
    settings_difference,
)
from ganzoo.sweep.files import (
    ATTR,
    BEST_TRIAL,
    DEFAULT_TRIAL,
    OBJECTIVE,
    PAIR_ATTR,
    PHASE,
    REPEAT,
    REPEAT_SUFFIX,
    SEEDS,
    SETTINGS,
    SWEEP_FILE,
    export,
)
from ganzoo.sweep.liveness import fail_dead_trials, first_heartbeat, requeue_orphans
from ganzoo.sweep.sizing import PopulationSizer
from ganzoo.sweep.spaces import grid_values
from ganzoo.sweep.storage import redact, resolve_storage
from ganzoo.sweep.trials import TrialRunner


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
        ``population``: trials trained at once as one population (``auto``: measured on CUDA).
        ``command``: the command line that started it, for messages that say what to run instead.
        ``progress``: a progress bar (default: when stderr is a terminal, in the main process)."""
        if not study or "/" in study or study.startswith("."):
            raise GanzooError(f"study name must be a plain folder name, got {study!r}")
        from ganzoo.core.plugins import load_plugin

        for spec in config.plugins:  # a spawned worker's, or a config built in Python
            load_plugin(spec)
        config.validate()
        self.study, self.config, self.workers = study, config, workers
        self.shared = shared
        self.population = population
        self.sizer = PopulationSizer(config, population, self.log)
        self.dir = Path(results) / study
        self.begun: set[str] = set()  # the pairs sweep.json says were begun (prepare): their storage must hold them
        self.storage = resolve_storage(self.dir, storage, workers)
        self.n_train: dict[str, int] = {}  # dataset -> training images (an epoch, unless epoch_size says)
        self.trials = TrialRunner(config, self.dir, self.storage.kind.heartbeats, self.n_train, self._finished,
                                  self.log, self.export, sizer=self.sizer)
        self._log = log
        self.command, self._progress_setting = command, progress
        self.progress: Any = None
        self.studies: dict[str, Any] = {}
        self.repeats: dict[str, Any] = {}  # pair name -> its repeat study, once its search has finished
        self.pairs, self.skipped = self._pairs()

    # -- setup

    def _pairs(self) -> tuple[list[Pair], list[str]]:
        from ganzoo.data import load_dataset
        from ganzoo.evaluate.features import resolve_extractor
        from ganzoo.zoo.variants import build_architecture

        pairs, skipped = [], []
        for dataset in self.config.datasets + self.config.optional_datasets:
            try:
                data = load_dataset(dataset, "train", download=False)
                split = self.config.evaluation.split  # every trial is scored against it: checked once, now
                try:
                    reference = load_dataset(dataset, split, download=False)
                except GanzooError as e:
                    raise GanzooError(f"{dataset}: trials are scored against its {split} split, which cannot be "
                                      f"loaded: {e}") from None
            except GanzooError as e:
                if dataset in self.config.optional_datasets:
                    skipped.append(f"{dataset}: not available here ({e})")
                    continue
                raise
            try:  # the evaluation's extractor must apply to it: refused now, not by every trial after training
                resolve_extractor(self.config.evaluation.features, dataset, reference)
            except GanzooError as e:
                raise GanzooError(f"evaluation.features: {e}") from None
            self.n_train[dataset] = len(data)
            for variant in self.config.variants:
                for condition in self.config.conditions or [None]:
                    pair = Pair(variant, dataset, condition)
                    try:
                        config = self.config.run_config(pair)
                    except GanzooError as e:
                        where = f"conditions.{condition}" if condition else f"variant {variant}"
                        raise GanzooError(f"{pair.name}: {where}: {e}") from None
                    problem = build_architecture(config).check(sample_shape=data.sample_shape)
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
        (settings added to ganzoo since it began count as what they were: see settings_difference) or,
        per pair, another protocol (its search space and run settings, as this version resolves them)."""
        mine = self.settings()
        path = self.dir / SWEEP_FILE
        if path.exists():
            written = rundir.read_json(path)
            self._check_settings(written.get("settings"), str(self.dir))
            self.begun = set(written.get("pairs", []))
        records = {p.name: self.pair_record(p) for p in self.pairs}
        studies = {p.name: self._open_study(p, records[p.name]) for p in self.pairs}  # checks the storage too
        rundir.write_json(path, {"study": self.study, "settings": mine, "storage": redact(self.storage.url),
                                 "pairs": [p.name for p in self.pairs], "skipped": self.skipped,
                                 "protocol": records})
        self.studies = studies
        self.repeats = {p.name: s for p in self.pairs if (s := self._load_repeat(p)) is not None}

    def pair_record(self, pair: Pair) -> dict[str, Any]:
        """What a pair's trials are drawn from and trained with, as this version resolves it: its search
        space (defaults included), the run settings before a trial's own, and its budget. Stored with the
        study, so that a resumed study whose protocol this version would change is refused, not mixed."""
        from ganzoo.protocols.ranges import space_record

        n_train = self.n_train[pair.dataset]
        run = self.config.run_config(pair).to_dict()
        run.pop("plugins")  # where the code lives, not what runs
        run.pop("length_unit")  # how its length is stated: the budget below says it
        return json.loads(json.dumps({
            "space": space_record(self.config.search_space(pair)),
            "run": run,
            "budget": {"unit": self.config.budget, "updates": self.config.updates(n_train), "n_train": n_train},
        }))

    def describe(self) -> str:
        """The resolved protocol, as ``--dry-run`` prints it: settings in brief, each pair's ranges, and the
        published protocol's table where the preset follows one. Opens no storage, trains nothing."""
        from ganzoo import protocols
        context = protocols.Context(self.settings(), {p.name: self.pair_record(p) for p in self.pairs})
        lines = [f"study {self.study}: {', '.join(p.name for p in self.pairs)} (in {self.dir})",
                 *protocols.summary(context)]
        found = protocols.reference_table(context)
        if found is not None:
            lines += ["", protocols.text(*found)]
            reference = found[0]
            if published := published_lines(reference.published, reference.published_note):
                lines += ["", *published]
        return "\n".join(lines)

    def _open_study(self, pair: Pair, record: dict[str, Any]) -> Any:
        import optuna

        storage = self.storage.open()
        name = f"{self.study}/{pair.name}"
        if pair.name in self.begun and name not in {s.study_name for s in storage.get_all_studies()}:
            # An empty, truncated or other store: a new study here would retrain trial 0 over its run folders.
            raise GanzooError(
                f"study {name!r} was begun in {self.dir} ({SWEEP_FILE} names it), but {redact(self.storage.url)} "
                f"holds no such study: the storage is empty, truncated or another one. Point --storage at the study's "
                f"own, or start over: rm -r {self.dir} (move its run folders aside first to keep them)")
        study = optuna.create_study(
            study_name=name, storage=storage, direction="minimize", load_if_exists=True,
            sampler=self._sampler(pair), pruner=self._pruner(pair),
        )
        theirs = study.user_attrs.get(ATTR)
        if theirs is None:
            study.set_metric_names([OBJECTIVE])  # how optuna-dashboard labels the trials' values
            study.set_user_attr("variant", pair.variant)
            study.set_user_attr("dataset", pair.dataset)
            if pair.condition is not None:
                study.set_user_attr("condition", pair.condition)
            study.set_user_attr(PAIR_ATTR, record)
        else:
            self._check_settings(theirs, redact(self.storage.url))
            self._check_protocol(study, record)
        if theirs != self.settings():  # new, or migrated: settings added since count as what they were
            study.set_user_attr(ATTR, self.settings())
        if self.config.default_trial and self.config.sampler != "grid":
            with self.storage.lock(name):  # one default trial, however many workers open the study at once
                if not study.get_trials(deepcopy=False):
                    params, settings = self.default_point(pair)
                    study.enqueue_trial(params, user_attrs={DEFAULT_TRIAL: True, SETTINGS: json.dumps(settings)})
        return study

    def _check_protocol(self, study: Any, record: dict[str, Any]) -> None:
        stored = study.user_attrs.get(PAIR_ATTR)
        where = f"study {study.study_name!r} in {redact(self.storage.url)}"
        if stored is None:
            raise GanzooError(
                f"{where} was begun by a ganzoo older than 0.2, which did not record the search space and run "
                "settings its trials used; this version's protocol differs (Lucic et al.'s ranges and default "
                "trial, the budget, the losses' and penalties' settings), so its trials cannot be mixed with "
                f"new ones. Report it as it is (ganzoo report {self.dir}), or start a new study (--study NAME) "
                f"or remove {self.dir}")
        diff = record_difference(stored, record)
        if diff:
            changes = "; ".join(f"{key} {json.dumps(old)} there, {json.dumps(new)} now" for key, old, new in diff[:8])
            more = f" (and {len(diff) - 8} more)" if len(diff) > 8 else ""
            raise GanzooError(f"{where} was drawn and trained under another protocol: {changes}{more}. Its trials "
                              "cannot be mixed with new ones: start a new study (--study NAME) or remove "
                              f"{self.dir}")

    def default_point(self, pair: Pair) -> tuple[dict[str, Any], dict[str, Any]]:
        """The first trial: each dimension's default, else the variant's own setting (a searched choice
        whose setting is not among its values is drawn). Returns the searched dimensions' values (Optuna's
        params) and the fixed ones' (the trial's settings)."""
        from ganzoo.protocols.ranges import Choice, fixed_value
        from ganzoo.zoo.variants import setting_value

        base = self.config.run_config(pair)
        params, settings = {}, {}
        for key, dim in self.config.search_space(pair).items():
            is_fixed, value = fixed_value(dim)
            default = dim.default if dim.default is not None else (value if is_fixed else setting_value(base, key))
            if is_fixed:
                settings[key] = default
            elif not isinstance(dim, Choice) or default in dim.values:
                params[key] = default
        return params, settings

    def _sampler(self, pair: Pair) -> Any:
        from ganzoo.sweep.samplers import make_sampler

        # Each draw is seeded by (sampler_seed, trial number, parameter): a resumed process, or another
        # worker, continues the study's sequence instead of restarting it (ganzoo.sweep.samplers).
        grid = grid_values(self.config.search_space(pair)) if self.config.sampler == "grid" else None
        return make_sampler(self.config.sampler, self.config.sampler_seed, grid)

    def _pruner(self, pair: Pair) -> Any:
        import optuna

        # Trials report at the budget spent, in the budget's unit (trials.Pruning).
        if self.config.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        if self.config.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=self.config.eval_every,
                                                  max_resource=self.config.updates(self.n_train[pair.dataset]))
        return optuna.pruners.NopPruner()

    # -- running

    def run(self) -> None:
        """Run this process's share: trials until every study has its finished trials."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.prepare()
        for study in [*self.studies.values(), *self.repeats.values()]:
            if not self.storage.kind.heartbeats and not self.shared:
                requeue_orphans(study)  # before any worker of ours starts, RUNNING means orphaned
            self.trials.lost(study)  # run directories here of trials whose worker died, found by any worker
        from ganzoo.core.progress import SweepProgress

        counts = {name: o["finished"] + o["repeated"] for name, o in self.outcome().items()}
        total = self.config.n_trials + self.config.repeat_seeds
        if not self.shared and all(n >= total for n in counts.values()):
            self.log(f"study {self.study}: every pair has its {self.config.n_trials} trials"
                     + (f" and {self.config.repeat_seeds} repeat runs" if self.config.repeat_seeds else "")
                     + "; nothing to train (its trials.csv and report are written again). A new study: --study NAME")
        # One bar where this process runs the trials; spawned workers print their own lines.
        bar = self._progress_setting if self.workers == 1 and not self.shared else False
        self.progress = SweepProgress(counts, self.config.n_trials + self.config.repeat_seeds,
                                      bar=bar if self._log is None else False, emit=self._log)
        try:
            if self.workers > 1:
                self._run_workers()
            else:
                self.work()
        finally:
            self.progress.close()
        self.export()

    def outcome(self) -> dict[str, dict[str, Any]]:
        """Per pair: search trials finished (complete or pruned; diverged ones are complete with an
        infinite objective), repeat runs finished, failed trials (an error inside the run) of either,
        and the first failure's message."""
        from optuna.trial import TrialState

        out = {}
        for name, study in self.studies.items():
            repeat = self.repeats.get(name)
            trials = [*study.get_trials(deepcopy=False), *(repeat.get_trials(deepcopy=False) if repeat else [])]
            failed = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("status") == "failed"]
            out[name] = {
                "finished": _finished_count(study),
                "repeated": _finished_count(repeat) if repeat is not None else 0,
                "failed": len(failed),
                "error": failed[0].user_attrs.get("error") if failed else None,
            }
        return out

    def export(self) -> Path:
        return export(self.dir, {**self.studies, **{name + REPEAT_SUFFIX: s for name, s in self.repeats.items()}})

    def work(self) -> None:
        """Claim and train trials (several at once where populations can) until none is left to claim:
        each pair's search, then, once it has finished, its repeat runs."""
        while True:
            busy_elsewhere = False
            ran = False
            for pair in self.pairs:
                study, limit = self.studies[pair.name], self.config.n_trials
                if self.config.repeat_seeds and not self._running(study):
                    repeat = self._repeat(pair)
                    if repeat is not None:
                        study, limit = repeat, self.config.repeat_seeds
                size = self.sizer.trials_at_once(pair)
                trials = []
                while len(trials) < size and (trial := self._claim(study, limit)) is not None:
                    trials.append(trial)
                if trials:
                    self.trials.run(pair, study, trials)
                    self.export()
                    ran = True
                elif self._running(study):
                    busy_elsewhere = True
            if not ran:
                if busy_elsewhere and self.storage.kind.heartbeats:
                    time.sleep(2)  # another worker may die; its heartbeat lapses and we retry its trial
                    continue
                return

    def _claim(self, study: Any, limit: int) -> Any:
        from optuna.trial import TrialState

        with self.storage.lock(study.study_name):
            if self.storage.kind.heartbeats:
                self.trials.lost(study, fail_dead_trials(study))
            trials = study.get_trials(deepcopy=False)
            if not any(t.state == TrialState.WAITING for t in trials):
                taken = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING) for t in trials)
                failed = sum(t.state == TrialState.FAIL and t.user_attrs.get("status") == "failed" for t in trials)
                if taken >= limit:
                    return None
                if failed >= limit:
                    self.log(f"{study.study_name}: {failed} trials failed; not starting more (see trials.csv)")
                    return None
                if study.user_attrs.get(PHASE) == REPEAT:
                    return None  # a repeat runs its enqueued seeds only (a failed one is not drawn anew)
            trial = study.ask()
            if self.storage.kind.heartbeats:
                first_heartbeat(study, trial)  # before the lock is released
            return trial

    def _repeat_name(self, pair: Pair) -> str:
        return f"{self.study}/{pair.name}{REPEAT_SUFFIX}"

    def _load_repeat(self, pair: Pair) -> Any:
        """The pair's repeat study where one was begun (by this process or another), else None."""
        import optuna

        try:
            return optuna.load_study(study_name=self._repeat_name(pair), storage=self.storage.open())
        except KeyError:
            return None

    def _repeat(self, pair: Pair) -> Any:
        """The pair's repeat study once its search has finished: the best configuration (lowest objective,
        complete and finite) on ``repeat_seeds`` new seeds, seeds..seeds+N-1 (Lucic et al.'s phase 3,
        compare_gan's Phase3Auto). Created with its runs enqueued by the first worker that finds the
        search done; None before then, or when no search trial has a finite FID."""
        import math

        import optuna
        from optuna.trial import TrialState

        if pair.name in self.repeats:
            return self.repeats[pair.name]
        search = self.studies[pair.name]
        if _finished_count(search) < self.config.n_trials:
            return None
        trials = search.get_trials(deepcopy=False)
        scored = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]
        if not scored:
            return None
        best = min(scored, key=lambda t: (t.value, t.number))
        name = self._repeat_name(pair)
        with self.storage.lock(name):
            study = optuna.create_study(study_name=name, storage=self.storage.open(), direction="minimize",
                                        load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=0))
            if study.user_attrs.get(PHASE) != REPEAT:
                study.set_metric_names([OBJECTIVE])
                for key, value in (("variant", pair.variant), ("dataset", pair.dataset), ("condition", pair.condition),
                                   (PHASE, REPEAT), (BEST_TRIAL, best.number), (ATTR, self.settings())):
                    if value is not None:
                        study.set_user_attr(key, value)
                for i in range(self.config.repeat_seeds):
                    study.enqueue_trial(best.params, user_attrs={
                        PHASE: REPEAT, SEEDS: [self.config.seeds + i], SETTINGS: best.user_attrs.get(SETTINGS, "{}"),
                        BEST_TRIAL: best.number})
        self.log(f"{pair.name}: search done; its best, trial {best.number} (FID {best.value:.4g}), runs again on "
                 f"{counted(self.config.repeat_seeds, 'new seed')}")
        self.repeats[pair.name] = study
        return study

    def _running(self, study: Any) -> bool:
        from optuna.trial import TrialState

        return any(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))

    def _finished(self, pair: Pair, line: str) -> None:
        if self.progress is not None:
            self.progress.finished(pair.name, line)
        else:
            self.log(f"{pair.name} {line}")

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
        codes = [p.exitcode for p in processes]
        if 130 in codes or -2 in codes:  # SIGINT: the same Ctrl-C as ours, caught in another place
            raise KeyboardInterrupt
        bad = [c for c in codes if c not in (0, None)]
        if bad:
            raise GanzooError(f"{len(bad)} of {self.workers} workers stopped with an error (exit codes {bad}); "
                              "each printed its error above as 'ganzoo sweep worker: ...'")


def _finished_count(study: Any) -> int:
    """Trials of ``study`` with an outcome: complete (diverged ones too, at an infinite objective) or pruned."""
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))


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
        sweep.work()
    except GanzooError as e:
        print(f"ganzoo sweep worker: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a plugin's code, or a bug: one line, as the main process reports it
        from ganzoo.core.plugins import describe_exception

        print(f"ganzoo sweep worker: failed: {describe_exception(e)}", file=sys.stderr)
        sys.exit(3)
