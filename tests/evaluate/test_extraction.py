"""The extractor runs what its precision says: ``+compile`` runs a compiled graph (and says so only
then), a compile that fails falls back to eager and says that, and the network sits on the
extractor's device. A tiny registered network keeps each CPU compile to seconds."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch._dynamo.utils import counters
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from ganzoo.evaluate.extraction import Extractor, batched

TINY = "ganzoo-test-tiny"
U32 = 2.0**-24  # float32 unit roundoff
TERMS = 3 * 3 * 3 + 1  # products and bias summed for each output of the 3x3 convolution, 3 channels in


class Tiny(FeatureExtractorBase):
    """A 3x3 convolution to 4 channels: its outputs ("conv") and their spatial mean ("mean")."""

    def __init__(self, name: str, features_list: list[str], **kwargs: object) -> None:
        super().__init__(name, features_list)
        generator = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3, generator=generator), requires_grad=False)
        self.bias = nn.Parameter(torch.randn(4, generator=generator), requires_grad=False)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("conv", "mean")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "mean"

    @staticmethod
    def can_be_compiled() -> bool:
        return True

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:  # 4x4, as Inception's: not the data's size
        return torch.zeros((1, 3, 4, 4), dtype=torch.uint8)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        y = F.conv2d(x.float() / 255, self.weight, self.bias)
        features = {"conv": y.flatten(1), "mean": y.mean((2, 3))}
        return tuple(features[name] for name in self.features_list)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Tensor:
    """Tiny registered for the test; returns 10 random 6x6 images (batches of 4, 4 and 2)."""
    monkeypatch.setitem(FEATURE_EXTRACTORS_REGISTRY, TINY, Tiny)
    torch._dynamo.reset()
    return torch.randint(0, 256, (10, 3, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def gamma(n: int) -> float:
    """Higham's gamma_n: the relative bound on a float32 sum of n terms, in any order."""
    return n * U32 / (1 - n * U32)


def test_compiled_extraction_runs_a_compiled_graph_and_matches_eager(tiny: Tensor) -> None:
    eager = Extractor(TINY, ["conv", "mean"], torch.device("cpu"), "float32")
    compiled = Extractor(TINY, ["conv", "mean"], torch.device("cpu"), "float32+compile")
    assert compiled.used == "float32+compile" and compiled.compile_error is None
    # The network itself is untouched: no compiled submodule in its tree or its state_dict.
    assert "forward" not in compiled.module._modules
    assert list(compiled.module.state_dict()) == list(eager.module.state_dict()) == ["weight", "bias"]

    counters.clear()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        got = compiled(batched(tiny, 4))
    # 6x6 is not the 4x4 dummy's size: one graph for it, shared by batches of 4 and 2 (batch dim dynamic).
    assert counters["stats"]["unique_graphs"] == 1 and compiled.recompiles == 1
    assert any(event.name.startswith("Torch-Compiled Region") for event in profile.events()), "ran compiled"

    want = eager(batched(tiny, 4))
    # Each conv output sums TERMS products in float32, in whatever order each path takes, from inputs
    # x/255 rounded once (or x * (1/255): once more); the mean sums 16 of them. Two such sums of the
    # same terms differ by <= 2 gamma_n sum|terms| (Higham, Accuracy and Stability, 3.1).
    x = tiny.double() / 255
    magnitude = F.conv2d(x, eager.module.weight.double().abs(), eager.module.bias.double().abs())
    bound = {"conv": 2 * gamma(TERMS + 2) * magnitude.flatten(1),
             "mean": 2 * gamma(TERMS + 2 + 16) * magnitude.mean((2, 3))}
    for layer in ("conv", "mean"):
        assert got[layer].shape == want[layer].shape == (10, {"conv": 64, "mean": 4}[layer])
        assert ((got[layer] - want[layer]).abs() <= bound[layer]).all(), layer


def test_a_compile_warmed_up_at_the_datas_size_compiles_nothing_more(tiny: Tensor) -> None:
    compiled = Extractor(TINY, ["mean"], torch.device("cpu"), "float32+compile", image_size=(6, 6))
    counters.clear()
    compiled(batched(tiny, 4))  # batches of 4 and 2: the batch dimension is dynamic
    compiled(batched(tiny[:, :1].expand(-1, 3, -1, -1), 4))  # grayscale tiled to RGB, as to_uint8_rgb does
    assert counters["stats"]["unique_graphs"] == 0 and compiled.compiles == 1 and compiled.recompiles == 0
    assert compiled.used == "float32+compile"


def failing_at(when: str) -> Callable[..., Callable[[Tensor], tuple[Tensor, ...]]]:
    """A stand-in for torch.compile whose compiled callable raises, as a lazy compile fails on a call:
    on every call ("warm-up") or only on the data's 6x6 images ("data")."""

    def compile(module: nn.Module, **kwargs: object) -> Callable[[Tensor], tuple[Tensor, ...]]:
        def compiled(x: Tensor) -> tuple[Tensor, ...]:
            if when == "warm-up" or x.shape[-1] == 6:
                raise RuntimeError("InductorError: no C compiler\nfull log follows")
            return module(x)

        return compiled

    return compile


@pytest.mark.parametrize("when", ["warm-up", "data"])
def test_a_failing_compile_falls_back_to_eager_and_says_so(tiny: Tensor, when: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    eager = Extractor(TINY, ["mean"], torch.device("cpu"), "float32")
    monkeypatch.setattr(torch, "compile", failing_at(when))
    extractor = Extractor(TINY, ["mean"], torch.device("cpu"), "float32+compile")
    # A failure on the warm-up is known before any features are made (the reference cache key uses it).
    assert extractor.used == ("float32+compile" if when == "data" else "float32 (torch.compile failed: eager)")
    got = extractor(batched(tiny, 4))
    assert extractor.used == "float32 (torch.compile failed: eager)"
    assert extractor.compile_error == "RuntimeError: InductorError: no C compiler"
    assert torch.equal(got["mean"], eager(batched(tiny, 4))["mean"]), "every batch, the failing one too, eager"


def test_the_network_is_put_on_the_extractors_device(tiny: Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch_fidelity.utils

    asked: list[dict[str, object]] = []
    create = torch_fidelity.utils.create_feature_extractor

    def recording(*args: object, **kwargs: object) -> nn.Module:
        asked.append(kwargs)
        return create(*args, **kwargs)

    monkeypatch.setattr(torch_fidelity.utils, "create_feature_extractor", recording)
    # torch-fidelity's cuda=True means .cuda(): the current device, whatever the run's (cuda:1) is.
    on_meta = Extractor(TINY, ["mean"], torch.device("meta"), "float32")
    assert all(p.device == on_meta.device for p in on_meta.module.parameters())
    with contextlib.suppress(Exception):  # no CUDA or no second GPU here: what was asked is the point
        Extractor(TINY, ["mean"], torch.device("cuda", 1), "float32")
    assert [kwargs["cuda"] for kwargs in asked] == [False, False]
