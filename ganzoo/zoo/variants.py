"""Variants: named (loss, architecture) pairs with default hyperparameters and a search space.

Settings use the dotted keys of ``ganzoo.core.config`` (``adam.lr``, ``n_critic``, ``loss.gamma``,
``arch.width``, ``penalty.weight``, ``d_spectral_norm``). ``arch.*`` defaults belong to the variant's own architecture and are dropped when
a run swaps the architecture (``--arch``), which is how several losses are compared on one fixed
network as in Lucic et al. 2018.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import nn

from ganzoo.core.config import UPDATE_ORDERS, TrainConfig, apply_overrides, from_dict
from ganzoo.core.errors import GanzooError
from ganzoo.core.registry import Registry
from ganzoo.protocols.budget import check_unit
from ganzoo.protocols.ranges import (
    Choice,
    LogUniform,
    OnArch,
    Space,
    Uniform,
    generic,
    lucic_began,
    lucic_dragan,
    lucic_gan,
    lucic_lsgan,
    lucic_wgan,
    lucic_wgan_gp,
)
from ganzoo.zoo.architectures import ARCHITECTURES, Architecture
from ganzoo.zoo.initialisation import (
    INITIALISATIONS,
    LATENTS,
    UniformLatent,
    set_batchnorm,
)
from ganzoo.zoo.losses import LOSSES, RECONSTRUCTION_ERRORS, Loss
from ganzoo.zoo.packing import Packed, packed_shape
from ganzoo.zoo.penalties import NO_PENALTY, PENALTIES, Penalty
from ganzoo.zoo.spectral_norm import spectral_norm
from ganzoo.zoo.unrolling import unroll_problem

# compare_gan's ranges for a loss it does not define (ganzoo.protocols.ranges.generic): a variant that gives
# neither space gets these.
WIDE_SPACE: Space = generic("wide")
NARROW_SPACE: Space = generic("narrow")


@dataclasses.dataclass(frozen=True)
class Variant:
    loss: str
    arch: str
    description: str = ""
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    search_space: Space = dataclasses.field(default_factory=lambda: dict(WIDE_SPACE))
    narrow_space: Space = dataclasses.field(default_factory=lambda: dict(NARROW_SPACE))


def _check_variant(v: Variant) -> str | None:
    if not isinstance(v, Variant):
        return "must be a ganzoo.Variant"
    for kind, name, registry in (("loss", v.loss, LOSSES), ("architecture", v.arch, ARCHITECTURES)):
        if name not in registry:
            return f"its {kind} {name!r} is not registered (register it first); known: {', '.join(registry)}"
    return _settings_problem(v)


def _settings_problem(v: Variant) -> str | None:
    """Its defaults and every search dimension go through the same parsing a run's settings do
    (apply_overrides, then the loss's and architecture's own fields), so an unknown dotted key or
    a value of the wrong type is refused at registration rather than at the first run or trial."""
    if not isinstance(v.defaults, Mapping):
        return f"its defaults must be a mapping of settings, got {v.defaults!r}"
    try:
        config = _parsed(TrainConfig(variant="", dataset="", loss=v.loss, arch=v.arch), v.defaults)
        arch_problem = component(ARCHITECTURES, v.arch, config.arch_params, "arch").validate()
    except GanzooError as e:
        return f"its defaults are not valid settings: {e}"
    if arch_problem is not None:
        return f"its defaults are not valid settings: {arch_problem}"
    for field in ("search_space", "narrow_space"):
        space = getattr(v, field)
        if not isinstance(space, Mapping):
            return f"its {field} must be a mapping of settings to distributions, got {space!r}"
        for key, dim in space.items():
            where = f"its {field}[{key!r}] ({dim!r})"
            target = config
            if isinstance(dim, OnArch):  # checked on that architecture, with the variant's other defaults
                if dim.arch not in ARCHITECTURES:
                    return f"{where} names architecture {dim.arch!r}, which is not registered"
                own = {k: val for k, val in v.defaults.items() if dim.arch == v.arch or not k.startswith("arch.")}
                try:
                    target = _parsed(TrainConfig(variant="", dataset="", loss=v.loss, arch=dim.arch), own)
                except GanzooError as e:
                    return f"{where}: the variant's defaults do not hold on {dim.arch}: {e}"
                dim = dim.dimension
            if (problem := _dimension_problem(target, key, dim, where)) is not None:
                return problem
    return None


def _dimension_problem(config: TrainConfig, key: str, dist: Any, where: str) -> str | None:
    """What is wrong with one search dimension on ``config``: its range, its values or its default as settings."""
    if isinstance(dist, (LogUniform, Uniform)):
        numbers = all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (dist.low, dist.high))
        if not numbers or dist.low > dist.high or (isinstance(dist, LogUniform) and dist.low <= 0):
            positive = " with low > 0" if isinstance(dist, LogUniform) else ""
            return f"{where} needs numbers low <= high{positive}"
        values: tuple[Any, ...] = (float(dist.low), float(dist.high))  # sampled as floats
    elif isinstance(dist, Choice):
        values = tuple(dist.values)
        if not values:
            return f"{where} has no values to choose from"
        if dist.default is not None and len(values) > 1 and dist.default not in values:
            return f"{where} has a default that is not among its values"  # a fixed one's may differ
    else:
        return f"{where} must be a ganzoo.LogUniform, Uniform or Choice (or OnArch of one)"
    if dist.default is not None:
        values += (dist.default,)
    try:
        for value in values:
            _parsed(config, {key: value})
    except GanzooError as e:
        return f"{where} is not a valid setting: {e}"
    return None


def component(registry: Registry[Any], name: str, params: Mapping[str, Any], prefix: str) -> Any:
    """Registered component ``name`` (a loss, architecture or penalty) built from its settings. An
    unknown one is named as typed (``arch.width``), with the settings this component takes."""
    cls = registry.get(name)
    known = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(params) - set(known))
    if unknown:
        takes = ", ".join(f"{prefix}.{k}" for k in known) or "no settings"
        typed = ", ".join(repr(f"{prefix}.{k}") for k in unknown)
        raise GanzooError(f"unknown setting {typed}: {registry.kind} {name!r} takes {takes}")
    return from_dict(cls, params, prefix)


def build_penalty(config: TrainConfig) -> Penalty | None:
    """The configured penalty, or None for ``penalty=none`` (whose settings, if any, are ignored, so that
    a sweep can search none among penalties with a weight)."""
    if config.penalty == NO_PENALTY:
        return None
    if config.penalty not in PENALTIES:
        raise GanzooError(f"unknown penalty {config.penalty!r}; known: {', '.join([NO_PENALTY, *PENALTIES])}")
    return component(PENALTIES, config.penalty, config.penalty_params, "penalty")


def pairing_problem(config: TrainConfig) -> str | None:
    """Why the configured loss cannot train with its penalty or D, or None."""
    loss = component(LOSSES, config.loss, config.loss_params, "loss")
    arch = component(ARCHITECTURES, config.arch, config.arch_params, "arch")
    if build_penalty(config) is not None and not loss.takes_penalty:
        return (f"loss {config.loss!r} takes no penalty (it has one of its own, or D's outputs are not "
                f"scores); set penalty=none, not {config.penalty!r}")
    if config.unroll and (problem := unroll_problem(loss, build_penalty(config) is not None)) is not None:
        return problem
    if config.update_order not in UPDATE_ORDERS:
        return f"update_order must be one of {', '.join(UPDATE_ORDERS)}, got {config.update_order!r}"
    if config.unroll and config.update_order != "alternating":
        return ("unroll looks ahead from D's update to G's, which simultaneous updates do not order: use "
                "update_order=alternating with unroll")
    if config.update_order != "alternating" and config.fast.compile in ("default", "reduce-overhead"):
        return (f"update_order={config.update_order} takes no fast.compile={config.fast.compile}: G's loss is taken "
                "at a copy of D's weights through torch.func, which a compiled D does not run")
    if config.unroll and config.fast.compile in ("default", "reduce-overhead"):
        return f"unroll takes no fast.compile={config.fast.compile}: torch.compile gives no second derivatives"
    if arch.d_output() != loss.d_output:
        wanted = str(loss.d_output == RECONSTRUCTION_ERRORS).lower()
        hint = f" (arch.d_autoencoder={wanted} gives {loss.d_output})" if hasattr(arch, "d_autoencoder") else ""
        return (f"loss {config.loss!r} needs D to output {loss.d_output}, but architecture {config.arch!r} "
                f"as configured gives {arch.d_output()}{hint}")
    return None


def _parsed(config: TrainConfig, settings: Mapping[str, Any]) -> TrainConfig:
    """``config`` with ``settings`` applied, the loss's, architecture's and penalty's fields parsed and
    their pairing checked."""
    config = apply_overrides(config, settings)
    if (problem := pairing_problem(config)) is not None:
        raise GanzooError(problem)
    return config


VARIANTS: Registry[Variant] = Registry("variant", _check_variant)


def register_variant(name: str, variant: Variant) -> Variant:
    return VARIANTS.register(name, variant)


_IMAGE_ADAM = {"adam.lr": 2e-4, "adam.beta1": 0.5, "adam.beta2": 0.999}


def _lucic_spaces(ranges: Any) -> dict[str, Space]:
    """A Lucic et al. 2018 loss's wide and narrow ranges (ganzoo.protocols.ranges: compare_gan's src/params.py),
    their defaults the first trial of a sweep. A variant's ``defaults`` are for ``ganzoo train``."""
    return {"search_space": ranges("wide"), "narrow_space": ranges("narrow")}


