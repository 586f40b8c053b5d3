from __future__ import annotations

import sysconfig
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


def describe_exception(exc: BaseException) -> str:
    """One line for an exception raised inside a run: its type, message and where it happened.
    It names the innermost frame in a loaded plugin (failing that, outside the standard library,
    installed packages and ganzoo), since that is the line a plugin's author has to look at."""
    from ganzoo.plugins import plugin_paths

    text = one_line(exc)
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    plugins = [Path(p) for p in plugin_paths()]
    at = innermost_frame(exc, lambda path: under(path, plugins)) if plugins else None
    if at is None:
        library = [Path(p).resolve() for p in {sysconfig.get_path(k) for k in ("stdlib", "purelib", "platlib")}]
        library.append(Path(__file__).resolve().parent)
        at = innermost_frame(exc, lambda path: not under(path, library))
    if at is not None:
        line += f" (at {at.filename}:{at.lineno}, in {at.name})"
    return line
