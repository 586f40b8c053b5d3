"""The published-vs-ganzoo comparison (ganzoo.report.published): its test against scipy's own, and
the verdicts a report prints."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ganzoo.report import published

RUNS = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


def test_an_exact_published_value_is_a_one_sample_t_test():
    test = published.welch(RUNS, 5.0, None, None)
    expected = stats.ttest_1samp(RUNS, 5.0)
    assert test["mean"] == 3.0 and test["runs"] == 5 and test["df"] == 4
    assert test["p"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert published.verdict_of(test) == published.LOWER  # p 0.047
    assert published.verdict_of(published.welch(RUNS, 4.0, None, None)) == published.CONSISTENT
    assert published.verdict_of(published.welch(RUNS, 1.0, None, None)) == published.HIGHER


def test_a_published_spread_makes_it_welchs_test():
    # 5 ± 0.5 standard error over 10 runs: Welch's test of two means with their own spreads.
    test = published.welch(RUNS, 5.0, 0.5, 10)
    expected = stats.ttest_ind_from_stats(3.0, RUNS.std(ddof=1), 5, 5.0, 0.5 * math.sqrt(10), 10, equal_var=False)
    assert test["p"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_identical_runs_against_a_published_spread_take_the_papers_degrees_of_freedom():
    # ganzoo's runs all 8 (no spread of their own), the paper's 7 ± 0.3 (standard error, 10 runs)
    test = published.welch(np.full(5, 8.0), 7.0, 0.3, 10)
    expected = stats.ttest_ind_from_stats(8.0, 0.0, 5, 7.0, 0.3 * math.sqrt(10), 10, equal_var=False)
    assert test["df"] == pytest.approx(9.0) and test["p"] == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize("df", [1.0, 2.0, 4.0, 8.1, 49.0])
def test_the_detectable_difference_is_found_four_times_in_five(df):
    shift = published.detectable(df)
    critical = stats.t.ppf(0.975, df)
    if shift < 8:  # where scipy's noncentral t is finite: its power is the one solved for
        power = stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift)
        assert power == pytest.approx(0.8, abs=1e-6)
    else:  # 2 runs: by simulation, 200,000 tests, whose share has a standard error of 0.0009
        rng = np.random.default_rng(0)
        z, chi = rng.standard_normal(200_000), np.sqrt(rng.chisquare(df, 200_000) / df)
        assert np.mean(np.abs((z + shift) / chi) > critical) == pytest.approx(0.8, abs=0.005)
    assert shift > stats.norm.ppf(0.975) + stats.norm.ppf(0.8)  # a t-test needs more than the normal's 2.8


def test_one_run_is_not_tested_and_identical_runs_against_an_exact_value_are_exact():
    assert published.verdict_of(published.welch(np.array([8.0]), 1.0, None, None)) == published.NOT_TESTED
    assert published.verdict_of(published.welch(np.full(5, 8.0), 8.0, None, None)) == published.CONSISTENT
    assert published.verdict_of(published.welch(np.full(5, 8.0), 1.0, None, None)) == published.HIGHER


TINY_VEEGAN = """
variants = ["veegan-gan"]
datasets = ["ring8", "grid25"]
n_trials = 1
seeds = 2
sampler = "random"
space = "narrow"
reference = "veegan2017"
budget = "g_updates"
steps = 20
batch_size = 500
device = "cpu"

[evaluation]
features = "points"
n_samples = 2500
metrics = ["fid"]
"""


@pytest.fixture(scope="module")
def veegan_study(tmp_path_factory):
    """Table 1's GAN rows at 20 G updates a run: a protocol the paper's differs from in its budget."""
    from ganzoo.report import write_report
    from ganzoo.sweep import Sweep, load_preset

    root = tmp_path_factory.mktemp("veegan")
    (root / "tiny.toml").write_text(TINY_VEEGAN)
    sweep = Sweep("tiny", load_preset(str(root / "tiny.toml")), root / "runs", progress=False)
    sweep.run()
    write_report(sweep.dir)
    return sweep


def test_a_shortened_run_is_not_comparable_and_says_why(veegan_study):
    rows = pd.read_csv(veegan_study.dir / published.PUBLISHED_CSV)
    assert len(rows) == 8  # table 1's GAN and Unrolled GAN rows, modes and high-quality share on both mixtures
    gan = rows[rows["variant"] == "veegan-gan"]
    assert set(gan["verdict"]) == {published.NOT_COMPARABLE}
    assert all(r.startswith("budget: 20 G updates at batch 500 here, 100,000 G updates at batch 500 in the paper")
               for r in gan["reason"])
    unrolled = rows[rows["variant"] == "veegan-unrolled"]
    assert set(unrolled["verdict"]) == {published.NOT_RUN}
    report = (veegan_study.dir / "report.md").read_text()
    assert "0b. Published vs ganzoo" in report and published.RULE in report
    # The update order is a deviation on purpose the table names as able to move the numbers: it is a reason too.
    assert all("update order: D, then G here, not the paper's" in r for r in gan["reason"])
    unable = report.split("judges unable to move these numbers (it says why): ")[1].split("\n")[0]
    assert "D's input (x alone)" in unable and "update order" not in unable


def test_where_the_protocol_is_the_papers_each_row_gets_the_test_of_its_runs(veegan_study):
    # The same runs, read as if the study had the paper's budget, runs and update order: the verdicts are the test's.
    import dataclasses
    import json

    from ganzoo.report.load import load
    from ganzoo.sweep import Sweep, load_preset

    results = load(str(veegan_study.dir))
    paper = load_preset("veegan-2d")
    paper = dataclasses.replace(paper, variants=("veegan-gan",), settings={**paper.settings, "update_order": "simultaneous"})
    full = Sweep("full", paper, veegan_study.dir.parent)
    records = {p.name: full.pair_record(p) for p in full.pairs}
    results = dataclasses.replace(results, settings=full.settings(), protocol=records)
    frame, _ = published.comparison(results)
    for _, row in frame[frame["variant"] == "veegan-gan"].iterrows():
        runs = sorted((veegan_study.dir / "runs" / f"veegan-gan@{row['pair_dataset']}").glob("trial-*/seed-*"))
        values = np.array([[json.loads(line) for line in (r / "metrics.jsonl").read_text().splitlines()][-1][
            row["metric"]] for r in runs], dtype=float) * (100.0 if row["metric"] == "high_quality_share" else 1.0)
        assert row["ganzoo_runs"] == len(values) == 2
        assert row["ganzoo_mean"] == pytest.approx(values.mean(), rel=1e-12)
        expected = published.welch(values, row["published_value"], None, None)
        assert row["verdict"] == published.verdict_of(expected) != published.NOT_COMPARABLE
