"""The zoo: what a variant is made of, each kind a registry users extend. Losses, penalties, architectures,
initialisations, and the variants that name them with their defaults and search spaces; the switches any
variant takes (spectral norm, packing, unrolling); and a trained G's samples and exports.

- ``losses``, ``penalties``, ``architectures``, ``initialisation``: the registries and their built-ins;
- ``variants``: ``Variant``, ``resolve_config`` (a run's settings) and ``build_networks``;
- ``spectral_norm``, ``packing``, ``unrolling``: switches of any variant; ``outputs``: what a plugin's code
  must return, checked where it is first met;
- ``samples``: drawing and picturing G's samples; ``export``: ``ganzoo export`` and ``load_generator``.

Reference page: ``ganzoo/zoo/README.md``.
"""

from __future__ import annotations

from ganzoo.zoo.architectures import ARCHITECTURES, Architecture, register_architecture
from ganzoo.zoo.export import export_run, load_generator
from ganzoo.zoo.initialisation import INITIALISATIONS, LATENTS, register_initialisation
from ganzoo.zoo.losses import LOSSES, Loss, register_loss
from ganzoo.zoo.penalties import PENALTIES, Penalty, register_penalty
from ganzoo.zoo.variants import (
           VARIANTS,
           Variant,
           build_networks,
           register_variant,
           resolve_config,
           validate,
)

__all__ = ["ARCHITECTURES", "INITIALISATIONS", "LATENTS", "LOSSES", "PENALTIES", "VARIANTS", "Architecture", "Loss",
           "Penalty", "Variant", "build_networks", "export_run", "load_generator", "register_architecture",
           "register_initialisation", "register_loss", "register_penalty", "register_variant", "resolve_config",
           "validate"]
