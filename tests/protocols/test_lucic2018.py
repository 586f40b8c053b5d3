"""Each choice of the Lucic et al. 2018 protocol pinned to the code behind that paper.

The reference values below are transcribed here, apart from ganzoo's own transcription
(ganzoo.protocols.ranges, ganzoo.protocols), from google/compare_gan at 49495fd (2018-02-12, the code released
with the paper), compare_gan/src/; each cites its file and lines. A test fails when ganzoo's value
moves away from the reference's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from support.paths import page
from torch import nn

from ganzoo.protocols.budget import D_UPDATES
from ganzoo.protocols.ranges import Choice, LogUniform, Uniform
from ganzoo.sweep import Sweep, SweepConfig, load_preset
from ganzoo.sweep.config import Pair
from ganzoo.zoo.initialisation import UniformLatent
from ganzoo.zoo.losses import LeastSquares, input_gradient
from ganzoo.zoo.penalties import DRAGANPenalty, GradientPenalty
from ganzoo.zoo.variants import build_networks

LUCIC = load_preset("fashion-mnist")


def lucic_config(variant: str, **overrides: object):
    """A run of the preset's variant as its trials resolve it (its settings, then ``overrides``)."""
    return LUCIC.run_config(Pair(variant, "fashion-mnist"), **overrides)


# ---- budget ----------------------------------------------------------------------------------------

def test_the_lucic_budget_is_compare_gans_in_d_updates_whatever_n_critic():
    # generate_tasks_lib.py:141-145: epoch = 50000; s["training_steps"] = 20 * epoch // BATCH_SIZE (64);
    # s["save_checkpoint_steps"] = 5 * epoch // BATCH_SIZE. abstract_gan.py:203-207: a D update every step,
    # G every disc_iters of them.
    reference_updates, reference_checkpoint = 20 * 50000 // 64, 5 * 50000 // 64
    assert LUCIC.budget == D_UPDATES and LUCIC.batch_size == 64 and LUCIC.eval_every == reference_checkpoint
    fashion_mnist_train = 60_000  # the epoch is compare_gan's 50,000, not the split's size
    for n_critic in (1, 5):
        steps, every = LUCIC.run_length(n_critic, fashion_mnist_train)
        assert steps * n_critic == reference_updates == 15_625, n_critic
        assert every == round(reference_checkpoint / n_critic)


def test_two_trials_with_n_critic_1_and_5_pass_the_same_real_images_through_d(tmp_path, monkeypatch):
    """One study in D updates, the grid sampler giving one trial n_critic 1 and one n_critic 5: each trial's
    D sees the same real images (D updates x batch), counted where D's updates take them."""
    import ganzoo.training.trainer

    seen: dict[int, int] = {}
    original = ganzoo.training.trainer.ModuleStep._d_update

    def counting(self, real, keep, norms):
        seen[self.config.n_critic] = seen.get(self.config.n_critic, 0) + real.shape[0]
        return original(self, real, keep, norms)

    monkeypatch.setattr(ganzoo.training.trainer.ModuleStep, "_d_update", counting)
    from ganzoo.core.config import EvalSpec

    config = SweepConfig(variants=("nsgan",), datasets=("ring8",), n_trials=2, sampler="grid", space="narrow",
                         budget=D_UPDATES, steps=40, batch_size=16, device="cpu", default_trial=False,
                         extra_space={"n_critic": {"choice": [1, 5]}}, evaluation=EvalSpec(n_samples=100))
    Sweep("budget", config, tmp_path).run()
    assert seen == {1: 40 * 16, 5: 40 * 16}


# ---- search spaces ---------------------------------------------------------------------------------

# params.py:63-88 (GetDefaultWideRange, GetDefaultNarrowRange) and each loss's function; ranges of log
# parameters are exponents of 10 (generate_tasks_lib.py:106-109: v = math.pow(10, random.uniform(*range))).
# name: (default, range, is_log_scale, is_discrete), the ParamInfo fields (params.py:30).
_WIDE = {"beta1": (0.5, [0.0, 1.0], False, False), "learning_rate": (0.0001, [-5.0, -2.0], True, False),
         "disc_iters": (1, [1, 5], False, True), "discriminator_batchnorm": (True, [True, False], False, True)}
_NARROW = {"beta1": (0.5, [0.5], False, True), "learning_rate": (0.0001, [-4.0, -3.0], True, False),
           "disc_iters": (1, [1], False, True)}
