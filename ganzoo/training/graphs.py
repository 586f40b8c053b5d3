"""Running a step body: eagerly, or on CUDA as one captured graph of the whole step.

A small GAN's eager step is ~100 kernel launches of a few microseconds of GPU work each: the CPU's
launch queue, not the GPU, sets the pace. Captured once with ``torch.cuda.graph`` and replayed, the
whole step (the n_critic D updates, the G update, both Adams, the noise and penalty draws from the
members' generators, the statistics) is one launch.

How capture keeps the run the same run:
- The first ``WARMUP`` steps run eagerly (on a side stream, as torch's capture recipe asks): they
  are real steps, and they create what the graph must find in place (optimiser state, cuBLAS and
  cuDNN workspaces, gradients).
- The step's batch indices are drawn on the host's side (``plan``: a new epoch is a randperm outside
  the graph) and copied into the graph's static input before each replay.
- The body's generators are registered with the graph: a replay advances each by what the captured
  draws took, so the numbers drawn are those the eager step would draw.
- Adam runs with ``capturable=True`` (its step count lives on the device) while capture may still
  happen, and takes its plain path once it will not (``StepBody.eager_only``).
- Streams, pools and the graph are made on the run's device, not on whichever is current.

Where capture cannot work (not CUDA, data streamed from a folder, torch.compile on, or a plugin whose
step syncs with the host or does something else capture forbids), the step runs eagerly and
``execution`` says why; throughput.json records it. A step that syncs is found before capture, by
the last warm-up step run under CUDA's sync debug mode (on a CPU, ``ganzoo.training.capture`` finds it for
``ganzoo check``). A capture that fails anyway leaves the run as it was: its generators' states and
the current stream are put back (torch 2.11 leaves both in capture's hands), and ``execution``
records the root cause, not the "previous error during capture" that follows it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import GanzooError, one_line
from ganzoo.core.precision import tf32
from ganzoo.training.step import StepBody

WARMUP = 3  # eager steps before capture (torch's recipe uses a few; 3 also covers cuDNN autotuning)


def graph_problem(config: TrainConfig, device: torch.device) -> str | None:
    """Why this configuration's step is not captured, from its settings alone (None: it is tried)."""
    if device.type != "cuda":
        return "not CUDA"
    if config.fast.cuda_graph == "off":
        return "fast.cuda_graph=off"
    if config.fast.compile != "off":
        return f"fast.compile={config.fast.compile} (torch.compile's own graphs)"
    return None


