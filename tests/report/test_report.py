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

from ganzoo.report import REPORT_HTML, REPORT_MD, SUMMARY_CSV, tables, write_report
from ganzoo.sweep import Sweep, load_preset

# Its module fixtures are built once, on one worker: the whole module runs there.
pytestmark = pytest.mark.xdist_group("report")

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
metrics = ["fid", "prc"]
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
        for key in ("precision", "recall", "density", "coverage"):  # the best trial's, means over its seeds
            assert got[f"best_{key}"] == pytest.approx(best[key])
    text = (study / REPORT_MD).read_text()
    assert "precision / recall / density / coverage" in text
    assert "Feature extraction: float64 Fourier features; statistics in float64." in text


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
        # Three trials per variant: their range, which a bootstrap "95% CI" of three values would only repeat.
        assert "best FID" in headers and "median FID [range]" in headers and "modes covered" in headers
        assert not any("95% CI" in h for h in headers), headers
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


def test_importances_of_variants_that_search_different_parameters():
    """One variant's own parameter (wgan-gp's penalty.weight) is NaN in every other variant's rows of the
    combined table: it must not leave the others with no complete trial."""
    rng = np.random.default_rng(1)
    frames = []
    for variant, own in (("nsgan", None), ("wgan-gp", "params_penalty.weight")):
        lr = rng.uniform(1e-4, 1e-3, 8)
        frame = pd.DataFrame({"variant": variant, "status": "complete", "params_adam.lr": lr, "fid_mean": 1000 * lr})
        if own:
            frame[own] = rng.uniform(0.1, 100, 8)
        frames.append(frame)
    table, notes = tables.importances(pd.concat(frames, ignore_index=True))
    assert not notes, notes
    assert set(table.loc[table["variant"] == "nsgan", "parameter"]) == {"adam.lr"}
    assert set(table.loc[table["variant"] == "wgan-gp", "parameter"]) == {"adam.lr", "penalty.weight"}


def test_throughput_section_shows_ganzoo_bench_when_present(study, tmp_path):
    from ganzoo.checks.bench import BenchSpec, run, write

    copy = tmp_path / "results" / "s"
    shutil.copytree(study, copy)
    write(run(BenchSpec.quick(variants=("nsgan",), steps=2, warmup=1, repeats=1)), tmp_path / "results" / "bench")
    write_report(copy)
    section = (copy / REPORT_MD).read_text().split("## 5. Throughput")[1].split("## 6")[0]
    assert "ganzoo bench: images/s, ganzoo vs the tutorial loop" in section
    assert "| nsgan " in section and "baseline" in section and "tutorial" in section
    header = section.split("**ganzoo bench")[1].split("\n\n")[1].splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")][:4] == ["variant", "dataset", "batch size", "device"]
    assert "| digits " in section, "the dataset the bench rows were timed on"


# ---- reading well: one test per defect a reviewer found in the smoke report ------------------------

def _trials(variant_fids: dict[str, list[float]], dataset: str = "ring8", **columns) -> pd.DataFrame:
    """Complete trials with these FIDs (two seeds each), as the report reads them."""
    rows = [{"variant": v, "dataset": dataset, "number": i, "state": "COMPLETE", "status": "complete",
             "fid_mean": f, "fid_per_seed": [f, f], "run_dirs": [], "extractor": "x", "n_samples": 100,
             "reference": "r", **columns}
            for v, fids in variant_fids.items() for i, f in enumerate(fids)]
    return pd.DataFrame(rows)


def _legend_colors(fig) -> dict[str, tuple[float, ...]]:
    from matplotlib.colors import to_rgb

    (legend,) = fig.legends
    return {t.get_text(): to_rgb(h.get_color()) for t, h in zip(legend.get_texts(), legend.legend_handles)}


def _legend_markers(fig) -> dict[str, str]:
    (legend,) = fig.legends
    return {t.get_text(): h.get_marker() for t, h in zip(legend.get_texts(), legend.legend_handles)}


