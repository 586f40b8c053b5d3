"""``ganzoo report``: a study as report.md, a self-contained report.html and figures/*.png|svg.

Eight sections, each answering one question a researcher asks of a comparison; a section that
cannot be drawn from the study says why in place of its figure.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ganzoo.core import rundir
from ganzoo.report import coverage, figures, published, tables
from ganzoo.report import formatting as fmt
from ganzoo.report.load import StudyResults, load, run_metrics
from ganzoo.report.verdict import ALPHA, verdict

REPORT_MD, REPORT_HTML, FIGURES, SUMMARY_CSV = "report.md", "report.html", "figures", "summary.csv"




@dataclasses.dataclass(frozen=True)
class Table:
    title: str
    frame: pd.DataFrame  # as printed: every cell a string made by ganzoo.report.formatting
    lead: str | None = None  # one line above the table: the dataset's verdict
    warning: bool = False  # the lead warns that no variant can be ranked


@dataclasses.dataclass(frozen=True)
class Section:
    key: str
    title: str
    caption: str  # what the figure shows and how to read it
    figure: Path | None = None
    missing: str | None = None  # why there is no figure
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()


def _figure(out: Path, name: str, made: Any) -> dict[str, Any]:
    if isinstance(made, str):
        return {"missing": made}
    return {"figure": figures.save(made, out / FIGURES, name).relative_to(out)}


def _mode_totals(datasets: list[str]) -> dict[str, int | None]:
    """How many modes (mixtures) or classes (labelled data) each dataset has, where it can be loaded."""
    from ganzoo.core.errors import GanzooError
    from ganzoo.data import load_dataset

    out: dict[str, int | None] = {}
    for name in datasets:
        try:
            data = load_dataset(name, "test", download=False)
        except (GanzooError, OSError):
            out[name] = None
            continue
        out[name] = len(data.centers) if data.centers is not None else data.num_classes
    return out


def build_sections(results: StudyResults, out: Path) -> list[Section]:
    trials = results.trials
    data = list(tables.groups(trials))
    colors = figures.palette(trials)
    totals = _mode_totals(sorted({g.dataset for g, _ in data}))
    sections = []
    reference = _reference_section(results)
    if reference is not None:
        sections.append(reference)
    if (compared := _published_section(results, out)) is not None:
        sections.append(compared)

    summary: list[Table] = []
    for g, t in data:
        judged = verdict(t, totals.get(g.dataset))
        summary.append(Table(g.label, tables.summary_display(tables.summary(t)),
                             lead=judged.text if judged else None, warning=bool(judged and judged.warning)))
        summary.append(Table(f"Mann-Whitney U on FID, {g.label}", tables.mann_whitney_display(tables.mann_whitney(t))))
    sections.append(Section(
        "summary", "Summary",
        "One table per dataset: FIDs are only comparable with the same dataset, feature extractor and sample "
        "count, which each table's title names. Each table opens with a verdict: the variant with the lowest "
        f"median FID and the variants it beats at a Benjamini-Hochberg q below {ALPHA}; where every variant "
        "failed (no mode of a mixture covered, at most one class of labelled images) a warning replaces it. "
        "Median FID is over complete trials; the brackets are a bootstrap 95% CI of the median with at least "
        f"{tables.MIN_CI_VALUES} complete trials, else the range [min, max] of the trials (from fewer values a "
        "bootstrap interval is that range and claims more than it knows). Seed std and coverage are those of "
        "the variant's best configuration, coverage as the mean over its seeds; images/s is the median over "
        "its complete trials. Below each table, pairwise two-sided Mann-Whitney U tests on the trials' FIDs: "
        "p(A better) is the chance that a trial of A beats one of B, rank-biserial = 2 p(A better) - 1, "
        "q is the Benjamini-Hochberg adjusted p-value. With few trials per variant, p cannot be small: "
        "read the effect size.",
        tables=tuple(summary),
    ))
    sections.append(Section(
        "quality", "1. Quality: FID over all trials",
        "Each point is one trial (a sampled configuration, FID averaged over its seeds); boxes show quartiles. "
        "A variant whose box sits lower reaches better FIDs across its search space, not only at its best "
        "(Lucic et al. 2018, figure 4). Lower is better; the axis is logarithmic where values span a decade.",
        **_figure(out, "quality", figures.draw(lambda: figures.quality(data, colors))),
    ))
    sections.append(Section(
        "budget", "2. Budget: expected best FID after k trials",
        "For each budget of k trials, the best FID among k trials drawn at random from all the variant's "
        "finished trials (mean over 1000 draws; band: 95% of draws). Diverged and pruned trials are draws "
        "that found nothing, so a variant that often fails needs a larger budget. A curve that drops fast "
        "needs little tuning; where curves cross, the better variant depends on the tuning budget.",
        **_figure(out, "budget", figures.draw(lambda: figures.budget(data, colors))),
    ))
    sections.append(Section(
        "curves", "3. Learning curves of the best configurations",
        "FID measured during training for each variant's best configuration; the line is the mean over "
        "seeds and the band spans the best to the worst seed. A curve still falling at the end wanted more "
        "steps; one that rises again shows training going wrong after a good start.",
        **_figure(out, "learning_curves", figures.draw(lambda: figures.learning_curves(results, data, colors))),
    ))
    if len(results.repeats):
        repeated = [Table(g.label, tables.repeats_display(tables.repeats(t))) for g, t in tables.groups(results.repeats)]
        seeds = results.settings.get("repeat_seeds") if results.settings else None
        sections.append(Section(
            "repeat", "3b. Repeat: each best configuration on new seeds",
            "Lucic et al.'s phase 3: each variant's best configuration of the search trained again on "
            + (f"{seeds} " if seeds else "") + "seeds the search did not use, each run scored as the search scored "
            "its trials. The mean is the variant's expected FID at its best setting, free of the luck that picked "
            "it; the std is what one run of it can land on. The interval is a bootstrap 95% CI of the mean with "
            f"at least {tables.MIN_CI_VALUES} runs, else the runs' range.",
            tables=tuple(repeated),
        ))
    stability = [Table(g.label, tables.stability_display(tables.stability(t))) for g, t in data]
    sections.append(Section(
        "stability", "4. Stability: seeds, divergence and coverage",
        "Left: the best configuration of each variant re-run with different seeds (dots), with the mean (black) "
        f"and the range of the seeds, or with at least {tables.MIN_CI_VALUES} seeds a bootstrap 95% CI of the "
        "mean; each panel's title says which. A wide spread means a single run of this variant says little. "
        "Last: the share of finished trials that diverged (non-finite losses or parameters), drawn where any "
        "did; else a line under the panels says none did. The tables give the seed standard deviation and "
        "interval, the diverged seeds, and the mean share of log points where D was saturated (D(x) > 0.99 and "
        "D(G(z)) < 0.01).",
        **_figure(out, "stability", figures.draw(lambda: figures.seed_spread(data, colors))),
        tables=tuple(stability),
    ))
    mode_tables = _mode_tables(results, data, totals)
    sections.append(Section(
        "coverage", "4b. Mode and class coverage",
        "Each point is one complete trial, its coverage the mean over its seeds. On 2D mixtures (ring8, grid25, "
        "pacgan-ring): the modes nearest to at least one high-quality sample, a sample within 3 standard "
        "deviations of its nearest mode's centre, as VEEGAN and PacGAN count them" + _mode_rule_note(trials)
        + ". On labelled images: classes the domain classifier finds among the generated samples. The dashed "
        "line is the number the data has; a variant below it drops modes (mode collapse)."
        + (MODE_TABLE_CAPTION if mode_tables else ""),
        **_figure(out, "coverage", figures.draw(lambda: figures.coverage(data, colors, totals))),
        tables=mode_tables,
    ))
    bench = _bench_table(results)
    sections.append(Section(
        "throughput", "5. Throughput",
        "Training images per second per variant and dataset, one row of panels per device (warm-up "
        "excluded; on CUDA timed with synchronised events). Peak memory is CUDA's max allocated; on the CPU "
        "the trainer can only read the whole process's peak RSS, which is no variant's cost and is not drawn. "
        "Compare bars of one device only; each panel names its device and torch version."
        + (" The table below is `ganzoo bench` (results/bench/): ganzoo's trainer against a plain PyTorch "
           "tutorial loop on the same G and D, timed in turns in one run; its rows name the dataset, batch "
           "size and device they were timed on." if bench is not None else ""),
        **_figure(out, "throughput", figures.draw(lambda: figures.throughput(trials, colors))),
        tables=(Table("ganzoo bench: images/s, ganzoo vs the tutorial loop", bench),) if bench is not None else (),
    ))
    made = figures.draw(lambda: figures.importance(data, colors))
    importance_notes: tuple[str, ...] = ()
    if not isinstance(made, str):
        made, notes = made
        importance_notes = tuple(notes)
    sections.append(Section(
        "sensitivity", "6. Sensitivity to hyperparameters",
        "FID of each complete trial against the searched parameters (learning rate and beta1 first). A "
        "variant whose points stay low across a wide range is robust; a narrow valley means careful tuning.",
        **_figure(out, "sensitivity", figures.draw(lambda: figures.sensitivity(data, colors))),
    ))
    sections.append(Section(
        "importance", "6b. Hyperparameter importances",
        "Optuna's fANOVA importances: the share of the FID variance across complete trials that each "
        "parameter explains, per variant. Computed from few trials they are rough; read them with the "
        "scatter above.",
        **_figure(out, "importance", made), notes=importance_notes,
    ))
    sections.append(Section(
        "samples", "7. Samples from the best runs",
        "Generated samples of the first seed of each variant's best configuration at the end of training; on "
        "2D points, the samples (blue) over the real data (grey) and any true mode centres (red crosses).",
        **_figure(out, "samples", figures.draw(lambda: figures.samples(results, data))),
    ))
    return sections


MODE_TABLE_CAPTION = (
    " The tables below give, per variant, the measures of PacGAN's and VEEGAN's tables over the runs "
    "(seeds) of its best complete trial (lowest mean FID; in the mode-collapse presets, pacgan-2d, veegan-2d "
    "and their quick versions, a variant's only configuration): the modes covered, of the K the data has; the share of "
    "generated samples that are high quality; and PacGAN's reverse KL, KL(p || u) in nats between the "
    "distribution p of the high-quality samples over the modes and the uniform u over the K modes (0 when "
    "every mode has its share, log K when one mode has all; undefined for a run with no high-quality sample, "
    "which its mean then leaves out and its cell says so). Each is the mean ± standard error over the runs, "
    "the sample standard deviation (ddof 1) over sqrt(n) for n runs, as PacGAN (10 runs) and VEEGAN (5) give "
    "theirs; a single run shows its value alone.")


def _mode_tables(results: StudyResults, data: list[tuple[tables.Group, pd.DataFrame]],
                 totals: dict[str, int | None]) -> tuple[Table, ...]:
    """A mode-coverage table per group scored on a mixture's modes; none for image data."""
    out = []
    for g, t in data:
        if not coverage.has_modes(t):
            continue
        table = coverage.mode_table(t, run_metrics(results, tables.best_trials(t)))
        out.append(Table(f"Mode coverage, {g.dataset} ({g.n_samples:,} samples per run)",
                         coverage.mode_table_display(table, totals.get(g.dataset))))
    return tuple(out)


