"""Samples of G: drawn (from noise of their own seed, never the training RNG) and pictured (an image
grid, or for 2D points a scatter over the real data and, where the dataset knows them, its mode centres)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ganzoo.core.rundir import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ganzoo.data import Data

REAL_POINTS = 2000  # real points drawn beneath a scatter's samples


def generate_batches(G: nn.Module, z_dim: int, n: int, seed: int, device: torch.device,
                     batch_size: int = 500) -> Iterator[Tensor]:
    """``n`` samples from G in eval mode, in batches, from noise seeded by ``seed`` (never the
    training RNG); G's mode is restored afterwards."""
    was_training = G.training
    G.eval()
    gen = torch.Generator(device).manual_seed(seed)
    try:
        for i in range(0, n, batch_size):
            # Grad mode and autocast are set per batch, never held across a yield: they are thread
            # state, and a suspended generator would leave them set for its caller.
            with torch.no_grad(), torch.autocast(device.type, enabled=False):  # samples in float32, always
                batch = G(torch.randn(min(batch_size, n - i), z_dim, device=device, generator=gen)).float()
            yield batch
    finally:
        G.train(was_training)


def generate(G: nn.Module, z_dim: int, n: int, seed: int, device: torch.device, batch_size: int = 500) -> Tensor:
    """``n`` samples from G in eval mode from noise seeded by ``seed``; G's mode is restored."""
    return torch.cat(list(generate_batches(G, z_dim, n, seed, device, batch_size)))


def real_points(data: Data) -> Tensor | None:
    """What a scatter draws the samples over: an evenly spaced subset of 2D points data, any
    dataset's (a plugin's too, with or without mode centres); None for images."""
    if data.kind != "points" or data.x is None:
        return None
    return data.x[:: max(len(data.x) // REAL_POINTS, 1)][:REAL_POINTS]


def sample_picture(samples: Tensor, centers: Tensor | None = None, real: Tensor | None = None) -> bytes:
    """A PNG of samples: an image grid, or for 2D points a scatter over the real points and mode centres."""
    samples = samples.detach().float().cpu()
    buffer = io.BytesIO()
    if samples.dim() == 4:
        from torchvision.utils import save_image

        nrow = int(len(samples) ** 0.5)
        save_image(samples, buffer, format="png", nrow=max(nrow, 1), normalize=True, value_range=(-1, 1))
    else:
        fig = scatter_figure(samples, centers, real)
        import matplotlib.pyplot as plt  # after scatter_figure has chosen the Agg backend

        fig.savefig(buffer, format="png")
        plt.close(fig)
    return buffer.getvalue()


def save_samples(path: Path, samples: Tensor, centers: Tensor | None = None, real: Tensor | None = None) -> bytes:
    """Write ``sample_picture`` to ``path``; returns the PNG, for other places that show it."""
    picture = sample_picture(samples, centers, real)
    atomic_write(path, lambda f: f.write(picture))
    return picture


def scatter_view(points: Tensor, centers: Tensor | None, real: Tensor | None = None) -> tuple[float, float, int]:
    """A square view (low, high; the same for both axes) holding the mode centres and the bulk of
    the samples and of the real points, and how many finite samples fall outside it. The bulk is the
    0.5-99.5% quantile range, so that a few far outliers (a G on its way to diverging) do not shrink
    the ring to a dot; they are counted instead of silently clipped."""
    finite = points[torch.isfinite(points).all(dim=1)].double()
    bulk = torch.tensor([0.005, 0.995], dtype=torch.float64)
    parts = [finite.quantile(bulk, dim=0).flatten()] if len(finite) else []
    if real is not None and len(real):
        parts.append(real.detach().cpu().double().quantile(bulk, dim=0).flatten())
    if centers is not None:
        parts.append(torch.as_tensor(centers).double().flatten())
    bounds = torch.cat(parts) if parts else torch.tensor([-1.0, 1.0], dtype=torch.float64)
    low, high = float(bounds.min()), float(bounds.max())
    margin = 0.1 * max(high - low, 1e-6)
    low, high = low - margin, high + margin
    outside = int(((finite < low) | (finite > high)).any(dim=1).sum()) if len(finite) else 0
    return low, high, outside


def scatter_figure(points: Tensor, centers: Tensor | None, real: Tensor | None = None) -> Figure:
    """2D samples (blue) over the real points (grey) and the mode centres (red crosses) where given."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    points = points.detach().float().cpu()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        real = real.detach().float().cpu()
        ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.3, color="grey", label="real data")
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, label="generated")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=40, marker="x", color="red", label="mode centres")
    low, high, outside = scatter_view(points, centers, real)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    if outside:
        ax.set_title(f"{outside} of {len(points)} samples outside this view", fontsize=8)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig
