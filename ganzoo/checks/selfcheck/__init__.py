"""The GPU self-check: ``ganzoo bench --self-check``, what a person runs first on a new GPU (offline,
budgeted at under 8 minutes).

``CHECKS`` names small check functions, run in order, each returning one row: a verdict ("pass",
"FAIL", or "n/a (why)"), its measured figures and one line of detail. On CUDA they check that:

1. ``variants``: every registered variant's step is captured as one CUDA graph and trains the eager
   step's weights (in float64: ``training`` says why);
2. ``population``: a captured population trains what its members train alone;
3. ``no-host-sync``: the steps between log points, across an epoch's end, never sync with the host;
4. ``syncing-plugin``: a loss that reads a value back to the host falls back to eager and says why;
5. ``resume``: a captured run resumed from its checkpoint is bit for bit the uninterrupted run;
6. ``graph-vs-eager``: steps/s, kernels and launches per step, host time per step, graph vs eager;
7. ``inception``: Inception images/s at each extraction precision, eager and compiled, recompiles counted;
8. ``sizing-memory``: the population sizer's memory estimate against a captured population's peak.

Data is the bundled 8x8 ``digits`` and generated ``ring8`` only; Inception runs with random weights
unless ganzoo's converted weights are already cached (its speed does not depend on them). ``--cpu``
runs the same functions at tiny sizes on the CPU: whatever a CPU can execute (training, the equality
of two eager runs, population against members, host syncs found by ``ganzoo.training.capture``, resume,
float32 extraction) is executed and can FAIL; verdicts that need CUDA read "n/a (cpu)".

One concern a module:

- ``context``: the verdicts, the sizes each check runs at, ``Context`` and ``Outcome``;
- ``training``: checks 1-5 (capture against eager, populations, host syncs, a syncing plugin, resume);
- ``speed``: checks 6 and 7 (the captured step against the eager one, Inception per precision);
- ``memory``: check 8 (the sizer's estimate against a captured population's peak);
- ``runner``: ``CHECKS``, the run, its CSVs, its closing line and ``command`` (what ``ganzoo bench`` calls).
"""

from __future__ import annotations

from ganzoo.checks.selfcheck.runner import (
    CHECKS,
    SUMMARY_CSV,
    TIME_BUDGET_SECONDS,
    command,
    failed,
    run,
    summary,
    write_csvs,
)

__all__ = ["CHECKS", "SUMMARY_CSV", "TIME_BUDGET_SECONDS", "command", "failed", "run", "summary", "write_csvs"]