def _mode_rule_note(trials: pd.DataFrame) -> str:
    """What the coverage figure counts where a study asked for the 1% rule (ganzoo.evaluate.modes)."""
    rules = set(trials["mode_rule"].dropna()) if "mode_rule" in trials else set()
    if "one-percent" in rules:
        return ("; this study counts a mode only with 1% of the samples at it (mode_rule one-percent), which "
                "cannot be set beside the papers' numbers")
    return ""


def _reference_section(results: StudyResults) -> Section | None:
    """The published protocol the study follows, choice by choice, where its preset names one."""
    from ganzoo import protocols
    if not results.settings or not results.protocol:
        return None
    found = protocols.reference_table(protocols.Context(results.settings, results.protocol))
    if found is None:
        return None
    reference, rows = found
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows]).drop(columns=["moves", "may_move"]).rename(columns={"value": "ganzoo"})
    return Section(
        "protocol", f"0. Protocol: {reference.title}",
        f"Each choice of the published protocol, ganzoo's value as this study ran it, the reference's value and "
        f"the file it is read from ({reference.code}), and whether ganzoo follows it, deviates on purpose (why), "
        "or differs because the study's settings moved away from it.",
        tables=(Table("protocol", frame),))


def _published_section(results: StudyResults, out: Path) -> Section | None:
    """The paper's own numbers beside ganzoo's, row by row, where the study follows a paper (ganzoo.report.published);
    the rows, every number, go to ``out``/published.csv."""
    made = published.comparison(results)
    if made is None:
        return None
    frame, notes = made
    title = "0b. Published vs ganzoo"
    if frame.empty:
        return Section("published", title, notes[0])
    rundir.atomic_write(out / published.PUBLISHED_CSV, lambda f: f.write(frame.to_csv(index=False).encode()))
    paper = frame.iloc[0]
    return Section(
        "published", title,
        f"Each value {paper['paper']} printed ({paper['where']}; {paper['evaluation']}), beside ganzoo's "
        "measurement of the same row in the paper's unit: the mean ± standard error over ganzoo's runs (the "
        "repeat phase's seeds where the study has one, else the seeds of the row's trial). The same rows, with "
        f"every number, are in {published.PUBLISHED_CSV}.",
        tables=(Table("published vs ganzoo", published.display(frame)),), notes=tuple(notes))


