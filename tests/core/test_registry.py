from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
from support.paths import README
from torch import nn

from ganzoo import (
    ARCHITECTURES,
    DATASETS,
    LOSSES,
    PENALTIES,
    VARIANTS,
    Architecture,
    Choice,
    GanzooError,
    LogUniform,
    Loss,
    OnArch,
    Penalty,
    Uniform,
    Variant,
)
from ganzoo.core.registry import Registry, signature_problem


def test_register_and_get():
    r: Registry[int] = Registry("thing")
    r.register("a", 1)
    assert r.get("a") == 1 and "a" in r and list(r) == ["a"]


@pytest.mark.parametrize("name", ["", "has space", "tab\t", "x:y", 3])
def test_bad_names_refused(name):
    with pytest.raises(GanzooError, match="name must be"):
        Registry("thing").register(name, 1)  # type: ignore[arg-type]


def test_duplicate_refused():
    r: Registry[int] = Registry("thing")
    r.register("a", 1)
    with pytest.raises(GanzooError, match="already registered"):
        r.register("a", 2)


def test_miss_lists_known_names():
    r: Registry[int] = Registry("thing")
    r.register("beta", 1)
    r.register("alpha", 2)
    with pytest.raises(GanzooError, match=r"unknown thing 'gamma'; known: alpha, beta"):
        r.get("gamma")


def test_loss_must_be_a_dataclass_subclass():
    class NotADataclass(Loss):
        pass

    with pytest.raises(GanzooError, match="@dataclass"):
        LOSSES.register("not-a-dataclass", NotADataclass)
    with pytest.raises(GanzooError, match="subclass"):
        LOSSES.register("not-a-loss", dataclasses.dataclass(type("X", (), {})))


def test_variant_needs_registered_components():
    with pytest.raises(GanzooError, match="loss 'nope' is not registered"):
        VARIANTS.register("broken", Variant(loss="nope", arch="mlp"))
    with pytest.raises(GanzooError, match="architecture 'nope' is not registered"):
        VARIANTS.register("broken", Variant(loss="ns", arch="nope"))
    assert "broken" not in VARIANTS


def test_builtin_variants_present():
    # Lucic et al. 2018's seven losses, and the hinge and relativistic ones
    assert {"vanilla", "nsgan", "dcgan", "lsgan", "wgan", "wgan-gp", "dragan", "began", "hinge", "rsgan",
            "ragan"} <= set(VARIANTS)
    assert VARIANTS.get("vanilla").loss == "minimax" and VARIANTS.get("nsgan").loss == "ns"
    assert {"gp", "dragan"} <= set(PENALTIES)


# ---- registration refuses what ganzoo could not call ---------------------------------------------

@dataclasses.dataclass(frozen=True)
class _GoodLoss(Loss):
    def discriminator_loss(self, real, fake):
        return (fake - real).mean()

    def generator_loss(self, fake):
        return -fake.mean()


@dataclasses.dataclass(frozen=True)
class _GoodArch(Architecture):
    def build(self, sample_shape, z_dim, bounded):
        return nn.Linear(z_dim, 2), nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))


def _loss(**methods):
    return dataclasses.dataclass(frozen=True)(type("Plugin", (_GoodLoss,), methods))


def _arch(**methods):
    return dataclasses.dataclass(frozen=True)(type("Plugin", (_GoodArch,), methods))


@dataclasses.dataclass(frozen=True)
class _GoodPenalty(Penalty):
    def noise(self, real, generator):
        return real

    def value(self, D, real, fake, noise, gradient):
        return D(real).mean()


def _penalty(**methods):
    return dataclasses.dataclass(frozen=True)(type("Plugin", (_GoodPenalty,), methods))


def _loader(request, split):
    raise AssertionError("never called")