register_variant("vanilla", Variant(
    "minimax", "mlp", "Goodfellow et al. 2014: saturating minimax loss, MLP G and D",
    defaults={**_IMAGE_ADAM}, **_lucic_spaces(lucic_gan),
))
register_variant("nsgan", Variant(
    "ns", "mlp", "Goodfellow et al. 2014: non-saturating loss, MLP G and D",
    defaults={**_IMAGE_ADAM}, **_lucic_spaces(lucic_gan),
))
register_variant("dcgan", Variant(
    "ns", "dcgan", "Radford et al. 2016: DCGAN architecture, non-saturating loss",
    defaults={**_IMAGE_ADAM, "z_dim": 100},
))
register_variant("lsgan", Variant(
    "ls", "dcgan", "Mao et al. 2017: least-squares loss on the DCGAN architecture",
    defaults={**_IMAGE_ADAM, "z_dim": 100}, **_lucic_spaces(lucic_lsgan),
))
# The spaces of the Lucic et al. 2018 losses are compare_gan's (ganzoo.protocols.ranges), defaults and all.
register_variant("wgan-gp", Variant(
    "wasserstein", "dcgan",
    "Gulrajani et al. 2017: Wasserstein critic with gradient penalty 10 (penalty=gp), 5 critic steps "
    "per G step; layer norm in the critic, since batch norm breaks the per-sample penalty",
    defaults={"adam.lr": 1e-4, "adam.beta1": 0.0, "adam.beta2": 0.9, "n_critic": 5,
              "z_dim": 100, "arch.d_norm": "layer", "penalty": "gp", "penalty.weight": 10.0},
    **_lucic_spaces(lucic_wgan_gp),
))
register_variant("wgan", Variant(
    "wasserstein", "dcgan",
    "Arjovsky et al. 2017: Wasserstein critic kept Lipschitz by clipping its weights to [-0.01, 0.01], "
    "5 critic steps per G step (Adam, as Lucic et al. 2018 train it)",
    # WGANHyperParams' defaults: lr 5e-5, beta1 0.5, disc_iters 5, clipping 0.01, D's batch norm on
    defaults={"adam.lr": 5e-5, "adam.beta1": 0.5, "adam.beta2": 0.999, "n_critic": 5, "z_dim": 100,
              "d_weight_clip": 0.01},
    **_lucic_spaces(lucic_wgan),
))
register_variant("dragan", Variant(
    "ns", "dcgan",
    "Kodali et al. 2017: non-saturating loss with the DRAGAN penalty 10 (penalty=dragan) on points "
    "around the data; layer norm in D, since batch norm breaks the per-sample penalty",
    # DRAGANHyperParams' defaults: lr 1e-4, beta1 0.5, disc_iters 1, lambda 10
    defaults={"adam.lr": 1e-4, "adam.beta1": 0.5, "adam.beta2": 0.999, "n_critic": 1, "z_dim": 100,
              "arch.d_norm": "layer", "penalty": "dragan", "penalty.weight": 10.0},
    **_lucic_spaces(lucic_dragan),
))
register_variant("began", Variant(
    "began", "infogan",
    "Berthelot et al. 2017: autoencoder D (compare_gan's, on the shared network) and the equilibrium "
    "term k (gamma 0.5, lambda_k 0.001)",
    # The paper's settings: Adam 1e-4, betas (0.5, 0.999), G and D updated in turn, gamma 0.5, lambda_k 0.001
    defaults={"adam.lr": 1e-4, "adam.beta1": 0.5, "adam.beta2": 0.999, "n_critic": 1,
              "arch.d_autoencoder": True, "arch.d_batchnorm": False, "loss.gamma": 0.5, "loss.lambda_k": 1e-3},
    **_lucic_spaces(lucic_began),
))
# The hinge and relativistic papers give settings, not ranges: these variants keep compare_gan's generic
# wide and narrow ranges (the defaults), whose wide range compare_gan also searched for Kurach et al. 2019.
register_variant("hinge", Variant(
    "hinge", "dcgan",
    "Lim & Ye 2017: hinge loss on the DCGAN architecture (Miyato et al. 2018 pair it with d_spectral_norm)",
    defaults={**_IMAGE_ADAM, "z_dim": 100},  # Miyato et al. 2018, table 1, setting C (Radford et al.'s)
))
register_variant("rsgan", Variant(
    "relativistic", "dcgan",
    "Jolicoeur-Martineau 2018: relativistic standard GAN (RSGAN) on the DCGAN architecture",
    defaults={**_IMAGE_ADAM, "z_dim": 100},  # her stable CIFAR-10 setup: lr 2e-4, betas (0.5, 0.999), n_D 1
))
register_variant("ragan", Variant(
    "relativistic-average", "dcgan",
    "Jolicoeur-Martineau 2018: relativistic average standard GAN (RaSGAN) on the DCGAN architecture",
    defaults={**_IMAGE_ADAM, "z_dim": 100},
))