def _bench_table(results: StudyResults) -> pd.DataFrame | None:
    """``ganzoo bench`` results beside the study folder (results/bench/throughput.csv), if any."""
    from ganzoo.checks.bench import BENCH_CSV

    if results.study_dir is None or not (path := results.study_dir.parent / "bench" / BENCH_CSV).exists():
        return None
    frame = pd.read_csv(path)

    def column(name: str, show: Callable[[Any], str] = str, absent: str = "not recorded") -> list[str]:
        # Older throughput.csv files lack some columns (the dataset before it was written): say so.
        if name not in frame:
            return [absent] * len(frame)
        return [show(x) if pd.notna(x) else fmt.MISSING for x in frame[name]]

    return pd.DataFrame({
        "variant": column("variant"),
        "dataset": column("dataset"),
        "batch size": column("batch_size", fmt.integer),
        "device": column("device"),
        "loop": column("loop"),
        "images/s": column("images_per_second", fmt.count),
        "speedup vs tutorial": column("speedup_vs_baseline", lambda x: f"x{x:.2f}"),
        "torch": column("torch"),
        "fast paths": column("fast_paths"),
    })


def header(results: StudyResults) -> list[str]:
    trials = results.trials
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    done = sum(counts.get(s, 0) for s in ("complete", "pruned", "diverged"))
    requested = results.n_requested
    progress = f"{done} of {requested} requested trials finished" if requested else f"{done} trials finished"
    detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines = [f"Study **{results.name}**, read from `{results.source}`.",
             f"{progress} ({detail or 'none yet'})" + (" — the study is still running; this is a snapshot."
                                                        if counts.get("running") else ".")]
    s = results.settings
    if s and results.protocol:
        from ganzoo import protocols
        lines += protocols.summary(protocols.Context(s, results.protocol))
        if s.get("conditions"):
            cells = "; ".join(f"+{label}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in settings.items())
                              for label, settings in s["conditions"].items())
            lines.append(f"Each variant ran under every condition, a study of its own (VARIANT+LABEL): {cells}.")
    elif s:  # a study of a ganzoo before 0.2, which stored no protocol records
        budget = f"{s['epochs']} epochs" if s.get("epochs") else f"{s['steps']} steps"
        ev = s.get("evaluation", {})
        lines.append(
            f"Protocol: {s['sampler']} search over the {s['space']} space, {s['n_trials']} trials per "
            f"(variant, dataset), {s['seeds']} seed(s) each, {budget} at batch {s['batch_size']}, "
            f"architecture {s.get('arch') or 'of each variant'}, pruner {s['pruner']}"
            + (f", also searched: {', '.join(s['extra_space'])}" if s.get("extra_space") else "")
            + f"; FID on {ev.get('n_samples', '?')} generated samples against the {ev.get('split', 'test')} "
            + "split, by " + ("the extractor each dataset's table names." if ev.get("features") == "auto"
                             else f"{ev.get('features')} features."))
        if s.get("conditions"):
            cells = "; ".join(f"+{label}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in settings.items())
                              for label, settings in s["conditions"].items())
            lines.append(f"Each variant ran under every condition, a study of its own (VARIANT+LABEL): {cells}.")
    if len(trials) and "device" in trials:
        devices = trials[["device", "torch"]].dropna().drop_duplicates()
        lines.append("Measured on " + "; ".join(f"{d} (torch {t})" for d, t in devices.itertuples(index=False)) + ".")
    if len(trials) and "extractor_precision" in trials and trials["extractor_precision"].notna().any():
        parts = []
        for precision, rows in trials.groupby("extractor_precision"):
            speed = rows["extraction_images_per_second"].median() if "extraction_images_per_second" in rows else None
            parts.append(f"{precision}" + (f" at a median {fmt.count(speed)} generated images/s" if pd.notna(speed) else ""))
        lines.append("Feature extraction: " + "; ".join(parts) + "; statistics in float64.")
    if len(trials) and "g_ema_decay" in trials and (trials["g_ema_decay"] > 0).any():
        averaged = trials[trials["g_ema_decay"] > 0]
        decays = ", ".join(f"{d:g}" for d in sorted(averaged["g_ema_decay"].unique()))
        lines.append(f"{len(averaged)} of {len(trials)} trials were scored on a moving average of G's weights "
                     f"(decay {decays}), the others on G itself.")
    return lines


