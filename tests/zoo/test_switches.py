"""The losses and switches beyond the four original variants, with known answers in training: weight
clipping holds D's weights in bounds, G's moving average is the hand-computed one, BEGAN's k is
checkpointed and resumed, a relativistic G sees D's logits as they are after D's update, spectral
normalisation is torch's, and a penalty as a setting is the old built-in one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from ganzoo import LOSSES, GanzooError, resolve_config
from ganzoo.core.rundir import load_checkpoint, read_jsonl
from ganzoo.training.trainer import Trainer, resume
from ganzoo.zoo.losses import Relativistic
from ganzoo.zoo.spectral_norm import spectral_norm
from ganzoo.zoo.variants import build_networks

U64 = 2.0**-53  # float64 unit roundoff


def tiny(variant: str, dataset: str = "digits", **overrides: object):
    settings = {"steps": 6, "batch_size": 16, "device": "cpu", "log_every": 2, "sample_every": 0,
                "checkpoint_every": 0, "fast.fused_adam": False, **overrides}
    if resolve_config(variant, dataset).arch == "dcgan":
        settings.setdefault("arch.width", 8)
    return resolve_config(variant, dataset, overrides=settings)


def test_weight_clipping_keeps_every_parameter_of_d_within_the_clip(tmp_path: Path) -> None:
    # A learning rate 100x WGAN's: unclipped, D's weights leave [-0.01, 0.01] within a step.
    trainer = Trainer(tiny("wgan", **{"adam.lr": 5e-3}), tmp_path, quiet=True)
    trainer.run()
    top = max(p.abs().max().item() for p in trainer.D.parameters())
    assert top == torch.tensor(0.01).item(), "the bound (in float32) is reached, so the clip is at work, and never passed"
    unclipped = Trainer(tiny("wgan", **{"adam.lr": 5e-3, "d_weight_clip": 0.0}), tmp_path / "free", quiet=True)
    unclipped.run()
    assert max(p.abs().max().item() for p in unclipped.D.parameters()) > 0.02


@pytest.mark.parametrize("start", [0, 2])
def test_gs_moving_average_is_the_weighted_mean_of_gs_iterates_since_its_start(tmp_path: Path, float64: None,
                                                                              start: int) -> None:
    """After t G updates the average is sum_{i=s+1..t} (1-d) d^(t-i) theta_i / (1 - d^(t-s)): a weighted
    mean of G's iterates since the start s (G itself until then), no weight left on the initialisation."""
    decay, steps = 0.7, 5
    trainer = Trainer(tiny("nsgan", "ring8", g_ema_decay=decay, g_ema_start=start), tmp_path, quiet=True)
    iterates = []
    for t in range(1, steps + 1):
        trainer.train_step()
        iterates.append([p.detach().clone() for p in trainer.G.parameters()])
        since = range(start, t) if t > start else [t - 1]  # 0-based indices of theta_{s+1..t}, or G itself
        weights = [decay ** (t - 1 - i) for i in since]
        expected = [sum(w * it[k] for w, it in zip(weights, (iterates[i] for i in since))) / sum(weights)
                    for k in range(len(iterates[-1]))]
        state = trainer.train_state(final=False)
        # The run takes t lerp-like updates of the average (ema + w (G - ema)), each rounding by an ulp or two
        # of the largest weight; the closed form above sums t terms: within 10 ulps for t <= 5. A missed step,
        # no bias correction or the initialisation's weight left in moves it by >= 1e-3 of the weights.
        for ours, theirs in zip(state.G.parameters(), expected):
            assert (ours - theirs).abs().max().item() <= 10 * U64 * max(theirs.abs().max().item(), 1.0), t
    assert state.G is not trainer.G and any(not torch.equal(a, b) for a, b in zip(state.G.parameters(), trainer.G.parameters()))


