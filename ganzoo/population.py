"""Population training: P members of one variant trained at once, stacked and stepped with vmap.

Members differ in seed and in continuous hyperparameters (Adam's learning rates and betas, the
loss's own parameters); whatever changes shapes or control flow (architecture, n_critic, batch
size, z_dim, steps) must be equal, and ``check_population`` says which is not. Each member draws
its data order and noise from its own generator, seeded as a single run's, and every operation of
a single step is applied member-wise, so member i follows the single run of its configuration.

- Parameters and buffers are stacked with ``torch.func.stack_module_state`` and the networks run
  through ``functional_call`` under ``vmap``; ``torch.optim`` cannot be vmapped, so ``StackedAdam``
  keeps each member's own learning rate and betas (torch's Adam formula, tensors of shape (P, ...)).
- BatchNorm: every member has its own running statistics (the stacked buffers, updated in place
  under vmap exactly as a single run updates its own), so nothing is shared across members.
- A member whose losses turn non-finite is frozen (its parameters and optimiser state stop
  changing) and marked diverged at the next log point; the others continue unharmed.
- Each member writes the files of a single run directory (config.json, status.json, stats.jsonl,
  checkpoint.pt with G and D, final samples, stability.json, throughput.json), which reports read as
  any run's. Differences: throughput.json gives the population's images/s and peak memory (its
  ``population`` field says how many members shared them); a member's checkpoint has no optimiser
  state, so a member cannot be resumed on its own.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, stack_module_state, vmap

from ganzoo import rundir
from ganzoo.batches import TensorBatches
from ganzoo.config import TrainConfig
from ganzoo.data import data_record, load_dataset
from ganzoo.errors import GanzooError
from ganzoo.losses import functional_input_gradient
from ganzoo.samples import save_samples
from ganzoo.stability import write_stability
from ganzoo.trainer import (
    THROUGHPUT,
    StopTraining,
    TrainState,
    clear_run_dir,
    fixed_noise,
    resolve_device,
    throughput_record,
)
from ganzoo.variants import build_architecture, build_loss, validate

# Settings that may differ between members: continuous hyperparameters and the seed.
PER_MEMBER = ("seed", "g_adam", "d_adam", "loss_params")


def check_population(configs: Sequence[TrainConfig]) -> None:
    """Refuse members that cannot share one stacked step."""
    if not configs:
        raise GanzooError("a population needs at least one member")
    first = configs[0].to_dict()
    for i, config in enumerate(configs[1:], start=1):
        other = config.to_dict()
        differ = sorted(k for k in first if k not in PER_MEMBER and first[k] != other[k])
        if differ:
            raise GanzooError(f"member {i} differs from member 0 in {', '.join(differ)}: only "
                              f"{', '.join(PER_MEMBER)} may differ within a population")
    if configs[0].bf16 or configs[0].fast.compile != "off":
        raise GanzooError("population training runs in float32 without torch.compile")


class StackedAdam:
    """Adam over stacked parameters: member p uses lr[p], beta1[p], beta2[p] (torch's Adam formula,
    eps 1e-8, no weight decay). Members outside ``active`` keep their parameters and moments.

    The parameters are moved into one (P, N) tensor and ``params`` is given views of it, so that an
    update is a handful of whole-population ops instead of a Python loop over tensors."""

    def __init__(self, params: dict[str, Tensor], lr: Tensor, beta1: Tensor, beta2: Tensor, eps: float = 1e-8) -> None:
        self.keys = list(params)
        self.flat = torch.cat([params[k].flatten(1) for k in self.keys], 1)
        offset = 0
        for k in self.keys:
            n = params[k][0].numel()
            params[k] = self.flat[:, offset:offset + n].view(params[k].shape)
            offset += n
        self.lr, self.beta1, self.beta2, self.eps = lr[:, None], beta1[:, None], beta2[:, None], eps
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        self.t = torch.zeros_like(self.lr)  # steps taken, per member (frozen members stop counting)

    def step(self, grads: dict[str, Tensor], active: Tensor) -> None:
        g = torch.cat([grads[k].flatten(1) for k in self.keys], 1)
        keep = active[:, None]
        self.t += keep.to(self.t.dtype)
        bias1, bias2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        m = torch.where(keep, self.beta1 * self.m + (1 - self.beta1) * g, self.m)
        v = torch.where(keep, self.beta2 * self.v + (1 - self.beta2) * g * g, self.v)
        update = (self.lr / bias1) * m / (v.sqrt() / bias2.sqrt() + self.eps)
        self.flat.sub_(torch.where(keep, update, 0.0))
        self.m, self.v = m, v


@dataclasses.dataclass(frozen=True)
class MemberResult:
    status: str  # completed | diverged
    step: int
    run_dir: Path


class PopulationTrainer:
    def __init__(self, configs: Sequence[TrainConfig], run_dirs: Sequence[Path | str],
                 callbacks: Sequence[Sequence[Callable[[TrainState], None]]] | None = None) -> None:
        """``callbacks[i]``: member i's trainer callbacks (evaluation, pruning), called at its config's
        ``callback_every`` and at the end with a ``TrainState`` of the member as an ordinary module pair;
        a ``StopTraining`` they raise stops that member alone."""
        for config in configs:
            validate(config)
        check_population(configs)
        if len(run_dirs) != len(configs):
            raise GanzooError(f"{len(configs)} members need {len(configs)} run directories, got {len(run_dirs)}")
        self.configs, self.run_dirs = list(configs), [Path(d) for d in run_dirs]
        self.callbacks = [list(cb) for cb in callbacks] if callbacks is not None else [[] for _ in configs]
        c = configs[0]
        self.device = resolve_device(c.device)
        self.data = load_dataset(c.dataset, "train", root=c.data_root, resolution=c.resolution)
        if self.data.x is None:
            raise GanzooError("population training needs a dataset held in memory, not a streamed folder")
        arch = build_architecture(c)
        if (problem := arch.check(self.data.sample_shape)) is not None:
            raise GanzooError(f"architecture {c.arch!r} cannot train on {c.dataset!r}: {problem}")
        self.losses = [build_loss(config) for config in configs]
        Gs, Ds = [], []
        for config in configs:
            torch.manual_seed(config.seed)  # the same initial weights as the member's single run
            G, D = arch.build(self.data.sample_shape, c.z_dim, self.data.bounded)
            Gs.append(G.to(self.device))
            Ds.append(D.to(self.device))
        self.G_base, self.D_base = copy.deepcopy(Gs[0]).to("meta"), copy.deepcopy(Ds[0]).to("meta")
        self.g_params, self.g_buffers = stack_module_state(Gs)
        self.d_params, self.d_buffers = stack_module_state(Ds)
        self.g_params = {k: v.detach() for k, v in self.g_params.items()}
        self.d_params = {k: v.detach() for k, v in self.d_params.items()}

        # Adam's settings in the parameters' dtype: float32 in training, float64 in the tests that hold
        # members to their single runs (rounded to float32, a learning rate or beta is off by up to 3e-8).
        dtype = next(iter(self.g_params.values())).dtype

        def per_member(values: list[float]) -> Tensor:
            return torch.tensor(values, device=self.device, dtype=dtype)

        self.g_opt = StackedAdam(self.g_params, *(per_member([getattr(x.g_adam, a) for x in configs])
                                                  for a in ("lr", "beta1", "beta2")))
        self.d_opt = StackedAdam(self.d_params, *(per_member([getattr(x.d_adam, a) for x in configs])
                                                  for a in ("lr", "beta1", "beta2")))
        x = self.data.x.to(self.device)
        self.rngs = [torch.Generator(self.device).manual_seed(config.seed) for config in configs]
        self.batches = [TensorBatches(x, c.batch_size, rng) for rng in self.rngs]
        self.active = torch.ones(len(configs), dtype=torch.bool, device=self.device)
        self.step = 0
        n = len(configs)
        self._stats = torch.zeros(n, 5, device=self.device)  # d_loss, g_loss, penalty, d_real, d_fake
        self._norms = torch.zeros(n, 2, device=self.device)  # D and G gradient norms, at log steps
        # Device-side constants: a host-made index or placeholder would sync the step every time.
        self._d_columns = torch.tensor([0, 3, 4, 2], device=self.device)
        self._no_noise = torch.zeros((), device=self.device)
        self._nonfinite = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._build_steps()

    # ---- the stacked step ------------------------------------------------------------------

    def _build_steps(self) -> None:
        G, D, loss = self.G_base, self.D_base, self.losses[0]
        loss_type = type(loss)
        # Loss hyperparameters as per-member tensors, so that vmap hands each member its own.
        fields = [f.name for f in dataclasses.fields(loss)] if dataclasses.is_dataclass(loss) else []
        self.loss_params = {name: torch.tensor([float(getattr(m, name)) for m in self.losses], device=self.device)
                            for name in fields}

        def member_loss(params: dict[str, Tensor]) -> Any:
            return loss_type(**{k: v for k, v in params.items()}) if params else loss_type()

        def generate(g_params: dict[str, Tensor], g_buffers: dict[str, Tensor], z: Tensor) -> Tensor:
            return functional_call(G, (g_params, g_buffers), (z,))

        def d_loss(d_params: dict[str, Tensor], d_buffers: dict[str, Tensor], real: Tensor, fake: Tensor,
                   noise: Tensor, loss_params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
            def critic(x: Tensor) -> Tensor:
                return functional_call(D, (d_params, d_buffers), (x,))

            real_logits, fake_logits = critic(real), critic(fake)
            this = member_loss(loss_params)
            value = this.discriminator_loss(real_logits, fake_logits)
            penalty = this.penalty_at(critic, real, fake, noise, functional_input_gradient)
            penalty = torch.zeros_like(value) if penalty is None else penalty
            aux = torch.stack([value, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(), penalty])
            return value + penalty, aux.detach()

        def g_loss(g_params: dict[str, Tensor], g_buffers: dict[str, Tensor], d_params: dict[str, Tensor],
                   d_buffers: dict[str, Tensor], z: Tensor, loss_params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
            # G's forward repeats the last D step's (same weights, same z, batch statistics), with its
            # running statistics left alone: a single run updates them once per D step, not again here.
            frozen = {k: v.clone() for k, v in g_buffers.items()}
            fake = functional_call(G, (g_params, frozen), (z,))
            value = member_loss(loss_params).generator_loss(functional_call(D, (d_params, d_buffers), (fake,)))
            return value, value.detach()

        self._generate = vmap(generate)
        self._d_grad = vmap(grad(d_loss, has_aux=True))
        self._g_grad = vmap(grad(g_loss, has_aux=True))

    def _draw(self) -> tuple[Tensor, Tensor, Tensor]:
        """Each member's next batch, noise and penalty noise, from its own generator in a single run's order."""
        c = self.configs[0]
        reals, zs, noises = [], [], []
        for batches, rng, loss in zip(self.batches, self.rngs, self.losses):
            reals.append(batches.next())
            zs.append(torch.randn(c.batch_size, c.z_dim, device=self.device, generator=rng))
            noise = loss.penalty_noise(reals[-1], rng)
            noises.append(self._no_noise if noise is None else noise)  # a placeholder vmap can map
        return torch.stack(reals), torch.stack(zs), torch.stack(noises)

    @staticmethod
    def _norm(grads: dict[str, Tensor]) -> Tensor:
        """Each member's gradient norm over all its parameters, shape (P,)."""
        return torch.stack([g.flatten(1).pow(2).sum(1) for g in grads.values()]).sum(0).sqrt()

    def train_step(self) -> None:
        c = self.configs[0]
        n_critic = c.n_critic
        log_step = (self.step + 1) % c.log_every == 0 or self.step + 1 == c.steps
        for _ in range(n_critic):
            real, z, noise = self._draw()
            with torch.no_grad():
                fake = self._generate(self.g_params, self.g_buffers, z)
            grads, aux = self._d_grad(self.d_params, self.d_buffers, real, fake, noise, self.loss_params)
            self._nonfinite |= ~torch.isfinite(aux[:, 0] + aux[:, 3])
            if log_step:
                self._norms[:, 0] += self._norm(grads) / n_critic
            with torch.no_grad():
                self.d_opt.step(grads, self.active & ~self._nonfinite)
                self._stats.index_add_(1, self._d_columns, aux / n_critic)
        grads, value = self._g_grad(self.g_params, self.g_buffers, self.d_params, self.d_buffers, z, self.loss_params)
        self._nonfinite |= ~torch.isfinite(value)
        if log_step:
            self._norms[:, 1] = self._norm(grads)
        with torch.no_grad():
            self.g_opt.step(grads, self.active & ~self._nonfinite)
            self._stats[:, 1] += value
        self.step += 1

    # ---- members as single runs --------------------------------------------------------------

    def member_modules(self, i: int) -> tuple[nn.Module, nn.Module]:
        """Member i's G and D as ordinary modules (copies), for sampling, evaluation and checkpoints."""
        c = self.configs[i]
        G, D = build_architecture(c).build(self.data.sample_shape, c.z_dim, self.data.bounded)
        for module, params, buffers in ((G, self.g_params, self.g_buffers), (D, self.d_params, self.d_buffers)):
            module.load_state_dict({k: v[i] for k, v in {**params, **buffers}.items()})
            module.to(self.device)
        return G, D

    def run(self, overwrite: bool = False) -> list[MemberResult]:
        """Train every member to the end (or its divergence or stop); ``overwrite`` replaces runs
        already in the members' directories, which are otherwise refused."""
        c = self.configs[0]
        for config, out in zip(self.configs, self.run_dirs):
            if (out / rundir.CONFIG).exists():
                if not overwrite:
                    raise GanzooError(f"{out} already holds a run; pick another directory")
                clear_run_dir(out)
            out.mkdir(parents=True, exist_ok=True)
            rundir.write_json(out / rundir.CONFIG, config.to_dict())
            rundir.write_json(out / rundir.DATA, data_record(self.data))
        status = ["running"] * len(self.configs)
        stopped_at = [c.steps] * len(self.configs)
        messages = [""] * len(self.configs)
        intervals: list[tuple[int, float]] = []
        last_log, started = 0, time.perf_counter()
        while self.step < c.steps:
            self.train_step()
            last = self.step == c.steps
            call = (c.callback_every and self.step % c.callback_every == 0) or last
            if self.step % c.log_every and not last:
                if call:  # callbacks between log points (callback_every need not divide log_every)
                    paused = time.perf_counter()
                    self._call_back(status, stopped_at, messages, last)
                    started += time.perf_counter() - paused  # evaluation is not training time
                continue
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - started
            intervals.append((self.step - last_log, seconds))
            stats = (self._stats / max(self.step - last_log, 1)).tolist()
            norms = self._norms.tolist()
            nonfinite = self._nonfinite.tolist()
            for i, out in enumerate(self.run_dirs):
                if status[i] != "running":
                    continue
                if nonfinite[i]:
                    status[i], stopped_at[i] = "diverged", self.step
                    self.active[i] = False
                    continue
                record = {"step": self.step, "d_loss": stats[i][0], "g_loss": stats[i][1], "penalty": stats[i][2],
                          "d_real": stats[i][3], "d_fake": stats[i][4], "d_grad_norm": norms[i][0], "g_grad_norm": norms[i][1],
                          "images_per_second": (self.step - last_log) * c.batch_size * c.n_critic / max(seconds, 1e-9),
                          "steps_per_second": (self.step - last_log) / max(seconds, 1e-9), "population": len(self.configs)}
                rundir.append_jsonl(out / rundir.STATS, record)
            self._stats.zero_()
            self._norms.zero_()
            if call:
                self._call_back(status, stopped_at, messages, last)
            last_log, started = self.step, time.perf_counter()
            if not bool(self.active.any()):
                break
        return [self._finish(i, "completed" if s == "running" else s, stopped_at[i], messages[i], intervals)
                for i, s in enumerate(status)]

    def _call_back(self, status: list[str], stopped_at: list[int], messages: list[str], last: bool) -> None:
        for i, callbacks in enumerate(self.callbacks):
            if status[i] != "running" or not callbacks or bool(self._nonfinite[i]):
                continue
            G, D = self.member_modules(i)
            state = TrainState(self.step, last, self.configs[i], self.run_dirs[i], G, D, self.data, self.device)
            try:
                for callback in callbacks:
                    callback(state)
            except StopTraining as stop:
                status[i], stopped_at[i], messages[i] = stop.status, self.step, str(stop)
                self.active[i] = False

    def _finish(self, i: int, status: str, step: int, message: str, intervals: list[tuple[int, float]]) -> MemberResult:
        out, config = self.run_dirs[i], self.configs[i]
        G, D = self.member_modules(i)
        if status == "diverged":
            message = f"non-finite loss by step {step}"
        if status == "completed":
            rundir.save_checkpoint(out / rundir.CHECKPOINT, {"step": step, "G": G.state_dict(), "D": D.state_dict()})
            z = fixed_noise(config, self.data).to(self.device)
            G.eval()
            with torch.no_grad():
                save_samples(out / f"samples_{step:06d}.png", G(z), self.data.centers)
        rundir.write_json(out / rundir.STATUS, {"status": status, "step": step, "steps": config.steps, "message": message})
        # The population's images/s and memory, shared by its members: a member's cost is this / P.
        rundir.write_json(out / THROUGHPUT, throughput_record(intervals, config, self.device, "population-vmap",
                                                              members=len(self.configs)))
        write_stability(out)
        return MemberResult(status, step, out)