_NUMBER = re.compile(r"^(< )?-?x?[\d,]*\.?\d+$")


def _table_markdown(table: pd.DataFrame) -> str:
    # Cells are already formatted: tabulate must not parse them again ("0.10" would become "0.1").
    align = ["right" if all(c == fmt.MISSING or _NUMBER.match(str(c)) for c in table[name]) else "left"
             for name in table.columns]
    return table.to_markdown(index=False, disable_numparse=True, colalign=align)


def _markdown(results: StudyResults, sections: list[Section]) -> str:
    parts = [f"# ganzoo report: {results.name}", "", *[f"{line}  " for line in header(results)], ""]
    for s in sections:
        parts += [f"## {s.title}", "", s.caption, ""]
        if s.figure is not None:
            parts += [f"![{s.title}]({s.figure.as_posix()})", ""]
        if s.missing:
            parts += [f"> **No figure:** {s.missing}", ""]
        for t in s.tables:
            parts += [f"**{t.title}**", ""]
            if t.lead:
                parts += [f"> **Warning:** {t.lead}" if t.warning else f"**Verdict:** {t.lead}", ""]
            parts += [_table_markdown(t.frame) if len(t.frame) else "_(no rows: nothing to compare yet)_", ""]
        parts += [f"- {note}" for note in s.notes] + ([""] if s.notes else [])
    return "\n".join(parts)


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
img { max-width: 100%; } .caption { color: #444; } .missing { background: #fff4e5; padding: .6em; }
.verdict { font-weight: 600; } .warning { background: #fdecea; border-left: 4px solid #c62828; padding: .6em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; } th { background: #f0f0f0; }
td { white-space: nowrap; }  /* an interval "[139.1, 182.1]" reads as one value */
td:first-child, th:first-child { text-align: left; }
"""


def _html(results: StudyResults, sections: list[Section], out: Path) -> str:
    def esc(text: str) -> str:
        return html.escape(text).replace("**", "")

    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>ganzoo report: {esc(results.name)}</title><style>{CSS}</style></head><body>",
             f"<h1>ganzoo report: {esc(results.name)}</h1>"]
    parts += [f"<p>{esc(line).replace('`', '')}</p>" for line in header(results)]
    parts.append("<nav><ul>" + "".join(f"<li><a href='#{s.key}'>{esc(s.title)}</a></li>" for s in sections)
                 + "</ul></nav>")
    for s in sections:
        parts += [f"<section id='{s.key}'><h2>{esc(s.title)}</h2>", f"<p class='caption'>{esc(s.caption)}</p>"]
        if s.figure is not None:
            encoded = base64.b64encode((out / s.figure).read_bytes()).decode()
            parts.append(f"<img class='figure' alt='{esc(s.title)}' src='data:image/png;base64,{encoded}'>")
        if s.missing:
            parts.append(f"<p class='missing'><strong>No figure:</strong> {esc(s.missing)}</p>")
        for t in s.tables:
            parts.append(f"<h3>{esc(t.title)}</h3>")
            if t.lead:
                parts.append(f"<p class='warning'><strong>Warning:</strong> {esc(t.lead)}</p>" if t.warning
                             else f"<p class='verdict'>Verdict: {esc(t.lead)}</p>")
            parts.append(t.frame.to_html(index=False, na_rep="—", classes=f"{s.key}-table", border=0)
                         if len(t.frame) else "<p><em>(no rows: nothing to compare yet)</em></p>")
        if s.notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in s.notes) + "</ul>")
        parts.append("</section>")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<footer><p>Written by ganzoo report on {stamp}.</p></footer></body></html>")
    return "\n".join(parts)


def write_report(source: str | Path, out: Path | None = None, study: str | None = None) -> Path:
    """Read a study (folder, trials.csv or PostgreSQL URL + ``study``) and write its report to ``out``
    (default: the study folder). Never trains. Returns the path of report.html."""
    results = load(str(source), study)
    out = Path(out) if out is not None else (results.study_dir or Path("results") / results.name)
    out.mkdir(parents=True, exist_ok=True)
    sections = build_sections(results, out)
    frames = [tables.summary(t).assign(dataset=g.dataset, extractor=g.extractor, n_samples=g.n_samples)
              for g, t in tables.groups(results.trials)]
    summary = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    rundir.atomic_write(out / SUMMARY_CSV, lambda f: f.write(summary.to_csv(index=False).encode()))
    rundir.atomic_write(out / REPORT_MD, lambda f: f.write(_markdown(results, sections).encode()))
    rundir.atomic_write(out / REPORT_HTML, lambda f: f.write(_html(results, sections, out).encode()))
    return out / REPORT_HTML
