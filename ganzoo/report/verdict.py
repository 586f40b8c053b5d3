"""The one line at the top of each dataset's summary: which variant is best, and whether the
Mann-Whitney + Benjamini-Hochberg q values back it, or a warning that every variant failed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from ganzoo.report import formatting as fmt
from ganzoo.report import tables

ALPHA = 0.05  # the false discovery rate at which a q value counts as significant


@dataclasses.dataclass(frozen=True)
class Verdict:
    text: str
    warning: bool = False  # every variant failed: the text replaces the ranking


def failure(trials: pd.DataFrame, total: int | None = None) -> str | None:
    """Why no variant of this group can be ranked, when every one failed: none of their complete
    trials covers a mode of a mixture, or more than one class of labelled images. FIDs of
    such generators rank failures, not GANs."""
    done = tables.complete(trials)
    if done.empty:
        return None
    for column, most, what in (("modes_covered", 0, f"any of the {total} modes" if total else "any mode"),
                               ("classes_covered", 1, f"more than one of the {total} classes" if total
                                else "more than one class")):
        covered = done[column].astype(float) if column in done else pd.Series(dtype=float)
        if covered.notna().any() and covered.max() <= most:
            return (f"every variant failed: none of the {len(done)} complete trials covers {what} (at best "
                    f"{covered.max():.3g}, mean over seeds), so their FIDs rank failures and no variant is ranked")
    return None


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p of an exact Mann-Whitney test (scipy's choice for small samples
    without ties): every A below every B, one ordering of C(n_a + n_b, n_a), counted twice."""
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def _pairs(items: list[tuple[str, float]]) -> str:
    return ", ".join(f"{v} ({fmt.stated('q', q)})" for v, q in items)


def verdict(trials: pd.DataFrame, total: int | None = None) -> Verdict | None:
    """The verdict of one group (one dataset, extractor and sample count), None with nothing to judge."""
    if (why := failure(trials, total)) is not None:
        return Verdict(why, warning=True)
    done = tables.complete(trials)
    if done.empty:
        return None
    medians = done.groupby("variant")["fid_mean"].median().sort_values(kind="stable")
    counts = done.groupby("variant").size()
    best, best_median = str(medians.index[0]), float(medians.iloc[0])
    lacking = sorted(set(trials["variant"]) - set(medians.index))
    missing = f"; {', '.join(lacking)}: no complete trial" if lacking else ""
    if len(medians) < 2:
        return Verdict(f"only {best} has complete trials (median FID {fmt.sig(best_median)}){missing}")
    tests = tables.mann_whitney(trials)
    mine = tests[(tests["A"] == best) | (tests["B"] == best)]
    q_of = {(b if a == best else a): float(q) for a, b, q in zip(mine["A"], mine["B"], mine["q"])}
    others = [str(v) for v in medians.index[1:]]
    better = [(v, q_of[v]) for v in others if q_of[v] < ALPHA]
    alike = [(v, q_of[v]) for v in others if q_of[v] >= ALPHA]
    lead = f"{best} best (median FID {fmt.sig(best_median)})"
    if better and not alike:
        return Verdict(f"{lead}, significantly better than {_pairs(better)}{missing}")
    if better:
        return Verdict(f"{lead}, significantly better than {_pairs(better)}; not significantly different from "
                       f"{_pairs(alike)}{missing}")
    if (tests["q"] < ALPHA).any():  # others differ among themselves, but none from the best
        return Verdict(f"{best} has the lowest median FID ({fmt.sig(best_median)}) but is not significantly "
                       f"better than {_pairs(alike)}{missing}")
    sizes = sorted(set(counts.tolist()))
    each = (f"{sizes[0]} trial{'s' if sizes[0] > 1 else ''} each" if len(sizes) == 1
            else f"{sizes[0]} to {sizes[-1]} trials per variant")
    largest = counts.nlargest(2).tolist()  # the pair whose test could reach the smallest p
    floor = smallest_p(int(largest[0]), int(largest[1]))
    smallest = float(np.min(tests["q"]))
    if floor >= ALPHA and float(np.min(tests["p"])) >= floor * (1 - 1e-9):
        power = f"with {each}, a two-sided Mann-Whitney p cannot go below {fmt.pvalue(floor)}"
    elif int(counts.min()) < tables.MIN_CI_VALUES:
        power = f"{each} give the test little power"
    else:
        power = each
    return Verdict(f"no significant difference between the variants (lowest median FID: {best}, "
                   f"{fmt.sig(best_median)}; smallest {fmt.stated('q', smallest)}; {power}){missing}")
