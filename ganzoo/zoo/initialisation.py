"""How a run's networks start: weight initialisation, BatchNorm's settings and G's latent input,
applied to whatever an architecture builds (``variants.build_networks``), so that a protocol can pin
them for every network alike (Lucic et al. 2018 pin all three to compare_gan's).

- ``init``: a registered initialisation, run on G and D after the architecture built them (and
  after the seed: it draws from the global RNG). ``default`` keeps the architecture's own;
  ``compare_gan``, ``xavier`` and ``orthogonal`` are those of the papers' reference code.
- ``batchnorm_eps`` / ``batchnorm_momentum``: set on every BatchNorm of G and D. torch's momentum
  is the weight of the new batch, so TensorFlow's ``decay=0.999`` is momentum 0.001.
- ``z_dist``: the distribution G's input is drawn from. Every path that draws noise (training,
  evaluation, sample pictures, exports) draws z ~ N(0, 1); for ``uniform``, G's first module maps it
  to erf(z / sqrt 2), which is exactly U(-1, 1) (2 Phi(z) - 1), so no path can draw the wrong one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

from ganzoo.core.registry import Registry, callable_with

Initialisation = Callable[[nn.Module], None]

INITIALISATIONS: Registry[Initialisation] = Registry(
    "initialisation", callable_with("module", what="initialisation", see="ganzoo.zoo.initialisation"))
I = TypeVar("I", bound=Initialisation)


def register_initialisation(name: str) -> Callable[[I], I]:
    return INITIALISATIONS.decorator(name)  # type: ignore[return-value]


@register_initialisation("default")
def architecture_default(module: nn.Module) -> None:
    """The architecture's own initialisation (torch's defaults unless it sets one), left as it is."""


# compare_gan v1 (google/compare_gan@49495fd, compare_gan/src/gans/ops.py): linear() draws its matrix
# from random_normal(stddev=0.02), conv2d() from truncated_normal(stddev=0.02) (re-drawn beyond 2 std),
# deconv2d() from random_normal(stddev=0.02); every bias starts at 0.0 (bias_start / constant 0.0);
# batch_norm(scale=True) starts with gamma 1 and beta 0 (tf.contrib.layers' initialisers).
COMPARE_GAN_STD = 0.02


def _initialise(module: nn.Module, weight: Callable[[nn.Module], object]) -> None:
    """``weight(m)`` on every linear and (transposed) convolution ``m``, biases 0, normalisation scales 1
    and shifts 0: every parameter an initialisation covers is set, whatever the architecture drew."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
                weight(m)
            elif isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
                if getattr(m, "weight", None) is not None:
                    nn.init.ones_(m.weight)
            else:
                continue
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


@register_initialisation("compare_gan")
def compare_gan_init(module: nn.Module) -> None:
    """compare_gan v1's (Lucic et al. 2018): linear and transposed-convolution weights N(0, 0.02),
    convolution weights N(0, 0.02) truncated at 2 std, biases 0, normalisation scales 1 and shifts 0."""
    def weight(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, 0.0, COMPARE_GAN_STD, -2 * COMPARE_GAN_STD, 2 * COMPARE_GAN_STD)
        else:
            nn.init.normal_(m.weight, 0.0, COMPARE_GAN_STD)

    _initialise(module, weight)


# TensorFlow's glorot_uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), torch's xavier_uniform_
# at gain 1. It is the default weights_initializer of slim.fully_connected and slim.conv2d (xavier_initializer(),
# biases zeros_initializer()), which VEEGAN's 2D networks keep (akashgit/VEEGAN@97f07b7 VEEGAN_2D_RING.ipynb,
# generative_network and data_network). For a transposed convolution TF and torch swap fan_in and fan_out;
# the bound depends only on their sum.
@register_initialisation("xavier")
def xavier_init(module: nn.Module) -> None:
    """Glorot & Bengio 2010, uniform (TF's glorot_uniform, slim's default): linear and convolution weights
    U(-a, a), a = sqrt(6 / (fan_in + fan_out)), biases 0, normalisation scales 1 and shifts 0."""
    _initialise(module, lambda m: nn.init.xavier_uniform_(m.weight))


# Unrolled GAN's demo (poolio/unrolled_gan@67e2c7a, "Unrolled GAN demo.ipynb", the cell that builds the
# networks): slim.arg_scope([slim.fully_connected], weights_initializer=tf.orthogonal_initializer(gain=1.4)),
# biases slim's zeros. Both make the smaller side of the weight matrix orthonormal, times the gain. The demo has
# no convolutions; here they get the same rule on their weights flattened to (out, in * kernel), as torch's
# orthogonal_ (and TF's orthogonal_initializer, up to the order of the flattening) does.
ORTHOGONAL_GAIN = 1.4


@register_initialisation("orthogonal")
def orthogonal_init(module: nn.Module) -> None:
    """Saxe et al. 2014, as Unrolled GAN's demo (Metz et al. 2017): linear and convolution weights orthogonal
    times 1.4, biases 0, normalisation scales 1 and shifts 0."""
    _initialise(module, lambda m: nn.init.orthogonal_(m.weight, ORTHOGONAL_GAIN))


def set_batchnorm(module: nn.Module, eps: float | None, momentum: float | None) -> None:
    """Every BatchNorm's eps and momentum where given (None: as the architecture built it)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if eps is not None:
                m.eps = eps
            if momentum is not None:
                m.momentum = momentum


LATENTS = ("normal", "uniform")  # z ~ N(0, 1), or U(-1, 1) as compare_gan draws it


class UniformLatent(nn.Module):
    """G fed U(-1, 1) noise: z ~ N(0, 1) mapped by erf(z / sqrt 2), then ``G``."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: Tensor) -> Tensor:
        return self.G(torch.special.erf(z * (1 / math.sqrt(2))))
