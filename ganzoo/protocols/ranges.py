"""Hyperparameter ranges: the distributions a variant's search spaces are written in, and the ranges
of Lucic et al. 2018 per loss, transcribed from the code behind that paper.

A dimension is a dotted setting mapped to ``LogUniform``, ``Uniform`` or ``Choice``, each with an
optional ``default``: the value of the sweep's first trial, the default configuration that
compare_gan runs first in every study (``generate_tasks_lib.py`` TuneParams: ``samples =
[GetDefaultParams(gan_params)]``). A default may lie outside its range, as compare_gan's do in the
narrow range (GAN's beta1 0.0 where the range is [0.5]); None takes the variant's own setting. A
dimension with one value (``Choice((0.5,))``, a range with low == high) is fixed, not searched.
``OnArch(arch, dimension)`` applies only to runs on that architecture: D's batch norm, which
compare_gan searches, is a switch of its network (``infogan``'s ``d_batchnorm``), not of every one.

The Lucic et al. ranges are compare_gan's ``src/params.py`` at google/compare_gan@49495fd (the code as
released with the paper, 2018-02-12); each function below names the lines it follows. compare_gan
writes a log range as exponents of 10 ([-5, -2] is 10**-5 .. 10**-2) and draws a discrete range with
random.choice, a continuous one with random.uniform (``generate_tasks_lib.py`` GetSample, l. 98-111).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class LogUniform:
    low: float
    high: float
    default: Any = None


@dataclasses.dataclass(frozen=True)
class Uniform:
    low: float
    high: float
    default: Any = None


@dataclasses.dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]
    default: Any = None


Distribution = LogUniform | Uniform | Choice


@dataclasses.dataclass(frozen=True)
class OnArch:
    """``dimension`` where the run's architecture is ``arch``; no dimension elsewhere."""

    arch: str
    dimension: Distribution


Dimension = Distribution | OnArch
Space = Mapping[str, Dimension]


def on_arch(space: Space, arch: str) -> dict[str, Distribution]:
    """The dimensions of ``space`` for a run on ``arch``."""
    out: dict[str, Distribution] = {}
    for key, dim in space.items():
        if isinstance(dim, OnArch):
            if dim.arch == arch:
                out[key] = dim.dimension
        else:
            out[key] = dim
    return out


def space_record(space: Mapping[str, Distribution]) -> dict[str, Any]:
    """A space as JSON data (its kind, range and default per dimension), for a study's records."""
    return {key: {"kind": type(dim).__name__, **dataclasses.asdict(dim)} for key, dim in space.items()}


def fixed_value(dim: Distribution) -> tuple[bool, Any]:
    """(True, its value) for a dimension with one value, else (False, None)."""
    if isinstance(dim, Choice) and len(dim.values) == 1:
        return True, dim.values[0]
    if isinstance(dim, (LogUniform, Uniform)) and dim.low == dim.high:
        return True, float(dim.low)
    return False, None


def _e(exponent: float) -> float:
    return 10.0**exponent


_LUCIC_NETWORK = "infogan"  # the shared network whose D's batch norm compare_gan searches


def _lucic(range_type: str, *, beta1: float, lr: float, n_critic: int, bn: bool,
           narrow_bn: tuple[bool, ...] = (True, False)) -> dict[str, Dimension]:
    """compare_gan's GetDefaultWideRange (params.py l. 63-74) or GetDefaultNarrowRange (l. 77-88), with a
    loss's defaults (its UpdateDefaults) and its narrow batch-norm range (``narrow_bn``)."""
    if range_type == "wide":
        return {
            "adam.lr": LogUniform(_e(-5), _e(-2), default=lr),  # learning_rate [-5.0, -2.0], log
            "adam.beta1": Uniform(0.0, 1.0, default=beta1),  # beta1 [0.0, 1.0]
            "n_critic": Choice((1, 5), default=n_critic),  # disc_iters [1, 5], discrete
            "arch.d_batchnorm": OnArch(_LUCIC_NETWORK, Choice((True, False), default=bn)),
        }
    return {
        "adam.lr": LogUniform(_e(-4), _e(-3), default=lr),  # learning_rate [-4.0, -3.0], log
        "adam.beta1": Choice((0.5,), default=beta1),  # beta1 [0.5]
        "n_critic": Choice((1,), default=n_critic),  # disc_iters [1]
        "arch.d_batchnorm": OnArch(_LUCIC_NETWORK, Choice(narrow_bn, default=bn)),
    }