REFERENCE = {
    # GANHyperParams, params.py:100-114 (GAN and GAN_MINMAX)
    "gan": ({"beta1": 0.0, "learning_rate": 0.00005, "disc_iters": 1, "discriminator_batchnorm": True},
            {"narrow": {"discriminator_batchnorm": (True, [True, False], False, True)}}),
    # LSGANHyperParams, params.py:117-130
    "lsgan": ({"beta1": 0.5, "learning_rate": 0.0002, "disc_iters": 1, "discriminator_batchnorm": True},
              {"narrow": {"discriminator_batchnorm": (True, [True, False], False, True)}}),
    # WGANHyperParams, params.py:133-151
    "wgan": ({"beta1": 0.5, "learning_rate": 0.00005, "disc_iters": 5, "discriminator_batchnorm": True},
             {"wide": {"weight_clipping": (0.01, [-3.0, 0.0], True, False)},
              "narrow": {"weight_clipping": (0.01, [-2.0, 0.0], True, False),
                         "discriminator_batchnorm": (True, [True, False], False, True)}}),
    # WGANGPHyperParams, params.py:154-173
    "wgan-gp": ({"beta1": 0.5, "learning_rate": 0.0001, "disc_iters": 5, "discriminator_batchnorm": False},
                {"wide": {"lambda": (10.0, [-1.0, 2.0], True, False)},
                 "narrow": {"lambda": (10.0, [-1.0, 1.0], True, False),
                            "discriminator_batchnorm": (False, [False], False, True)}}),
    # DRAGANHyperParams, params.py:176-195
    "dragan": ({"beta1": 0.5, "learning_rate": 0.0001, "disc_iters": 1, "discriminator_batchnorm": True},
               {"wide": {"lambda": (10.0, [-1.0, 2.0], True, False)},
                "narrow": {"lambda": (10.0, [-1.0, 1.0], True, False),
                           "discriminator_batchnorm": (False, [False], False, True)}}),
    # BEGANHyperParams, params.py:214-238
    "began": ({"beta1": 0.5, "learning_rate": 0.0001, "disc_iters": 5, "discriminator_batchnorm": False},
              {"wide": {"lambda": (0.001, [-4.0, -2.0], True, False), "gamma": (0.75, [0.0, 1.0], False, False)},
               "narrow": {"lambda": (0.001, [-3.0, -3.0], True, False), "gamma": (0.75, [0.6, 0.9], False, False),
                          "discriminator_batchnorm": (False, [True, False], False, True)}}),
}
GANZOO_KEY = {"beta1": "adam.beta1", "learning_rate": "adam.lr", "disc_iters": "n_critic",
              "discriminator_batchnorm": "arch.d_batchnorm", "weight_clipping": "d_weight_clip"}
VARIANT_OF = {"vanilla": "gan", "nsgan": "gan", "lsgan": "lsgan", "wgan": "wgan", "wgan-gp": "wgan-gp",
              "dragan": "dragan", "began": "began"}


def reference_space(loss: str, range_type: str) -> dict[str, object]:
    """compare_gan's ParamRanges for ``loss`` as ganzoo's distributions (its UpdateDefaults applied)."""
    defaults, extra = REFERENCE[loss]
    params = dict(_WIDE if range_type == "wide" else _NARROW)
    params.update(extra.get(range_type, {}))
    out = {}
    for name, (default, values, log, discrete) in params.items():
        default = defaults.get(name, default)
        key = GANZOO_KEY.get(name) or {"lambda": "loss.lambda_k" if loss == "began" else "penalty.weight",
                                       "gamma": "loss.gamma"}[name]
        if discrete:
            out[key] = Choice(tuple(values), default)
        elif log:
            out[key] = LogUniform(10.0 ** values[0], 10.0 ** values[1], default)
        else:
            out[key] = Uniform(values[0], values[1], default)
    return out


@pytest.mark.parametrize("range_type", ["wide", "narrow"])
@pytest.mark.parametrize("variant", sorted(VARIANT_OF))
def test_each_losss_ranges_and_defaults_are_compare_gans(variant: str, range_type: str):
    """On the shared network, each Lucic et al. loss searches compare_gan's ranges with its defaults
    (Adam's beta2 is not among them: its AdamOptimizer(lr, beta1) keeps 0.999)."""
    import dataclasses

    config = dataclasses.replace(LUCIC, space=range_type)
    space = config.search_space(Pair(variant, "fashion-mnist"))
    assert space == reference_space(VARIANT_OF[variant], range_type)
    assert "adam.beta2" not in space and lucic_config(variant).g_adam.beta2 == 0.999