@pytest.mark.parametrize("pack", [1, 2])
def test_the_averaged_gs_batchnorm_statistics_are_its_own(tmp_path: Path, float64: None, pack: int) -> None:
    """The averaged G is evaluated with BatchNorm statistics of its own forwards: the plain mean of the
    batch statistics over STANDING_BATCHES train-mode batches of fixed noise, not G's running ones. A
    batch is the one G trains on: batch_size packs of ``pack`` samples."""
    from ganzoo.training.averaging import STANDING_BATCHES, STANDING_SEED_OFFSET

    config = tiny("dcgan", g_ema_decay=0.7, pack=pack)
    dc = Trainer(config, tmp_path / "dc", quiet=True)
    for _ in range(3):
        dc.train_step()
    G = dc.train_state(final=False).G
    captured: list[torch.Tensor] = []
    probe = next(m for m in G.modules() if isinstance(m, nn.BatchNorm2d))
    handle = probe.register_forward_hook(lambda m, inputs, output: captured.append(inputs[0].detach()))
    generator = torch.Generator().manual_seed(config.seed + STANDING_SEED_OFFSET)
    G.train()
    with torch.no_grad():
        for _ in range(STANDING_BATCHES):
            G(torch.randn(config.batch_size * pack, config.z_dim, generator=generator))
    G.eval()
    handle.remove()
    means = torch.stack([x.mean((0, 2, 3)) for x in captured[:STANDING_BATCHES]])
    variances = torch.stack([x.var((0, 2, 3), unbiased=True) for x in captured[:STANDING_BATCHES]])
    # A fresh call recomputes them from the same forwards: a cumulative mean of 16 batches rounds by a few
    # ulps (float64: ~1e-15 of values of order 1); 1e-12 is far inside a wrong batch count or noise.
    G = dc.train_state(final=False).G
    first_bn = next(m for m in G.modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.allclose(first_bn.running_mean, means.mean(0), rtol=0, atol=1e-12)
    assert torch.allclose(first_bn.running_var, variances.mean(0), rtol=0, atol=1e-12)
    raw = next(m for m in dc.G.modules() if isinstance(m, nn.BatchNorm2d))
    assert not torch.allclose(first_bn.running_mean, raw.running_mean, atol=1e-6), "not G's own statistics"


def test_the_moving_average_is_recorded_checkpointed_resumed_and_evaluated(tmp_path: Path) -> None:
    from ganzoo.core.config import EvalSpec
    from ganzoo.evaluate.metrics import EvalCallback, evaluate_run

    config = tiny("nsgan", "ring8", g_ema_decay=0.9, steps=8, log_every=4, checkpoint_every=4)
    spec = EvalSpec(features="points", n_samples=200)
    full = Trainer(config, tmp_path / "full", callbacks=[EvalCallback(spec)], quiet=True)
    full.run()
    assert list(read_jsonl(tmp_path / "full" / "metrics.jsonl"))[-1]["g_ema_decay"] == 0.9
    saved = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert set(saved) >= {"G", "G_ema"}
    # An interrupted run resumed from its step-4 checkpoint ends with the same average.
    Trainer(dataclasses.replace(config, steps=4), tmp_path / "part", quiet=True).run()
    resume(tmp_path / "part", steps=8)
    resumed = load_checkpoint(tmp_path / "part" / "checkpoint.pt")
    for key, value in saved["G_ema"].items():
        assert torch.equal(value, resumed["G_ema"][key]), key
    # ganzoo eval scores what the run scored: the average, not G.
    again = evaluate_run(tmp_path / "full", spec, device="cpu")
    last = list(read_jsonl(tmp_path / "full" / "metrics.jsonl"))[-2]
    assert again["g_ema_decay"] == 0.9 and again["fid"] == pytest.approx(last["fid"], rel=1e-6)


def test_began_k_stays_in_0_1_is_logged_and_resumes(tmp_path: Path) -> None:
    # gamma 1 and a large lambda_k: k rises from 0 within a few steps (the paper's 1e-3 moves it slowly).
    config = tiny("began", steps=8, log_every=2, checkpoint_every=4, **{"loss.gamma": 1.0, "loss.lambda_k": 0.2})
    Trainer(config, tmp_path / "full", quiet=True).run()
    ks = [r["loss_k"] for r in read_jsonl(tmp_path / "full" / "stats.jsonl")]
    assert all(0.0 <= k <= 1.0 for k in ks) and ks[-1] > 0, ks
    saved = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert saved["loss_state"]["k"].item() == ks[-1]
    Trainer(dataclasses.replace(config, steps=4), tmp_path / "part", quiet=True).run()
    resume(tmp_path / "part", steps=8)
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["loss_state"]["k"].item() == ks[-1]


def test_a_relativistic_generator_sees_ds_logits_after_its_update_on_the_last_real_batch(tmp_path: Path, registered) -> None:
    seen: list[torch.Tensor] = []

    @dataclasses.dataclass(frozen=True)
    class Recording(Relativistic):
        def generator_loss(self, fake, real):
            seen.append(real.detach().clone())
            return super().generator_loss(fake, real)

    registered(LOSSES, "test-recording-rs", Recording)
    config = dataclasses.replace(tiny("nsgan", "ring8", n_critic=2), loss="test-recording-rs")
    trainer = Trainer(config, tmp_path, quiet=True)
    inputs: list[torch.Tensor] = []
    trainer.D.register_forward_hook(lambda module, args, out: inputs.append(args[0].detach().clone()))
    before = [p.detach().clone() for p in trainer.D.parameters()]
    trainer.train_step()
    # D's calls: (real, fake) per critic step, then G's update: real, then fake.
    assert len(inputs) == 2 * 2 + 2
    last_critic_real, g_real = inputs[2], inputs[4]
    assert torch.equal(g_real, last_critic_real), "the last critic step's real batch, not a new one"
    with torch.no_grad():
        now = trainer.D(g_real)
        assert torch.equal(seen[0], now), "D's logits as G's update sees D: after this step's D updates"
        stale = torch.func.functional_call(trainer.D, dict(zip(dict(trainer.D.named_parameters()), before)), (g_real,))
    assert not torch.allclose(seen[0], stale)


def test_a_penalty_as_a_setting_trains_what_the_old_built_in_penalty_did(tmp_path: Path) -> None:
    new = Trainer(tiny("wgan-gp"), tmp_path / "new", quiet=True)  # wasserstein + penalty=gp, weight 10
    new.run()
    old_config = dataclasses.replace(tiny("wgan-gp"), loss="wgan-gp", loss_params={"gp_weight": 10.0},
                                     penalty="none", penalty_params={})
    old = Trainer(old_config, tmp_path / "old", quiet=True)
    old.run()
    for a, b in zip([*new.G.parameters(), *new.D.parameters()], [*old.G.parameters(), *old.D.parameters()]):
        assert torch.equal(a, b)  # the same draws and the same arithmetic, bit for bit


def test_ganzoos_spectral_norm_is_torchs(float64: None) -> None:
    def net() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.ConvTranspose2d(4, 3, 4, 2, 1),
                             nn.Flatten(), nn.Linear(3 * 8 * 8, 1))

    torch.manual_seed(0)
    ours = net()
    torch.manual_seed(0)
    theirs = net()
    torch.manual_seed(1)
    ours = spectral_norm(ours)
    torch.manual_seed(1)
    for module in theirs.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(module)
    x = torch.randn(5, 1, 8, 8)
    for _ in range(3):  # training forwards: one power iteration each, the same on both sides
        a, b = ours(x), theirs(x)
        assert torch.equal(a, b)
        a.sum().backward()
        b.sum().backward()
    grads = {n.replace("parametrizations.weight.original", "layer.weight").replace(".bias", ".layer.bias"): p.grad
             for n, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        assert torch.equal(p.grad, grads[name]), name
    ours.eval()
    theirs.eval()
    assert torch.equal(ours(x), theirs(x))
    # After many iterations the estimate is the largest singular value.
    ours.train()
    for _ in range(200):
        ours(x)
    layer = ours[0]
    matrix = layer.layer.weight.flatten(1)
    assert torch.dot(layer.u, matrix @ layer.v).item() == pytest.approx(torch.linalg.matrix_norm(matrix, 2).item(), rel=1e-9)


def test_spectral_norm_wraps_every_weight_layer_of_d_and_no_layer_of_g() -> None:
    config = tiny("began", d_spectral_norm=True)  # an autoencoder D: convolutions, linear and transposed layers
    G, D = build_networks(config, (1, 8, 8), True)
    _, plain = build_networks(dataclasses.replace(config, d_spectral_norm=False), (1, 8, 8), True)
    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    wrapped = [m.layer for m in D.modules() if type(m).__name__ == "SpectralNorm"]
    assert [type(m) for m in wrapped] == [type(m) for m in plain.modules() if isinstance(m, layers)]
    assert len(wrapped) == 6 and not any(type(m).__name__ == "SpectralNorm" for m in G.modules())


@pytest.mark.parametrize("settings, message", [
    ({"penalty": "gp"}, "loss 'began' takes no penalty"),
    ({"arch.d_autoencoder": False}, "loss 'began' needs D to output reconstruction errors, but architecture "
                                    "'infogan' as configured gives logits (arch.d_autoencoder=true gives"),
    ({"penalty": "r2d2"}, "unknown penalty 'r2d2'; known: none, dragan, gp"),
    ({"penalty.wieght": 3.0, "penalty": "gp"},
     "unknown setting 'penalty.wieght': penalty 'gp' takes penalty.gradient_scale"),
    ({"d_weight_clip": -0.1}, "d_weight_clip must be >= 0"),
    ({"g_ema_decay": 1.0}, "g_ema_decay must be in [0, 1)"),
])
def test_settings_that_cannot_train_are_one_clear_error(settings: dict, message: str) -> None:
    with pytest.raises(GanzooError) as refused:
        resolve_config("began", "digits", overrides=settings)
    assert message in str(refused.value)


def test_a_logit_loss_on_an_autoencoder_is_refused_before_training() -> None:
    with pytest.raises(GanzooError, match="loss 'ns' needs D to output logits"):
        resolve_config("nsgan", "digits", arch="infogan", overrides={"arch.d_autoencoder": True})
