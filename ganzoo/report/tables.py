"""The numbers of a report, computed from the trials table alone (pandas, numpy, scipy).

FIDs are only compared within a *group*: one dataset, one feature extractor, one sample count.
FID is biased in the sample count and means nothing across extractors, so numbers from different
groups are never put side by side.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ganzoo.report import formatting as fmt

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Group:
    dataset: str
    extractor: str
    n_samples: int
    reference: str | None = None  # the split and count FIDs were measured against

    @property
    def label(self) -> str:
        return f"{self.dataset} (FID by {self.extractor}, {self.n_samples} samples)"

    @property
    def title(self) -> str:
        """Short enough for a panel title: the extractor without its data hash."""
        return f"{self.dataset}\nFID by {self.extractor.split('@')[0]}, {self.n_samples} samples"


def finished(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials whose outcome is known: complete, diverged or pruned (not running, failed or interrupted)."""
    return trials[trials["status"].isin(["complete", "diverged", "pruned"])]


def complete(trials: pd.DataFrame) -> pd.DataFrame:
    """Complete trials with a finite FID: the population every FID statistic is taken over."""
    done = trials[trials["status"] == "complete"]
    return done[np.isfinite(done["fid_mean"].astype(float))]


def groups(trials: pd.DataFrame) -> Iterator[tuple[Group, pd.DataFrame]]:
    """(group, its trials) per dataset and kind of FID (extractor, sample count, reference). Trials
    with no FID (pruned, diverged, failed) join their dataset's first kind, so they are still counted."""
    for dataset, rows in trials.groupby("dataset", sort=True):
        kinds = rows[rows["extractor"].notna() & rows["n_samples"].notna()]
        kinds = kinds[["extractor", "n_samples", "reference"]].astype(str).drop_duplicates()
        if len(kinds) == 0:
            yield Group(str(dataset), "no FID yet", 0), rows
            continue
        for i, (extractor, n, reference) in enumerate(kinds.itertuples(index=False)):
            mine = ((rows["extractor"].astype(str) == extractor) & (rows["n_samples"].astype(str) == n)
                    & (rows["reference"].astype(str) == reference))
            if i == 0:
                mine |= rows["extractor"].isna() | rows["n_samples"].isna()
            yield Group(str(dataset), extractor, int(float(n)), None if reference == "None" else reference), rows[mine]


def best_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Per variant, the complete trial with the lowest mean FID over its seeds."""
    done = complete(trials)
    if done.empty:
        return done
    return done.loc[done.groupby("variant")["fid_mean"].idxmin()].sort_values("variant")


def bootstrap_ci(values: Any, statistic: Any = np.median, seed: int = 0) -> tuple[float, float] | None:
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return None
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    ci = bootstrap((data,), statistic, confidence_level=CONFIDENCE, n_resamples=BOOTSTRAP_RESAMPLES,
                   method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


# Below this many values a report gives the range [min, max], not a "95% CI": a percentile bootstrap
# interval never leaves [min, max], and for small n it is that range (n = 3: a resampled median hits
# the minimum with probability 7/27, far above 2.5%). Even the distribution-free interval of the
# median needs n >= 6 for [min, max] to cover 95% (1 - 2^(1-n)), and the percentile bootstrap
# under-covers until well above that.
MIN_CI_VALUES = 10
CI, RANGE = "95% CI", "range"


def interval(values: Any, statistic: Any = np.median) -> tuple[float, float, str] | None:
    """(low, high, kind) of ``statistic`` over ``values``: its bootstrap 95% CI, or with fewer than
    ``MIN_CI_VALUES`` values the range of the values, which is all they can say."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if len(data) < 2:
        return None
    if len(data) < MIN_CI_VALUES:
        return float(data.min()), float(data.max()), RANGE
    ci = bootstrap_ci(data, statistic)
    assert ci is not None
    return ci[0], ci[1], CI


def interval_header(kinds: Any) -> tuple[str, bool]:
    """The bracket of a column of intervals, and whether each cell must name its own kind (mixed)."""
    seen = {k for k in kinds if isinstance(k, str)}
    if seen == {CI}:
        return CI, False
    if seen == {RANGE}:
        return RANGE, False
    return f"{CI} or {RANGE}", bool(seen)


