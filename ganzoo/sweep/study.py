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

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganzoo import rundir
from ganzoo.config import from_dict, to_dict
from ganzoo.errors import GanzooError
from ganzoo.sweep.config import Pair, SweepConfig, mismatch_message, settings_difference
from ganzoo.sweep.files import ATTR, OBJECTIVE, SWEEP_FILE, export
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
        config.validate()
        self.study, self.config, self.workers = study, config, workers
        self.shared = shared
        self.population = population
        self.sizer = PopulationSizer(config, population, self.log)
        self.dir = Path(results) / study
        self.storage = resolve_storage(self.dir, storage, workers)
        self.trials = TrialRunner(config, self.dir, self.storage.kind.heartbeats, self._finished, self.log, self.export)
        self._log = log
        self.command, self._progress_setting = command, progress
        self.progress: Any = None
        self.studies: dict[str, Any] = {}
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
                        config = self.config.run_config(pair)
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
        self.studies = studies

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
            study.set_metric_names([OBJECTIVE])  # how optuna-dashboard labels the trials' values
            study.set_user_attr("variant", pair.variant)
            study.set_user_attr("dataset", pair.dataset)
            if pair.condition is not None:
                study.set_user_attr("condition", pair.condition)
        else:
            self._check_settings(theirs, redact(self.storage.url))
        if theirs != self.settings():  # new, or migrated: settings added since count as their defaults
            study.set_user_attr(ATTR, self.settings())
        return study

    def _sampler(self, pair: Pair) -> Any:
        import optuna

        # Workers seeded alike would propose the same configurations; only a lone local worker
        # can replay the sequence that sampler_seed names.
        alone = not (self.shared or self.storage.kind.machines)
        seed = self.config.sampler_seed if alone else None
        if self.config.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.config.sampler == "grid":
            return optuna.samplers.GridSampler(grid_values(self.config.search_space(pair)), seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def _pruner(self) -> Any:
        import optuna

        if self.config.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        if self.config.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=self.config.eval_every,
                                                  max_resource=self.config.run_steps(None))
        return optuna.pruners.NopPruner()

    # -- running

    def run(self) -> None:
        """Run this process's share: trials until every study has its finished trials."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.prepare()
        if not self.storage.kind.heartbeats and not self.shared:
            for study in self.studies.values():  # before any worker of ours starts, RUNNING means orphaned
                requeue_orphans(study)
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
                self.work()
        finally:
            self.progress.close()
        self.export()

    def outcome(self) -> dict[str, dict[str, Any]]:
        """Per pair: trials finished (complete or pruned; diverged ones are complete with an
        infinite objective), failed (an error inside the run), and the first failure's message."""
        from optuna.trial import TrialState

        out = {}
        for name, study in self.studies.items():
            trials = study.get_trials(deepcopy=False)
            failed = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("status") == "failed"]
            out[name] = {
                "finished": sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials),
                "failed": len(failed),
                "error": failed[0].user_attrs.get("error") if failed else None,
            }
        return out

    def export(self) -> Path:
        return export(self.dir, self.studies)

    def work(self) -> None:
        """Claim and train trials (several at once where populations can) until none is left to claim."""
        while True:
            busy_elsewhere = False
            ran = False
            for pair in self.pairs:
                study = self.studies[pair.name]
                size = self.sizer.trials_at_once(pair)
                trials = []
                while len(trials) < size and (trial := self._claim(study)) is not None:
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

    def _claim(self, study: Any) -> Any:
        from optuna.trial import TrialState

        with self.storage.lock(study.study_name):
            if self.storage.kind.heartbeats:
                fail_dead_trials(study)
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
            if self.storage.kind.heartbeats:
                first_heartbeat(study, trial)  # before the lock is released
            return trial

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
        bad = [p.exitcode for p in processes if p.exitcode not in (0, None)]
        if bad:
            raise GanzooError(f"{len(bad)} of {self.workers} workers failed (exit codes {bad}); re-run to resume")


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
