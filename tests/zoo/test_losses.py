"""Losses and penalties against closed forms, their known answers, and their numerics at extreme
logits and under autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganzoo.zoo.losses import (
    BEGAN,
    LOSSES,
    Hinge,
    LeastSquares,
    Loss,
    Minimax,
    NonSaturating,
    Relativistic,
    RelativisticAverage,
    input_gradient,
    named_inputs,
)
from ganzoo.zoo.penalties import (
    PENALTIES,
    DRAGANPenalty,
    GradientPenalty,
    WassersteinGP,
)

LOGITS = torch.linspace(-6, 6, 25, dtype=torch.float64)


def state_of(loss: Loss, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value, dtype=dtype) for name, value in loss.initial_state().items()}


def d_value(loss: Loss, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's loss, given what it names, as ganzoo.training.step passes it."""
    extra = {"state": state_of(loss, real.dtype)} if "state" in named_inputs(type(loss), "discriminator_loss") else {}
    return loss.discriminator_loss(real, fake, **extra)


def g_value(loss: Loss, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    named = named_inputs(type(loss), "generator_loss")
    extra = {"state": state_of(loss, fake.dtype)} if "state" in named else {}
    if "real" in named:
        extra["real"] = real
    return loss.generator_loss(fake, **extra)


def test_minimax_is_goodfellows_saturating_loss():
    p = torch.sigmoid(LOGITS)
    assert torch.allclose(Minimax().generator_loss(LOGITS), torch.log1p(-p).mean())
    real, fake = LOGITS, LOGITS.flip(0)
    expected = -(torch.log(torch.sigmoid(real)).mean() + torch.log1p(-torch.sigmoid(fake)).mean())
    assert torch.allclose(Minimax().discriminator_loss(real, fake), expected)


def test_nonsaturating_generator_loss():
    assert torch.allclose(NonSaturating().generator_loss(LOGITS), -torch.log(torch.sigmoid(LOGITS)).mean())


def test_minimax_saturates_where_nonsaturating_does_not():
    # When D confidently rejects fakes (logit -10), the minimax gradient vanishes; NS's does not.
    fake = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(Minimax().generator_loss(fake), fake)
    (g_ns,) = torch.autograd.grad(NonSaturating().generator_loss(fake), fake)
    assert abs(g_mm.item()) < 1e-4 < 0.9 < abs(g_ns.item())


def test_least_squares():
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert LeastSquares().discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.5 + 0.5))
    assert LeastSquares().generator_loss(torch.ones(3)).item() == 0.0


def test_hinge_known_values():
    # Logits beyond the margins cost D nothing; inside them, the distance to the margin.
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    assert Hinge().discriminator_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.0) / 2)
    assert Hinge().generator_loss(fake).item() == pytest.approx(1.5)


def test_relativistic_losses_match_jolicoeur_martineaus_bce_forms():
    bce = nn.BCEWithLogitsLoss()
    real, fake = LOGITS, LOGITS.flip(0) * 0.5 + 0.3
    ones, zeros = torch.ones_like(real), torch.zeros_like(real)
    assert torch.allclose(Relativistic().discriminator_loss(real, fake), bce(real - fake, ones))
    assert torch.allclose(Relativistic().generator_loss(fake, real), bce(fake - real, ones))
    ra = RelativisticAverage()
    assert torch.allclose(ra.discriminator_loss(real, fake),
                          (bce(real - fake.mean(), ones) + bce(fake - real.mean(), zeros)) / 2)
    assert torch.allclose(ra.generator_loss(fake, real),
                          (bce(real - fake.mean(), zeros) + bce(fake - real.mean(), ones)) / 2)


