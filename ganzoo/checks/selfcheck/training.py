"""The self-checks of training (1-5 of ``ganzoo bench --self-check``): that a captured step trains
what the eager step trains, alone and in a population, without host syncs, that a plugin which
syncs falls back to eager, and that resume is exact. Each check's docstring says what it runs.

Why float64 for checks 1 and 2: ganzoo has no dtype setting, and in float32 the captured and the eager
step cannot be held to each other over a run. They differ in Adam's arithmetic (``capturable=True``
keeps the step count on the device, eager Adam on the host) and, with TF32 or another cuDNN
algorithm, in rounding; a pre-activation within rounding of a ReLU's kink then flips and Adam turns
the changed gradient into an update change of up to ~lr (tests/training/test_population.py measured 8e-8 ->
3e-6 between two steps). So the runs are trained in float64 the way ganzoo's tests do it (torch's
default dtype and the data in float64: tests/conftest.py ``float64``), where no TF32 applies, a flip
needs a pre-activation within ~1e-16 of zero, and TRAJECTORY_TOLERANCE separates rounding from error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.checks.selfcheck.context import (
    Context,
    Outcome,
    run_execution,
    run_precision,
)
from ganzoo.core import rundir
from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import GanzooError, one_line
from ganzoo.core.plugins import describe_exception
from ganzoo.training.graphs import sync_debug_mode

# Float64 trajectories of <= 30 steps (tests/training/test_population.py derives it): rounding moves weights by
# <~ 1e2 u64 = 1e-14, the smallest real discrepancy known (Adam's settings rounded to float32) by 4e-8.
TRAJECTORY_TOLERANCE = 1e-9


# ---- shared pieces -------------------------------------------------------------------------------

@contextlib.contextmanager
def float64_training() -> Iterator[None]:
    """Runs and populations built inside train in float64 (modules, data, noise, Adam, statistics):
    torch's default dtype, and the training data cast where trainers and populations load it. This is
    the tests' float64 recipe (tests/conftest.py ``float64``), here without pytest's monkeypatch:
    ``ganzoo.training.trainer.load_dataset`` is swapped for a casting wrapper and, like the default dtype, put
    back however the block ends."""
    import ganzoo.training.trainer

    load = ganzoo.training.trainer.load_dataset

    def load_float64(*args: Any, **kwargs: Any) -> Any:
        data = load(*args, **kwargs)
        return dataclasses.replace(data, x=data.x.double()) if data.x is not None else data

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    ganzoo.training.trainer.load_dataset = load_float64  # looked up at each call by trainer.load_training_data
    try:
        yield
    finally:
        ganzoo.training.trainer.load_dataset = load
        torch.set_default_dtype(previous)


def max_difference(a: Sequence[nn.Module], b: Sequence[nn.Module]) -> float:
    """The largest |a - b| over the weights and buffers of paired modules."""
    worst = 0.0
    for x, y in zip(a, b):
        for (_, p), (_, q) in zip(x.state_dict().items(), y.state_dict().items()):
            if p.is_floating_point():
                worst = max(worst, (p.double() - q.double()).abs().max().item())
            elif not torch.equal(p.cpu(), q.cpu()):
                return math.inf
    return worst


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two checkpoints (nested dicts and lists of tensors and numbers) differ bit for bit, and
    by how much, or None where they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{where or 'checkpoint'}: keys {sorted(set(a) ^ set(b))} in one only"
        for key in a:
            if (found := first_difference(a[key], b[key], f"{where}.{key}" if where else str(key))) is not None:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{where}: {len(a)} items against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if (found := first_difference(x, y, f"{where}[{i}]")) is not None:
                return found
        return None
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{where}: {a.dtype}{tuple(a.shape)} against {b.dtype}{tuple(b.shape)}"
        if torch.equal(a, b):
            return None
        if a.is_floating_point():
            return f"{where}: max |difference| {(a.double() - b.double()).abs().max().item():.3g}"
        return f"{where}: differs"
    return None if a == b else f"{where}: {a!r} against {b!r}"


def _dataset_for(variant: str) -> str | None:
    """Digits where the variant's architecture takes them (images exercise channels_last), else the
    first built-in data it accepts; None where it accepts none."""
    from ganzoo.checks.contract import datasets_for

    accepted = datasets_for(variant)
    return "digits" if "digits" in accepted else (accepted[0] if accepted else None)


@contextlib.contextmanager
def _registered(entries: Sequence[tuple[Any, str, Any]]) -> Iterator[None]:
    """Registry entries for one check, removed afterwards (last registered first)."""
    done: list[tuple[Any, str]] = []
    try:
        for registry, name, item in entries:
            registry.register(name, item)
            done.append((registry, name))
        yield
    finally:
        for registry, name in reversed(done):
            registry.unregister(name)


def _trained(config: TrainConfig, run_dir: Path) -> Any:
    """A run trained to its end, quietly; the trainer is returned to look inside."""
    from ganzoo.training.trainer import Trainer

    trainer = Trainer(config, run_dir, quiet=True)
    trainer.run()
    return trainer


# ---- 1. every variant captured, its weights the eager run's ---------------------------------------

def check_variants(ctx: Context) -> Outcome:
    """Every registered variant (on digits where its architecture takes them), and dcgan with every
    switch any variant takes (spectral norm, clipping, G's average, compare_gan's init): K steps with
    the step captured (fast.cuda_graph=auto) and K eagerly (off), in float64. Captured means
    throughput.json's execution is "cuda-graph"; equal means weights, buffers, G's average and the
    loss's state within TRAJECTORY_TOLERANCE. On a CPU both runs are eager: their equality is checked."""
    from ganzoo.checks.contract import SWITCHES
    from ganzoo.zoo.variants import VARIANTS

    cases = [(v, {}) for v in VARIANTS] + [("dcgan", dict(SWITCHES))]
    table, failures, worst = [], [], 0.0
    with float64_training():
        for variant, settings in cases:
            label = f"{variant}+switches" if settings else variant
            dataset = _dataset_for(variant)
            if dataset is None:
                table.append({"variant": label, "dataset": "", "execution": "", "max_difference": None,
                              "result": "skipped: accepts no built-in data"})
                continue
            runs, dirs = {}, {}
            for graph in ("auto", "off"):
                dirs[graph] = ctx.run_dir(f"{label}-{graph}")
                runs[graph] = _trained(ctx.config(variant, dataset, **{"fast.cuda_graph": graph}, **settings),
                                       dirs[graph])
            difference = max(max_difference(runs["auto"].body.modules(0), runs["off"].body.modules(0)),
                             max_difference((runs["auto"].G,), (runs["off"].G,)))
            for name, value in runs["off"].body.loss_state.values.items():  # BEGAN's k
                difference = max(difference, (runs["auto"].body.loss_state.values[name] - value).abs().max().item())
            execution = run_execution(dirs["auto"])
            problems = _problems(ctx, execution, difference, "graph - eager")
            worst = max(worst, difference)
            if problems:
                failures.append(f"{label} {'; '.join(problems)}")
            table.append({"variant": label, "dataset": dataset, "execution": execution,
                          "max_difference": difference, "result": "; ".join(problems) or "ok"})
    trained = [r for r in table if r["dataset"]]
    figures = {"variants": len(trained), "captured": sum(r["execution"] == "cuda-graph" for r in trained),
               "max_difference": worst, "tolerance": TRAJECTORY_TOLERANCE, "steps": ctx.sizes.steps}
    if failures:
        detail = f"{len(failures)} of {len(trained)} failed: " + ", ".join(failures)
    elif ctx.cuda:
        detail = (f"{len(trained)} captured, weights as the eager runs' after {ctx.sizes.steps} steps "
                  f"(max |difference| {worst:.2g} in float64)")
    else:
        detail = (f"{len(trained)} trained eagerly twice, max |difference| {worst:.2g} in float64 (capture needs CUDA)")
    return Outcome(ctx.verdict(not failures, cuda_only=True), detail, figures, "float64", table)


