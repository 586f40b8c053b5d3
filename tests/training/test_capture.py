"""Capture safety and the graph runner's failure paths, shown on a CPU.

- ``ganzoo.training.capture.host_syncs`` names the operators that would sync a CUDA stream with the host.
- ``StepRunner``'s CUDA paths run here against a stand-in for ``torch.cuda`` that behaves as torch
  2.11's does where it matters: a failed capture raises from ``capture_end`` inside the graph
  context's ``__exit__``, before the registered generators leave capture mode and before the capture
  stream is left; a draw from a generator still in capture mode raises. The real thing is in the GPU
  tests (tests/test_graphs.py) and ``ganzoo bench --self-check``.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from ganzoo.data.batches import TensorBatches
from ganzoo.training import graphs
from ganzoo.training.capture import host_syncs
from ganzoo.zoo.variants import resolve_config


@pytest.mark.parametrize("name, step, op", [
    ("item", lambda x: x.sum().item(), "aten::_local_scalar_dense"),
    ("bool", lambda x: bool((x > 0).any()), "aten::_local_scalar_dense"),
    ("float", lambda x: float(x[0]), "aten::_local_scalar_dense"),
    ("mask", lambda x: x[x > 0], "aten::index with a boolean mask"),
    ("masked assignment", lambda x: x.clone().__setitem__(x > 0, x[2:] * 2), "aten::index_put_ with a boolean mask"),
    ("nonzero", lambda x: torch.nonzero(x), "aten::nonzero"),
    ("where of one argument", lambda x: torch.where(x > 0), "aten::nonzero"),
    ("unique", lambda x: x.unique(), "aten::_unique2"),
    ("masked_select", lambda x: x.masked_select(x > 0), "aten::masked_select"),
    ("tolist", lambda x: x.tolist(), "Tensor.tolist"),
    ("cpu", lambda x: x.cpu(), "Tensor.cpu"),
    ("to the host", lambda x: x.to("cpu"), 'Tensor.to("cpu")'),
    ("host data moved", lambda x: x + torch.tensor([1.0, 2.0, 3.0, 4.0]).to(x.device),
     "Tensor.to of a tensor made from host data in the step"),
    ("new_tensor", lambda x: x + x.new_tensor([1.0, 2.0, 3.0, 4.0]), "Tensor.new_tensor of host data"),
    ("histc", lambda x: x.histc(bins=4), "aten::histc without a range"),
    ("host data to the device", lambda x: x * torch.tensor([1.0, 2.0, 3.0, 4.0], device=x.device),
     "torch.tensor(..., device=...) of host data"),
    ("repeat_interleave", lambda x: x.repeat_interleave(torch.tensor([1, 2, 1, 1])),
     "aten::repeat_interleave without output_size"),
])
def test_host_syncs_names_each_syncing_operation_at_its_line(name: str, step: Any, op: str) -> None:
    x = torch.tensor([0.5, -1.0, 2.0, 0.0])
    (found,) = host_syncs(lambda: step(x))
    assert found.op == op
    assert found.where == f"tests/test_capture.py:{step.__code__.co_firstlineno}" or found.where.endswith(
        f"test_capture.py:{step.__code__.co_firstlineno}")


def test_host_syncs_passes_device_side_code_and_optimiser_steps() -> None:
    w = torch.nn.Parameter(torch.randn(4))
    opt = torch.optim.Adam([w])  # on a CPU its plain path reads the step count on the host: not the step's own

    def step() -> None:
        x = torch.randn(8, 4)
        loss = torch.where(x > 0, x, 0.1 * x).sum(1).mean() + (x @ w).pow(2).mean()  # where of three: no sync
        loss.backward()
        opt.step()
        x[torch.tensor([1, 3])]  # a gather by integer indices: no sync
        x[x > 0] = 0.0  # one value under a mask: masked_fill on CUDA (a Python scalar stays on the host)
        x.repeat_interleave(torch.tensor([1] * 8), dim=0, output_size=8)  # told its size
        torch.as_tensor(x, device=x.device).histc(bins=4, min=-1, max=1)  # no copy; a stated range
        torch.tensor([1.0, 2.0]).to(torch.float64) * 2  # host data, kept on the host

    assert host_syncs(step) == []


def test_a_gather_keeps_channels_last() -> None:
    x = torch.randn(20, 3, 5, 5).to(memory_format=torch.channels_last)
    batches = TensorBatches(x, 4, torch.Generator().manual_seed(0))
    idx = torch.tensor([3, 1, 7, 19])
    batch = batches.gather(idx)
    # index_select alone returns the default layout, and every convolution would convert it back
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch, x.contiguous()[idx])
    plain = TensorBatches(torch.randn(20, 2), 4, torch.Generator().manual_seed(0))
    assert torch.equal(plain.gather(idx), plain.x[idx])


def test_root_cause_is_the_first_exception_of_a_chain() -> None:
    try:
        try:
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        finally:
            raise RuntimeError("operation failed due to a previous error during capture")  # noqa: B012
    except RuntimeError as e:
        assert str(graphs.root_cause(e)) == "CUDA error: operation not permitted when stream is capturing"


# ---- StepRunner on a stand-in for torch 2.11's CUDA -------------------------------------------

class FakeGenerator:
    """A CUDA generator's state as far as capture goes: its offset, and whether it is capturing."""

    def __init__(self) -> None:
        self.state = SimpleNamespace(offset=0, capturing=False)

    def draw(self) -> int:
        if self.state.capturing and not FAKE.capturing:
            raise RuntimeError("Offset increment outside graph capture encountered unexpectedly.")
        self.state.offset += 4
        return self.state.offset

    def clone_state(self) -> FakeGenerator:
        copy = FakeGenerator()
        copy.state = SimpleNamespace(**vars(self.state))
        return copy

    def graphsafe_set_state(self, other: FakeGenerator) -> None:
        self.state = other.state


