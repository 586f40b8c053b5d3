"""The self-check's run (``ganzoo.checks.selfcheck``): ``CHECKS`` in order, its CSVs, its closing line, and
``command``, what ``ganzoo bench --self-check`` calls."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gc
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from ganzoo.checks.selfcheck.context import (
    CPU_SIZES,
    CUDA_SIZES,
    FAIL,
    PASS,
    Context,
    Outcome,
)
from ganzoo.checks.selfcheck.memory import check_sizing_memory
from ganzoo.checks.selfcheck.speed import check_graph_vs_eager, check_inception
from ganzoo.checks.selfcheck.training import (
    check_no_host_sync,
    check_population,
    check_resume,
    check_syncing_plugin,
    check_variants,
)
from ganzoo.core import rundir
from ganzoo.core.device import device_name, resolve_device
from ganzoo.core.errors import GanzooError
from ganzoo.core.plugins import describe_exception

SUMMARY_CSV = "selfcheck.csv"  # one row per check; each check's own measurements go to selfcheck-<check>.csv


@dataclasses.dataclass
class Row:
    """One check's result, as printed and as written to selfcheck.csv."""

    check: str
    verdict: str
    detail: str
    figures: dict[str, Any]
    precision: str
    seconds: float
    device: str
    torch: str
    table: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def line(self, index: int, total: int) -> str:
        return f"[{index}/{total}] {self.check:<15} {self.verdict:<10} {self.seconds:6.1f} s  {self.detail}"

    def record(self) -> dict[str, Any]:
        figures = "; ".join(f"{k}={_figure(v)}" for k, v in self.figures.items())
        return {"check": self.check, "verdict": self.verdict, "detail": self.detail, "figures": figures,
                "seconds": round(self.seconds, 2), "device": self.device, "torch": self.torch,
                "precision": self.precision}


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


# ---- the run ---------------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[Context], Outcome]] = {
    "variants": check_variants,
    "population": check_population,
    "no-host-sync": check_no_host_sync,
    "syncing-plugin": check_syncing_plugin,
    "resume": check_resume,
    "graph-vs-eager": check_graph_vs_eager,
    "inception": check_inception,
    "sizing-memory": check_sizing_memory,
}


def write_csvs(rows: Sequence[Row], out: Path) -> Path:
    """OUT/selfcheck.csv (a row per check) and OUT/selfcheck-<check>.csv (a check's measurements),
    every row naming the device, torch's version and the precision."""
    _write_csv(out / SUMMARY_CSV, [row.record() for row in rows])
    for row in rows:
        if row.table:
            stamped = [{**r, "device": row.device, "torch": row.torch, "precision": r.get("precision", row.precision)}
                       for r in row.table]
            _write_csv(out / f"selfcheck-{row.check}.csv", stamped)
    return out / SUMMARY_CSV


def _write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for record in records for key in record))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: _figure(v) if isinstance(v, float) else v for k, v in r.items()} for r in records])
    rundir.atomic_write(path, lambda f: f.write(text.getvalue().encode()))


def run(device: str = "auto", cpu: bool = False, out: Path | None = None,
        log: Callable[[str], None] | None = None, progress: bool | None = None) -> list[Row]:
    """Every check in CHECKS, in order: one line each through ``log`` as it finishes (on a terminal a
    line says which check runs meanwhile), the CSVs rewritten under ``out`` after each. ``cpu``: the
    smoke mode (tiny sizes on the CPU). A check that raises is a FAIL whose detail is the exception."""
    from ganzoo.core.progress import is_terminal

    target = torch.device("cpu") if cpu else resolve_device(device)
    if target.type != "cuda" and not cpu:
        raise GanzooError("the self-check needs a CUDA device and there is none here (ganzoo bench --self-check --cpu "
                          "runs its smoke mode on the CPU)")
    write = log or (lambda line: print(line, file=sys.stderr, flush=True))
    live = is_terminal() if progress is None else progress
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        if cpu:
            stack.enter_context(_threads(1))
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ganzoo-selfcheck-"))
        name, version = device_name(target), torch.__version__
        ctx = Context(target, CPU_SIZES if cpu else CUDA_SIZES, Path(tmp))
        mode = "smoke mode: tiny sizes, the CUDA-only verdicts n/a" if cpu else "under 8 minutes"
        write(f"ganzoo self-check on {name}, torch {version}: {len(CHECKS)} checks ({mode})")
        for index, (check, function) in enumerate(CHECKS.items(), start=1):
            if live:
                print(f"[{index}/{len(CHECKS)}] {check} ...", end="\r", file=sys.stderr, flush=True)
            start = time.perf_counter()
            try:
                outcome = function(ctx)
            except Exception as e:  # a check that breaks is a failed check, said in one line
                outcome = Outcome(FAIL, describe_exception(e))
            row = Row(check, outcome.verdict, outcome.detail, outcome.figures, outcome.precision,
                      time.perf_counter() - start, name, version, outcome.table)
            if ctx.cuda:  # the check's runs, graphs and pools go before the next check allocates its own
                gc.collect()
                torch.cuda.empty_cache()
            rows.append(row)
            write(("\r\x1b[K" if live else "") + row.line(index, len(CHECKS)))
            if out is not None:
                write_csvs(rows, out)
    return rows


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """torch's intra-op threads for the block. The smoke mode's ops are tiny: a second thread buys
    nothing there, and on a CPU shared with other jobs each parallel op waits for the slowest thread
    (measured on 2 busy cores: the population check 37 s with 2 threads, 9 s with 1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def failed(rows: Sequence[Row]) -> list[Row]:
    return [row for row in rows if row.verdict == FAIL]


TIME_BUDGET_SECONDS = 8 * 60  # what the self-check promises on a GPU


def summary(rows: Sequence[Row], seconds: float, smoke: bool = False) -> str:
    """The closing line: counts of each verdict, the FAILed checks named, the time taken (and, on a
    GPU, whether it overran the 8 minutes it promises)."""
    passed = sum(row.verdict == PASS for row in rows)
    skipped = sum(row.verdict.startswith("n/a") for row in rows)
    bad = failed(rows)
    where = f"{rows[0].device}, torch {rows[0].torch}" if rows else ""
    text = f"self-check: {passed} pass, {len(bad)} FAIL, {skipped} n/a in {seconds:.0f} s ({where})"
    if not smoke and seconds > TIME_BUDGET_SECONDS:
        text += f"; over its {TIME_BUDGET_SECONDS // 60} minutes (selfcheck.csv times each check)"
    if bad:
        text += "; FAILED: " + ", ".join(row.check for row in bad)
    return text


def command(device: str, cpu: bool, out: Path, exit_failed: int) -> int:
    """``ganzoo bench --self-check [--cpu]``: every check, a line each on stderr, then the summary there
    and the summary CSV's path on stdout; ``exit_failed`` (the CLI's code for a failure) if any check
    FAILed, else 0."""
    start = time.perf_counter()
    rows = run(device, cpu=cpu, out=out)
    print(summary(rows, time.perf_counter() - start, smoke=cpu), file=sys.stderr)
    print(f"bench: {out / SUMMARY_CSV}")
    return exit_failed if failed(rows) else 0
