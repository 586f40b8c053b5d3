"""Losses against closed forms, and their numerics at extreme logits and under autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganzoo.losses import LOSSES, LeastSquares, Minimax, NonSaturating, WassersteinGP

LOGITS = torch.linspace(-6, 6, 25, dtype=torch.float64)


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


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4])
def test_losses_finite_at_extreme_logits(name, scale):
    loss = LOSSES.get(name)()
    real = (torch.randn(16) * scale).requires_grad_(True)
    fake = (torch.randn(16) * scale).requires_grad_(True)
    total = loss.discriminator_loss(real, fake) + loss.generator_loss(fake)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_under_bf16_autocast(name):
    loss = LOSSES.get(name)()
    D = nn.Linear(4, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        real, fake = D(torch.randn(8, 4) * 50).squeeze(1), D(torch.randn(8, 4) * 50).squeeze(1)
        values = [loss.discriminator_loss(real.float(), fake.float()), loss.generator_loss(fake.float())]
    assert all(torch.isfinite(v) for v in values)


@pytest.mark.parametrize("weight_norm, expected", [(1.0, 0.0), (2.0, 1.0), (3.0, 4.0)])
def test_gradient_penalty_known_answer(weight_norm, expected):
    # A linear critic has gradient w everywhere: the penalty is lambda * (|w| - 1)^2 exactly.
    D = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[weight_norm, 0.0, 0.0]]))
    gp = WassersteinGP(gp_weight=10.0).penalty(
        lambda x: D(x).squeeze(1), torch.randn(32, 3), torch.randn(32, 3), torch.Generator().manual_seed(0)
    )
    assert gp.item() == pytest.approx(10.0 * expected, abs=1e-5)
