"""How many trials a sweep trains at once (``--population``): whether a pair can share a population at
all, found by a probe step before any trial is claimed, and, for ``auto``, the size that trains the
most member-steps per second, measured by training populations of growing size."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError
from ganzoo.sweep.config import Pair, SweepConfig


class PopulationSizer:
    """``population``: a positive integer (trials per population, 1: one at a time) or ``auto``. Each
    decision is made once per pair and said once through ``log``."""

    def __init__(self, config: SweepConfig, population: int | str, log: Callable[[str], None]) -> None:
        if not (population == "auto" or (isinstance(population, int) and population >= 1)):
            raise GanzooError(f"--population must be a positive integer or auto, got {population!r}")
        self.config, self.population, self.log = config, population, log
        self._populable: dict[str, bool] = {}
        self._sizes: dict[str, int] = {}

    def trials_at_once(self, pair: Pair) -> int:
        return self.size(pair) if self.can_populate(pair) else 1

    def can_populate(self, pair: Pair) -> bool:
        """Whether this pair's trials can share a population, found by a probe step of two members
        (``population.probe``); a network vmap cannot batch trains one trial at a time, never fails."""
        if self.population == 1:
            return False
        if pair.name not in self._populable:
            from ganzoo.population import probe

            problem = probe(self.config.run_config(pair, device=self.config.device, batch_size=self.config.batch_size))
            self._populable[pair.name] = problem is None
            if problem is not None:
                self.log(f"{pair.name}: trained one trial at a time (a population cannot train it: {problem})")
        return self._populable[pair.name]

    def size(self, pair: Pair) -> int:
        """Trials per population: as asked, or ``auto``: one on a CPU (a population is slower there:
        the cores are already busy with one run); on CUDA the size that trains the most member-steps
        per second, measured: one trial alone, then populations of 2, 4, 8, ... trials while they fit
        in 80% of the free memory, stopping when doubling gains less than 5%."""
        if self.population != "auto":
            return int(self.population)
        import torch

        from ganzoo.device import resolve_device
        from ganzoo.population import timed_members

        device = resolve_device(self.config.device)
        if device.type != "cuda":
            return 1
        if pair.name not in self._sizes:
            fixed, per_member = self._member_bytes(pair, device)
            torch.cuda.empty_cache()
            free, _ = torch.cuda.mem_get_info(device)
            # Evaluation needs room too (G's samples, the extractor): keep a fifth of the memory free.
            seeds = max(self.config.seeds, 1)
            fits = max(1, min(self.config.n_trials, int((0.8 * free - fixed) / max(per_member, 1)) // seeds))
            config = self.config.run_config(pair, batch_size=self.config.batch_size, device=str(device))
            rates = {1: timed_members(config, 1)["member_steps_per_second"]}
            best, trials = 1, 2
            while trials <= fits:
                rates[trials] = timed_members(config, trials * seeds)["member_steps_per_second"]
                if rates[trials] < 1.05 * rates[best]:
                    break
                best, trials = trials, trials * 2
            self._sizes[pair.name] = best
            measured = ", ".join(f"{n}: {r:,.0f}" for n, r in rates.items())
            self.log(f"{pair.name}: population of {best} trials (member-steps/s by trials, {measured}; "
                     f"{per_member / 2**20:.0f} MiB a member, {fixed / 2**20:.0f} MiB shared, {fits} fit)")
        return self._sizes[pair.name]

    def _member_bytes(self, pair: Pair, device: Any) -> tuple[int, int]:
        """(shared, per member) peak CUDA bytes, from populations of 2 and 4 after a warm-up run
        (the first run also allocates cuBLAS and cuDNN workspaces, which are not a member's cost)."""
        import torch

        from ganzoo.population import PopulationTrainer

        peaks = []
        for n in (1, 2, 4):
            config = self.config.run_config(pair, steps=3, batch_size=self.config.batch_size, device=str(device),
                                            log_every=1, sample_every=0, checkpoint_every=0)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            with tempfile.TemporaryDirectory() as tmp:
                PopulationTrainer([config] * n, [Path(tmp) / str(i) for i in range(n)]).run()
            peaks.append(torch.cuda.max_memory_allocated(device) - base)
        per_member = max((peaks[2] - peaks[1]) // 2, 1)
        return max(peaks[1] - 2 * per_member, 0), per_member
