"""Checks every registered entry gets for free: a new variant, loss, architecture or dataset is
covered by registering it. The checks live in ganzoo.checks.contract, which ``ganzoo check PLUGIN`` runs too."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.plugins import RAISING_PLUGIN

from ganzoo import (
    ARCHITECTURES,
    DATASETS,
    LOSSES,
    PENALTIES,
    VARIANTS,
    GanzooError,
)
from ganzoo.checks import contract
from ganzoo.evaluate.features import EXTRACTORS
from ganzoo.zoo.initialisation import INITIALISATIONS

CASES = contract.variant_cases()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_on_some_builtin_data(variant):
    contract.check_trains_on_some_data(variant)


@pytest.mark.parametrize("variant, dataset", CASES)
def test_shapes_and_output_range(variant, dataset):
    contract.check_shapes_and_output_range(variant, dataset)


@pytest.mark.parametrize("variant, dataset", CASES)
def test_one_step_changes_both_networks_with_finite_losses(variant, dataset, tmp_path):
    contract.check_one_step_changes_both_networks(variant, dataset, tmp_path)


@pytest.mark.parametrize("variant, dataset", CASES)
def test_config_json_round_trip(variant, dataset, tmp_path):
    contract.check_config_json_round_trip(variant, dataset, tmp_path)


@pytest.mark.parametrize("arch_name", list(ARCHITECTURES))
def test_every_architecture_builds_for_the_shapes_it_accepts(arch_name):
    contract.check_architecture_builds(arch_name)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_trains_one_step(loss, tmp_path):
    contract.check_loss_trains_one_step(loss, tmp_path)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_trains_d_and_g_the_right_way(loss):
    contract.check_loss_direction(loss)


@pytest.mark.parametrize("name", list(EXTRACTORS))
def test_every_feature_extractor_evaluates(name):
    contract.check_extractor_evaluates(name)


@pytest.mark.parametrize("name", list(INITIALISATIONS))
def test_every_initialisation_keeps_the_networks_and_its_seed(name):
    contract.check_initialisation(name)


@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_every_penalty_trains_one_step(penalty, tmp_path):
    contract.check_penalty_trains_one_step(penalty, tmp_path)


@pytest.mark.parametrize("variant, dataset", CASES)
def test_every_variant_trains_with_every_switch(variant, dataset, tmp_path):
    contract.check_trains_with_the_switches(variant, dataset, tmp_path)


@pytest.mark.parametrize("variant, dataset", CASES)
def test_every_builtin_variant_trains_as_a_population(variant, dataset):
    # A plugin's network may not batch under vmap (the sweep then trains it one trial at a time and
    # says why); every built-in one must, so that --population covers the whole zoo.
    contract.check_trains_as_a_population(variant, dataset)


@pytest.mark.parametrize("variant, dataset", CASES)
def test_every_variant_step_is_capturable(variant, dataset):
    # Found on a CPU: on CUDA a step that syncs with the host runs eagerly, several times slower.
    contract.check_variant_is_capturable(variant, dataset)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_step_is_capturable(loss):
    contract.check_loss_is_capturable(loss)


@pytest.mark.parametrize("penalty", list(PENALTIES))
def test_every_penalty_step_is_capturable(penalty):
    contract.check_penalty_is_capturable(penalty)


def write_idx(path: Path, array) -> None:
    import numpy as np

    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def local_copy(dataset: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The spec to load ``dataset`` by, with small files in its real layout written under ``root`` (the
    default data root for this test) where this machine has none and nothing may be downloaded:
    MNIST's IDX files, CIFAR-10's batches (torchvision's md5 check, which only real downloads pass,
    is bypassed for these files the test wrote itself), images for ``folder:PATH``."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    if dataset == "mnist":
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (70, 28, 28)))
        write_idx(raw / "train-labels-idx1-ubyte", rng.integers(0, 10, 70))
    elif dataset == "cifar10":
        import torchvision.datasets.cifar as cifar

        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for i in range(1, 6):
            batch = {"data": rng.integers(0, 256, (8, 3 * 32 * 32), dtype=np.uint8), "labels": list(rng.integers(0, 10, 8))}
            (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
        monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
        monkeypatch.setattr(cifar.CIFAR10, "_check_integrity", lambda self: True)
    elif dataset == "folder":
        from PIL import Image

        images = root / "images"
        images.mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(images / f"{i}.png")
        return f"folder:{images}"
    return dataset


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_dataset_gives_what_the_trainer_needs(dataset, tmp_path, monkeypatch):
    try:
        data = contract.load_for_check(dataset)
    except GanzooError:  # not on this machine and nothing is downloaded: its layout, written here
        monkeypatch.setenv("GANZOO_DATA", str(tmp_path))
        data = contract.load_for_check(local_copy(dataset, tmp_path, monkeypatch))
    contract.check_data(data)


# ---- ganzoo check PLUGIN: the same checks on what one plugin registers ----------------------------

GOOD_PLUGIN = '''
import dataclasses

import torch
import torch.nn.functional as F

from ganzoo import (Data, Loss, Penalty, Variant, register_architecture, register_dataset, register_loss,
                    register_penalty, register_variant)
from ganzoo.zoo.architectures import MLP


@register_loss("test-plugin-hinge")
@dataclasses.dataclass(frozen=True)
class Hinge(Loss):
    margin: float = 1.0

    def discriminator_loss(self, real, fake):
        return F.relu(self.margin - real).mean() + F.relu(self.margin + fake).mean()

    def generator_loss(self, fake):
        return -fake.mean()


@register_penalty("test-plugin-r1")
@dataclasses.dataclass(frozen=True)
class R1(Penalty):
    weight: float = 1.0

    def noise(self, real, generator):
        return real.new_zeros(())  # it draws nothing

    def value(self, D, real, fake, noise, gradient):
        return self.weight / 2 * gradient(D, real).flatten(1).square().sum(1).mean()


@register_architecture("test-plugin-small-mlp")
@dataclasses.dataclass(frozen=True)
class SmallMLP(MLP):
    hidden: int = 16


@register_dataset("test-plugin-blob")
def blob(request):
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    return Data("test-plugin-blob", x, None, "points", (2,))


register_variant("test-plugin-hinge-small", Variant(
    "test-plugin-hinge", "test-plugin-small-mlp", defaults={"loss.margin": 2.0, "arch.depth": 1}))
'''

WRONG_SHAPE_PLUGIN = '''
import dataclasses

from torch import nn

from ganzoo import Architecture, Variant, register_architecture, register_variant


@register_architecture("test-plugin-wrong-shape")
@dataclasses.dataclass(frozen=True)
class WrongShape(Architecture):
    def check(self, sample_shape):
        return None if sample_shape == (2,) else "points only"

    def build(self, sample_shape, z_dim, bounded):
        G = nn.Linear(z_dim, 3)  # one coordinate too many
        D = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
        return G, D


register_variant("test-plugin-wrong-shape-ns", Variant("ns", "test-plugin-wrong-shape"))
'''


@pytest.fixture
def plugin(tmp_path):
    """Write a plugin file; whatever checking it registers is unregistered afterwards."""
    before = {kind: set(registry) for kind, registry in contract.REGISTRIES.items()}

    def write(code: str, name: str = "my_plugin.py"):
        path = tmp_path / name
        path.write_text(code)
        return path

    yield write
    for kind, registry in contract.REGISTRIES.items():
        for name in set(registry) - before[kind]:
            registry.unregister(name)


def line_of(code: str, text: str) -> int:
    (number,) = [i for i, line in enumerate(code.splitlines(), 1) if text in line]
    return number


def test_check_plugin_passes_a_good_plugin_and_checks_only_its_entries(plugin):
    results = contract.check_plugin(str(plugin(GOOD_PLUGIN)))
    assert [r.line() for r in results if not r.passed] == []
    checked = {(r.check, r.kind, r.entry, r.case) for r in results}
    variant = "test-plugin-hinge-small"
    assert checked == {
        ("architecture_builds", "architecture", "test-plugin-small-mlp", ""),
        ("loss_trains_one_step", "loss", "test-plugin-hinge", ""),
        ("penalty_trains_one_step", "penalty", "test-plugin-r1", ""),
        ("dataset_loads", "dataset", "test-plugin-blob", ""),
        ("loss_direction", "loss", "test-plugin-hinge", ""),
        ("trains_on_some_data", "variant", variant, ""),
        ("step_is_capturable", "loss", "test-plugin-hinge", ""),
        ("step_is_capturable", "penalty", "test-plugin-r1", ""),
        # the plugin's own dataset is a case beside the built-in ones
        *((check, "variant", variant, dataset) for dataset in ("ring8", "digits", "test-plugin-blob") for check in
          ("shapes_and_output_range", "one_step_changes_both_networks", "config_json_round_trip",
           "trains_with_the_switches", "step_is_capturable")),
    }
    assert len(results) == len(checked)
    assert all(r.line().startswith("ok   ") for r in results)


def test_a_crash_in_the_plugin_during_training_is_a_failure_at_its_line(plugin):
    path = plugin(RAISING_PLUGIN)
    results = {(r.check, r.entry, r.case): r for r in contract.check_plugin(str(path))}
    line = line_of(RAISING_PLUGIN, "raise ValueError")
    for key in [("loss_trains_one_step", "test-plugin-raises", ""),
                *(("one_step_changes_both_networks", "test-plugin-raises-mlp", d) for d in ("ring8", "digits"))]:
        result = results[key]
        assert not result.passed
        assert result.message == "ValueError: no G loss today"
        file, _, at = result.location.rpartition(":")
        assert Path(file).resolve() == path.resolve() and at == str(line)
        assert result.line().endswith(f"ValueError: no G loss today (at {result.location})")
    assert results[("shapes_and_output_range", "test-plugin-raises-mlp", "ring8")].passed


def test_a_generator_of_the_wrong_shape_fails_the_shape_check_clearly(plugin):
    results = {(r.check, r.entry, r.case): r for r in contract.check_plugin(str(plugin(WRONG_SHAPE_PLUGIN)))}
    shapes = results[("shapes_and_output_range", "test-plugin-wrong-shape-ns", "ring8")]
    assert not shapes.passed
    assert shapes.message == (
        "G(z) for 5 noise vectors has shape (5, 3); expected (5, 2), one sample of shape (2,) each"
    )
    builds = results[("architecture_builds", "test-plugin-wrong-shape", "")]
    assert not builds.passed and builds.message.startswith("for samples of shape (2,): G(z) for 4 noise vectors has shape (4, 3)")
    assert not any(case == "digits" for _, _, case in results)  # its check refuses images


SIXTEEN_PLUGIN = '''
import dataclasses

import torch
from torch import nn

from ganzoo import Architecture, Data, Variant, register_architecture, register_dataset, register_variant


@register_dataset("test-plugin-sixteen")
def sixteen(request):
    x = torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return Data("test-plugin-sixteen", x, None, "image", (1, 16, 16))


@register_architecture("test-plugin-conv16")
@dataclasses.dataclass(frozen=True)
class Conv16(Architecture):
    def check(self, sample_shape):
        return None if tuple(sample_shape) == (1, 16, 16) else "made for 1x16x16 images"

    def build(self, sample_shape, z_dim, bounded):
        G = nn.Sequential(nn.Linear(z_dim, 256), nn.Tanh(), nn.Unflatten(1, (1, 16, 16)))
        D = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(256, 1), nn.Flatten(0))
        return G, D


register_variant("test-plugin-conv16-ns", Variant("ns", "test-plugin-conv16"))
'''


def test_check_plugin_tries_the_plugins_own_datasets(plugin):
    # An architecture made for the plugin's 16x16 images accepts none of the built-in shapes: it is
    # built and trained on the plugin's dataset instead of failing for want of one.
    results = contract.check_plugin(str(plugin(SIXTEEN_PLUGIN)))
    assert [r.line() for r in results if not r.passed] == []
    cases = {(r.check, r.case) for r in results if r.kind == "variant"}
    assert cases == {("trains_on_some_data", ""), *((check, "test-plugin-sixteen") for check in (
        "shapes_and_output_range", "one_step_changes_both_networks", "config_json_round_trip",
        "trains_with_the_switches", "step_is_capturable"))}


def test_check_plugin_says_which_shapes_it_tried_and_why_each_was_refused(plugin):
    code = SIXTEEN_PLUGIN.replace(
        'return None if tuple(sample_shape) == (1, 16, 16) else "made for 1x16x16 images"',
        'return "made for 3x16x16 images"')
    results = {(r.check, r.entry): r for r in contract.check_plugin(str(plugin(code)))}
    builds = results[("architecture_builds", "test-plugin-conv16")]
    assert not builds.passed
    assert builds.message == "it accepts none of the shapes tried: " + "; ".join(
        f"{shape}: made for 3x16x16 images" for shape in [*contract.ARCH_SHAPES, (1, 16, 16)])
    data = results[("trains_on_some_data", "test-plugin-conv16-ns")]
    assert data.message == ("its architecture 'test-plugin-conv16' accepts none of the data tried: "
                            "ring8 (2,): made for 3x16x16 images; digits (1, 8, 8): made for 3x16x16 images; "
                            "test-plugin-sixteen (1, 16, 16): made for 3x16x16 images")


BACKWARDS_PLUGIN = '''
import dataclasses

import torch.nn.functional as F

from ganzoo import Loss, register_loss


@register_loss("test-plugin-backwards")
@dataclasses.dataclass(frozen=True)
class Backwards(Loss):
    """nsgan's D loss with real and fake used the wrong way round: it trains and "completes"."""

    def discriminator_loss(self, real, fake):
        return (F.softplus(real) + F.softplus(-fake)).mean()

    def generator_loss(self, fake):
        return F.softplus(-fake).mean()
