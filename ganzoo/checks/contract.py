"""The contract every registered entry meets, as plain functions (no pytest needed).

``tests/checks/test_contract.py`` parametrizes these over the registries, so a new variant, loss,
architecture or dataset is tested by registering it; ``check_plugin`` runs the same checks on the
entries one plugin registers (``ganzoo check PLUGIN``). A check returns None or raises
AssertionError saying what was expected and what it got. All run on the CPU with tiny shapes, in
seconds.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import GanzooError, innermost_frame, one_line, under
from ganzoo.core.plugins import load_plugin, plugin_key
from ganzoo.core.registry import Registry
from ganzoo.core.rundir import load_checkpoint, read_jsonl
from ganzoo.data import DATASETS, Data, load_dataset
from ganzoo.evaluate.features import EXTRACTORS
from ganzoo.training.trainer import Trainer
from ganzoo.zoo import outputs
from ganzoo.zoo.architectures import ARCHITECTURES
from ganzoo.zoo.initialisation import INITIALISATIONS
from ganzoo.zoo.losses import LOGITS, LOSSES, named_inputs
from ganzoo.zoo.outputs import check_networks
from ganzoo.zoo.packing import packed_shape
from ganzoo.zoo.penalties import PENALTIES
from ganzoo.zoo.variants import VARIANTS, build_architecture, build_loss, resolve_config

# The built-in data every variant is tried on: 2-d points and the smallest images, both offline.
SHAPES: dict[str, tuple[int, ...]] = {"ring8": (2,), "digits": (1, 8, 8)}
# The shapes an architecture is built for (those of them its check accepts).
ARCH_SHAPES: list[tuple[int, ...]] = [(2,), (1, 8, 8), (1, 28, 28), (3, 32, 32)]
# The variant and data a loss is trained with when checked on its own (MLP G and D, on points).
LOSS_PROBE = ("nsgan", "ring8")
STAT_KEYS = ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "images_per_second")
TINY = {"batch_size": 16, "steps": 2, "log_every": 1, "sample_every": 0, "checkpoint_every": 0, "device": "cpu"}

REGISTRIES: dict[str, Registry[Any]] = {
    "architecture": ARCHITECTURES, "loss": LOSSES, "penalty": PENALTIES, "dataset": DATASETS, "variant": VARIANTS,
    "feature extractor": EXTRACTORS, "initialisation": INITIALISATIONS,
}
# The switches any variant can train with, tried together: spectral normalisation of D, clipping of D's
# weights (loose enough to leave a tiny run's D free to move), a moving average of G for its samples from
# its first update on, what a protocol pins of the networks (compare_gan's initialisation, BatchNorm's
# eps and momentum, and U(-1, 1) noise), PacGAN's packing (D on pairs of samples) and PacGAN's and VEEGAN's
# simultaneous updates.
SWITCHES = {"d_spectral_norm": True, "d_weight_clip": 1.0, "g_ema_decay": 0.5, "g_ema_start": 1,
            "init": "compare_gan", "batchnorm_eps": 1e-3, "batchnorm_momentum": 1e-3, "z_dist": "uniform", "pack": 2,
            "update_order": "simultaneous"}


# ---- the checks ---------------------------------------------------------------------------------

def datasets_for(variant: str, shapes: Mapping[str, tuple[int, ...]] = SHAPES) -> list[str]:
    """The datasets (of ``shapes``: the built-in SHAPES, and a plugin's own) whose samples the variant's
    architecture accepts."""
    arch = build_architecture(resolve_config(variant, "digits"))
    return [name for name, shape in shapes.items() if arch.check(sample_shape=shape) is None]


def refusals(arch: Any, shapes: Mapping[str, tuple[int, ...]]) -> str:
    """What ``arch.check`` says of each shape it refuses, for a message: "ring8 (2,): why; ..."."""
    return "; ".join(f"{name} {shape}: {arch.check(sample_shape=shape)}" for name, shape in shapes.items())


def variant_cases() -> list[tuple[str, str]]:
    """Every (variant, dataset) pair the per-dataset checks run on."""
    return [(v, d) for v in VARIANTS for d in datasets_for(v)]


def tiny(variant: str, dataset: str, **overrides: Any) -> TrainConfig:
    """Two steps of batch 16 on the CPU, logging every step, writing nothing else but the end."""
    return resolve_config(variant, dataset, overrides={**TINY, **overrides})


def check_trains_on_some_data(variant: str, shapes: Mapping[str, tuple[int, ...]] = SHAPES) -> None:
    """The variant's architecture accepts some of ``shapes`` (the built-in data; in ``ganzoo check``, the
    plugin's own datasets too), and when none, says why it refused each."""
    arch = build_architecture(resolve_config(variant, "digits"))
    assert datasets_for(variant, shapes), (
        f"its architecture {VARIANTS.get(variant).arch!r} accepts none of the data tried: {refusals(arch, shapes)}")


def check_shapes_and_output_range(variant: str, dataset: str) -> None:
    config = tiny(variant, dataset)
    arch = build_architecture(config)
    data = load_for_check(dataset)
    shape, bounded = tuple(data.sample_shape), data.bounded
    torch.manual_seed(0)
    G, D = arch.build(sample_shape=shape, z_dim=config.z_dim, bounded=bounded)
    check_networks(G, D, shape, config.z_dim, 5, bounded)


def check_trains_one_step(config: TrainConfig, run_dir: Path) -> None:
    """A short run completes, changes both networks and logs finite statistics every step."""
    trainer = Trainer(config, run_dir, quiet=True)
    before_g = [p.detach().clone() for p in trainer.G.parameters()]
    before_d = [p.detach().clone() for p in trainer.D.parameters()]
    result = trainer.run()
    assert result.status == "completed" and result.step == config.steps, (
        f"the run ended {result.status} at step {result.step} of {config.steps}"
        + (f" ({result.message})" if result.message else "")
    )
    assert any(not torch.equal(a, b) for a, b in zip(before_g, trainer.G.parameters())), "G's weights did not change"
    assert any(not torch.equal(a, b) for a, b in zip(before_d, trainer.D.parameters())), "D's weights did not change"
    records = list(read_jsonl(Path(run_dir) / "stats.jsonl"))
    steps = [r["step"] for r in records]
    assert steps == list(range(1, config.steps + 1)), f"stats.jsonl logged steps {steps}"
    for r in records:
        for key in [*STAT_KEYS, *(k for k in r if k.startswith("loss_"))]:  # and the loss's own state
            assert torch.isfinite(torch.tensor(r[key])), f"{key} is {r[key]} at step {r['step']}"


def check_one_step_changes_both_networks(variant: str, dataset: str, run_dir: Path) -> None:
    check_trains_one_step(tiny(variant, dataset), run_dir)


def check_config_json_round_trip(variant: str, dataset: str, run_dir: Path) -> None:
    config = tiny(variant, dataset)
    Trainer(config, run_dir, quiet=True).run()
    read = TrainConfig.from_dict(json.loads((Path(run_dir) / "config.json").read_text()))
    assert read == config, f"config.json reads back as {read}, not as the config it was written from, {config}"


def check_architecture_builds(arch_name: str, shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
    """The default architecture is valid, accepts some of ARCH_SHAPES (and in ``ganzoo check``, of the
    plugin's own datasets' ``shapes``), and builds for each it accepts; when none, says why it refused each."""
    arch = ARCHITECTURES.get(arch_name)()
    assert (problem := arch.validate()) is None, f"its default hyperparameters are refused: {problem}"
    tried = {**{str(shape): shape for shape in ARCH_SHAPES}, **(shapes or {})}
    accepted = list(dict.fromkeys(shape for shape in tried.values() if arch.check(sample_shape=shape) is None))
    assert accepted, "it accepts none of the shapes tried: " + "; ".join(
        f"{shape}: {arch.check(sample_shape=shape)}" for shape in dict.fromkeys(tried.values()))
    for shape in accepted:
        torch.manual_seed(0)
        bounded = len(shape) == 3
        G, D = arch.build(sample_shape=shape, z_dim=16, bounded=bounded)
        try:
            check_networks(G, D, shape, 16, 4, bounded)
        except AssertionError as e:
            raise AssertionError(f"for samples of shape {shape}: {e}") from None


def check_initialisation(name: str) -> None:
    """On every registered architecture and shape it accepts: the initialisation keeps the networks' shapes
    and outputs (check_networks), leaves every parameter finite, and draws only from the seeded RNG (the
    same seed, the same weights)."""
    initialise = INITIALISATIONS.get(name)
    for arch_name in ARCHITECTURES.in_order():
        arch = ARCHITECTURES.get(arch_name)()
        for shape in [s for s in ARCH_SHAPES if arch.check(sample_shape=s) is None]:
            built = []
            for _ in range(2):
                torch.manual_seed(0)
                G, D = arch.build(sample_shape=shape, z_dim=16, bounded=len(shape) == 3)
                initialise(module=G)
                initialise(module=D)
                built.append((G, D))
            (G, D), (G2, D2) = built
            where = f"on {arch_name} for samples of shape {shape}"
            for net, again in ((G, G2), (D, D2)):
                for (key, value), other in zip(net.state_dict().items(), again.state_dict().values()):
                    assert torch.isfinite(value).all(), f"{where}: {key} is not finite"
                    assert torch.equal(value, other), f"{where}: {key} differs between two runs of one seed"
            try:
                check_networks(G, D, shape, 16, 4, len(shape) == 3)
            except AssertionError as e:
                raise AssertionError(f"{where}: {e}") from None


def check_loss_trains_one_step(loss: str, run_dir: Path) -> None:
    """The loss, with the settings of the first variant that uses it, trains LOSS_PROBE; a loss that
    needs D to output something other than logits (BEGAN's reconstruction errors) trains as that
    variant, whose network gives them."""
    check_trains_one_step(_loss_probe(loss), run_dir)


def check_loss_direction(loss: str) -> None:
    """D's loss is lower where D tells real from fake than where it has them backwards, and G's lower
    where D takes G's samples for real than where it does not: a loss with its inputs swapped or its
    sign flipped trains D (or G) backwards and still "completes", so the step checks cannot see it.
    On logits, telling them apart is real logits high and fake low; on BEGAN's reconstruction errors,
    real errors low and fake high. The loss is built with its probe's settings, at its initial state."""
    config = _loss_probe(loss)
    this = build_loss(config)
    state = {name: torch.tensor(float(value)) for name, value in this.initial_state().items()}
    spread = torch.linspace(-0.25, 0.25, 8)
    if this.d_output == LOGITS:
        high, low, what = 2.0 + spread, -2.0 + spread, "logits"
    else:  # reconstruction errors: low means taken for real
        high, low, what = 2.0 + spread, 0.1 + spread.abs() / 4, "reconstruction errors"
    right, wrong = (high, low) if this.d_output == LOGITS else (low, high)  # D's outputs where it judges data as real
    d_named = named_inputs(type(this), "discriminator_loss")
    d_state = {"state": state} if "state" in d_named else {}

    def d_loss(real: torch.Tensor, fake: torch.Tensor) -> float:
        return float(this.discriminator_loss(real=real, fake=fake, **d_state))

    told, backwards = d_loss(right, wrong), d_loss(wrong, right)
    assert told < backwards, (
        f"D's loss is {told:.4g} where D tells real from fake (real {what} {right.mean():+.2g}, fake "
        f"{wrong.mean():+.2g}) and {backwards:.4g} where it has them backwards; it must be lower where D is right, "
        "or D trains backwards: are its real and fake inputs swapped, or its sign?")
    g_named = named_inputs(type(this), "generator_loss")
    g_extra: dict[str, Any] = {"state": state} if "state" in g_named else {}
    if "real" in g_named:
        g_extra["real"] = torch.zeros_like(spread) if this.d_output == LOGITS else low
    fooled = float(this.generator_loss(fake=right, **g_extra))
    caught = float(this.generator_loss(fake=wrong, **g_extra))
    assert fooled < caught, (
        f"G's loss is {fooled:.4g} where D takes G's samples for real (fake {what} {right.mean():+.2g}) and "
        f"{caught:.4g} where it does not ({wrong.mean():+.2g}); it must be lower where G fools D, or G trains "
        "backwards: is its sign flipped?")


def _loss_probe(loss: str) -> TrainConfig:
    """The config a loss is checked with on its own (check_loss_trains_one_step says which)."""
    users = [name for name, v in VARIANTS.items() if v.loss == loss]
    needs = LOSSES.get(loss).d_output
    if needs == LOGITS:
        defaults = VARIANTS.get(users[0]).defaults if users else {}
        params = {k.removeprefix("loss."): val for k, val in defaults.items() if k.startswith("loss.")}
        return dataclasses.replace(tiny(*LOSS_PROBE), loss=loss, loss_params=params)
    assert users, (f"it needs D to output {needs}, which the probe network does not give: register a variant "
                   "that pairs it with an architecture whose D does")
    return tiny(users[0], datasets_for(users[0])[0])


def check_penalty_trains_one_step(penalty: str, run_dir: Path) -> None:
    """LOSS_PROBE trains with the penalty added to D's loss, and logs it finite."""
    check_trains_one_step(dataclasses.replace(tiny(*LOSS_PROBE), penalty=penalty), run_dir)


def switches_for(variant: str, dataset: str) -> dict[str, Any]:
    """SWITCHES, less packing where the variant's architecture refuses packed samples (a D made for one
    image size refuses k of them stacked on channels; a run asking for it is refused with that reason), and
    less simultaneous updates for a variant that unrolls D (whose look-ahead orders D's update before G's)."""
    config = tiny(variant, dataset)
    packed = packed_shape(tuple(load_for_check(dataset).sample_shape), SWITCHES["pack"])
    left_out = {"pack"} if build_architecture(config).check(sample_shape=packed) is not None else set()
    if config.unroll:
        left_out.add("update_order")
    return {k: v for k, v in SWITCHES.items() if k not in left_out}


def check_trains_with_the_switches(variant: str, dataset: str, run_dir: Path) -> None:
    """The variant trains with every switch (switches_for) on, and its checkpoint keeps G's moving average."""
    config = tiny(variant, dataset, **switches_for(variant, dataset))
    check_trains_one_step(config, run_dir)
    state = load_checkpoint(Path(run_dir) / "checkpoint.pt")
    assert "G_ema" in state, "checkpoint.pt holds no G_ema although g_ema_decay > 0"


def check_trains_as_a_population(variant: str, dataset: str) -> None:
    """Two members of the variant take a stacked step (vmap), as a sweep's population would."""
    from ganzoo.training.population import probe

    problem = probe(tiny(variant, dataset))
    assert problem is None, f"it cannot train as a population: {problem}"


def check_step_is_capturable(config: TrainConfig) -> None:
    """One step of the config's body (after a first, which makes the optimisers' state) calls no
    operator that syncs with the host: on CUDA such a step cannot be captured as one graph and runs
    eagerly, several times slower (``ganzoo.training.capture``). Where the variant trains as a population, the
    stacked step is checked too."""
    from ganzoo.training.capture import host_syncs
    from ganzoo.training.population import StackedStep, probe
    from ganzoo.training.trainer import ModuleStep, load_training_data

    data, cpu = load_training_data(config), torch.device("cpu")
    bodies: list[tuple[str, Any]] = [("its step", ModuleStep(config, data, cpu))]
    if probe(config) is None:
        bodies.append(("its population's step", StackedStep([config, dataclasses.replace(config, seed=config.seed + 1)],
                                                            data, cpu)))
    for what, body in bodies:
        body.body(body.plan(), norms=True)
        syncs = host_syncs(lambda: body.body(body.plan(), norms=True))
        assert not syncs, (f"{what} syncs with the host, so on CUDA it cannot be captured as one graph and runs "
                           f"eagerly: {'; '.join(map(str, syncs[:3]))}" + (f" (and {len(syncs) - 3} more)" if len(syncs) > 3 else ""))


def check_variant_is_capturable(variant: str, dataset: str) -> None:
    """The variant's step, as it is and with every switch (switches_for) on, is capturable."""
    for overrides in ({}, switches_for(variant, dataset)):
        check_step_is_capturable(tiny(variant, dataset, **overrides))


def check_loss_is_capturable(loss: str) -> None:
    check_step_is_capturable(_loss_probe(loss))


def check_penalty_is_capturable(penalty: str) -> None:
    check_step_is_capturable(dataclasses.replace(tiny(*LOSS_PROBE), penalty=penalty))


def check_extractor_evaluates(name: str) -> None:
    """The extractor scores an untrained G on the first built-in data it applies to (of SHAPES): a
    finite FID, the extractor that made it and its precision, as every result must carry them."""
    from ganzoo.core.config import EvalSpec
    from ganzoo.core.device import resolve_device
    from ganzoo.evaluate.metrics import evaluate

    extractor = EXTRACTORS.get(name)
    references = [load_dataset(dataset, "test") for dataset in SHAPES]
    fitting = [data for data in references if extractor.applies(data=data)]
    assert fitting, f"it applies to {extractor.applies_to}, which none of the built-in data ({', '.join(SHAPES)}) is"
    reference = fitting[0]
    if name == "inception":  # offline: the converted weights (ganzoo fid-weights), not torch-fidelity's download
        from ganzoo.evaluate.inception import prepare_inception_weights

        prepare_inception_weights()
    torch.manual_seed(0)
    G, _ = ARCHITECTURES.get("mlp")(hidden=16, depth=1).build(sample_shape=reference.sample_shape, z_dim=8, bounded=reference.bounded)
    spec = EvalSpec(features=name, n_samples=16, n_reference=16, batch_size=8)
    result = evaluate(G, 8, reference.name, reference, spec, resolve_device("cpu"))
    assert result["features"] == name, f"evaluated by {result['features']!r}"
    assert isinstance(result.get("fid"), float) and result["fid"] == result["fid"] and result["fid"] >= 0, (
        f"its FID is {result.get('fid')!r}")
    for key in ("extractor", "extractor_precision"):
        assert isinstance(result.get(key), str) and result[key], f"its result names no {key}"


def load_for_check(dataset: str) -> Data:
    """The train split from the default root, without downloading; a GanzooError when it is not here."""
    return load_dataset(dataset, "train", download=False)


def check_data(data: Data) -> None:
    """Beyond what every load checks (``ganzoo.data.check_data``: shapes, dtypes, finite values, range):
    some registered architecture accepts its samples."""
    shape = tuple(data.sample_shape)
    accepts = [name for name, cls in ARCHITECTURES.items() if _default_accepts(cls, shape)]
    assert accepts, f"no registered architecture accepts samples of shape {shape}"


def _default_accepts(cls: type, shape: tuple[int, ...]) -> bool:
    try:
        return cls().check(shape) is None
    except Exception:  # noqa: BLE001 -- an architecture that cannot even say is not one that accepts
        return False


def check_dataset_loads(dataset: str) -> None:
    check_data(load_for_check(dataset))


# ---- one plugin ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One contract check on one registered entry (and case), as ``check_plugin`` reports it."""

    check: str  # the check's name: "shapes_and_output_range", "loss_trains_one_step", ...
    kind: str  # the entry's registry: "variant", "loss", "penalty", "architecture", "dataset"; "plugin" for the plugin itself
    entry: str  # the registered name (the plugin spec for kind "plugin")
    case: str  # what it ran on: a built-in dataset for the per-dataset variant checks, else ""
    passed: bool
    message: str = ""  # why it failed, one line; "" when it passed
    location: str = ""  # "path/to/plugin.py:LINE": the plugin's line an exception came from, when it did
    seconds: float = 0.0

    def line(self) -> str:
        """One line for the CLI: ``ok   variant hinge-mlp on ring8: shapes_and_output_range``, or
        ``FAIL ...: MESSAGE (at my_gan.py:12)``."""
        subject = f"{self.kind} {self.entry}" + (f" on {self.case}" if self.case else "")
        if self.passed:
            return f"ok   {subject}: {self.check} ({self.seconds:.1f} s)"
        at = f" (at {self.location})" if self.location else ""
        return f"FAIL {subject}: {self.check}: {self.message}{at}"


def check_plugin(spec: str) -> list[CheckResult]:
    """Load the plugin ``spec`` (a file or a module, as ``--plugin`` takes it), then run the contract
    checks on the entries it registered, and only those: one result per check, entry and case.

    An exception inside a check is a failed result naming the plugin's line, never one that escapes.
    A plugin that cannot be loaded (including an entry its registration refuses) raises GanzooError;
    so does one already loaded in this process, whose entries cannot be told apart any more. One
    that loads but registers nothing gives a single failed ``registers_entries`` result."""
    roots = _plugin_roots(spec)
    if _already_loaded(spec, roots):
        raise GanzooError(
            f"plugin {spec!r} is already loaded in this process, so its entries cannot be told from the "
            "others; check it on its own, without --plugin or an installed entry point loading it first"
        )
    before = {kind: set(registry) for kind, registry in REGISTRIES.items()}
    try:
        load_plugin(spec)
    except GanzooError as e:
        location = _plugin_location(e, roots or _plugin_roots(spec))
        raise GanzooError(f"{e} (at {location})" if location else str(e)) from None
    roots = roots or _plugin_roots(spec)
    added = {kind: sorted(set(registry) - before[kind]) for kind, registry in REGISTRIES.items()}
    if not any(added.values()):
        return [CheckResult(
            "registers_entries", "plugin", spec, "", False,
            "it registered no variant, loss, penalty, architecture, dataset, feature extractor or initialisation; a "
            "plugin calls register_variant, register_loss, register_penalty, register_architecture, "
            "register_dataset, register_extractor or register_initialisation when it is imported",
        )]

    results: list[CheckResult] = []

    def run(check: str, kind: str, entry: str, case: str, fn: Callable[..., None], *args: Any) -> None:
        results.append(_run(check, kind, entry, case, fn, args, roots))

    # The plugin's own datasets (those that load) are tried beside the built-in ones: an architecture
    # made for them may accept none of the built-in shapes.
    own = _loadable_shapes(added["dataset"])
    for name in added["architecture"]:
        run("architecture_builds", "architecture", name, "", check_architecture_builds, name, own)
    for name in added["loss"]:
        run("loss_trains_one_step", "loss", name, "", _in_temp_dir(check_loss_trains_one_step), name)
        run("loss_direction", "loss", name, "", check_loss_direction, name)
        run("step_is_capturable", "loss", name, "", check_loss_is_capturable, name)
    for name in added["penalty"]:
        run("penalty_trains_one_step", "penalty", name, "", _in_temp_dir(check_penalty_trains_one_step), name)
        run("step_is_capturable", "penalty", name, "", check_penalty_is_capturable, name)
    for name in added["dataset"]:
        run("dataset_loads", "dataset", name, "", check_dataset_loads, name)
    for name in added["feature extractor"]:
        run("extractor_evaluates", "feature extractor", name, "", check_extractor_evaluates, name)
    for name in added["initialisation"]:
        run("initialisation_keeps_the_networks", "initialisation", name, "", check_initialisation, name)
    for name in added["variant"]:
        run("trains_on_some_data", "variant", name, "", check_trains_on_some_data, name, {**SHAPES, **own})
        try:
            cases = datasets_for(name, {**SHAPES, **own})
        except Exception:  # noqa: BLE001 -- reported by the check above
            cases = []
        for dataset in cases:
            run("shapes_and_output_range", "variant", name, dataset, check_shapes_and_output_range, name, dataset)
            run("one_step_changes_both_networks", "variant", name, dataset,
                _in_temp_dir(check_one_step_changes_both_networks), name, dataset)
            run("config_json_round_trip", "variant", name, dataset,
                _in_temp_dir(check_config_json_round_trip), name, dataset)
            run("trains_with_the_switches", "variant", name, dataset,
                _in_temp_dir(check_trains_with_the_switches), name, dataset)
            run("step_is_capturable", "variant", name, dataset, check_variant_is_capturable, name, dataset)
    return results


def _loadable_shapes(datasets: list[str]) -> dict[str, tuple[int, ...]]:
    """Each of ``datasets`` that loads without a download, by its samples' shape (one that does not
    load fails its dataset_loads check, which says why)."""
    shapes = {}
    for name in datasets:
        try:
            shapes[name] = tuple(load_for_check(name).sample_shape)
        except Exception:  # noqa: BLE001 -- reported by dataset_loads
            continue
    return shapes


def _in_temp_dir(check: Callable[..., None]) -> Callable[..., None]:
    """``check`` with a fresh run directory as its last argument, removed afterwards."""

    def run(*args: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as run_dir:
            check(*args, Path(run_dir))

    return run


def _run(check: str, kind: str, entry: str, case: str, fn: Callable[..., None], args: tuple[Any, ...],
         roots: list[Path]) -> CheckResult:
    start = time.perf_counter()
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 -- a plugin is user code: any failure is a failed check
        # The contract's own assertions and ganzoo's GanzooErrors are sentences already; anything
        # else (a crash in the plugin, or in ganzoo on what the plugin gave it) keeps its type.
        own = isinstance(e, GanzooError) or (isinstance(e, AssertionError) and _raised_in(e, CHECK_FILES))
        message = one_line(e) if own else f"{type(e).__name__}: {one_line(e)}".rstrip(": ")
        return CheckResult(check, kind, entry, case, False, message or type(e).__name__,
                           _plugin_location(e, roots), time.perf_counter() - start)
    return CheckResult(check, kind, entry, case, True, seconds=time.perf_counter() - start)


def _raised_in(exc: BaseException, paths: tuple[Path, ...]) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve() in paths


# Where the contract's own assertions are raised: this module and ganzoo.zoo.outputs (the networks' shapes).
CHECK_FILES = (Path(__file__).resolve(), Path(outputs.__file__).resolve())


def _plugin_roots(spec: str) -> list[Path]:
    """The plugin's code: its file, or a module's file, or a package's folder."""
    if spec.endswith(".py") or "/" in spec or "\\" in spec:  # a file, as load_plugin tells them apart
        return [Path(plugin_key(spec))]
    module = sys.modules.get(spec)
    file = getattr(module, "__file__", None)
    if file is None:
        try:
            found = importlib.util.find_spec(spec)
        except (ImportError, ValueError):
            return []
        file = found.origin if found is not None else None
    if not file or not os.path.isfile(file):
        return []
    path = Path(file).resolve()
    return [path.parent if path.name == "__init__.py" else path]


def _already_loaded(spec: str, roots: list[Path]) -> bool:
    """Imported already (by --plugin, an entry point or an import): loading it again registers nothing."""
    if spec in sys.modules:
        return True
    files = {str(r) for r in roots if r.suffix == ".py"}
    return bool(files) and any(getattr(m, "__file__", None) in files for m in list(sys.modules.values()))


def _plugin_location(exc: BaseException, roots: list[Path]) -> str:
    """``file:line`` of the innermost frame in the plugin's code, in ``exc`` or what it was raised
    from (load_plugin re-raises a plugin's error as a GanzooError); "" when none is the plugin's."""
    frame = innermost_frame(exc, lambda path: under(path, roots)) if roots else None
    return f"{_shown(frame.filename)}:{frame.lineno}" if frame is not None else ""


def _shown(filename: str) -> str:
    """A path relative to the working directory when it is under it, else absolute."""
    path = Path(filename).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
