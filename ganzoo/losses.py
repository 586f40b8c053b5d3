"""GAN losses, all written on D's raw outputs (logits).

The log-sigmoid forms go through softplus: log D(x) = -softplus(-l) and log(1 - D(x)) = -softplus(l)
stay finite for any logit and are safe under bf16 autocast, where sigmoid followed by log is not.

A loss is a frozen dataclass whose fields are its hyperparameters (e.g. the gradient-penalty
weight), so it is built from ``config.json`` and searched by the sweep like everything else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.registry import Registry, dataclass_subclass_of


class Loss:
    """D minimises ``discriminator_loss`` (+ ``penalty``); G minimises ``generator_loss``."""

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def generator_loss(self, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def penalty(
        self, D: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator
    ) -> Tensor | None:
        """An extra D loss term that needs D itself (gradient penalties). None: no extra term."""
        noise = self.penalty_noise(real, generator)
        return None if noise is None else self.penalty_at(D, real, fake, noise, input_gradient)

    def penalty_noise(self, real: Tensor, generator: torch.Generator) -> Tensor | None:
        """The random numbers the penalty draws, drawn apart so a population draws them per member."""
        return None

    def penalty_at(
        self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
        gradient: Callable[[Callable[[Tensor], Tensor], Tensor], Tensor],
    ) -> Tensor | None:
        """The penalty for given noise; ``gradient(D, x)`` is dD/dx, differentiable (autograd or torch.func)."""
        return None


def at_least_float32(x: Tensor) -> Tensor:
    """bf16 or float16 (autocast) taken to float32; float32 and float64 kept as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def input_gradient(D: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """dD(x)/dx with its graph kept, so that a penalty on it can be backpropagated (eager autograd)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return grad


def functional_input_gradient(D: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """dD(x)/dx through torch.func, usable inside vmap and torch.func.grad (population training)."""
    return torch.func.grad(lambda y: D(y).sum())(x)


# Registration refuses a loss whose methods ganzoo cannot call as Loss declares them.
LOSSES: Registry[type[Loss]] = Registry(
    "loss", dataclass_subclass_of(Loss, required=("discriminator_loss", "generator_loss"))
)
L = TypeVar("L", bound=type[Loss])


def register_loss(name: str) -> Callable[[L], L]:
    return LOSSES.decorator(name)  # type: ignore[return-value]


@register_loss("minimax")
@dataclasses.dataclass(frozen=True)
class Minimax(Loss):
    """Goodfellow et al. 2014 as written: G minimises log(1 - D(G(z))), which saturates early on."""

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        return -F.softplus(fake).mean()


@register_loss("ns")
@dataclasses.dataclass(frozen=True)
class NonSaturating(Minimax):
    """The paper's practical fix: G maximises log D(G(z)) instead."""

    def generator_loss(self, fake: Tensor) -> Tensor:
        return F.softplus(-fake).mean()


@register_loss("ls")
@dataclasses.dataclass(frozen=True)
class LeastSquares(Loss):
    """Mao et al. 2017 with targets a=0 (fake), b=1 (real), c=1 (G's target)."""

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * ((real - 1).square().mean() + fake.square().mean())

    def generator_loss(self, fake: Tensor) -> Tensor:
        return 0.5 * (fake - 1).square().mean()


@register_loss("wgan-gp")
@dataclasses.dataclass(frozen=True)
class WassersteinGP(Loss):
    """Gulrajani et al. 2017: critic scores, plus lambda * (||grad D(x_hat)|| - 1)^2 on interpolates."""

    gp_weight: float = 10.0

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return fake.mean() - real.mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        return -fake.mean()

    def penalty_noise(self, real: Tensor, generator: torch.Generator) -> Tensor:
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        return torch.rand(shape, device=real.device, dtype=real.dtype, generator=generator)

    def penalty_at(
        self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
        gradient: Callable[[Callable[[Tensor], Tensor], Tensor], Tensor],
    ) -> Tensor:
        mixed = noise * real + (1 - noise) * fake
        grad = gradient(D, mixed)
        # Float32 norm: under bf16 autocast the squared sum loses the precision the penalty needs.
        norm = at_least_float32(grad).flatten(1).norm(dim=1)
        return self.gp_weight * (norm - 1).square().mean()
