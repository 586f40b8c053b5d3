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
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, stack_module_state, vmap

from ganzoo.core.config import SIMULTANEOUS, TrainConfig
from ganzoo.core.device import resolve_device
from ganzoo.core.errors import GanzooError, one_line
from ganzoo.data import Data
from ganzoo.data.batches import StackedBatches, check_fits
from ganzoo.training.averaging import ema_weight, recompute_batchnorm
from ganzoo.training.engine import Callback, Engine, RunResult
from ganzoo.training.step import (
    LossState,
    Statistics,
    critic_terms,
    generator_term,
    penalty_terms,
)
from ganzoo.training.trainer import load_training_data
from ganzoo.zoo.losses import (
    LOGITS,
    at_least_float32,
    functional_input_gradient,
    scored,
)
from ganzoo.zoo.outputs import probe_networks
from ganzoo.zoo.unrolling import (
    AdamState,
    d_objective,
    func_gradient,
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

# Settings that may differ between members: continuous hyperparameters and the seed. Of the loss's and
# the penalty's own fields only the numbers may: a string or a switch (the LS loss's ``on``, BEGAN's
# ``clip_k``) decides the step's control flow, which vmap cannot batch.
PER_MEMBER = ("seed", "g_adam", "d_adam", "loss_params", "penalty_params", "d_weight_clip", "g_ema_decay",
              "g_ema_start")


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fields(item: Any, numeric: bool) -> dict[str, Any]:
    """A loss's or penalty's fields that are numbers (``numeric``), or those that are not."""
    if item is None or not dataclasses.is_dataclass(item):
        return {}
    values = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    return {k: v for k, v in values.items() if _numeric(v) == numeric}


def shared_settings(config: TrainConfig) -> dict[str, Any]:
    """What must be equal across a population's members: every setting but PER_MEMBER's, and the fields
    of the loss and penalty that are not numbers."""
    shared = {k: v for k, v in config.to_dict().items() if k not in PER_MEMBER}
    shared["loss_fields"] = _fields(build_loss(config), numeric=False)
    shared["penalty_fields"] = _fields(build_penalty(config), numeric=False)
    return shared


def check_population(configs: Sequence[TrainConfig]) -> None:
    """Refuse members that cannot share one stacked step."""
    if not configs:
        raise GanzooError("a population needs at least one member")
    first = shared_settings(configs[0])
    for i, config in enumerate(configs[1:], start=1):
        other = shared_settings(config)
        differ = sorted(k for k in first if first[k] != other[k])
        if differ:
            raise GanzooError(f"member {i} differs from member 0 in {', '.join(differ)}: only "
                              f"{', '.join(PER_MEMBER)} (of the loss's and penalty's fields, the numbers) "
                              f"may differ within a population")
    if configs[0].bf16 or configs[0].fast.compile != "off":
        raise GanzooError("population training runs in float32 without torch.compile")


class StackedAdam:
    """Adam over stacked parameters: member p uses lr[p], beta1[p], beta2[p] (torch's Adam formula,
    eps 1e-8, no weight decay). Members outside ``active`` keep their parameters and moments.

    The parameters are moved into one (P, N) tensor and ``params`` is given views of it, so that an
    update is a handful of whole-population ops instead of a Python loop over tensors."""

    def __init__(self, params: dict[str, Tensor], lr: Tensor, beta1: Tensor, beta2: Tensor, eps: float = 1e-8) -> None:
        self.keys = list(params)
        self.shapes = {k: params[k].shape for k in self.keys}
        self.flat = torch.cat([params[k].flatten(1) for k in self.keys], 1)
        params.update(self.views(self.flat))
        self.lr, self.beta1, self.beta2, self.eps = lr[:, None], beta1[:, None], beta2[:, None], eps
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat)
        self.t = torch.zeros_like(self.lr)  # steps taken, per member (frozen members stop counting)

    def views(self, flat: Tensor) -> dict[str, Tensor]:
        """The parameters as views of ``flat``, a (P, N) tensor laid out as ``self.flat`` is."""
        out, offset = {}, 0
        for k in self.keys:
            n = self.shapes[k][1:].numel()
            out[k] = flat[:, offset:offset + n].view(self.shapes[k])
            offset += n
        return out

    def step(self, grads: dict[str, Tensor], active: Tensor) -> None:
        g = torch.cat([grads[k].flatten(1) for k in self.keys], 1)
        keep = active[:, None]
        self.t += keep.to(self.t.dtype)
        bias1, bias2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        m = torch.where(keep, self.beta1 * self.m + (1 - self.beta1) * g, self.m)
        v = torch.where(keep, self.beta2 * self.v + (1 - self.beta2) * g * g, self.v)
        update = (self.lr / bias1) * m / (v.sqrt() / bias2.sqrt() + self.eps)
        self.flat.sub_(torch.where(keep, update, 0.0))
        # In place: a captured step graph reads and writes these very tensors at every replay.
        self.m.copy_(m)
        self.v.copy_(v)


