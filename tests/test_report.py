"""Reports: every section from a real stored study, numbers equal to the trials', missing data
explained in place, a running study reported as such, and report.html checked in a real browser."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganzoo.report import REPORT_HTML, REPORT_MD, SUMMARY_CSV, write_report
from ganzoo.report import tables
from ganzoo.sweep import Sweep, load_preset

SECTIONS = ("## Summary", "## 1. Quality", "## 2. Budget", "## 3. Learning curves", "## 4. Stability",
            "## 4b. Mode and class coverage", "## 5. Throughput", "## 6. Sensitivity", "## 6b. Hyperparameter",
            "## 7. Samples")
FIGURES = ("quality", "budget", "learning_curves", "stability", "coverage", "throughput", "sensitivity",
           "importance", "samples")

PRESET = """
variants = ["vanilla", "nsgan"]
datasets = ["ring8"]
n_trials = 3
seeds = 2
sampler = "random"
space = "narrow"
steps = 40
eval_every = 20
batch_size = 64
device = "cpu"

[extra_space]
"adam.beta1" = {{ uniform = [0.0, 0.9] }}

[evaluation]
n_samples = {n_samples}
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A small real study: two variants on ring8, three trials of two seeds each."""
    root = tmp_path_factory.mktemp("study")
    (root / "p.toml").write_text(PRESET.format(n_samples=300))
    Sweep("s", load_preset(str(root / "p.toml")), root / "results").run()
    return root / "results" / "s"


@pytest.fixture(scope="module")
def report(study: Path) -> Path:
    return write_report(study)


def test_every_section_and_figure_is_present(study, report):
    text = (study / REPORT_MD).read_text()
    positions = [text.find(s) for s in SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), "all sections, in order"
    assert "No figure" not in text, text
    for name in FIGURES:
        for ext in ("png", "svg"):
            assert (study / "figures" / f"{name}.{ext}").stat().st_size > 1000, (name, ext)
        assert f"figures/{name}.png" in text
    html = report.read_text()
    assert html.count("src='data:image/png;base64,") == len(FIGURES) and "figures/" not in html
    assert "6 of 6 requested trials finished" in text
    assert "FID by points-rff256@0.2, 300 samples" in text, "the summary names extractor and sample count"
    tests = text.split("**Mann-Whitney U on FID, ring8")[1].split("##")[0]
    assert "| nsgan | vanilla |" in " ".join(tests.split()), "the pairwise test of the two variants"


def test_summary_numbers_equal_those_computed_from_the_trials(study, report):
    trials = pd.read_csv(study / "trials.csv")
    summary = pd.read_csv(study / SUMMARY_CSV).set_index("variant")
    for variant, rows in trials.groupby("variant"):
        done = rows[(rows["status"] == "complete") & np.isfinite(rows["fid_mean"])]
        got = summary.loc[variant]
        assert got["complete"] == len(done) == 3
        assert got["pruned"] == 0 and got["diverged"] == (rows["status"] == "diverged").sum()
        assert got["best_fid"] == pytest.approx(done["fid_mean"].min())
        assert got["median_fid"] == pytest.approx(done["fid_mean"].median())
        assert got["median_ci_low"] <= got["median_fid"] <= got["median_ci_high"]
        best = done.loc[done["fid_mean"].idxmin()]
        seed_fids = json.loads(best["fid_per_seed"])
        assert got["seed_std"] == pytest.approx(np.std(seed_fids, ddof=1))
        assert got["images_per_second"] == pytest.approx(done["train_images_per_second"].median())
        assert got["coverage"] == f"{best['modes_covered']:.3g} modes"
        assert got["extractor"] == best["extractor"] and got["n_samples"] == 300


def test_mann_whitney_matches_scipy_and_orients_the_effect():
    from scipy.stats import mannwhitneyu

    trials = pd.DataFrame({"variant": ["a"] * 4 + ["b"] * 4, "status": "complete",
                           "fid_mean": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 3.5]})
    table = tables.mann_whitney(trials)
    row = table.iloc[0]
    ref = mannwhitneyu([1, 2, 3, 4], [5, 6, 7, 3.5])
    assert (row["A"], row["B"]) == ("a", "b") and row["p"] == pytest.approx(ref.pvalue)
    # a beats b in 15 of 16 pairs (only 4 > 3.5): lower FID is better.
    assert row["p(A better)"] == pytest.approx(15 / 16) and row["rank-biserial"] == pytest.approx(7 / 8)


def test_expected_best_runs_from_the_mean_to_the_minimum():
    trials = pd.DataFrame({"variant": "a", "status": "complete", "fid_mean": [10.0, 20.0, 30.0, 40.0] * 5})
    curve = tables.expected_best(trials, resamples=4000)
    assert curve.iloc[0]["expected_best"] == pytest.approx(25.0, rel=0.05)
    # P(best > 10) = 0.75^20 and so on: E[best of 20] = 10 + 10 (0.75^20 + 0.5^20 + 0.25^20).
    assert curve.iloc[-1]["expected_best"] == pytest.approx(10 + 10 * (0.75**20 + 0.5**20 + 0.25**20), abs=0.02)
    assert (np.diff(curve["expected_best"]) <= 1e-9).all(), "more budget never hurts"


def test_a_diverged_variant_and_missing_metrics_are_explained(study, tmp_path):
    """Only the trials table, moved away from the runs: no learning curves, no samples, no throughput
    (the column is gone), and a variant whose every trial diverged."""
    trials = pd.read_csv(study / "trials.csv").drop(columns=["train_images_per_second"])
    trials["run_dirs"] = trials["run_dirs"].str.replace(str(study), "/nowhere", regex=False)
    diverged = trials[trials["variant"] == "nsgan"].copy()
    diverged["variant"], diverged["status"], diverged["value"] = "wgan-gp", "diverged", math.inf
    diverged["fid_mean"] = math.nan
    diverged["diverged_seeds"] = 2
    csv = tmp_path / "moved" / "trials.csv"
    csv.parent.mkdir()
    pd.concat([trials, diverged]).to_csv(csv, index=False)

    write_report(csv)
    text = (csv.parent / REPORT_MD).read_text()
    assert all(s in text for s in SECTIONS), "every section is there, drawn or explained"
    curves = text.split("## 3. Learning curves")[1].split("## 4.")[0]
    assert "No figure:** the run directories of the best trials are not here" in curves
    samples = text.split("## 7. Samples")[1]
    assert "No figure:** the sample pictures of the best runs are not here" in samples
    assert "No figure:** no complete trial recorded its throughput" in text.split("## 5. Throughput")[1]
    summary = pd.read_csv(csv.parent / SUMMARY_CSV).set_index("variant")
    assert summary.loc["wgan-gp", "diverged"] == 3 and summary.loc["wgan-gp", "complete"] == 0
    assert math.isnan(summary.loc["wgan-gp", "best_fid"])
    assert "| wgan-gp   | 0 / 0 / 3" in text


def test_a_running_study_is_reported_as_a_snapshot(study, tmp_path):
    trials = pd.read_csv(study / "trials.csv")
    trials.loc[trials.index[-1], ["state", "status", "fid_mean", "value"]] = ["RUNNING", None, math.nan, math.nan]
    folder = tmp_path / "running"
    folder.mkdir()
    trials.to_csv(folder / "trials.csv", index=False)
    shutil.copy(study / "sweep.json", folder / "sweep.json")
    write_report(folder)
    text = (folder / REPORT_MD).read_text()
    assert "5 of 6 requested trials finished" in text and "still running" in text


def test_report_command_never_trains_and_bad_sources_are_one_line(study, tmp_path):
    runs_before = sorted(p.name for p in (study / "runs").rglob("*"))
    result = subprocess.run([sys.executable, "-m", "ganzoo", "report", str(study), "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / REPORT_HTML).exists() and sorted(p.name for p in (study / "runs").rglob("*")) == runs_before
    for args, message in ((["nowhere"], "not found"), (["postgresql://u:p@localhost/db"], "needs --study"),
                          ([str(study / "sweep.json")], "is not a study folder or a trials.csv")):
        bad = subprocess.run([sys.executable, "-m", "ganzoo", "report", *args], capture_output=True, text=True,
                             timeout=120)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and message in bad.stderr, bad.stderr


def _browser():
    """Debian's chromium and its matching chromedriver, driven by selenium (no driver download)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev dependency; pip install -e .[dev]")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def test_report_html_loads_every_figure_in_a_browser(report):
    browser = _browser()
    try:
        browser.get(report.resolve().as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);")
        assert len(images) == len(FIGURES)
        assert all(complete and width > 0 for _, complete, width in images), images
        headers = browser.execute_script(
            "return Array.from(document.querySelectorAll('table.summary-table th')).map(th => th.textContent);")
        assert "best FID" in headers and "median FID [95% CI]" in headers and "modes covered" in headers
    finally:
        browser.quit()