# PacGAN's 2D experiments (Lin et al. 2018), fjxmlzn/PacGAN@190853e synthetic_data_experiments/
# 2DRing_GAN&PacGAN/ (the grid's the same): G's noise N(0, I_2) (config.py:33-36), batches of 100 packs
# (config.py:25), Adam with lr 1e-4 and beta1 0.8, Blocks' beta2 0.999 (config.py:23-24), the
# non-saturating loss (pacgan/bricks.py:69-72), its networks (the pacgan architecture). One deviation:
# PacGAN updates G and D at once, from one graph (ALI's ali_algorithm); ganzoo updates D, then G.
_PACGAN = {"adam.lr": 1e-4, "adam.beta1": 0.8, "adam.beta2": 0.999, "z_dim": 2, "batch_size": 100}
# PacGAN's table rows are single configurations: the narrow space fixes them (the wide one searches).
_PACGAN_FIXED: Space = {"adam.lr": Choice((1e-4,)), "adam.beta1": Choice((0.8,)), "n_critic": Choice((1,))}
register_variant("pacgan-gan", Variant(
    "ns", "pacgan", "Lin et al. 2018: their GAN baseline on the 2D mixtures (PacGAN's G and maxout D, unpacked)",
    defaults={**_PACGAN}, narrow_space=_PACGAN_FIXED,
))
for _m in (2, 3, 4):
    register_variant(f"pacgan{_m}", Variant(
        "ns", "pacgan", f"Lin et al. 2018: PacGAN{_m} on the 2D mixtures, D judging packs of {_m} samples",
        defaults={**_PACGAN, "pack": _m}, narrow_space=_PACGAN_FIXED,
    ))


