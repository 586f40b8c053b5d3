"""Feature extractors as a registry: ``auto`` takes the first registered that applies to the data, an
explicit choice that does not apply is one clear error, and a plugin's extractor is added in one
place (its registration) and offered, evaluated and checked like the built-in ones."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ganzoo import GanzooError
from ganzoo.checks import contract
from ganzoo.core.config import EvalSpec
from ganzoo.data import load_dataset
from ganzoo.evaluate.features import (
    EXTRACTORS,
    IMAGES,
    LABELLED_IMAGES,
    POINTS,
    FeatureExtractor,
    choices,
    register_extractor,
    resolve_extractor,
)
from ganzoo.evaluate.metrics import evaluate
from ganzoo.zoo.architectures import MLP


def test_auto_takes_the_first_registered_extractor_that_applies():
    ring8, digits = load_dataset("ring8", "test"), load_dataset("digits", "test")
    unlabelled = dataclasses.replace(digits, y=None)  # a folder of images: no labels
    assert resolve_extractor("auto", "ring8", ring8) == "points"
    assert resolve_extractor("auto", "digits", digits) == "domain"  # labelled images: a classifier can be trained
    assert resolve_extractor("auto", "folder:x", unlabelled) == "inception"
    assert EXTRACTORS.in_order()[:3] == ["points", "domain", "inception"]
    assert choices()[:4] == ("auto", "points", "domain", "inception")
    assert {EXTRACTORS.get(n).applies_to for n in ("points", "domain", "inception")} == {POINTS, LABELLED_IMAGES, IMAGES}


@pytest.mark.parametrize("name, dataset, message", [
    ("inception", "ring8", "--features inception applies to images, and ring8 is 2D points: use points"),
    ("points", "digits", "--features points applies to 2D points, and digits is labelled images: use domain or inception"),
    ("domain", "unlabelled", "--features domain applies to labelled images, and unlabelled is images: use inception"),
    ("sift", "digits", "unknown feature extractor 'sift'"),
])
def test_an_extractor_that_does_not_apply_is_one_clear_error(name, dataset, message):
    data = load_dataset("digits", "test")
    data = {"ring8": load_dataset("ring8", "test"), "digits": data, "unlabelled": dataclasses.replace(data, y=None)}[dataset]
    with pytest.raises(GanzooError) as refused:
        resolve_extractor(name, dataset, data)
    assert message in str(refused.value)


class RawPixels(FeatureExtractor):
    """A plugin's extractor: FID on the raw pixels."""

    applies_to = IMAGES

    def evaluate(self, Gs, z_dim, dataset, reference, spec, device, root):
        from ganzoo.evaluate.manifold import metric_values
        from ganzoo.zoo.samples import generate

        real = {"pixels": reference.x.flatten(1).double()}
        return [{"extractor": "raw-pixels", "extractor_precision": "float64",
                 **metric_values({"pixels": generate(G, z_dim, spec.n_samples, spec.seed, device).flatten(1).double()},
                                 real, {"fid": "pixels"}, spec.seed)} for G in Gs]


def test_a_plugin_extractor_is_offered_evaluated_and_checked_once_registered(registered):
    registered(EXTRACTORS, "test-raw-pixels", RawPixels)
    assert "test-raw-pixels" in choices()
    EvalSpec(features="test-raw-pixels").validate()  # --features takes it
    digits = load_dataset("digits", "test")
    assert resolve_extractor("auto", "digits", digits) == "domain", "registered later, it is not auto's first choice"
    torch.manual_seed(0)
    G, _ = MLP(hidden=16, depth=1).build(digits.sample_shape, 8, True)
    result = evaluate(G, 8, "digits", digits, EvalSpec(features="test-raw-pixels", n_samples=50), torch.device("cpu"))
    assert result["features"] == "test-raw-pixels" and result["extractor"] == "raw-pixels" and result["fid"] > 0
    contract.check_extractor_evaluates("test-raw-pixels")


@pytest.mark.parametrize("cls, message", [
    (type("NoEvaluate", (FeatureExtractor,), {}), "must define evaluate"),
    (type("Nowhere", (RawPixels,), {"applies_to": "graphs"}), "applies_to must be one of"),
    (object, "must be a subclass of ganzoo.FeatureExtractor"),
])
def test_registration_refuses_what_cannot_be_an_extractor(cls, message):
    with pytest.raises(GanzooError, match=message):
        EXTRACTORS.register("test-refused", cls)
    with pytest.raises(GanzooError, match="reserved"):
        register_extractor("auto")(RawPixels)
