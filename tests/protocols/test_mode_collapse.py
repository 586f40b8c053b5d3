"""The mode-collapse papers' pieces, pinned to their reference code: PacGAN's 2D networks and ring
(fjxmlzn/PacGAN@190853e, synthetic_data_experiments/2DRing_GAN&PacGAN/), VEEGAN's and Unrolled GAN's
2D networks as the mlp's settings and the xavier and orthogonal initialisations
(akashgit/VEEGAN@97f07b7 VEEGAN_2D_RING.ipynb, poolio/unrolled_gan@67e2c7a "Unrolled GAN demo.ipynb"),
and the mode metrics' known answers (tests/test_behaviour.py has the coverage count's)."""

from __future__ import annotations

import math
import re

import pytest
import torch
from support.paths import page
from torch import nn

from ganzoo import ARCHITECTURES
from ganzoo.data import load_dataset
from ganzoo.zoo.architectures import MLP, Maxout, Reshape
from ganzoo.zoo.initialisation import INITIALISATIONS, orthogonal_init, xavier_init
from ganzoo.zoo.packing import Packed


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
    from ganzoo.training.trainer import Trainer
    from ganzoo.zoo.variants import resolve_config

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
    from ganzoo.training.trainer import Trainer
    from ganzoo.zoo.variants import resolve_config

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
    # config.py:25 (batch 100), 23-24 (Adam 1e-4, beta1 0.8; Blocks' beta2 0.999), 33-36 (z ~ N(0, I_2));
    # bricks.py:69-72 (softplus(-D(x)) + softplus(D(G(z))), G's softplus(-D(G(z))): the non-saturating loss).
    from ganzoo.zoo.variants import resolve_config

    config = resolve_config(variant, "pacgan-ring")
    assert (config.loss, config.arch, config.pack, config.batch_size, config.z_dim, config.z_dist) == (
        "ns", "pacgan", pack, 100, 2, "normal")
    for adam in (config.g_adam, config.d_adam):
        assert (adam.lr, adam.beta1, adam.beta2) == (1e-4, 0.8, 0.999)
    assert config.n_critic == 1 and config.init == "default"  # the architecture's own: N(0, 0.02), as there


@pytest.mark.parametrize("preset, seeds, epochs, device", [("pacgan-2d", 10, 400, "cuda"), ("pacgan-2d-quick", 2, 0.25, "cpu")])
def test_the_pacgan_presets_run_the_papers_table(tmp_path, preset, seeds, epochs, device):
    # config.py: 10 runs a row (44-49), batch 100 (25), 400 epochs (15) of 100,000 points (30: 1,000 updates
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


# ---- VEEGAN's and Unrolled GAN's 2D networks: the mlp's settings and the xavier and orthogonal inits ---------

def old_mlp(sample_shape: tuple[int, ...], z_dim: int, bounded: bool, hidden: int, depth: int) -> tuple[nn.Module, nn.Module]:
    """The mlp as it was built before G and D took their own settings, copied here as it was."""
    size = math.prod(sample_shape)
    g: list[nn.Module] = []
    d: list[nn.Module] = [nn.Flatten()]
    g_in, d_in = z_dim, size
    for _ in range(depth):
        g += [nn.Linear(g_in, hidden), nn.ReLU()]
        d += [nn.Linear(d_in, hidden), nn.LeakyReLU(0.2)]
        g_in = d_in = hidden
    g.append(nn.Linear(hidden, size))
    if bounded:
        g.append(nn.Tanh())
    g.append(Reshape(*sample_shape))
    d += [nn.Linear(hidden, 1), nn.Flatten(0)]
    return nn.Sequential(*g), nn.Sequential(*d)


@pytest.mark.parametrize("shape, bounded", [((2,), False), ((1, 8, 8), True)])
@pytest.mark.parametrize("settings", [{}, {"hidden": 32, "depth": 3}, {"hidden": 16, "depth": 1}])
def test_the_mlps_shared_settings_build_the_networks_they_always_did(shape, bounded, settings):
    torch.manual_seed(3)
    G_old, D_old = old_mlp(shape, 5, bounded, **{"hidden": 256, "depth": 2, **settings})
    torch.manual_seed(3)
    G, D = MLP(**settings).build(shape, 5, bounded)
    z = torch.randn(4, 5)
    for old, new in ((G_old, G), (D_old, D)):
        assert [type(m) for m in new] == [type(m) for m in old]
        assert [m.negative_slope for m in new if isinstance(m, nn.LeakyReLU)] == [0.2] * sum(
            isinstance(m, nn.LeakyReLU) for m in old)
        assert list(new.state_dict()) == list(old.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), old.state_dict().values()))
    assert torch.equal(G(z), G_old(z)) and torch.equal(D(G(z)), D_old(G_old(z)))


def linears(net: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]


def activations(net: nn.Module) -> list[type[nn.Module]]:
    return [type(m) for m in net if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh))]


@pytest.mark.parametrize("settings, z_dim, g_layers, g_act, d_layers, d_act", [
    # VEEGAN_2D_RING.ipynb generative_network: two fully_connected(128, relu), a linear output;
    # data_network: one fully_connected(128, relu), a linear logit.
    ({"hidden": 128, "d_depth": 1, "d_activation": "relu"}, 2,
     [(2, 128), (128, 128), (128, 2)], [nn.ReLU] * 2, [(2, 128), (128, 1)], [nn.ReLU]),
    # Unrolled GAN demo.ipynb generator and discriminator: slim.stack of [128] * 2 fully_connected with tanh, linear
    # outputs; z_dim 256.
    ({"hidden": 128, "g_activation": "tanh", "d_activation": "tanh"}, 256,
     [(256, 128), (128, 128), (128, 2)], [nn.Tanh] * 2, [(2, 128), (128, 128), (128, 1)], [nn.Tanh] * 2),
    # each of G's and D's own settings overrides the shared one, the others keep it
    ({"hidden": 8, "depth": 2, "g_hidden": 16, "g_depth": 3, "d_hidden": 4, "d_activation": "relu"}, 3,
     [(3, 16), (16, 16), (16, 16), (16, 2)], [nn.ReLU] * 3, [(2, 4), (4, 4), (4, 1)], [nn.ReLU] * 2),
    ({"depth": 1, "d_hidden": 6, "d_depth": 4, "g_activation": "leaky_relu"}, 3,
     [(3, 256), (256, 2)], [nn.LeakyReLU], [(2, 6), (6, 6), (6, 6), (6, 6), (6, 1)], [nn.LeakyReLU] * 4),
])
def test_the_mlps_g_and_d_take_their_own_width_depth_and_activation(settings, z_dim, g_layers, g_act, d_layers, d_act):
    G, D = MLP(**settings).build((2,), z_dim, False)
    assert (linears(G), activations(G), linears(D), activations(D)) == (g_layers, g_act, d_layers, d_act)
    assert all(m.negative_slope == 0.2 for m in [*G, *D] if isinstance(m, nn.LeakyReLU))
    assert not isinstance(G[-2], nn.Tanh)  # unbounded points: a linear output, whatever the hidden activation
    assert D(G(torch.randn(7, z_dim))).shape == (7,)


@pytest.mark.parametrize("settings, message", [
    ({"hidden": 0}, "mlp needs hidden, depth, g_hidden, g_depth, d_hidden and d_depth >= 1, got hidden=0"),
    ({"g_depth": 0, "d_hidden": -1}, "d_depth >= 1, got g_depth=0, d_hidden=-1"),
    ({"g_activation": "sigmoid"}, "mlp g_activation must be one of relu, leaky_relu, tanh, got 'sigmoid'"),
    ({"d_activation": "ReLU"}, "mlp d_activation must be one of relu, leaky_relu, tanh, got 'ReLU'"),
])
def test_the_mlp_refuses_sizes_below_1_and_unknown_activations(settings, message):
    from ganzoo import GanzooError
    from ganzoo.zoo.variants import resolve_config

    assert message in MLP(**settings).validate()
    with pytest.raises(GanzooError, match=re.escape(message)):
        resolve_config("nsgan", "ring8", overrides={f"arch.{k}": v for k, v in settings.items()})
    smallest = MLP(g_hidden=1, g_depth=1, d_hidden=1, d_depth=1, g_activation="tanh", d_activation="relu")
    assert smallest.validate() is None