def test_a_variant_has_one_colour_and_marker_in_every_figure_of_a_report(study):
    from matplotlib.colors import to_rgb

    from ganzoo.report import figures
    from ganzoo.report.load import load

    # Before: colours fixed per registered variant, and dcgan's orange beside nsgan's tan (a hashed hue).
    ten = [f"v{i}" for i in range(10)] + ["dcgan", "nsgan"]
    many = figures.palette(_trials({name: [1.0] for name in ten}))
    assert len({to_rgb(c) for c in list(many.values())[:10]}) == 10, "a study's first ten variants share no colour"
    assert set(many.values()) <= set(figures.PALETTE), "every colour is from the colour-blind-safe palette"
    shapes = figures.markers(many)
    assert len({(many[v], shapes[v]) for v in many}) == len(many), "no two variants share colour and marker"
    smoke = figures.palette(_trials({"vanilla": [1.0], "nsgan": [2.0], "dcgan": [3.0]}))
    assert len({to_rgb(c) for c in smoke.values()}) == 3

    results = load(str(study))
    data = list(tables.groups(results.trials))
    colors = figures.palette(results.trials)
    drawn = {"budget": figures.budget(data, colors), "throughput": figures.throughput(results.trials, colors),
             "learning curves": figures.learning_curves(results, data, colors),
             "sensitivity": figures.sensitivity(data, colors)}
    for name, fig in drawn.items():
        assert _legend_colors(fig) == {v: to_rgb(colors[v]) for v in colors}, name
        assert _legend_markers(fig) == figures.markers(colors), name
    for line in drawn["budget"].axes[0].lines:  # the curves themselves, not only the legend
        assert to_rgb(line.get_color()) == to_rgb(colors[line.get_label()])
    speed = drawn["throughput"].axes[0]
    for variant, bars in zip(sorted(colors), speed.containers):  # seaborn adds one container per hue level
        assert all(to_rgb(p.get_facecolor()) == to_rgb(colors[variant]) for p in bars.patches), variant


def test_numbers_in_tables_use_one_notation(study, report):
    from ganzoo.report import formatting as fmt

    summary = pd.DataFrame({"variant": ["a", "b"], "complete": 3, "pruned": 0, "diverged": 0, "failed": 0,
                            "running": 0, "queued": 0, "best_fid": [12.3456, 1234.56],
                            "median_fid": [12.3456, 1234.56], "median_ci_low": math.nan,
                            "median_ci_high": math.nan, "median_interval": None, "seed_std": [0.031639, 12.0],
                            "coverage": "—", "coverage_seeds": 0, "images_per_second": [25540.3, 7445.2]})
    shown = tables.summary_display(summary)
    assert shown["images/s"].tolist() == ["25,540", "7,445"]
    assert shown["best FID"].tolist() == ["12.35", "1,235"], "FIDs to 4 significant digits"
    assert fmt.sig(0.00012345) == "0.0001234" and fmt.sig(99999.0) == "100,000"
    text = (study / REPORT_MD).read_text()
    assert "e+0" not in text and "e-0" not in text, "no scientific notation in any table"


def test_p_and_q_are_printed_with_the_same_precision(study, report):
    from ganzoo.report import formatting as fmt

    assert [fmt.pvalue(x) for x in (0.1, 0.15, 0.7, 1.0, 0.0123, 0.0004)] == [
        "0.10", "0.15", "0.70", "1.0", "0.012", "< 0.001"]

    def digits(cell: str) -> int:
        return 0 if cell.startswith("<") else len(cell.replace(".", "").lstrip("0"))

    text = (study / REPORT_MD).read_text()
    table = text.split("**Mann-Whitney U on FID, ring8")[1].split("\n\n")[1]
    header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()]
    p, q = header.index("p"), header.index("q")
    assert rows and all(digits(r[p]) == digits(r[q]) == 2 or "<" in r[p] + r[q] for r in rows), rows