'''


# nsgan's D loss with real and fake used the wrong way round; then its G loss with the sign flipped
G_BACKWARDS_PLUGIN = BACKWARDS_PLUGIN.replace("(F.softplus(real) + F.softplus(-fake))", "(F.softplus(-real) + F.softplus(fake))") \
    .replace("return F.softplus(-fake).mean()", "return F.softplus(fake).mean()")


@pytest.mark.parametrize("code, says", [(BACKWARDS_PLUGIN, "D's loss is "), (G_BACKWARDS_PLUGIN, "G's loss is ")],
                         ids=["d-backwards", "g-backwards"])
def test_a_loss_that_trains_backwards_fails_the_direction_check(plugin, code, says):
    results = {r.check: r for r in contract.check_plugin(str(plugin(code)))}
    assert results["loss_trains_one_step"].passed  # training cannot tell
    direction = results["loss_direction"]
    assert not direction.passed and direction.message.startswith(says)
    assert "must be lower where" in direction.message and "trains backwards" in direction.message


SYNCING_PLUGIN = '''
import dataclasses

import torch.nn.functional as F

from ganzoo import Loss, Variant, register_loss, register_variant


@register_loss("test-plugin-syncs")
@dataclasses.dataclass(frozen=True)
class Syncs(Loss):
    def discriminator_loss(self, real, fake):
        scale = 1.0 if real.mean().item() > 0 else 2.0  # a host read: capture cannot hold it
        return scale * (F.softplus(-real).mean() + F.softplus(fake).mean())

    def generator_loss(self, fake):
        return F.softplus(-fake).mean()


