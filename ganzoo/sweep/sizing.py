"""How many trials a sweep trains at once (``--population``): whether a pair can share a population at
all, found by a probe step before any trial is claimed, and, for ``auto``, the size that trains the
most member-steps per second, measured by training populations of growing size. A population that
runs out of memory makes the pair's later ones smaller (``out_of_memory``)."""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.sweep.config import Pair, SweepConfig

# Evaluation's peak bytes per image: Inception scores 3x299x299 float32 images, and its widest moment
# (Conv2d_2b's 32x147x147 input beside its 64x147x147 output and that output's batch norm) holds ~13
# times one. A population's members are extracted in one pass, eval batch_size images each
# (features.NetworkFeatures._pass). An upper bound for the domain classifier, which runs at the data's
# resolution; points are scored on the CPU and cost the device nothing to speak of.
EVAL_ACTIVATIONS = 13
EVAL_IMAGE_BYTES = EVAL_ACTIVATIONS * 3 * 299 * 299 * 4
# Kept back from the free memory: the allocator's fragmentation and the extractor's own weights.
MARGIN = 0.1


def release_cuda_memory() -> None:
    """After running out of memory: collect what the failed run left (its tensors may sit in reference
    cycles) and hand the allocator's cached blocks back, for the smaller run that follows. Call it
    outside the ``except`` block, whose traceback still holds the failed run's frames."""
    import torch

    gc.collect()
    torch.cuda.empty_cache()  # all devices' caches (it takes no device); a no-op before CUDA is initialised