def test_an_interval_from_few_values_is_called_their_range():
    few = tables.summary(_trials({"a": [3.0, 1.0, 2.0]})).iloc[0]
    assert few["median_interval"] == "range" and (few["median_ci_low"], few["median_ci_high"]) == (1.0, 3.0)
    fids = list(np.linspace(1.0, 12.0, tables.MIN_CI_VALUES + 2))
    many = tables.summary(_trials({"a": fids})).iloc[0]
    assert many["median_interval"] == "95% CI"
    assert min(fids) < many["median_ci_low"] <= many["median_fid"] <= many["median_ci_high"] < max(fids)
    only_few = tables.summary_display(tables.summary(_trials({"a": [3.0, 1.0, 2.0], "b": [1.0, 2.0]})))
    assert "median FID [range]" in only_few.columns and not any("CI" in c for c in only_few.columns)
    mixed = tables.summary_display(tables.summary(_trials({"a": fids, "b": [1.0, 2.0]})))
    cells = mixed.set_index("variant")["median FID [95% CI or range]"]
    assert cells["a"].endswith("(95% CI)") and cells["b"] == "1.500 [1.000, 2.000] (range)"
    seeds = tables.stability(_trials({"a": [1.0]}).assign(fid_per_seed=[[1.0, 3.0]], diverged_seeds=0,
                                                           d_saturated_share=0.0))
    assert seeds.iloc[0]["seed interval"] == "range"
    assert "seed FID [range]" in tables.stability_display(seeds).columns


def test_coverage_that_is_a_mean_over_seeds_says_so(study):
    from ganzoo.report import figures

    two = tables.summary_display(tables.summary(_trials({"a": [1.0]}, dataset="digits", classes_covered=1.5)))
    assert two.iloc[0]["modes covered"] == "1.5 classes (mean over 2 seeds)"
    one = _trials({"a": [1.0]}, dataset="digits", classes_covered=1.0).assign(fid_per_seed=[[1.0]])
    assert tables.summary_display(tables.summary(one)).iloc[0]["modes covered"] == "1 class", "one seed: a count"
    trials = pd.read_csv(study / "trials.csv")
    from ganzoo.report.load import load

    data = list(tables.groups(load(str(study)).trials))
    fig = figures.coverage(data, figures.palette(trials), {"ring8": 8})
    assert all("mean over seeds" in ax.get_ylabel() for ax in fig.axes if ax.get_visible())


def test_the_divergence_panel_says_so_when_nothing_diverged(study):
    from ganzoo.report import figures
    from ganzoo.report.load import load

    trials = load(str(study)).trials
    calm = trials.assign(status="complete")
    fig = figures.seed_spread(list(tables.groups(calm)), figures.palette(calm))
    assert "No trial diverged (6 finished trials)" in fig.get_supxlabel()
    assert not any(ax.containers for ax in fig.axes), "no chart of zero-height bars"
    wild = calm.copy()
    wild.loc[0, ["status", "fid_mean"]] = ["diverged", math.nan]
    fig = figures.seed_spread(list(tables.groups(wild)), figures.palette(wild))
    heights = [p.get_height() for ax in fig.axes for bars in ax.containers for p in bars.patches]
    assert max(heights) == pytest.approx(1 / 3), "one of the three trials of one variant diverged"
    assert fig.get_supxlabel() == ""


def test_memory_on_the_cpu_is_not_drawn_as_a_variants_cost_and_the_legend_hides_no_bar(study):
    from ganzoo.report import figures
    from ganzoo.report.load import load

    trials = load(str(study)).trials
    colors = figures.palette(trials)
    cpu = figures.throughput(trials, colors)
    fig_text = " ".join(" ".join(t.get_text().split()) for ax in cpu.axes for t in ax.texts)
    assert "not measured on the CPU" in fig_text and len(cpu.axes[1].containers) == 0
    gpu = trials.assign(device="NVIDIA H200", peak_memory_kind="cuda_max_allocated",
                        peak_memory_bytes=np.where(trials["variant"] == "nsgan", 2.0, 1.0) * 2**20)
    fig = figures.throughput(gpu, colors)
    memory = fig.axes[1]
    heights = {v: bars.patches[0].get_height() for v, bars in zip(sorted(colors), memory.containers)}
    assert heights == {"nsgan": pytest.approx(2.0), "vanilla": pytest.approx(1.0)}, "MiB per variant"
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes), "legend outside the bars"


