"""Does exactly what the README's "Add your own variant" section shows, and its dataset and architecture."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from support.paths import README, page


def block_after(marker: str, language: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- {marker} -->\s*```{language}\n(.*?)```", text, re.S)
    assert match, f"README lost its {marker} block"
    return match.group(1)


def test_readme_plugin_example(tmp_path):
    code = block_after("plugin-example", "python")
    assert len(code.strip().splitlines()) <= 30, "the README promises an example of at most 30 lines"
    filename = code.splitlines()[0].removeprefix("# ").strip()
    (tmp_path / filename).write_text(code)
    command = shlex.split(block_after("plugin-command", "bash").strip())
    assert command[0] == "ganzoo"
    # `python -m ganzoo` is the console script's entry point, without depending on PATH.
    result = subprocess.run(
        [sys.executable, "-m", "ganzoo", *command[1:], "--device", "cpu", "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "ralsgan"
    config = json.loads((run / "config.json").read_text())
    assert config["variant"] == "ralsgan-mlp" and config["loss"] == "ralsgan"
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    # The run records its plugin, so --resume works from anywhere.
    assert config["plugins"] == [str((tmp_path / filename).resolve())]


def test_readme_plugin_check_runs_the_contract_checks_on_the_example(tmp_path):
    code = block_after("plugin-example", "python")
    filename = code.splitlines()[0].removeprefix("# ").strip()
    (tmp_path / filename).write_text(code)
    command = shlex.split(block_after("plugin-check", "bash").strip())
    assert command[:2] == ["ganzoo", "check"] and command[2] == filename
    result = subprocess.run([sys.executable, "-m", "ganzoo", *command[1:]], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"(\d+) passed, 0 failed", lines[-1]) and int(lines[-1].split()[0]) == len(lines) - 1 >= 3
    assert all(line.startswith("ok   ") for line in lines[:-1]), lines
    assert any("loss ralsgan" in line for line in lines) and any("variant ralsgan-mlp" in line for line in lines)

    # The same example with G's loss broken at run time: the check fails, naming the plugin's line.
    broken = code.replace("    def generator_loss(self, fake, real):  # naming `real` asks for D's logits on real data too\n",
                          "    def generator_loss(self, fake, real):\n        raise ValueError('broken G loss')\n")
    assert broken != code
    (tmp_path / "broken_gan.py").write_text(broken)
    line = broken.splitlines().index("        raise ValueError('broken G loss')") + 1
    result = subprocess.run([sys.executable, "-m", "ganzoo", "check", "broken_gan.py"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 3 and "Traceback" not in result.stdout + result.stderr
    assert "ValueError: broken G loss (at " in result.stdout and f"broken_gan.py:{line})" in result.stdout
    assert re.search(r"^\d+ passed, [1-9]\d* failed$", result.stdout.strip().splitlines()[-1])


def run_ganzoo(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_readme_dataset_and_architecture_examples(tmp_path):
    files = []
    for marker in ("dataset-example", "architecture-example"):
        code = block_after(marker, "python")
        files.append(code.splitlines()[0].removeprefix("# ").strip())
        (tmp_path / files[-1]).write_text(code)
    checks = [shlex.split(line) for line in block_after("dataset-architecture-check", "bash").strip().splitlines()]
    assert [c[:2] for c in checks] == [["ganzoo", "check"]] * 2 and [c[2] for c in checks] == files
    for command, entry in zip(checks, ("dataset spiral", "architecture small-mlp")):
        result = run_ganzoo(command[1:], tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith(" passed, 0 failed") and entry in result.stdout

    train, evaluate = (shlex.split(line, comments=True)
                       for line in block_after("dataset-architecture-command", "bash").strip().splitlines())
    assert train[:2] == ["ganzoo", "train"] and evaluate[:2] == ["ganzoo", "eval"]
    result = run_ganzoo([*train[1:], "--device", "cpu", "--no-progress"], tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / train[train.index("--out") + 1]
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "spiral" and config["arch"] == "small-mlp"
    assert config["plugins"] == [str((tmp_path / f).resolve()) for f in files]
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert json.loads((run / "data.json").read_text())["sample_shape"] == [2]
    result = run_ganzoo([*evaluate[1:], "--device", "cpu"], tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["features"] == "points" and metrics["n_modes"] == 12 and metrics["fid"] >= 0


def test_the_reference_pages_name_every_field_a_dataset_or_architecture_is_written_with():
    """The README's examples link the fields' tables: ganzoo/data/README.md has DataRequest's and Data's,
    ganzoo/zoo/README.md Architecture's methods."""
    from ganzoo import Architecture, Data, DataRequest

    text = README.read_text()
    section = text[text.index("### Add a dataset or an architecture"):text.index("## Tests")]
    assert "ganzoo/data/README.md" in section and "ganzoo/zoo/README.md" in section
    data = page("data").read_text()
    for cls in (DataRequest, Data):
        for field in dataclasses.fields(cls):
            assert f"`{field.name}`" in data, f"{cls.__name__}.{field.name}"
    zoo = page("zoo").read_text()
    for method in (m for m in vars(Architecture) if not m.startswith("_")):
        assert f"`{method}(" in zoo, f"Architecture.{method}"
