"""Sample pictures show the samples: a 2D scatter's view holds the centres and the bulk of the points."""

from __future__ import annotations

import torch

import ganzoo.training.engine
from ganzoo import DATASETS, Data, DataRequest, Trainer, load_dataset, resolve_config
from ganzoo.data import ring_centers
from ganzoo.zoo.samples import (
    REAL_POINTS,
    real_points,
    save_samples,
    scatter_figure,
    scatter_view,
)


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


def test_the_scatter_draws_the_real_points_beneath_the_samples():
    real = torch.tensor([[5.0, 5.0], [6.0, 6.0], [7.0, 5.0]])
    fig = scatter_figure(torch.zeros(10, 2), None, real)
    drawn = {c.get_label(): c.get_offsets() for c in fig.axes[0].collections}
    assert set(drawn) == {"real data", "generated"}, "no centres given, none drawn"
    assert torch.equal(torch.as_tensor(drawn["real data"].data, dtype=torch.float32), real)
    low, high = fig.axes[0].get_xlim()
    assert low < 0.0 and high > 7.0, "the view holds the real points as well as the samples"


def _spiral(request: DataRequest) -> Data:
    """A plugin's 2D points without mode centres."""
    t = torch.linspace(0.0, 6.0, 5000)
    return Data("test-spiral", torch.stack([t * t.cos(), t * t.sin()], dim=1), None, "points", (2,))


def test_a_run_pictures_any_points_dataset_over_its_real_data(tmp_path, monkeypatch, registered):
    registered(DATASETS, "test-spiral", _spiral)
    drawn = []

    def save(path, samples, centers=None, real=None):
        drawn.append((centers, real))
        return b""

    monkeypatch.setattr(ganzoo.training.engine, "save_samples", save)
    config = resolve_config("nsgan", "test-spiral", overrides={"steps": 2, "log_every": 1, "checkpoint_every": 0,
                                                                "batch_size": 16, "device": "cpu"})
    Trainer(config, tmp_path / "run", quiet=True).run()
    (centers, real), = drawn
    spiral = _spiral(None).x
    assert centers is None and real is not None and 100 <= len(real) <= REAL_POINTS
    assert bool((real[:, None] == spiral[None]).all(dim=2).any(dim=1).all()), "the points drawn are the dataset's"
    assert real_points(load_dataset("digits")) is None, "images have no points to draw"
