"""A run's length, in a unit every trial of a study can share.

One engine step is ``n_critic`` D updates (each on a fresh real batch) and one G update. A budget
counts either unit:

- ``g_updates``: steps; a trial with n_critic 5 then does 5x the D updates (and sees 5x the real
  images) of a trial with n_critic 1 in the same study, so searching n_critic searches compute.
- ``d_updates``: D updates, G updated after every n_critic of them, as compare_gan counts a run
  (``training_steps``, a D update each, G every ``disc_iters``: gans/abstract_gan.py
  run_single_train_step): every trial sees the same real images, whatever its n_critic.

An epoch is ``epoch_size`` images (None: the training split's size); ``epochs`` of a budget are that
many images at ``batch_size`` per update, floored as compare_gan floors ``20 * epoch // BATCH_SIZE``.
Under ``d_updates``, epochs are epochs of real images seen by D. ``batch_size`` counts packs
(ganzoo.zoo.packing): with ``pack`` m an epoch's updates draw m x ``epoch_size`` samples, as PacGAN keeps
its iterations per epoch (1,000 of 100 packs) for every m.
"""

from __future__ import annotations

from ganzoo.core.config import BUDGET_UNITS, D_UPDATES, G_UPDATES, UNIT_NAMES
from ganzoo.core.errors import GanzooError

__all__ = ["BUDGET_UNITS", "D_UPDATES", "G_UPDATES", "UNIT_NAMES", "check_unit", "length_text", "steps_for",
           "units_per_step", "updates_of"]


def check_unit(unit: str) -> None:
    if unit not in BUDGET_UNITS:
        raise GanzooError(f"budget must be one of {', '.join(BUDGET_UNITS)}, got {unit!r}")


def updates_of(epochs: float, epoch_size: int, batch_size: int) -> int:
    """Updates of ``batch_size`` images in ``epochs`` epochs of ``epoch_size`` images (at least one)."""
    return max(1, int(epochs * epoch_size) // batch_size)


def units_per_step(unit: str, n_critic: int) -> int:
    """How many of the unit's updates one engine step takes: n_critic D updates, or one G update."""
    return n_critic if unit == D_UPDATES else 1


def length_text(steps: int, unit: str, n_critic: int) -> str:
    """``steps`` engine steps as a run states its length in ``unit``: "2,000 D updates (400 G updates)"
    where the two differ, else "400 G updates"."""
    if unit == D_UPDATES and n_critic != 1:
        return f"{steps * n_critic:,} D updates ({steps:,} G updates)"
    return f"{steps:,} {UNIT_NAMES[unit]}"


def steps_for(updates: int, unit: str, n_critic: int) -> int:
    """Engine steps for ``updates`` of ``unit`` at ``n_critic`` (D updates rounded to whole steps)."""
    return max(1, round(updates / units_per_step(unit, n_critic)))
