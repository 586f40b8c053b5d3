"""How a sweep scores and finishes: each run's final or best evaluation, the repeat phase that runs each
study's best configuration on new seeds, the protocol record a resumed study is checked against, and
the metrics' sample sizes and mode rule."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

from ganzoo.core.config import EvalSpec
from ganzoo.core.errors import GanzooError
from ganzoo.core.rundir import read_jsonl
from ganzoo.sweep import Sweep, SweepConfig, summarise


def tiny(**changes: object) -> SweepConfig:
    settings = dict(variants=("nsgan",), datasets=("ring8",), n_trials=2, sampler="random", space="narrow",
                    steps=30, batch_size=32, device="cpu", evaluation=EvalSpec(n_samples=200))
    settings.update(changes)
    return SweepConfig(**settings)  # type: ignore[arg-type]


def trials_of(folder: Path, name: str) -> list:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}").trials


def seed(status: str, final: float | None, best: float | None) -> dict:
    return {"seed": 0, "status": status, "run_dir": "x", "metrics": None if final is None else {"fid": final},
            "stability": {"best_fid": best}, "throughput": {"device": "cpu"}}


def test_a_runs_score_is_its_final_or_its_best_evaluation():
    """compare_gan evaluates every checkpoint of a run and keeps its best (BestFIDPerModel, which ranks
    every scores.csv row): a run that diverged after a good checkpoint keeps that checkpoint's FID."""
    seeds = [seed("completed", 12.0, 9.0), seed("completed", 14.0, 11.0)]
    assert summarise(seeds, "final")["objective"] == 13.0 and summarise(seeds, "best")["objective"] == 10.0
    best = summarise(seeds, "best")
    assert best["scored"] == "best" and best["fid_final_mean"] == 13.0 and json.loads(best["fid_per_seed"]) == [9.0, 11.0]
    late = [seed("completed", 12.0, 9.0), seed("diverged", None, 7.0)]
    assert math.isinf(summarise(late, "final")["objective"]) and summarise(late, "best")["objective"] == 8.0
    never = [seed("completed", 12.0, 9.0), seed("diverged", None, None)]  # diverged before any evaluation
    assert math.isinf(summarise(never, "best")["objective"])


def test_the_objective_best_is_each_runs_lowest_evaluation(tmp_path):
    Sweep("best", tiny(n_trials=1, eval_every=10, objective="best"), tmp_path).run()
    (trial,) = trials_of(tmp_path / "best", "best/nsgan@ring8")
    (run,) = json.loads(trial.user_attrs["run_dirs"])
    fids = [m["fid"] for m in read_jsonl(Path(run) / "metrics.jsonl")]
    assert len(fids) == 3 and trial.value == min(fids)  # D updates 10, 20 and 30 (the end)
    assert trial.user_attrs["fid_final_mean"] == fids[-1]


def test_the_repeat_phase_runs_the_best_configuration_on_new_seeds_and_resumes(tmp_path):
    config = tiny(seeds=2, repeat_seeds=3)
    Sweep("rep", config, tmp_path).run()
    search = trials_of(tmp_path / "rep", "rep/nsgan@ring8")
    repeats = trials_of(tmp_path / "rep", "rep/nsgan@ring8#repeat")
    best = min(search, key=lambda t: t.value)
    assert [t.user_attrs["seeds"] for t in repeats] == [[2], [3], [4]], "seeds the search (0, 1) did not use"
    assert all(t.state.name == "COMPLETE" and t.params == best.params for t in repeats)
    assert all(json.loads(t.user_attrs["settings"]) == json.loads(best.user_attrs["settings"]) for t in repeats)
    assert {t.user_attrs["best_trial"] for t in repeats} == {best.number}
    frame = pd.read_csv(tmp_path / "rep" / "trials.csv")
    assert sorted(frame["phase"]) == ["repeat"] * 3 + ["search"] * 2
    # the same command again finds everything done: no trial is added
    Sweep("rep", config, tmp_path).run()
    assert len(trials_of(tmp_path / "rep", "rep/nsgan@ring8#repeat")) == 3
    assert len(trials_of(tmp_path / "rep", "rep/nsgan@ring8")) == 2
    from ganzoo.report import write_report

    write_report(tmp_path / "rep")
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "3b. Repeat: each best configuration on new seeds" in report
    mean = sum(t.value for t in repeats) / 3
    row = re.search(rf"\| nsgan +\| +{best.number} \| +3 \| +([0-9.]+) \|", report)
    # Four significant figures, whatever their trailing zeros: within half a unit of the fourth.
    assert row and float(row[1]) == pytest.approx(mean, rel=5e-4), report


