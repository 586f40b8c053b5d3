"""The pieces every protocol table is made of (ganzoo.protocols): what a table is computed from, a choice
and a reference, the registry of references, and the texts of values that several references show."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ganzoo.core.registry import Registry
from ganzoo.protocols.published import Published

AS_REFERENCE, ON_PURPOSE, DIFFERS = "as the reference", "deviates on purpose", "differs from the reference"
NO_SUCH_RUN = "(no such run)"  # a choice's value where the study has none of the runs it is about


@dataclasses.dataclass(frozen=True)
class Context:
    """What a table is computed from: the sweep's settings and each pair's protocol record."""

    settings: Mapping[str, Any]
    records: Mapping[str, Mapping[str, Any]]  # pair name -> {"space", "run", "budget"}

    def runs(self) -> list[Mapping[str, Any]]:
        return [r["run"] for r in self.records.values()]

    def values(self, get: Callable[[Mapping[str, Any]], Any], where: Callable[[Mapping[str, Any]], bool] = bool,
               ) -> str:
        """The distinct values of ``get`` over the runs that ``where`` selects, joined (sorted)."""
        found = sorted({str(get(run)) for run in self.runs() if where(run)})
        return " / ".join(found) if found else NO_SUCH_RUN


@dataclasses.dataclass(frozen=True)
class Choice:
    """One row: ``value(context)`` is ganzoo's value; ``expected`` the value that is the reference's
    (None: ganzoo deviates on purpose, for the reason in ``why``)."""

    name: str
    reference: str  # the reference's value and where it is read
    value: Callable[[Context], str]
    expected: str | None
    why: str = ""
    # Whether a run that differs here can land on other numbers than the paper's: then a published-vs-ganzoo
    # comparison says "not comparable" (the rows that ran, the number of runs and how they are summarised
    # do not: they decide which rows and how much power, not the values).
    moves: bool = True
    # A deviation on purpose (``expected`` None) that can move the paper's numbers: named so, it makes a
    # published-vs-ganzoo comparison "not comparable" until a run undoes it (the update order).
    may_move: bool = False
    # For a deviation on purpose (``expected`` None) that a setting can undo: ganzoo's value when it runs the
    # reference's way, which is then "as the reference" (simultaneous updates, ``update_order``).
    undone: str | None = None


@dataclasses.dataclass(frozen=True)
class Reference:
    title: str
    code: str
    choices: Sequence[Choice]
    published: Sequence[Published] = ()  # the paper's own numbers for the rows it runs (ganzoo.protocols.published)
    published_note: str = ""  # what the paper prints and does not, where it has no rows for this study


@dataclasses.dataclass(frozen=True)
class Row:
    choice: str
    value: str
    reference: str
    status: str
    moves: bool = True  # Choice.moves
    may_move: bool = False  # Choice.may_move


def table(reference: Reference, context: Context) -> list[Row]:
    rows = []
    for c in reference.choices:
        value = c.value(context)
        if c.expected is None and value != c.undone:
            status = f"{ON_PURPOSE}: {c.why}"
        elif c.expected is None:
            status = AS_REFERENCE
        elif value == c.expected:
            status = AS_REFERENCE + (f"; {c.why}" if c.why else "")
        else:
            status = f"{DIFFERS} ({c.expected})"
        rows.append(Row(c.name, value, c.reference, status, c.moves, c.may_move))
    return rows


def markdown(reference: Reference, rows: Sequence[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"Protocol of {reference.title} ({reference.code}):", "",
             "| choice | ganzoo | reference | status |", "| --- | --- | --- | --- |"]
    lines += [f"| {cell(r.choice)} | {cell(r.value)} | {cell(r.reference)} | {cell(r.status)} |" for r in rows]
    return "\n".join(lines)


def text(reference: Reference, rows: Sequence[Row]) -> str:
    """The table for a terminal: a block per choice."""
    out = [f"Protocol of {reference.title} ({reference.code}):"]
    for r in rows:
        out += [f"- {r.choice}: {r.value}", f"    reference: {r.reference}", f"    {r.status}"]
    return "\n".join(out)


REFERENCES: Registry[Reference] = Registry("protocol reference")


def register_reference(name: str, reference: Reference) -> Reference:
    return REFERENCES.register(name, reference)


# ---- values read from a context ------------------------------------------------------------------

def budget_text(c: Context) -> str:
    s = c.settings
    unit = "D" if s.get("budget") == "d_updates" else "G"
    updates = sorted({r["budget"]["updates"] for r in c.records.values()})
    amount = " / ".join(f"{u:,}" for u in updates)
    if s.get("epochs"):
        size = s.get("epoch_size") or " / ".join(f"{n:,}" for n in sorted({r["budget"]["n_train"] for r in c.records.values()}))
        size = f"{size:,}" if isinstance(size, int) else size
        return f"{amount} {unit} updates ({counted(s['epochs'], 'epoch')} of {size} images at batch {s['batch_size']})"
    return f"{amount} {unit} updates at batch {s['batch_size']}"


def counted(n: float, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is exactly 1: "1 epoch", "0.5 epochs", "3 new seeds"."""
    return f"{n:,g} {noun}" if n == 1 else f"{n:,g} {noun}s"


def number_text(value: Any) -> str:
    """A setting's value as written by hand: 0.00005, not 5e-05."""
    if isinstance(value, float):
        import numpy as np

        return np.format_float_positional(value, trim="-")
    return str(value)
