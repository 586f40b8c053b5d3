"""The one training loop. A single run and a population both run through ``Engine``: P members (a
single run is one), each with its own run directory, stepped by one ``StepBody``.

The loop logs, checkpoints, samples and calls back per member; a member that diverges or is stopped
by its callback is frozen and recorded alone, and the loop ends when no member is left running.
On CUDA the step is replayed as one CUDA graph where it can be (``ganzoo.training.graphs``); the loop itself
touches the host only at log points, samples, checkpoints and callbacks, none of which is timed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.core import rundir
from ganzoo.core.config import D_UPDATES, UNIT_NAMES, TrainConfig
from ganzoo.core.device import device_name
from ganzoo.core.errors import GanzooError
from ganzoo.core.plugins import describe_exception
from ganzoo.core.progress import is_terminal
from ganzoo.data import Data, data_record
from ganzoo.evaluate.stability import write_stability
from ganzoo.training.graphs import StepRunner, autocast
from ganzoo.training.step import StepBody
from ganzoo.zoo.samples import generate, real_points, save_samples

COMPLETED, DIVERGED, RUNNING, FAILED, INTERRUPTED = "completed", "diverged", "running", "failed", "interrupted"
_N_SAMPLE_IMAGES, _N_SAMPLE_POINTS = 64, 1000


class StopTraining(Exception):
    """Raised by a callback to end the run early; ``status`` is recorded (e.g. "pruned")."""

    def __init__(self, status: str, message: str = "") -> None:
        super().__init__(message or status)
        self.status = status


@dataclasses.dataclass
class TrainState:
    """What a callback sees: one member, its G and D as ordinary modules. G is the generator to
    evaluate: the moving average of G's weights where ``config.g_ema_decay`` asks for one."""

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
        self.device, self.cuda = device, device.type == "cuda"
        self.mark()

    def _now(self) -> Any:
        if self.cuda:
            # The run's device's stream, not the current device's (cuda:0 unless set): an event takes
            # the device of the stream it is first recorded in.
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
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


def reset_peak_memory(device: torch.device) -> None:
    """Start a run's peak memory afresh: CUDA's peak otherwise holds every earlier run of the process
    (a sweep's trials, a benchmark's measurements). A process's peak RSS cannot be reset."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def throughput_record(intervals: Sequence[tuple[int, float]], config: TrainConfig, device: torch.device,
                      fast_paths: str, execution: str, precision: str, members: int = 1) -> dict[str, Any]:
    """Training speed over (steps, seconds) log intervals, the first (warm-up: allocation,
    autotuning, capture, compilation) excluded whenever there is another. ``members``: runs trained
    together (a population), whose images all count."""
    timed = intervals[1:] if len(intervals) > 1 else intervals
    steps = sum(n for n, _ in timed)
    seconds = sum(t for _, t in timed)
    images = steps * config.batch_samples * config.n_critic * members
    if device.type == "cuda":  # since reset_peak_memory at the run's start
        peak, peak_kind = torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    else:
        import resource

        peak, peak_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"
    record = {
        "train_images_per_second": images / seconds if seconds > 0 else None,
        "ms_per_step": 1000 * seconds / steps if steps else None,
        "member_steps_per_second": steps * members / seconds if seconds > 0 else None,
        "timed_steps": steps,
        "warmup_excluded": len(intervals) > 1,
        "peak_memory_bytes": peak,
        "peak_memory_kind": peak_kind,
        "device": device_name(device),
        "torch": torch.__version__,
        "dtype": "bf16-autocast" if config.bf16 else "float32",
        "precision": precision,  # float32 (strict), tf32 or bf16-autocast
        "fast_paths": fast_paths,
        "execution": execution,  # "cuda-graph", or "eager" and why
        "batch_size": config.batch_size,
    }
    if members > 1:
        record["population"] = members  # images/s and memory are the population's, shared by its members
    return record


def clear_run_dir(out: Path) -> None:
    """Remove everything an old run wrote, so that no stale record is read as the new run's."""
    for path in [*out.glob(rundir.SAMPLES_GLOB), *(out / n for n in (*rundir.RUN_FILES, *rundir.DERIVED_FILES))]:
        path.unlink(missing_ok=True)