def test_a_study_under_another_protocol_is_refused(tmp_path):
    """What a pair's trials are drawn and trained with is stored with its study; a resumed study that this
    ganzoo would draw or train otherwise (a code change, not a setting) is refused with one line."""
    config = tiny(n_trials=1)
    Sweep("p", config, tmp_path).run()
    study = optuna.load_study(study_name="p/nsgan@ring8", storage=f"sqlite:///{tmp_path / 'p' / 'study.db'}")
    record = study.user_attrs["ganzoo_pair"]
    record["space"]["adam.lr"]["high"] = 0.01  # as if an older ganzoo's range had been another
    study.set_user_attr("ganzoo_pair", record)
    with pytest.raises(GanzooError, match=r"under another protocol: space.adam.lr.high 0.01 there, 0.001 now"):
        Sweep("p", config, tmp_path).run()
    # a study begun before protocol records (ganzoo < 0.2) cannot be checked: refused, never mixed
    study.set_user_attr("ganzoo_pair", None)
    with pytest.raises(GanzooError, match="did not record the search space and run settings"):
        Sweep("p", config, tmp_path).run()


def test_precision_and_coverage_compare_sets_of_one_size():
    """k-NN radii shrink as a set grows: a generated set against ten times as many references has its
    precision biased down and recall up. Equal sets by default; the sizes are recorded either way."""
    from ganzoo.evaluate.manifold import metric_values

    generator = torch.Generator().manual_seed(0)
    real = {"f": torch.randn(2000, 8, generator=generator, dtype=torch.float64)}
    fake = {"f": torch.randn(200, 8, generator=generator, dtype=torch.float64)}
    equal = metric_values(fake, real, {"prc": "f"}, seed=0)
    assert (equal["prc_n_generated"], equal["prc_n_reference"]) == (200, 200)
    unequal = metric_values(fake, real, {"prc": "f"}, seed=0, equal_sets=False)
    assert (unequal["prc_n_generated"], unequal["prc_n_reference"]) == (200, 2000)
    # The same distribution on both sides: at equal sizes coverage is near Naeem et al.'s expectation for it,
    # 1 - 2^-k with k = 5 (0.969; its standard deviation over 200 balls is ~0.012, so 0.05 is 4 of them);
    # 200 samples against 2,000 references' balls cover far fewer of them (0.39 here), whatever the model.
    assert abs(equal["coverage"] - (1 - 2**-5)) < 0.05 and unequal["coverage"] < 0.5
    again = metric_values(fake, real, {"prc": "f"}, seed=0)
    assert again == equal, "the reference subset is seeded"


def test_a_mode_counts_with_one_high_quality_sample_as_veegan_and_pacgan_count_it():
    from ganzoo.evaluate.modes import mode_coverage

    centers = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    far = torch.full((2496, 2), 10.0)  # 2,500 samples: one at each mode, the rest far from all
    samples = torch.cat([centers, far])
    one = mode_coverage(samples, centers, std=0.01)
    assert (one.modes_covered, one.counts, one.rule) == (4, (1, 1, 1, 1), "one-sample")
    percent = mode_coverage(samples, centers, std=0.01, rule="one-percent")
    assert (percent.modes_covered, percent.rule) == (0, "one-percent"), "25 of 2,500 needed at a mode"
    assert mode_coverage(torch.cat([centers.repeat(25, 1), far[:2400]]), centers, 0.01, rule="one-percent").modes_covered == 4
