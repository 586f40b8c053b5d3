"""The training step: what both step bodies (one run's modules, a population's stacked weights) share.

A step is ``n_critic`` D updates, then one G update that reuses the last D update's fakes (as
compare_gan, Lucic et al. 2018, does: G's weights have not changed in between, so this is the same
update as a second forward of the same z, one G forward cheaper).

A step body works on P members (a single run is one) and keeps, on the device:

- ``stats`` (P, len(STAT_NAMES)): sums since the engine last read them (it divides by the steps);
- ``norms`` (P, len(NORM_NAMES)): gradient norms of the last step that asked for them;
- ``nonfinite`` (P,): set once a member's loss turns non-finite;
- ``loss_state`` (``LossState``): the loss's own state per member (BEGAN's k), advanced after each
  D update and logged at log points.

Nothing in a body reads a value back to the host, so the engine can replay it as one CUDA graph
(``ganzoo.training.graphs``); the statistics cross to the host at log points only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ganzoo.zoo.losses import Loss, at_least_float32, named_inputs
from ganzoo.zoo.outputs import check_loss_value

STAT_NAMES = ("d_loss", "g_loss", "penalty", "d_real", "d_fake")  # means over the steps between log points
# Gradient norms are taken at log steps only when the step runs eagerly: a norm over every parameter
# costs about 5-10% of a small GAN's eager step. A captured step takes them every step (a few kernels
# inside one graph launch), which gives the same figures at the log step.
NORM_NAMES = ("d_grad_norm", "g_grad_norm")
CRITIC_AUX = ("d_loss", "d_real", "d_fake", "penalty")  # what critic_terms returns beside the loss, in order
_AUX_COLUMNS = [STAT_NAMES.index(name) for name in CRITIC_AUX]
_G_COLUMN = STAT_NAMES.index("g_loss")


def critic_terms(loss: Loss, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                 penalty: Callable[[], Tensor | None], state: dict[str, Tensor]
                 ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """D's objective, its CRITIC_AUX figures (detached) and the loss's next state, for one member.
    Logits are taken to at least float32 (from bf16 autocast) before the loss; ``penalty()`` gives
    the penalty terms or None; ``state`` is the loss's state (``Loss.initial_state``)."""
    real_logits, fake_logits = at_least_float32(critic(real)), at_least_float32(critic(fake))
    named = named_inputs(type(loss), "discriminator_loss")
    value = loss.discriminator_loss(real=real_logits, fake=fake_logits, **({"state": state} if "state" in named else {}))
    check_loss_value(value, loss, "discriminator_loss")
    term = penalty()
    term = torch.zeros_like(value) if term is None else term
    aux = torch.stack([value, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(), term])
    following = loss.next_state(state=state, real=real_logits.detach(), fake=fake_logits.detach()) if state else state
    return value + term, aux.detach(), following


def generator_term(loss: Loss, critic: Callable[[Tensor], Tensor], fake: Tensor, real: Tensor,
                   state: dict[str, Tensor]) -> Tensor:
    """G's objective for one member. D's logits on ``real`` (the last critic step's batch) are computed
    only for a loss that names them, before the fakes' (a fixed order: D's BatchNorm statistics and
    spectral-norm vectors update at each forward), and carry no gradient."""
    named = named_inputs(type(loss), "generator_loss")
    extra: dict[str, Any] = {"state": state} if "state" in named else {}
    if "real" in named:
        extra["real"] = at_least_float32(critic(real)).detach()
    value = loss.generator_loss(fake=at_least_float32(critic(fake)), **extra)
    check_loss_value(value, loss, "generator_loss")
    return value


def penalty_terms(terms: Sequence[Tensor | None]) -> Tensor | None:
    """The sum of the penalty terms that are there (a loss's own, the configured one), or None."""
    present = [t for t in terms if t is not None]
    return sum(present[1:], present[0]) if present else None


