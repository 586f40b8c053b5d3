"""The mode-coverage table of 2D mixtures, as PacGAN (Lin et al. 2018, its ring and grid table) and
VEEGAN (Srivastava et al. 2017, table 1) print theirs: per variant, modes covered, the share of
high-quality samples and the reverse KL over the modes, each the mean ± standard error over runs.

The runs are the seeds of the variant's best complete trial (``tables.best_trials``); their values
are read from the runs' own final evaluations (``load.run_metrics``), since a trial records only
their mean. Where the run folders are not here, a row shows the trial's means and says so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ganzoo.report import formatting as fmt
from ganzoo.report import tables

MEASURES = ("modes_covered", "high_quality_share", "mode_reverse_kl")


def has_modes(trials: pd.DataFrame) -> bool:
    """Whether a group's complete trials were scored on a mixture's modes (image data never is)."""
    done = tables.complete(trials)
    return "modes_covered" in done and bool(done["modes_covered"].notna().any())


def mean_se(values: np.ndarray) -> tuple[float, float, int]:
    """(mean, standard error, n) over the finite values; the s.e. is std (ddof 1) / sqrt(n), NaN for n < 2."""
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(values.mean()), se, n


def mode_table(trials: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """A row per variant of one group: its best complete trial and, over that trial's runs (``runs``:
    ``load.run_metrics`` of the best trials), the mean, standard error and number of runs of each of
    ``MEASURES``. ``from_runs`` is False where some run's folder is not here: the row then holds the
    trial's own means over its seeds, with no standard error."""
    best = tables.best_trials(trials).set_index("variant")
    rows = []
    for variant in sorted(trials["variant"].unique()):
        row: dict[str, object] = {"variant": variant, "trial": None, "runs": 0, "from_runs": True, "n_modes": math.nan}
        for key in MEASURES:
            row.update({key: math.nan, f"{key}_se": math.nan, f"{key}_runs": 0})
        if variant in best.index:
            b = best.loc[variant]
            mine = runs[(runs["variant"] == variant) & (runs["number"] == b["number"])]
            row.update(trial=int(b["number"]), n_modes=mine["n_modes"].max() if len(mine) else math.nan)
            if len(mine) and mine["found"].all():
                row["runs"] = int(mine["modes_covered"].notna().sum())
                for key in MEASURES:
                    mean, se, n = mean_se(mine[key].to_numpy(dtype=float))
                    row.update({key: mean, f"{key}_se": se, f"{key}_runs": n})
            else:  # the runs are not here: the trial's means over its seeds, which carry no spread
                seeds = tables.seeds_measured(b)
                row.update(runs=seeds, from_runs=False)
                for key in MEASURES:
                    row.update({key: float(b[key]) if pd.notna(b.get(key)) else math.nan, f"{key}_runs": seeds})
        rows.append(row)
    return pd.DataFrame(rows)


def cell(mean: float, se: float, decimals: int, scale: float = 1.0) -> str:
    """"7.00 ± 0.58"; one run (no standard error): its value alone."""
    if not math.isfinite(mean):
        return fmt.MISSING
    shown = f"{mean * scale:.{decimals}f}"
    return f"{shown} ± {se * scale:.{decimals}f}" if math.isfinite(se) else shown


def mode_table_display(table: pd.DataFrame, total: int | None = None) -> pd.DataFrame:
    """As printed: modes to 2 decimals, the high-quality share in % to 1, the reverse KL (nats) to 3;
    a reverse KL over fewer runs than the others (runs with no high-quality sample have none) says so.
    ``total``: the data's number of modes, where the runs did not record it."""
    known = table["n_modes"].dropna() if len(table) else pd.Series(dtype=float)
    total = int(known.max()) if len(known) else total
    of = f" (of {total})" if total else ""

    def kl(row: pd.Series) -> str:
        shown = cell(row["mode_reverse_kl"], row["mode_reverse_kl_se"], 3)
        n = row["mode_reverse_kl_runs"]
        return shown if n == row["runs"] or not row["from_runs"] else f"{shown} ({n} of {row['runs']} runs)"

    def runs(row: pd.Series) -> str:
        if row["trial"] is None or pd.isna(row["trial"]):
            return "no complete trial"
        return str(row["runs"]) if row["from_runs"] else f"{row['runs']} (run folders not here: trial mean, no s.e.)"

    return pd.DataFrame({
        "variant": table["variant"],
        "trial": [fmt.MISSING if t is None or pd.isna(t) else str(int(t)) for t in table["trial"]],
        "runs": [runs(r) for _, r in table.iterrows()],
        f"modes covered{of}": [cell(m, s, 2) for m, s in zip(table["modes_covered"], table["modes_covered_se"])],
        "high-quality samples (%)": [cell(m, s, 1, 100.0) for m, s in
                                     zip(table["high_quality_share"], table["high_quality_share_se"])],
        "reverse KL (nats)": [kl(r) for _, r in table.iterrows()],
    }, columns=["variant", "trial", "runs", f"modes covered{of}", "high-quality samples (%)", "reverse KL (nats)"])
