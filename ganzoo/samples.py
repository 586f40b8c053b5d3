"""Sample pictures: an image grid, or for 2D points a scatter over the true mode centres."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import Tensor

from ganzoo.rundir import atomic_write


def save_samples(path: Path, samples: Tensor, centers: Tensor | None = None) -> None:
    samples = samples.detach().float().cpu()
    buffer = io.BytesIO()
    if samples.dim() == 4:
        from torchvision.utils import save_image

        nrow = int(len(samples) ** 0.5)
        save_image(samples, buffer, format="png", nrow=max(nrow, 1), normalize=True, value_range=(-1, 1))
    else:
        _scatter(samples, centers, buffer)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _scatter(points: Tensor, centers: Tensor | None, buffer: io.BytesIO) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, label="generated")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=40, marker="x", color="red", label="mode centres")
        lim = float(torch.as_tensor(centers).abs().max()) * 1.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