register_variant("test-plugin-syncs-mlp", Variant("test-plugin-syncs", "mlp"))
'''


def test_a_plugin_loss_that_calls_item_is_named_not_capturable_on_a_cpu(plugin):
    path = plugin(SYNCING_PLUGIN)
    results = {(r.check, r.kind, r.entry, r.case): r for r in contract.check_plugin(str(path))}
    line = line_of(SYNCING_PLUGIN, ".item()")
    failed = [r for r in results.values() if not r.passed]
    assert {(r.check, r.entry) for r in failed} == {("step_is_capturable", "test-plugin-syncs"),
                                                   ("step_is_capturable", "test-plugin-syncs-mlp")}
    for result in failed:
        assert result.message.startswith("its step syncs with the host, so on CUDA it cannot be captured")
        assert f"aten::_local_scalar_dense at {path.name}:{line}" in result.message.replace(str(path.parent) + "/", "")
    # It trains: only capture is out of reach.
    assert results[("loss_trains_one_step", "loss", "test-plugin-syncs", "")].passed


def test_check_plugin_on_a_plugin_that_registers_nothing(plugin):
    (result,) = contract.check_plugin(str(plugin("x = 1\n")))
    assert (result.check, result.kind, result.passed) == ("registers_entries", "plugin", False)
    assert "registered no variant, loss, penalty, architecture, dataset, feature extractor or initialisation" in result.message


def test_check_plugin_reports_a_refused_registration_as_one_line_at_the_plugin_line(plugin):
    code = RAISING_PLUGIN.replace("def generator_loss(self, fake):", "def generator_loss(self, fake, reel):")
    path = plugin(code)
    with pytest.raises(GanzooError) as refused:
        contract.check_plugin(str(path))
    text = str(refused.value)
    assert "cannot register loss 'test-plugin-raises': generator_loss(self, fake, reel) must accept (fake)" in text
    assert text.endswith(f"{path.name}:{line_of(code, '@register_loss')})") and "\n" not in text


def test_check_plugin_refuses_a_plugin_already_loaded(plugin):
    from ganzoo.core.plugins import load_plugin

    path = plugin(GOOD_PLUGIN)
    load_plugin(str(path))
    with pytest.raises(GanzooError, match="already loaded in this process"):
        contract.check_plugin(str(path))
