"""G's moving average (``g_ema_decay``, ``g_ema_start``): how its weights are averaged and how its
BatchNorm statistics are made before it is evaluated.

Weights: after each G update the average moves towards G's new weights by ``ema_weight``: 1 until
``g_ema_start`` G updates have passed (the average is G), then (1 - decay) / (1 - decay^t) for the
t-th update since, Adam's bias correction (Kingma & Ba 2015, sec. 3). The average is then a weighted
mean of G's iterates since the start, with no weight left on the random initialisation: a plain EMA
from step 0 at decay 0.999 still holds 37% of it after 1,000 steps.

BatchNorm: the averaged weights never ran, so G's running statistics (made by G's own weights) do not
describe their activations. ``recompute_batchnorm`` replaces them by the plain mean of the batch
statistics over STANDING_BATCHES forwards of the averaged G itself, as BigGAN's "standing
statistics" (Brock et al. 2019; BigGAN-PyTorch ``utils.accumulate_standing_stats``, 16 accumulations).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

STANDING_BATCHES = 16  # forwards of batch_samples noise vectors whose batch statistics are averaged
STANDING_SEED_OFFSET = 2  # their noise is seeded by the run's seed + this (fixed_noise's is seed + 1)


def ema_weight(updates: Tensor, decay: Tensor | float, start: Tensor | int) -> Tensor:
    """The weight of G's newest weights in the average after ``updates`` G updates (a device tensor, so
    that a captured step computes it there)."""
    since = updates - start
    corrected = (1 - decay) / (1 - decay ** since.clamp_min(1))
    return torch.where(since > 0, corrected, torch.ones_like(corrected))


def recompute_batchnorm(G: nn.Module, config: Any, device: torch.device) -> None:
    """G's BatchNorm running statistics as the plain mean of its batch statistics over STANDING_BATCHES
    train-mode forwards of ``config.batch_samples`` fixed noise vectors (seeded by the run's seed +
    STANDING_SEED_OFFSET), the batch G trains on (batch_size packs of ``pack``); G's mode and momenta
    are restored."""
    z_dim, batch, seed = config.z_dim, config.batch_samples, config.seed + STANDING_SEED_OFFSET
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    momenta, was_training = [m.momentum for m in norms], G.training
    generator = torch.Generator(device).manual_seed(seed)
    dtype = next(G.parameters()).dtype
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the forwards that follow
        G.train()
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            for _ in range(STANDING_BATCHES):
                G(torch.randn(batch, z_dim, device=device, dtype=dtype, generator=generator))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        G.train(was_training)
