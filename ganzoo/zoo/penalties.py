"""Penalties: extra terms of D's loss that need D itself, a setting apart from the loss (``penalty``,
``penalty.weight``), so that any loss that takes one (``Loss.takes_penalty``) can be trained and
searched with or without it, as Kurach et al. 2019 vary them.

A penalty draws its random numbers in ``noise`` (apart from ``value``, so that a population draws
them per member from each member's generator, in a single run's order) and computes its weighted
term in ``value``, where ``gradient(D, x)`` is dD/dx, differentiable: autograd in a single run,
torch.func in a population (``gradient(D, x, on="probabilities")``: of D's sigmoid output instead).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

from ganzoo.core.errors import GanzooError
from ganzoo.core.registry import Registry, dataclass_subclass_of
from ganzoo.zoo.losses import (
    LOGITS,
    Wasserstein,
    at_least_float32,
    outputs_problem,
    register_loss,
)

NO_PENALTY = "none"  # the ``penalty`` setting's value for no penalty (not a registered entry)

Gradient = Callable[..., Tensor]  # gradient(D, x, on=LOGITS): dD(x)/dx, differentiable


class Penalty:
    def noise(self, real: Tensor, generator: torch.Generator) -> Tensor:
        """The random numbers the penalty draws for this batch of real data."""
        raise NotImplementedError

    def value(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
              gradient: Gradient) -> Tensor:
        """The weighted penalty for given noise."""
        raise NotImplementedError


PENALTIES: Registry[type[Penalty]] = Registry("penalty", dataclass_subclass_of(Penalty, required=("noise", "value")))
P = TypeVar("P", bound=type[Penalty])


def register_penalty(name: str) -> Callable[[P], P]:
    return PENALTIES.decorator(name)  # type: ignore[return-value]


def unit_slope_penalty(grad: Tensor, weight: Tensor | float, slope_eps: Tensor | float = 0.0,
                       gradient_scale: Tensor | float = 1.0) -> Tensor:
    """weight * mean over samples of (sqrt(slope_eps + ||gradient_scale * grad||^2) - 1)^2: D's slope held
    at 1 where it is measured. compare_gan v1 adds slope_eps = 1e-4 under the root (gans/WGAN_GP.py,
    gans/DRAGAN.py: slopes = tf.sqrt(0.0001 + reduce_sum(square(gradients)))); Gulrajani et al.'s code
    adds none. ``gradient_scale`` sets the unit the slope is measured in: ganzoo's images are in [-1, 1]
    (as Gulrajani et al.'s), compare_gan's in [0, 1], where the same D has twice the slope (2)."""
    # Float32 norm: under bf16 autocast the squared sum loses the precision the penalty needs.
    flat = at_least_float32(grad).flatten(1)
    if not _is(gradient_scale, 1.0):
        flat = flat * gradient_scale
    if _is(slope_eps, 0.0):  # a single run's default: the plain norm, no ops spent on a zero epsilon
        norm = flat.norm(dim=1)
    else:
        # sqrt(eps + |g|^2) is the norm of g with sqrt(eps) appended: one formula for a float eps and a
        # per-member tensor (a population), whose backward at g = 0 is the norm's (0, not nan).
        root = (flat.new_zeros(len(flat), 1) + slope_eps).sqrt()
        norm = torch.linalg.vector_norm(torch.cat([flat, root], 1), dim=1)
    return weight * (norm - 1).square().mean()


def _is(value: Tensor | float, number: float) -> bool:
    """Whether ``value`` is the plain number ``number`` (a population's per-member tensor never is)."""
    return isinstance(value, (int, float)) and value == number


def _slope_problem(slope_eps: Any, gradient_scale: Any) -> None:
    """Refuse a negative slope_eps or a gradient_scale <= 0 (numbers only: in a population they are tensors)."""
    if isinstance(slope_eps, (int, float)) and slope_eps < 0:
        raise GanzooError(f"penalty.slope_eps must be >= 0, got {slope_eps}")
    if isinstance(gradient_scale, (int, float)) and gradient_scale <= 0:
        raise GanzooError(f"penalty.gradient_scale must be > 0, got {gradient_scale}")


def _per_sample(real: Tensor, generator: torch.Generator) -> Tensor:
    """One U(0, 1) number per sample, shaped to broadcast over the sample's dimensions."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    return torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)


@register_penalty("gp")
@dataclasses.dataclass(frozen=True)
class GradientPenalty(Penalty):
    """Gulrajani et al. 2017 (WGAN-GP): weight * (||dD/dx|| - 1)^2 at x = a real + (1 - a) fake, with
    a ~ U(0, 1) per sample: points between the data and G's samples."""

    weight: float = 10.0
    slope_eps: float = 0.0  # compare_gan v1: 1e-4 (see unit_slope_penalty)
    gradient_scale: float = 1.0  # compare_gan's unit, [0, 1] pixels: 2 (see unit_slope_penalty)

    def __post_init__(self) -> None:
        _slope_problem(self.slope_eps, self.gradient_scale)

    def noise(self, real: Tensor, generator: torch.Generator) -> Tensor:
        return _per_sample(real, generator)

    def value(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
              gradient: Gradient) -> Tensor:
        return unit_slope_penalty(gradient(D, noise * real + (1 - noise) * fake), self.weight, self.slope_eps,
                                  self.gradient_scale)


@register_penalty("dragan")
@dataclasses.dataclass(frozen=True)
class DRAGANPenalty(Penalty):
    """Kodali et al. 2017: weight * (||dD/dx|| - 1)^2 at x = real + a * scale * std(real) * u, with
    u ~ U(0, 1) per element, a ~ U(0, 1) per sample and std over the whole batch (the points of Kodali
    et al.'s and compare_gan's get_perturbed_batch): points around the data, where D's slope is held
    at 1. By default D is D's logits. compare_gan v1 (gans/DRAGAN.py, for Lucic et al. 2018)
    differentiates D's sigmoid output instead, on images in [0, 1], and adds 1e-4 under the norm's
    root: ``on`` probabilities, ``gradient_scale`` 2 and ``slope_eps`` 1e-4 compute it as compare_gan
    does."""

    weight: float = 10.0
    scale: float = 0.5
    on: str = LOGITS
    slope_eps: float = 0.0
    gradient_scale: float = 1.0

    def __post_init__(self) -> None:
        if (problem := outputs_problem("penalty.on", self.on)) is not None:
            raise GanzooError(problem)
        _slope_problem(self.slope_eps, self.gradient_scale)

    def noise(self, real: Tensor, generator: torch.Generator) -> Tensor:
        u = torch.rand(real.shape, device=real.device, dtype=real.dtype, generator=generator)
        return _per_sample(real, generator) * u

    def value(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
              gradient: Gradient) -> Tensor:
        # numpy's std (compare_gan's), without Bessel's correction
        perturbed = real + self.scale * real.std(correction=0) * noise
        return unit_slope_penalty(gradient(D, perturbed, on=self.on), self.weight, self.slope_eps,
                                  self.gradient_scale)


@register_loss("wgan-gp")
@dataclasses.dataclass(frozen=True)
class WassersteinGP(Wasserstein):
    """The Wasserstein loss with Gulrajani et al.'s penalty built in (``gp_weight``), as ganzoo named
    it before penalties were a setting of their own; configs and plugins that name it keep working.
    The wgan-gp variant is ``wasserstein`` with ``penalty=gp``, which draws and computes the same."""

    gp_weight: float = 10.0

    takes_penalty = False  # it has one of its own

    def penalty_noise(self, real: Tensor, generator: torch.Generator) -> Tensor:
        return _per_sample(real, generator)

    def penalty_at(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
                   gradient: Gradient) -> Tensor:
        return GradientPenalty(self.gp_weight).value(D=D, real=real, fake=fake, noise=noise, gradient=gradient)
