"""What every layer stands on: errors, registries and plugins, the run configuration, a run directory's
files, caches, devices and progress. Nothing here knows of GANs, data or training.

- ``errors``: ``GanzooError`` (bad input: one line, exit 2) and how exceptions are told in one line;
- ``registry``: name -> entry registries, and the signature checks a registration passes;
- ``plugins``: loading a user's plugin file or module, and naming its line when its code fails;
- ``config``: ``TrainConfig`` and ``EvalSpec``, frozen dataclasses with strict parsing and dotted overrides;
- ``rundir``: the files of a run directory, written atomically; ``cache``: cached artefacts and data
  fingerprints; ``device``, ``precision``: devices and TF32 scopes; ``progress``: bars and lines;
- ``deprecations``: the old module paths of ganzoo 0.2, kept for a release; ``package``: where ganzoo lives.

Reference page: ``ganzoo/core/README.md``.
"""

from __future__ import annotations

from ganzoo.core.config import (
           EVALUATION_DEFAULTS,
           Adam,
           EvalSpec,
           FastPaths,
           TrainConfig,
           apply_overrides,
)
from ganzoo.core.errors import GanzooError
from ganzoo.core.plugins import load_plugin
from ganzoo.core.registry import Registry

__all__ = ["EVALUATION_DEFAULTS", "Adam", "EvalSpec", "FastPaths", "GanzooError", "Registry", "TrainConfig",
           "apply_overrides", "load_plugin"]