# Adam's beta2 is not among compare_gan's parameters: its AdamOptimizer(learning_rate, beta1=beta1)
# keeps TensorFlow's 0.999, and the Lucic et al. preset sets adam.beta2 = 0.999.


def lucic_gan(range_type: str) -> dict[str, Dimension]:
    """GANHyperParams (params.py l. 100-114), for GAN (non-saturating) and GAN_MINMAX alike."""
    return _lucic(range_type, beta1=0.0, lr=0.00005, n_critic=1, bn=True)


def lucic_lsgan(range_type: str) -> dict[str, Dimension]:
    """LSGANHyperParams (l. 117-130)."""
    return _lucic(range_type, beta1=0.5, lr=0.0002, n_critic=1, bn=True)


def lucic_wgan(range_type: str) -> dict[str, Dimension]:
    """WGANHyperParams (l. 133-151): weight_clipping log [-3, 0] wide, [-2, 0] narrow, default 0.01."""
    low = -3.0 if range_type == "wide" else -2.0
    return {**_lucic(range_type, beta1=0.5, lr=0.00005, n_critic=5, bn=True),
            "d_weight_clip": LogUniform(_e(low), _e(0.0), default=0.01)}


def lucic_wgan_gp(range_type: str) -> dict[str, Dimension]:
    """WGANGPHyperParams (l. 154-173): lambda log [-1, 2] wide, [-1, 1] narrow, default 10; no batch
    norm in D in the narrow range ("From the barplot, clearly False is better")."""
    high = 2.0 if range_type == "wide" else 1.0
    return {**_lucic(range_type, beta1=0.5, lr=0.0001, n_critic=5, bn=False, narrow_bn=(False,)),
            "penalty.weight": LogUniform(_e(-1.0), _e(high), default=10.0)}


def lucic_dragan(range_type: str) -> dict[str, Dimension]:
    """DRAGANHyperParams (l. 176-195): as WGAN-GP's, but 1 critic step and batch norm by default."""
    high = 2.0 if range_type == "wide" else 1.0
    return {**_lucic(range_type, beta1=0.5, lr=0.0001, n_critic=1, bn=True, narrow_bn=(False,)),
            "penalty.weight": LogUniform(_e(-1.0), _e(high), default=10.0)}


def lucic_began(range_type: str) -> dict[str, Dimension]:
    """BEGANHyperParams (l. 214-238): lambda (k's rate) log [-4, -2] wide, fixed 10**-3 narrow; gamma
    [0, 1] wide, [0.6, 0.9] narrow, default 0.75."""
    wide = range_type == "wide"
    return {**_lucic(range_type, beta1=0.5, lr=0.0001, n_critic=5, bn=False),
            "loss.lambda_k": LogUniform(_e(-4.0) if wide else _e(-3.0), _e(-2.0) if wide else _e(-3.0), default=0.001),
            "loss.gamma": Uniform(0.0 if wide else 0.6, 1.0 if wide else 0.9, default=0.75)}


def generic(range_type: str) -> dict[str, Dimension]:
    """compare_gan's GetDefaultWideRange / GetDefaultNarrowRange for a loss it does not define (hinge,
    the relativistic losses, a plugin's): defaults None, so that the first trial is the variant's own
    setting; D's batch norm is left to the architecture."""
    if range_type == "wide":
        return {"adam.lr": LogUniform(_e(-5), _e(-2)), "adam.beta1": Uniform(0.0, 1.0), "n_critic": Choice((1, 5))}
    return {"adam.lr": LogUniform(_e(-4), _e(-3)), "adam.beta1": Choice((0.5,)), "n_critic": Choice((1,))}
