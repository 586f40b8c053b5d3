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
- Adam runs with ``capturable=True`` (its step count lives on the device).

Where capture cannot work (not CUDA, data streamed from a folder, torch.compile on, or a plugin whose
step syncs with the host or does something else capture forbids), the step runs eagerly and
``execution`` says why; throughput.json records it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ganzoo.config import TrainConfig
from ganzoo.errors import GanzooError, one_line
from ganzoo.precision import tf32
from ganzoo.step import StepBody

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
        self.body, self.config = body, config
        self.problem = graph_problem(config, body.device) or body.capture_problem()
        self.graph: torch.cuda.CUDAGraph | None = None
        self._static_plan: Any = None
        self._eager_steps = 0
        if self.problem is not None and config.fast.cuda_graph == "on":
            raise GanzooError(f"fast.cuda_graph=on, but this step cannot be captured: {self.problem}")
        self.tf32 = body.device.type == "cuda" and config.fast.tf32 in ("on", "auto")

    @property
    def precision_name(self) -> str:
        """The arithmetic of the step's matmuls and convolutions, as throughput.json records it."""
        if self.config.bf16:
            return "bf16-autocast"
        return "tf32" if self.tf32 else "float32"

    @property
    def execution(self) -> str:
        return "cuda-graph" if self.graph is not None else f"eager ({self.problem})"

    def __call__(self, log: bool) -> None:
        plan = self.body.plan()
        with tf32(self.body.device, self.tf32):  # the config's arithmetic, torch's flags restored after
            if self.graph is not None:
                self._static_plan.copy_(plan)
                self.graph.replay()
                return
            if self.problem is None and self._eager_steps >= WARMUP and self._capture(plan):
                self.graph.replay()  # type: ignore[union-attr]
                return
            if self.problem is None:  # a warm-up step: on a side stream, as capture's recipe asks
                stream = torch.cuda.Stream(self.body.device)
                stream.wait_stream(torch.cuda.current_stream(self.body.device))
                with torch.cuda.stream(stream):
                    self.body.body(plan, norms=True)
                torch.cuda.current_stream(self.body.device).wait_stream(stream)
            else:
                self.body.body(plan, norms=log)
            self._eager_steps += 1

    def _capture(self, plan: Any) -> bool:
        """Capture the step on a static copy of ``plan``; on failure record why and stay eager."""
        static = plan.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            for generator in self.body.generators():
                graph.register_generator_state(generator)
            torch.cuda.synchronize(self.body.device)
            with torch.cuda.graph(graph):
                self.body.body(static, norms=True)
        except Exception as e:  # a host sync or another operation capture forbids, often in a plugin
            torch.cuda.synchronize(self.body.device)
            self.problem = f"capture failed: {one_line(e)}"
            if self.config.fast.cuda_graph == "on":
                raise GanzooError(f"fast.cuda_graph=on, but this step cannot be captured: {self.problem}") from e
            return False
        self.graph, self._static_plan = graph, static
        return True


def autocast(config: TrainConfig) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast where the config asks for it. Its cast cache is off: a captured graph must not
    hold casts cached from outside it, and the cache saves nothing when weights change every step."""
    if config.bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