# Unrolled GAN (Metz et al. 2017; ganzoo.zoo.unrolling) as poolio/unrolled_gan@67e2c7a "Unrolled GAN demo.ipynb"
# (by Metz et al.'s co-author Poole) trains it on the 2D ring: G and D of 2 hidden layers of 128 tanh units,
# orthogonal weights with gain 1.4 (generator/discriminator cells), Adam with beta1 0.5, D's lr 1e-4 and G's
# 1e-3, batches of 512, noise N(0, I_256) and 5 unrolled steps (params cell), G minimising minus the minimax
# loss at the unrolled D (g_train_op). Its data is a ring of radius 1, std 0.01 (pacgan-ring's scale), though
# its np.linspace(0, 2 pi, 8) repeats the first centre: 7 distinct modes. The wide space searches k and
# compare_gan's generic ranges, whose one adam.lr sets G's and D's alike (the demo's are 10x apart); the
# narrow one fixes the demo's settings.
_UNROLLED = {"arch.hidden": 128, "arch.depth": 2, "arch.g_activation": "tanh", "arch.d_activation": "tanh",
             "init": "orthogonal", "g_adam.lr": 1e-3, "d_adam.lr": 1e-4, "adam.beta1": 0.5, "adam.beta2": 0.999,
             "z_dim": 256, "batch_size": 512, "unroll": 5}
