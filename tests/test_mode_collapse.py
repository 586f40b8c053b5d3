"""The mode-collapse papers' pieces, pinned to their reference code: PacGAN's 2D networks and ring
(fjxmlzn/PacGAN@190853e, synthetic_data_experiments/2DRing_GAN&PacGAN/), and the mode metrics'
known answers (tests/test_behaviour.py has the coverage count's)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganzoo import ARCHITECTURES
from ganzoo.data import load_dataset
from ganzoo.models import Maxout
from ganzoo.packing import Packed


def test_pacgan_networks_have_the_reference_shapes():
    # pacgan_task.py:43-95 with config.py:17-22: G [2, 400, 400, 400, 400, 2], hidden Linears without a
    # bias (use_bias=False pushed, the last one's set back to True), BatchNormalization (Blocks' epsilon
    # 1e-4; population statistics updated 0.95 / 0.05, pacgan_task.py:123-149) and Rectifier; D three
    # LinearMaxout(200 units, 5 pieces) and a Linear to one logit; IsotropicGaussian(0.02), biases 0.
    torch.manual_seed(0)
    G, D = ARCHITECTURES.get("pacgan")().build((2,), 2, False)
    linears = [m for m in G if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features, m.bias is not None) for m in linears] == [
        (2, 400, False), (400, 400, False), (400, 400, False), (400, 400, False), (400, 2, True)]
    norms = [m for m in G if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 4 and all((m.eps, m.momentum, m.affine) == (1e-4, 0.05, True) for m in norms)
    assert all(torch.equal(m.weight, torch.ones(400)) and torch.equal(m.bias, torch.zeros(400)) for m in norms)
    assert [type(m) for m in G] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 4 + [nn.Linear]  # no output activation
    maxouts = [m for m in D if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.units, m.pieces) for m in maxouts] == [(2, 200, 5), (200, 200, 5), (200, 200, 5)]
    (head,) = [m for m in D if isinstance(m, nn.Linear)]
    assert (head.in_features, head.out_features) == (200, 1)
    weights = torch.cat([m.weight.flatten() for m in [*linears, head, *(x.linear for x in maxouts)]])
    # ~0.9M draws of N(0, 0.02): std within 1% and mean within 1e-4 (standard errors 1.5e-5 and 2e-5)
    assert abs(weights.std().item() - 0.02) < 2e-4 and abs(weights.mean().item()) < 1e-4
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in [linears[-1], head, *(x.linear for x in maxouts)])
    assert D(G(torch.randn(7, 2))).shape == (7,)


def test_maxout_takes_each_units_largest_of_its_contiguous_pieces():
    maxout = Maxout(1, 2, 3)
    with torch.no_grad():
        maxout.linear.weight.copy_(torch.tensor([[1.0], [-2.0], [0.5], [3.0], [-1.0], [0.0]]))
        maxout.linear.bias.zero_()
    x = torch.tensor([[1.0], [-1.0]])
    # unit 0: max(x, -2x, x/2); unit 1: max(3x, -x, 0)
    assert torch.equal(maxout(x), torch.tensor([[1.0, 3.0], [2.0, 1.0]]))


@pytest.mark.parametrize("split, n", [("train", 100_000), ("test", 10_000)])
def test_the_pacgan_ring_is_the_references(split, n):
    # config.py:6-7: 8 modes at (cos 2 pi k / 8, sin 2 pi k / 8), variance 0.01^2; 100,000 training points.
    data = load_dataset("pacgan-ring", split)
    angles = torch.arange(8) * (2 * math.pi / 8)
    assert torch.allclose(data.centers, torch.stack([angles.cos(), angles.sin()], 1), atol=1e-7)
    assert data.std == 0.01 and data.x.shape == (n, 2) and data.kind == "points"
    spread = (data.x - data.centers[data.y]).std().item()
    assert abs(spread - 0.01) < 0.01 * 5 / math.sqrt(n)  # within 5 standard errors of the std's estimate


def test_a_pack_is_its_samples_side_by_side():
    # PacGAN's D input for m = 3: concatenate([x1, x2, x3], axis=1) (pacgan/bricks.py:63-67).
    D = nn.Linear(6, 1)
    packed = Packed(nn.Sequential(D, nn.Flatten(0)), 3)
    x = torch.randn(6, 2)
    by_hand = torch.stack([D(torch.cat([x[0], x[1], x[2]])), D(torch.cat([x[3], x[4], x[5]]))]).flatten()
    assert torch.equal(packed(x), by_hand)
    images = torch.randn(4, 1, 8, 8)  # images side by side on the channels
    conv = nn.Conv2d(2, 1, 8)
    assert torch.equal(Packed(nn.Sequential(conv, nn.Flatten(0)), 2)(images),
                       conv(torch.cat([images[0::2], images[1::2]], 1)).flatten())


def test_packing_one_is_the_plain_gan_bit_for_bit(tmp_path):
    from ganzoo.trainer import Trainer
    from ganzoo.variants import resolve_config

    overrides = {"steps": 6, "batch_size": 16, "device": "cpu", "log_every": 3, "checkpoint_every": 6,
                 "sample_every": 0}
    plain = Trainer(resolve_config("nsgan", "ring8", overrides=overrides), tmp_path / "plain", quiet=True)
    packed = Trainer(resolve_config("nsgan", "ring8", overrides={**overrides, "pack": 1}), tmp_path / "one", quiet=True)
    plain.run()
    packed.run()
    assert not isinstance(packed.D, Packed)
    for a, b in zip([*plain.G.state_dict().values(), *plain.D.state_dict().values()],
                    [*packed.G.state_dict().values(), *packed.D.state_dict().values()]):
        assert torch.equal(a, b)


def test_a_packed_run_draws_pack_times_the_samples_and_D_judges_packs(tmp_path):
    from ganzoo.trainer import Trainer
    from ganzoo.variants import resolve_config

    config = resolve_config("nsgan", "pacgan-ring", arch="pacgan", overrides={
        "steps": 2, "batch_size": 8, "pack": 3, "z_dim": 2, "device": "cpu", "log_every": 1, "checkpoint_every": 2,
        "sample_every": 0})
    trainer = Trainer(config, tmp_path, quiet=True)
    assert isinstance(trainer.D, Packed) and trainer.D.D[0].linear.in_features == 6  # 3 samples of 2 coordinates
    assert trainer.body.plan().shape == (1, 24) and trainer.body._noise().shape == (24, 2)
    assert trainer.run().status == "completed"
    with pytest.raises(Exception, match="pack must be > 0"):
        resolve_config("nsgan", "ring8", overrides={"pack": 0})


@pytest.mark.parametrize("variant, pack", [("pacgan-gan", 1), ("pacgan2", 2), ("pacgan3", 3), ("pacgan4", 4)])
def test_the_pacgan_variants_take_the_references_settings(variant, pack):
    # config.py:15 (batch 100), 23-24 (Adam 1e-4, beta1 0.8; Blocks' beta2 0.999), 33-36 (z ~ N(0, I_2));
    # bricks.py:69-72 (softplus(-D(x)) + softplus(D(G(z))), G's softplus(-D(G(z))): the non-saturating loss).
    from ganzoo.variants import resolve_config

    config = resolve_config(variant, "pacgan-ring")
    assert (config.loss, config.arch, config.pack, config.batch_size, config.z_dim, config.z_dist) == (
        "ns", "pacgan", pack, 100, 2, "normal")
    for adam in (config.g_adam, config.d_adam):
        assert (adam.lr, adam.beta1, adam.beta2) == (1e-4, 0.8, 0.999)
    assert config.n_critic == 1 and config.init == "default"  # the architecture's own: N(0, 0.02), as there


@pytest.mark.parametrize("preset, seeds, epochs, device", [("pacgan-2d", 10, 400, "cuda"), ("pacgan-2d-quick", 2, 0.25, "cpu")])
def test_the_pacgan_presets_run_the_papers_table(tmp_path, preset, seeds, epochs, device):
    # config.py: 10 runs a row (44-49), batch 100 (15), 400 epochs (25) of 100,000 points (30: 1,000 updates
    # an epoch), 2,500 samples scored (32); the rows GAN and PacGAN2..4 on the ring and the grid.
    from ganzoo.sweep.config import load_preset
    from ganzoo.sweep.study import Sweep

    config = load_preset(preset)
    assert config.variants == ("pacgan-gan", "pacgan2", "pacgan3", "pacgan4")
    assert config.datasets == ("pacgan-ring", "grid25") and config.device == device
    assert (config.n_trials, config.seeds, config.epochs, config.budget, config.batch_size) == (1, seeds, epochs,
                                                                                          "g_updates", 100)
    assert config.updates(100_000) == epochs * 1_000
    assert (config.evaluation.features, config.evaluation.n_samples, config.evaluation.mode_rule) == (
        "points", 2500, "one-sample")
    sweep = Sweep(preset, config, tmp_path)
    for pair in sweep.pairs:  # each row its single configuration: the narrow space fixes it
        space = config.search_space(pair)
        assert {key: dim.values for key, dim in space.items()} == {
            "adam.lr": (1e-4,), "adam.beta1": (0.8,), "n_critic": (1,)}
        run = config.run_config(pair)
        assert (run.arch, run.z_dim, run.batch_size, run.pack) == ("pacgan", 2, 100, {
            "pacgan-gan": 1, "pacgan2": 2, "pacgan3": 3, "pacgan4": 4}[pair.variant])