def test_the_default_configuration_is_the_first_trial(tmp_path):
    """generate_tasks_lib.py:121-123: samples = [GetDefaultParams(gan_params)], then random samples.
    In the narrow range a default may lie outside it (GAN's beta1 0.0 where the range is [0.5]; WGAN's
    5 critic steps where it is [1]): the first trial takes it all the same."""
    import dataclasses

    narrow = dataclasses.replace(LUCIC, space="narrow")
    sweep = Sweep("default", narrow, tmp_path)
    params, fixed = sweep.default_point(Pair("wgan", "fashion-mnist"))
    assert params == {"adam.lr": 0.00005, "arch.d_batchnorm": True, "d_weight_clip": 0.01}
    assert fixed == {"adam.beta1": 0.5, "n_critic": 5}
    params, fixed = sweep.default_point(Pair("nsgan", "fashion-mnist"))
    assert fixed == {"adam.beta1": 0.0, "n_critic": 1} and params["adam.lr"] == 0.00005

    from ganzoo.core.config import EvalSpec

    config = SweepConfig(variants=("nsgan",), datasets=("ring8",), n_trials=2, sampler="random", space="wide",
                         steps=4, batch_size=16, device="cpu", evaluation=EvalSpec(n_samples=100))
    Sweep("first", config, tmp_path).run()
    import optuna

    trials = optuna.load_study(study_name="first/nsgan@ring8", storage=f"sqlite:///{tmp_path / 'first' / 'study.db'}").trials
    assert trials[0].params == {"adam.lr": 0.00005, "adam.beta1": 0.0, "n_critic": 1}  # GANHyperParams' defaults
    assert trials[0].user_attrs["default_trial"] is True and "default_trial" not in trials[1].user_attrs
    assert trials[1].params != trials[0].params


# ---- losses and penalties --------------------------------------------------------------------------

def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def test_the_ls_loss_on_probabilities_is_compare_gans():
    """LSGAN.py:62-71: D_real, D_fake are the sigmoid outputs; d_loss = 0.5 * (mean((D_real - 1)^2) +
    mean(D_fake^2)); g_loss = 0.5 * mean((D_fake - 1)^2)."""
    assert lucic_config("lsgan").loss_params == {"on": "probabilities"}
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(64, generator=generator, dtype=torch.float64) * 3, torch.randn(64, generator=generator,
                                                                                          dtype=torch.float64) * 3
    loss = LeastSquares(on="probabilities")
    r, f = _sigmoid(real.numpy()), _sigmoid(fake.numpy())
    # float64 on both sides over 64 terms: within 64 ulps of values below 1
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (np.mean((r - 1) ** 2) + np.mean(f ** 2)),
                                                                       rel=0, abs=64 * 2**-52)
    assert loss.generator_loss(fake).item() == pytest.approx(0.5 * np.mean((f - 1) ** 2), rel=0, abs=64 * 2**-52)
    # on logits (Mao et al.'s form on raw scores) it is another loss
    assert abs(LeastSquares().generator_loss(fake).item() - 0.5 * np.mean((f - 1) ** 2)) > 0.1