class Critic:
    """One member's D inside the stacked step: ``D`` through ``functional_call`` on its parameters and
    buffers (under vmap, the member's slices)."""

    def __init__(self, module: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor]) -> None:
        self.module, self.params, self.buffers = module, params, buffers

    def __call__(self, x: Tensor) -> Tensor:
        return functional_call(self.module, (self.params, self.buffers), (x,))


def member_input_gradient(D: Any, x: Tensor, on: str = LOGITS) -> Tensor:
    """dD(x)/dx inside the stacked step (what ``gradient`` is to a penalty there). For a member's
    ``Critic`` its buffers are an input of the inner transform: D's forward updates them in place
    (BatchNorm's statistics, spectral norm's vectors), as a single run's does, and torch.func refuses
    an in-place update of a tensor the transformed function captures rather than takes."""
    if isinstance(D, Critic):
        def output(y: Tensor, buffers: dict[str, Tensor]) -> Tensor:
            return scored(at_least_float32(functional_call(D.module, (D.params, buffers), (y,))), on).sum()

        return grad(output)(x, D.buffers)
    return functional_input_gradient(D, x, on)


class StackedStep:
    """P members' step, stacked: their weights as (P, ...) tensors, each network run under vmap."""

    def __init__(self, configs: Sequence[TrainConfig], data: Data, device: torch.device) -> None:
        c = configs[0]
        self.configs, self.data, self.device, self.members = list(configs), data, device, len(configs)
        if data.x is None:
            raise GanzooError("population training needs a dataset held in memory, not a streamed folder")
        self.arch = build_architecture(c)
        if (problem := self.arch.check(sample_shape=data.sample_shape)) is not None:
            raise GanzooError(f"architecture {c.arch!r} cannot train on {c.dataset!r}: {problem}")
        self.losses = [build_loss(config) for config in configs]
        self.penalties = [build_penalty(config) for config in configs]
        Gs, Ds = [], []
        for config in configs:
            torch.manual_seed(config.seed)  # the same initial weights as the member's single run
            G, D = build_networks(config, data.sample_shape, data.bounded)
            if not Gs:  # the members share an architecture: one probe
                probe_networks(self.arch, c.arch, G, D, data.sample_shape, c.z_dim, data.bounded)
            Gs.append(G.to(device))
            Ds.append(D.to(device))
        self.G_base, self.D_base = copy.deepcopy(Gs[0]).to("meta"), copy.deepcopy(Ds[0]).to("meta")
        self.g_params, self.g_buffers = stack_module_state(Gs)
        self.d_params, self.d_buffers = stack_module_state(Ds)
        self.g_params = {k: v.detach() for k, v in self.g_params.items()}
        self.d_params = {k: v.detach() for k, v in self.d_params.items()}

        # Per-member settings in the parameters' dtype: float32 in training, float64 in the tests that hold
        # members to their single runs (rounded to float32, a learning rate or beta is off by up to 3e-8).
        dtype = next(iter(self.g_params.values())).dtype

        def per_member(values: list[float]) -> Tensor:
            return torch.tensor(values, device=device, dtype=dtype)

        self.g_opt = StackedAdam(self.g_params, *(per_member([getattr(x.g_adam, a) for x in configs])
                                                  for a in ("lr", "beta1", "beta2")))
        self.d_opt = StackedAdam(self.d_params, *(per_member([getattr(x.d_adam, a) for x in configs])
                                                  for a in ("lr", "beta1", "beta2")))
        # Weight clipping per member (no bound where it is off); G's moving average where any member keeps
        # one (a member with decay 0 gets lerp weight 1, which is G's own weights exactly).
        self.clip = per_member([x.d_weight_clip or math.inf for x in configs])[:, None] if any(
            x.d_weight_clip > 0 for x in configs) else None
        # The look-ahead clips as D's update does, and unclipped members at infinity (vmap takes no None).
        self._look_ahead_clip = self.clip if self.clip is not None else per_member([math.inf] * len(configs))[:, None]
        self.g_ema = self.g_opt.flat.clone() if any(x.g_ema_decay > 0 for x in configs) else None
        self.ema_decay = per_member([x.g_ema_decay for x in configs])[:, None]
        self.ema_start = per_member([x.g_ema_start for x in configs])[:, None]
        self.ema_updates = torch.zeros_like(self.ema_decay)  # G updates each member's average has seen
        self.rngs = [torch.Generator(device).manual_seed(config.seed) for config in configs]
        check_fits(len(data), c.batch_size, c.pack)
        self.batches = StackedBatches(data.x.to(device), c.batch_samples, self.rngs)
        self.active = torch.ones(self.members, dtype=torch.bool, device=device)
        self.statistics = Statistics(self.members, device)
        self.loss_state = LossState(self.losses, device, dtype)
        self._no_noise = torch.zeros((), device=device)  # a placeholder vmap can map, made once on the device
        self._build()

    @staticmethod
    def _tensor_fields(items: Sequence[Any], device: torch.device) -> dict[str, Tensor]:
        """A loss's or penalty's numeric hyperparameters as per-member tensors, so that vmap hands each
        member its own (the others are equal across members: check_population)."""
        return {name: torch.tensor([float(getattr(m, name)) for m in items], device=device)
                for name in _fields(items[0], numeric=True)}

    def _build(self) -> None:
        G, D = self.G_base, self.D_base
        loss_type, penalty_type = type(self.losses[0]), type(self.penalties[0])
        self.loss_params = self._tensor_fields(self.losses, self.device)
        self.penalty_params = self._tensor_fields(self.penalties, self.device)
        loss_constants, penalty_constants = _fields(self.losses[0], False), _fields(self.penalties[0], False)
        has_penalty = self.penalties[0] is not None

        def generate(g_params: dict[str, Tensor], g_buffers: dict[str, Tensor], z: Tensor) -> Tensor:
            return functional_call(G, (g_params, g_buffers), (z,))

        def d_loss(d_params: dict[str, Tensor], d_buffers: dict[str, Tensor], real: Tensor, fake: Tensor,
                   noise: Tensor, penalty_noise: Tensor, loss_params: dict[str, Tensor],
                   penalty_params: dict[str, Tensor], state: dict[str, Tensor]) -> tuple[Tensor, Any]:
            critic = Critic(D, d_params, d_buffers)
            this = loss_type(**loss_params, **loss_constants)

            def penalty() -> Tensor | None:
                own = this.penalty_at(D=critic, real=real, fake=fake, noise=noise, gradient=member_input_gradient)
                if not has_penalty:
                    return own
                configured = penalty_type(**penalty_params, **penalty_constants).value(
                    D=critic, real=real, fake=fake, noise=penalty_noise, gradient=member_input_gradient)
                return penalty_terms([own, configured])

            total, aux, following = critic_terms(this, critic, real, fake, penalty, state)
            return total, (aux, following)

        unroll = self.configs[0].unroll

        def g_loss(g_params: dict[str, Tensor], g_buffers: dict[str, Tensor], d_params: dict[str, Tensor],
                   d_buffers: dict[str, Tensor], z: Tensor, real: Tensor, loss_params: dict[str, Tensor],
                   state: dict[str, Tensor], ahead: dict[str, Any]) -> tuple[Tensor, Tensor]:
            # G's forward repeats the last D step's (same weights, same z, batch statistics), with its
            # running statistics left alone: a single run updates them once per D step, not again here.
            frozen = {k: v.clone() for k, v in g_buffers.items()}
            fake = functional_call(G, (g_params, frozen), (z,))
            this = loss_type(**loss_params, **loss_constants)

            def critic_at(params: dict[str, Tensor], buffers: dict[str, Tensor]) -> Callable[[Tensor], Tensor]:
                return lambda x: functional_call(D, (params, buffers), (x,))

            if unroll:  # as a single run's look-ahead (ganzoo.zoo.unrolling), from where D's last update started
                copies = {k: v.clone() for k, v in d_buffers.items()}
                adam = AdamState(**{k: v for k, v in ahead.items() if k != "params"})
                final = look_ahead(lambda p: d_objective(this, critic_at(p, copies), real, fake), ahead["params"],
                                   adam, unroll, func_gradient)
                value = surrogate(this, critic_at(final, copies), real, fake)
            else:
                value = generator_term(this, critic_at(d_params, d_buffers), fake, real, state)
            return value, value.detach()

        self._generate = vmap(generate)
        self._d_grad = vmap(grad(d_loss, has_aux=True))
        self._g_grad = vmap(grad(g_loss, has_aux=True))

    def plan(self) -> Tensor:
        return self.batches.plan(self.configs[0].n_critic)

    def _draws(self, real: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Each member's noise, its loss's penalty noise and its configured penalty's noise, from its own
        generator, in a single run's order."""
        c = self.configs[0]
        zs, noises, penalty_noises = [], [], []
        for p, (rng, loss, penalty) in enumerate(zip(self.rngs, self.losses, self.penalties)):
            zs.append(torch.randn(c.batch_samples, c.z_dim, device=self.device, generator=rng))
            noise = loss.penalty_noise(real=real[p], generator=rng)
            noises.append(self._no_noise if noise is None else noise)
            penalty_noises.append(self._no_noise if penalty is None else penalty.noise(real=real[p], generator=rng))
        return torch.stack(zs), torch.stack(noises), torch.stack(penalty_noises)

    @staticmethod
    def _norm(grads: dict[str, Tensor]) -> Tensor:
        """Each member's gradient norm over all its parameters, shape (P,)."""
        return torch.stack([g.flatten(1).pow(2).sum(1) for g in grads.values()]).sum(0).sqrt()

    def body(self, plan: Tensor, norms: bool) -> None:
        n_critic, stats = self.configs[0].n_critic, self.statistics
        if norms:
            stats.norms.zero_()
        for i in range(n_critic):
            real = self.batches.gather(plan[i])
            z, noise, penalty_noise = self._draws(real)
            with torch.no_grad():
                fake = self._generate(self.g_params, self.g_buffers, z)
            grads, (aux, following) = self._d_grad(self.d_params, self.d_buffers, real, fake, noise, penalty_noise,
                                                   self.loss_params, self.penalty_params, self.loss_state.values)
            stats.critic(aux, n_critic)
            if norms:
                stats.norms[:, 0] += self._norm(grads) / n_critic
            with torch.no_grad():
                if i == n_critic - 1:  # the look-ahead starts where this update starts
                    ahead = self._d_before_update() if self.configs[0].unroll else {}
                    # simultaneous: G's gradient at D as this update starts, on copies of its buffers
                    d_at = ((self.d_opt.views(self.d_opt.flat.clone()), {k: v.clone() for k, v in self.d_buffers.items()})
                            if self.configs[0].update_order == SIMULTANEOUS else (self.d_params, self.d_buffers))
                self.d_opt.step(grads, self.active & ~stats.nonfinite)
                if self.clip is not None:
                    self.d_opt.flat.clamp_(-self.clip, self.clip)
            if self.loss_state.values:
                self.loss_state.advance(following, self.active & ~stats.nonfinite)
        grads, value = self._g_grad(self.g_params, self.g_buffers, *d_at, z, real,
                                    self.loss_params, self.loss_state.values, ahead)
        stats.generator(value)
        if norms:
            stats.norms[:, 1] = self._norm(grads)
        with torch.no_grad():
            active = self.active & ~stats.nonfinite
            self.g_opt.step(grads, active)
            if self.g_ema is not None:
                self.ema_updates += active[:, None]
                weight = ema_weight(self.ema_updates, self.ema_decay, self.ema_start) * active[:, None]
                self.g_ema.add_((self.g_opt.flat - self.g_ema) * weight)  # as a single run's, formula and all

    def _d_before_update(self) -> dict[str, Any]:
        """Each member's D weights and Adam as its last critic update starts from them (members first): where
        its look-ahead starts (ganzoo.zoo.unrolling.AdamState's fields and ``params``)."""
        opt = self.d_opt
        return {"params": opt.views(opt.flat.clone()), "exp_avg": opt.views(opt.m.clone()),
                "exp_avg_sq": opt.views(opt.v.clone()), "step": opt.t.clone(), "lr": opt.lr, "beta1": opt.beta1,
                "beta2": opt.beta2, "clip": self._look_ahead_clip}

    def generators(self) -> list[torch.Generator]:
        return self.rngs

    def capture_problem(self) -> str | None:
        return None

    def eager_only(self) -> None:
        pass  # StackedAdam's step is plain tensor arithmetic, the same captured or not

    def freeze(self, i: int) -> None:
        self.active[i] = False

    def _member(self, i: int, ema: bool) -> tuple[nn.Module, nn.Module]:
        c = self.configs[i]
        G, D = build_networks(c, self.data.sample_shape, self.data.bounded)
        g_params = self.g_opt.views(self.g_ema) if ema and self.g_ema is not None else self.g_params
        for module, params, buffers in ((G, g_params, self.g_buffers), (D, self.d_params, self.d_buffers)):
            module.load_state_dict({k: v[i] for k, v in {**params, **buffers}.items()})
            module.to(self.device)
        if ema:  # the average's own BatchNorm statistics, as a single run makes them
            recompute_batchnorm(G, c, self.device)
        return G, D

    def modules(self, i: int) -> tuple[nn.Module, nn.Module]:
        """Member i's G (its moving average, where it keeps one) and D as ordinary modules (copies), for
        sampling and evaluation."""
        return self._member(i, ema=self.configs[i].g_ema_decay > 0)

    def checkpoint(self, i: int, step: int) -> dict[str, Any]:
        G, D = self._member(i, ema=False)
        state = {"step": step, "G": G.state_dict(), "D": D.state_dict(), "loss_state": self.loss_state.state_dict(i)}
        if self.configs[i].g_ema_decay > 0:
            state["G_ema"] = self.modules(i)[0].state_dict()
        return state

    def load(self, state: dict[str, Any]) -> int:
        raise GanzooError("a population member cannot be resumed on its own")

    def fast_paths(self) -> list[str]:
        return ["population-vmap"]


class PopulationTrainer:
    """P members trained at once: ``StackedStep`` driven by the engine's loop."""

    def __init__(self, configs: Sequence[TrainConfig], run_dirs: Sequence[Path | str],
                 callbacks: Sequence[Sequence[Callback]] | None = None) -> None:
        """``callbacks[i]``: member i's trainer callbacks (evaluation, pruning), called at its config's
        ``callback_every`` and at the end with a ``TrainState`` of the member as an ordinary module pair;
        a ``StopTraining`` they raise stops that member alone."""
        for config in configs:
            validate(config)
        check_population(configs)
        if len(run_dirs) != len(configs):
            raise GanzooError(f"{len(configs)} members need {len(configs)} run directories, got {len(run_dirs)}")
        self.configs, self.run_dirs = list(configs), [Path(d) for d in run_dirs]
        self.device = resolve_device(configs[0].device)
        self.data = load_training_data(configs[0])
        self.body = StackedStep(configs, self.data, self.device)
        callbacks = [list(cb) for cb in callbacks] if callbacks is not None else [[] for _ in configs]
        self.engine = Engine(self.body, self.configs, self.run_dirs, self.data, callbacks, quiet=True)

    @property
    def g_opt(self) -> StackedAdam:
        return self.body.g_opt

    @property
    def d_opt(self) -> StackedAdam:
        return self.body.d_opt

    def member_modules(self, i: int) -> tuple[nn.Module, nn.Module]:
        return self.body.modules(i)

    def train_step(self) -> None:
        self.engine.advance()

    def run(self, overwrite: bool = False) -> list[RunResult]:
        """Train every member to the end (or its divergence or stop); ``overwrite`` replaces runs
        already in the members' directories, which are otherwise refused."""
        return self.engine.run(overwrite=overwrite)


def probe(config: TrainConfig) -> str | None:
    """Why ``config``'s trials cannot train as a population, found by taking one stacked step of two
    members (None: they can). A plugin network or loss can pass every check and still fail under
    vmap (torch's spectral_norm parametrisation has no batching rule for ``aten::div.out``): the
    sweep asks before it claims trials, and trains such a pair one trial at a time."""
    try:
        check_population([config])
        configs = [dataclasses.replace(config, seed=seed) for seed in (config.seed, config.seed + 1)]
        data = load_training_data(config)
        body = StackedStep(configs, data, resolve_device(config.device))
        body.body(body.plan(), norms=True)
    except Exception as e:  # whatever the plugin raises is the reason
        return one_line(e)
    return None


def timed_members(config: TrainConfig, members: int, steps: int = 30) -> dict[str, Any]:
    """The throughput record of ``members`` copies of ``config`` (seeds apart) trained together; one
    member is a single run, as a trial trained on its own is. ``steps`` are timed after the warm-up
    (and capture, on CUDA), which the record leaves out; its ``member_steps_per_second`` is the speed."""
    import tempfile

    from ganzoo.core import rundir
    from ganzoo.training.graphs import WARMUP
    from ganzoo.training.trainer import Trainer

    first = WARMUP + 2  # the first log interval: warm-up and capture, not timed
    timed = dataclasses.replace(config, steps=first + steps, log_every=first, sample_every=0, checkpoint_every=0,
                                callback_every=0, evaluation=None)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / f"m{i}" for i in range(members)]
        if members == 1:
            Trainer(timed, dirs[0], quiet=True).run()
        else:
            PopulationTrainer([dataclasses.replace(timed, seed=timed.seed + i) for i in range(members)], dirs).run()
        return rundir.read_json(dirs[0] / rundir.THROUGHPUT)
