from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from pathlib import Path


class GanzooError(Exception):
    """A problem the user can fix (bad input, missing data). The CLI prints it as one line, exit 2."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, cut at a word near ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 4].rsplit(" ", 1)[0] + " ..."


def under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def innermost_frame(exc: BaseException, ours: Callable[[Path], bool]) -> traceback.FrameSummary | None:
    """The innermost traceback frame whose file ``ours`` accepts, in ``exc`` or in what it was
    raised from (a plugin's error re-raised as a GanzooError keeps its origin there)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame in reversed(traceback.extract_tb(current.__traceback__)):
            if ours(Path(frame.filename).resolve()):
                return frame
        current = current.__cause__ or current.__context__
    return None
