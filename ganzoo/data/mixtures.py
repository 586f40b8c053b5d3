"""2D Gaussian mixtures with known mode centres (so mode coverage can be counted): ring8 and grid25 of the
Unrolled GAN and VEEGAN papers, and PacGAN's ring. Each split is its own seeded draw of the same mixture."""

from __future__ import annotations

import torch
from torch import Tensor

from ganzoo.core.errors import GanzooError
from ganzoo.data.dataset import SOURCE_MIXTURE, Data, DataRequest, DataSource
from ganzoo.data.loading import register_dataset

# Points splits use distinct seeds, so the test split is a fresh draw from the same mixture.
POINT_SEEDS = {"train": 0, "test": 1}
POINT_COUNTS = {"train": 100_000, "test": 10_000}


def ring_centers(n: int = 8, radius: float = 2.0) -> Tensor:
    angles = torch.arange(n, dtype=torch.float64) * (2 * torch.pi / n)
    return (torch.stack([angles.cos(), angles.sin()], dim=1) * radius).float()


def grid_centers(side: int = 5, spacing: float = 2.0) -> Tensor:
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(coords, coords)


def _mixture(name: str, request: DataRequest, centers: Tensor, std: float, layout: str) -> Data:
    if request.resolution is not None:
        raise GanzooError(f"dataset {name!r} is 2-d points; a resolution applies only to images")
    generator = torch.Generator().manual_seed(POINT_SEEDS[request.split])
    n = POINT_COUNTS[request.split]
    mode = torch.randint(len(centers), (n,), generator=generator)
    x = centers[mode] + std * torch.randn((n, 2), generator=generator)
    seed = POINT_SEEDS[request.split]
    source = DataSource(SOURCE_MIXTURE, detail=f"{n} points, {layout}, std {std}, seed {seed}")
    return Data(name, x, mode, "points", (2,), len(centers), centers, std, source=source)


@register_dataset("ring8")
def ring8(request: DataRequest) -> Data:
    """8 modes on a radius-2 circle, std 0.02 (Metz et al., Unrolled GANs)."""
    return _mixture("ring8", request, ring_centers(), 0.02, "8 modes on a radius-2 circle")


@register_dataset("pacgan-ring")
def pacgan_ring(request: DataRequest) -> Data:
    """8 modes on a radius-1 circle, std 0.01: PacGAN's ring (Lin et al. 2018; fjxmlzn/PacGAN@190853e
    synthetic_data_experiments/2DRing_GAN&PacGAN/config.py:6-7), ring8's shape at half its scale."""
    return _mixture("pacgan-ring", request, ring_centers(radius=1.0), 0.01, "8 modes on a radius-1 circle")


@register_dataset("grid25")
def grid25(request: DataRequest) -> Data:
    """5x5 modes on {-4,-2,0,2,4}^2, std 0.05 (Srivastava et al., VEEGAN)."""
    return _mixture("grid25", request, grid_centers(), 0.05, "5x5 modes on {-4,-2,0,2,4}^2")
