from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path


class GanzooError(Exception):
    """A problem the user can fix (bad input, missing data). The CLI prints it as one line, exit 2."""


def describe_exception(exc: BaseException) -> str:
    """One line for an exception raised inside a run: its type, message and where it happened.
    It names the innermost frame in a loaded plugin (failing that, outside the standard library,
    installed packages and ganzoo), since that is the line a plugin's author has to look at."""
    from ganzoo.plugins import plugin_paths

    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297].rsplit(" ", 1)[0] + " ..."
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    frames = [(f, str(Path(f.filename).resolve())) for f in traceback.extract_tb(exc.__traceback__)]
    plugins = plugin_paths()
    at = next((f for f, path in reversed(frames) if path.startswith(plugins)), None) if plugins else None
    if at is None:
        library = tuple(str(Path(p).resolve()) for p in {sysconfig.get_path(k) for k in ("stdlib", "purelib", "platlib")})
        library += (str(Path(__file__).resolve().parent),)
        at = next((f for f, path in reversed(frames) if not path.startswith(library)), None)
    if at is not None:
        line += f" (at {at.filename}:{at.lineno}, in {at.name})"
    return line
