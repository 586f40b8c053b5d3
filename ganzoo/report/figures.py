"""The report's figures, drawn with seaborn from the tables of ``ganzoo.report.tables``.

Every function takes the groups of a study (one panel each) and returns a matplotlib figure, or
raises ``Missing`` with the reason the figure cannot be drawn, which the report prints in its place.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ganzoo.core import rundir  # noqa: E402
from ganzoo.report import tables  # noqa: E402
from ganzoo.report.load import StudyResults  # noqa: E402
from ganzoo.report.tables import Group  # noqa: E402

GroupData = Sequence[tuple[Group, pd.DataFrame]]
PANEL = (4.8, 3.8)
SAMPLES_GLOB = rundir.SAMPLES_GLOB


class Missing(Exception):
    """A figure that cannot be drawn from what the study holds; the message says why."""


def _panels(n: int, ncols: int | None = None, size: tuple[float, float] = PANEL) -> tuple[Figure, list[Any]]:
    ncols = ncols or min(n, 3)
    nrows = math.ceil(n / ncols)
    # Constrained layout makes room for a legend outside the panels (fig.legend(loc="outside ...")).
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _variant_legend(fig: Figure, axes: Sequence[Any], colors: dict[str, Any], names: Sequence[str]) -> None:
    """One legend of the variants drawn, outside the panels, where it hides no bar or point."""
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    shown = sorted(set(names))
    if shown:
        shapes = markers(colors)
        handles = [Line2D([], [], color=colors[v], marker=shapes[v], markerfacecolor=colors[v], linestyle="none",
                          markersize=7) for v in shown]
        fig.legend(handles, shown, loc="outside right upper", title="variant", fontsize=8)


def _say(ax: Any, text: str, title: str = "") -> None:
    """Text in place of a chart that would be empty or misleading."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, textwrap.fill(text, 42), ha="center", va="center", transform=ax.transAxes, fontsize=10,
            color="#444")
    if title:
        ax.set_title(title)


def _wide(values: Any) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return len(v) > 1 and v.min() > 0 and v.max() / v.min() > 10


def _variants(trials: pd.DataFrame) -> list[str]:
    return sorted(trials["variant"].unique())


# A qualitative palette that stays distinct under the common colour-vision deficiencies: Okabe and Ito's
# eight (2008, black last), then Paul Tol's "muted" wine and olive; hex, as the sources print them.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#882255", "#999933")
# A marker per variant too, so that points tell variants apart without colour: 11 of them, coprime to the
# palette's 10, so that no two of a study's first 110 variants share both.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h")


def palette(trials: pd.DataFrame) -> dict[str, Any]:
    """One colour per variant of the study, the same in every figure of its report: the study's variants in
    sorted order take the palette's colours in turn, so no two of its first ten share one (a colour fixed
    per registered variant would repeat among twenty registered ones: dcgan's orange and nsgan's tan)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(_variants(trials))}


def markers(colors: dict[str, Any]) -> dict[str, str]:
    """Each variant's marker, in the order ``palette`` gave the colours."""
    return {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(colors)}


def _strip(ax: Any, data: pd.DataFrame, y: str, order: Sequence[str], colors: dict[str, Any], **kw: Any) -> None:
    """A strip plot of ``y`` per variant, each in its colour and marker (seaborn's takes one marker)."""
    shapes = markers(colors)
    for variant in order:
        mine = data[data["variant"] == variant]
        if len(mine):
            sns.stripplot(data=mine, x="variant", y=y, order=order, color=colors[variant], marker=shapes[variant],
                          ax=ax, legend=False, **kw)