class _Linear(nn.Module):
    """D(x) = w . x + b: its input gradient is known in closed form."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(w), b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w + self.b


def test_the_dragan_penalty_is_compare_gans():
    """DRAGAN.py:45-46 and 86-96: x_p = x + 0.5 * x.std() * np.random.random(x.shape); interpolates = x +
    alpha (x_p - x), alpha ~ U(0, 1) a sample; gradients of D_inter, the sigmoid output, with respect to
    the [0, 1] images (gan_lib.py:77); slopes = sqrt(0.0001 + sum g^2); penalty mean((slopes - 1)^2)
    times lambda."""
    config = lucic_config("dragan")
    assert config.penalty == "dragan"
    assert config.penalty_params == {"weight": 10.0, "on": "probabilities", "slope_eps": 0.0001, "gradient_scale": 2.0}
    generator = torch.Generator().manual_seed(1)
    real = torch.rand(16, 1, 4, 4, generator=generator, dtype=torch.float64) * 2 - 1  # ganzoo's [-1, 1] images
    w = torch.randn(16, generator=generator, dtype=torch.float64) * 0.3
    D = _Linear(w, 0.2)
    penalty = DRAGANPenalty(weight=10.0, on="probabilities", slope_eps=1e-4, gradient_scale=2.0)
    noise = penalty.noise(real, generator)
    value = penalty.value(D, real, real, noise, input_gradient).item()

    # compare_gan's side, on its [0, 1] images x = (x' + 1) / 2 and its D, D_cg(x) = D(2x - 1)
    x = (real.numpy().reshape(16, -1) + 1) / 2
    # ganzoo draws a * u as one tensor (noise); x + a (x_p - x) = x + 0.5 std(x) (a u), std of the batch
    points = x + 0.5 * x.std() * noise.numpy().reshape(16, -1)
    s = _sigmoid((2 * points - 1) @ w.numpy() + 0.2)
    gradient = (s * (1 - s))[:, None] * 2 * w.numpy()[None, :]  # d sigmoid(D(2x - 1)) / dx
    slopes = np.sqrt(1e-4 + np.sum(gradient**2, axis=1))
    # float64 throughout: a few dozen ulps of a value of order 10
    assert value == pytest.approx(10.0 * np.mean((slopes - 1) ** 2), rel=1e-12)
    # the logits' gradient in [-1, 1] units (ganzoo's default, Kodali et al.'s form on D's scores) is another penalty
    logits = DRAGANPenalty(weight=10.0).value(D, real, real, noise, input_gradient).item()
    assert abs(logits - value) > 1e-3


def test_the_wgan_gp_penalty_is_compare_gans():
    """WGAN_GP.py:73-83: interpolates = x + alpha (G - x); gradients of D's logits with respect to the
    [0, 1] images; slopes = sqrt(0.0001 + sum g^2)."""
    assert lucic_config("wgan-gp").penalty_params == {"weight": 10.0, "slope_eps": 0.0001, "gradient_scale": 2.0}
    generator = torch.Generator().manual_seed(2)
    real, fake = (torch.randn(8, 3, generator=generator, dtype=torch.float64) for _ in range(2))
    w = torch.randn(3, generator=generator, dtype=torch.float64)
    penalty = GradientPenalty(weight=10.0, slope_eps=1e-4, gradient_scale=2.0)
    value = penalty.value(_Linear(w, 0.0), real, fake, penalty.noise(real, generator), input_gradient).item()
    # a linear D: the same gradient everywhere, w in ganzoo's [-1, 1] units, 2w in compare_gan's [0, 1]
    slope = math.sqrt(1e-4 + float(((2 * w) ** 2).sum()))
    assert value == pytest.approx(10.0 * (slope - 1) ** 2, rel=1e-12)


def test_beganss_k_is_unclipped_as_compare_gans():
    """BEGAN.py:130-131: update_k = k.assign(k + lambd * (gamma * D_real_err - D_fake_err)), no clip."""
    from ganzoo.zoo.variants import build_loss

    loss = build_loss(lucic_config("began"))
    k = loss.next_state({"k": torch.tensor(0.0, dtype=torch.float64)}, torch.tensor([0.1]), torch.tensor([0.9]))["k"]
    assert k.item() == pytest.approx(loss.lambda_k * (loss.gamma * 0.1 - 0.9)) and k.item() < 0


# ---- networks and noise ----------------------------------------------------------------------------

def test_every_weight_starts_as_compare_gans_and_batch_norm_is_tensorflows():
    """ops.py:41-55 linear: Matrix ~ random_normal(stddev=0.02), bias constant 0.0; ops.py:71-78 conv2d:
    truncated_normal(stddev=0.02), biases 0; ops.py:82-91 deconv2d: random_normal(stddev=0.02), biases 0;
    ops.py:58-67 batch_norm: decay=0.999, epsilon=0.001, scale=True (gamma 1, beta 0)."""
    config = lucic_config("nsgan")
    assert (config.init, config.batchnorm_eps, config.batchnorm_momentum) == ("compare_gan", 0.001, 0.001)
    torch.manual_seed(0)
    G, D = build_networks(config, (1, 28, 28), bounded=True)
    layers = [m for net in (G, D) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert len(layers) == 8  # infogan: D's conv, conv, fc, fc; G's fc, fc, deconv, deconv
    for m in layers:
        w = m.weight.detach().double().flatten()
        n = len(w)
        # a truncated N(0, s) at 2 s has std s * 0.87962566 (its variance 1 - 2 phi(2) / (2 Phi(2) - 1))
        truncated = isinstance(m, nn.Conv2d)
        std = 0.02 * (0.8796256610342398 if truncated else 1.0)
        # the sample std of n draws errs by about std / sqrt(2n): 6 of those is a 1e-9 chance per layer
        assert abs(w.std().item() - std) <= 6 * std / math.sqrt(2 * n) + 1e-12, (m, w.std().item(), std)
        assert abs(w.mean().item()) <= 6 * std / math.sqrt(n)
        if truncated:
            assert w.abs().max().item() <= 0.04
        assert m.bias is None or torch.count_nonzero(m.bias) == 0
    norms = [m for net in (G, D) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.eps == 0.001 and m.momentum == 0.001 for m in norms)
    assert all(torch.all(m.weight == 1) and torch.count_nonzero(m.bias) == 0 for m in norms)


def test_gs_noise_is_uniform_on_minus_one_one_on_every_path(tmp_path):
    """abstract_gan.py:195-196 z_generator: np.random.uniform(-1, 1); eval_gan_lib.py:180 the same for
    evaluation. Every path draws z ~ N(0, 1) and G's first module maps it by erf(z / sqrt 2)."""
    config = lucic_config("nsgan")
    assert config.z_dist == "uniform" and config.z_dim == 64
    torch.manual_seed(0)
    G, _ = build_networks(config, (1, 28, 28), bounded=True)
    assert isinstance(G, UniformLatent)
    seen: list[torch.Tensor] = []
    G.G.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    from ganzoo.zoo.samples import generate

    generate(G, config.z_dim, 2000, 0, torch.device("cpu"))  # evaluation's and the sample pictures' path
    z = torch.cat(seen).flatten().double()
    assert z.min() >= -1 and z.max() <= 1
    # Kolmogorov-Smirnov against U(-1, 1): at n = 128,000 a true uniform exceeds 1.95 / sqrt(n) with
    # probability 0.001; N(0, 1) itself would be ~0.16 away.
    n = len(z)
    cdf = (z.sort().values + 1) / 2
    grid = torch.arange(1, n + 1, dtype=torch.float64) / n
    assert torch.max(torch.abs(cdf - grid)).item() < 1.95 / math.sqrt(n)