class FakeCuda:
    """What StepRunner calls of torch.cuda, recording the devices it is asked for."""

    def __init__(self) -> None:
        self.current, self.capturing, self.devices, self.sync_mode = "default", False, [], 0
        self.default_generators = [FakeGenerator(), FakeGenerator()]  # one a device

    def Stream(self, device: Any = None) -> Any:  # noqa: N802 -- torch's name
        self.devices.append(str(device))
        return SimpleNamespace(name=f"stream on {device}", wait_stream=lambda other: None)

    def current_stream(self, device: Any = None) -> Any:
        self.devices.append(str(device))
        return SimpleNamespace(name=self.current, wait_stream=lambda other: None)

    def set_stream(self, stream: Any) -> None:
        self.current = stream.name

    @contextlib.contextmanager
    def stream(self, stream: Any) -> Any:
        previous, self.current = self.current, stream.name
        yield
        self.current = previous

    def device(self, device: Any) -> Any:
        self.devices.append(str(device))
        return contextlib.nullcontext()

    def synchronize(self, device: Any = None) -> None:
        self.devices.append(str(device))

    def current_device(self) -> int:
        return 1  # as torch.cuda.device(run's device) makes it

    def get_sync_debug_mode(self) -> int:
        return self.sync_mode

    def set_sync_debug_mode(self, mode: Any) -> None:
        self.sync_mode = {"warn": 1, "default": 0}.get(mode, mode)

    def CUDAGraph(self) -> Any:  # noqa: N802
        fake = self

        class Graph:
            registered: list[FakeGenerator] = []

            def register_generator_state(self, g: FakeGenerator) -> None:
                self.registered.append(g)

            def replay(self) -> None:
                fake.replays += 1

        self.replays = 0
        return Graph()

    def graph(self, graph: Any, stream: Any = None) -> Any:
        fake = self

        class Capture:  # torch 2.11's torch.cuda.graph: capture_end raises before the stream is left
            def __enter__(self) -> None:  # capture_begin registers the device's default generator too
                fake.devices.append(stream.name)
                fake.current, fake.capturing = stream.name, True
                graph.registered.append(fake.default_generators[1])
                for g in graph.registered:
                    g.state.capturing = True

            def __exit__(self, *exc: Any) -> None:
                fake.capturing = False
                if exc[0] is not None:
                    raise RuntimeError("operation failed due to a previous error during capture")
                for g in graph.registered:
                    g.state.capturing = False
                fake.current = "default"

        return Capture()


FAKE = FakeCuda()