def _coverage(row: pd.Series) -> str:
    if pd.notna(row.get("modes_covered")):
        return f"{row['modes_covered']:.3g} modes"
    if pd.notna(row.get("classes_covered")):
        return f"{row['classes_covered']:.3g} classes"
    return "—"


def seeds_measured(row: pd.Series) -> int:
    """Seeds of a trial that reached evaluation: its coverage is their mean."""
    return sum(f is not None for f in row.get("fid_per_seed") or [])


def coverage_label(coverage: str, seeds: int) -> str:
    """A trial's coverage as printed: a mean over seeds says so (1.5 classes is no count of classes)."""
    if re.fullmatch(r"1 \w+", coverage):  # the CSV keeps "1 classes"; print one class
        coverage = coverage.removesuffix("es" if coverage.endswith("classes") else "s")
    return coverage if coverage == "—" or seeds < 2 else f"{coverage} (mean over {seeds} seeds)"


def summary(trials: pd.DataFrame) -> pd.DataFrame:
    """The summary table of one group: a row per variant."""
    rows = []
    best = best_trials(trials).set_index("variant")
    for variant, mine in trials.groupby("variant", sort=True):
        done = complete(mine)
        fids = done["fid_mean"].to_numpy(dtype=float)
        spread = interval(fids)
        b = best.loc[variant] if variant in best.index else None
        rows.append({
            "variant": variant,
            "complete": int((mine["status"] == "complete").sum()),
            "pruned": int((mine["status"] == "pruned").sum()),
            "diverged": int((mine["status"] == "diverged").sum()),
            "failed": int(mine["status"].isin(["failed", "interrupted", "fail"]).sum()),
            "running": int((mine["state"] == "RUNNING").sum()),
            "queued": int((mine["state"] == "WAITING").sum()),
            "best_fid": float(fids.min()) if len(fids) else math.nan,
            "median_fid": float(np.median(fids)) if len(fids) else math.nan,
            "median_ci_low": spread[0] if spread else math.nan,
            "median_ci_high": spread[1] if spread else math.nan,
            "median_interval": spread[2] if spread else None,  # "95% CI" or "range": what low..high is
            "seed_std": float(b["fid_std"]) if b is not None and pd.notna(b.get("fid_std")) else math.nan,
            "coverage": _coverage(b) if b is not None else "—",
            # The best trial's precision, recall, density and coverage (metrics prc), NaN where not measured.
            **{f"best_{k}": float(b[k]) if b is not None and pd.notna(b.get(k)) else math.nan
               for k in ("precision", "recall", "density", "coverage")},
            "coverage_seeds": seeds_measured(b) if b is not None else 0,
            "images_per_second": float(done["train_images_per_second"].median())
            if len(done) and "train_images_per_second" in done else math.nan,
        })
    return pd.DataFrame(rows)


def summary_display(table: pd.DataFrame) -> pd.DataFrame:
    """The summary table as printed: FIDs to 4 significant digits, rates as whole numbers."""
    bracket, per_cell = interval_header(table["median_interval"]) if len(table) else (CI, False)

    def median(m: float, lo: float, hi: float, kind: str | None) -> str:
        spread = fmt.interval(lo, hi)
        return fmt.sig(m) + (f" {spread}" if spread else "") + (f" ({kind})" if spread and per_cell else "")

    return pd.DataFrame({
        "variant": table["variant"],
        "trials (complete / pruned / diverged)": [
            f"{c} / {p} / {d}" + (f" (+{f} failed)" if f else "") + (f" (+{r} running)" if r else "")
            + (f" (+{q} queued)" if q else "")
            for c, p, d, f, r, q in zip(table["complete"], table["pruned"], table["diverged"], table["failed"],
                                        table["running"], table["queued"])],
        "best FID": [fmt.sig(x) for x in table["best_fid"]],
        f"median FID [{bracket}]": [
            median(*row) for row in zip(table["median_fid"], table["median_ci_low"], table["median_ci_high"],
                                        table["median_interval"])],
        "seed std": [fmt.sig(x) for x in table["seed_std"]],
        "modes covered": [coverage_label(c, n) for c, n in zip(table["coverage"], table["coverage_seeds"])],
        **_manifold_column(table),
        "images/s": [fmt.count(x) for x in table["images_per_second"]],
    })


