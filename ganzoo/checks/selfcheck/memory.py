"""The self-check of memory (8 of ``ganzoo bench --self-check``): the population sizer's memory
estimate against the peak of a captured population it sized for."""

from __future__ import annotations

import gc
import re

import torch

from ganzoo.checks.selfcheck.context import (
    FAIL,
    PASS,
    Context,
    Outcome,
    not_applicable,
    run_execution,
    run_precision,
)

# How far a captured population's peak may exceed the sizer's training estimate: by about the margin of
# free memory the sizer keeps back (ganzoo.sweep.sizing.MARGIN, 10%); beyond it a sized population can
# run out of memory.
MEMORY_SLACK = 1.10
# The sizer's log line that states its estimate (ganzoo.sweep.sizing).
_ESTIMATE = re.compile(r"([\d,]+) MiB a member, ([\d,]+) MiB shared")


def check_sizing_memory(ctx: Context) -> Outcome:
    """``ganzoo.sweep.sizing.PopulationSizer`` through its public behaviour: ``size`` of an nsgan study
    on the Lucic network (infogan) on digits, whose log line states the memory it expects (MiB a
    member, MiB shared); then a population of ``members`` trained past its capture, its peak of
    torch.cuda.max_memory_allocated above what was allocated before (as the sizer measures). The
    estimate must cover the peak to within MEMORY_SLACK: a sizer that underestimates a captured
    population's memory fills the device. On a CPU the sizer answers 1 without measuring; the
    population is trained, nothing is measured."""
    from ganzoo.sweep.config import Pair, SweepConfig
    from ganzoo.sweep.sizing import PopulationSizer
    from ganzoo.training.graphs import WARMUP
    from ganzoo.training.population import PopulationTrainer

    s = ctx.sizes
    sweep = SweepConfig(variants=("nsgan",), datasets=("digits",), arch="infogan", n_trials=4, seeds=1,
                        batch_size=s.batch_size, device=str(ctx.device))
    pair = Pair("nsgan", "digits")
    said: list[str] = []
    size = PopulationSizer(sweep, "auto", said.append).size(pair)
    steps = WARMUP + 3 if ctx.cuda else s.steps  # on CUDA: warm-up, capture, replays
    configs = [sweep.run_config(pair, seed=i, steps=steps, batch_size=s.batch_size, device=str(ctx.device),
                                log_every=steps, sample_every=0, checkpoint_every=0) for i in range(s.members)]
    dirs = [ctx.run_dir(f"population-{i}") for i in range(s.members)]
    if not ctx.cuda:
        PopulationTrainer(configs, dirs).run()
        return Outcome(not_applicable("cpu"), f"the sizer chose {size} on the cpu without measuring; a population "
                       f"of {s.members} trained (memory is measured on CUDA)", {"trials_at_once": size},
                       run_precision(dirs[0]))
    found = next((m for line in said if (m := _ESTIMATE.search(line))), None)
    if found is None:
        return Outcome(FAIL, f"the sizer's log states no memory estimate ({' | '.join(said) or 'nothing logged'}): "
                       "ganzoo/selfcheck/memory.py reads 'N MiB a member, M MiB shared'", {"trials_at_once": size})
    per_member, shared = (float(g.replace(",", "")) for g in found.groups())
    gc.collect()  # the sizer's own populations, gone before the base is read
    torch.cuda.empty_cache()
    ctx.sync()
    torch.cuda.reset_peak_memory_stats(ctx.device)
    base = torch.cuda.memory_allocated(ctx.device)
    PopulationTrainer(configs, dirs).run()
    ctx.sync()
    measured = (torch.cuda.max_memory_allocated(ctx.device) - base) / 2**20
    estimate = shared + s.members * per_member
    # The log rounds each figure to a MiB: allow that rounding on top of the slack.
    ok = measured <= MEMORY_SLACK * estimate + 0.5 * (s.members + 1)
    execution = run_execution(dirs[0])
    figures = {"members": s.members, "estimate_mib": estimate, "measured_mib": measured,
               "ratio": measured / estimate if estimate else None, "per_member_mib": per_member,
               "shared_mib": shared, "trials_at_once": size, "execution": execution}
    detail = (f"{s.members} members ({execution}): peak {measured:,.0f} MiB, the sizer's estimate {estimate:,.0f} MiB "
              f"({shared:,.0f} shared + {per_member:,.0f} a member; x{measured / max(estimate, 1e-9):.2f})")
    if not ok:
        detail = f"the peak exceeds the estimate by more than {MEMORY_SLACK - 1:.0%}: " + detail
    return Outcome(PASS if ok else FAIL, detail, figures, run_precision(dirs[0]))
