from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest
import torch
import torch_fidelity
from torch import Tensor
from torch_fidelity.metric_fid import KEY_METRIC_FID
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

import ganzoo.evaluate.domain as domain
from ganzoo.core.errors import GanzooError
from ganzoo.core.rundir import read_json
from ganzoo.data import (
    DATASETS,
    Data,
    DataRequest,
    DataSource,
    SourceFile,
    fashion_mnist_dir,
    load_dataset,
)
from ganzoo.evaluate.domain import (
    DOMAIN_EXTRACTOR,
    DomainClassifier,
    DomainInfo,
    FeatureExtractorDomain,
    class_coverage,
    ensure_domain_classifier,
    predict_classes,
    train_domain_classifier,
)


def to_uint8_rgb(x: Tensor) -> Tensor:
    """[-1, 1] floats -> uint8 with 3 channels, as ganzoo's wrappers feed torch-fidelity."""
    images = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.expand(-1, 3, -1, -1).contiguous() if images.shape[1] == 1 else images


class Uint8Images(torch.utils.data.Dataset):
    def __init__(self, x: Tensor) -> None:
        self.images = to_uint8_rgb(x)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        return self.images[index]


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_classifier_shapes(shape: tuple[int, int, int]) -> None:
    model = DomainClassifier(shape, num_classes=7, feature_dim=32).eval()
    features, logits = model(torch.zeros(2, *shape))
    assert features.shape == (2, 32) and logits.shape == (2, 7)


