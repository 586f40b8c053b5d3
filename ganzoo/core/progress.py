"""What a long job shows while it runs: a tqdm bar on a terminal, plain lines elsewhere.

Lines go to stderr, so that stdout keeps only a command's result (a path, JSON). Where stderr is
not a terminal (CI, a log file, a worker process) there is no bar and the lines stay as they are.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any


def is_terminal() -> bool:
    return sys.stderr.isatty()


def make_bar(total: int, initial: int, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr, sized to the terminal. A terminal that reports no size (0 x 0: a bare
    pty from script, an IDE, a CI harness) gets 100 x 24: given 0 rows, tqdm prints an empty line
    in place of the bar (the bar a user saw "print nothing" for half a minute)."""
    import os

    from tqdm.auto import tqdm

    try:
        columns, lines = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        columns, lines = 0, 0
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, ncols=columns or 100,
                nrows=lines or 24)


def fmt(value: float | None, digits: int = 4) -> str:
    """A figure to ``digits`` significant digits: FIDs are not known to 16."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class SweepProgress:
    """Trials finished of those asked for, in all and per (variant, dataset) pair.

    ``counts``: finished trials per pair when the sweep starts (a resumed study starts part-way).
    On a terminal, a bar with elapsed time and ETA, and each trial's line printed above it;
    elsewhere the same lines with the elapsed time and a rough ETA from the trials of this run.
    """

    def __init__(self, counts: dict[str, int], per_pair: int, bar: bool | None = None,
                 emit: Callable[[str], None] | None = None) -> None:
        """``emit``: where lines go without a bar (default: stderr)."""
        self.counts, self.per_pair = dict(counts), per_pair
        self.emit = emit or (lambda line: print(line, file=sys.stderr, flush=True))
        self.total = per_pair * len(counts)
        self.started, self.start_done = time.monotonic(), self.done
        self.bar: Any = None
        if is_terminal() if bar is None else bar:
            self.bar = make_bar(self.total, self.done, "sweep", "trial")

    @property
    def done(self) -> int:
        return sum(min(n, self.per_pair) for n in self.counts.values())

    def eta(self) -> float | None:
        ran = self.done - self.start_done
        if ran <= 0:
            return None
        return (time.monotonic() - self.started) / ran * max(self.total - self.done, 0)

    def finished(self, pair: str, line: str) -> None:
        """A trial of ``pair`` is recorded (complete, pruned, diverged or failed)."""
        self.counts[pair] = self.counts.get(pair, 0) + 1
        self.log(f"{pair} [{min(self.counts[pair], self.per_pair)}/{self.per_pair}] {line}")
        if self.bar is not None:
            self.bar.update(1)

    def log(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
            return
        elapsed = time.monotonic() - self.started
        eta = self.eta()
        timing = f"[{self.done}/{self.total} trials, {duration(elapsed)} elapsed" + (
            f", ~{duration(eta)} left]" if eta is not None and self.done < self.total else "]")
        self.emit(f"{line} {timing}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
