"""Does exactly what the README's "Add your own variant" section shows."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


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
    run = tmp_path / "runs" / "hinge"
    config = json.loads((run / "config.json").read_text())
    assert config["variant"] == "hinge-mlp" and config["loss"] == "hinge"
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    # The run records its plugin, so --resume works from anywhere.
    assert config["plugins"] == [str((tmp_path / filename).resolve())]