class StepRunner:
    """Calls ``body`` once per step, capturing it as a CUDA graph after the warm-up where it can."""

    def __init__(self, body: StepBody, config: TrainConfig) -> None:
        self.body, self.config, self.device = body, config, body.device
        self.problem = graph_problem(config, body.device) or body.capture_problem()
        self.graph: torch.cuda.CUDAGraph | None = None
        self._static_plan: Any = None
        self._eager_steps = 0
        self.tf32 = body.device.type == "cuda" and config.fast.tf32 in ("on", "auto")
        if self.problem is not None:
            self._give_up(self.problem)

    @property
    def precision_name(self) -> str:
        """The arithmetic of the step's matmuls and convolutions, as throughput.json records it."""
        if self.config.bf16:
            return "bf16-autocast"
        return "tf32" if self.tf32 else "float32"

    @property
    def execution(self) -> str:
        return "cuda-graph" if self.graph is not None else f"eager ({self.problem})"

    def _give_up(self, problem: str, cause: BaseException | None = None) -> None:
        """No capture for this run: say why, or refuse where the config demands a graph."""
        self.problem = problem
        if self.config.fast.cuda_graph == "on":
            raise GanzooError(f"fast.cuda_graph=on, but this step cannot be captured: {problem}") from cause
        self.body.eager_only()

    def __call__(self, log: bool) -> None:
        plan = self.body.plan()
        # The run's device, not the current one: capture streams, pools and events belong to a device.
        on_device = torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()
        with on_device, tf32(self.device, self.tf32):  # the config's arithmetic, torch's flags restored after
            if self.graph is not None:
                self._static_plan.copy_(plan)
                self.graph.replay()
                return
            if self.problem is None and self._eager_steps >= WARMUP and self._capture(plan):
                self.graph.replay()  # type: ignore[union-attr]
                return
            if self.problem is None:
                self._warm_up(plan)
            else:
                self.body.body(plan, norms=log)
            self._eager_steps += 1

    def _warm_up(self, plan: Any) -> None:
        """A warm-up step, on a side stream as capture's recipe asks. The last one runs under CUDA's
        sync debug mode: a step that syncs with the host would fail capture (and, in torch 2.11, leave
        its generators unusable), so a sync found here means no capture is tried. The first steps
        create optimiser state and workspaces, whose one-off copies are not the captured step's."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            if self._eager_steps == WARMUP - 1:
                syncs = cuda_syncs(lambda: self.body.body(plan, norms=True), self.device)
            else:
                self.body.body(plan, norms=True)
                syncs = []
        torch.cuda.current_stream(self.device).wait_stream(stream)
        if syncs:
            self._give_up(f"the step syncs with the host ({len(syncs)} synchronizing operations, the first at "
                          f"{syncs[0]}), which a CUDA graph cannot capture")

    def _capture(self, plan: Any) -> bool:
        """Capture the step on a static copy of ``plan``; on failure leave the run as it was (the
        generators' states and the current stream restored), record the root cause and stay eager.
        Out of memory is raised as it is: the population was too large (a sweep makes it smaller)."""
        static = plan.clone()
        graph = torch.cuda.CUDAGraph()
        # torch 2.11: capture_end can raise before the registered generators leave capture mode, and
        # then every later draw from them raises. Their states are copied first and put back: the
        # body's, and the device's default generator, which capture_begin always registers.
        default = torch.cuda.default_generators[torch.cuda.current_device()]
        generators = [*self.body.generators(), default]
        saved = [g.clone_state() for g in generators]
        stream = torch.cuda.current_stream(self.device)
        try:
            for generator in self.body.generators():
                graph.register_generator_state(generator)
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(graph, stream=torch.cuda.Stream(self.device)):
                self.body.body(static, norms=True)
        except Exception as e:  # a host sync or another operation capture forbids, often in a plugin
            torch.cuda.set_stream(stream)  # graph's __exit__ leaves the capture stream when capture_end raises
            for generator, state in zip(generators, saved):
                generator.graphsafe_set_state(state)
            torch.cuda.synchronize(self.device)
            cause = root_cause(e)
            if isinstance(cause, torch.cuda.OutOfMemoryError):
                raise cause from None
            self._give_up(f"capture failed: {one_line(cause)}", e)
            return False
        self.graph, self._static_plan = graph, static
        return True


SYNC_WARNING = "called a synchronizing CUDA operation"  # what sync debug mode's "warn" says (c10/cuda)


@contextlib.contextmanager
def sync_debug_mode(device: torch.device, mode: str) -> Iterator[None]:
    """torch.cuda.set_sync_debug_mode for the block (CUDA only; nothing on a CPU), restored after."""
    if device.type != "cuda":
        yield
        return
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def cuda_syncs(step: Callable[[], None], device: torch.device) -> list[str]:
    """Run ``step`` under CUDA's sync debug mode at "warn" and return where each synchronizing
    operation was called from (``file:line``)."""
    with warnings.catch_warnings(record=True) as caught, sync_debug_mode(device, "warn"):
        warnings.simplefilter("always")
        step()
    return [f"{Path(w.filename).name}:{w.lineno}" for w in caught if SYNC_WARNING in str(w.message)]


def root_cause(e: BaseException) -> BaseException:
    """The first exception of a chain: a failed capture's own error ("operation failed due to a
    previous error during capture") is raised while handling the operation that broke it."""
    while (inner := e.__cause__ or e.__context__) is not None:
        e = inner
    return e


def autocast(config: TrainConfig) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast where the config asks for it. Its cast cache is off: a captured graph must not
    hold casts cached from outside it, and the cache saves nothing when weights change every step."""
    if config.bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