class LossState:
    """The loss's own state (``Loss.initial_state``, BEGAN's k) for P members: name -> (P,) tensor on
    the device, advanced in place (a captured graph reads and writes these very tensors)."""

    def __init__(self, losses: Sequence[Loss], device: torch.device, dtype: torch.dtype) -> None:
        initial = [loss.initial_state() for loss in losses]
        self.members = len(losses)
        self.values = {name: torch.tensor([s[name] for s in initial], device=device, dtype=dtype) for name in initial[0]}

    def member(self, i: int) -> dict[str, Tensor]:
        return {name: v[i] for name, v in self.values.items()}

    def advance(self, following: dict[str, Tensor], active: Tensor) -> None:
        """Take each member's next values (shape (P,)), where ``active``; the others keep theirs."""
        for name, v in self.values.items():
            v.copy_(torch.where(active, following[name].reshape(v.shape).to(v.dtype), v))

    def read(self) -> list[dict[str, float]]:
        """Each member's values, as stats.jsonl logs them (``loss_<name>``)."""
        columns = {f"loss_{name}": v.tolist() for name, v in self.values.items()}
        return [{key: values[i] for key, values in columns.items()} for i in range(self.members)]

    def state_dict(self, i: int) -> dict[str, Tensor]:
        return {name: v[i].clone() for name, v in self.values.items()}

    def load_state_dict(self, i: int, state: dict[str, Tensor]) -> None:
        for name, v in self.values.items():
            v[i].copy_(state[name])


class Statistics:
    """The device-side statistics of P members, in the layout STAT_NAMES and NORM_NAMES name."""

    def __init__(self, members: int, device: torch.device) -> None:
        self.stats = torch.zeros(members, len(STAT_NAMES), device=device)
        self.norms = torch.zeros(members, len(NORM_NAMES), device=device)
        self.nonfinite = torch.zeros(members, dtype=torch.bool, device=device)
        self._aux_columns = torch.tensor(_AUX_COLUMNS, device=device)  # a host-made index would sync

    def critic(self, aux: Tensor, n_critic: int) -> None:
        """One D update's CRITIC_AUX figures, shape (P, 4); D's are averaged over the critic steps."""
        self.stats.index_add_(1, self._aux_columns, aux.to(self.stats.dtype) / n_critic)
        self.nonfinite |= ~torch.isfinite(aux[:, 0] + aux[:, 3])

    def generator(self, value: Tensor) -> None:
        """G's loss, shape (P,)."""
        self.stats[:, _G_COLUMN] += value.to(self.stats.dtype)
        self.nonfinite |= ~torch.isfinite(value)

    def read(self, steps: int) -> tuple[list[dict[str, float]], list[bool]]:
        """Each member's means over ``steps`` steps and norms, and whether it turned non-finite; resets
        the sums. The one host sync of the loop."""
        stats = (self.stats / max(steps, 1)).tolist()
        norms = self.norms.tolist()
        nonfinite = self.nonfinite.tolist()
        self.stats.zero_()
        records = [{**dict(zip(STAT_NAMES, s)), **dict(zip(NORM_NAMES, n))} for s, n in zip(stats, norms)]
        return records, nonfinite


class StepBody(Protocol):
    """What the engine runs: ``body(plan(), norms)`` is one step of every member."""

    members: int
    device: torch.device
    statistics: Statistics
    loss_state: LossState

    def plan(self) -> Any:
        """Host side, before the step: its batches (indices into device-resident data)."""

    def body(self, plan: Any, norms: bool) -> None:
        """Device side: the whole step, with no host sync (capturable)."""

    def generators(self) -> list[torch.Generator]:
        """The generators ``body`` draws from (registered with a captured graph)."""

    def capture_problem(self) -> str | None:
        """Why this body cannot be captured as a CUDA graph, or None."""

    def eager_only(self) -> None:
        """The step will not be captured (told once, before or during the warm-up): drop what only
        capture needs."""

    def freeze(self, i: int) -> None:
        """Member i stops changing (diverged or stopped); the others go on."""

    def modules(self, i: int) -> tuple[nn.Module, nn.Module]:
        """Member i's G and D as ordinary modules, for samples and callbacks: G is the generator to
        evaluate, its weights' moving average where ``g_ema_decay`` asks for one."""

    def checkpoint(self, i: int, step: int) -> dict[str, Any]:
        """Member i's checkpoint.pt contents at ``step`` (tensors only)."""

    def load(self, state: dict[str, Any]) -> int:
        """Continue from a checkpoint (a single run); returns the step it was taken at."""

    def fast_paths(self) -> list[str]:
        """The fast paths this body uses, for throughput.json."""