def _check_run_dir(out: Path, overwrite: bool) -> None:
    """Refuse a folder whose contents a new run would lose or mix with: another run that can be
    continued (unless ``overwrite``), one that may still be training, or files that are no run."""
    if out.exists() and not out.is_dir():
        raise GanzooError(f"--out {out} is a file, not a folder")
    if not out.exists() or overwrite:
        return
    if not (out / rundir.CONFIG).exists():
        if any(out.iterdir()):
            raise GanzooError(f"{out} is not empty and holds no run: pick a new or empty --out (--overwrite writes "
                              "the run's files beside what is there)")
        return
    if (out / rundir.CHECKPOINT).exists():
        raise GanzooError(f"{out} already holds a run; continue it with --resume {out}, replace it with --overwrite "
                          "or pick another --out")
    status = rundir.read_json(out / rundir.STATUS).get("status") if (out / rundir.STATUS).exists() else None
    if status not in (INTERRUPTED, FAILED):  # running: maybe still training (or killed); completed: kept
        raise GanzooError(f"{out} holds a run with no checkpoint (status {status}); if no process is training it, "
                          "--overwrite starts it again")
    # Interrupted or failed before its first checkpoint: nothing to continue or lose, so it starts again.


class Engine:
    def __init__(self, body: StepBody, configs: Sequence[TrainConfig], run_dirs: Sequence[Path], data: Data,
                 callbacks: Sequence[Sequence[Callback]], progress: bool | None = None, quiet: bool = False) -> None:
        """``configs[i]``, ``run_dirs[i]``, ``callbacks[i]``: member i's. Everything but the seed and
        continuous hyperparameters is equal across members (``population.check_population``).
        ``progress``: a progress bar (default: when stderr is a terminal), else log lines;
        ``quiet``: neither (sweeps report per trial instead)."""
        if not (len(configs) == len(run_dirs) == len(callbacks) == body.members):
            raise GanzooError(f"{body.members} members need as many configs, run directories and callback lists")
        self.body, self.configs, self.run_dirs = body, list(configs), [Path(d) for d in run_dirs]
        self.callbacks = [list(c) for c in callbacks]
        self.data, self.device = data, body.device
        self.runner = StepRunner(body, configs[0])
        self.progress = is_terminal() if progress is None else progress
        self.quiet = quiet
        self.step = 0
        self.intervals: list[tuple[int, float]] = []
        self.status = [RUNNING] * body.members
        self.messages = [""] * body.members
        self.stopped_at = [configs[0].steps] * body.members
        self.boards: list[Any] = [None] * body.members  # members' TensorBoard writers, opened by run()
        # Ctrl-C during a step is held until the step ends, so that the state saved on interrupt is a
        # step's (resumable exactly); a second Ctrl-C stops at once.
        self.in_step, self.interrupt_pending = False, False

    # ---- run directories ------------------------------------------------------------------

    def _prepare(self, resume: bool, overwrite: bool) -> None:
        if resume:
            if self.body.members != 1:
                raise GanzooError("a population member cannot be resumed on its own")
            out = self.run_dirs[0]
            self.step = self.body.load(rundir.load_checkpoint(out / rundir.CHECKPOINT))
            for records in (rundir.STATS, rundir.METRICS):  # steps after the checkpoint are logged again
                rundir.truncate_jsonl(out / records, self.step)
        for config, out in zip(self.configs, self.run_dirs):
            if not resume:
                _check_run_dir(out, overwrite)
                clear_run_dir(out)
            out.mkdir(parents=True, exist_ok=True)
            rundir.write_json(out / rundir.CONFIG, config.to_dict())
            rundir.write_json(out / rundir.DATA, data_record(self.data))
        for i in range(self.body.members):
            self._write_status(i, RUNNING)

    def _write_status(self, i: int, status: str, message: str = "") -> None:
        step = self.step if status in (RUNNING, FAILED, INTERRUPTED) else self.stopped_at[i]
        rundir.write_json(self.run_dirs[i] / rundir.STATUS,
                          {"status": status, "step": step, "steps": self.configs[i].steps, "message": message})

    def _running(self) -> list[int]:
        return [i for i, s in enumerate(self.status) if s == RUNNING]

    def _stop(self, i: int, status: str, message: str) -> None:
        self.status[i], self.messages[i], self.stopped_at[i] = status, message, self.step
        self.body.freeze(i)

    # ---- the loop -------------------------------------------------------------------------

    def run(self, resume: bool = False, overwrite: bool = False) -> list[RunResult]:
        """Train every member to ``steps`` (or its divergence or stop). A directory that already holds
        a run is continued with ``resume`` (a single run), replaced with ``overwrite``, and otherwise
        refused: nothing saved is lost."""
        cfg = self.configs[0]
        for config, callbacks in zip(self.configs, self.callbacks):
            for callback in callbacks:  # what a callback needs (an evaluation's reference split), before training
                getattr(callback, "prepare", lambda config: None)(config)
        self._prepare(resume, overwrite)
        self._open_boards()
        bar = self._progress_bar()
        reset_peak_memory(self.device)  # once per engine run: a population's members share its peak
        clock, step_last, pending = _Clock(self.device), self.step, 0.0
        try:
            with self._held_interrupts():
                while self.step < cfg.steps and self._running():
                    log = self.advance()
                    if bar is not None:
                        bar.update(1)
                    last = self.step == cfg.steps
                    sample = (cfg.sample_every and self.step % cfg.sample_every == 0) or last
                    call = (cfg.callback_every and self.step % cfg.callback_every == 0) or last
                    if not (log or sample or call):
                        continue
                    # Time the training since the last mark; what follows here is not training time.
                    pending += clock.lap()
                    if log:
                        self.intervals.append((self.step - step_last, pending))
                        self._log(step_last, pending, bar)
                        step_last, pending = self.step, 0.0
                        if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or last:
                            self._save_checkpoints()
                    if sample:
                        for i in self._running():
                            self._write_samples(i)
                    if call:
                        self._call_back(last, bar)
                    clock.mark()
        except KeyboardInterrupt:
            if not self.in_step:  # the state is a whole step's: save it, so that nothing trained is lost
                self._save_checkpoints()
            for i in self._running():
                self._write_status(i, INTERRUPTED, "stopped by the user; resume with --resume")
            raise
        except Exception as e:
            # An exception inside the step is a plugin's (or ganzoo's own bug): the members are failed,
            # never left "running"; the caller reports it (the CLI as one line, a sweep per trial).
            for i in self._running():
                self._write_status(i, FAILED, describe_exception(e))
            raise
        finally:
            if bar is not None:
                bar.close()
            for board in self.boards:
                if board is not None:
                    board.close()
        return [self._finish(i) for i in range(self.body.members)]

    def _open_boards(self) -> None:
        if any(c.tensorboard for c in self.configs):
            from ganzoo.training.tensorboard import TensorBoard

            self.boards = [TensorBoard(c.tensorboard) if c.tensorboard else None for c in self.configs]

    def advance(self) -> bool:
        """Take one step of every member; returns whether it ends at a log point (whose step takes
        the gradient norms, when the step runs eagerly)."""
        cfg = self.configs[0]
        log = (self.step + 1) % cfg.log_every == 0 or self.step + 1 == cfg.steps
        self.in_step = True
        self.runner(log)
        self.step += 1
        self.in_step = False
        if self.interrupt_pending:
            raise KeyboardInterrupt
        return log

    def _save_checkpoints(self) -> None:
        for i in self._running():
            rundir.save_checkpoint(self.run_dirs[i] / rundir.CHECKPOINT, self.body.checkpoint(i, self.step))

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.in_step and not self.interrupt_pending:
            self.interrupt_pending = True
            print("\nganzoo: stopping after this step (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def _held_interrupts(self) -> Iterator[None]:
        """Hold Ctrl-C during steps, where this process's Ctrl-C is Python's default (the main thread)."""
        held = (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if held:
            signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            if held:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _log(self, step_last: int, seconds: float, bar: Any) -> None:
        """Read the statistics back (the one host sync) and append each running member's record."""
        steps = self.step - step_last
        records, nonfinite = self.body.statistics.read(steps)
        loss_state = self.body.loss_state.read()
        cfg = self.configs[0]
        for i in self._running():
            if nonfinite[i]:
                self._stop(i, DIVERGED, f"non-finite loss between steps {step_last} and {self.step}")
                continue
            # Real images drawn per second (batch_size packs of pack x n_critic per step), a member's own.
            record = {"step": self.step, **records[i], **loss_state[i],
                      "images_per_second": steps * cfg.batch_samples * cfg.n_critic / max(seconds, 1e-9),
                      "steps_per_second": steps / max(seconds, 1e-9)}
            if self.body.members > 1:
                record["population"] = self.body.members
            rundir.append_jsonl(self.run_dirs[i] / rundir.STATS, record)
            if self.boards[i] is not None:
                self.boards[i].statistics(record)
            if self.body.members == 1:
                if bar is not None:
                    bar.set_postfix(d=f"{record['d_loss']:.3f}", g=f"{record['g_loss']:.3f}")
                elif not self.quiet:
                    self._print_log(record)

    def _call_back(self, last: bool, bar: Any) -> None:
        waiting = [i for i in self._running() if self.callbacks[i]]
        # A member whose loss turned non-finite since the last log point is not evaluated: it is
        # recorded as diverged at the next one.
        nonfinite = self.body.statistics.nonfinite.tolist() if waiting else []
        states = {}
        for i in waiting:
            if not nonfinite[i]:
                G, D = self.body.modules(i)
                states[i] = TrainState(self.step, last, self.configs[i], self.run_dirs[i], G, D, self.data, self.device)
        if len(states) > 1:  # a population's evaluations in one extraction pass
            from ganzoo.evaluate.metrics import EvalCallback

            EvalCallback.evaluate_together([(callback, states[i]) for i in states for callback in self.callbacks[i]
                                            if isinstance(callback, EvalCallback)])
        for i, state in states.items():
            if bar is not None:  # evaluation can take longer than training: say what runs
                bar.set_description_str(f"{self.configs[i].variant} (evaluating at step {self.step})")
            try:
                for callback in self.callbacks[i]:
                    callback(state)
            except StopTraining as stop:
                self._stop(i, stop.status, str(stop))
            finally:
                self._board_metrics(i)
            if bar is not None:
                bar.set_description_str(self.configs[i].variant)

    def _board_metrics(self, i: int) -> None:
        """This step's evaluation of member i (an EvalCallback's result) on its TensorBoard."""
        if self.boards[i] is None:
            return
        from ganzoo.evaluate.metrics import EvalCallback

        for callback in self.callbacks[i]:
            if isinstance(callback, EvalCallback) and callback.last is not None and callback.last["step"] == self.step:
                self.boards[i].metrics(callback.last)

    def _finish(self, i: int) -> RunResult:
        if self.status[i] == RUNNING:
            self.status[i], self.stopped_at[i] = COMPLETED, self.step
        out = self.run_dirs[i]
        self._write_status(i, self.status[i], self.messages[i])
        rundir.write_json(out / rundir.THROUGHPUT, self.throughput(i))
        write_stability(out)
        return RunResult(self.status[i], self.stopped_at[i], out, self.messages[i])

    def throughput(self, i: int = 0) -> dict[str, Any]:
        return throughput_record(self.intervals, self.configs[i], self.device, "+".join(self.body.fast_paths()),
                                 self.runner.execution, self.runner.precision_name, members=self.body.members)

    def _write_samples(self, i: int) -> None:
        G, _ = self.body.modules(i)
        was_training = G.training
        G.eval()
        with torch.no_grad(), autocast(self.configs[i]):
            samples = G(fixed_noise(self.configs[i], self.data).to(self.device))
        G.train(was_training)
        picture = save_samples(self.run_dirs[i] / rundir.SAMPLES.format(step=self.step), samples, self.data.centers,
                               real_points(self.data))
        if self.boards[i] is not None:
            self.boards[i].samples(self.step, picture)

    def _print_log(self, record: dict[str, Any]) -> None:
        cfg = self.configs[0]
        per = cfg.n_critic if cfg.length_unit == D_UPDATES else 1  # the lengths in the unit the run counts
        print(
            f"{UNIT_NAMES[cfg.length_unit][:-1]} {record['step'] * per}/{cfg.steps * per} d_loss={record['d_loss']:.4f} "
            f"g_loss={record['g_loss']:.4f} D(x)={record['d_real']:.3f} D(G(z))={record['d_fake']:.3f} "
            f"{record['images_per_second']:.0f} img/s",
            file=sys.stderr,
            flush=True,
        )

    def _progress_bar(self) -> Any:
        if not self.progress or self.quiet:
            return None
        from ganzoo.core.progress import make_bar

        # G updates (engine steps), their rate and ETA; D's and G's losses join at the first log point.
        return make_bar(self.configs[0].steps, self.step, self.configs[0].variant, " G update")