def test_when_every_variant_failed_the_summary_warns_instead_of_ranking():
    from ganzoo.report.verdict import verdict

    failed = verdict(_trials({"a": [1.0, 1.1], "b": [2.0, 2.1]}, modes_covered=0.0), total=8)
    assert failed.warning and "every variant failed" in failed.text and "of the 8 modes" in failed.text
    assert "a best" not in failed.text and "b best" not in failed.text, "no variant named best"
    one_mode = _trials({"a": [1.0, 1.1], "b": [2.0, 2.1]}, modes_covered=0.0)
    one_mode.loc[0, "modes_covered"] = 1.0
    assert not verdict(one_mode, total=8).warning
    collapsed = _trials({"a": [1.0], "b": [2.0]}, dataset="digits", classes_covered=1.0)
    assert verdict(collapsed, total=10).warning
    assert not verdict(collapsed.assign(classes_covered=[1.0, 2.0]), total=10).warning


def test_each_dataset_opens_with_a_one_line_verdict(study, report):
    from ganzoo.report.verdict import verdict

    clear = _trials({"a": [10.0 + i for i in range(8)], "b": [30.0 + i for i in range(8)]})
    q = tables.mann_whitney(clear).iloc[0]["q"]
    assert q < 0.001  # 8 against 8, every a below every b: exact p = 2 / C(16, 8)
    assert verdict(clear).text == "a best (median FID 13.50), significantly better than b (q < 0.001)"
    close = _trials({"a": [1.0, 2.0, 3.0], "b": [1.5, 2.5, 3.5], "c": [4.0, 5.0, 6.0]})
    text = verdict(close).text
    smallest = tables.mann_whitney(close)["q"].min()
    assert text.startswith("no significant difference between the variants (lowest median FID: a, 2.000")
    assert f"smallest q = {smallest:#.2g}" in text and "with 3 trials each" in text and "below 0.10" in text
    md = (study / REPORT_MD).read_text()
    block = md.split("**ring8 (FID by")[1].split("| variant")[0]
    assert "**Verdict:**" in block or "> **Warning:**" in block, block


def test_every_file_ganzoo_writes_gets_the_mode_open_would_give(study, report, tmp_path):
    import os
    import stat

    from ganzoo.core import rundir

    for mask in (0o022, 0o027):
        old = os.umask(mask)
        try:
            rundir.atomic_write(tmp_path / f"f{mask:o}", lambda f: f.write(b"x"))
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / f"f{mask:o}").stat().st_mode) == 0o666 & ~mask
    umask = os.umask(0o022)
    os.umask(umask)
    written = [study / REPORT_MD, study / REPORT_HTML, study / SUMMARY_CSV, *(study / "figures").iterdir()]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in written), \
        {p.name: oct(p.stat().st_mode) for p in written}


def test_the_bench_table_names_its_dataset_batch_size_and_device_even_from_an_old_csv(tmp_path):
    from ganzoo.report.document import _bench_table
    from ganzoo.report.load import StudyResults

    bench = tmp_path / "results" / "bench"
    bench.mkdir(parents=True)
    old = pd.DataFrame({"variant": ["nsgan", "nsgan"], "batch_size": [64, 256], "loop": ["ganzoo", "baseline"],
                        "images_per_second": [25540.3, 7445.2], "speedup_vs_baseline": 1.2,
                        "device": "cpu (x86_64, 2 threads)", "torch": "2", "fast_paths": ["fused-adam", "tutorial"]})
    old.to_csv(bench / "throughput.csv", index=False)
    results = StudyResults("s", "here", tmp_path / "results" / "s", pd.DataFrame(), None, [])
    table = _bench_table(results)
    assert table[["dataset", "batch size", "device"]].values.tolist() == [
        ["not recorded", "64", "cpu (x86_64, 2 threads)"], ["not recorded", "256", "cpu (x86_64, 2 threads)"]]
    assert table["images/s"].tolist() == ["25,540", "7,445"]
    old.assign(dataset="digits").to_csv(bench / "throughput.csv", index=False)
    assert _bench_table(results)["dataset"].tolist() == ["digits", "digits"]