def quality(data: GroupData, colors: dict[str, Any]) -> Figure:
    shown = [(g, tables.complete(t)) for g, t in data]
    shown = [(g, t) for g, t in shown if len(t)]
    if not shown:
        raise Missing("no trial has completed with an FID yet")
    fig, axes = _panels(len(shown))
    for ax, (group, done) in zip(axes, shown):
        order = _variants(done)
        sns.boxplot(data=done, x="variant", y="fid_mean", hue="variant", order=order, palette=colors,
                    ax=ax, showfliers=False, boxprops={"alpha": 0.35}, legend=False, saturation=1)
        _strip(ax, done, "fid_mean", order, colors, size=5, jitter=0.15, edgecolor="black", linewidth=0.5)
        if _wide(done["fid_mean"]):
            ax.set_yscale("log")
        ax.set(title=group.title, xlabel="", ylabel="FID (mean over seeds)")
    return fig


def budget(data: GroupData, colors: dict[str, Any]) -> Figure:
    curves = [(g, tables.expected_best(t)) for g, t in data]
    curves = [(g, c) for g, c in curves if len(c)]
    if not curves:
        raise Missing("no trial has completed with an FID yet")
    fig, axes = _panels(len(curves))
    for ax, (group, curve) in zip(axes, curves):
        for variant, rows in curve.groupby("variant", sort=True):
            ax.plot(rows["k"], rows["expected_best"], marker=markers(colors)[variant], color=colors[variant],
                    label=variant)
            ax.fill_between(rows["k"], rows["low"], rows["high"], color=colors[variant], alpha=0.2, linewidth=0)
        if _wide(curve[["low", "high"]].to_numpy().ravel()):
            ax.set_yscale("log")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(title=group.title, xlabel="trials k (budget)", ylabel="expected best FID")
    _variant_legend(fig, axes, colors, [v for _, c in curves for v in c["variant"]])
    return fig


def _in_d_updates(results: StudyResults) -> bool:
    """Whether the study's budget counts D updates: curves are drawn against them then, so that trials of
    other n_critic are compared at equal compute."""
    return bool(results.settings and results.settings.get("budget") == "d_updates")


def learning_curves_frame(results: StudyResults, data: GroupData) -> tuple[pd.DataFrame, list[str]]:
    """FID against the budget spent (steps, or D updates where the study counts them) for every seed of
    each variant's best configuration, per group."""
    d_updates = _in_d_updates(results)
    rows, missing = [], []
    for group, trials in data:
        for _, best in tables.best_trials(trials).iterrows():
            for seed, recorded in enumerate(best["run_dirs"]):
                run_dir = results.run_dir(recorded)
                if run_dir is None:
                    missing.append(recorded)
                    continue
                for m in rundir.read_jsonl(run_dir / "metrics.jsonl"):
                    if m.get("fid") is None or m.get("extractor") != group.extractor or m.get("n_samples") != group.n_samples:
                        continue
                    x = m.get("d_updates", m["step"]) if d_updates else m["step"]
                    rows.append({"group": group.label, "variant": best["variant"], "seed": seed, "step": x,
                                 "fid": m["fid"]})
    return pd.DataFrame(rows, columns=["group", "variant", "seed", "step", "fid"]), missing


def learning_curves(results: StudyResults, data: GroupData, colors: dict[str, Any]) -> Figure:
    frame, missing = learning_curves_frame(results, data)
    if frame.empty:
        if all(tables.complete(t).empty for _, t in data):
            raise Missing("no trial has completed with an FID yet")
        why = (f"the run directories of the best trials are not here ({len(missing)} missing, e.g. {missing[0]}); "
               "copy the study's runs/ folder next to it to draw them") if missing else \
            "no best trial has FID evaluations during training (set eval_every in the preset)"
        raise Missing(why)
    shown = [g for g, _ in data if g.label in set(frame["group"])]
    fig, axes = _panels(len(shown))
    for ax, group in zip(axes, shown):
        rows = frame[frame["group"] == group.label]
        # Seeds as a band: the line is their mean, the band spans min to max.
        sns.lineplot(data=rows, x="step", y="fid", hue="variant", style="variant", palette=colors,
                     markers=markers(colors), dashes=False, errorbar=("pi", 100), ax=ax)
        if _wide(rows["fid"]):
            ax.set_yscale("log")
        ax.set(title=group.title, xlabel="D updates" if _in_d_updates(results) else "training step", ylabel="FID")
    _variant_legend(fig, axes, colors, frame["variant"].tolist())
    return fig