def _manifold_column(table: pd.DataFrame) -> dict[str, list[str]]:
    """The best trial's precision / recall / density / coverage, as one column where any was measured."""
    keys = [f"best_{k}" for k in ("precision", "recall", "density", "coverage")]
    if not all(k in table for k in keys) or table[keys].isna().all().all():
        return {}
    cells = [" / ".join("—" if pd.isna(v) else f"{v:.2f}" for v in row) for row in table[keys].itertuples(index=False)]
    return {"precision / recall / density / coverage": cells}


def mann_whitney(trials: pd.DataFrame) -> pd.DataFrame:
    """Pairwise two-sided Mann-Whitney U tests on the complete trials' FIDs, with effect sizes.

    ``p(A better)``: the probability that a random trial of A has a lower FID than one of B (ties
    count half); ``rank-biserial`` = 2 p(A better) - 1, in [-1, 1]. ``q``: Benjamini-Hochberg
    adjusted p-values over the pairs of the group.
    """
    from scipy.stats import false_discovery_control, mannwhitneyu

    done = complete(trials)
    fids = {v: g["fid_mean"].to_numpy(dtype=float) for v, g in done.groupby("variant", sort=True)}
    rows = []
    for a, b in itertools.combinations(fids, 2):
        x, y = fids[a], fids[b]
        result = mannwhitneyu(x, y, alternative="two-sided")
        p_better = 1.0 - float(result.statistic) / (len(x) * len(y))  # U counts pairs where x > y
        rows.append({"A": a, "B": b, "n_A": len(x), "n_B": len(y), "U": float(result.statistic),
                     "p": float(result.pvalue), "p(A better)": p_better, "rank-biserial": 2 * p_better - 1})
    table = pd.DataFrame(rows, columns=["A", "B", "n_A", "n_B", "U", "p", "p(A better)", "rank-biserial"])
    if len(table):
        table.insert(6, "q", false_discovery_control(table["p"].to_numpy()))
    return table


def mann_whitney_display(table: pd.DataFrame) -> pd.DataFrame:
    """p and q with the same precision; effect sizes to 2 decimals."""
    return pd.DataFrame({
        "A": table["A"], "B": table["B"],
        "n_A": [fmt.integer(x) for x in table["n_A"]], "n_B": [fmt.integer(x) for x in table["n_B"]],
        "U": [f"{x:g}" for x in table["U"]],  # a count of pairs, halves where tied
        "p": [fmt.pvalue(x) for x in table["p"]],
        "q": [fmt.pvalue(x) for x in table["q"]] if "q" in table else [],
        "p(A better)": [fmt.fraction(x) for x in table["p(A better)"]],
        "rank-biserial": [fmt.fraction(x) for x in table["rank-biserial"]],
    }, columns=["A", "B", "n_A", "n_B", "U", "p", "q", "p(A better)", "rank-biserial"])


