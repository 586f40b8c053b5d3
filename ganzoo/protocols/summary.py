"""What every sweep states of its protocol (budget, search, scoring, evaluation, each pair's ranges), in
its dry run and its report, and the published protocol's table where the sweep follows one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganzoo.protocols.tables import (
    REFERENCES,
    Context,
    Reference,
    Row,
    budget_text,
    counted,
    number_text,
    table,
)


def scoring_text(c: Context) -> str:
    s = c.settings
    unit = "D" if s.get("budget") == "d_updates" else "G"
    every = f"every {s['eval_every']:,} {unit} updates and at the end" if s.get("eval_every") else "at the end"
    return f"FID {every}; each run's {s.get('objective', 'final')} FID"


def evaluation_text(c: Context) -> str:
    ev = c.settings.get("evaluation", {})
    reference = f"the first {ev['n_reference']:,}" if ev.get("n_reference") else "all"
    return f"FID by {ev.get('features')} features, {ev.get('n_samples', 0):,} samples against {reference} of the {ev.get('split', 'test')} split"


def search_text(c: Context) -> str:
    s = c.settings
    first = "the default configuration first" if s.get("default_trial", True) and s.get("sampler") != "grid" else "no default trial"
    extra = f", also {', '.join(s['extra_space'])}" if s.get("extra_space") else ""
    return f"{s['sampler']} search over the {s['space']} ranges{extra}, {counted(s['n_trials'], 'trial')}, {counted(s['seeds'], 'seed')} each; {first}"


def space_text(c: Context) -> str:
    """Which parameters each pair searches (and fixes), as its record holds them."""
    keys = sorted({key for r in c.records.values() for key in r["space"]})
    return ", ".join(keys)


def _range(dim: Mapping[str, Any]) -> str:
    kind = dim["kind"]
    if kind == "Choice":
        shown = ", ".join(number_text(v) for v in dim["values"])
        text = f"{{{shown}}}" if len(dim["values"]) > 1 else f"fixed {shown}"
    elif dim["low"] == dim["high"]:
        text = f"fixed {number_text(float(dim['low']))}"
    else:
        text = f"{'log-uniform' if kind == 'LogUniform' else 'uniform'} [{number_text(float(dim['low']))}, {number_text(float(dim['high']))}]"
    default = dim.get("default")
    shown_default = default is not None and text != f"fixed {number_text(default)}"
    return text + (f", default {number_text(default)}" if shown_default else "")


def summary(context: Context) -> list[str]:
    """The protocol lines every sweep's dry run and report carry: budget, search, scoring, evaluation,
    repeat, and each pair's ranges."""
    s = context.settings
    lines = [f"Budget: {budget_text(context)}, the same for every trial "
             + ("whatever its n_critic (G updated after every n_critic D updates)." if s.get("budget") == "d_updates"
                else "in G updates (a step is n_critic D updates and one G update)."),
             f"Search: {search_text(context)}.", f"Scoring: {scoring_text(context)}.", f"Evaluation: {evaluation_text(context)}."]
    if s.get("repeat_seeds"):
        lines.append(f"Repeat: each study's best configuration again on {counted(s['repeat_seeds'], 'new seed')} "
                     f"({s['seeds']}..{s['seeds'] + s['repeat_seeds'] - 1}); their mean, std and interval.")
    for pair, record in context.records.items():
        ranges = "; ".join(f"{key} {_range(dim)}" for key, dim in record["space"].items())
        lines.append(f"{pair}: {ranges or 'nothing searched'}.")
    return lines


def reference_table(context: Context) -> tuple[Reference, list[Row]] | None:
    name = context.settings.get("reference")
    if not name or name not in REFERENCES:
        return None
    reference = REFERENCES.get(name)
    return reference, table(reference, context)
