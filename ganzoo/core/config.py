"""Run configuration: frozen dataclasses, strict parsing, dotted-key overrides.

A run is fully described by one ``TrainConfig``; it is written to ``config.json`` in the run
directory and read back by ``--resume`` and by reports. Unknown keys and wrong types are errors,
never silent fallbacks to a default.

Override keys are dotted paths into the config: ``n_critic``, ``g_adam.lr``, ``loss.gamma``
(a field of the loss), ``arch.width`` (a field of the architecture), ``penalty.weight`` (a field of
the penalty), and the shorthand ``adam.lr`` / ``adam.beta1`` / ``adam.beta2`` for both networks.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from ganzoo.core.errors import GanzooError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Adam:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


METRIC_NAMES = ("fid", "kid", "prc", "isc")  # what --metrics takes; prc: precision and recall, density and coverage
# Extraction precision (ganzoo.evaluate.extraction): "auto", or an arithmetic (float32 strict; tf32 and bf16
# autocast need CUDA; statistics stay float64 either way) followed by "+channels_last" and/or "+compile".
PRECISION_ARITHMETIC = ("float32", "tf32", "bf16")
PRECISION_OPTIONS = ("channels_last", "compile")


def precision_problem(name: str) -> str | None:
    """What is wrong with an extraction precision's name, or None."""
    if name == "auto":
        return None
    arithmetic, *options = name.split("+")
    order = [o for o in PRECISION_OPTIONS if o in options]
    if arithmetic not in PRECISION_ARITHMETIC or options != order:
        return (f"evaluation precision must be auto or one of {', '.join(PRECISION_ARITHMETIC)} followed by "
                f"{' and/or '.join('+' + o for o in PRECISION_OPTIONS)} in that order, got {name!r}")
    return None


# How a mixture's mode counts as covered (ganzoo.evaluate.modes): one high-quality sample at it (VEEGAN's
# and PacGAN's rule), or 1% of all samples.
MODE_RULES = ("one-sample", "one-percent")
ALTERNATING, SIMULTANEOUS = "alternating", "simultaneous"  # TrainConfig.update_order
UPDATE_ORDERS = (ALTERNATING, SIMULTANEOUS)
# The units a run's length is counted in (ganzoo.protocols.budget): G updates (engine steps) or D updates.
G_UPDATES, D_UPDATES = "g_updates", "d_updates"
BUDGET_UNITS = (G_UPDATES, D_UPDATES)
UNIT_NAMES = {G_UPDATES: "G updates", D_UPDATES: "D updates"}


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    # A registered feature extractor (ganzoo.evaluate.features), or auto: the first registered that applies to
    # the data (points on 2D mixtures, domain on labelled images, inception on other images).
    features: str = "auto"
    n_samples: int = 10_000
    n_reference: int | None = None  # the first N of the reference split; None: all of it
    metrics: tuple[str, ...] = ("fid",)
    split: str = "test"
    seed: int = 0
    batch_size: int = 250
    # How the extractor runs (ganzoo.evaluate.extraction): "auto" is strict float32 on a CPU and, on CUDA, the
    # fastest path whose FID stays within 1e-3 relative of strict float32's; see precision_problem.
    precision: str = "auto"
    # How a mixture's mode counts as covered (ganzoo.evaluate.modes): one of MODE_RULES.
    mode_rule: str = "one-sample"

    def validate(self) -> None:
        """What is wrong with the settings themselves. Whether ``features`` names a registered extractor is
        the extractor registry's to say (``ganzoo.evaluate.features.check_spec``): configuration sits below it."""
        if not isinstance(self.features, str) or not self.features:
            raise GanzooError(f"features must name a feature extractor or auto, got {self.features!r}")
        unknown = sorted(set(self.metrics) - set(METRIC_NAMES))
        if unknown or not self.metrics:
            raise GanzooError(f"metrics must be a non-empty subset of {', '.join(METRIC_NAMES)}, got {','.join(self.metrics)}")
        if self.n_samples < 2:
            raise GanzooError(f"n_samples must be at least 2, got {self.n_samples}")
        if (problem := precision_problem(self.precision)) is not None:
            raise GanzooError(problem)
        if self.n_reference is not None and self.n_reference < 2:
            raise GanzooError(f"n_reference must be at least 2, got {self.n_reference}")
        if self.batch_size < 1:
            raise GanzooError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.mode_rule not in MODE_RULES:
            raise GanzooError(f"mode_rule must be one of {', '.join(MODE_RULES)}, got {self.mode_rule!r}")