def expected_best(trials: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Best FID after a budget of k trials per variant (Lucic et al. 2018, section 5.1): k trials drawn
    with replacement from all the variant's finished trials, the best FID kept. Diverged and pruned
    trials are spent draws that found nothing; ``p_none`` is the chance that all k draws were such, and
    the mean and 95% band are over the other resamples."""
    rows = []
    for variant, g in finished(trials).groupby("variant", sort=True):
        fids = np.where(g["status"] == "complete", g["fid_mean"].astype(float), np.inf)
        fids = np.where(np.isfinite(fids), fids, np.inf)
        if not np.isfinite(fids).any():
            continue
        rng = np.random.default_rng([seed, zlib.crc32(str(variant).encode())])  # own stream per variant
        # The first k of one row of n draws is a draw of k: the same draws serve every budget, so
        # the curve cannot rise from resampling noise.
        running_best = np.minimum.accumulate(rng.choice(fids, size=(resamples, len(fids)), replace=True), axis=1)
        for k in range(1, len(fids) + 1):
            best = running_best[:, k - 1]
            found = best[np.isfinite(best)]
            lo, hi = np.quantile(found, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
            rows.append({"variant": variant, "k": k, "expected_best": float(found.mean()), "low": float(lo),
                         "high": float(hi), "p_none": 1.0 - len(found) / resamples})
    return pd.DataFrame(rows, columns=["variant", "k", "expected_best", "low", "high", "p_none"])


def stability(trials: pd.DataFrame) -> pd.DataFrame:
    """Per variant: the best configuration's seed spread, divergence over every seed run, coverage."""
    from ganzoo.evaluate.stability import seed_summary

    best = best_trials(trials).set_index("variant")
    rows = []
    for variant, mine in finished(trials).groupby("variant", sort=True):
        seeds_run = sum(len(s) for s in mine["fid_per_seed"]) if "fid_per_seed" in mine else 0
        diverged_seeds = float(mine["diverged_seeds"].fillna(0).sum())
        row: dict[str, Any] = {
            "variant": variant,
            "trials": len(mine),
            "diverged trials": int((mine["status"] == "diverged").sum()),
            "divergence rate": float((mine["status"] == "diverged").mean()),
            "diverged seeds": f"{int(diverged_seeds)} / {seeds_run}",
            "D saturated share": float(mine["d_saturated_share"].mean()),
        }
        if variant in best.index:
            b = best.loc[variant]
            fids = [f for f in b["fid_per_seed"] if f is not None]
            s = seed_summary(fids)
            spread = interval(fids, np.mean)
            if spread and spread[2] == CI:  # the same bootstrap of the mean that ganzoo.evaluate.stability makes
                spread = (s["ci_low"], s["ci_high"], CI)
            row.update({"best trial": int(b["number"]), "seeds": s["n"], "seed mean FID": s["mean"],
                        "seed std": s["std"], "seed FID low": spread[0] if spread else math.nan,
                        "seed FID high": spread[1] if spread else math.nan,
                        "seed interval": spread[2] if spread else None,
                        "coverage (best)": _coverage(b), "coverage seeds": seeds_measured(b)})
        rows.append(row)
    return pd.DataFrame(rows)


def stability_display(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table
    out = pd.DataFrame({
        "variant": table["variant"],
        "trials": [fmt.integer(x) for x in table["trials"]],
        "diverged trials": [fmt.integer(x) for x in table["diverged trials"]],
        "divergence rate": [fmt.fraction(x) for x in table["divergence rate"]],
        "diverged seeds": table["diverged seeds"],
        "D saturated share": [fmt.fraction(x) for x in table["D saturated share"]],
    })
    if "seeds" in table:
        bracket, per_cell = interval_header(table["seed interval"])
        out["best trial"] = [fmt.integer(x) for x in table["best trial"]]
        out["seeds"] = [fmt.integer(x) for x in table["seeds"]]
        out["seed mean FID"] = [fmt.sig(x) for x in table["seed mean FID"]]
        out["seed std"] = [fmt.sig(x) for x in table["seed std"]]
        out[f"seed FID [{bracket}]"] = [
            fmt.interval(lo, hi) + (f" ({kind})" if per_cell and isinstance(kind, str) else "")
            for lo, hi, kind in zip(table["seed FID low"], table["seed FID high"], table["seed interval"])]
        out["coverage (best)"] = [coverage_label(c, int(n)) if isinstance(c, str) else fmt.MISSING
                                  for c, n in zip(table["coverage (best)"], table["coverage seeds"].fillna(0))]
    return out


def param_columns(trials: pd.DataFrame) -> list[str]:
    """Searched parameters that took more than one value."""
    return [c for c in trials.columns if c.startswith("params_") and trials[c].nunique(dropna=True) > 1]


def importances(trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Optuna's hyperparameter importances (fANOVA) per variant, from the complete trials.

    The trials are replayed into an in-memory study with distributions spanning the values seen, so
    the same code serves a study storage and a bare trials.csv. Returns the table and, per variant
    left out, why.
    """
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows, notes = [], []
    for variant, g in complete(trials).groupby("variant", sort=True):
        # A column another variant searched is all NaN here: not this variant's parameter. Rows missing
        # one of its own parameters (e.g. hand-merged CSVs) are left out.
        g = g.dropna(axis=1, how="all")
        g = g.dropna(subset=[c for c in g.columns if c.startswith("params_")])
        params = param_columns(g)
        if len(g) < 3 or not params:
            notes.append(f"{variant}: {len(g)} complete trial(s) and {len(params)} varied parameter(s); "
                         "importances need at least 3 trials and 1 varied parameter")
            continue
        dists: dict[str, Any] = {}
        for column in params:
            values = g[column]
            name = column.removeprefix("params_")
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                lo, hi = float(values.min()), float(values.max())
                dists[name] = FloatDistribution(lo, hi, log=lo > 0 and hi / lo > 20)
            else:
                dists[name] = CategoricalDistribution(sorted(values.dropna().unique().tolist(), key=str))
        try:
            study = optuna.create_study(direction="minimize")
            for _, row in g.iterrows():
                values = {n: (float(row[f"params_{n}"]) if isinstance(d, FloatDistribution) else row[f"params_{n}"])
                          for n, d in dists.items()}
                study.add_trial(optuna.trial.create_trial(params=values, distributions=dists,
                                                          value=float(row["fid_mean"])))
            for name, value in optuna.importance.get_param_importances(
                    study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), normalize=True).items():
                rows.append({"variant": variant, "parameter": name, "importance": float(value)})
        except (ValueError, RuntimeError) as e:
            notes.append(f"{variant}: Optuna could not compute importances ({e})")
    return pd.DataFrame(rows, columns=["variant", "parameter", "importance"]), notes


def repeats(runs: pd.DataFrame) -> pd.DataFrame:
    """The repeat phase of one group: per variant, its best configuration's runs on new seeds (a trial
    each): how many, the mean FID, its standard deviation and interval (a bootstrap 95% CI of the mean,
    or with fewer than MIN_CI_VALUES runs their range), and the best and worst run."""
    rows = []
    for variant, mine in runs.groupby("variant", sort=True):
        fids = complete(mine)["fid_mean"].to_numpy(dtype=float)
        spread = interval(fids, np.mean)
        rows.append({
            "variant": variant,
            "best_trial": mine["best_trial"].dropna().astype(int).iloc[0] if "best_trial" in mine and
            mine["best_trial"].notna().any() else None,
            "runs": len(fids),
            "diverged": int((mine["status"] == "diverged").sum()),
            "unfinished": int((~mine["status"].isin(["complete", "diverged"])).sum()),
            "mean_fid": float(fids.mean()) if len(fids) else math.nan,
            "std_fid": float(fids.std(ddof=1)) if len(fids) > 1 else math.nan,
            "ci_low": spread[0] if spread else math.nan,
            "ci_high": spread[1] if spread else math.nan,
            "interval": spread[2] if spread else None,
            "min_fid": float(fids.min()) if len(fids) else math.nan,
            "max_fid": float(fids.max()) if len(fids) else math.nan,
        })
    return pd.DataFrame(rows)


def repeats_display(table: pd.DataFrame) -> pd.DataFrame:
    bracket, per_cell = interval_header(table["interval"]) if len(table) else (CI, False)
    return pd.DataFrame({
        "variant": table["variant"],
        "best trial of the search": ["—" if t is None or pd.isna(t) else str(int(t)) for t in table["best_trial"]],
        "runs (+ diverged, unfinished)": [f"{r}" + (f" (+{d} diverged)" if d else "") + (f" (+{u} unfinished)" if u else "")
                                          for r, d, u in zip(table["runs"], table["diverged"], table["unfinished"])],
        "mean FID": [fmt.sig(x) for x in table["mean_fid"]],
        "std": [fmt.sig(x) for x in table["std_fid"]],
        {CI: "95% CI of the mean", RANGE: "range of the runs"}.get(bracket, f"{bracket}"): [
            (fmt.interval(lo, hi) or fmt.MISSING) + (f" ({kind})" if per_cell and kind else "")
            for lo, hi, kind in zip(table["ci_low"], table["ci_high"], table["interval"])],
        "min / max": [f"{fmt.sig(a)} / {fmt.sig(b)}" for a, b in zip(table["min_fid"], table["max_fid"])],
    })
