"""PacGAN's packing (Lin et al. 2018): D judges packs of m samples instead of single ones.

A pack is m samples of one side, real with real and fake with fake, concatenated along the first
axis of a sample: the coordinates of points (PacGAN's 2D experiments: D's input is 2m numbers,
fjxmlzn/PacGAN@190853e synthetic_data_experiments/PacGAN/pacgan/bricks.py:46-48,63-67) or the
channels of images (its image experiments). D sees one pack as one sample of the packed shape and
gives one logit per pack, so an architecture builds D for that shape and any loss applies unchanged.

``batch_size`` counts packs, as PacGAN's batch of 100 does for every m: a D update draws
batch_size x m real samples and batch_size x m noise vectors, so m = 1 is the unpacked run exactly.
The m samples of a pack are consecutive in the batch; batches are drawn at random, so they are m
independent draws (PacGAN's m reshuffled copies of the data, datasets.py:70-83, draw with
replacement across copies; ganzoo draws the batch without replacement within an epoch).

What differs from a pack-free D: a gradient penalty (WGAN-GP, DRAGAN) takes each sample's gradient
norm, not each pack's.
"""

from __future__ import annotations

from torch import Tensor, nn


def packed_shape(sample_shape: tuple[int, ...], pack: int) -> tuple[int, ...]:
    """The shape of one pack of ``pack`` samples: the first axis ``pack`` times as long."""
    return (sample_shape[0] * pack, *sample_shape[1:])


class Packed(nn.Module):
    """``D`` on packs of ``pack`` consecutive samples: (B x pack, *shape) -> B logits."""

    def __init__(self, D: nn.Module, pack: int) -> None:
        super().__init__()
        self.D, self.pack = D, pack

    def forward(self, x: Tensor) -> Tensor:
        n, first, *rest = x.shape
        # (B, pack, first, ...) -> (B, pack * first, ...): a pack's samples side by side on the first axis
        return self.D(x.reshape(n // self.pack, self.pack * first, *rest))
