"""Sample pictures show the samples: a 2D scatter's view holds the centres and the bulk of the points."""

from __future__ import annotations

import torch

from ganzoo.data import ring_centers
from ganzoo.samples import save_samples, scatter_view


def test_the_view_holds_samples_beyond_the_centres():
    centers = ring_centers()  # radius 2: the old fixed view stopped at 3
    points = torch.cat([centers + 0.01, torch.tensor([[4.5, 0.0], [-4.0, 3.9]])])
    low, high, outside = scatter_view(points.repeat(100, 1), centers)
    assert low < -4.0 and high > 4.5 and outside == 0


def test_far_outliers_are_counted_not_allowed_to_shrink_the_view():
    centers = ring_centers()
    points = torch.cat([centers.repeat(200, 1), torch.tensor([[1e6, 0.0], [float("nan"), 0.0]])])
    low, high, outside = scatter_view(points, centers)
    assert -3.0 < low < -2.0 and 2.0 < high < 3.0, "the ring fills the view"
    assert outside == 1, "the far point is counted; the NaN is not a point"


def test_a_scatter_is_written(tmp_path):
    save_samples(tmp_path / "s.png", torch.randn(100, 2) * 5, ring_centers())
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