# The evaluation defaults, one table (torch-fidelity's defaults.py habit): a final evaluation (ganzoo
# eval) scores the protocol's 10,000 samples (Lucic et al. 2018); evaluations during training and in
# sweeps score 2,000, cheaper and comparable among themselves only. Every other default is EvalSpec's.
EVALUATION_DEFAULTS: dict[str, EvalSpec] = {
    "final": EvalSpec(),
    "during training": EvalSpec(n_samples=2_000),
}


COMPILE_MODES = ("off", "auto", "default", "reduce-overhead")


@dataclasses.dataclass(frozen=True)
class FastPaths:
    """Speed-ups of the training step, each of which can be switched off (``--set fast.X=...``).

    Every path computes the same step; tests compare each with the plain path for the same seed.
    """

    fused_adam: bool = True  # one fused kernel per optimiser step instead of a loop over tensors
    channels_last: str = "auto"  # "auto": convolutional nets on CUDA; "on" | "off"
    # torch.compile of G and D; "reduce-overhead" records CUDA graphs of the fixed-shape step.
    # "auto": reduce-overhead on CUDA, off on CPU (compilation costs more than short CPU runs gain).
    compile: str = "off"
    # The whole step captured as one CUDA graph and replayed ("auto": on CUDA wherever capture works;
    # the step falls back to eager, saying why in throughput.json, where it does not).
    cuda_graph: str = "auto"
    # TF32 matmuls and convolutions on CUDA ("auto": on; "off": strict float32). No effect on a CPU.
    tf32: str = "auto"

    def validate(self) -> None:
        for name in ("channels_last", "cuda_graph", "tf32"):
            if getattr(self, name) not in ("auto", "on", "off"):
                raise GanzooError(f"fast.{name} must be auto, on or off, got {getattr(self, name)!r}")
        if self.compile not in COMPILE_MODES:
            raise GanzooError(f"fast.compile must be one of {', '.join(COMPILE_MODES)}, got {self.compile!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    variant: str
    dataset: str
    loss: str
    arch: str
    loss_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    arch_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    g_adam: Adam = Adam()
    d_adam: Adam = Adam()
    n_critic: int = 1  # D updates per G update
    z_dim: int = 64
    batch_size: int = 64
    steps: int = 2000  # G updates (engine steps, each n_critic D updates and one G update), whatever length_unit
    # The unit this run's length is stated in: what ``ganzoo train --steps`` and ``--eval-every`` counted
    # when it began, what a ``--resume --steps N`` counts, and what its outputs state. Runs made before
    # ganzoo 0.3.1 counted G updates (the default, so their config.json reads as they ran).
    length_unit: str = G_UPDATES
    seed: int = 0
    device: str = "auto"  # "auto" = CUDA when available, else CPU
    bf16: bool = False  # bf16 autocast, CUDA only
    fast: FastPaths = FastPaths()
    resolution: int | None = None  # resize image data; None keeps the dataset's own
    data_root: str | None = None
    log_every: int = 100
    sample_every: int = 500  # 0: only at the end
    checkpoint_every: int = 1000  # 0: only at the end; must be a multiple of log_every
    callback_every: int = 0  # evaluation/pruning hook period; 0: only at the end
    evaluation: EvalSpec | None = None  # metrics during training (ganzoo train --eval-every)
    plugins: tuple[str, ...] = ()
    tensorboard: str | None = None  # a folder for the run's TensorBoard event files; None: none written
    # Regularisers that apply to any variant, each a setting a sweep can search (Kurach et al. 2019):
    penalty: str = "none"  # a registered penalty added to D's loss (gp, dragan), where the loss takes one
    penalty_params: dict[str, Any] = dataclasses.field(default_factory=dict)  # its fields: penalty.weight
    d_spectral_norm: bool = False  # every weight layer of D spectrally normalised (Miyato et al. 2018)
    # PacGAN's packing (Lin et al. 2018): D judges packs of ``pack`` samples, real with real and fake with
    # fake, concatenated along the first axis of a sample (the coordinates, or the channels); batch_size
    # counts packs, so a D update sees batch_size x pack samples of each. 1: D judges samples one by one.
    pack: int = 1
    # Unrolled GAN (Metz et al. 2017): G's loss is taken at D after ``unroll`` look-ahead Adam updates of D
    # on the step's batch, differentiated through them (ganzoo.zoo.unrolling). 0: at D as it is, the plain GAN.
    unroll: int = 0
    # The order of a step's updates: "alternating", G's gradient taken at D after its update (ganzoo's, and
    # compare_gan's); "simultaneous", G's gradient taken at D as the step's last D update started, both from one
    # forward's parameters, as PacGAN's and VEEGAN's code update both networks in one session run (a training
    # scheme in its own right: Mescheder et al. 2017 compare the two).
    update_order: str = "alternating"
    d_weight_clip: float = 0.0  # D's parameters clipped to [-c, c] after each update (Arjovsky et al. 2017); 0: off
    # Samples and evaluations use an exponential moving average of G's weights with this decay
    # (Yazici et al. 2019); 0: G itself. It starts after g_ema_start G updates (until then it is G) and
    # is bias-corrected from there, so no weight of the random initialisation stays in it; the averaged
    # G's BatchNorm statistics are recomputed before it is evaluated (ganzoo.training.averaging).
    g_ema_decay: float = 0.0
    g_ema_start: int = 0
    # How the networks start and what G's noise is (ganzoo.zoo.initialisation); Lucic et al. 2018 pin all of them.
    init: str = "default"  # a registered initialisation: default (the architecture's own), compare_gan, xavier, orthogonal
    batchnorm_eps: float | None = None  # every BatchNorm's eps (None: as built, torch's 1e-5)
    batchnorm_momentum: float | None = None  # every BatchNorm's momentum (None: torch's 0.1; TF decay 0.999 = 0.001)
    z_dist: str = "normal"  # G's noise: normal N(0, 1) or uniform U(-1, 1)

    @property
    def batch_samples(self) -> int:
        """Samples of each side (real, fake) one D update draws: batch_size packs of ``pack``."""
        return self.batch_size * self.pack

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return from_dict(cls, data)


def to_dict(obj: Any) -> dict[str, Any]:
    out = dataclasses.asdict(obj)
    # JSON has no tuples; from_dict turns lists back into tuples where the field asks for one.
    return json.loads(json.dumps(out))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types, once per class: resolving them evaluates every annotation's
    string, and configs are parsed thousands of times (each registered variant's settings are checked)."""
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, refusing unknown keys and values of the wrong type."""
    if not isinstance(data, Mapping):
        raise GanzooError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = _type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise GanzooError(
            f"unknown {where + ' ' if where else ''}key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(fields)) or 'none'}"
        )
    missing = [
        n for n, f in fields.items()
        if n not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise GanzooError(f"{where or cls.__name__}: missing key(s) {', '.join(missing)}")
    values = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except GanzooError as e:
                errors.append(str(e))
        raise GanzooError(errors[0])
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise GanzooError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], where) for v in value)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise GanzooError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise GanzooError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GanzooError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GanzooError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise GanzooError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise GanzooError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported field type {hint!r}")  # a bug in ganzoo, not user input


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, true/false, null, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    data = config.to_dict()
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head == "adam" and rest:
            targets = [f"g_adam.{rest}", f"d_adam.{rest}"]
        elif head == "loss" and rest:
            targets = [f"loss_params.{rest}"]
        elif head == "arch" and rest:
            targets = [f"arch_params.{rest}"]
        elif head == "penalty" and rest:
            targets = [f"penalty_params.{rest}"]
        else:
            targets = [key]
        for target in targets:
            _set_dotted(data, target, value, key)
    return TrainConfig.from_dict(data)


# Settings of a registered component: their keys are the component's fields, checked when it is built
# (ganzoo.zoo.variants), since only the registry knows them.
_COMPONENT_PARAMS = ("loss_params", "arch_params", "penalty_params")


def _set_dotted(data: dict[str, Any], path: str, value: Any, key: str) -> None:
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            raise GanzooError(f"unknown setting {key!r}")
        node = child
    if leaf not in node and (node is data or parents[0] not in _COMPONENT_PARAMS):
        # Named as the user typed it: adam.lrr offers adam.lr, not g_adam's keys.
        prefix = key.rpartition(".")[0]
        known = ", ".join(f"{prefix}.{k}" if prefix else k for k in sorted(node))
        raise GanzooError(f"unknown setting {key!r}; known: {known}")
    node[leaf] = value