class FakeBody:
    """A step body on "cuda:1" that draws from its generator, and syncs where told to."""

    members = 1

    def __init__(self, syncs: str = "") -> None:
        self.device = torch.device("cuda", 1)
        self.rng = FakeGenerator()
        self.syncs, self.steps, self.eager_told = syncs, 0, False

    def plan(self) -> torch.Tensor:
        return torch.zeros(1)

    def body(self, plan: Any, norms: bool) -> None:
        self.rng.draw()
        if self.syncs == "out of memory" and FAKE.capturing:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.syncs == "always" or (self.syncs == "in capture" and FAKE.capturing):
            if FAKE.capturing:
                raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
            if FAKE.sync_mode:
                import warnings

                warnings.warn("called a synchronizing CUDA operation", UserWarning)
        self.steps += 1

    def generators(self) -> list[FakeGenerator]:
        return [self.rng]

    def capture_problem(self) -> None:
        return None

    def eager_only(self) -> None:
        self.eager_told = True


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> FakeCuda:
    global FAKE
    FAKE = FakeCuda()
    for name in ("Stream", "current_stream", "set_stream", "stream", "device", "synchronize", "get_sync_debug_mode",
                 "set_sync_debug_mode", "CUDAGraph", "graph", "default_generators", "current_device"):
        monkeypatch.setattr(torch.cuda, name, getattr(FAKE, name))
    return FAKE


def runner(body: FakeBody, cuda_graph: str = "auto") -> graphs.StepRunner:
    config = resolve_config("nsgan", "ring8", overrides={"device": "cuda:1", "fast.cuda_graph": cuda_graph})
    return graphs.StepRunner(body, config)  # type: ignore[arg-type]


def test_a_failed_capture_leaves_the_run_as_it_was_and_names_the_root_cause(fake_cuda: FakeCuda) -> None:
    body = FakeBody(syncs="in capture")  # invisible to the sync check, as some failures are
    step = runner(body)
    for _ in range(graphs.WARMUP + 3):
        step(log=False)
    # Capture was tried once and failed; the run went on eagerly, drawing from its generator.
    assert step.graph is None and fake_cuda.replays == 0
    assert step.execution == "eager (capture failed: CUDA error: operation not permitted when stream is capturing)"
    assert not body.rng.state.capturing and fake_cuda.current == "default"
    fake_cuda.default_generators[1].draw()  # the device's default generator draws again (dropout, randn)
    assert body.steps == graphs.WARMUP + 3  # every step ran, the failed capture's excepted
    assert body.eager_told
    with pytest.raises(Exception, match="fast.cuda_graph=on, but this step cannot be captured: capture failed"):
        other = runner(FakeBody(syncs="in capture"), "on")
        for _ in range(graphs.WARMUP + 1):
            other(log=False)


def test_out_of_memory_in_capture_is_raised_as_it_is_with_the_run_restored(fake_cuda: FakeCuda) -> None:
    body = FakeBody(syncs="out of memory")  # a sweep makes the population smaller on this error
    step = runner(body)
    for _ in range(graphs.WARMUP):
        step(log=False)
    with pytest.raises(torch.cuda.OutOfMemoryError, match="Tried to allocate"):
        step(log=False)
    assert not body.rng.state.capturing and not fake_cuda.default_generators[1].state.capturing
    assert fake_cuda.current == "default"


def test_a_step_that_syncs_in_warm_up_is_never_captured(fake_cuda: FakeCuda) -> None:
    body = FakeBody(syncs="always")
    step = runner(body)
    for _ in range(graphs.WARMUP + 3):
        step(log=False)
    assert step.execution.startswith("eager (the step syncs with the host (1 synchronizing operations, the first at "
                                     "test_capture.py:")
    assert fake_cuda.sync_mode == 0  # put back
    assert body.eager_told and body.steps == graphs.WARMUP + 3


def test_capture_uses_the_runs_device_not_the_current_one(fake_cuda: FakeCuda) -> None:
    body = FakeBody()
    step = runner(body)
    for _ in range(graphs.WARMUP + 2):
        step(log=False)
    assert step.execution == "cuda-graph" and fake_cuda.replays == 2
    assert "stream on cuda:1" in fake_cuda.devices  # the capture stream
    assert set(fake_cuda.devices) <= {"cuda:1", "stream on cuda:1"}
    assert not body.eager_told