def test_the_protocol_table_has_no_unnamed_difference():
    """Every choice of the Lucic preset is the reference's or a deviation made on purpose, with why."""
    from ganzoo import protocols
    sweep = Sweep("lucic", LUCIC, "/nonexistent")
    context = protocols.Context(sweep.settings(), {p.name: sweep.pair_record(p) for p in sweep.pairs})
    reference, rows = protocols.reference_table(context)
    assert reference is protocols.LUCIC2018
    assert not [r for r in rows if r.status.startswith(protocols.DIFFERS)], rows
    deviations = [r for r in rows if r.status.startswith(protocols.ON_PURPOSE)]
    assert deviations and all(len(r.status) > len(protocols.ON_PURPOSE) + 10 for r in deviations)
    # a setting moved away from the reference shows as a difference, naming the reference's value
    moved = protocols.Context({**context.settings, "batch_size": 32}, context.records)
    batch = next(r for r in protocols.table(reference, moved) if r.choice == "batch size")
    assert batch.status == f"{protocols.DIFFERS} (64)"


def test_the_readme_carries_the_lucic_table_as_the_code_makes_it():
    from ganzoo import protocols
    sweep = Sweep("lucic", LUCIC, "/nonexistent")
    context = protocols.Context(sweep.settings(), {p.name: sweep.pair_record(p) for p in sweep.pairs})
    reference, rows = protocols.reference_table(context)
    readme = page("protocols").read_text()
    assert protocols.markdown(reference, rows) in readme


def test_the_dry_run_prints_the_protocol_and_touches_nothing(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ganzoo", "sweep", "--preset", "fashion-mnist", "--dry-run"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Budget: 15,625 D updates (20 epochs of 50,000 images at batch 64)" in out
    assert "Repeat: each study's best configuration again on 50 new seeds (1..50)" in out
    assert "Protocol of Lucic et al. 2018" in out and "deviates on purpose" in out and "differs from" not in out
    assert not (tmp_path / "runs").exists()