def trials_that_fit(free: int, fixed: int, per_member: int, eval_per_member: int, seeds: int, n_trials: int) -> int:
    """Trials whose population fits in ``free`` bytes less MARGIN: ``fixed`` bytes shared, and for each
    member (``seeds`` a trial) its training bytes and its evaluation's, which come on top of them (the
    networks, optimiser state and graph pool stay allocated while the members are evaluated)."""
    room = (1 - MARGIN) * free - fixed
    return max(1, min(n_trials, int(room // max(per_member + eval_per_member, 1)) // seeds))


class PopulationSizer:
    """``population``: a positive integer (trials per population, 1: one at a time) or ``auto``. Each
    decision is made once per pair and said once through ``log``."""

    def __init__(self, config: SweepConfig, population: int | str, log: Callable[[str], None]) -> None:
        if not (population == "auto" or (isinstance(population, int) and population >= 1)):
            raise GanzooError(f"--population must be a positive integer or auto, got {population!r}")
        self.config, self.population, self.log = config, population, log
        self._populable: dict[str, bool] = {}
        self._sizes: dict[str, int] = {}  # measured (auto), or lowered after running out of memory

    def trials_at_once(self, pair: Pair) -> int:
        return self.size(pair) if self.can_populate(pair) else 1

    def can_populate(self, pair: Pair) -> bool:
        """Whether this pair's trials can share a population, found by a probe step of two members
        (``population.probe``); a network vmap cannot batch trains one trial at a time, never fails."""
        if self.population == 1:
            return False
        if pair.name not in self._populable:
            from ganzoo.training.population import probe

            problem = probe(self.config.run_config(pair, device=self.config.device, batch_size=self.config.batch_size))
            self._populable[pair.name] = problem is None
            if problem is not None:
                self.log(f"{pair.name}: trained one trial at a time (a population cannot train it: {problem})")
        return self._populable[pair.name]

    def out_of_memory(self, pair: Pair, trials: int) -> None:
        """A population of ``trials`` of ``pair`` ran out of memory in training (its evaluation, a larger
        configuration than the one measured, another process): the pair's later populations hold at most
        half as many (at least 1: a trial alone that runs out of memory fails, it is not queued again).
        Several populations of one claim that run out lower it once, not once each."""
        size = self.size(pair)
        lowered = min(size, max(1, trials // 2))
        if lowered < size:
            self._sizes[pair.name] = lowered
            self.log(f"{pair.name}: a population of {trials} trials ran out of memory; populations of "
                     f"{lowered} from now on")

    def size(self, pair: Pair) -> int:
        """Trials per population: as asked, or ``auto``: one on a CPU (a population is slower there:
        the cores are already busy with one run); on CUDA the size that trains the most member-steps
        per second, measured: one trial alone, then populations of 2, 4, 8, ... trials while they fit
        beside their evaluation (``trials_that_fit``), stopping when doubling gains less than 5% or a
        population runs out of memory (the largest that ran is kept)."""
        if pair.name in self._sizes:
            return self._sizes[pair.name]
        if self.population != "auto":
            return int(self.population)
        import torch

        from ganzoo.core.device import resolve_device

        device = resolve_device(self.config.device)
        if device.type != "cuda":
            return 1
        seeds = max(self.config.seeds, 1)
        peaks = self._member_peaks(pair, device)
        if 4 in peaks:
            per_member = max((peaks[4] - peaks[2]) // 2, 1)
            fixed = max(peaks[2] - 2 * per_member, 0)
            eval_per_member, evaluation = self._eval_bytes(pair)
            torch.cuda.empty_cache()
            free, _ = torch.cuda.mem_get_info(device)
            fits = trials_that_fit(free, fixed, per_member, eval_per_member, seeds, self.config.n_trials)
            memory = (f"{per_member / 2**20:,.0f} MiB a member, {fixed / 2**20:,.0f} MiB shared, "
                      f"{evaluation}, {fits} fit")
        else:  # a population measured ran out of memory: at most the members that ran fit
            failed = next(n for n in (1, 2, 4) if n not in peaks)
            fits = max(1, min(self.config.n_trials, max(peaks, default=1) // seeds))
            memory = f"out of memory measuring {failed} members, {fits} fit"
        config = self.config.run_config(pair, batch_size=self.config.batch_size, device=str(device))
        rates: dict[int, float] = {}
        best, trials, ran_out = 1, 1, ""
        while trials <= fits:
            rate = self._timed(config, 1 if trials == 1 else trials * seeds)  # one trial alone: a single run
            if rate is None:
                ran_out = f", {trials}: out of memory"
                break
            rates[trials] = rate
            if trials > 1 and rate < 1.05 * rates[best]:
                break
            best, trials = trials, trials * 2
        self._sizes[pair.name] = best
        measured = ", ".join(f"{n}: {r:,.0f}" for n, r in rates.items()) + ran_out
        self.log(f"{pair.name}: population of {best} trials (member-steps/s by trials, {measured}; {memory})")
        return best

    def _eval_bytes(self, pair: Pair) -> tuple[int, str]:
        """A member's share of a population's evaluation in bytes (EVAL_IMAGE_BYTES an image of the
        sweep's eval batch), and how that was reckoned, for the log."""
        from ganzoo.training.trainer import load_training_data

        batch = self.config.evaluation.batch_size
        if load_training_data(self.config.run_config(pair)).kind == "points":
            return 0, "evaluation on the CPU (points)"
        per_member = batch * EVAL_IMAGE_BYTES
        return per_member, (f"evaluation {per_member / 2**20:,.0f} MiB a member ({batch} images x {EVAL_ACTIVATIONS} "
                            f"x 3x299x299 float32, Inception's widest activations)")

    @staticmethod
    def _timed(config: Any, members: int) -> float | None:
        """Member-steps per second of ``members`` trained together; None where they ran out of memory."""
        import torch

        from ganzoo.training.population import timed_members

        try:
            return timed_members(config, members)["member_steps_per_second"]
        except torch.cuda.OutOfMemoryError:
            pass
        release_cuda_memory()
        return None

    def _member_peaks(self, pair: Pair, device: Any) -> dict[int, int]:
        """Peak CUDA bytes of training populations of 1, 2 and 4 members, up to the first that runs out
        of memory (left out, as are those after it). Each runs past graphs.WARMUP eager steps into a
        captured graph, whose private pool counts; the run of 1 is a warm-up (it also allocates cuBLAS
        and cuDNN workspaces, which are not a member's cost)."""
        import torch

        from ganzoo.training.graphs import WARMUP
        from ganzoo.training.population import PopulationTrainer

        peaks: dict[int, int] = {}
        for n in (1, 2, 4):
            config = self.config.run_config(pair, steps=WARMUP + 2, batch_size=self.config.batch_size,
                                            device=str(device), log_every=1, sample_every=0, checkpoint_every=0)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    PopulationTrainer([config] * n, [Path(tmp) / str(i) for i in range(n)]).run()
            except torch.cuda.OutOfMemoryError:
                pass
            else:
                peaks[n] = torch.cuda.max_memory_allocated(device) - base
                continue
            release_cuda_memory()
            break
        return peaks
