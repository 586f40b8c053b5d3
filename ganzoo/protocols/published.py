"""The numbers each paper printed, as data, beside the protocol table that reproduces its study
(``Reference.published``): a row per value, as the paper's table shows it, with its spread and what
that spread is, the number of runs behind it and the evaluation that made it. The report sets ganzoo's
measurement of the same row beside each (``ganzoo.report.published``); ``--dry-run`` prints them alone.

Each value is transcribed from the paper (the module that registers it cites table and row) and pinned
by ``tests/protocols/test_published.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

# What a published value measures, as ganzoo names the measure, and how the paper prints it.
MODES, HIGH_QUALITY, REVERSE_KL, FID = "modes_covered", "high_quality_share", "mode_reverse_kl", "fid"
METRICS = {MODES: ("modes covered", 1.0), HIGH_QUALITY: ("high-quality samples (%)", 100.0),
           REVERSE_KL: ("reverse KL (nats)", 1.0), FID: ("FID", 1.0)}
# What a spread is: a standard deviation over runs, a standard error of their mean, or none printed.
STD, STANDARD_ERROR, NO_SPREAD = "std", "standard error", "none printed"


@dataclasses.dataclass(frozen=True)
class Published:
    """One value of a paper's table, as printed (a percentage as a percentage)."""

    paper: str  # "Srivastava et al. 2017"
    where: str  # the table or figure: "table 1"
    row: str  # the paper's row: "GAN"
    dataset: str  # the paper's name for the data: "2D Ring"
    metric: str  # one of METRICS
    value: float
    spread: float | None  # None where the paper prints none
    spread_kind: str  # STD, STANDARD_ERROR or NO_SPREAD
    runs: int | None  # the runs behind the value, where the paper says
    evaluation: str  # how the paper measured it: samples, network, split
    variant: str  # ganzoo's variant that runs the row
    pair_dataset: str  # ganzoo's dataset that is the paper's

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if (self.spread is None) != (self.spread_kind == NO_SPREAD) or self.spread_kind not in (STD, STANDARD_ERROR,
                                                                                               NO_SPREAD):
            raise ValueError(f"{self.row} on {self.dataset}: a spread needs its kind, and none says {NO_SPREAD!r}")

    @property
    def pair(self) -> str:
        return f"{self.variant}@{self.pair_dataset}"

    @property
    def metric_name(self) -> str:
        return METRICS[self.metric][0]

    @property
    def scale(self) -> float:
        """What ganzoo's measure is multiplied by to be in the paper's unit (a share in %)."""
        return METRICS[self.metric][1]

    @property
    def standard_error(self) -> float | None:
        """The spread as a standard error of the published mean (a std over ``runs``); None without one."""
        if self.spread is None:
            return None
        if self.spread_kind == STANDARD_ERROR:
            return self.spread
        return self.spread / self.runs ** 0.5 if self.runs else None

    def shown(self) -> str:
        """The value as the paper prints it: "17.3 ± 0.8 (standard error, 10 runs)"."""
        value = f"{self.value:g}" + (f" ± {self.spread:g}" if self.spread is not None else "")
        about = [self.spread_kind] if self.spread is not None else ["no spread printed"]
        if self.runs:
            about.append(f"{self.runs} runs")
        return f"{value} ({', '.join(about)})"


def published_table(paper: str, where: str, evaluation: str, runs: int, spread_kind: str,
                    rows: Sequence[tuple[str, str, str, str, str, float, float | None]]) -> tuple[Published, ...]:
    """A table's values, a tuple each: (the paper's row, its dataset, ganzoo's variant, ganzoo's dataset,
    metric, value, spread or None), all of one paper, evaluation, number of runs and kind of spread."""
    return tuple(Published(paper, where, row, dataset, metric, value, spread,
                           spread_kind if spread is not None else NO_SPREAD, runs, evaluation, variant, pair_dataset)
                 for row, dataset, variant, pair_dataset, metric, value, spread in rows)


def published_lines(rows: Sequence[Published], note: str = "") -> list[str]:
    """The published side alone, for a terminal (``--dry-run``): a line per value."""
    if not rows:
        return [f"Published results: {note}"] if note else []
    first = rows[0]
    lines = [f"Published results ({first.paper}, {first.where}; {first.evaluation}):"]
    lines += [f"- {r.row} on {r.dataset} ({r.pair}): {r.metric_name} {r.shown()}" for r in rows]
    if note:
        lines.append(note)
    return lines