REFUSED = [
    ("loss", LOSSES, _loss(generator_loss=lambda self, fake, reel: fake.mean()),  # a misspelt optional input
     "cannot register loss 'test-refused': generator_loss(self, fake, reel) must accept (fake) by name and may also name "
     "real, state; see ganzoo.Loss"),
    ("loss", LOSSES, _loss(discriminator_loss=lambda self, real, fake, k: real.mean()),
     "discriminator_loss(self, real, fake, k) must accept (real, fake) by name and may also name state"),
    # inputs arrive by name: a method that takes them by position only cannot be told which is which
    ("loss", LOSSES, _loss(discriminator_loss=lambda self, *logits: logits[0].mean()),
     "discriminator_loss(self, *logits) must accept (real, fake) by name and may also name state"),
    ("loss", LOSSES, _loss(discriminator_loss=lambda self, d_real, d_fake: d_real.mean()),
     "discriminator_loss(self, d_real, d_fake) must accept (real, fake) by name"),
    ("loss", LOSSES, _loss(next_state=lambda self, state: state), "next_state(self, state) must accept (state, real, fake) by name"),
    ("penalty", PENALTIES, _penalty(value=lambda self, D, real, fake, noise: None),
     "cannot register penalty 'test-refused': value(self, D, real, fake, noise) must accept "
     "(D, real, fake, noise, gradient) by name; see ganzoo.Penalty"),
    ("penalty", PENALTIES, dataclasses.dataclass(frozen=True)(type("Plugin", (Penalty,), {"noise": _GoodPenalty.noise})),
     "must define value(self, D, real, fake, noise, gradient); see ganzoo.Penalty"),
    ("loss", LOSSES, _loss(discriminator_loss=lambda self, real: real.mean()),
     "discriminator_loss(self, real) must accept (real, fake) by name and may also name state; see ganzoo.Loss"),
    ("loss", LOSSES, _loss(generator_loss=lambda fake: fake.mean()),
     "generator_loss(fake) must accept (fake) by name and may also name real, state (it lacks self; a method's first "
     "parameter is self)"),
    ("loss", LOSSES, _loss(generator_loss=lambda self, fake, *, scale: fake.mean()),
     "generator_loss(self, fake, *, scale) must accept (fake) by name"),
    ("loss", LOSSES, _loss(penalty_noise=None), "penalty_noise must be a method taking (real, generator), got None"),
    ("loss", LOSSES, dataclasses.dataclass(frozen=True)(type("Plugin", (Loss,), {  # a misspelt method
        "discriminator_loss": _GoodLoss.discriminator_loss, "generator_los": _GoodLoss.generator_loss})),
     "must define generator_loss(self, fake); see ganzoo.Loss"),
    ("architecture", ARCHITECTURES, _arch(build=lambda self, sample_shape, z_dim: None),
     "cannot register architecture 'test-refused': build(self, sample_shape, z_dim) must accept "
     "(sample_shape, z_dim, bounded) by name; see ganzoo.Architecture"),
    ("architecture", ARCHITECTURES, _arch(check=lambda self: None), "check(self) must accept (sample_shape) by name"),
    ("architecture", ARCHITECTURES, _arch(validate=lambda self, strict: None), "validate(self, strict) must accept () by name"),
    ("architecture", ARCHITECTURES, dataclasses.dataclass(frozen=True)(type("Plugin", (Architecture,), {})),
     "must define build(self, sample_shape, z_dim, bounded); see ganzoo.Architecture"),
    ("dataset", DATASETS, _loader,
     "cannot register dataset 'test-refused': loader _loader(request, split) must accept (request) by name; see ganzoo.DataRequest"),
    ("dataset", DATASETS, lambda: None, "loader <lambda>() must accept (request) by name"),
    ("dataset", DATASETS, "not a loader", "loader must be a callable taking (request), got 'not a loader'"),
    ("variant", VARIANTS, Variant("ns", "mlp", defaults={"adam.lrr": 1e-3}),
     "cannot register variant 'test-refused': its defaults are not valid settings: unknown setting 'adam.lrr'; "
     "known: adam.beta1, adam.beta2, adam.lr"),
    ("variant", VARIANTS, Variant("ns", "mlp", defaults={"arch.widht": 32}),
     "its defaults are not valid settings: unknown setting 'arch.widht': architecture 'mlp' takes arch.d_activation, "
     "arch.d_depth, arch.d_hidden, arch.depth, arch.g_activation, arch.g_depth, arch.g_hidden, arch.hidden"),
    ("variant", VARIANTS, Variant("ns", "dcgan", defaults={"arch.d_norm": "group"}),
     "its defaults are not valid settings: dcgan d_norm must be one of batch, layer, none, got 'group'"),
    ("variant", VARIANTS, Variant("ns", "mlp", search_space={"loss.gp_weight": Uniform(1.0, 10.0)}),
     "its search_space['loss.gp_weight'] (Uniform(low=1.0, high=10.0, default=None)) is not a valid setting: "
     "unknown setting 'loss.gp_weight': loss 'ns' takes no settings"),
    ("variant", VARIANTS, Variant("ns", "mlp", search_space={"z_dim": Uniform(16, 128)}),
     "is not a valid setting: z_dim: expected an integer, got 16.0"),
    ("variant", VARIANTS, Variant("ns", "mlp", narrow_space={"n_critic": Choice((1, "5"))}),
     "its narrow_space['n_critic'] (Choice(values=(1, '5'), default=None)) is not a valid setting: n_critic: expected "
     "an integer, got '5'"),
    ("variant", VARIANTS, Variant("ns", "mlp", search_space={"adam.lr": (1e-4, 1e-3)}),
     "must be a ganzoo.LogUniform, Uniform or Choice (or OnArch of one)"),
    # a default is a setting too, and a searched choice's must be one of its values
    ("variant", VARIANTS, Variant("ns", "mlp", search_space={"n_critic": Choice((1, 5), default=3)}),
     "has a default that is not among its values"),
    ("variant", VARIANTS, Variant("ns", "mlp", search_space={"adam.lr": LogUniform(1e-4, 1e-3, default="fast")}),
     "is not a valid setting: g_adam.lr: expected a number, got 'fast'"),
    # a dimension for one architecture is checked on it, and names a registered one
    ("variant", VARIANTS, Variant("ns", "mlp", search_space={"arch.d_batchnorm": OnArch("infogan", Choice((1, 2)))}),
     "is not a valid setting: arch.d_batchnorm: expected true or false, got 1"),
    ("variant", VARIANTS, Variant("ns", "mlp", search_space={"arch.x": OnArch("nonesuch", Choice((1,)))}),
     "names architecture 'nonesuch', which is not registered"),
    ("variant", VARIANTS, Variant("ns", "mlp", search_space={"adam.lr": Uniform(1e-3, 1e-4)}),
     "needs numbers low <= high"),
]


