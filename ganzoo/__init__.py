"""ganzoo: compare GAN variants fairly — one trainer, one data layer, many variants.

The package is layered; a layer imports only the layers before it: ``core`` < ``protocols``, ``data`` <
``zoo`` < ``evaluate`` < ``training`` < ``sweep`` < ``checks`` < ``report`` < ``cli``.
Each folder's README.md is its reference page. The names below are the public API.
"""

from __future__ import annotations

# First: the old module paths (ganzoo.trainer, ganzoo.losses, ...) resolve to the moved modules.
from ganzoo.core import deprecations  # isort: skip

deprecations.install()

from ganzoo.core.config import Adam, TrainConfig  # noqa: E402
from ganzoo.core.errors import GanzooError  # noqa: E402
from ganzoo.data import (  # noqa: E402
    DATASETS,
    Data,
    DataRequest,
    DataSource,
    SourceFile,
    load_dataset,
    register_dataset,
)
from ganzoo.evaluate.features import EXTRACTORS, FeatureExtractor, register_extractor  # noqa: E402
from ganzoo.training.trainer import (  # noqa: E402
    RunResult,
    StopTraining,
    Trainer,
    TrainState,
    resume,
    train,
)
from ganzoo.zoo.architectures import ARCHITECTURES, Architecture, register_architecture  # noqa: E402
from ganzoo.zoo.export import load_generator  # noqa: E402
from ganzoo.zoo.initialisation import INITIALISATIONS, register_initialisation  # noqa: E402
from ganzoo.zoo.losses import LOSSES, Loss, register_loss  # noqa: E402
from ganzoo.zoo.penalties import PENALTIES, Penalty, register_penalty  # noqa: E402
from ganzoo.zoo.variants import (  # noqa: E402
    NARROW_SPACE,
    VARIANTS,
    WIDE_SPACE,
    Choice,
    LogUniform,
    OnArch,
    Uniform,
    Variant,
    register_variant,
    resolve_config,
)

__version__ = "0.3.1"

__all__ = [
    "ARCHITECTURES", "DATASETS", "EXTRACTORS", "INITIALISATIONS", "LOSSES", "NARROW_SPACE", "PENALTIES", "VARIANTS",
    "WIDE_SPACE", "Adam", "Architecture", "Choice", "Data", "DataRequest", "DataSource", "FeatureExtractor",
    "GanzooError", "LogUniform", "Loss", "OnArch", "Penalty", "RunResult", "SourceFile", "StopTraining", "TrainConfig",
    "TrainState", "Trainer", "Uniform", "Variant", "load_dataset",
    "load_generator", "register_architecture", "register_dataset", "register_extractor", "register_initialisation",
    "register_loss", "register_penalty", "register_variant", "resolve_config", "resume", "train",
]


def __getattr__(name: str) -> object:
    """``ganzoo.trainer`` and the other old module paths as attributes, as they were before the move."""
    if f"ganzoo.{name}" in deprecations.MOVED:
        import importlib

        return importlib.import_module(f"ganzoo.{name}")
    raise AttributeError(f"module 'ganzoo' has no attribute {name!r}")
