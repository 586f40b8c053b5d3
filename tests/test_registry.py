from __future__ import annotations

import dataclasses

import pytest

from ganzoo import LOSSES, VARIANTS, GanzooError, Loss, Variant
from ganzoo.registry import Registry


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
    assert {"vanilla", "nsgan", "dcgan", "lsgan", "wgan-gp"} <= set(VARIANTS)
    assert VARIANTS.get("vanilla").loss == "minimax" and VARIANTS.get("nsgan").loss == "ns"