def test_xavier_is_glorot_uniform_with_zero_biases_and_unit_norms():
    # slim.fully_connected's and slim.conv2d's defaults (xavier_initializer(): uniform in +-sqrt(6 / (fan_in +
    # fan_out)); zeros_initializer() biases), which VEEGAN_2D_RING.ipynb keeps.
    torch.manual_seed(0)
    G, D = MLP(hidden=128, d_depth=1, d_activation="relu").build((2,), 2, False)
    G_conv, D_conv = ARCHITECTURES.get("dcgan")(width=8).build((1, 8, 8), 4, True)  # DCGAN draws BN scales N(1, 0.02)
    for net in (G, D, G_conv, D_conv):
        INITIALISATIONS.get("xavier")(net)
    weighted = [m for net in (G, D, G_conv, D_conv) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d,
                                                                                                nn.ConvTranspose2d))]
    assert sum(isinstance(m, nn.Linear) for m in weighted) == 5 and len(weighted) == 9  # 4 convolutions
    for m in weighted:
        receptive = m.weight[0, 0].numel()  # 1 for a Linear, kernel height x width for a convolution
        bound = math.sqrt(6 / ((m.weight.shape[0] + m.weight.shape[1]) * receptive))
        assert m.weight.abs().max() <= bound
        assert m.weight.abs().max() > 0.9 * bound or m.weight.numel() < 100  # filled out to the bound, not N(0, s)
        assert m.bias is None or torch.equal(m.bias, torch.zeros_like(m.bias))
    hidden = G[2].weight  # 128 x 128 draws of U(-a, a): std a / sqrt 3 within 3% (standard error 0.6%)
    assert abs(hidden.std().item() / (math.sqrt(6 / 256) / math.sqrt(3)) - 1) < 0.03
    norms = [m for net in (G_conv, D_conv) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in norms)


def test_orthogonal_gives_orthonormal_weights_times_1_4_and_zero_biases():
    # Unrolled GAN demo.ipynb: tf.orthogonal_initializer(gain=1.4) on every fully_connected, zero biases (slim's).
    torch.manual_seed(0)
    G, D = MLP(hidden=128, g_activation="tanh", d_activation="tanh").build((2,), 256, False)
    for net in (G, D):
        INITIALISATIONS.get("orthogonal")(net)
    for m in (m for net in (G, D) for m in net.modules() if isinstance(m, nn.Linear)):
        w = m.weight.double()
        short, long = sorted(w.shape)
        product = w @ w.T if w.shape[0] == short else w.T @ w  # the shorter side is orthonormal, times the gain
        # float32 weights, each rounded by up to 2**-24 of itself: an entry of the product, a sum of ``long``
        # terms, moves by at most about long * 2**-24 * 1.4**2 (measured: ~5% of it)
        tolerance = 4 * long * 2**-24 * 1.4**2
        assert (product - 1.4**2 * torch.eye(short, dtype=torch.float64)).abs().max() < tolerance, m
        assert torch.equal(m.bias, torch.zeros_like(m.bias))
    assert linears(G)[0] == (256, 128)  # a wide layer: 128 orthonormal rows of 256


def test_xavier_and_orthogonal_are_registered_and_a_config_runs_them():
    from ganzoo.cli import main
    from ganzoo.zoo.variants import build_networks, resolve_config

    assert {"xavier", "orthogonal"} <= set(INITIALISATIONS)
    for init, fill in (("xavier", xavier_init), ("orthogonal", orthogonal_init)):
        config = resolve_config("nsgan", "ring8", overrides={"init": init, "arch.hidden": 16, "arch.d_depth": 1})
        torch.manual_seed(0)
        G, D = build_networks(config, (2,), False)
        torch.manual_seed(0)
        G_ref, D_ref = MLP(hidden=16, d_depth=1).build((2,), config.z_dim, False)
        fill(G_ref)
        fill(D_ref)
        for a, b in zip([*G.state_dict().values(), *D.state_dict().values()],
                        [*G_ref.state_dict().values(), *D_ref.state_dict().values()]):
            assert torch.equal(a, b)
    assert main(["train", "--variant", "nsgan", "--dataset", "ring8", "--set", "init=orthogonal", "--set",
                 "arch.g_activation=tanh", "--set", "arch.d_hidden=64", "--dry-run"]) == 0


# ---- Unrolled GAN and VEEGAN's table: the variants and the presets, pinned to the reference code ---------