@pytest.mark.parametrize("kind, registry, item, message", REFUSED,
                         ids=[f"{kind}-{i}" for i, (kind, *_) in enumerate(REFUSED)])
def test_wrong_signatures_and_settings_are_refused_at_registration(kind, registry, item, message):
    with pytest.raises(GanzooError) as refused:
        registry.register("test-refused", item)
    text = str(refused.value)
    assert message in re.sub(r" \(defined at [^)]*\)", "", text) and "\n" not in text
    assert text.startswith(f"cannot register {kind} 'test-refused': ")
    assert "test-refused" not in registry


def _optional_extras_loader(request, cache=None, *more):
    raise AssertionError("never called")


class _CallableLoader:
    def __call__(self, request):
        raise AssertionError("never called")


ACCEPTED = [
    (LOSSES, _loss(generator_loss=lambda self, fake, scale=1.0: fake.mean() * scale)),
    (LOSSES, _loss(discriminator_loss=lambda self, fake, real, **more: (real - fake).mean())),  # any order
    (LOSSES, _loss(generator_loss=staticmethod(lambda fake: fake.mean()))),
    (LOSSES, _loss(generator_loss=lambda self, fake, *, detach=False: fake.mean())),
    # the optional inputs ganzoo passes to a method that names them: relativistic and stateful losses
    (LOSSES, _loss(generator_loss=lambda self, fake, real: (fake - real).mean())),
    (LOSSES, _loss(discriminator_loss=lambda self, real, fake, state: (fake - state["k"] * real).mean(),
                   generator_loss=lambda self, fake, real, state: fake.mean())),
    (PENALTIES, _penalty(noise=lambda self, real, generator, scale=1.0: real)),
    (ARCHITECTURES, _arch(build=lambda self, sample_shape, z_dim, bounded=True, extra=None: None)),
    (ARCHITECTURES, _arch(check=lambda self, sample_shape, *rest: None)),
    (DATASETS, _optional_extras_loader),
    (DATASETS, _CallableLoader()),
    (VARIANTS, Variant("ns", "dcgan", defaults={"arch.width": 32, "g_adam.lr": 1e-3},
                       search_space={"arch.d_norm": Choice(("batch", "layer")), "z_dim": Choice((32, 64))})),
]