# ---- the mode-coverage table: mean ± standard error over the best trial's runs -----------------------

def _mixture_study(folder: Path, runs: dict[tuple[str, int], list[dict | None]], fids: dict[tuple[str, int], float],
                   dataset: str = "pacgan-ring") -> Path:
    """A study folder as a sweep leaves it: trials.csv and, per trial, a run folder per seed whose
    metrics.jsonl holds the seed's final evaluation (``None``: a run with no high-quality sample)."""
    from ganzoo.core import rundir

    rows = []
    for (variant, number), seeds in runs.items():
        dirs = []
        for seed, m in enumerate(seeds):
            run_dir = folder / "runs" / f"{variant}@{dataset}" / f"trial-{number:04d}" / f"seed-{seed}"
            run_dir.mkdir(parents=True)
            rundir.write_json(run_dir / rundir.CONFIG, {"seed": seed})
            rundir.write_json(run_dir / rundir.STATUS, {"status": "completed", "step": 10, "steps": 10})
            rundir.append_jsonl(run_dir / rundir.METRICS, {"step": 5, "fid": 9.0, "extractor": "points", "n_samples": 2500,
                                                           "reference": "r", "modes_covered": 0, "n_modes": 8})
            rundir.append_jsonl(run_dir / rundir.METRICS, {"step": 10, "fid": 1.0, "extractor": "points",
                                                           "n_samples": 2500, "reference": "r", "n_modes": 8, **m})
            # a later `ganzoo evaluate` with another sample count: not what the trial recorded
            rundir.append_jsonl(run_dir / rundir.METRICS, {"step": 10, "fid": 2.0, "extractor": "points",
                                                           "n_samples": 100, "reference": "r", "n_modes": 8,
                                                           "modes_covered": 1, "high_quality_share": 0.01})
            dirs.append(str(run_dir))
        kls = [m["mode_reverse_kl"] for m in seeds if m["mode_reverse_kl"] is not None]
        rows.append({"variant": variant, "dataset": dataset, "phase": "search", "number": number, "state": "COMPLETE",
                     "status": "complete", "value": fids[variant, number], "fid_mean": fids[variant, number],
                     "fid_per_seed": json.dumps([fids[variant, number]] * len(seeds)), "run_dirs": json.dumps(dirs),
                     "extractor": "points", "n_samples": 2500, "reference": "r",
                     "modes_covered": np.mean([m["modes_covered"] for m in seeds]),
                     "high_quality_share": np.mean([m["high_quality_share"] for m in seeds]),
                     "mode_reverse_kl": np.mean(kls) if kls else math.nan})
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    return folder


def _run(modes: int, share: float, kl: float | None) -> dict:
    return {"modes_covered": modes, "high_quality_share": share, "mode_reverse_kl": kl}


MIXTURE_RUNS = {
    ("pacgan2", 0): [_run(8, 0.90, 0.10), _run(6, 0.80, 0.30), _run(7, 0.70, 0.20)],
    ("pacgan2", 1): [_run(1, 0.10, 2.00), _run(1, 0.10, 2.00), _run(1, 0.10, 2.00)],  # worse FID: not shown
    ("pacgan-gan", 0): [_run(5, 0.5, 0.4)],  # one run: its values, no ±
    ("pacgan3", 0): [_run(8, 0.95, 0.05), _run(0, 0.0, None)],  # no high-quality sample, no reverse KL
}
MIXTURE_FIDS = {("pacgan2", 0): 1.0, ("pacgan2", 1): 5.0, ("pacgan-gan", 0): 2.0, ("pacgan3", 0): 3.0}


