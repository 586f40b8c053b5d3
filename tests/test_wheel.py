"""ganzoo installed from its wheel, not from this checkout: what finds files from its own location (the
shipped presets, which registrations are built in, a plugin's line in an error, the contract's and
capture's own files) must work where pip puts the package, and the README's first commands must run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from support.plugins import RAISING_PLUGIN

# Its module fixtures are built once, on one worker: the whole module runs there.
pytestmark = pytest.mark.xdist_group("wheel")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new virtual environment holding ganzoo's wheel, built from this checkout; its dependencies are
    the test environment's (a ``.pth`` naming its site-packages, whose own ``.pth`` files, the editable
    install of this checkout among them, are not processed)."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"  # a copy: building in the checkout would leave build/ in it
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "runs",
                                                                  "results", "tests", "__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(folder / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = (folder / "dist").glob("ganzoo-*.whl")
    env = folder / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir()]
    Path(site, "test-dependencies.pth").write_text("\n".join(ours) + "\n")
    return env


def ganzoo(env: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    variables = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(env / "bin" / "ganzoo"), *args], cwd=cwd, capture_output=True, text=True,
                          env=variables, timeout=300)


def test_the_wheel_is_what_runs(installed, tmp_path):
    found = subprocess.run([str(installed / "bin" / "python"), "-c", "import ganzoo; print(ganzoo.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(found).is_relative_to(installed) and not Path(found).is_relative_to(ROOT)


def test_list_finds_the_presets_and_marks_only_a_plugins_entries(installed, tmp_path):
    plugin = tmp_path / "my_gan.py"
    plugin.write_text(textwrap.dedent("""
        from ganzoo import Variant, register_variant

        register_variant("mine", Variant(loss="ns", arch="mlp"))
    """))
    result = ganzoo(installed, "list", "--plugin", "my_gan.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "smoke: The README's main job" in result.stdout and "fashion-mnist: " in result.stdout
    marked = [line for line in result.stdout.splitlines() if "(plugin:" in line]
    assert len(marked) == 1 and "mine" in marked[0]


def test_a_five_step_run_trains(installed, tmp_path):
    result = ganzoo(installed, "train", "--variant", "nsgan", "--dataset", "ring8", "--steps", "5", "--log-every", "5",
                    "--out", "run", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "completed at 5 D updates" in result.stdout and (tmp_path / "run" / "checkpoint.pt").is_file()


def test_a_plugins_error_names_its_line_and_check_passes_a_good_plugin(installed, tmp_path):
    (tmp_path / "raising.py").write_text(RAISING_PLUGIN)
    result = ganzoo(installed, "train", "--plugin", "raising.py", "--variant", "test-plugin-raises-mlp", "--dataset",
                    "ring8", "--steps", "5", "--out", "run", "--no-progress", cwd=tmp_path)
    line = RAISING_PLUGIN.splitlines().index('        raise ValueError("no G loss today")') + 1
    assert result.returncode == 3
    assert f"{tmp_path / 'raising.py'}:{line}" in result.stderr and "no G loss today" in result.stderr
    good = ROOT / "README.md"
    code = good.read_text().split("<!-- plugin-example -->\n```python\n")[1].split("```")[0]
    (tmp_path / "my_gan.py").write_text(code)
    check = ganzoo(installed, "check", "my_gan.py", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "step_is_capturable" in check.stdout and " 0 failed" in check.stdout