def untrained_trainer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace training by an untrained model (accuracy 0.5); returns the seeds it was called with."""
    calls: list[int] = []

    def fake_train(data_train: Data, data_test: Data, seed: int = 0, device: str = "cpu"):
        calls.append(seed)
        return DomainClassifier(data_train.sample_shape, data_train.num_classes), 0.5

    monkeypatch.setattr(domain, "train_domain_classifier", fake_train)
    return calls


@pytest.fixture(scope="module")
def digits_info(tmp_path_factory: pytest.TempPathFactory) -> DomainInfo:
    return ensure_domain_classifier("digits", cache=tmp_path_factory.mktemp("domain"))


@pytest.fixture(scope="module")
def digits_test() -> Data:
    return load_dataset("digits", "test")


def test_registered_once_in_torch_fidelity(monkeypatch: pytest.MonkeyPatch) -> None:
    assert FEATURE_EXTRACTORS_REGISTRY[DOMAIN_EXTRACTOR] is FeatureExtractorDomain
    # Executing the module a second time (as a separate copy) must not trip the duplicate check.
    spec = importlib.util.spec_from_file_location("ganzoo_domain_copy", domain.__file__)
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, copy)  # dataclasses look their module up there
    spec.loader.exec_module(copy)
    assert FEATURE_EXTRACTORS_REGISTRY[DOMAIN_EXTRACTOR] is FeatureExtractorDomain


def test_digits_classifier_reaches_95_percent_on_held_out_split(digits_info: DomainInfo) -> None:
    assert digits_info.test_accuracy >= 0.95
    meta = read_json(digits_info.path.with_suffix(".json"))
    assert meta["dataset"] == "digits" and meta["fingerprint"] == digits_info.fingerprint
    assert meta["n_test"] == 360 and meta["input_shape"] == [1, 8, 8] and meta["num_classes"] == 10
    assert {"seed", "feature_dim", "training_seconds", "test_accuracy"} <= meta.keys()
    assert digits_info.input_shape == (1, 8, 8) and digits_info.feature_dim == 128


@pytest.mark.skipif(
    not (fashion_mnist_dir() / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_classifier_reaches_90_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default data root, emptied (an explicit root without the files is an error, never a
    # fallback): the files come from Debian's copy, as for a user with no data of their own.
    monkeypatch.setenv("GANZOO_DATA", str(tmp_path / "data"))
    info = ensure_domain_classifier("fashion-mnist", cache=tmp_path)
    assert info.test_accuracy >= 0.90
    assert info.input_shape == (1, 28, 28)


def test_training_is_deterministic_given_seed() -> None:
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    state = [train_domain_classifier(train, test, seed=3, epochs=2)[0].state_dict() for _ in range(2)]
    assert all(torch.equal(state[0][k], state[1][k]) for k in state[0])


def test_second_call_loads_from_cache_without_training(
    digits_info: DomainInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("trained although a cached classifier exists")

    monkeypatch.setattr(domain, "train_domain_classifier", refuse)
    assert ensure_domain_classifier("digits", cache=digits_info.path.parent) == digits_info


def test_changed_data_fingerprint_trains_anew(
    digits_info: DomainInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = untrained_trainer(monkeypatch)
    monkeypatch.setattr(domain, "_found", {})  # a new process: what this one found is not known to it
    monkeypatch.setattr(domain, "tensor_fingerprint", lambda *tensors: "0123456789abcdef")
    info = ensure_domain_classifier("digits", cache=digits_info.path.parent)
    assert calls == [0]
    assert info.fingerprint == "0123456789abcdef" and info.path != digits_info.path
    assert info.test_accuracy == 0.5


def test_unchanged_files_are_not_read_again_and_changed_ones_train_anew(tmp_path, monkeypatch, registered):
    """Every evaluation asks for the classifier: the process remembers the entry its data's files led to,
    and reads the files again (and finds or trains the entry their bytes key) only once they changed."""
    calls = untrained_trainer(monkeypatch)
    file, loads = tmp_path / "images.pt", []

    def tiny(request: DataRequest) -> Data:
        loads.append(request.split)
        x = torch.load(file, weights_only=True)
        y = torch.arange(len(x)) % 2
        source = DataSource("test files", (SourceFile(str(file), file.stat().st_size, "unused"),))
        return Data("tiny-labelled", x, y, "image", (1, 8, 8), 2, source=source)

    registered(DATASETS, "tiny-labelled", tiny)
    torch.save(torch.zeros(40, 1, 8, 8), file)
    first = ensure_domain_classifier("tiny-labelled", cache=tmp_path / "cache")
    assert calls == [0] and loads == ["train", "test"]
    assert ensure_domain_classifier("tiny-labelled", cache=tmp_path / "cache") == first
    assert calls == [0] and loads == ["train", "test"]  # neither read nor hashed again
    torch.save(torch.full((40, 1, 8, 8), 0.5), file)  # other bytes, size aside: the stat differs in mtime
    os.utime(file, ns=(file.stat().st_atime_ns, file.stat().st_mtime_ns + 10**9))
    second = ensure_domain_classifier("tiny-labelled", cache=tmp_path / "cache")
    assert calls == [0, 0] and loads == ["train", "test", "train", "test"]
    assert second.fingerprint != first.fingerprint and second.path != first.path


def test_damaged_cache_entry_is_retrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = untrained_trainer(monkeypatch)
    info = ensure_domain_classifier("digits", cache=tmp_path)
    info.path.with_suffix(".json").write_text("{not json")
    assert ensure_domain_classifier("digits", cache=tmp_path) == info
    assert len(calls) == 2


@pytest.mark.parametrize("spec", ["ring8", "folder"])
def test_refuses_points_and_unlabelled_datasets(spec: str, tmp_path: Path) -> None:
    if spec == "folder":
        from PIL import Image

        for i in range(2):
            Image.new("RGB", (8, 8), (i * 100, 0, 0)).save(tmp_path / f"{i}.png")
        spec = f"folder:{tmp_path}"
    with pytest.raises(GanzooError, match="needs a labelled image dataset") as excinfo:
        ensure_domain_classifier(spec, cache=tmp_path / "cache")
    assert "\n" not in str(excinfo.value)


def fid(info: DomainInfo, a: Tensor, b: Tensor) -> float:
    metrics = torch_fidelity.calculate_metrics(
        input1=Uint8Images(a), input2=Uint8Images(b), fid=True,
        feature_extractor=DOMAIN_EXTRACTOR, feature_extractor_weights_path=str(info.path),
        cuda=False, verbose=False, cache=False, save_cpu_ram=True,  # no DataLoader workers
    )
    return metrics[KEY_METRIC_FID]


def test_fid_through_torch_fidelity_is_zero_for_itself_and_grows_with_noise(
    digits_info: DomainInfo, digits_test: Data
) -> None:
    x = digits_test.x
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    fid_self = fid(digits_info, x, x)
    fid_low = fid(digits_info, x, (x + 0.3 * noise).clamp(-1, 1))
    fid_high = fid(digits_info, x, (x + 0.8 * noise).clamp(-1, 1))
    assert abs(fid_self) < 1e-3 * fid_low
    assert 0 < fid_low < fid_high


def test_extractor_matches_classifier_on_uint8_tiled_and_resized_input(
    digits_info: DomainInfo, digits_test: Data
) -> None:
    extractor = FeatureExtractorDomain(DOMAIN_EXTRACTOR, ["logits", "features"], str(digits_info.path))
    assert not extractor.training and extractor.can_be_compiled()
    # torch-fidelity compiles with this input: the dataset's own size, 3 uint8 channels.
    assert extractor.get_dummy_input_for_compile().shape == (1, 3, *digits_test.x.shape[2:])
    images = to_uint8_rgb(digits_test.x)
    logits, features = extractor(images)
    assert logits.shape == (360, 10) and features.shape == (360, 128) and features.dtype == torch.float32
    predicted = predict_classes(digits_info, digits_test.x)
    # uint8 quantisation of the 17 digit levels may flip a borderline sample, no more.
    assert (logits.argmax(1) == predicted).float().mean() > 0.99
    # Larger inputs are resized to the classifier's 8x8 and still classified.
    upsampled = images.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    agree = (extractor(upsampled)[0].argmax(1) == digits_test.y).float().mean()
    assert agree > 0.9


def test_extractor_default_layers_and_missing_weights() -> None:
    assert FeatureExtractorDomain.get_default_feature_layer_for_metric("fid") == "features"
    assert FeatureExtractorDomain.get_default_feature_layer_for_metric("kid") == "features"
    assert FeatureExtractorDomain.get_default_feature_layer_for_metric("prc") == "features"
    assert FeatureExtractorDomain.get_default_feature_layer_for_metric("isc") == "logits"
    with pytest.raises(GanzooError, match="feature_extractor_weights_path"):
        FeatureExtractorDomain(DOMAIN_EXTRACTOR, ["features"], None)


def test_predict_classes_reproduces_test_accuracy(digits_info: DomainInfo, digits_test: Data) -> None:
    predicted = predict_classes(digits_info, digits_test.x, batch_size=100)
    accuracy = (predicted == digits_test.y).float().mean().item()
    assert accuracy == pytest.approx(digits_info.test_accuracy, abs=1 / 360)
    with pytest.raises(GanzooError, match="expects images of shape"):
        predict_classes(digits_info, torch.zeros(2, 3, 8, 8))


def test_predict_classes_handles_empty_input(digits_info: DomainInfo) -> None:
    assert predict_classes(digits_info, torch.zeros(0, 1, 8, 8)).shape == (0,)


# ---- class_coverage: known answers ---------------------------------------------------------------

REFERENCE = torch.arange(10).repeat(100)  # uniform over 10 classes


def test_coverage_all_classes_identical_distribution_has_zero_kl() -> None:
    result = class_coverage(REFERENCE.clone(), REFERENCE, 10)
    assert result.classes_covered == 10 and result.missing_classes == ()
    assert result.histogram == (100,) * 10 and result.num_samples == 1000
    assert result.kl_data_to_generated == pytest.approx(0.0, abs=1e-12)


def test_coverage_half_the_classes() -> None:
    result = class_coverage(torch.arange(5).repeat(200), REFERENCE, 10)
    assert result.classes_covered == 5 and result.missing_classes == (5, 6, 7, 8, 9)
    # Five dropped classes each cost 0.1 * log(0.1 / eps); the kept ones 0.1 * log(0.1 / 0.2).
    expected = 0.5 * math.log(0.1 / 1e-6) + 0.5 * math.log(0.5)
    assert result.kl_data_to_generated == pytest.approx(expected, rel=1e-3)


def test_coverage_one_class_is_penalised_more_than_half() -> None:
    one = class_coverage(torch.full((1000,), 3), REFERENCE, 10)
    half = class_coverage(torch.arange(5).repeat(200), REFERENCE, 10)
    assert one.classes_covered == 1 and one.histogram[3] == 1000
    assert one.kl_data_to_generated > half.kl_data_to_generated > 1.0


def test_coverage_min_share_threshold() -> None:
    predicted = torch.cat([torch.zeros(995, dtype=torch.long), torch.ones(5, dtype=torch.long)])
    assert class_coverage(predicted, REFERENCE, 10, min_share=0.01).classes_covered == 1
    assert class_coverage(predicted, REFERENCE, 10, min_share=0.005).classes_covered == 2


def test_coverage_rejects_out_of_range_classes() -> None:
    with pytest.raises(GanzooError, match="0..9"):
        class_coverage(torch.tensor([10]), REFERENCE, 10)
