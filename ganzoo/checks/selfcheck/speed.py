"""The self-checks of speed (6 and 7 of ``ganzoo bench --self-check``): the captured training step
against the eager one (steps/s, kernels and launches per step, host time per step), and Inception's
images/s at each extraction precision, eager and compiled. Each check's docstring says what it runs.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.checks.selfcheck.context import Context, Outcome

INCEPTION_PRECISIONS = ("float32", "tf32", "tf32+channels_last", "bf16+channels_last")


def _rate(value: float) -> str:
    """A speed to 3 significant digits, with thousands separated: 8,706 or 1.52."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


# ---- 6. graph against eager: speed, kernels, host time ----------------------------------------------

GRAPH_VARIANTS = ("nsgan", "dcgan")


def _timed(step: Callable[[], None], n: int, ctx: Context) -> float:
    ctx.sync()
    start = time.perf_counter()
    for _ in range(n):
        step()
    ctx.sync()
    return time.perf_counter() - start


def _host_seconds(step: Callable[[], None], n: int, ctx: Context) -> float:
    """Seconds the host spends issuing ``n`` steps (no sync inside; an eager step whose launches fill
    CUDA's queue waits there, and that wait is host time too)."""
    ctx.sync()
    start = time.perf_counter()
    for _ in range(n):
        step()
    seconds = time.perf_counter() - start
    ctx.sync()
    return seconds


def count_launches(events: Sequence[Any]) -> tuple[int, int]:
    """(kernels run on the GPU, launch calls made by the host) among torch.profiler's events: a
    kernel is a CUDA-side event other than a memcpy or memset (a graph's kernels are reported one by
    one, as they run); a launch is a host-side CUDA runtime or driver call that launches a kernel or
    a graph (cudaLaunchKernel, cuLaunchKernelEx, cudaGraphLaunch, ...)."""
    from torch.autograd import DeviceType

    kernels = launches = 0
    for event in events:
        name = event.name
        if event.device_type == DeviceType.CUDA:
            kernels += not name.startswith(("Memcpy", "Memset"))
        elif name.startswith("cu") and "Launch" in name:
            launches += 1
    return kernels, launches