@pytest.mark.parametrize("loss", [Relativistic(), RelativisticAverage()], ids=["rsgan", "ragan"])
@pytest.mark.parametrize("shift", [-5.0, 3.0, 100.0])
def test_a_relativistic_loss_is_invariant_to_a_constant_added_to_all_logits(loss, shift):
    # Only differences of logits enter. In float64, a shift of s moves each difference by rounding of
    # ~|s| u (u = 1.1e-16) and the loss, whose slope in a difference is below 1, by no more.
    real, fake = LOGITS, LOGITS.flip(0) * 0.7 - 1.0
    bound = 8 * (abs(shift) + 6) * 2.0**-53
    assert abs(loss.discriminator_loss(real + shift, fake + shift) - loss.discriminator_loss(real, fake)) <= bound
    assert abs(loss.generator_loss(fake + shift, real + shift) - loss.generator_loss(fake, real)) <= bound
    # ... which an absolute loss is not: NS moves.
    assert abs(NonSaturating().discriminator_loss(real + shift, fake + shift)
               - NonSaturating().discriminator_loss(real, fake)) > 0.1


def test_relativistic_generators_ask_for_real_logits_and_the_others_do_not():
    assert named_inputs(Relativistic, "generator_loss") == {"real"}
    assert named_inputs(RelativisticAverage, "generator_loss") == {"real"}
    assert named_inputs(NonSaturating, "generator_loss") == frozenset()
    assert named_inputs(BEGAN, "discriminator_loss") == {"state"}


def test_began_k_follows_its_update_rule_and_stays_in_0_1():
    loss = BEGAN(gamma=0.5, lambda_k=0.1)
    real, fake = torch.tensor([0.4, 0.6], dtype=torch.float64), torch.tensor([0.1, 0.3], dtype=torch.float64)
    k = torch.tensor(0.2, dtype=torch.float64)
    # k + lambda_k (gamma L(x) - L(G(z))) = 0.2 + 0.1 (0.5 * 0.5 - 0.2) = 0.205
    assert loss.next_state({"k": k}, real, fake)["k"].item() == pytest.approx(0.205, abs=1e-15)
    assert loss.next_state({"k": torch.tensor(0.0)}, real, fake + 10)["k"].item() == 0.0  # clipped below
    assert loss.next_state({"k": torch.tensor(1.0)}, real + 10, fake)["k"].item() == 1.0  # and above
    # D's loss is L(x) - k L(G(z)), G's L(G(z))
    assert loss.discriminator_loss(real, fake, {"k": k}).item() == pytest.approx(0.5 - 0.2 * 0.2, abs=1e-15)
    assert loss.generator_loss(fake).item() == pytest.approx(0.2, abs=1e-15)
    assert loss.initial_state() == {"k": 0.0}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4])
def test_losses_finite_at_extreme_logits(name, scale):
    loss = LOSSES.get(name)()
    real = (torch.randn(16) * scale).requires_grad_(True)
    fake = (torch.randn(16) * scale).requires_grad_(True)
    total = d_value(loss, real, fake) + g_value(loss, fake, real)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_under_bf16_autocast(name):
    loss = LOSSES.get(name)()
    D = nn.Linear(4, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        real, fake = D(torch.randn(8, 4) * 50).squeeze(1), D(torch.randn(8, 4) * 50).squeeze(1)
        values = [d_value(loss, real.float(), fake.float()), g_value(loss, fake.float(), real.float())]
    assert all(torch.isfinite(v) for v in values)


# ---- penalties ------------------------------------------------------------------------------------

def linear_critic(weight_norm: float) -> nn.Module:
    """A critic with gradient (weight_norm, 0, 0) everywhere: its slope is weight_norm at every point."""
    D = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[weight_norm, 0.0, 0.0]]))
    return D


