"""ganzoo: compare GAN variants fairly — one trainer, one data layer, many variants."""

from __future__ import annotations

from ganzoo.config import Adam, TrainConfig
from ganzoo.data import DATASETS, Data, DataRequest, load_dataset, register_dataset
from ganzoo.errors import GanzooError
from ganzoo.export import load_generator
from ganzoo.losses import LOSSES, Loss, register_loss
from ganzoo.models import ARCHITECTURES, Architecture, register_architecture
from ganzoo.penalties import PENALTIES, Penalty, register_penalty
from ganzoo.trainer import RunResult, StopTraining, Trainer, TrainState, resume, train
from ganzoo.variants import (
    VARIANTS,
    Choice,
    LogUniform,
    OnArch,
    Uniform,
    Variant,
    register_variant,
    resolve_config,
)
from ganzoo.weights import INITIALISATIONS, register_initialisation

__version__ = "0.2.0"

__all__ = [
    "ARCHITECTURES", "DATASETS", "INITIALISATIONS", "LOSSES", "PENALTIES", "VARIANTS", "Adam", "Architecture", "Choice", "Data",
    "DataRequest", "GanzooError", "LogUniform", "Loss", "OnArch", "Penalty", "RunResult", "StopTraining", "TrainConfig",
    "TrainState", "Trainer", "Uniform", "Variant", "load_dataset", "load_generator", "register_architecture",
    "register_dataset", "register_initialisation", "register_loss", "register_penalty", "register_variant", "resolve_config", "resume", "train",
]
