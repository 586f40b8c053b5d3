"""Mode coverage on Gaussian mixtures (VEEGAN, Srivastava et al. 2017; Unrolled GAN, Metz et al. 2017).

A sample is high quality when it lies within ``n_std`` standard deviations of its nearest mode
centre. A mode counts as covered when at least ``min_share`` of all samples are high-quality
samples assigned to it: with 2,500 samples and 1% that is 25, so a handful of stray points in
passing does not count as covering a mode.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor


@dataclasses.dataclass(frozen=True)
class ModeCoverage:
    modes_covered: int
    n_modes: int
    high_quality_share: float
    counts: tuple[int, ...]  # high-quality samples per mode


def mode_coverage(
    samples: Tensor, centers: Tensor, std: float, n_std: float = 3.0, min_share: float = 0.01
) -> ModeCoverage:
    samples, centers = samples.detach().float().cpu(), centers.float().cpu()
    distance, nearest = torch.cdist(samples, centers).min(dim=1)
    good = distance <= n_std * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    covered = int((counts >= max(1.0, min_share * len(samples))).sum())
    share = float(good.float().mean()) if len(samples) else 0.0
    return ModeCoverage(covered, len(centers), share, tuple(int(c) for c in counts))