register_variant("unrolled-gan", Variant(
    "minimax", "mlp", "Metz et al. 2017: G's loss through 5 unrolled D updates (unroll), the authors' 2D demo's networks",
    defaults=_UNROLLED,
    search_space={**WIDE_SPACE, "unroll": Choice((1, 3, 5, 10), default=5)},
    narrow_space={"adam.beta1": Choice((0.5,)), "n_critic": Choice((1,)), "unroll": Choice((5,))},
))

# VEEGAN's 2D protocol (Srivastava et al. 2017, Table 1), from the only 2D code it published,
# akashgit/VEEGAN@97f07b7 VEEGAN_2D_RING.ipynb (VEEGAN on the grid): the network that maps noise to
# points has 2 hidden layers of 128 ReLU units from 254 + 1 standard-normal inputs (cells 4, 10: z_dim 255)
# and a linear output; D has 1 hidden layer of 128 ReLU units (cell 11); slim's initialisation, Glorot
# uniform and biases 0 (init xavier); one Adam with lr 1e-3 and beta1 0.5 (cell 19); batches of 500 (cell 4).
# Its GAN and Unrolled GAN rows have no code there: they take these networks and settings with D on x
# alone (VEEGAN's D judges (z, x) pairs), the minimax game the paper writes (O_gan), and for Unrolled GAN
# 5 unrolled steps ("as suggested in the authors' reference implementation", VEEGAN index.md).
_VEEGAN = {"arch.hidden": 128, "arch.g_depth": 2, "arch.d_depth": 1, "arch.g_activation": "relu",
           "arch.d_activation": "relu", "init": "xavier", "adam.lr": 1e-3, "adam.beta1": 0.5, "adam.beta2": 0.999,
           "z_dim": 255, "batch_size": 500}
_VEEGAN_FIXED: Space = {"adam.lr": Choice((1e-3,)), "adam.beta1": Choice((0.5,)), "n_critic": Choice((1,))}
register_variant("veegan-gan", Variant(
    "minimax", "mlp", "Srivastava et al. 2017: VEEGAN's GAN baseline on the 2D mixtures (its G, a one-layer D)",
    defaults=_VEEGAN, narrow_space=_VEEGAN_FIXED,
))
register_variant("veegan-unrolled", Variant(
    "minimax", "mlp", "Srivastava et al. 2017: VEEGAN's Unrolled GAN baseline (veegan-gan with 5 unrolled D steps)",
    defaults={**_VEEGAN, "unroll": 5},
    search_space={**WIDE_SPACE, "unroll": Choice((1, 3, 5, 10), default=5)},
    narrow_space={**_VEEGAN_FIXED, "unroll": Choice((5,))},
))


