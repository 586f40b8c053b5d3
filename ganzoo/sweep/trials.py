"""The one path a claimed trial takes, alone or with others as a population: its parameters drawn,
each seed made a ``Member`` (config, run directory, evaluator, callbacks), the members trained (a
member alone by the single-run trainer, members together by the population trainer), and the trial
recorded in its study from its seeds' results.

A trial alone trains its seeds one after another and stops at the first pruned one; trials claimed
together train as populations, grouped by the settings that cannot differ within one (n_critic, an
architecture switch), and a seed pruned there stops its siblings. An exception fails the trials of
the group it came from (in a population, out of memory queues them again, after the sizer has made
the pair's populations smaller: the population was too large, not the configuration bad); Ctrl-C queues
again every trial not yet recorded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ganzoo.core import rundir
from ganzoo.core.config import to_dict
from ganzoo.core.plugins import describe_exception
from ganzoo.protocols.budget import units_per_step
from ganzoo.sweep.config import Pair, SweepConfig
from ganzoo.sweep.files import (
    BEST_TRIAL,
    LOST,
    LOST_MESSAGE,
    PHASE,
    REPEAT,
    REPEAT_SUFFIX,
    SEEDS,
    SETTINGS,
    TENSORBOARD,
)
from ganzoo.sweep.liveness import heartbeat, requeue
from ganzoo.sweep.sizing import PopulationSizer, release_cuda_memory
from ganzoo.sweep.spaces import suggest


class Siblings:
    """The seeds of one trial in a population: once the first seed is pruned, the others stop too
    (run alone, a pruned trial's later seeds never start)."""

    def __init__(self) -> None:
        self.pruned_at: int | None = None

    def __call__(self, state: Any) -> None:
        from ganzoo.training.engine import StopTraining

        if self.pruned_at is not None:
            raise StopTraining("pruned", f"the trial's first seed was pruned at step {self.pruned_at}")


class Pruning:
    """Reports the first seed's FID at each evaluation to Optuna, at the budget spent (``units`` of the
    budget's unit a step: trials with other n_critic are compared at equal compute), and stops the run
    when it prunes."""

    def __init__(self, trial: Any, evaluator: Any, siblings: Siblings, units: int = 1) -> None:
        self.trial, self.evaluator, self.siblings, self.units = trial, evaluator, siblings, units

    def __call__(self, state: Any) -> None:
        from ganzoo.training.engine import StopTraining

        if state.final or self.evaluator.last is None or self.evaluator.last.get("fid") is None:
            return
        self.trial.report(self.evaluator.last["fid"], state.step * self.units)
        if self.trial.should_prune():
            self.siblings.pruned_at = state.step
            raise StopTraining("pruned", f"FID {self.evaluator.last['fid']:.4g} at step {state.step}")


@dataclasses.dataclass
class Member:
    """One seed of one claimed trial, ready to train."""

    trial: Any
    seed: int
    config: Any  # its TrainConfig
    run_dir: Path
    evaluator: Any  # its EvalCallback, whose last result is the seed's
    callbacks: list[Any]
    siblings: Siblings  # shared by the trial's seeds


class TrialRunner:
    """Runs claimed trials of a sweep and records each in its study. ``n_train``: training images per
    dataset, as the sweep loaded them (a run's length depends on it); ``finished(pair, line)`` and
    ``log(line)`` report; ``export()`` rewrites trials.csv (after Ctrl-C, before it propagates);
    ``sizer``: the sweep's population sizer, told when a population runs out of memory (without one, a
    population that runs out of memory fails: queued again at the same size, it would run out again)."""

    def __init__(self, config: SweepConfig, study_dir: Path, heartbeats: bool, n_train: Mapping[str, int],
                 finished: Callable[[Pair, str], None], log: Callable[[str], None], export: Callable[[], Any],
                 sizer: PopulationSizer | None = None) -> None:
        self.config, self.dir, self.heartbeats, self.n_train = config, study_dir, heartbeats, n_train
        self.finished, self.log, self.export, self.sizer = finished, log, export, sizer

    def run(self, pair: Pair, study: Any, trials: Sequence[Any]) -> None:
        """Train ``trials`` (claimed, RUNNING) of ``pair``'s study, one alone or several as populations,
        and tell the study each one's outcome."""
        import torch
        from optuna.trial import TrialState

        together = len(trials) > 1
        started = time.time()
        told: set[int] = set()

        def fail(failed: Sequence[Any], e: BaseException, run_dirs: Sequence[Path] = ()) -> None:
            # Out of memory in a population (``run_dirs``: its members) says it was too large, not that
            # the configurations are bad: the sizer halves the pair's populations before the trials are
            # queued again. A run alone that runs out of memory would only run out again, and fails.
            population = len(run_dirs) > 1
            sizer = self.sizer if population and isinstance(e, torch.cuda.OutOfMemoryError) else None
            if sizer is not None:
                sizer.out_of_memory(pair, len(failed))
            retry = sizer is not None
            error = describe_exception(e)
            for run_dir in run_dirs:  # the members' run directories say so too, never "running"
                if (run_dir / rundir.STATUS).exists():
                    status = rundir.read_json(run_dir / rundir.STATUS)
                    rundir.write_json(run_dir / rundir.STATUS, {**status, "status": "interrupted" if retry
                                                               else "failed", "message": error})
            for trial in failed:
                trial.set_user_attr("status", "interrupted" if retry else "failed")
                trial.set_user_attr("error", error)
                study.tell(trial, state=TrialState.FAIL)
                if retry:
                    requeue(study, trial)
                    self.log(f"{pair.name} trial {trial.number}: out of memory, queued again: {error}")
                else:
                    self.finished(pair, f"trial {trial.number}: failed: {error}")
                told.add(trial.number)

        try:
            with contextlib.ExitStack() as stack:
                for trial in trials:  # from the claim to the end of the last seed
                    stack.enter_context(heartbeat(trial, self.heartbeats))
                members = [m for trial in trials for m in self._members(pair, trial)]
                records: dict[int, list[dict[str, Any]]] = {t.number: [] for t in trials}
                for group in self._groups(members, together):
                    group = [m for m in group if m.trial.number not in told and m.siblings.pruned_at is None]
                    if not group:
                        continue
                    try:
                        results = self._train(group)
                    except Exception as e:  # this group's trials only: the others stand
                        fail(list({m.trial.number: m.trial for m in group}.values()), e, [m.run_dir for m in group])
                        results = None
                    if results is None:  # out of the except block, whose traceback held the run's tensors
                        release_cuda_memory()
                        continue
                    for member, result in zip(group, results):
                        records[member.trial.number].append(seed_record(member, result.status))
                        if result.status == "pruned":
                            member.siblings.pruned_at = result.step
                for trial in trials:
                    if trial.number not in told:
                        self._tell(pair, study, trial, sorted(records[trial.number], key=lambda r: r["seed"]),
                                   started, len(trials) if together else None)
                        told.add(trial.number)
        except KeyboardInterrupt:
            for trial in trials:
                if trial.number not in told:
                    trial.set_user_attr("status", "interrupted")
                    study.tell(trial, state=TrialState.FAIL)
                    requeue(study, trial)
            self.export()
            raise
        except Exception as e:  # before any member trained: drawing parameters, building configs
            fail([t for t in trials if t.number not in told], e)

    def lost(self, study: Any, trials: Sequence[Any] | None = None) -> None:
        """Trials whose worker stopped while they ran (default: every failed trial of ``study`` that recorded
        no outcome): their run directories in this study folder say so, not "running" for ever."""
        from optuna.trial import TrialState

        if trials is None:
            trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                      if t.user_attrs.get("status") in (None, LOST)]
        pair = study.study_name.partition("/")[2].removesuffix(REPEAT_SUFFIX)
        for trial in trials:
            folder = self.dir / "runs" / pair / _trial_folder(trial)
            for status_file in sorted(folder.glob(f"seed-*/{rundir.STATUS}")):
                status = rundir.read_json(status_file)
                if status.get("status") == "running":
                    rundir.write_json(status_file, {**status, "status": "interrupted", "message": LOST_MESSAGE})
                    self.log(f"{pair} trial {trial.number}, {status_file.parent.name}: {LOST_MESSAGE}")

    def _members(self, pair: Pair, trial: Any) -> list[Member]:
        """The trial's seeds: its settings drawn, each seed's config, run directory and callbacks."""
        from ganzoo.evaluate.metrics import EvalCallback

        settings = trial_settings(trial, self.config.search_space(pair))
        n_critic = self.config.run_config(pair, **settings).n_critic
        steps, every = self.config.run_length(n_critic, self.n_train[pair.dataset])
        units = units_per_step(self.config.budget, n_critic)
        trial.set_user_attr("budget", self.config.budget)
        trial.set_user_attr("d_updates", steps * n_critic)
        trial.set_user_attr("g_updates", steps)
        repeat = trial.user_attrs.get(PHASE) == REPEAT
        seeds = list(trial.user_attrs.get(SEEDS) or range(self.config.seeds))
        siblings = Siblings()
        members = []
        for seed in seeds:
            config = self.config.run_config(pair, **{
                **settings, "seed": seed, "steps": steps, "length_unit": self.config.budget,
                "batch_size": self.config.batch_size,
                "device": self.config.device, "log_every": max(1, min(100, steps // 10)), "sample_every": 0,
                "checkpoint_every": 0, "callback_every": every, "evaluation": to_dict(self.config.evaluation),
            })
            evaluator = EvalCallback(self.config.evaluation)
            # Pruning follows the first seed's curve; the others stop with it. A repeat is never pruned.
            pruned = seed == seeds[0] and self.config.pruner != "none" and not repeat
            watch = Pruning(trial, evaluator, siblings, units) if pruned else siblings
            run = Path(pair.name) / _trial_folder(trial) / f"seed-{seed}"
            run_dir = self.dir / "runs" / run
            if self.config.tensorboard:  # one log directory for the study, a folder per run in it
                config = dataclasses.replace(config, tensorboard=str(self.dir / TENSORBOARD / run))
            members.append(Member(trial, seed, config, run_dir, evaluator, [evaluator, watch], siblings))
        return members

    @staticmethod
    def _groups(members: list[Member], together: bool) -> list[list[Member]]:
        """Members alone, one after another (a trial's seeds in order); or, for trials claimed together,
        one population per set of settings that must be equal within one (``population.shared_settings``)."""
        if not together:
            return [[m] for m in members]
        from ganzoo.training.population import shared_settings

        groups: dict[str, list[Member]] = {}
        for m in members:
            key = json.dumps(shared_settings(m.config), sort_keys=True)
            groups.setdefault(key, []).append(m)
        return list(groups.values())

    @staticmethod
    def _train(group: list[Member]) -> list[Any]:
        """Train a group: one member with the single-run trainer (its fast paths: torch's fused Adam,
        compile, bf16), several as one population."""
        if len(group) == 1:
            from ganzoo.training.trainer import Trainer

            (m,) = group
            return [Trainer(m.config, m.run_dir, callbacks=m.callbacks, quiet=True).run(overwrite=True)]
        from ganzoo.training.population import PopulationTrainer

        return PopulationTrainer([m.config for m in group], [m.run_dir for m in group],
                                 callbacks=[m.callbacks for m in group]).run(overwrite=True)

    def _tell(self, pair: Pair, study: Any, trial: Any, records: list[dict[str, Any]], started: float,
              population: int | None) -> None:
        """Record a trial from its seeds' results (``population``: how many trials trained with it)."""
        from optuna.trial import TrialState

        from ganzoo.core.progress import fmt

        if population is not None:
            trial.set_user_attr("population", population)
        if any(r["status"] == "pruned" for r in records):
            trial.set_user_attr("status", "pruned")
            trial.set_user_attr("wall_seconds", time.time() - started)
            study.tell(trial, state=TrialState.PRUNED)
            self.finished(pair, f"trial {trial.number}: pruned")
            return
        summary = summarise(records, self.config.objective)
        summary["wall_seconds"] = time.time() - started
        for key, value in summary.items():
            trial.set_user_attr(key, value)
        study.tell(trial, summary["objective"])
        seeds = f"mean of {len(records)} seeds" if len(records) > 1 else "1 seed"
        what = (f"repeat of trial {trial.user_attrs.get(BEST_TRIAL)}, seed {records[0]['seed']}"
                if trial.user_attrs.get(PHASE) == REPEAT else f"trial {trial.number}")
        scored = "best " if self.config.objective == "best" else ""
        self.finished(pair, f"{what}: {summary['status']}, {scored}FID {fmt(summary['fid_mean'])} ({seeds}"
                      + (f", population of {population})" if population is not None else ")"))


def _trial_folder(trial: Any) -> str:
    """A trial's folder under runs/PAIR/: its seeds' run directories are in it."""
    return f"{REPEAT if trial.user_attrs.get(PHASE) == REPEAT else 'trial'}-{trial.number:04d}"


def trial_settings(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """A trial's value of every dimension of its space, recorded on it: a searched one drawn by Optuna
    (an enqueued trial's value honoured, outside the range too: compare_gan's narrow defaults are),
    a fixed one its value, or the one an enqueued trial brings in its settings (the default trial's
    default, a repeat's best configuration)."""
    import warnings

    from ganzoo.protocols.ranges import fixed_value

    given = json.loads(trial.user_attrs.get(SETTINGS) or "{}")
    out = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
        for key, dim in space.items():
            is_fixed, value = fixed_value(dim)
            out[key] = given.get(key, value) if is_fixed else suggest(trial, key, dim)
    trial.set_user_attr(SETTINGS, json.dumps(out))  # JSON, as trials.csv shows it
    return out


def seed_record(member: Member, status: str) -> dict[str, Any]:
    """What a trial keeps of one seed's run: status, last metrics, stability and throughput."""
    last = member.evaluator.last if status == "completed" else None
    return {"seed": member.seed, "status": status, "run_dir": str(member.run_dir), "metrics": last,
            "stability": rundir.read_json(member.run_dir / rundir.STABILITY),
            "throughput": rundir.read_json(member.run_dir / rundir.THROUGHPUT)}


def summarise(seeds: list[dict[str, Any]], objective: str = "final") -> dict[str, Any]:
    """A trial's record from its seeds' runs. The objective is the mean over seeds of each run's FID:
    its final one (inf if any seed diverged, so a configuration that diverges is never preferred), or
    with ``objective`` best its best evaluation, made before any divergence, as compare_gan keeps the
    best checkpoint of a run (BestFIDPerModel; inf where a seed has none)."""
    finals = [s["metrics"]["fid"] if s["metrics"] else None for s in seeds]
    bests = [s["stability"].get("best_fid") for s in seeds]
    fids = bests if objective == "best" else finals
    diverged = sum(s["status"] == "diverged" for s in seeds)
    finite = [f for f in fids if f is not None]
    failed = (diverged and objective == "final") or len(finite) < len(seeds)
    value = math.inf if failed else statistics.fmean(finite)
    first = next((s["metrics"] for s in seeds if s["metrics"]), {}) or {}
    best = [b for b in bests if b is not None]

    def mean_of(section: str, key: str) -> float | None:
        values = [s[section].get(key) for s in seeds if s[section].get(key) is not None]
        return statistics.fmean(values) if values else None

    def metric_mean(key: str) -> float | None:
        values = [s["metrics"].get(key) for s in seeds if s["metrics"] and s["metrics"].get(key) is not None]
        return statistics.fmean(values) if values else None

    final = [f for f in finals if f is not None]
    return {
        "status": "diverged" if diverged else "complete",
        "objective": value,
        "scored": objective,  # what fid_mean, fid_per_seed and fid_std are: each run's final or best FID
        "seeds": [s["seed"] for s in seeds],
        "fid_per_seed": json.dumps(fids),
        "fid_mean": statistics.fmean(finite) if finite else None,
        "fid_std": statistics.stdev(finite) if len(finite) > 1 else None,
        "fid_final_mean": statistics.fmean(final) if final else None,
        "best_fid": min(best) if best else None,
        "diverged_seeds": diverged,
        "extractor": first.get("extractor"),
        "n_samples": first.get("n_samples"),
        "reference": first.get("reference"),
        "extractor_precision": first.get("extractor_precision"),
        "g_ema_decay": first.get("g_ema_decay"),  # the generator evaluated: G (0) or its moving average
        "g_ema_start": first.get("g_ema_start"),
        "extraction_images_per_second": metric_mean("extraction_images_per_second"),
        "precision": metric_mean("precision"),  # precision and recall (Kynkaanniemi et al. 2019), density and
        "recall": metric_mean("recall"),  # coverage (Naeem et al. 2020): means over seeds, with metrics prc
        "density": metric_mean("density"),
        "coverage": metric_mean("coverage"),
        "prc_n_generated": first.get("prc_n_generated"),  # the set sizes precision ... coverage compared
        "prc_n_reference": first.get("prc_n_reference"),
        "modes_covered": metric_mean("modes_covered"),
        "mode_rule": first.get("mode_rule"),
        "high_quality_share": metric_mean("high_quality_share"),
        "mode_reverse_kl": metric_mean("mode_reverse_kl"),
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
