"""Old module paths, kept working for one release after ganzoo moved into packages by layer (0.3).

``MOVED`` is the one table of moved modules: each old path names the module that now holds its code.
``import ganzoo.trainer`` (or ``from ganzoo.trainer import Trainer``, or ``monkeypatch.setattr(
"ganzoo.trainer.load_dataset", ...)``) gets the very module object ``ganzoo.training.trainer``, registered
under the old name too, so a monkeypatch through the old path changes what the new code runs; a stub
that re-exported with ``import *`` would not. Each old path warns once with a DeprecationWarning naming
the new one (torch-fidelity's ``deprecations.py`` habit).

A module that was split keeps its name where the split made it a package (``ganzoo.data``,
``ganzoo.cli``), or maps to the package that re-exports its names (``ganzoo.protocol`` to
``ganzoo.protocols``): its names import as before, and a monkeypatch must name the module that defines
the name now (``ganzoo.data.folders.max_in_memory_bytes``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import warnings
from types import ModuleType

REMOVED_IN = "0.4"

MOVED: dict[str, str] = {
    "ganzoo.errors": "ganzoo.core.errors",
    "ganzoo.registry": "ganzoo.core.registry",
    "ganzoo.plugins": "ganzoo.core.plugins",
    "ganzoo.config": "ganzoo.core.config",
    "ganzoo.rundir": "ganzoo.core.rundir",
    "ganzoo.cache": "ganzoo.core.cache",
    "ganzoo.device": "ganzoo.core.device",
    "ganzoo.precision": "ganzoo.core.precision",
    "ganzoo.progress": "ganzoo.core.progress",
    "ganzoo.protocol": "ganzoo.protocols",
    "ganzoo.protocol_base": "ganzoo.protocols.tables",
    "ganzoo.protocol_mixtures": "ganzoo.protocols.mixtures",
    "ganzoo.ranges": "ganzoo.protocols.ranges",
    "ganzoo.budget": "ganzoo.protocols.budget",
    "ganzoo.batches": "ganzoo.data.batches",
    "ganzoo.losses": "ganzoo.zoo.losses",
    "ganzoo.penalties": "ganzoo.zoo.penalties",
    "ganzoo.models": "ganzoo.zoo.architectures",
    "ganzoo.weights": "ganzoo.zoo.initialisation",
    "ganzoo.variants": "ganzoo.zoo.variants",
    "ganzoo.spectral_norm": "ganzoo.zoo.spectral_norm",
    "ganzoo.packing": "ganzoo.zoo.packing",
    "ganzoo.unrolling": "ganzoo.zoo.unrolling",
    "ganzoo.outputs": "ganzoo.zoo.outputs",
    "ganzoo.samples": "ganzoo.zoo.samples",
    "ganzoo.export": "ganzoo.zoo.export",
    "ganzoo.metrics": "ganzoo.evaluate.metrics",
    "ganzoo.features": "ganzoo.evaluate.features",
    "ganzoo.extraction": "ganzoo.evaluate.extraction",
    "ganzoo.inception": "ganzoo.evaluate.inception",
    "ganzoo.domain": "ganzoo.evaluate.domain",
    "ganzoo.manifold": "ganzoo.evaluate.manifold",
    "ganzoo.modes": "ganzoo.evaluate.modes",
    "ganzoo.stability": "ganzoo.evaluate.stability",
    "ganzoo.engine": "ganzoo.training.engine",
    "ganzoo.trainer": "ganzoo.training.trainer",
    "ganzoo.population": "ganzoo.training.population",
    "ganzoo.step": "ganzoo.training.step",
    "ganzoo.graphs": "ganzoo.training.graphs",
    "ganzoo.averaging": "ganzoo.training.averaging",
    "ganzoo.capture": "ganzoo.training.capture",
    "ganzoo.tensorboard": "ganzoo.training.tensorboard",
    "ganzoo.contract": "ganzoo.checks.contract",
    "ganzoo.bench": "ganzoo.checks.bench",
    "ganzoo.selfcheck": "ganzoo.checks.selfcheck",
    "ganzoo.selfcheck.context": "ganzoo.checks.selfcheck.context",
    "ganzoo.selfcheck.memory": "ganzoo.checks.selfcheck.memory",
    "ganzoo.selfcheck.speed": "ganzoo.checks.selfcheck.speed",
    "ganzoo.selfcheck.training": "ganzoo.checks.selfcheck.training",
}


def message(old: str) -> str:
    return (f"{old} moved to {MOVED[old]} in ganzoo 0.3; the old path goes in {REMOVED_IN}: "
            f"import {MOVED[old]} (or the name from ganzoo itself)")


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads it as the new module itself."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}  # new name -> its own spec

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        new = importlib.import_module(MOVED[fullname])
        # An old package (ganzoo.selfcheck) is a package still: its old submodules are imported through it.
        return importlib.machinery.ModuleSpec(fullname, self, is_package=hasattr(new, "__path__"))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(message(spec.name), DeprecationWarning, stacklevel=_importer_level())
        module = importlib.import_module(MOVED[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system has stamped the old name's spec on the module (it sets __spec__ whatever the
        # module had): give it its own back, so it still knows itself (reloads, pickling, multiprocessing).
        module.__spec__ = self._specs.pop(module.__name__)


_IMPORTLIB = os.path.dirname(importlib.__file__)


def _importer_level() -> int:
    """The stacklevel that names the line importing the old path, counted from create_module (1) as
    warnings.warn counts: over importlib's _bootstrap frames, which it skips itself, and past this module
    and ``importlib.import_module``, which it does not."""
    frame, level = sys._getframe(2), 2
    while frame is not None:
        name = frame.f_code.co_filename
        if not ("importlib" in name and "_bootstrap" in name):
            if name != __file__ and not name.startswith(_IMPORTLIB):
                return level
            level += 1
        frame = frame.f_back
    return level


_ALIAS = _Alias()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once): an old path must not reach the path finder, which
    would find nothing there now."""
    if _ALIAS not in sys.meta_path:
        sys.meta_path.insert(0, _ALIAS)
