"""The report's figures, drawn with seaborn from the tables of ``ganzoo.report.tables``.

Every function takes the groups of a study (one panel each) and returns a matplotlib figure, or
raises ``Missing`` with the reason the figure cannot be drawn, which the report prints in its place.
"""

from __future__ import annotations

import math
import re
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

from ganzoo import rundir  # noqa: E402
from ganzoo.report import tables  # noqa: E402
from ganzoo.report.load import StudyResults  # noqa: E402
from ganzoo.report.tables import Group  # noqa: E402

GroupData = Sequence[tuple[Group, pd.DataFrame]]
PANEL = (4.8, 3.8)
SAMPLES_GLOB = "samples_*.png"


class Missing(Exception):
    """A figure that cannot be drawn from what the study holds; the message says why."""


def _panels(n: int, ncols: int | None = None, size: tuple[float, float] = PANEL) -> tuple[Figure, list[Any]]:
    ncols = ncols or min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _wide(values: Any) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return len(v) > 1 and v.min() > 0 and v.max() / v.min() > 10


def _variants(trials: pd.DataFrame) -> list[str]:
    return sorted(trials["variant"].unique())


def palette(trials: pd.DataFrame) -> dict[str, Any]:
    """One colour per variant, the same in every figure."""
    names = _variants(trials)
    return dict(zip(names, sns.color_palette("colorblind", len(names))))


def quality(data: GroupData, colors: dict[str, Any]) -> Figure:
    shown = [(g, tables.complete(t)) for g, t in data]
    shown = [(g, t) for g, t in shown if len(t)]
    if not shown:
        raise Missing("no trial has completed with an FID yet")
    fig, axes = _panels(len(shown))
    for ax, (group, done) in zip(axes, shown):
        order = _variants(done)
        sns.boxplot(data=done, x="variant", y="fid_mean", hue="variant", order=order, palette=colors,
                    ax=ax, showfliers=False, boxprops={"alpha": 0.35}, legend=False)
        sns.stripplot(data=done, x="variant", y="fid_mean", hue="variant", order=order, palette=colors,
                      ax=ax, size=5, jitter=0.15, edgecolor="black", linewidth=0.5, legend=False)
        if _wide(done["fid_mean"]):
            ax.set_yscale("log")
        ax.set(title=group.title, xlabel="", ylabel="FID (mean over seeds)")
    fig.tight_layout()
    return fig


def budget(data: GroupData, colors: dict[str, Any]) -> Figure:
    curves = [(g, tables.expected_best(t)) for g, t in data]
    curves = [(g, c) for g, c in curves if len(c)]
    if not curves:
        raise Missing("no trial has completed with an FID yet")
    fig, axes = _panels(len(curves))
    for ax, (group, curve) in zip(axes, curves):
        for variant, rows in curve.groupby("variant", sort=True):
            ax.plot(rows["k"], rows["expected_best"], marker="o", color=colors[variant], label=variant)
            ax.fill_between(rows["k"], rows["low"], rows["high"], color=colors[variant], alpha=0.2, linewidth=0)
        if _wide(curve[["low", "high"]].to_numpy().ravel()):
            ax.set_yscale("log")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(title=group.title, xlabel="trials k (budget)", ylabel="expected best FID")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def learning_curves_frame(results: StudyResults, data: GroupData) -> tuple[pd.DataFrame, list[str]]:
    """FID against step for every seed of each variant's best configuration, per group."""
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
                    rows.append({"group": group.label, "variant": best["variant"], "seed": seed,
                                 "step": m["step"], "fid": m["fid"]})
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
        sns.lineplot(data=rows, x="step", y="fid", hue="variant", palette=colors, errorbar=("pi", 100),
                     marker="o", ax=ax)
        if _wide(rows["fid"]):
            ax.set_yscale("log")
        ax.set(title=group.title, xlabel="training step", ylabel="FID")
    fig.tight_layout()
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
    fig, axes = _panels(len(labels) + 1)
    for ax, label in zip(axes, labels):
        rows_g = frame[frame["group"] == label]
        order = sorted(rows_g["variant"].unique())
        sns.stripplot(data=rows_g, x="variant", y="fid", hue="variant", order=order, palette=colors, ax=ax,
                      size=6, jitter=0.1, alpha=0.6, legend=False)
        sns.pointplot(data=rows_g, x="variant", y="fid", order=order, color="black", errorbar=("ci", 95),
                      seed=0, linestyle="none", markers="_", capsize=0.2, ax=ax)
        ax.set(title=f"best configuration per seed: {titles[label]}", xlabel="", ylabel="FID")
    _divergence(axes[-1], data)
    fig.tight_layout()
    return fig


