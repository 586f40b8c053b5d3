"""Unrolled GAN (Metz et al. 2017; ganzoo.zoo.unrolling): look-aheads against a hand computation and finite
differences, the trainer's look-ahead against torch's Adam, k = 0 as the plain GAN bit for bit, the
look-ahead never applied to D, populations as single runs, and the settings it cannot take refused."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import ganzoo.training.trainer
from ganzoo import resolve_config
from ganzoo.core.errors import GanzooError
from ganzoo.training.trainer import Trainer
from ganzoo.zoo.losses import Minimax, NonSaturating, Relativistic, RelativisticAverage
from ganzoo.zoo.unrolling import (
    AdamState,
    autograd_gradient,
    d_objective,
    look_ahead,
    surrogate,
)

# A D of one weight and one bias on 1-d points, a G of one weight: every quantity has a closed form.
REAL, Z = (0.7, -1.3), (0.4, 1.1)
W, B, A = 0.8, -0.3, 1.5
M0, V0, STEP0 = {"w": 0.02, "b": -0.01}, {"w": 3e-4, "b": 1e-4}, 3  # D's Adam after 3 updates
LR, BETA1, BETA2, EPS = 0.1, 0.5, 0.999, 1e-8
# Central differences of step H: error h^2 |f'''| / 6 (|f'''| < 1e2 for these O(1) logits and updates of
# <= lr = 0.1 each) plus rounding u64 |f| / h = 1e-11, both under DIFFERENCE_TOLERANCE.
H, DIFFERENCE_TOLERANCE = 1e-5, 1e-8


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def d_loss(w: float, b: float, a: float) -> float:
    """The minimax D loss, mean softplus(-D(x)) + mean softplus(D(G(z))), by hand."""
    return (sum(softplus(-(w * x + b)) for x in REAL) / len(REAL)
            + sum(softplus(w * a * z + b) for z in Z) / len(Z))


def d_gradient(w: float, b: float, a: float) -> dict[str, float]:
    real = [-sigmoid(-(w * x + b)) for x in REAL]
    fake = [sigmoid(w * a * z + b) for z in Z]
    n, k = len(REAL), len(Z)
    return {"w": sum(r * x for r, x in zip(real, REAL)) / n + sum(f * a * z for f, z in zip(fake, Z)) / k,
            "b": sum(real) / n + sum(fake) / k}


def surrogate_by_hand(a: float, k: int) -> float:
    """Minus D's loss after k Adam updates of D from (M0, V0, STEP0) on the same batch, torch's Adam
    formula, by hand."""
    p, m, v = {"w": W, "b": B}, dict(M0), dict(V0)
    for j in range(1, k + 1):
        g, t = d_gradient(p["w"], p["b"], a), STEP0 + j
        for name in p:
            m[name] = BETA1 * m[name] + (1 - BETA1) * g[name]
            v[name] = BETA2 * v[name] + (1 - BETA2) * g[name] ** 2
            p[name] -= LR / (1 - BETA1**t) * m[name] / (math.sqrt(v[name]) / math.sqrt(1 - BETA2**t) + EPS)
    return -d_loss(p["w"], p["b"], a)


def scalar_look_ahead(loss, k: int, a: float = A) -> tuple[torch.Tensor, torch.Tensor]:
    """ganzoo's look-ahead on the scalar networks with G's weight a: that weight, and G's surrogate at D
    after k updates."""
    G = nn.Linear(1, 1, bias=False).double()
    D = nn.Sequential(nn.Linear(1, 1), nn.Flatten(0)).double()
    with torch.no_grad():
        G.weight.fill_(a)
        D[0].weight.fill_(W)
        D[0].bias.fill_(B)
    real = torch.tensor(REAL, dtype=torch.float64)[:, None]
    fake = G(torch.tensor(Z, dtype=torch.float64)[:, None])
    start = {name: p.detach().requires_grad_() for name, p in D.named_parameters()}

    def full(value: float, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.full(shape, value, dtype=torch.float64)

    adam = AdamState({"0.weight": full(M0["w"], (1, 1)), "0.bias": full(M0["b"], (1,))},
                     {"0.weight": full(V0["w"], (1, 1)), "0.bias": full(V0["b"], (1,))},
                     torch.tensor(float(STEP0), dtype=torch.float64), LR, BETA1, BETA2, eps=EPS)

    def critic(params):
        return lambda x: torch.func.functional_call(D, params, (x,))

    final = look_ahead(lambda p: d_objective(loss, critic(p), real, fake), start, adam, k, autograd_gradient)
    return G.weight, surrogate(loss, critic(final), real, fake)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_an_unroll_matches_the_hand_computed_one(k: int) -> None:
    weight, value = scalar_look_ahead(Minimax(), k)
    (grad,) = torch.autograd.grad(value, weight)
    # The value: the same float64 operations in another order, a few ulps of its terms (each O(1)).
    assert value.item() == pytest.approx(surrogate_by_hand(A, k), rel=0, abs=1e-14)
    # G's gradient through D's updates, against a central difference of the hand computation.
    by_hand = (surrogate_by_hand(A + H, k) - surrogate_by_hand(A - H, k)) / (2 * H)
    assert grad.item() == pytest.approx(by_hand, rel=0, abs=DIFFERENCE_TOLERANCE)
    # ... and not G's gradient against D as it is, which the look-ahead moved by far more than that.
    plain = -(d_loss(W, B, A + H) - d_loss(W, B, A - H)) / (2 * H)
    assert abs(by_hand - plain) > 1e-3


@pytest.mark.parametrize("loss", [NonSaturating(), Relativistic(), RelativisticAverage()], ids=lambda x: type(x).__name__)
def test_gs_unrolled_gradient_takes_every_path_through_the_look_ahead(loss) -> None:
    """A non-zero-sum loss's surrogate is its G loss at the look-ahead D, D's logits on real data included:
    they depend on G through D's updates, so a path dropped (a detach) shows against a finite difference."""
    weight, value = scalar_look_ahead(loss, 2)
    (grad,) = torch.autograd.grad(value, weight)
    difference = (scalar_look_ahead(loss, 2, A + H)[1].item() - scalar_look_ahead(loss, 2, A - H)[1].item()) / (2 * H)
    assert grad.item() == pytest.approx(difference, rel=0, abs=DIFFERENCE_TOLERANCE)


