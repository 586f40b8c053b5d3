"""The training step: what both step bodies (one run's modules, a population's stacked weights) share.

A step is ``n_critic`` D updates, then one G update that reuses the last D update's fakes (as
compare_gan, Lucic et al. 2018, does: G's weights have not changed in between, so this is the same
update as a second forward of the same z, one G forward cheaper).

A step body works on P members (a single run is one) and keeps, on the device:

- ``stats`` (P, len(STAT_NAMES)): sums since the engine last read them (it divides by the steps);
- ``norms`` (P, len(NORM_NAMES)): gradient norms of the last step that asked for them;
- ``nonfinite`` (P,): set once a member's loss turns non-finite.

Nothing in a body reads a value back to the host, so the engine can replay it as one CUDA graph
(``ganzoo.graphs``); the statistics cross to the host at log points only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ganzoo.losses import Loss, at_least_float32

STAT_NAMES = ("d_loss", "g_loss", "penalty", "d_real", "d_fake")  # means over the steps between log points
# Gradient norms are taken at log steps only when the step runs eagerly: a norm over every parameter
# costs about 5-10% of a small GAN's eager step. A captured step takes them every step (a few kernels
# inside one graph launch), which gives the same figures at the log step.
NORM_NAMES = ("d_grad_norm", "g_grad_norm")
CRITIC_AUX = ("d_loss", "d_real", "d_fake", "penalty")  # what critic_terms returns beside the loss, in order
_AUX_COLUMNS = [STAT_NAMES.index(name) for name in CRITIC_AUX]
_G_COLUMN = STAT_NAMES.index("g_loss")


def critic_terms(loss: Loss, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                 penalty: Callable[[], Tensor | None]) -> tuple[Tensor, Tensor]:
    """D's objective and its CRITIC_AUX figures (detached), for one member. Logits are taken to
    at least float32 (from bf16 autocast) before the loss; ``penalty()`` gives the penalty term or None."""
    real_logits, fake_logits = at_least_float32(critic(real)), at_least_float32(critic(fake))
    value = loss.discriminator_loss(real_logits, fake_logits)
    term = penalty()
    term = torch.zeros_like(value) if term is None else term
    aux = torch.stack([value, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(), term])
    return value + term, aux.detach()


def generator_term(loss: Loss, critic: Callable[[Tensor], Tensor], fake: Tensor) -> Tensor:
    return loss.generator_loss(at_least_float32(critic(fake)))


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

    def plan(self) -> Any:
        """Host side, before the step: its batches (indices into device-resident data)."""

    def body(self, plan: Any, norms: bool) -> None:
        """Device side: the whole step, with no host sync (capturable)."""

    def generators(self) -> list[torch.Generator]:
        """The generators ``body`` draws from (registered with a captured graph)."""

    def capture_problem(self) -> str | None:
        """Why this body cannot be captured as a CUDA graph, or None."""

    def freeze(self, i: int) -> None:
        """Member i stops changing (diverged or stopped); the others go on."""

    def modules(self, i: int) -> tuple[nn.Module, nn.Module]:
        """Member i's G and D as ordinary modules, for samples, callbacks and checkpoints."""

    def checkpoint(self, i: int, step: int) -> dict[str, Any]:
        """Member i's checkpoint.pt contents at ``step`` (tensors only)."""

    def load(self, state: dict[str, Any]) -> int:
        """Continue from a checkpoint (a single run); returns the step it was taken at."""

    def fast_paths(self) -> list[str]:
        """The fast paths this body uses, for throughput.json."""
