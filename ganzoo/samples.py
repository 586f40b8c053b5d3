"""Samples of G: drawn (from noise of their own seed, never the training RNG) and pictured (an image
grid, or for 2D points a scatter over the true mode centres)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from ganzoo.rundir import atomic_write


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


def sample_picture(samples: Tensor, centers: Tensor | None = None) -> bytes:
    """A PNG of samples: an image grid, or for 2D points a scatter over the true mode centres."""
    samples = samples.detach().float().cpu()
    buffer = io.BytesIO()
    if samples.dim() == 4:
        from torchvision.utils import save_image

        nrow = int(len(samples) ** 0.5)
        save_image(samples, buffer, format="png", nrow=max(nrow, 1), normalize=True, value_range=(-1, 1))
    else:
        _scatter(samples, centers, buffer)
    return buffer.getvalue()


def save_samples(path: Path, samples: Tensor, centers: Tensor | None = None) -> bytes:
    """Write ``sample_picture`` to ``path``; returns the PNG, for other places that show it."""
    picture = sample_picture(samples, centers)
    atomic_write(path, lambda f: f.write(picture))
    return picture


def scatter_view(points: Tensor, centers: Tensor | None) -> tuple[float, float, int]:
    """A square view (low, high; the same for both axes) holding the mode centres and the bulk of
    the samples, and how many finite samples fall outside it. The bulk is the 0.5-99.5% quantile
    range, so that a few far outliers (a G on its way to diverging) do not shrink the ring to a dot;
    they are counted instead of silently clipped."""
    finite = points[torch.isfinite(points).all(dim=1)].double()
    parts = [finite.quantile(torch.tensor([0.005, 0.995], dtype=torch.float64), dim=0).flatten()] if len(finite) else []
    if centers is not None:
        parts.append(torch.as_tensor(centers).double().flatten())
    bounds = torch.cat(parts) if parts else torch.tensor([-1.0, 1.0], dtype=torch.float64)
    low, high = float(bounds.min()), float(bounds.max())
    margin = 0.1 * max(high - low, 1e-6)
    low, high = low - margin, high + margin
    outside = int(((finite < low) | (finite > high)).any(dim=1).sum()) if len(finite) else 0
    return low, high, outside


def _scatter(points: Tensor, centers: Tensor | None, buffer: io.BytesIO) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, label="generated")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=40, marker="x", color="red", label="mode centres")
    low, high, outside = scatter_view(points, centers)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    if outside:
        ax.set_title(f"{outside} of {len(points)} samples outside this view", fontsize=8)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
