"""A single run: its step body (G and D as modules, torch's Adam, autograd) and ``Trainer``.

It knows a loss only through ``Loss`` and an architecture only through ``Architecture.build``: never
a variant's name. Evaluation and pruning plug in through callbacks; the trainer never imports Optuna.
The loop is ``ganzoo.training.engine.Engine``'s, shared with populations; the step's terms and statistics are
``ganzoo.training.step``'s, shared with the stacked body.

Every random draw (batch order, noise, penalty interpolation) comes from one generator seeded by
``config.seed``; model initialisation uses the global RNG seeded the same way. On the CPU the same
seed gives the same weights, and a resumed run the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ganzoo.core import rundir
from ganzoo.core.config import SIMULTANEOUS, TrainConfig
from ganzoo.core.device import resolve_device
from ganzoo.core.errors import GanzooError
from ganzoo.data import Data, load_dataset
from ganzoo.data.batches import StreamBatches, TensorBatches, check_fits
from ganzoo.training.averaging import ema_weight, recompute_batchnorm
from ganzoo.training.engine import (  # noqa: F401 (re-exported: the trainer's public names)
    COMPLETED,
    DIVERGED,
    FAILED,
    RUNNING,
    Callback,
    Engine,
    RunResult,
    StopTraining,
    TrainState,
    clear_run_dir,
    fixed_noise,
)
from ganzoo.training.graphs import autocast
from ganzoo.training.step import (
    LossState,
    Statistics,
    critic_terms,
    generator_term,
    penalty_terms,
)
from ganzoo.zoo.losses import Loss, input_gradient
from ganzoo.zoo.outputs import probe_networks
from ganzoo.zoo.packing import packed_shape
from ganzoo.zoo.unrolling import (
    AdamState,
    autograd_gradient,
    d_objective,
    look_ahead,
    surrogate,
)
from ganzoo.zoo.variants import (
    build_architecture,
    build_loss,
    build_networks,
    build_penalty,
    validate,
)

THROUGHPUT = rundir.THROUGHPUT


def grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def load_training_data(config: TrainConfig) -> Data:
    return load_dataset(config.dataset, "train", root=config.data_root, resolution=config.resolution)


class ModuleStep:
    """One run's step on its G and D modules."""

    members = 1

    def __init__(self, config: TrainConfig, data: Data, device: torch.device,
                 networks: tuple[nn.Module, nn.Module] | None = None) -> None:
        """``networks``: G and D as ``build_networks`` builds them for ``config`` under its seed, for a caller
        that needs them itself too (the bench times the tutorial loop on copies of the same build); None:
        built here."""
        self.config, self.data, self.device = config, data, device
        if config.bf16 and device.type != "cuda":
            raise GanzooError("bf16 autocast needs a CUDA device")
        arch = build_architecture(config)
        if (problem := arch.check(sample_shape=data.sample_shape)) is not None:
            raise GanzooError(f"architecture {config.arch!r} cannot train on {config.dataset!r}: {problem}")
        if config.pack > 1 and (problem := arch.check(sample_shape=packed_shape(data.sample_shape, config.pack))) is not None:
            raise GanzooError(f"architecture {config.arch!r} cannot judge packs of {config.pack} {config.dataset!r} "
                              f"samples: {problem}")
        self.loss: Loss = build_loss(config)
        self.penalty = build_penalty(config)
        torch.manual_seed(config.seed)
        G, D = networks if networks is not None else build_networks(config, data.sample_shape, data.bounded)
        probe_networks(arch, config.arch, G, D, data.sample_shape, config.z_dim, data.bounded)
        self.memory_format = self._memory_format()
        self.G, self.D = G.to(device, memory_format=self.memory_format), D.to(device, memory_format=self.memory_format)
        # G's moving average (before any compile: a copy of the plain module), updated after each G step;
        # the G updates it has seen are counted on the device, where a captured step advances them.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if config.g_ema_decay > 0 else None
        self._ema_updates = torch.zeros((), device=device)
        # Capturable Adam keeps its step count on the device, as a captured step needs.
        from ganzoo.training.graphs import graph_problem

        self.capturable = graph_problem(config, device) is None
        self.g_opt = self._adam(self.G, config.g_adam)
        self.d_opt = self._adam(self.D, config.d_adam)
        self._g_params, self._d_params = list(self.G.parameters()), list(self.D.parameters())
        self._ema_params = list(self.G_ema.parameters()) if self.G_ema is not None else []
        self.compile_mode = self._compile_mode()
        if self.compile_mode != "off":
            # In place, so state_dict keys (checkpoints) are those of the plain modules.
            self.G.compile(mode=self.compile_mode)
            self.D.compile(mode=self.compile_mode)
        self.rng = torch.Generator(device).manual_seed(config.seed)
        check_fits(len(data), config.batch_size, config.pack)
        if data.x is not None:
            self.batches: TensorBatches | StreamBatches = TensorBatches(
                data.x.to(device, memory_format=self.memory_format), config.batch_samples, self.rng)
        else:
            assert data.stream is not None
            self.batches = StreamBatches(data.stream, config.batch_samples, config.seed, device)
        self.statistics = Statistics(1, device)
        self.loss_state = LossState([self.loss], device, next(self.D.parameters()).dtype)

    def _adam(self, module: nn.Module, adam: Any) -> torch.optim.Adam:
        # fused: one kernel for all parameters; else torch's default (foreach on CUDA, a loop on CPU).
        return torch.optim.Adam(module.parameters(), lr=adam.lr, betas=(adam.beta1, adam.beta2),
                                fused=self.config.fast.fused_adam, capturable=self.capturable)

    def _memory_format(self) -> torch.memory_format:
        """channels_last lets cuDNN pick its NHWC convolution kernels (tensor cores); on CPU it rarely pays."""
        setting = self.config.fast.channels_last
        on = setting == "on" or (setting == "auto" and self.device.type == "cuda")
        return torch.channels_last if on and self.data.kind == "image" else torch.contiguous_format

    def _compile_mode(self) -> str:
        mode = self.config.fast.compile
        if mode == "auto" and (self.config.unroll or self.config.update_order == SIMULTANEOUS):
            return "off"  # compiled modules give no second derivatives (unroll), nor run at copied weights
        if mode == "auto":
            # The whole-step graph does what reduce-overhead's per-module graphs do, for the whole step.
            return "reduce-overhead" if self.device.type == "cuda" and self.config.fast.cuda_graph == "off" else "off"
        return mode

    # ---- the step body ---------------------------------------------------------------------

    def plan(self) -> Tensor:
        return self.batches.plan(self.config.n_critic)

    def body(self, plan: Tensor, norms: bool) -> None:
        cfg, stats = self.config, self.statistics
        if norms:
            stats.norms.zero_()
        for i in range(cfg.n_critic):
            real = self.batches.gather(plan[i])
            fake = self._d_update(real, keep=i == cfg.n_critic - 1, norms=norms)
        self._g_update(fake, real, norms)

    def _noise(self) -> Tensor:
        return torch.randn(self.config.batch_samples, self.config.z_dim, device=self.device, generator=self.rng)

    def _penalty(self, real: Tensor, fake: Tensor) -> Tensor | None:
        """The loss's own penalty, then the configured one: their noise drawn in that order."""
        own = self.loss.penalty(D=self.D, real=real, fake=fake, generator=self.rng)
        if self.penalty is None:
            return own
        noise = self.penalty.noise(real=real, generator=self.rng)
        return penalty_terms([own, self.penalty.value(D=self.D, real=real, fake=fake, noise=noise, gradient=input_gradient)])

    def _d_update(self, real: Tensor, keep: bool, norms: bool) -> Tensor:
        """One D update. With ``keep`` (the last critic step), G's forward keeps its graph for G's update."""
        with torch.set_grad_enabled(keep), autocast(self.config):
            kept = self.G(self._noise())
        fake = kept.detach()
        with autocast(self.config):
            total, aux, following = critic_terms(self.loss, self.D, real, fake, lambda: self._penalty(real, fake),
                                                 self.loss_state.member(0))
        self.d_opt.zero_grad(set_to_none=True)
        total.backward()
        if norms:
            self.statistics.norms[0, 0] += grad_norm(self.D) / self.config.n_critic
        if keep and self.config.unroll:
            self._ahead_from = self._d_before_update()
        if keep and self.config.update_order == SIMULTANEOUS:  # G's gradient is taken at D as it is now
            self._d_start = ({name: p.detach().clone() for name, p in self.D.named_parameters()},
                             {name: b.clone() for name, b in self.D.named_buffers()})
        self.d_opt.step()
        if self.config.d_weight_clip > 0:
            with torch.no_grad():
                clip = self.config.d_weight_clip
                torch._foreach_clamp_min_(self._d_params, -clip)
                torch._foreach_clamp_max_(self._d_params, clip)
        self.statistics.critic(aux[None], self.config.n_critic)
        if self.loss_state.values:
            self.loss_state.advance(following, ~self.statistics.nonfinite)
        return kept

    def _g_update(self, fake: Tensor, real: Tensor, norms: bool) -> None:
        self.D.requires_grad_(False)  # G's update needs gradients through D, not for D's weights
        with autocast(self.config):
            if self.config.unroll:
                loss = self._unrolled_g_loss(fake, real)
            elif self.config.update_order == SIMULTANEOUS:  # at D before its update, on copies of its buffers
                loss = generator_term(self.loss, self._critic_at(*self._d_start), fake, real, self.loss_state.member(0))
            else:
                loss = generator_term(self.loss, self.D, fake, real, self.loss_state.member(0))
        self.g_opt.zero_grad(set_to_none=True)
        # Unrolled, the look-ahead's leaves (D's weights, detached) need no gradient of their own.
        loss.backward(inputs=self._g_params if self.config.unroll else None)
        if norms:
            self.statistics.norms[0, 1] = grad_norm(self.G)
        self.g_opt.step()
        self.D.requires_grad_(True)
        if self.G_ema is not None:
            with torch.no_grad():
                self._ema_updates += 1
                weight = ema_weight(self._ema_updates, self.config.g_ema_decay, self.config.g_ema_start)
                # ema + w (G - ema) with a device weight (a captured step must not read it to the host), by
                # plain ops: the population's formula on its flat weights, element for element
                for ema, current in zip(self._ema_params, self._g_params):
                    ema.add_((current - ema) * weight)
        self.statistics.generator(loss.detach()[None])

    def _d_before_update(self) -> tuple[dict[str, Tensor], AdamState]:
        """D's weights and Adam as the last critic update starts from them: where the look-ahead starts, so
        that its first update is that one (ganzoo.zoo.unrolling). Before D's first update Adam has no state yet."""
        cfg = self.config
        named = list(self.D.named_parameters())
        states = [self.d_opt.state.get(p, {}) for _, p in named]

        def moment(key: str) -> dict[str, Tensor]:
            return {name: s[key].clone() if key in s else torch.zeros_like(p) for (name, p), s in zip(named, states)}

        step = states[0]["step"].clone() if "step" in states[0] else torch.zeros((), device=named[0][1].device)
        adam = AdamState(moment("exp_avg"), moment("exp_avg_sq"), step, cfg.d_adam.lr, cfg.d_adam.beta1,
                         cfg.d_adam.beta2, cfg.d_weight_clip or None)
        return {name: p.detach().clone() for name, p in named}, adam

    def _look_ahead(self, fake: Tensor, real: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """D's parameters after ``unroll`` updates from where its last update started, differentiable in G's
        ``fake``, and the buffers D's look-ahead forwards ran with (copies: D's own are left alone)."""
        weights, adam = self._ahead_from
        start = {name: w.requires_grad_() for name, w in weights.items()}
        buffers = {name: b.clone() for name, b in self.D.named_buffers()}
        final = look_ahead(lambda params: d_objective(self.loss, self._critic_at(params, buffers), real, fake),
                           start, adam, self.config.unroll, autograd_gradient)
        return final, buffers

    def _critic_at(self, params: dict[str, Tensor], buffers: dict[str, Tensor]) -> Callable[[Tensor], Tensor]:
        return lambda x: functional_call(self.D, (params, buffers), (x,))

    def _unrolled_g_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """G's loss at D after ``unroll`` look-ahead Adam updates (ganzoo.zoo.unrolling); D's own weights, moments
        and BatchNorm statistics are left untouched."""
        final, buffers = self._look_ahead(fake, real)
        return surrogate(self.loss, self._critic_at(final, buffers), real, fake)

    def generators(self) -> list[torch.Generator]:
        return [self.rng]

    def capture_problem(self) -> str | None:
        return "data streamed from a folder" if isinstance(self.batches, StreamBatches) else None

    def eager_only(self) -> None:
        """Adam leaves its capturable path, which is slower uncaptured."""
        self.capturable = False
        self._adam_path()

    def _adam_path(self) -> None:
        """Both Adams on the path this run takes (``self.capturable``), with their step counts where
        that path reads them: on the device when capturable or fused, else on the host. Also after a
        checkpoint is loaded, whose param groups carry the saving run's path (a captured run's, resumed
        where none is captured; or the reverse, whose capture Adam would refuse)."""
        on_device = self.capturable or self.config.fast.fused_adam
        for opt in (self.g_opt, self.d_opt):
            for group in opt.param_groups:
                group["capturable"] = self.capturable
            for param, state in opt.state.items():
                if "step" in state:
                    state["step"] = state["step"].to(param.device if on_device else "cpu")  # its dtype kept

    def freeze(self, i: int) -> None:
        pass  # a single run ends when its only member stops

    def modules(self, i: int) -> tuple[nn.Module, nn.Module]:
        if self.G_ema is None:
            return self.G, self.D
        recompute_batchnorm(self.G_ema, self.config, self.device)
        return self.G_ema, self.D

    # ---- state ----------------------------------------------------------------------------

    def checkpoint(self, i: int, step: int) -> dict[str, Any]:
        state = {
            "step": step,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
            "rng": self.rng.get_state(),
            "batches": self.batches.state_dict(),
            "loss_state": self.loss_state.state_dict(0),
        }
        if self.G_ema is not None:
            state["G_ema"] = self.modules(0)[0].state_dict()
        return state

    def load(self, state: dict[str, Any]) -> int:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self._adam_path()
        self.rng.set_state(state["rng"])
        self.batches.load_state_dict(state["batches"])
        self.loss_state.load_state_dict(0, state.get("loss_state", {}))  # none in checkpoints of older runs
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
            self._ema_updates.fill_(int(state["step"]))  # one average update per G update
        return int(state["step"])

    def fast_paths(self) -> list[str]:
        on = ["fused-adam" if self.config.fast.fused_adam else "foreach-adam"]
        if self.memory_format == torch.channels_last:
            on.append("channels-last")
        if self.compile_mode != "off":
            on.append(f"compile:{self.compile_mode}")
        if self.config.bf16:
            on.append("bf16")
        return on


class Trainer:
    """One run: ``ModuleStep`` driven by the engine's loop."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path | str,
        callbacks: Sequence[Callback] = (),
        progress: bool | None = None,
        quiet: bool = False,
        networks: tuple[nn.Module, nn.Module] | None = None,
    ) -> None:
        """``progress``: a progress bar (default: when stderr is a terminal), else log lines;
        ``quiet``: neither (sweeps report per trial instead); ``networks``: see ``ModuleStep``."""
        validate(config)
        self.config, self.run_dir = config, Path(run_dir)
        self.device = resolve_device(config.device)
        self.data = load_training_data(config)
        self.body = ModuleStep(config, self.data, self.device, networks)
        self.engine = Engine(self.body, [config], [self.run_dir], self.data, [list(callbacks)], progress, quiet)

    # The run's modules and optimisers, for callers and tests that look inside.
    @property
    def G(self) -> nn.Module:
        return self.body.G

    @property
    def D(self) -> nn.Module:
        return self.body.D

    @property
    def g_opt(self) -> torch.optim.Adam:
        return self.body.g_opt

    @property
    def d_opt(self) -> torch.optim.Adam:
        return self.body.d_opt

    @property
    def step(self) -> int:
        return self.engine.step

    def train_step(self) -> None:
        """One step outside the loop (no logging), as the loop would take it."""
        self.engine.advance()

    def state_dict(self) -> dict[str, Any]:
        return self.body.checkpoint(0, self.engine.step)

    def train_state(self, final: bool) -> TrainState:
        G, D = self.body.modules(0)  # G's moving average, where the run keeps one
        return TrainState(self.step, final, self.config, self.run_dir, G, D, self.data, self.device)

    def run(self, resume: bool = False, overwrite: bool = False) -> RunResult:
        """Train to ``config.steps``. A directory that already holds a run is continued with
        ``resume``, replaced with ``overwrite``, and otherwise refused: nothing saved is lost."""
        return self.engine.run(resume, overwrite)[0]

    def throughput(self) -> dict[str, Any]:
        return self.engine.throughput()

    def fast_paths(self) -> str:
        """The fast paths this run uses, as throughput.json names them."""
        return "+".join(self.body.fast_paths())


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