def test_the_unrolled_gan_variant_takes_the_demos_settings():
    # poolio/unrolled_gan@67e2c7a "Unrolled GAN demo.ipynb": params cell (batch 512, D lr 1e-4, G lr 1e-3,
    # beta1 0.5, eps 1e-8, z_dim 256, unrolling_steps 5); generator/discriminator cells (2 x 128 tanh, linear
    # out, orthogonal init gain 1.4); the model cell's loss (sigmoid cross-entropy, G minimising -unrolled_loss:
    # the minimax game, which ganzoo's zero-sum minimax loss unrolls as minus D's objective).
    from ganzoo.zoo.losses import LOSSES
    from ganzoo.zoo.variants import VARIANTS, resolve_config

    config = resolve_config("unrolled-gan", "pacgan-ring")
    assert (config.loss, config.arch, config.unroll, config.batch_size, config.z_dim, config.init) == (
        "minimax", "mlp", 5, 512, 256, "orthogonal")
    assert LOSSES.get(config.loss).zero_sum
    assert (config.g_adam.lr, config.d_adam.lr) == (1e-3, 1e-4)
    assert all((a.beta1, a.beta2) == (0.5, 0.999) for a in (config.g_adam, config.d_adam))
    assert MLP(**config.arch_params).sizes() == (128, 2, 128, 2)
    assert (config.arch_params["g_activation"], config.arch_params["d_activation"]) == ("tanh", "tanh")
    assert VARIANTS.get("unrolled-gan").search_space["unroll"].values == (1, 3, 5, 10)  # k is searched


@pytest.mark.parametrize("variant, unroll", [("veegan-gan", 0), ("veegan-unrolled", 5)])
def test_the_veegan_variants_take_the_references_settings(variant, unroll):
    # akashgit/VEEGAN@97f07b7 VEEGAN_2D_RING.ipynb: cell 4 (batch 500, 254 noise inputs + 1 eps, 128 units),
    # cell 10 (the noise-to-points network: 2 ReLU layers of 128, linear output), cell 11 (D: 1 ReLU layer of
    # 128), cell 19 (Adam 1e-3, beta1 0.5; TF's beta2 0.999), slim's default init (Glorot uniform, biases 0);
    # index.md: the unrolled GAN with five unrolling steps.
    from ganzoo.zoo.variants import resolve_config

    config = resolve_config(variant, "grid25")
    assert (config.loss, config.arch, config.unroll, config.batch_size, config.z_dim, config.z_dist, config.init) == (
        "minimax", "mlp", unroll, 500, 255, "normal", "xavier")
    assert MLP(**config.arch_params).sizes() == (128, 2, 128, 1)
    assert (config.arch_params["g_activation"], config.arch_params["d_activation"]) == ("relu", "relu")
    for adam in (config.g_adam, config.d_adam):
        assert (adam.lr, adam.beta1, adam.beta2) == (1e-3, 0.5, 0.999)
    assert config.n_critic == 1


@pytest.mark.parametrize("preset, seeds, steps, device, variants", [
    ("veegan-2d", 5, 100_000, "cuda", ("veegan-gan", "veegan-unrolled")),
    ("veegan-2d-quick", 2, 150, "cpu", ("veegan-gan", "veegan-unrolled")),
    ("veegan-2d-gan", 5, 100_000, "cpu", ("veegan-gan",)),  # the GAN rows alone, at the paper's budget, on a CPU
])
def test_the_veegan_presets_run_the_papers_table(tmp_path, preset, seeds, steps, device, variants):
    # index.md: 2,500 samples from each model, numbers averaged over five runs, a sample high quality within
    # three standard deviations of its nearest mode, a mode captured with one; cell 23: 100 epochs of 1,000
    # iterations; cell 26: the threshold 0.15 = 3 x the grid's std 0.05 (cell 6).
    from ganzoo.data import load_dataset
    from ganzoo.sweep.config import load_preset
    from ganzoo.sweep.study import Sweep

    config = load_preset(preset)
    assert config.variants == variants
    assert config.datasets == ("ring8", "grid25") and config.device == device
    assert (config.n_trials, config.seeds, config.steps, config.epochs, config.budget, config.batch_size) == (
        1, seeds, steps, None, "g_updates", 500)
    assert (config.evaluation.features, config.evaluation.n_samples, config.evaluation.mode_rule) == (
        "points", 2500, "one-sample")
    grid = load_dataset("grid25", "train")
    assert 3 * grid.std == pytest.approx(0.15)
    sweep = Sweep(preset, config, tmp_path)
    for pair in sweep.pairs:  # each row its single configuration: the narrow space fixes it
        space = config.search_space(pair)
        assert {key: dim.values for key, dim in space.items()} == {
            "adam.lr": (1e-3,), "adam.beta1": (0.5,), "n_critic": (1,),
            **({"unroll": (5,)} if pair.variant == "veegan-unrolled" else {})}
        run = config.run_config(pair)
        assert (run.arch, run.z_dim, run.batch_size, run.unroll) == (
            "mlp", 255, 500, 5 if pair.variant == "veegan-unrolled" else 0)


