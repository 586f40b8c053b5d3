"""Population sizing and memory on CUDA, proved on a CPU: torch.cuda's memory calls, the device and the
trainers are stand-ins, so that the sizer takes its CUDA branch and a run can "run out of memory" at a
chosen size."""

from __future__ import annotations

import dataclasses
import re

import optuna
import pytest
import torch
from optuna.trial import TrialState

import ganzoo.core.device
import ganzoo.training.engine
import ganzoo.training.population
import ganzoo.training.trainer
from ganzoo import resolve_config
from ganzoo.core.config import EvalSpec
from ganzoo.sweep import SweepConfig, sizing
from ganzoo.sweep.config import Pair
from ganzoo.sweep.sizing import PopulationSizer
from ganzoo.sweep.trials import TrialRunner
from ganzoo.training.graphs import WARMUP

GiB = 2**30
RING8 = Pair("nsgan", "ring8")


def out_of_memory() -> torch.cuda.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class FakeCuda:
    """A CUDA device of ``free`` bytes as torch.cuda's memory calls report it: what fake runs allocate
    sets the peak, which reset_peak_memory_stats brings back to what is allocated now."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, free: int = 80 * GiB) -> None:
        self.free, self.allocated, self.peak = free, 0, 0
        self.calls: list[str] = []
        monkeypatch.setattr(ganzoo.core.device, "resolve_device", lambda name: torch.device("cuda"))
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (self.free, 2 * self.free))
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", self.reset)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: self.peak)
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: self.allocated)
        monkeypatch.setattr(torch.cuda, "empty_cache", lambda: self.calls.append("empty_cache"))

    def reset(self, device: object = None) -> None:
        self.calls.append("reset")
        self.peak = self.allocated

    def use(self, nbytes: int) -> None:
        """A run that allocated ``nbytes`` at its peak and freed them."""
        self.peak = max(self.peak, self.allocated + nbytes)


def fake_training(monkeypatch: pytest.MonkeyPatch, cuda: FakeCuda, shared: int, per_member: int,
                  members_out_of_memory: int | None = None, timed_out_of_memory: int | None = None) -> list[int]:
    """Stand-ins for the sizer's measuring runs (``shared`` + ``per_member`` bytes a member; a population of
    ``members_out_of_memory`` or more runs out) and timing runs (member-steps/s always gain from a wider
    population, up to ``timed_out_of_memory`` members, which run out). Returns the steps each measuring
    run was asked for."""
    steps: list[int] = []

    class Measured:
        def __init__(self, configs: list, run_dirs: list) -> None:
            self.members = len(configs)
            steps.append(configs[0].steps)

        def run(self) -> None:
            if members_out_of_memory is not None and self.members >= members_out_of_memory:
                raise out_of_memory()
            cuda.use(shared + self.members * per_member)

    def timed_members(config: object, members: int) -> dict:
        if timed_out_of_memory is not None and members >= timed_out_of_memory:
            raise out_of_memory()
        return {"member_steps_per_second": 1000.0 * members}

    monkeypatch.setattr(ganzoo.training.population, "PopulationTrainer", Measured)
    monkeypatch.setattr(ganzoo.training.population, "timed_members", timed_members)
    return steps


def auto_sizer(config: SweepConfig) -> tuple[PopulationSizer, list[str]]:
    lines: list[str] = []
    return PopulationSizer(config, "auto", lines.append), lines


def test_a_timing_run_out_of_memory_stops_the_search_at_the_largest_size_that_ran(monkeypatch):
    cuda = FakeCuda(monkeypatch)
    steps = fake_training(monkeypatch, cuda, shared=GiB, per_member=GiB // 4, timed_out_of_memory=8)
    sizer, lines = auto_sizer(SweepConfig(variants=("nsgan",), datasets=("ring8",), n_trials=16))
    assert sizer.size(RING8) == 4, lines  # 1, 2, 4 trials ran; 8 ran out of memory
    assert "8: out of memory" in lines[-1]
    assert cuda.calls[-1] == "empty_cache", "the failed run's memory is handed back"
    # The memory is measured past the eager warm-up, into a captured graph whose pool counts.
    assert steps == [WARMUP + 2] * 3


def test_a_measuring_run_out_of_memory_caps_the_population_at_the_members_that_ran(monkeypatch):
    cuda = FakeCuda(monkeypatch)
    fake_training(monkeypatch, cuda, shared=GiB, per_member=GiB // 4, members_out_of_memory=4)
    sizer, lines = auto_sizer(SweepConfig(variants=("nsgan",), datasets=("ring8",), n_trials=16))
    assert sizer.size(RING8) == 2, lines  # 2 members measured, 4 ran out: no larger population is timed
    assert "out of memory measuring 4 members, 2 fit" in lines[-1]
    assert "empty_cache" in cuda.calls

    fake_training(monkeypatch, cuda, shared=GiB, per_member=GiB // 4, members_out_of_memory=1)
    sizer, lines = auto_sizer(SweepConfig(variants=("nsgan",), datasets=("ring8",), n_trials=16))
    assert sizer.size(RING8) == 1, lines  # not even one member: one trial at a time, which will fail alone


def test_the_evaluation_budget_shrinks_what_fits_as_its_batch_grows(monkeypatch):
    cuda = FakeCuda(monkeypatch, free=40 * GiB)
    fake_training(monkeypatch, cuda, shared=GiB, per_member=GiB // 4)
    fits = {}
    for batch in (10, 50, 250):
        config = SweepConfig(variants=("nsgan",), datasets=("digits",), n_trials=64,
                             evaluation=EvalSpec(n_samples=200, batch_size=batch))
        sizer, lines = auto_sizer(config)
        sizer.size(Pair("nsgan", "digits"))
        fits[batch] = int(re.search(r"(\d+) fit", lines[-1])[1])
        assert f"{batch} images x 13 x 3x299x299 float32" in lines[-1], "the estimate is stated"
    assert fits[10] > fits[50] > fits[250] >= 1, fits
    # The same arithmetic, stated: 0.9 of 40 GiB less 1 GiB shared, over a member's training and evaluation.
    assert fits[50] == int((0.9 * 40 * GiB - GiB) // (GiB // 4 + 50 * sizing.EVAL_IMAGE_BYTES))
    # Points are scored on the CPU: nothing budgeted for their evaluation.
    assert sizing.trials_that_fit(40 * GiB, GiB, GiB // 4, 0, seeds=1, n_trials=1000) == 140


def test_populations_that_run_out_of_memory_shrink_to_one_trial_which_then_fails(monkeypatch, tmp_path):
    """Each population that runs out of memory halves the pair's size before its trials are queued again;
    a trial alone that runs out fails, so the sweep ends instead of claiming the same size for ever."""
    populations: list[int] = []

    class OutOfMemory:
        def __init__(self, configs: object, *args: object, **kwargs: object) -> None:
            populations.append(len(configs) if isinstance(configs, list) else 1)

        def run(self, *args: object, **kwargs: object) -> None:
            raise out_of_memory()

    monkeypatch.setattr(ganzoo.training.population, "PopulationTrainer", OutOfMemory)
    monkeypatch.setattr(ganzoo.training.trainer, "Trainer", OutOfMemory)
    monkeypatch.setattr(ganzoo.training.population, "probe", lambda config: None)
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    # The narrow space draws no setting a population must share (n_critic is 1): one population a claim.
    config = SweepConfig(variants=("nsgan",), datasets=("ring8",), n_trials=4, steps=20, device="cpu", space="narrow")
    lines: list[str] = []
    sizer = PopulationSizer(config, 4, lines.append)
    runner = TrialRunner(config, tmp_path, False, {"ring8": 1000}, lambda pair, line: lines.append(line),
                         lines.append, lambda: None, sizer=sizer)
    study = optuna.create_study()
    trials = [study.ask() for _ in range(sizer.trials_at_once(RING8))]
    while trials:  # as Sweep.work claims: queued trials first, as many as the sizer says
        runner.run(RING8, study, trials)
        waiting = len(study.get_trials(states=(TrialState.WAITING,)))
        trials = [study.ask() for _ in range(min(waiting, sizer.trials_at_once(RING8)))]
        assert len(populations) < 20, "claimed again and again"
    assert populations == [4, 2, 1, 1, 1, 1]  # the 2 left of the first 4 wait for the lowered size
    assert sizer.trials_at_once(RING8) == 1
    assert "nsgan@ring8: a population of 4 trials ran out of memory; populations of 2 from now on" in lines
    assert "nsgan@ring8: a population of 2 trials ran out of memory; populations of 1 from now on" in lines
    failed = [t for t in study.get_trials() if t.user_attrs.get("status") == "failed"]
    assert len(failed) == 4 and all("out of memory" in t.user_attrs["error"] for t in failed)
    assert len(emptied) == len(populations), "memory handed back after each failed run"


def test_an_engine_run_resets_the_peak_once_before_it_trains(monkeypatch, tmp_path):
    events: list[str] = []
    monkeypatch.setattr(ganzoo.training.engine, "reset_peak_memory", lambda device: events.append("reset"))
    config = resolve_config("nsgan", "ring8", overrides={"batch_size": 16, "steps": 4, "log_every": 2,
                                                         "sample_every": 0, "checkpoint_every": 0, "device": "cpu"})
    step = lambda state: events.append("step")  # noqa: E731
    ganzoo.training.trainer.Trainer(dataclasses.replace(config, callback_every=1), tmp_path / "one", callbacks=[step],
                           quiet=True).run()
    assert events == ["reset"] + ["step"] * 4
    events.clear()
    ganzoo.training.population.PopulationTrainer([config, dataclasses.replace(config, seed=1)],
                                        [tmp_path / "a", tmp_path / "b"]).run()
    assert events == ["reset"], "a population's members share one engine run, and one reset"


def test_the_recorded_peak_is_the_runs_own(monkeypatch):
    """An earlier run's larger peak in the same process is not this run's."""
    cuda = FakeCuda(monkeypatch)
    monkeypatch.setattr(ganzoo.training.engine, "device_name", lambda device: "fake GPU")
    device = torch.device("cuda:1")
    config = resolve_config("nsgan", "ring8", overrides={"device": "cpu"})
    cuda.use(10 * GiB)  # an earlier trial
    ganzoo.training.engine.reset_peak_memory(device)
    cuda.use(GiB)  # this run
    record = ganzoo.training.engine.throughput_record([(10, 1.0)], config, device, "", "eager", "float32")
    assert record["peak_memory_bytes"] == GiB and record["peak_memory_kind"] == "cuda_max_allocated"


def test_the_clock_records_its_events_on_the_runs_device(monkeypatch):
    recorded: list[object] = []

    class Event:
        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing

        def record(self, stream: object = None) -> None:
            recorded.append(stream)

        def synchronize(self) -> None:
            pass

        def elapsed_time(self, end: object) -> float:
            return 1500.0

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    clock = ganzoo.training.engine._Clock(torch.device("cuda:1"))
    assert clock.lap() == 1.5
    assert recorded == ["stream of cuda:1"] * 2