def resolve_config(
    variant: str,
    dataset: str,
    *,
    arch: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """The variant's defaults, then ``overrides``; validated."""
    v = VARIANTS.get(variant)
    arch_name = arch or v.arch
    ARCHITECTURES.get(arch_name)
    defaults = {k: val for k, val in v.defaults.items() if arch_name == v.arch or not k.startswith("arch.")}
    config = TrainConfig(variant=variant, dataset=dataset, loss=v.loss, arch=arch_name)
    config = apply_overrides(config, {**defaults, **(overrides or {})})
    validate(config)
    return config


def build_loss(config: TrainConfig) -> Loss:
    return component(LOSSES, config.loss, config.loss_params, "loss")


def build_architecture(config: TrainConfig) -> Architecture:
    arch = component(ARCHITECTURES, config.arch, config.arch_params, "arch")
    if (problem := arch.validate()) is not None:
        raise GanzooError(problem)
    return arch


def build_networks(config: TrainConfig, sample_shape: tuple[int, ...], bounded: bool) -> tuple[nn.Module, nn.Module]:
    """G and D as a run trains them: the architecture's, initialised and with BatchNorm set as the config
    says (ganzoo.zoo.initialisation), D spectrally normalised and G's noise mapped where it says so. Every path that makes a run's networks (single runs, populations, evaluation) calls this,
    after seeding, so that a seed gives the same initial weights everywhere."""
    arch = build_architecture(config)
    G, D = arch.build(sample_shape=sample_shape, z_dim=config.z_dim, bounded=bounded)
    if config.pack > 1:  # D is built for a pack, after G (a pack of 1 draws exactly what an unpacked run does)
        D = Packed(arch.build(sample_shape=packed_shape(sample_shape, config.pack), z_dim=config.z_dim, bounded=bounded)[1],
                   config.pack)
    initialise = INITIALISATIONS.get(config.init)
    for net in (G, D):  # before spectral norm, whose vectors start from the weights
        initialise(module=net)
        set_batchnorm(net, config.batchnorm_eps, config.batchnorm_momentum)
    if config.d_spectral_norm:
        D = spectral_norm(D)
    if config.z_dist == "uniform":
        G = UniformLatent(G)
    return G, D


_POSITIVE = ("steps", "batch_size", "z_dim", "n_critic", "log_every", "pack")
_NON_NEGATIVE = ("sample_every", "checkpoint_every", "callback_every", "unroll")


SEED_LIMIT = 2**32


def validate(config: TrainConfig) -> None:
    """Raise GanzooError on any setting that cannot make a sensible run."""
    VARIANTS.get(config.variant)
    check_unit(config.length_unit)
    for name in _POSITIVE:
        if getattr(config, name) <= 0:
            raise GanzooError(f"{name} must be > 0, got {getattr(config, name)}")
    for name in _NON_NEGATIVE:
        if getattr(config, name) < 0:
            raise GanzooError(f"{name} must be >= 0, got {getattr(config, name)}")
    if not 0 <= config.seed < SEED_LIMIT:  # torch takes 64 bits; data order and noise add to the seed
        raise GanzooError(f"seed must be in [0, 2**32), got {config.seed}")
    for net in ("g_adam", "d_adam"):
        adam: Any = getattr(config, net)
        if adam.lr <= 0:
            raise GanzooError(f"{net}.lr (learning rate) must be > 0, got {adam.lr}")
        for beta in ("beta1", "beta2"):
            if not 0.0 <= getattr(adam, beta) < 1.0:
                raise GanzooError(f"{net}.{beta} must be in [0, 1), got {getattr(adam, beta)}")
    if config.checkpoint_every % config.log_every:
        raise GanzooError(
            f"checkpoint_every ({config.checkpoint_every}) must be a multiple of log_every ({config.log_every})"
        )
    if config.resolution is not None and config.resolution <= 0:
        raise GanzooError(f"resolution must be > 0, got {config.resolution}")
    if config.device not in ("auto", "cpu") and not config.device.startswith("cuda"):
        raise GanzooError(f"device must be auto, cpu or cuda[:N], got {config.device!r}")
    if config.evaluation is not None:
        config.evaluation.validate()
    config.fast.validate()
    if config.d_weight_clip < 0:
        raise GanzooError(f"d_weight_clip must be >= 0 (0: off), got {config.d_weight_clip}")
    if not 0.0 <= config.g_ema_decay < 1.0:
        raise GanzooError(f"g_ema_decay must be in [0, 1) (0: off), got {config.g_ema_decay}")
    if config.g_ema_start < 0:
        raise GanzooError(f"g_ema_start must be >= 0 (G updates), got {config.g_ema_start}")
    INITIALISATIONS.get(config.init)
    if config.z_dist not in LATENTS:
        raise GanzooError(f"z_dist must be one of {', '.join(LATENTS)}, got {config.z_dist!r}")
    if config.batchnorm_eps is not None and config.batchnorm_eps <= 0:
        raise GanzooError(f"batchnorm_eps must be > 0, got {config.batchnorm_eps}")
    if config.batchnorm_momentum is not None and not 0.0 < config.batchnorm_momentum <= 1.0:
        raise GanzooError(f"batchnorm_momentum must be in (0, 1], got {config.batchnorm_momentum}")
    build_architecture(config)  # and its own validate()
    if (problem := pairing_problem(config)) is not None:
        raise GanzooError(problem)


def setting_value(config: TrainConfig, key: str) -> Any:
    """The value of a dotted setting (``adam.lr``, ``loss.gamma``, ``arch.d_batchnorm``, ``n_critic``) in
    ``config``, its component's default where the config leaves it unset (None for an unset penalty's)."""
    head, _, rest = key.partition(".")
    if head == "adam" and rest:
        return getattr(config.g_adam, rest)
    components = {"loss": build_loss, "arch": build_architecture, "penalty": build_penalty}
    if head in components and rest:
        return getattr(components[head](config), rest, None)
    node: Any = config
    for part in key.split("."):
        node = node[part] if isinstance(node, Mapping) else getattr(node, part)
    return node


def describe(name: str) -> str:
    v = VARIANTS.get(name)
    return f"{name}: loss={v.loss} arch={v.arch}" + (f" - {v.description}" if v.description else "")