@pytest.mark.parametrize("weight_norm, expected", [(1.0, 0.0), (2.0, 1.0), (3.0, 4.0)])
def test_gradient_penalty_known_answer(weight_norm, expected):
    # A linear critic has gradient w everywhere: the penalty is lambda * (|w| - 1)^2 exactly.
    D = linear_critic(weight_norm)
    real, fake = torch.randn(32, 3, dtype=torch.float64), torch.randn(32, 3, dtype=torch.float64)
    gp = GradientPenalty(weight=10.0)
    noise = gp.noise(real, torch.Generator().manual_seed(0))
    value = gp.value(lambda x: D(x).squeeze(1), real, fake, noise, input_gradient)
    assert value.item() == pytest.approx(10.0 * expected, abs=1e-12)
    # ganzoo's older name for the same thing, a loss with the penalty built in, draws and computes the same.
    old = WassersteinGP(gp_weight=10.0).penalty(lambda x: D(x).squeeze(1), real, fake, torch.Generator().manual_seed(0))
    assert old.item() == value.item()


@pytest.mark.parametrize("weight_norm, expected", [(1.0, 0.0), (0.5, 0.25), (2.0, 1.0)])
def test_dragan_penalty_vanishes_where_ds_slope_around_the_data_is_1(weight_norm, expected):
    D = linear_critic(weight_norm)
    real = torch.randn(32, 3, dtype=torch.float64)
    penalty = DRAGANPenalty(weight=10.0)
    noise = penalty.noise(real, torch.Generator().manual_seed(0))
    value = penalty.value(lambda x: D(x).squeeze(1), real, real.flip(0), noise, input_gradient)
    assert value.item() == pytest.approx(10.0 * expected, abs=1e-12)


def test_dragan_penalty_looks_around_the_data_not_between_data_and_samples():
    # A critic whose slope is 1 near the data (|x| < 5) and 3 far out: DRAGAN's points stay near the
    # data (within scale * std of it), so it sees slope 1 and no penalty; WGAN-GP's interpolates reach
    # the far-away samples and see the steep part.
    def D(x: torch.Tensor) -> torch.Tensor:
        near = x.norm(dim=1) < 5
        return torch.where(near, x[:, 0], 3 * x[:, 0])

    generator = torch.Generator().manual_seed(0)
    real = torch.rand(64, 2, dtype=torch.float64, generator=generator) - 0.5
    fake = real + 100.0
    dragan, gp = DRAGANPenalty(weight=1.0), GradientPenalty(weight=1.0)
    assert dragan.value(D, real, fake, dragan.noise(real, generator), input_gradient).item() == pytest.approx(0.0, abs=1e-12)
    assert gp.value(D, real, fake, gp.noise(real, generator), input_gradient).item() > 1.0


def test_dragans_points_are_computed_as_compare_gan_does():
    real = torch.randn(16, 1, 4, 4, dtype=torch.float64)
    penalty = DRAGANPenalty(weight=1.0, scale=0.5)
    generator = torch.Generator().manual_seed(3)
    noise = penalty.noise(real, generator)
    replay = torch.Generator().manual_seed(3)
    u = torch.rand(real.shape, dtype=torch.float64, generator=replay)
    a = torch.rand((16, 1, 1, 1), dtype=torch.float64, generator=replay)
    assert torch.equal(noise, a * u)
    seen = []
    penalty.value(lambda x: seen.append(x.detach()) or x.flatten(1).sum(1), real, real, noise, input_gradient)
    expected = real + 0.5 * real.numpy().std() * a * u  # numpy's std: no Bessel correction
    torch.testing.assert_close(seen[0], expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("name", list(PENALTIES))
def test_penalties_are_finite_and_differentiable_for_d(name):
    penalty = PENALTIES.get(name)()
    D = nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1), nn.Flatten(0))
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    value = penalty.value(D, real, fake, penalty.noise(real, torch.Generator().manual_seed(0)), input_gradient)
    value.backward()
    assert torch.isfinite(value)
    # Every weight shapes dD/dx; the last bias does not, and gets no gradient.
    assert all(torch.isfinite(p.grad).all() for p in (D[0].weight, D[0].bias, D[2].weight)) and D[2].bias.grad is None
