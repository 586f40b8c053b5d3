"""Penalties: extra terms of D's loss that need D itself, a setting apart from the loss (``penalty``,
``penalty.weight``), so that any loss that takes one (``Loss.takes_penalty``) can be trained and
searched with or without it, as Kurach et al. 2019 vary them.

A penalty draws its random numbers in ``noise`` (apart from ``value``, so that a population draws
them per member from each member's generator, in a single run's order) and computes its weighted
term in ``value``, where ``gradient(D, x)`` is dD/dx, differentiable: autograd in a single run,
torch.func in a population.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

from ganzoo.losses import Wasserstein, at_least_float32, register_loss
from ganzoo.registry import Registry, dataclass_subclass_of

NO_PENALTY = "none"  # the ``penalty`` setting's value for no penalty (not a registered entry)

Gradient = Callable[[Callable[[Tensor], Tensor], Tensor], Tensor]


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


def unit_slope_penalty(grad: Tensor, weight: Tensor | float) -> Tensor:
    """weight * mean over samples of (||grad|| - 1)^2: D's slope held at 1 where it is measured."""
    # Float32 norm: under bf16 autocast the squared sum loses the precision the penalty needs.
    norm = at_least_float32(grad).flatten(1).norm(dim=1)
    return weight * (norm - 1).square().mean()


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

    def noise(self, real: Tensor, generator: torch.Generator) -> Tensor:
        return _per_sample(real, generator)

    def value(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
              gradient: Gradient) -> Tensor:
        return unit_slope_penalty(gradient(D, noise * real + (1 - noise) * fake), self.weight)


@register_penalty("dragan")
@dataclasses.dataclass(frozen=True)
class DRAGANPenalty(Penalty):
    """Kodali et al. 2017, as compare_gan computes it for Lucic et al. 2018: weight * (||dD/dx|| - 1)^2
    at x = real + a * scale * std(real) * u, with u ~ U(0, 1) per element, a ~ U(0, 1) per sample and
    std over the whole batch: points around the data, where D's slope is held at 1."""

    weight: float = 10.0
    scale: float = 0.5

    def noise(self, real: Tensor, generator: torch.Generator) -> Tensor:
        u = torch.rand(real.shape, device=real.device, dtype=real.dtype, generator=generator)
        return _per_sample(real, generator) * u

    def value(self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
              gradient: Gradient) -> Tensor:
        # numpy's std (compare_gan's), without Bessel's correction
        perturbed = real + self.scale * real.std(correction=0) * noise
        return unit_slope_penalty(gradient(D, perturbed), self.weight)


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
        return GradientPenalty(self.gp_weight).value(D, real, fake, noise, gradient)
