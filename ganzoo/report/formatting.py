"""How a report prints numbers: one rule per kind of number, so a column never mixes notations.

Tables are printed as strings made here; pandas and tabulate would otherwise pick a notation per
column (``2.554e+04`` beside ``7445``) or reformat what they parse as numbers.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

MISSING = "—"


def _finite(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def sig(x: Any, digits: int = 4) -> str:
    """``digits`` significant digits in positional notation (never scientific), thousands separated:
    FIDs and their spreads."""
    if not _finite(x):
        return MISSING
    if x == 0:
        return "0"
    rounded = float(f"{x:.{digits}g}")  # round first: 9999.6 becomes 10000, whose exponent is 4
    decimals = max(digits - 1 - math.floor(math.log10(abs(rounded))), 0)
    return f"{rounded:,.{decimals}f}"


def count(x: Any) -> str:
    """Rates such as images/s: whole numbers with thousands separators; below 100, 3 significant digits
    (a whole number would drop most of a slow loop's precision)."""
    if not _finite(x):
        return MISSING
    return f"{round(x):,}" if abs(x) >= 100 else sig(x, 3)


def integer(x: Any) -> str:
    return f"{int(x):,}" if _finite(x) else MISSING


def pvalue(x: Any) -> str:
    """p and q alike: 2 significant digits with trailing zeros kept (0.10, not 0.1), or < 0.001."""
    if not _finite(x):
        return MISSING
    return "< 0.001" if x < 0.001 else f"{x:#.2g}".rstrip(".")


def stated(name: str, x: Any) -> str:
    """A p or q value in a sentence: "q = 0.15", "q < 0.001"."""
    shown = pvalue(x)
    return f"{name} {shown}" if shown.startswith("<") else f"{name} = {shown}"


def fraction(x: Any) -> str:
    """Shares, probabilities and effect sizes in [-1, 1]: 2 decimals."""
    return f"{x:.2f}" if _finite(x) else MISSING


def interval(low: Any, high: Any, digits: int = 4) -> str:
    return f"[{sig(low, digits)}, {sig(high, digits)}]" if _finite(low) and _finite(high) else ""