def check_graph_vs_eager(ctx: Context) -> Outcome:
    """nsgan (MLP) and dcgan at batch 64 on digits, the step captured (auto) and eager (off): steps/s
    timed in alternating turns (median), kernels and launch calls per step from torch.profiler, and
    the host's time per step. On CUDA the captured step must be captured, no slower than the eager
    one and launch fewer times."""
    from ganzoo.training.graphs import WARMUP
    from ganzoo.training.trainer import Trainer

    s = ctx.sizes
    activities = [torch.profiler.ProfilerActivity.CPU]
    if ctx.cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    table, failures = [], []
    precision = ""
    for variant in GRAPH_VARIANTS:
        trainers = {graph: Trainer(ctx.config(variant, steps=10**9, log_every=10**6, **{"fast.cuda_graph": graph}),
                                   ctx.run_dir(f"{variant}-{graph}"), quiet=True) for graph in ("auto", "off")}
        for trainer in trainers.values():
            _timed(trainer.train_step, WARMUP + 3, ctx)  # warm-up, capture, first replays
        seconds: dict[str, list[float]] = {graph: [] for graph in trainers}
        for repeat in range(s.repeats):
            for graph in (("auto", "off") if repeat % 2 == 0 else ("off", "auto")):
                seconds[graph].append(_timed(trainers[graph].train_step, s.timed_steps, ctx))
        row: dict[str, Any] = {"variant": variant, "batch_size": s.batch_size}
        for graph, trainer in trainers.items():
            side = "graph" if graph == "auto" else "eager"
            times = sorted(seconds[graph])
            row[f"{side}_steps_per_second"] = s.timed_steps / times[len(times) // 2]
            row[f"{side}_host_ms_per_step"] = 1000 * _host_seconds(trainer.train_step, s.timed_steps, ctx) / s.timed_steps
            with torch.profiler.profile(activities=activities) as profile:
                _timed(trainer.train_step, s.profiled_steps, ctx)
            kernels, launches = count_launches(profile.events())
            row[f"{side}_kernels_per_step"] = kernels / s.profiled_steps if ctx.cuda else None
            row[f"{side}_launches_per_step"] = launches / s.profiled_steps if ctx.cuda else None
        runner = trainers["auto"].engine.runner
        row["speedup"] = row["graph_steps_per_second"] / row["eager_steps_per_second"]
        row["execution"], precision = runner.execution, runner.precision_name
        problems = []
        if ctx.cuda:
            if runner.execution != "cuda-graph":
                problems.append(f"not captured: {runner.execution}")
            elif row["speedup"] < 1.0:
                problems.append(f"the graph is slower than eager (x{row['speedup']:.2f})")
            elif 0 < row["eager_launches_per_step"] <= row["graph_launches_per_step"]:  # 0: the profiler saw none
                problems.append(f"the graph launches {row['graph_launches_per_step']:.0f} times a step, eager "
                                f"{row['eager_launches_per_step']:.0f}")
        if problems:
            failures.append(f"{variant} {'; '.join(problems)}")
        table.append(row)
    figures = {f"{r['variant']}_speedup": r["speedup"] for r in table}
    figures.update({f"{r['variant']}_graph_steps_per_second": r["graph_steps_per_second"] for r in table})
    if failures:
        detail = "; ".join(failures)
    elif ctx.cuda:
        detail = ", ".join(f"{r['variant']} x{r['speedup']:.1f} ({r['graph_steps_per_second']:,.0f} vs "
                           f"{r['eager_steps_per_second']:,.0f} steps/s; {r['graph_launches_per_step']:.0f} vs "
                           f"{r['eager_launches_per_step']:.0f} launches, {r['graph_host_ms_per_step']:.2f} vs "
                           f"{r['eager_host_ms_per_step']:.2f} host ms a step)" for r in table)
    else:
        detail = ", ".join(f"{r['variant']} {r['eager_steps_per_second']:,.0f} steps/s" for r in table) + \
            " eagerly (no graph on a cpu)"
    return Outcome(ctx.verdict(not failures, cuda_only=True), detail, figures, precision, table)


# ---- 7. Inception images/s per precision -----------------------------------------------------------

def random_inception_weights(path: Path, seed: int = 0) -> Path:
    """torch-fidelity's inception-v3-compat with random weights, saved where ``Extractor`` reads
    weights from: built without loading any (no download). Convolutions get He-normal weights so that
    activations keep their scale through the 94 blocks, as trained weights do (under torch's default
    init the features come out ~1e-8); BatchNorm keeps mean 0, variance 1. Its speed is the real
    network's; its features mean nothing, their differences between precisions are of the right size."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
            return None

    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)
        for module in network.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(network.state_dict(), path)
    return path


def check_inception(ctx: Context) -> Outcome:
    """ganzoo's extraction loop (``ganzoo.evaluate.extraction.Extractor``) on digits as uint8 RGB, at each
    precision, eager and with +compile: images/s over full batches after a warm-up batch; the graphs
    compiled before timing and during it, as the extractor counts them (torch._dynamo.utils.counters).
    Told the images' size, a +compile extractor compiles once, as it is built: 1 before timing is
    expected, a second there is recorded, not failed; one during timing is a failure (the timed
    batches have the warm-up's shape). Also whether compile fell back to eager, and the features'
    distance from float32's. On a CPU: float32, eager, a tiny batch."""
    from ganzoo.data import load_dataset
    from ganzoo.evaluate.extraction import Extractor, batched
    from ganzoo.evaluate.features import INCEPTION, to_uint8_rgb
    from ganzoo.evaluate.inception import cached_inception_weights

    s = ctx.sizes
    precisions = [*INCEPTION_PRECISIONS, *(f"{p}+compile" for p in INCEPTION_PRECISIONS)] if ctx.cuda else ["float32"]
    weights = cached_inception_weights()
    which = "ganzoo's converted weights (cached)"
    if weights is None:
        weights, which = random_inception_weights(ctx.work / "inception-random.pth"), "random weights (none cached)"
    digits = to_uint8_rgb(load_dataset("digits", "test").x)
    n = s.inception_batch * s.inception_batches
    images = digits.repeat(math.ceil(n / len(digits)), 1, 1, 1)[:n].to(ctx.device)
    image_size = (images.shape[-2], images.shape[-1])  # +compile's warm-up at the data's size, not a 4x4 dummy
    table, failures, reference = [], [], None
    for precision in precisions:
        if "compile" in precision:
            # Each precision compiles as in a process of its own: dynamo's cache for the network's forward
            # would otherwise collect every precision's graphs, up to its recompile limit (8), then run eager.
            torch._dynamo.reset()
        start = time.perf_counter()
        extractor = Extractor(INCEPTION, ["2048"], ctx.device, precision, weights, image_size=image_size)
        extractor([images[: s.inception_batch]])  # warm-up: cuDNN's choices, any compilation the build left
        build = time.perf_counter() - start
        compiled_before = extractor.compiles
        ctx.sync()
        start = time.perf_counter()
        features = extractor(batched(images, s.inception_batch))["2048"]  # on the CPU: synced
        seconds = time.perf_counter() - start
        compiled_while_timed = extractor.compiles - compiled_before
        if reference is None:
            reference = features
        distance = ((features - reference).norm() / reference.norm().clamp_min(1e-300)).item()
        problems = []
        if not torch.isfinite(features).all():
            problems.append("non-finite features")
        if extractor.used != precision:
            problems.append(f"{extractor.used}: {extractor.compile_error}")
        if compiled_while_timed:
            problems.append(f"{compiled_while_timed} recompilation(s) while timed")
        if problems:
            failures.append(f"{precision}: {', '.join(problems)}")
        table.append({"precision": precision, "used": extractor.used, "images_per_second": n / seconds,
                      "batch_size": s.inception_batch, "images": n, "setup_seconds": build,
                      "graphs_compiled": compiled_before, "compiled_while_timed": compiled_while_timed,
                      "relative_distance_to_float32": distance, "weights": which,
                      "result": "; ".join(problems) or "ok"})
        del extractor
        if ctx.cuda:
            torch.cuda.empty_cache()
    best = max(table, key=lambda r: r["images_per_second"])
    figures = {r["precision"]: r["images_per_second"] for r in table}
    if failures:
        detail = "; ".join(failures)
    else:
        fastest = "fastest " if len(table) > 1 else ""
        detail = (f"{len(table)} precision(s), {fastest}{best['precision']} at {_rate(best['images_per_second'])} "
                  f"images/s (batch {s.inception_batch}, {which})")
        if not ctx.cuda:
            detail += "; the CUDA precisions need CUDA"
    return Outcome(ctx.verdict(not failures, cuda_only=True), detail, figures, "each (selfcheck-inception.csv)", table)
