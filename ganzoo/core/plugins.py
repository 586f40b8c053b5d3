"""User plugins: a Python file or module that registers losses, penalties, architectures, datasets, variants.

``--plugin PATH_OR_MODULE`` loads one for a command; installed packages declare an entry point in
the ``ganzoo.plugins`` group and are loaded by every command.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import sysconfig
from importlib.metadata import entry_points
from pathlib import Path

from ganzoo.core.errors import GanzooError, innermost_frame, one_line, under
from ganzoo.core.package import PACKAGE_ROOT
from ganzoo.core.registry import registering_for

ENTRY_POINT_GROUP = "ganzoo.plugins"  # what installed packages declare: never renamed
_loaded: set[str] = set()
_paths: set[str] = set()  # files (and package folders) of the loaded plugins, for error messages


def plugin_paths() -> tuple[str, ...]:
    """Where the loaded plugins' code lives: a traceback frame under one of these is a plugin's."""
    return tuple(sorted(_paths))


def _remember(module: object) -> None:
    file = getattr(module, "__file__", None)
    if file:
        path = Path(file).resolve()
        # A package's code is every file under its folder; a module's is its one file.
        _paths.add(str(path.parent if path.name == "__init__.py" else path))


def plugin_key(spec: str) -> str:
    """A file plugin is recorded by absolute path (so --resume finds it from anywhere), a module by name."""
    return str(Path(spec).resolve()) if is_path(spec) else spec


def is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def load_plugin(spec: str) -> None:
    key = plugin_key(spec)
    if key in _loaded:
        return
    try:
        if is_path(spec):
            path = Path(key)
            if not path.is_file():
                raise GanzooError(f"cannot load plugin {spec!r}: no such file")
            name = f"ganzoo_plugin_{path.stem}_{abs(hash(key)):x}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise GanzooError(f"cannot load plugin {spec!r}: not a Python file")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            _remember(module)  # before running it: a crash while loading is the plugin's too
            with registering_for(spec):
                module_spec.loader.exec_module(module)
        else:
            with registering_for(spec):
                _remember(importlib.import_module(spec))
    except GanzooError as e:
        if str(e).startswith("cannot load plugin"):
            raise
        raise GanzooError(f"plugin {spec!r}: {e}") from None
    except Exception as e:  # a plugin is user code: report any failure as one line
        raise GanzooError(f"cannot load plugin {spec!r}: {type(e).__name__}: {e}") from None
    _loaded.add(key)


def load_installed_plugins() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value in _loaded:
            continue
        try:
            with registering_for(ep.value):
                loaded = ep.load()
            _remember(sys.modules.get(ep.module, loaded))
        except Exception as e:
            raise GanzooError(f"cannot load installed plugin {ep.name!r} ({ep.value}): {e}") from None
        _loaded.add(ep.value)


def describe_exception(exc: BaseException) -> str:
    """One line for an exception raised inside a run: its type, message and where it happened.
    It names the innermost frame in a loaded plugin (failing that, outside the standard library,
    installed packages and ganzoo), since that is the line a plugin's author has to look at."""
    text = one_line(exc)
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    plugins = [Path(p) for p in plugin_paths()]
    at = innermost_frame(exc, lambda path: under(path, plugins)) if plugins else None
    if at is None:
        library = [Path(p).resolve() for p in {sysconfig.get_path(k) for k in ("stdlib", "purelib", "platlib")}]
        library.append(PACKAGE_ROOT)  # ganzoo's own code
        at = innermost_frame(exc, lambda path: not under(path, library))
    if at is not None:
        line += f" (at {at.filename}:{at.lineno}, in {at.name})"
    return line
