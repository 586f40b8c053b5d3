"""Unrolled GAN (Metz et al. 2017): G's loss taken through ``unroll`` look-ahead updates of D.

G minimises f_K(theta_G) = f(theta_G, theta_D^K(theta_G)), where theta_D^K is D after K updates of its
own optimiser on the step's batch, and the gradient flows through those updates (second derivatives), so
that G feels how D would answer it. As poolio/unrolled_gan@67e2c7a "Unrolled GAN demo.ipynb" (by Metz et
al.'s co-author Poole; VEEGAN's paper takes 5 steps "as suggested in the authors' reference
implementation"): its update dict is keras' Adam step of D, replayed ``unrolling_steps`` times on the same
minibatch (data and noise are fixed tensors of one graph) from D's weights and Adam state before this
iteration's update, which runs in the same session call, so the first unrolled update is D's real one;
G minimises minus D's loss at the result. Here the look-ahead starts where D's last critic update of the
step started (its weights, moments and step count, kept by the step body before that update), so its
first update is that one, and it replays torch's Adam formula (``StackedAdam``'s and
``torch.optim.Adam``'s) with D's clipping where set. The look-ahead is never applied to D.

For a zero-sum loss (``Loss.zero_sum``: minimax, Wasserstein) G's surrogate is minus D's objective at
theta_D^K, its real-data term included (it depends on G through theta_D^K); for any other loss it is
G's own loss at theta_D^K. With K = 0 nothing here runs and the step is the plain one.

Both step bodies use this: a single run with autograd (``create_graph``), a population with
torch.func under vmap; ``gradient`` says which.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from ganzoo.zoo.losses import Loss, at_least_float32, named_inputs
from ganzoo.zoo.outputs import check_loss_value

Params = dict[str, Tensor]
Objective = Callable[[Params], Tensor]
Gradient = Callable[[Objective, Params], Params]


@dataclasses.dataclass(frozen=True)
class AdamState:
    """D's Adam as the look-ahead starts from it: moments by parameter name, steps taken (a tensor, so a
    captured step reads the current count), and its hyperparameters (tensors of one member's values
    inside a population's vmap); ``clip``: D's weight clipping after each update (``d_weight_clip``,
    infinite for a member without), None: none."""

    exp_avg: Params
    exp_avg_sq: Params
    step: Tensor
    lr: float | Tensor
    beta1: float | Tensor
    beta2: float | Tensor
    clip: float | Tensor | None = None
    eps: float = 1e-8


def unroll_problem(loss: Loss, has_penalty: bool) -> str | None:
    """Why a loss cannot be unrolled, or None."""
    if has_penalty or type(loss).penalty_at is not Loss.penalty_at:
        return ("unroll takes no gradient penalty: D's look-ahead updates would differentiate the penalty's "
                "input gradients twice more (set penalty=none, or unroll=0)")
    if loss.initial_state():
        return "unroll takes no loss with a state of its own (BEGAN's k would advance at every look-ahead update)"
    return None


def autograd_gradient(objective: Objective, params: Params) -> Params:
    """d objective / d params with the graph kept (``create_graph``), for a single run's autograd."""
    grads = torch.autograd.grad(objective(params), list(params.values()), create_graph=True, allow_unused=True)
    return {k: torch.zeros_like(p) if g is None else g for (k, p), g in zip(params.items(), grads)}


def func_gradient(objective: Objective, params: Params) -> Params:
    """The same through torch.func, inside a population's vmap and grad."""
    return torch.func.grad(objective)(params)


def look_ahead(objective: Objective, params: Params, adam: AdamState, steps: int, gradient: Gradient) -> Params:
    """D's parameters after ``steps`` Adam updates minimising ``objective`` (D's loss as a function of its
    parameters), differentiable in ``params`` and in whatever ``objective`` depends on (G's samples)."""
    m, v = dict(adam.exp_avg), dict(adam.exp_avg_sq)
    for j in range(1, steps + 1):
        grads = gradient(objective, params)
        t = adam.step + j
        bias1, bias2 = 1 - adam.beta1**t, 1 - adam.beta2**t
        following = {}
        for name, p in params.items():
            g = grads[name]
            m[name] = adam.beta1 * m[name] + (1 - adam.beta1) * g
            v[name] = adam.beta2 * v[name] + (1 - adam.beta2) * g * g
            # sqrt has an infinite slope at 0: a moment that is exactly 0 (a dead unit's) would make the
            # second derivative 0 * inf = nan. Below float's smallest normal the value moves by < 1e-19,
            # far under eps.
            root = v[name].clamp_min(torch.finfo(v[name].dtype).tiny).sqrt()
            p = p - (adam.lr / bias1) * m[name] / (root / bias2**0.5 + adam.eps)
            following[name] = p if adam.clip is None else p.clamp(-adam.clip, adam.clip)
        params = following
    return params


def surrogate(loss: Loss, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """G's objective at the look-ahead D (``critic``): minus D's objective for a zero-sum loss, else G's own
    loss there, D's logits on ``real`` included where it names them (the look-ahead D depends on G, so
    unlike a plain step's these carry G's gradient)."""
    if loss.zero_sum:
        return -d_objective(loss, critic, real, fake)
    extra = {"real": at_least_float32(critic(real))} if "real" in named_inputs(type(loss), "generator_loss") else {}
    value = loss.generator_loss(fake=at_least_float32(critic(fake)), **extra)
    check_loss_value(value, loss, "generator_loss")
    return value


def d_objective(loss: Loss, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """D's loss on the step's batch as the look-ahead minimises it (no penalty, no state: unroll_problem)."""
    return loss.discriminator_loss(real=at_least_float32(critic(real)), fake=at_least_float32(critic(fake)))