@pytest.mark.parametrize("registry, item", ACCEPTED, ids=[f"{r.kind}-{i}" for i, (r, _) in enumerate(ACCEPTED)])
def test_extra_optional_parameters_and_star_args_are_accepted(registry, item, registered):
    registered(registry, "test-accepted", item)
    assert registry.get("test-accepted") is item


def test_builtin_entries_pass_the_registration_checks(registered):
    for registry in (LOSSES, PENALTIES, ARCHITECTURES, DATASETS, VARIANTS):
        for name, item in registry.items():
            registered(registry, f"test-copy-of-{name}", item)


def test_readme_plugin_example_still_registers(registered):
    text = README.read_text()
    code = re.search(r"<!-- plugin-example -->\s*```python\n(.*?)```", text, re.S).group(1)
    # Registered under the README's names, then taken back out, as `registered` does.
    try:
        exec(compile(code, "my_gan.py", "exec"), {})
        assert issubclass(LOSSES.get("ralsgan"), Loss) and VARIANTS.get("ralsgan-mlp").loss == "ralsgan"
    finally:
        for registry, name in ((VARIANTS, "ralsgan-mlp"), (LOSSES, "ralsgan")):
            if name in registry:
                registry.unregister(name)


def test_a_refused_method_is_named_at_its_file_and_line(registered):
    with pytest.raises(GanzooError) as refused:
        registered(LOSSES, "test-refused", _loss(discriminator_loss=lambda self, d_real, d_fake: d_real.mean()))
    line = next(i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1) if "lambda self, d_real, d_fake: d_real.mean()))" in text)
    assert "(defined at " in str(refused.value) and f"test_registry.py:{line}); see ganzoo.Loss" in str(refused.value)


def test_signature_problem_reads_what_a_callable_takes():
    assert signature_problem(lambda a, b=1, *c, **d: None, ["a"], "f") is None
    assert signature_problem(lambda a: None, ["a", "b"], "f") .startswith("f(a) must accept (a, b) by name (defined at ")
    assert signature_problem(lambda self, a: None, ["a"], "m", bound=True) is None
    assert signature_problem(math.hypot, ["a"], "hypot") is None  # no signature to read: not refused
    assert signature_problem(3, ["a"], "f") == "f must be a callable taking (a), got 3"


ORIGIN_PLUGIN = """
from ganzoo import Variant, register_dataset, register_variant

register_variant("test-origin", Variant(loss="ns", arch="mlp"))


@register_dataset("test-origin-data")
def load(request):
    raise NotImplementedError
"""


def test_a_registry_records_the_plugin_that_registered_an_entry(tmp_path):
    from ganzoo.core.plugins import load_plugin

    plugin = tmp_path / "origin_plugin.py"
    plugin.write_text(ORIGIN_PLUGIN)
    try:
        load_plugin(str(plugin))
        assert VARIANTS.origin("test-origin") == DATASETS.origin("test-origin-data") == str(plugin)
    finally:
        for registry, name in ((VARIANTS, "test-origin"), (DATASETS, "test-origin-data")):
            if name in registry:
                registry.unregister(name)
    assert VARIANTS.origin("nsgan") is None and DATASETS.origin("ring8") is None, "ganzoo's own"
    things: Registry[int] = Registry("thing")
    things.register("alpha", 1)
    assert things.origin("alpha") is None, "registered by code, not while a plugin loads"
    with pytest.raises(GanzooError, match="unknown thing 'beta'"):
        things.origin("beta")


def test_built_ins_a_plugin_imports_first_stay_ganzoos(tmp_path):
    """A plugin that imports a ganzoo module not yet loaded registers that module's built-ins while it
    loads; they are still nobody's plugin's."""
    import subprocess
    import sys

    (tmp_path / "importer.py").write_text("import ganzoo.sweep.storage\n")
    code = ("import sys; from ganzoo.core.plugins import load_plugin; assert 'ganzoo.sweep.storage' not in sys.modules; "
            "load_plugin('importer.py'); from ganzoo.sweep.storage import STORAGES; "
            "print(sorted({STORAGES.origin(n) for n in STORAGES}, key=str))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[None]"