def test_the_mode_table_gives_mean_and_standard_error_over_the_best_trials_runs(tmp_path):
    from ganzoo.report import coverage
    from ganzoo.report.load import load, run_metrics

    folder = _mixture_study(tmp_path / "mix", MIXTURE_RUNS, MIXTURE_FIDS)
    results = load(str(folder))
    runs = run_metrics(results, tables.best_trials(results.trials))
    assert sorted(runs[runs["variant"] == "pacgan2"]["modes_covered"]) == [6, 7, 8], "the trial's final records"
    assert set(runs[runs["variant"] == "pacgan2"]["seed"]) == {0, 1, 2}
    table = coverage.mode_table(results.trials, runs).set_index("variant")
    row = table.loc["pacgan2"]
    assert row["trial"] == 0 and row["runs"] == 3, "the best trial (lowest mean FID), its three runs"
    assert row["modes_covered"] == pytest.approx(7.0)
    assert row["modes_covered_se"] == pytest.approx(np.std([8, 6, 7], ddof=1) / math.sqrt(3)) == pytest.approx(1 / math.sqrt(3))
    assert row["high_quality_share_se"] == pytest.approx(0.1 / math.sqrt(3))
    assert row["mode_reverse_kl"] == pytest.approx(0.2)

    write_report(folder)
    text = (folder / REPORT_MD).read_text()
    section = text.split("## 4b. Mode and class coverage")[1].split("## 5.")[0]
    assert "mean ± standard error over the runs" in section and "best complete trial" in section
    assert "**Mode coverage, pacgan-ring (2,500 samples per run)**" in section
    shown = _markdown_rows(section)
    assert shown["pacgan2"] == ["0", "3", "7.00 ± 0.58", "80.0 ± 5.8", "0.200 ± 0.058"]
    assert shown["pacgan-gan"] == ["0", "1", "5.00", "50.0", "0.400"], "a single run: its value, no ±"
    assert shown["pacgan3"] == ["0", "2", "4.00 ± 4.00", "47.5 ± 47.5", "0.050 (1 of 2 runs)"]
    assert "modes covered (of 8)" in section


def _markdown_rows(section: str) -> dict[str, list[str]]:
    """The cells of the markdown table in ``section``, by variant."""
    lines = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|:")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}


def test_the_mode_table_without_run_folders_shows_the_trial_means_and_no_standard_error(tmp_path):
    folder = _mixture_study(tmp_path / "mix", MIXTURE_RUNS, MIXTURE_FIDS)
    moved = tmp_path / "moved"
    moved.mkdir()
    trials = pd.read_csv(folder / "trials.csv")
    trials["run_dirs"] = trials["run_dirs"].str.replace(str(folder), "/nowhere", regex=False)
    trials.to_csv(moved / "trials.csv", index=False)
    write_report(moved)
    shown = _markdown_rows((moved / REPORT_MD).read_text().split("## 4b.")[1].split("## 5.")[0])
    assert shown["pacgan2"] == ["0", "3 (run folders not here: trial mean, no s.e.)", "7.00", "80.0", "0.200"]


def test_an_image_study_has_no_mode_table(tmp_path):
    from ganzoo.report import coverage

    images = _trials({"a": [1.0, 2.0], "b": [3.0]}, dataset="digits", classes_covered=9.0)
    assert not coverage.has_modes(images)
    csv = tmp_path / "images" / "trials.csv"
    csv.parent.mkdir()
    images.assign(fid_per_seed=lambda f: f["fid_per_seed"].map(json.dumps),
                  run_dirs=lambda f: f["run_dirs"].map(json.dumps)).to_csv(csv, index=False)
    write_report(csv)
    section = (csv.parent / REPORT_MD).read_text().split("## 4b.")[1].split("## 5.")[0]
    assert "Mode coverage" not in section and "standard error" not in section and "|" not in section


def test_the_runs_final_records_are_the_ones_the_trial_averaged(study):
    """On a real sweep: the per-run values the mode table reads average to what trials.csv recorded."""
    from ganzoo.report.load import load, run_metrics

    results = load(str(study))
    runs = run_metrics(results, results.trials)
    assert runs["found"].all() and len(runs) == 12
    for (variant, number), mine in runs.groupby(["variant", "number"]):
        trial = results.trials[(results.trials["variant"] == variant) & (results.trials["number"] == number)].iloc[0]
        for key in ("modes_covered", "high_quality_share"):
            assert mine[key].mean() == pytest.approx(trial[key]), (variant, number, key)
        assert set(mine["n_modes"]) == {8}