def _problems(ctx: Context, execution: str, difference: float, what: str) -> list[str]:
    """What is wrong with a captured run compared with its reference: not captured (on CUDA), or
    further from it than rounding (``what``: the difference's name)."""
    problems = [f"not captured: {execution}"] if ctx.cuda and execution != "cuda-graph" else []
    if not difference <= TRAJECTORY_TOLERANCE:
        problems.append(f"|{what}| {difference:.2g}")
    return problems


# ---- 2. a captured population, each member its run alone -----------------------------------------

# A penalty and 5 critic steps; BEGAN's k with G's moving average; spectral norm's vectors: per member.
POPULATION_CASES: list[tuple[str, dict[str, Any]]] = [
    ("wgan-gp", {}), ("began", {"g_ema_decay": 0.9, "loss.gamma": 1.0}), ("hinge", {"d_spectral_norm": True})]


def check_population(ctx: Context) -> Outcome:
    """Two members (seeds 0 and 1, learning rates 2e-4 and 1e-4) trained as one population, and each
    alone, eagerly, with torch's plain Adam (the formula the population's Adam uses), in float64."""
    from ganzoo.training.population import PopulationTrainer

    table, failures, worst = [], [], 0.0
    with float64_training():
        for variant, extra in POPULATION_CASES:
            configs = [ctx.config(variant, seed=seed, **{"adam.lr": lr, "fast.fused_adam": False}, **extra)
                       for seed, lr in ((0, 2e-4), (1, 1e-4))]
            dirs = [ctx.run_dir(f"{variant}-member{i}") for i in range(len(configs))]
            population = PopulationTrainer(configs, dirs)
            population.run()
            execution = run_execution(dirs[0])
            difference = 0.0
            for i, config in enumerate(configs):
                alone = _trained(dataclasses.replace(config, fast=dataclasses.replace(config.fast, cuda_graph="off")),
                                 ctx.run_dir(f"{variant}-alone{i}"))
                difference = max(difference, max_difference(population.member_modules(i), alone.body.modules(0)))
            problems = _problems(ctx, execution, difference, "member - alone")
            worst = max(worst, difference)
            if problems:
                failures.append(f"{variant} {'; '.join(problems)}")
            table.append({"variant": variant, "members": len(configs), "execution": execution,
                          "max_difference": difference, "result": "; ".join(problems) or "ok"})
    figures = {"cases": len(table), "max_difference": worst, "tolerance": TRAJECTORY_TOLERANCE}
    how = "captured" if ctx.cuda else "eager: capture needs CUDA"
    detail = ("; ".join(failures) if failures else
              f"{len(table)} populations of 2 ({how}) train their members' runs alone, max |difference| {worst:.2g} "
              "in float64")
    return Outcome(ctx.verdict(not failures, cuda_only=False), detail, figures, "float64", table)