# ---- the protocol tables (ganzoo.protocols.mixtures): every difference named ---------------------------

def protocol_rows(preset, tmp_path):
    from ganzoo import protocols
    from ganzoo.sweep.config import load_preset
    from ganzoo.sweep.study import Sweep

    sweep = Sweep(preset, load_preset(preset), tmp_path)
    context = protocols.Context(sweep.settings(), {p.name: sweep.pair_record(p) for p in sweep.pairs})
    return protocols.reference_table(context)


@pytest.mark.parametrize("preset, reference, quick", [("pacgan-2d", "PACGAN2018", "pacgan-2d-quick"),
                                                      ("veegan-2d", "VEEGAN2017", "veegan-2d-quick")])
def test_the_mode_collapse_protocol_tables_name_every_difference(tmp_path, preset, reference, quick):
    from ganzoo import protocols
    from ganzoo.protocols import mixtures as protocol_mixtures

    found, rows = protocol_rows(preset, tmp_path / "full")
    assert found is getattr(protocol_mixtures, reference)
    assert not [r for r in rows if r.status.startswith(protocols.DIFFERS)], rows
    deviations = [r for r in rows if r.status.startswith(protocols.ON_PURPOSE)]
    assert {r.choice for r in deviations} >= {"update order"}
    assert all(len(r.status) > len(protocols.ON_PURPOSE) + 10 for r in deviations)  # each says why
    # The quick preset differs where a CPU's scale makes it differ, and nowhere else.
    _, rows = protocol_rows(quick, tmp_path / "quick")
    assert {r.choice for r in rows if r.status.startswith(protocols.DIFFERS)} == {"budget", "runs"}


def test_the_veegan_gan_rows_preset_differs_only_in_the_rows_it_leaves_out(tmp_path):
    from ganzoo import protocols

    _, rows = protocol_rows("veegan-2d-gan", tmp_path)
    differs = {r.choice: r.value for r in rows if r.status.startswith(protocols.DIFFERS)}
    assert differs == {"rows": "unroll 0", "unrolling": protocols.tables.NO_SUCH_RUN}


@pytest.mark.parametrize("preset", ["pacgan-2d", "veegan-2d"])
def test_the_readme_carries_the_mode_collapse_tables_as_the_code_makes_them(tmp_path, preset):

    from ganzoo import protocols
    reference, rows = protocol_rows(preset, tmp_path)
    readme = page("protocols").read_text()
    assert protocols.markdown(reference, rows) in readme


@pytest.mark.parametrize("preset", ["pacgan-2d", "veegan-2d-gan"])
def test_simultaneous_updates_are_the_papers_update_order(tmp_path, preset):
    import dataclasses

    from ganzoo import protocols
    from ganzoo.sweep.config import load_preset
    from ganzoo.sweep.study import Sweep

    config = load_preset(preset)
    config = dataclasses.replace(config, settings={**config.settings, "update_order": "simultaneous"})
    sweep = Sweep(preset, config, tmp_path)
    context = protocols.Context(sweep.settings(), {p.name: sweep.pair_record(p) for p in sweep.pairs})
    _, rows = protocols.reference_table(context)
    (order,) = [r for r in rows if r.choice == "update order"]
    assert (order.value, order.status) == ("G and D at once (update_order=simultaneous)", protocols.AS_REFERENCE)
    _, rows = protocol_rows(preset, tmp_path / "as-shipped")
    (order,) = [r for r in rows if r.choice == "update order"]
    assert order.value == "D, then G" and order.status.startswith(protocols.ON_PURPOSE)
