"""Published vs ganzoo: each value a paper printed (``ganzoo.protocols.published``) beside ganzoo's
measurement of the same row, and a verdict a reader can check.

ganzoo's side of a row is the runs of its pair: the repeat phase's seeds where the study has one (the
paper's own repeat, as Lucic et al.'s), else the seeds of the pair's best complete trial (PacGAN and
VEEGAN run one configuration a row on several seeds), each run's final evaluation read from its folder.

The verdict is a two-sided Welch t-test at 5% of ganzoo's runs against the published mean and its
standard error (a std over n runs counts as std / sqrt(n); a value printed without a spread counts as
exact, which makes it a one-sample t-test): "consistent" where p >= 0.05, else "lower" or "higher", the
side ganzoo's mean is on. With few runs a test finds only large differences, so each row states the
difference it would find 4 times in 5 (80% power) at these spreads. A row is "not comparable" where the
study's protocol differs from the paper's in a choice that can move the numbers (a quick preset's budget,
another evaluation: the protocol table's DIFFERS rows), and "not run" where the study has no such pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ganzoo.report import coverage, tables
from ganzoo.report import formatting as fmt
from ganzoo.report.load import StudyResults, run_metrics

ALPHA, POWER = 0.05, 0.8
CONSISTENT, LOWER, HIGHER, NOT_COMPARABLE, NOT_RUN, NOT_TESTED = (
    "consistent", "lower", "higher", "not comparable", "not run", "not tested")
PUBLISHED_CSV = "published.csv"  # the rows, machine-readable, beside trials.csv
RULE = (f"Verdict: a two-sided Welch t-test at {ALPHA:.0%} of ganzoo's runs against the published mean, whose "
        "standard error is the printed one (a std over n runs counts as std / sqrt(n); a value printed without "
        "a spread counts as exact: a one-sample t-test). consistent: p >= 0.05; lower / higher: p < 0.05, the "
        "side ganzoo's mean is on. 'detectable' is the difference the test finds 4 times in 5 at these spreads "
        "(80% power): a smaller true difference may read as consistent. Not comparable: the study's protocol "
        "differs from the paper's in a choice that can move the numbers (the protocol table's rows that differ, "
        "and its deviations on purpose named as able to: the update order).")


def welch(mine: np.ndarray, published: float, published_se: float | None, published_runs: int | None
          ) -> dict[str, float]:
    """The test of ``mine`` (ganzoo's runs) against a published mean: ganzoo's mean, its standard error,
    the difference, the Welch degrees of freedom, p (two-sided) and the difference detectable at POWER.
    An exact published value (``published_se`` None) is a one-sample t-test. NaN p where it cannot be
    computed (one run); where neither side has any spread the difference is exact (p 0 or 1)."""
    from scipy import stats

    mean, se, n = coverage.mean_se(mine)
    out = {"mean": mean, "se": se, "runs": n, "difference": mean - published, "df": math.nan, "p": math.nan,
           "detectable": math.nan}
    if n < 2:
        return out
    a, b = se ** 2, (published_se or 0.0) ** 2
    if a + b == 0:  # every run the same value, and the paper's exact: the difference is what it is
        out["p"] = 1.0 if mean == published else 0.0
        return out
    # Welch-Satterthwaite; a published spread without its number of runs adds nothing to the denominator
    denominator = a ** 2 / (n - 1) + (b ** 2 / (published_runs - 1) if published_runs and published_runs > 1 else 0.0)
    df = (a + b) ** 2 / denominator if denominator else float(n - 1)
    t = (mean - published) / math.sqrt(a + b)
    out.update(df=df, p=float(2 * stats.t.sf(abs(t), df)), detectable=detectable(df) * math.sqrt(a + b))
    return out


def detectable(df: float) -> float:
    """The true difference, in standard errors, that a two-sided t-test at ALPHA finds with probability POWER,
    solved exactly (the normal approximation's 2.8 claims too much power with few runs). The power is that of
    the noncentral t, (Z + shift) / S with S^2 a chi-square over df, integrated over S: scipy's nct is NaN at the
    large shifts a test of 2 or 3 runs needs."""
    from scipy import integrate, optimize, stats

    critical = stats.t.ppf(1 - ALPHA / 2, df)
    root = math.sqrt(df)

    def power(shift: float) -> float:
        def found(s: float) -> float:  # P(|Z + shift| > critical s), at S = s
            return (stats.norm.cdf(shift - critical * s) + stats.norm.cdf(-shift - critical * s)) * \
                stats.chi.pdf(s * root, df) * root
        return integrate.quad(found, 0.0, math.inf, epsabs=1e-12, epsrel=1e-10, limit=200)[0] - POWER

    high = 3.0
    while power(high) < 0:
        high *= 1.5
    return float(optimize.brentq(power, 0.0, high, xtol=1e-10))


def verdict_of(test: dict[str, float]) -> str:
    if not math.isfinite(test["p"]):
        return NOT_TESTED
    if test["p"] >= ALPHA:
        return CONSISTENT
    return LOWER if test["difference"] < 0 else HIGHER


def unlike(rows: Sequence[object]) -> list[str]:
    """The protocol table's choices that keep the study from the paper's numbers: those that differ and can move
    them ("budget: ... here, ... in the paper"), and the deviations on purpose the table names as able to (the
    update order, until a run takes the paper's). A choice about runs the study does not have (the unrolling of
    rows it did not run) moves none of its rows."""
    from ganzoo import protocols
    from ganzoo.protocols.tables import NO_SUCH_RUN

    out = []
    for r in rows:
        if r.status.startswith(protocols.DIFFERS) and r.moves and r.value != NO_SUCH_RUN:
            out.append(f"{r.choice}: {r.value} here, {r.status.removeprefix(protocols.DIFFERS).strip(' ()')} in the paper")
        elif r.status.startswith(protocols.ON_PURPOSE) and r.may_move:
            out.append(f"{r.choice}: {r.value} here, not the paper's ({r.reference})")
    return out


def on_purpose(rows: Sequence[object]) -> list[str]:
    """The other deviations on purpose, which the table judges unable to move the numbers (each says why)."""
    from ganzoo import protocols

    return [f"{r.choice} ({r.value})" for r in rows if r.status.startswith(protocols.ON_PURPOSE) and not r.may_move]


def _runs(results: StudyResults, variant: str, dataset: str, metric: str) -> tuple[np.ndarray, str]:
    """ganzoo's runs of a pair for ``metric``, and where they come from."""
    repeats = results.repeats
    if len(repeats) and {"variant", "dataset"} <= set(repeats):
        mine = tables.complete(repeats[(repeats["variant"] == variant) & (repeats["dataset"] == dataset)])
        column = "fid_mean" if metric == "fid" else metric
        if len(mine) and column in mine:
            return mine[column].to_numpy(dtype=float), f"the repeat phase's {len(mine)} seeds"
    trials = results.trials
    trials = trials[(trials["variant"] == variant) & (trials["dataset"] == dataset)]
    best = tables.best_trials(trials)
    if best.empty:
        return np.array([]), "no complete trial"
    runs = run_metrics(results, best, keys=(metric,))
    if not runs["found"].all():
        return np.array([]), "run folders not here"
    return runs[metric].to_numpy(dtype=float), f"the {len(runs)} seeds of trial {int(best['number'].iloc[0])}"


def comparison(results: StudyResults) -> tuple[pd.DataFrame, list[str]] | None:
    """A row per published value of the study's reference (None where its preset names no reference, or
    the reference has no rows: then the notes say why) with ganzoo's side, the test and the verdict; and
    the notes to print under the table."""
    from ganzoo import protocols

    if not results.settings or not results.settings.get("reference"):
        return None
    reference = protocols.REFERENCES.get(results.settings["reference"])
    if not reference.published:
        return (pd.DataFrame(), [reference.published_note]) if reference.published_note else None
    found = protocols.reference_table(protocols.Context(results.settings, results.protocol)) if results.protocol \
        else None
    differs = unlike(found[1]) if found else ["the study stored no protocol record to compare"]
    rows = []
    for p in reference.published:
        base = {"paper": p.paper, "where": p.where, "row": p.row, "dataset": p.dataset, "metric": p.metric,
                "published_value": p.value, "published_spread": p.spread, "published_spread_kind": p.spread_kind,
                "published_runs": p.runs, "evaluation": p.evaluation, "variant": p.variant,
                "pair_dataset": p.pair_dataset}
        if p.pair not in results.pairs and not ((results.trials["variant"] == p.variant)
                                                & (results.trials["dataset"] == p.pair_dataset)).any():
            rows.append({**base, "verdict": NOT_RUN, "reason": f"the study has no {p.pair}"})
            continue
        values, source = _runs(results, p.variant, p.pair_dataset, p.metric)
        test = welch(values * p.scale, p.value, p.standard_error, p.runs)
        if differs:
            judged, reason = NOT_COMPARABLE, "; ".join(differs)
        elif not len(values):
            judged, reason = NOT_TESTED, source
        else:
            judged, reason = verdict_of(test), ("one run: no spread to test against" if test["runs"] < 2 else "")
        rows.append({**base, "ganzoo_mean": test["mean"], "ganzoo_se": test["se"], "ganzoo_runs": test["runs"],
                     "ganzoo_runs_from": source, "difference": test["difference"], "p_value": test["p"],
                     "detectable_80": test["detectable"], "verdict": judged, "reason": reason})
    notes = [RULE]
    if found and (moved := on_purpose(found[1])):
        notes.append("Deviations on purpose the protocol table judges unable to move these numbers (it says why): "
                     + "; ".join(moved) + ".")
    return pd.DataFrame(rows), notes


def display(frame: pd.DataFrame) -> pd.DataFrame:
    """As printed: the paper's value as printed, ganzoo's mean ± s.e. (runs) in the paper's unit."""
    def ours(row: pd.Series) -> str:
        if row.get("verdict") == NOT_RUN or not row.get("ganzoo_runs"):
            return fmt.MISSING
        se = row["ganzoo_se"]
        shown = f"{fmt.sig(row['ganzoo_mean'])}" + (f" ± {fmt.sig(se)}" if math.isfinite(se) else "")
        return f"{shown} ({int(row['ganzoo_runs'])} runs)"

    def published(row: pd.Series) -> str:
        value = f"{row['published_value']:g}"
        if pd.notna(row["published_spread"]):
            value += f" ± {row['published_spread']:g} ({row['published_spread_kind']})"
        else:
            value += " (no spread printed)"
        return value + (f", {int(row['published_runs'])} runs" if pd.notna(row["published_runs"]) else "")

    def number(value: object) -> str:
        return fmt.MISSING if value is None or pd.isna(value) else fmt.sig(float(value))

    def judged(row: pd.Series) -> str:
        return row["verdict"] + (f": {row['reason']}" if row.get("reason") else "")

    from ganzoo.protocols.published import METRICS

    return pd.DataFrame({
        "row": [f"{r['row']}, {r['dataset']}" for _, r in frame.iterrows()],
        "measure": [METRICS[m][0] for m in frame["metric"]],
        "published": [published(r) for _, r in frame.iterrows()],
        "ganzoo": [ours(r) for _, r in frame.iterrows()],
        "p": [number(r.get("p_value")) for _, r in frame.iterrows()],
        "detectable (80%)": [number(r.get("detectable_80")) for _, r in frame.iterrows()],
        "verdict": [judged(r) for _, r in frame.iterrows()],
    })
