"""GAN losses, all written on D's raw outputs (logits).

The log-sigmoid forms go through softplus: log D(x) = -softplus(-l) and log(1 - D(x)) = -softplus(l)
stay finite for any logit and are safe under bf16 autocast, where sigmoid followed by log is not.

A loss is a frozen dataclass whose fields are its hyperparameters (e.g. BEGAN's gamma), so it is
built from ``config.json`` and searched by the sweep like everything else. Penalties that need D
itself (gradient penalties) are a setting of their own (``ganzoo.zoo.penalties``), as are the switches
that constrain D (spectral normalisation, weight clipping): Kurach et al. 2019's separate axes.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.core.errors import GanzooError
from ganzoo.core.registry import Registry, dataclass_subclass_of

# What D outputs, which a loss states it needs and an architecture states it gives (ganzoo.zoo.architectures).
LOGITS, RECONSTRUCTION_ERRORS = "logits", "reconstruction errors"
# What of D's logits a term is taken on (the LS loss's and the DRAGAN penalty's ``on``).
PROBABILITIES = "probabilities"
D_OUTPUTS = (LOGITS, PROBABILITIES)
# The inputs each method may name beyond those Loss declares; ganzoo passes a method only those it
# names (compare_gan's call_with_accepted_args), so a loss written for fewer keeps working.
OPTIONAL_INPUTS = {"discriminator_loss": ("state",), "generator_loss": ("real", "state")}


class Loss:
    """D minimises ``discriminator_loss`` (+ a penalty); G minimises ``generator_loss``.

    Both see D's outputs on this step's batches: ``real`` on the data, ``fake`` on G's samples, passed
    by name (so their order in a method's parameters is the method's own). A loss that needs more names
    it as a parameter:

    - ``generator_loss(self, fake, real)``: D's outputs on real data too (relativistic losses), from
      the D that G's update sees, on the last critic step's real batch; no gradient flows into them.
    - ``state`` (either method): the loss's own state, such as BEGAN's equilibrium term k.
      ``initial_state`` gives its values at step 0 and ``next_state`` the values after each D update;
      ganzoo keeps them per member on the device, in checkpoints, and logs each as ``loss_<name>``.
    """

    # Whether a configured penalty (``penalty=gp``, ``dragan``) may be added to D's loss.
    takes_penalty: ClassVar[bool] = True
    # What D must output for this loss: LOGITS, or an autoencoder's RECONSTRUCTION_ERRORS (BEGAN).
    d_output: ClassVar[str] = LOGITS
    # Whether G's objective is minus D's (a zero-sum game: the minimax loss, Wasserstein). An unrolled G
    # (ganzoo.zoo.unrolling) then minimises minus D's whole objective at the look-ahead D, real-data term
    # included, which depends on G through D's look-ahead: Metz et al. 2017's surrogate f_K.
    zero_sum: ClassVar[bool] = False

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def generator_loss(self, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def initial_state(self) -> dict[str, float]:
        """The loss's own state at step 0, by name (none by default)."""
        return {}

    def next_state(self, state: dict[str, Tensor], real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The state after a D update whose outputs (detached) were ``real`` and ``fake``."""
        return state

    def penalty(
        self, D: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator
    ) -> Tensor | None:
        """An extra D loss term of the loss's own that needs D itself. None: no extra term."""
        noise = self.penalty_noise(real=real, generator=generator)
        return None if noise is None else self.penalty_at(D=D, real=real, fake=fake, noise=noise, gradient=input_gradient)

    def penalty_noise(self, real: Tensor, generator: torch.Generator) -> Tensor | None:
        """The random numbers the penalty draws, drawn apart so a population draws them per member."""
        return None

    def penalty_at(
        self, D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, noise: Tensor,
        gradient: Callable[[Callable[[Tensor], Tensor], Tensor], Tensor],
    ) -> Tensor | None:
        """The penalty for given noise; ``gradient(D, x)`` is dD/dx, differentiable (autograd or torch.func)."""
        return None


@functools.cache
def named_inputs(cls: type, method: str) -> frozenset[str]:
    """The optional inputs (OPTIONAL_INPUTS) that ``cls.method`` names as parameters."""
    try:
        parameters = inspect.signature(getattr(cls, method)).parameters
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(name for name in OPTIONAL_INPUTS[method] if name in parameters)


def at_least_float32(x: Tensor) -> Tensor:
    """bf16 or float16 (autocast) taken to float32; float32 and float64 kept as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def input_gradient(D: Callable[[Tensor], Tensor], x: Tensor, on: str = LOGITS) -> Tensor:
    """dD(x)/dx with its graph kept, so that a penalty on it can be backpropagated (eager autograd);
    ``on``: of D's logits, or of their sigmoid probabilities."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(scored(at_least_float32(D(x)), on).sum(), x, create_graph=True)
    return grad


def functional_input_gradient(D: Callable[[Tensor], Tensor], x: Tensor, on: str = LOGITS) -> Tensor:
    """dD(x)/dx through torch.func, usable inside vmap and torch.func.grad (population training)."""
    return torch.func.grad(lambda y: scored(at_least_float32(D(y)), on).sum())(x)


# Registration refuses a loss whose methods ganzoo cannot call as Loss declares them.
LOSSES: Registry[type[Loss]] = Registry(
    "loss", dataclass_subclass_of(Loss, required=("discriminator_loss", "generator_loss"), optional=OPTIONAL_INPUTS)
)
L = TypeVar("L", bound=type[Loss])


def register_loss(name: str) -> Callable[[L], L]:
    return LOSSES.decorator(name)  # type: ignore[return-value]


@register_loss("minimax")
@dataclasses.dataclass(frozen=True)
class Minimax(Loss):
    """Goodfellow et al. 2014 as written: G minimises log(1 - D(G(z))), which saturates early on."""

    zero_sum = True

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        return -F.softplus(fake).mean()


@register_loss("ns")
@dataclasses.dataclass(frozen=True)
class NonSaturating(Minimax):
    """The paper's practical fix: G maximises log D(G(z)) instead."""

    zero_sum = False

    def generator_loss(self, fake: Tensor) -> Tensor:
        return F.softplus(-fake).mean()


def outputs_problem(key: str, value: object) -> str | None:
    """What is wrong with a setting that says what of D's output a term is taken on, or None."""
    if value not in D_OUTPUTS:
        return f"{key} must be one of {', '.join(D_OUTPUTS)}, got {value!r}"
    return None


def scored(x: Tensor, on: str) -> Tensor:
    """D's logits as a term takes them: as they are, or their sigmoid probabilities."""
    return torch.sigmoid(x) if on == PROBABILITIES else x


@register_loss("ls")
@dataclasses.dataclass(frozen=True)
class LeastSquares(Loss):
    """Mao et al. 2017 with targets a=0 (fake), b=1 (real), c=1 (G's target), on D's logits (``on``
    logits) or on its sigmoid probabilities (``on`` probabilities), as compare_gan v1 trains LSGAN for
    Lucic et al. 2018 (gans/LSGAN.py squares D_real - 1.0 and D_fake, the sigmoid outputs, and
    halves the sum) and Kurach et al. 2019's code does too."""

    on: str = LOGITS

    def __post_init__(self) -> None:
        if (problem := outputs_problem("loss.on", self.on)) is not None:
            raise GanzooError(problem)

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        real, fake = scored(real, self.on), scored(fake, self.on)
        return 0.5 * ((real - 1).square().mean() + fake.square().mean())

    def generator_loss(self, fake: Tensor) -> Tensor:
        return 0.5 * (scored(fake, self.on) - 1).square().mean()


@register_loss("wasserstein")
@dataclasses.dataclass(frozen=True)
class Wasserstein(Loss):
    """Arjovsky et al. 2017: D, a critic, scores real data above G's samples; G raises its samples'
    score. It estimates a Wasserstein distance only while D is kept Lipschitz: by weight clipping
    (``d_weight_clip``: the wgan variant), a gradient penalty (``penalty=gp``: wgan-gp) or spectral
    normalisation (``d_spectral_norm``)."""

    zero_sum = True

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return fake.mean() - real.mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        return -fake.mean()


@register_loss("hinge")
@dataclasses.dataclass(frozen=True)
class Hinge(Loss):
    """Lim & Ye 2017 (Geometric GAN), as Miyato et al. 2018 (eqs. 16-17) train SN-GANs with it: D
    minimises the hinge terms relu(1 - real) + relu(1 + fake); G raises its samples' score."""

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        return -fake.mean()


@register_loss("relativistic")
@dataclasses.dataclass(frozen=True)
class Relativistic(Loss):
    """Jolicoeur-Martineau 2018, RSGAN: D estimates the probability that real data is more realistic
    than a sample, sigmoid(real - fake), pair by pair; G the reverse. Only differences of logits
    enter, so adding a constant to all of them changes nothing."""

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return F.softplus(fake - real).mean()

    def generator_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        return F.softplus(real - fake).mean()


@register_loss("relativistic-average")
@dataclasses.dataclass(frozen=True)
class RelativisticAverage(Loss):
    """Jolicoeur-Martineau 2018, RaSGAN: each logit is compared with the mean logit of the other
    batch, sigmoid(real - mean(fake)) and sigmoid(fake - mean(real)), as her code halves it."""

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (F.softplus(fake.mean() - real).mean() + F.softplus(fake - real.mean()).mean())

    def generator_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        return 0.5 * (F.softplus(real - fake.mean()).mean() + F.softplus(real.mean() - fake).mean())


@register_loss("began")
@dataclasses.dataclass(frozen=True)
class BEGAN(Loss):
    """Berthelot et al. 2017: D is an autoencoder whose outputs are reconstruction errors L. D
    minimises L(x) - k L(G(z)), G minimises L(G(z)), and after each D update the equilibrium term
    moves as k <- clip(k + lambda_k (gamma L(x) - L(G(z))), 0, 1) (means over the batch, k_0 = 0),
    which holds E[L(G(z))] / E[L(x)] near gamma, the diversity ratio. k is clipped to [0, 1] as the
    paper defines it (``clip_k``); compare_gan v1 (gans/BEGAN.py, update_k) leaves it unclipped."""

    gamma: float = 0.5
    lambda_k: float = 1e-3
    clip_k: bool = True

    takes_penalty = False  # D's outputs are reconstruction errors, not scores a slope bound is about
    d_output = RECONSTRUCTION_ERRORS

    def discriminator_loss(self, real: Tensor, fake: Tensor, state: dict[str, Tensor]) -> Tensor:
        return real.mean() - state["k"] * fake.mean()

    def generator_loss(self, fake: Tensor) -> Tensor:
        return fake.mean()

    def initial_state(self) -> dict[str, float]:
        return {"k": 0.0}

    def next_state(self, state: dict[str, Tensor], real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        k = state["k"] + self.lambda_k * (self.gamma * real.mean() - fake.mean())
        return {"k": k.clamp(0.0, 1.0) if self.clip_k else k}