def _divergence(ax: Any, data: GroupData) -> None:
    rows = []
    for group, trials in data:
        done = tables.finished(trials)
        for variant, mine in done.groupby("variant"):
            rows.append({"dataset": group.dataset, "variant": variant,
                         "divergence rate": float((mine["status"] == "diverged").mean())})
    frame = pd.DataFrame(rows, columns=["dataset", "variant", "divergence rate"])
    sns.barplot(data=frame, x="variant", y="divergence rate", hue="dataset", ax=ax,
                order=sorted(frame["variant"].unique()))
    for bars in ax.containers:  # a rate of 0 draws no bar: print the numbers
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set(ylim=(0, 1.05), title="share of finished trials that diverged", xlabel="")


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
        sns.stripplot(data=done, x="variant", y=column, hue="variant", order=order, palette=colors, ax=ax,
                      size=6, jitter=0.15, edgecolor="black", linewidth=0.5, legend=False)
        total = totals.get(group.dataset)
        if total:
            ax.axhline(total, color="gray", linestyle="--", linewidth=1)
            ax.set_ylim(-0.5, total + 0.5)
        ax.set(title=group.title, xlabel="", ylabel=what + (f" (of {total})" if total else ""))
    fig.tight_layout()
    return fig


def throughput(trials: pd.DataFrame) -> Figure:
    done = tables.complete(trials)
    if done.empty or done["train_images_per_second"].isna().all():
        raise Missing("no complete trial recorded its throughput")
    done = done.assign(peak_memory_mib=done["peak_memory_bytes"] / 2**20)
    fig, axes = _panels(2)
    order = _variants(done)
    hue = "device" if done["device"].nunique() > 1 else "dataset"
    done = done.assign(device=done["device"].fillna("unknown device"))
    for ax, column, label in ((axes[0], "train_images_per_second", "training images/s"),
                              (axes[1], "peak_memory_mib", "peak memory (MiB)")):
        sns.barplot(data=done, x="variant", y=column, hue=hue, order=order, errorbar="sd", ax=ax)
        ax.set(xlabel="", ylabel=label)
    devices = ", ".join(f"{d} (torch {t})" for d, t in
                        done[["device", "torch"]].dropna().drop_duplicates().itertuples(index=False)) or "unknown devices"
    fig.suptitle(f"on {devices}; bars: mean over complete trials, whiskers: sd", fontsize=9)
    fig.tight_layout()
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
        sns.scatterplot(x=x, y=done["fid_mean"], hue=done["variant"], palette=colors, ax=ax, s=40,
                        edgecolor="black", linewidth=0.4)
        if numeric and _wide(done[column]):
            ax.set_xscale("log")
        elif numeric:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        if _wide(done["fid_mean"]):
            ax.set_yscale("log")
        ax.set(title=group.title, xlabel=_param_label(column), ylabel="FID")
        ax.legend(fontsize=7)
    fig.tight_layout()
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
        sns.barplot(data=frame, x="importance", y="parameter", hue="variant", palette=colors, ax=ax)
        ax.set(title=group.title, xlim=(0, 1), xlabel="fANOVA importance (share of FID variance)", ylabel="")
    fig.tight_layout()
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