# ---- 3. no host sync between log points, across an epoch's end -----------------------------------

def check_no_host_sync(ctx: Context) -> Outcome:
    """dcgan at a batch size that makes digits an epoch of a few steps: after the warm-up (and
    capture), two epochs' worth of steps between log points run under
    torch.cuda.set_sync_debug_mode("error"), which raises at any synchronising operation: the new
    epoch's permutation, the plan's copy into the graph and the replay must not wait for the GPU.
    On a CPU the same steps run under ``ganzoo.training.capture.host_syncs``, which names the operators that
    would sync a CUDA stream."""
    from ganzoo.training.capture import host_syncs
    from ganzoo.training.graphs import WARMUP
    from ganzoo.training.trainer import Trainer, load_training_data

    batch = ctx.sizes.sync_batch_size
    config = ctx.config("dcgan", batch_size=batch, steps=10**6, log_every=10**6)
    per_epoch = len(load_training_data(config)) // (batch * config.n_critic)
    steps = 2 * per_epoch + 1  # two epochs end inside the window
    trainer = Trainer(config, ctx.run_dir("dcgan-sync"), quiet=True)
    for _ in range(WARMUP + 2):  # eager warm-up, then the capture and a first replay
        trainer.train_step()
    ctx.sync()
    problem = None

    def window() -> None:
        for _ in range(steps):
            trainer.train_step()

    if ctx.cuda:
        try:
            with sync_debug_mode(ctx.device, "error"):
                window()
            ctx.sync()
        except RuntimeError as e:
            problem = describe_exception(e)
    elif found := host_syncs(window):
        problem = f"{len(found)} syncing operation(s), the first {found[0]}"
    execution = trainer.engine.runner.execution
    figures = {"steps": steps, "steps_per_epoch": per_epoch, "batch_size": batch, "execution": execution}
    how = "CUDA's sync debug mode" if ctx.cuda else "ganzoo.training.capture's operator check on the cpu"
    if problem is not None:
        detail = f"a step syncs with the host ({execution}; {how}): {problem}"
    else:
        detail = f"{steps} steps across 2 epoch ends ({execution}) without a host sync ({how})"
    return Outcome(ctx.verdict(problem is None, cuda_only=False), detail, figures, trainer.engine.runner.precision_name)


# ---- 4. a syncing plugin falls back to eager and says why ----------------------------------------

SYNCING = "selfcheck-syncing"


def _syncing_loss() -> type:
    import ganzoo.zoo.losses

    @dataclasses.dataclass(frozen=True)
    class SyncingLoss(ganzoo.zoo.losses.NonSaturating):
        """The non-saturating loss reading a value back to the host every step: a plugin's usual mistake."""

        def generator_loss(self, fake: Tensor) -> Tensor:
            if fake.mean().item() > 1e30:  # a host sync; never true
                raise AssertionError("unreachable")
            return super().generator_loss(fake)

    return SyncingLoss