def test_a_study_with_no_complete_trial_is_reported_not_crashed(tmp_path):
    """A study that has just started: Optuna has written none of the result columns yet."""
    csv = tmp_path / "new" / "trials.csv"
    csv.parent.mkdir()
    pd.DataFrame({"variant": ["nsgan", "nsgan", "vanilla"], "dataset": "ring8", "number": [0, 1, 0],
                  "state": ["RUNNING", "FAIL", "WAITING"]}).to_csv(csv, index=False)
    write_report(csv)
    text = (csv.parent / REPORT_MD).read_text()
    assert all(s in text for s in SECTIONS)
    assert "0 trials finished (1 fail, 1 running, 1 waiting) — the study is still running" in text
    assert "No figure:** no trial has completed with an FID yet" in text
    assert "could not be drawn" not in text, "nothing failed unexpectedly"
    summary = pd.read_csv(csv.parent / SUMMARY_CSV).set_index("variant")
    assert summary.loc["nsgan", "running"] == 1 and summary.loc["nsgan", "failed"] == 1
    assert summary.loc["vanilla", "queued"] == 1


def test_expected_best_counts_failed_draws_against_a_variant():
    stable = pd.DataFrame({"variant": "a", "status": "complete", "fid_mean": [10.0, 20.0]})
    fragile = pd.DataFrame({"variant": "b", "status": ["complete", "diverged"], "fid_mean": [10.0, math.nan]})
    curve = tables.expected_best(pd.concat([stable, fragile]), resamples=4000).set_index(["variant", "k"])
    assert curve.loc[("a", 1), "p_none"] == 0 and curve.loc[("b", 1), "p_none"] == pytest.approx(0.5, abs=0.03)
    assert curve.loc[("b", 2), "p_none"] == pytest.approx(0.25, abs=0.03)
    alone = tables.expected_best(stable, resamples=4000)
    assert alone["expected_best"].tolist() == curve.loc["a", "expected_best"].tolist(), "one stream per variant"