def run_config(variant: str, **overrides: object):
    return resolve_config(variant, "ring8", overrides={
        "steps": 6, "batch_size": 16, "device": "cpu", "log_every": 3, "sample_every": 0, "checkpoint_every": 0,
        "fast.fused_adam": False, **overrides})


def trained(config, path: Path) -> Trainer:
    trainer = Trainer(config, path, quiet=True)
    trainer.run()
    return trainer


def test_the_trainers_look_ahead_starts_at_ds_last_update_and_goes_on_as_torchs_adam(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, float64: None) -> None:
    """The look-ahead starts where D's last update started (weights, moments, step count), so its first
    update is D's own (as poolio/unrolled_gan's demo, whose unrolled updates begin with the real one) and
    the next ones are torch's Adam going on from there on the same batch."""
    k = 3
    seen = {}

    def recorded(objective, params, adam, steps, gradient):
        seen.update(objective=objective, start={n: p.detach().clone() for n, p in params.items()})
        seen["ahead"] = [look_ahead(objective, params, adam, j, gradient) for j in range(1, steps + 1)]
        return seen["ahead"][-1]

    monkeypatch.setattr(ganzoo.training.trainer, "look_ahead", recorded)
    trainer = Trainer(run_config("unrolled-gan", unroll=k, steps=1, **{"arch.hidden": 8}), tmp_path, quiet=True)
    D_before = copy.deepcopy(trainer.D)  # before the first update Adam has no state: moments 0, step 0
    trainer.train_step()
    # float64: the look-ahead's update and torch's single-tensor Adam are the same operations in another
    # order, a few ulps of each weight (<= 1 here).
    assert all(torch.equal(seen["start"][n], p) for n, p in D_before.named_parameters())
    after = dict(trainer.D.named_parameters())
    assert all(torch.allclose(seen["ahead"][0][n], after[n], rtol=0, atol=1e-14) for n in after)
    # From D's updated weights and Adam, torch's Adam on the same objective k - 1 more times.
    params = {n: p.detach().clone().requires_grad_() for n, p in after.items()}
    adam = torch.optim.Adam(list(params.values()), lr=1e-4, betas=(0.5, 0.999), foreach=False)
    adam.load_state_dict(trainer.d_opt.state_dict())
    for _ in range(k - 1):
        grads = torch.autograd.grad(seen["objective"](params), list(params.values()), retain_graph=True)
        for p, g in zip(params.values(), grads):
            p.grad = g
        adam.step()
    assert trainer.config.d_adam.lr == 1e-4 and trainer.config.d_adam.beta1 == 0.5
    assert all(torch.allclose(seen["ahead"][-1][n], p, rtol=0, atol=1e-14) for n, p in params.items())
    assert not all(torch.equal(seen["ahead"][-1][n], after[n]) for n in after)  # it did move on