def seed_spread(data: GroupData, colors: dict[str, Any]) -> Figure:
    rows = []
    for group, trials in data:
        for _, best in tables.best_trials(trials).iterrows():
            for seed, fid in enumerate(best["fid_per_seed"]):
                if fid is not None:
                    rows.append({"group": group.label, "variant": best["variant"], "seed": seed, "fid": fid})
    frame = pd.DataFrame(rows, columns=["group", "variant", "seed", "fid"])
    if frame.empty and all(tables.finished(t).empty for _, t in data):
        raise Missing("no trial has finished yet")
    labels = list(dict.fromkeys(frame["group"]))
    titles = {g.label: g.title for g, _ in data}
    diverged = any((tables.finished(t)["status"] == "diverged").any() for _, t in data)
    if not labels and not diverged:
        raise Missing("no finished trial has a complete best configuration, and none diverged")
    fig, axes = _panels(len(labels) + int(diverged))
    for ax, label in zip(axes, labels):
        rows_g = frame[frame["group"] == label]
        order = sorted(rows_g["variant"].unique())
        # The same rule as the tables: with few seeds a bootstrap CI is only their range, so say range.
        few = int(rows_g.groupby("variant").size().min()) < tables.MIN_CI_VALUES
        _strip(ax, rows_g, "fid", order, colors, size=6, jitter=0.1, alpha=0.6)
        sns.pointplot(data=rows_g, x="variant", y="fid", order=order, color="black",
                      errorbar=("pi", 100) if few else ("ci", 95), seed=0, linestyle="none", markers="_",
                      capsize=0.2, ax=ax)
        what = "range" if few else "bootstrap 95% CI"
        ax.set(title=f"{titles[label]}\nbest configuration's seeds: mean and {what}", xlabel="", ylabel="FID")
    if diverged:
        _divergence(axes[-1], data, colors)
    else:  # a chart of zero-height bars says nothing: say it
        finished = sum(len(tables.finished(t)) for _, t in data)
        fig.supxlabel(f"No trial diverged ({finished} finished trials).", fontsize=11)
    return fig