def test_importances_skip_rows_with_missing_parameters():
    rng = np.random.default_rng(0)
    lr = rng.uniform(1e-4, 1e-3, 8)
    trials = pd.DataFrame({"variant": "a", "status": "complete", "params_adam.lr": lr,
                           "params_adam.beta1": rng.uniform(0, 0.9, 8), "fid_mean": 1000 * lr})
    trials.loc[3, "params_adam.beta1"] = math.nan
    table, notes = tables.importances(trials)
    assert not notes and set(table["parameter"]) == {"adam.lr", "adam.beta1"}
    assert table.set_index("parameter").loc["adam.lr", "importance"] > 0.5, "FID depends on lr alone"


def test_throughput_section_shows_ganzoo_bench_when_present(study, tmp_path):
    from ganzoo.bench import BenchSpec, run, write

    copy = tmp_path / "results" / "s"
    shutil.copytree(study, copy)
    write(run(BenchSpec.quick(variants=("nsgan",), steps=2, warmup=1, repeats=1)), tmp_path / "results" / "bench")
    write_report(copy)
    section = (copy / REPORT_MD).read_text().split("## 5. Throughput")[1].split("## 6")[0]
    assert "ganzoo bench: images/s, ganzoo vs the tutorial loop" in section
    assert "| nsgan " in section and "baseline" in section and "tutorial" in section