def test_unroll_zero_is_the_plain_gan_bit_for_bit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unrolled-gan variant with k = 0 never looks ahead: it is the minimax GAN on its network."""
    unrolled = run_config("unrolled-gan", unroll=0)
    plain = dataclasses.replace(unrolled, variant="vanilla")  # the same loss, network, settings
    assert plain.unroll == 0 and resolve_config("unrolled-gan", "ring8").unroll > 0
    with monkeypatch.context() as m:
        m.setattr(ganzoo.training.trainer, "look_ahead", lambda *a, **k: pytest.fail("k = 0 looked ahead"))
        a = trained(unrolled, tmp_path / "a")
    b = trained(plain, tmp_path / "b")
    for x, y in zip([*a.G.state_dict().values(), *a.D.state_dict().values()],
                    [*b.G.state_dict().values(), *b.D.state_dict().values()]):
        assert torch.equal(x, y)
    # and unrolling changes the run: the same seed with k = 1 ends elsewhere
    c = trained(dataclasses.replace(unrolled, unroll=1), tmp_path / "c")
    assert not all(torch.equal(x, y) for x, y in zip(a.G.state_dict().values(), c.G.state_dict().values()))


@pytest.mark.parametrize("loss", ["vanilla", "nsgan"])
def test_a_look_ahead_by_a_vanishing_step_gives_gs_plain_gradient(tmp_path: Path, loss: str, float64: None) -> None:
    """With D's learning rate ~0, D after the look-ahead is D: G's gradient is its plain one (for the zero-sum
    minimax loss too, whose real-data term then does not depend on G)."""
    grads = []
    for k in (0, 2):
        config = run_config(loss, unroll=k, steps=1, log_every=1, **{"d_adam.lr": 1e-30})
        trainer = Trainer(config, tmp_path / f"k{k}", quiet=True)
        trainer.train_step()
        grads.append(torch.cat([p.grad.flatten() for p in trainer.G.parameters()]))
    # The same float64 products in another order (autograd through functional_call, Adam's ~1e-30 steps):
    # rounding of sums of <= 256 terms of the gradient's size, 256 * u64 = 3e-14 of its norm.
    assert (grads[0] - grads[1]).norm() <= 1e-12 * grads[0].norm()
    assert grads[0].norm() > 0


def test_the_look_ahead_leaves_d_its_moments_and_statistics_as_they_were(tmp_path: Path) -> None:
    config = run_config("dcgan", unroll=3, steps=1, batch_size=8, **{"arch.width": 8})
    config = dataclasses.replace(config, dataset="digits")
    trainer = Trainer(config, tmp_path, quiet=True)
    trainer.train_step()  # D has Adam moments now, and the body where its last update started
    body = trainer.body
    before = {k: v.clone() for k, v in trainer.D.state_dict().items()}  # weights and BatchNorm statistics
    moments = [{k: v.clone() for k, v in body.d_opt.state[p].items()} for p in trainer.D.parameters()]
    d_grads = [p.grad.clone() for p in trainer.D.parameters()]  # D's last update's, which G's must not touch
    real = body.batches.gather(body.plan()[0])
    fake = body.G(body._noise())
    loss = body._unrolled_g_loss(fake, real)
    loss.backward(inputs=list(trainer.G.parameters()))
    assert all(torch.equal(v, trainer.D.state_dict()[k]) for k, v in before.items())
    for p, saved in zip(trainer.D.parameters(), moments):
        assert all(torch.equal(v, body.d_opt.state[p][k]) for k, v in saved.items())
    assert all(torch.equal(p.grad, g) for p, g in zip(trainer.D.parameters(), d_grads))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.G.parameters() if p.dim() > 1)


def test_unrolled_members_follow_their_single_runs(tmp_path: Path, float64: None) -> None:
    """A population's look-ahead (torch.func under vmap, StackedAdam's moments) is its single runs' (autograd,
    torch's Adam), with D's weights clipped and members' learning rates apart."""
    from test_population import assert_members_follow_their_single_runs

    configs = [run_config("unrolled-gan", unroll=2, steps=8, seed=seed, d_weight_clip=clip,
                          **{"d_adam.lr": lr, "adam.beta1": 0.5})
               for seed, lr, clip in ((0, 1e-3, 0.0), (1, 2e-3, 0.0), (2, 1e-3, 0.05))]
    configs = [dataclasses.replace(c, log_every=4) for c in configs]
    assert_members_follow_their_single_runs(tmp_path, configs)


@pytest.mark.parametrize("change, message", [
    ({"unroll": -1}, "unroll must be >= 0"),
    ({"penalty": "gp"}, "unroll takes no gradient penalty"),
    ({"fast.compile": "default"}, "torch.compile gives no second derivatives"),
])
def test_what_unrolling_cannot_take_is_refused(change: dict, message: str) -> None:
    with pytest.raises(GanzooError, match=message):
        run_config("unrolled-gan", **change)


@pytest.mark.parametrize("variant, message", [("wgan-gp", "no gradient penalty"), ("began", "state of its own")])
def test_losses_with_their_own_penalty_or_state_are_refused(variant: str, message: str) -> None:
    with pytest.raises(GanzooError, match=message):
        resolve_config(variant, "digits", overrides={"unroll": 1})


def test_g_minimises_minus_ds_objective_only_for_a_zero_sum_loss() -> None:
    assert Minimax.zero_sum and not NonSaturating.zero_sum
