"""The one trainer every variant runs through.

It knows a loss only through ``Loss`` (D loss from real and fake logits, G loss from fake logits,
an optional penalty) and an architecture only through ``Architecture.build``: never a variant's
name. Evaluation and pruning plug in through callbacks; the trainer never imports Optuna.

Step semantics: one step = ``n_critic`` D updates, then one G update. Every random draw (noise,
batch order, penalty interpolation) comes from one generator seeded by ``config.seed``; model
initialisation uses the global RNG seeded the same way. On the CPU the same seed gives the same
weights, and a resumed run the same weights as an uninterrupted one.

Logged values are accumulated on the device and read back only at log points, so the hot loop
never waits for the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo import rundir
from ganzoo.batches import StreamBatches, TensorBatches
from ganzoo.config import TrainConfig
from ganzoo.data import Data, data_record, load_dataset
from ganzoo.errors import GanzooError, describe_exception
from ganzoo.losses import Loss
from ganzoo.progress import is_terminal
from ganzoo.metrics import device_name, generate
from ganzoo.samples import save_samples
from ganzoo.stability import METRICS, STABILITY, write_stability
from ganzoo.variants import build_architecture, build_loss, validate

COMPLETED, DIVERGED, RUNNING, FAILED = "completed", "diverged", "running", "failed"
THROUGHPUT = "throughput.json"
_STAT_NAMES = ("d_loss", "g_loss", "penalty", "d_real", "d_fake")  # means over the steps between log points
# Gradient norms are taken at the log step only: a norm over every parameter each step costs about
# 5-10% of a small GAN's step, and a sample per log point is what the stability summary needs.
_NORM_NAMES = ("d_grad_norm", "g_grad_norm")
_N_SAMPLE_IMAGES, _N_SAMPLE_POINTS = 64, 1000


class StopTraining(Exception):
    """Raised by a callback to end the run early; ``status`` is recorded (e.g. "pruned")."""

    def __init__(self, status: str, message: str = "") -> None:
        super().__init__(message or status)
        self.status = status


@dataclasses.dataclass
class TrainState:
    """What a callback sees."""

    step: int
    final: bool
    config: TrainConfig
    run_dir: Path
    G: nn.Module
    D: nn.Module
    data: Data
    device: torch.device

    def sample(self, n: int, seed: int = 0, batch_size: int = 500) -> Tensor:
        """``n`` samples from G in eval mode, from noise seeded by ``seed`` (not the training RNG)."""
        return generate(self.G, self.config.z_dim, n, seed, self.device, batch_size)


Callback = Callable[[TrainState], None]


@dataclasses.dataclass(frozen=True)
class RunResult:
    status: str
    step: int
    run_dir: Path
    message: str = ""


class _Clock:
    """Seconds of training between marks. On CUDA, events recorded in the stream and synchronised,
    so the time is the GPU's, not the launch queue's. Work done between ``lap`` and ``mark``
    (logging, samples, checkpoints, evaluation callbacks) is not counted."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.mark()

    def _now(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def mark(self) -> None:
        self._start = self._now()

    def lap(self) -> float:
        end = self._now()
        if self.cuda:
            end.synchronize()
            return self._start.elapsed_time(end) / 1000.0
        return end - self._start


def fixed_noise(config: TrainConfig, data: Data) -> Tensor:
    """The noise behind a run's sample pictures: fixed by the seed, apart from the training RNG."""
    n = _N_SAMPLE_IMAGES if data.kind == "image" else _N_SAMPLE_POINTS
    return torch.randn(n, config.z_dim, generator=torch.Generator().manual_seed(config.seed + 1))


def throughput_record(intervals: Sequence[tuple[int, float]], config: TrainConfig, device: torch.device,
                      fast_paths: str, members: int = 1) -> dict[str, Any]:
    """Training speed over (steps, seconds) log intervals, the first (warm-up: allocation,
    autotuning, compilation) excluded whenever there is another. ``members``: runs trained together
    (a population), whose images all count."""
    timed = intervals[1:] if len(intervals) > 1 else intervals
    steps = sum(n for n, _ in timed)
    seconds = sum(t for _, t in timed)
    images = steps * config.batch_size * config.n_critic * members
    if device.type == "cuda":
        peak, peak_kind = torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    else:
        import resource

        peak, peak_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"
    record = {
        "train_images_per_second": images / seconds if seconds > 0 else None,
        "ms_per_step": 1000 * seconds / steps if steps else None,
        "timed_steps": steps,
        "warmup_excluded": len(intervals) > 1,
        "peak_memory_bytes": peak,
        "peak_memory_kind": peak_kind,
        "device": device_name(device),
        "torch": torch.__version__,
        "dtype": "bf16-autocast" if config.bf16 else "float32",
        "fast_paths": fast_paths,
        "batch_size": config.batch_size,
    }
    if members > 1:
        record["population"] = members  # images/s and memory are the population's, shared by its members
    return record


def clear_run_dir(out: Path) -> None:
    """Remove everything an old run wrote, so that no stale record is read as the new run's."""
    derived = (METRICS, STABILITY, THROUGHPUT)
    for path in [*out.glob("samples_*.png"), *(out / n for n in (*rundir.RUN_FILES, *derived))]:
        path.unlink(missing_ok=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanzooError(f"device {name!r} asked for, but CUDA is not available here")
    return device


def grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path | str,
        callbacks: Sequence[Callback] = (),
        progress: bool | None = None,
        quiet: bool = False,
    ) -> None:
        """``progress``: a progress bar (default: when stderr is a terminal), else log lines;
        ``quiet``: neither (sweeps report per trial instead)."""
        validate(config)
        self.config, self.run_dir, self.callbacks = config, Path(run_dir), list(callbacks)
        self.progress = is_terminal() if progress is None else progress
        self.quiet = quiet
        self.device = resolve_device(config.device)
        if config.bf16 and self.device.type != "cuda":
            raise GanzooError("bf16 autocast needs a CUDA device")

        self.data = load_dataset(config.dataset, "train", root=config.data_root, resolution=config.resolution)
        arch = build_architecture(config)
        if (problem := arch.check(self.data.sample_shape)) is not None:
            raise GanzooError(f"architecture {config.arch!r} cannot train on {config.dataset!r}: {problem}")
        self.loss: Loss = build_loss(config)

        torch.manual_seed(config.seed)
        G, D = arch.build(self.data.sample_shape, config.z_dim, self.data.bounded)
        self.memory_format = self._memory_format()
        self.G, self.D = G.to(self.device, memory_format=self.memory_format), D.to(self.device, memory_format=self.memory_format)
        self.g_opt = self._adam(self.G, config.g_adam)
        self.d_opt = self._adam(self.D, config.d_adam)
        self.compile_mode = self._compile_mode()
        if self.compile_mode != "off":
            # In place, so state_dict keys (checkpoints) are those of the plain modules.
            self.G.compile(mode=self.compile_mode)
            self.D.compile(mode=self.compile_mode)
        self.rng = torch.Generator(self.device).manual_seed(config.seed)
        if self.data.x is not None:
            self.batches: TensorBatches | StreamBatches = TensorBatches(
                self.data.x.to(self.device, memory_format=self.memory_format), config.batch_size, self.rng
            )
        else:
            assert self.data.stream is not None
            self.batches = StreamBatches(self.data.stream, config.batch_size, config.seed, self.device)
        self.fixed_z = fixed_noise(config, self.data).to(self.device)
        self.step = 0
        self._stats = torch.zeros(len(_STAT_NAMES), device=self.device)
        self._norms = torch.zeros(len(_NORM_NAMES), device=self.device)
        self._log_step = False  # whether the step being taken ends at a log point
        self._nonfinite = torch.zeros((), dtype=torch.int64, device=self.device)

    def _adam(self, module: nn.Module, adam: Any) -> torch.optim.Adam:
        # fused: one kernel for all parameters; else torch's default (foreach on CUDA, a loop on CPU).
        return torch.optim.Adam(module.parameters(), lr=adam.lr, betas=(adam.beta1, adam.beta2),
                                fused=self.config.fast.fused_adam)

    def _memory_format(self) -> torch.memory_format:
        """channels_last lets cuDNN pick its NHWC convolution kernels (tensor cores); on CPU it rarely pays."""
        setting = self.config.fast.channels_last
        on = setting == "on" or (setting == "auto" and self.device.type == "cuda")
        return torch.channels_last if on and self.data.kind == "image" else torch.contiguous_format

    def _compile_mode(self) -> str:
        mode = self.config.fast.compile
        if mode == "auto":
            return "reduce-overhead" if self.device.type == "cuda" else "off"
        return mode

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _noise(self) -> Tensor:
        return torch.randn(self.config.batch_size, self.config.z_dim, device=self.device, generator=self.rng)

    # ---- one step -------------------------------------------------------------------------

    def _d_step(self, keep_fake: bool) -> Tensor | None:
        """One D update. With ``keep_fake`` (the last critic step), G's forward keeps its graph and
        the batch is returned for G's update, as compare_gan (Lucic et al. 2018) does: G's update
        uses the z of the last D update. G's weights have not changed in between, so this is the
        same update as a second forward of the same z, one G forward cheaper."""
        real = self.batches.next()
        with torch.set_grad_enabled(keep_fake), self._autocast():
            kept = self.G(self._noise())
        fake = kept.detach()
        with self._autocast():
            real_logits, fake_logits = self.D(real).float(), self.D(fake).float()
            loss = self.loss.discriminator_loss(real_logits, fake_logits)
            penalty = self.loss.penalty(self.D, real, fake, self.rng)
            total = loss if penalty is None else loss + penalty
        self.d_opt.zero_grad(set_to_none=True)
        total.backward()
        if self._log_step:
            self._norms[0] += grad_norm(self.D) / self.config.n_critic
        self.d_opt.step()
        with torch.no_grad():
            k = 1.0 / self.config.n_critic  # D's figures are averaged over the critic steps
            self._stats[0] += k * loss.detach()
            if penalty is not None:
                self._stats[2] += k * penalty.detach()
            self._stats[3] += k * torch.sigmoid(real_logits).mean()
            self._stats[4] += k * torch.sigmoid(fake_logits).mean()
            self._nonfinite += (~torch.isfinite(total)).long()
        return kept if keep_fake else None

    def _g_step(self, fake: Tensor) -> None:
        self.D.requires_grad_(False)  # G's update needs gradients through D, not for D's weights
        with self._autocast():
            loss = self.loss.generator_loss(self.D(fake).float())
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        if self._log_step:
            self._norms[1] = grad_norm(self.G)
        self.g_opt.step()
        self.D.requires_grad_(True)
        with torch.no_grad():
            self._stats[1] += loss.detach()
            self._nonfinite += (~torch.isfinite(loss)).long()

    def train_step(self) -> None:
        cfg = self.config
        self._log_step = (self.step + 1) % cfg.log_every == 0 or self.step + 1 == cfg.steps
        for i in range(cfg.n_critic):
            fake = self._d_step(keep_fake=i == cfg.n_critic - 1)
        assert fake is not None
        self._g_step(fake)
        self.step += 1

    # ---- state ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
            "rng": self.rng.get_state(),
            "batches": self.batches.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.rng.set_state(state["rng"])
        self.batches.load_state_dict(state["batches"])
        self.step = int(state["step"])

    def train_state(self, final: bool) -> TrainState:
        return TrainState(self.step, final, self.config, self.run_dir, self.G, self.D, self.data, self.device)

    # ---- the loop -------------------------------------------------------------------------

    def run(self, resume: bool = False, overwrite: bool = False) -> RunResult:
        """Train to ``config.steps``. A directory that already holds a run is continued with
        ``resume``, replaced with ``overwrite``, and otherwise refused: nothing saved is lost."""
        cfg, out = self.config, self.run_dir
        if resume:
            self.load_state_dict(rundir.load_checkpoint(out / rundir.CHECKPOINT))
            for records in (rundir.STATS, METRICS):  # steps after the checkpoint are logged again
                rundir.truncate_jsonl(out / records, self.step)
        elif (out / rundir.CONFIG).exists():
            if not overwrite:
                raise GanzooError(f"{out} already holds a run; continue it with --resume {out} or pick another --out")
            clear_run_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        rundir.write_json(out / rundir.CONFIG, cfg.to_dict())
        rundir.write_json(out / rundir.DATA, data_record(self.data))
        self._write_status(RUNNING)

        bar = self._progress_bar()
        clock, step_last, pending = _Clock(self.device), self.step, 0.0
        self._intervals: list[tuple[int, float]] = []
        status, message = COMPLETED, ""
        try:
            while self.step < cfg.steps:
                self.train_step()
                if bar is not None:
                    bar.update(1)
                last = self.step == cfg.steps
                log = self.step % cfg.log_every == 0 or last
                sample = (cfg.sample_every and self.step % cfg.sample_every == 0) or last
                call = (cfg.callback_every and self.step % cfg.callback_every == 0) or last
                if not (log or sample or call):
                    continue
                # Time the training since the last mark; what follows here is not training time.
                pending += clock.lap()
                if log:
                    self._intervals.append((self.step - step_last, pending))
                    record = self._log(pending, self.step - step_last)
                    if record is None:
                        status = DIVERGED
                        message = f"non-finite loss between steps {step_last} and {self.step}"
                        break
                    step_last, pending = self.step, 0.0
                    if bar is not None:
                        bar.set_postfix(d=f"{record['d_loss']:.3f}", g=f"{record['g_loss']:.3f}")
                    elif not self.quiet:
                        self._print_log(record)
                    if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or last:
                        rundir.save_checkpoint(out / rundir.CHECKPOINT, self.state_dict())
                if sample:
                    self._write_samples()
                if call and self.callbacks:
                    if bar is not None:  # evaluation can take longer than training: say what runs
                        bar.set_description_str(f"{cfg.variant} (evaluating at step {self.step})")
                    for callback in self.callbacks:
                        callback(self.train_state(final=last))
                    if bar is not None:
                        bar.set_description_str(cfg.variant)
                clock.mark()
        except StopTraining as stop:
            status, message = stop.status, str(stop)
        except KeyboardInterrupt:
            self._write_status("interrupted", "stopped by the user; resume with --resume")
            raise
        except Exception as e:
            # An exception inside the step is a plugin's (or ganzoo's own bug): the run is failed,
            # never left "running"; the caller reports it (the CLI as one line, a sweep per trial).
            self._write_status(FAILED, describe_exception(e))
            raise
        finally:
            if bar is not None:
                bar.close()
        self._write_status(status, message)
        rundir.write_json(out / THROUGHPUT, self.throughput())
        write_stability(out)
        return RunResult(status, self.step, out, message)

    def throughput(self) -> dict[str, Any]:
        return throughput_record(self._intervals, self.config, self.device, self.fast_paths())

    def fast_paths(self) -> str:
        """The fast paths this run used, for throughput records."""
        on = ["fused-adam" if self.config.fast.fused_adam else "foreach-adam"]
        if self.memory_format == torch.channels_last:
            on.append("channels-last")
        if self.compile_mode != "off":
            on.append(f"compile:{self.compile_mode}")
        if self.config.bf16:
            on.append("bf16")
        return "+".join(on)

    def _log(self, seconds: float, steps: int) -> dict[str, Any] | None:
        """Read the accumulated statistics back (the only host sync), or None if any was non-finite."""
        values = self._stats.tolist()
        norms = self._norms.tolist()
        nonfinite = int(self._nonfinite.item())
        self._stats.zero_()
        self._norms.zero_()
        if nonfinite:
            return None
        record: dict[str, Any] = {"step": self.step}
        record.update({name: v / max(steps, 1) for name, v in zip(_STAT_NAMES, values)})
        record.update(zip(_NORM_NAMES, norms))
        # Real images drawn per second: batch_size x n_critic per step.
        record["images_per_second"] = steps * self.config.batch_size * self.config.n_critic / max(seconds, 1e-9)
        record["steps_per_second"] = steps / max(seconds, 1e-9)
        rundir.append_jsonl(self.run_dir / rundir.STATS, record)
        return record

    def _print_log(self, record: dict[str, Any]) -> None:
        print(
            f"step {record['step']}/{self.config.steps} d_loss={record['d_loss']:.4f} "
            f"g_loss={record['g_loss']:.4f} D(x)={record['d_real']:.3f} D(G(z))={record['d_fake']:.3f} "
            f"{record['images_per_second']:.0f} img/s",
            file=sys.stderr,
            flush=True,
        )

    def _progress_bar(self) -> Any:
        if not self.progress or self.quiet:
            return None
        from ganzoo.progress import make_bar

        # Steps, steps/s and ETA; D's and G's losses join at the first log point.
        return make_bar(self.config.steps, self.step, self.config.variant, "step")

    def _write_samples(self) -> None:
        was_training = self.G.training
        self.G.eval()
        with torch.no_grad(), self._autocast():
            samples = self.G(self.fixed_z)
        self.G.train(was_training)
        save_samples(self.run_dir / f"samples_{self.step:06d}.png", samples, self.data.centers)

    def _write_status(self, status: str, message: str = "") -> None:
        rundir.write_json(
            self.run_dir / rundir.STATUS,
            {"status": status, "step": self.step, "steps": self.config.steps, "message": message},
        )


def train(
    config: TrainConfig, run_dir: Path | str, callbacks: Sequence[Callback] = (), progress: bool | None = None
) -> RunResult:
    return Trainer(config, run_dir, callbacks, progress).run()


def resume(
    run_dir: Path | str,
    steps: int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
) -> RunResult:
    """Continue the run in ``run_dir`` from its checkpoint, optionally to a new step count."""
    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(rundir.read_json(run_dir / rundir.CONFIG))
    if steps is not None:
        config = dataclasses.replace(config, steps=steps)
    return Trainer(config, run_dir, callbacks, progress).run(resume=True)