def check_syncing_plugin(ctx: Context) -> Outcome:
    """A loss that calls .item(), registered for this check only (a variant on the MLP, on ring8):
    with fast.cuda_graph=auto the run completes eagerly and its execution says why; with "on" it is
    one clear error. On a CPU, where every step is eager, ``ganzoo.training.capture.host_syncs`` must name the
    .item() instead."""
    from ganzoo.training.capture import host_syncs
    from ganzoo.training.trainer import Trainer
    from ganzoo.zoo.losses import LOSSES
    from ganzoo.zoo.variants import VARIANTS, Variant

    with _registered([(LOSSES, SYNCING, _syncing_loss()), (VARIANTS, SYNCING, Variant(SYNCING, "mlp"))]):
        run_dir = ctx.run_dir(SYNCING)
        config = ctx.config(SYNCING, "ring8")
        trainer = _trained(config, run_dir)
        status = rundir.read_json(run_dir / rundir.STATUS)["status"]
        execution = run_execution(run_dir)
        refused = None
        try:
            _trained(ctx.config(SYNCING, "ring8", **{"fast.cuda_graph": "on"}), ctx.run_dir(f"{SYNCING}-on"))
        except GanzooError as e:
            refused = one_line(e)
        named = [] if ctx.cuda else host_syncs(Trainer(config, ctx.run_dir(f"{SYNCING}-cpu"), quiet=True).train_step)
    why = execution[len("eager ("):-1] if execution.startswith("eager (") and execution.endswith(")") else ""
    problems = []
    if status != "completed":
        problems.append(f"the run ended {status}")
    if not why or (ctx.cuda and why in ("not CUDA", "fast.cuda_graph=off")):
        problems.append(f"execution {execution!r} does not say why the step runs eagerly")
    if refused is None:
        problems.append("fast.cuda_graph=on trained without a graph instead of refusing")
    if not ctx.cuda and not any("_local_scalar_dense" in sync.op for sync in named):
        found = ", ".join(map(str, named)) or "nothing"
        problems.append(f"ganzoo.training.capture did not name the loss's .item() (it found {found})")
    figures = {"status": status, "execution": execution}
    detail = "; ".join(problems) if problems else f"completed eagerly: {execution}; with fast.cuda_graph=on: {refused}"
    if not problems and not ctx.cuda:
        detail += f"; on the cpu ganzoo.training.capture names {named[0]} (the fallback itself needs CUDA)"
    return Outcome(ctx.verdict(not problems, cuda_only=True), detail, figures, trainer.engine.runner.precision_name)


# ---- 5. resume: bit for bit the uninterrupted run --------------------------------------------------

RESUME_CASES: list[tuple[str, dict[str, Any]]] = [("dcgan", {"g_ema_decay": 0.9}), ("wgan-gp", {})]


@contextlib.contextmanager
def deterministic_cudnn() -> Iterator[None]:
    """cuDNN restricted to deterministic algorithms for the block (restored after). Some of the
    weight-gradient convolutions it may pick accumulate with atomics, so two runs of the same step
    could differ in the last bit. Of the other operations in these steps, only the statistics'
    index_add_ is on torch's list of nondeterministic CUDA operations, and it never reaches the weights."""
    previous = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic = previous


def check_resume(ctx: Context) -> Outcome:
    """K steps straight, against K/2 steps, a checkpoint and a resume (as ``ganzoo train --resume``)
    to K, at the run's own precision (TF32 on CUDA): every tensor of the two final checkpoints
    (weights, G's average, both Adams, the generator's state, the data order) equal bit for bit."""
    from ganzoo.training.trainer import Trainer

    steps = ctx.sizes.steps
    half = steps // 2
    table, failures = [], []
    precision = ""
    with deterministic_cudnn():
        for variant, extra in RESUME_CASES:
            config = ctx.config(variant, log_every=half, **extra)
            straight, resumed = ctx.run_dir(f"{variant}-straight"), ctx.run_dir(f"{variant}-resumed")
            _trained(config, straight)
            _trained(dataclasses.replace(config, steps=half), resumed)
            # What resume() does, quietly: the run's config with the longer budget, continued from its checkpoint.
            Trainer(config, resumed, quiet=True).run(resume=True)
            difference = first_difference(rundir.load_checkpoint(straight / rundir.CHECKPOINT),
                                          rundir.load_checkpoint(resumed / rundir.CHECKPOINT))
            executions = {run_execution(straight), run_execution(resumed)}
            precision = run_precision(straight)
            problems = []
            if ctx.cuda and executions != {"cuda-graph"}:
                problems.append(f"not captured: {', '.join(sorted(executions))}")
            if difference is not None:
                problems.append(f"differs at {difference}")
            if problems:
                failures.append(f"{variant} {'; '.join(problems)}")
            table.append({"variant": variant, "steps": steps, "resumed_at": half,
                          "execution": ", ".join(sorted(executions)), "bitwise_equal": difference is None,
                          "result": "; ".join(problems) or "ok"})
    figures = {"cases": len(table), "steps": steps, "resumed_at": half,
               "bitwise_equal": sum(r["bitwise_equal"] for r in table)}
    how = " (cuDNN deterministic)" if ctx.cuda else ""
    detail = ("; ".join(failures) if failures else
              f"{len(table)} runs resumed at step {half} of {steps}{how}: every tensor of the checkpoint bit for bit "
              "the uninterrupted run's")
    return Outcome(ctx.verdict(not failures, cuda_only=False), detail, figures, precision, table)