def _divergence(ax: Any, data: GroupData, colors: dict[str, Any]) -> None:
    rows = []
    for group, trials in data:
        done = tables.finished(trials)
        for variant, mine in done.groupby("variant"):
            rows.append({"dataset": group.dataset, "variant": variant,
                         "divergence rate": float((mine["status"] == "diverged").mean())})
    frame = pd.DataFrame(rows, columns=["dataset", "variant", "divergence rate"])
    sns.barplot(data=frame, x="dataset", y="divergence rate", hue="variant", order=sorted(frame["dataset"].unique()),
                hue_order=sorted(frame["variant"].unique()), palette=colors, saturation=1, ax=ax)
    for bars in ax.containers:  # a rate of 0 draws no bar: print the numbers
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set(ylim=(0, 1.05), title="share of finished trials that diverged", xlabel="")
    ax.legend(title="variant", fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def coverage(data: GroupData, colors: dict[str, Any], totals: dict[str, int | None]) -> Figure:
    panels = []
    for group, trials in data:
        done = tables.complete(trials)
        for column, what in (("modes_covered", "modes covered"), ("classes_covered", "classes covered")):
            if column in done and done[column].notna().any():
                panels.append((group, done.dropna(subset=[column]), column, what))
    if not panels:
        raise Missing("no dataset of this study measures coverage: modes need ring8 or grid25, classes need a "
                      "labelled image dataset evaluated with the domain extractor")
    fig, axes = _panels(len(panels))
    for ax, (group, done, column, what) in zip(axes, panels):
        order = _variants(done)
        _strip(ax, done, column, order, colors, size=6, jitter=0.15, edgecolor="black", linewidth=0.5)
        total = totals.get(group.dataset)
        if total:
            ax.axhline(total, color="gray", linestyle="--", linewidth=1)
            ax.set_ylim(-0.5, total + 0.5)
        seeds = max(tables.seeds_measured(row) for _, row in done.iterrows())
        mean = ", mean over seeds" if seeds > 1 else ""  # 1.5 classes is a mean, not a count
        ax.set(title=group.title, xlabel="", ylabel=what + (f" (of {total})" if total else "") + mean)
    return fig


CPU_MEMORY = ("Peak memory per run is not measured on the CPU: the trainer can only read the whole "
              "process's peak RSS, shared by every run of the sweep, so it is no variant's cost.")


def memory_kind(trials: pd.DataFrame) -> pd.Series:
    """What each trial's peak_memory_bytes measured. The trainer records it per run; a trial row without
    it is told by its device, as the trainer decides: CUDA's max allocated on a CUDA device, else the
    process's peak RSS (device names of non-CUDA devices start with "cpu")."""
    guessed = trials["device"].map(lambda d: None if not isinstance(d, str) else
                                   "process_max_rss" if d.startswith("cpu") else "cuda_max_allocated")
    if "peak_memory_kind" not in trials:
        return guessed
    return trials["peak_memory_kind"].where(trials["peak_memory_kind"].notna(), guessed)


def throughput(trials: pd.DataFrame, colors: dict[str, Any]) -> Figure:
    done = tables.complete(trials)
    if done.empty or done["train_images_per_second"].isna().all():
        raise Missing("no complete trial recorded its throughput")
    done = done.assign(peak_memory_mib=done["peak_memory_bytes"] / 2**20, memory_kind=memory_kind(done),
                       device=done["device"].fillna("unknown device"), torch=done["torch"].fillna("?"))
    devices = list(dict.fromkeys(done["device"]))
    fig, axes = _panels(2 * len(devices), ncols=2)
    order = _variants(done)
    datasets = sorted(done["dataset"].unique())
    for device, (speed, memory) in zip(devices, zip(axes[::2], axes[1::2])):
        rows = done[done["device"] == device]
        versions = ", ".join(sorted(rows["torch"].unique()))
        sns.barplot(data=rows, x="dataset", y="train_images_per_second", hue="variant", order=datasets,
                    hue_order=order, palette=colors, errorbar="sd", ax=speed, saturation=1)
        speed.set(xlabel="", ylabel="training images/s", title=f"{device}, torch {versions}")
        measured = rows[rows["memory_kind"] == "cuda_max_allocated"]
        if measured["peak_memory_mib"].notna().any():
            sns.barplot(data=measured, x="dataset", y="peak_memory_mib", hue="variant", order=datasets,
                        hue_order=order, palette=colors, errorbar="sd", ax=memory, saturation=1)
            memory.set(xlabel="", ylabel="peak memory (MiB, CUDA max allocated)", title=f"{device}")
        elif (rows["memory_kind"] == "process_max_rss").any():
            _say(memory, CPU_MEMORY, f"peak memory: {device}")
        else:
            _say(memory, "No complete trial recorded its peak memory on this device.", f"peak memory: {device}")
    _variant_legend(fig, axes, colors, done["variant"].tolist())
    fig.suptitle("bars: mean over complete trials, whiskers: sd", fontsize=9)
    return fig


def _param_label(column: str) -> str:
    return column.removeprefix("params_")


def sensitivity(data: GroupData, colors: dict[str, Any]) -> Figure:
    panels = []
    for group, trials in data:
        done = tables.complete(trials)
        params = tables.param_columns(done)
        # Learning rate and beta1 first: the two Lucic et al. found to matter most.
        params.sort(key=lambda c: (c not in ("params_adam.lr", "params_adam.beta1"), c))
        panels += [(group, done, column) for column in params[:4]]
    if not panels:
        raise Missing("no searched parameter took more than one value among the complete trials "
                      "(a narrow space, a fixed preset or too few trials)")
    fig, axes = _panels(len(panels), ncols=min(len(panels), 4), size=(4.2, 3.6))
    for ax, (group, done, column) in zip(axes, panels):
        numeric = pd.api.types.is_numeric_dtype(done[column]) and not pd.api.types.is_bool_dtype(done[column])
        x = done[column] if numeric else done[column].astype(str)
        sns.scatterplot(x=x, y=done["fid_mean"], hue=done["variant"], style=done["variant"], palette=colors,
                        markers=markers(colors), ax=ax, s=40, edgecolor="black", linewidth=0.4)
        if numeric and _wide(done[column]):
            ax.set_xscale("log")
        elif numeric:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        if _wide(done["fid_mean"]):
            ax.set_yscale("log")
        ax.set(title=group.title, xlabel=_param_label(column), ylabel="FID")
    _variant_legend(fig, axes, colors, [v for _, done, _ in panels for v in done["variant"]])
    return fig


def importance(data: GroupData, colors: dict[str, Any]) -> tuple[Figure, list[str]]:
    panels, notes = [], []
    for group, trials in data:
        frame, why = tables.importances(trials)
        notes += [f"{group.dataset}: {w}" for w in why]
        if len(frame):
            panels.append((group, frame))
    if not panels:
        raise Missing("; ".join(notes) or "no complete trials")
    fig, axes = _panels(len(panels))
    for ax, (group, frame) in zip(axes, panels):
        sns.barplot(data=frame, x="importance", y="parameter", hue="variant", palette=colors, ax=ax, saturation=1)
        ax.set(title=group.title, xlim=(0, 1), xlabel="fANOVA importance (share of FID variance)", ylabel="")
    _variant_legend(fig, axes, colors, [v for _, frame in panels for v in frame["variant"]])
    return fig, notes


def final_samples(results: StudyResults, data: GroupData) -> tuple[list[tuple[Group, str, Path]], list[str]]:
    """The last sample picture of the first seed of each variant's best trial, per group."""
    found, missing = [], []
    for group, trials in data:
        for _, best in tables.best_trials(trials).iterrows():
            run_dir = results.run_dir(best["run_dirs"][0]) if best["run_dirs"] else None
            pictures = sorted(run_dir.glob(SAMPLES_GLOB), key=_step) if run_dir else []
            if pictures:
                found.append((group, best["variant"], pictures[-1]))
            else:
                missing.append(f"{best['variant']}@{group.dataset}")
    return found, missing


def _step(path: Path) -> int:
    match = re.search(r"(\d+)", path.stem)
    return int(match.group(1)) if match else -1


def samples(results: StudyResults, data: GroupData) -> Figure:
    found, missing = final_samples(results, data)
    if not found:
        raise Missing(f"the sample pictures of the best runs are not here ({', '.join(missing) or 'no best trial'})")
    labels = list(dict.fromkeys(g.label for g, _, _ in found))
    variants = sorted({v for _, v, _ in found})
    fig, axes = plt.subplots(len(labels), len(variants), figsize=(3.4 * len(variants), 3.6 * len(labels)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for group, variant, path in found:
        ax = axes[labels.index(group.label), variants.index(variant)]
        ax.imshow(plt.imread(path), interpolation="nearest")
        ax.set_title(f"{variant} on {group.dataset}, {path.stem.replace('samples_', 'step ')}", fontsize=9)
    fig.tight_layout()
    return fig


def save(fig: Figure, folder: Path, name: str) -> Path:
    """``name``.png and ``name``.svg, each written whole (temporary file, then rename)."""
    for ext in ("png", "svg"):
        rundir.atomic_write(folder / f"{name}.{ext}", lambda f, ext=ext: fig.savefig(f, format=ext, dpi=110))
    plt.close(fig)
    return folder / f"{name}.png"


def draw(make: Callable[[], Figure]) -> Figure | str:
    """The figure, or the reason it is missing."""
    try:
        return make()
    except Missing as e:
        plt.close("all")
        return str(e)
    except Exception as e:  # one figure that fails must not cost the reader the whole report
        plt.close("all")
        return f"this figure could not be drawn ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
