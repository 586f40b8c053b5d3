"""What long jobs show: a bar with steps, rate, losses and ETA on a terminal; plain lines elsewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ganzoo.core.progress import SweepProgress, fmt


def test_figures_are_shown_to_four_significant_digits():
    assert fmt(41.27345678) == "41.27" and fmt(0.000123456) == "0.0001235" and fmt(12345.6) == "1.235e+04"
    assert fmt(None) == "n/a" and fmt(float("inf")) == "inf"


def test_sweep_lines_count_trials_per_pair_and_in_all(capsys):
    progress = SweepProgress({"nsgan@ring8": 1, "dcgan@digits": 0}, per_pair=2, bar=False)
    progress.finished("dcgan@digits", "trial 0: complete, FID 12.3 (1 seed)")
    err = capsys.readouterr().err
    assert re.search(r"^dcgan@digits \[1/2\] trial 0: complete, FID 12.3 \(1 seed\) \[2/4 trials, 0:\d\d elapsed, "
                     r"~0:\d\d left\]$", err.strip()), err
    progress.finished("nsgan@ring8", "trial 1: pruned")
    progress.finished("dcgan@digits", "trial 1: complete, FID 11 (1 seed)")
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(r"^dcgan@digits \[2/2\] trial 1: complete, FID 11 \(1 seed\) \[4/4 trials, 0:\d\d elapsed\]$", last), \
        "no ETA once every trial is done"


def test_the_sweep_bar_counts_resumed_trials(capsys):
    progress = SweepProgress({"nsgan@ring8": 2, "dcgan@digits": 1}, per_pair=3, bar=True)
    progress.finished("dcgan@digits", "trial 1: complete, FID 12.3 (1 seed)")
    progress.close()
    err = capsys.readouterr().err
    assert "dcgan@digits [2/3] trial 1: complete" in err
    assert "4/6" in err and "trial" in err, err


def test_train_under_a_terminal_shows_a_bar_with_rate_losses_and_eta(tmp_path: Path):
    """Run ``ganzoo train`` with stderr on a pseudo-terminal, as a user's shell would."""
    master, slave = os.openpty()
    args = [sys.executable, "-m", "ganzoo", "train", "--variant", "nsgan", "--dataset", "ring8", "--steps", "40",
            "--log-every", "10", "--device", "cpu", "--out", str(tmp_path / "run")]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, cwd=tmp_path)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    out, _ = process.communicate(timeout=300)
    os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, screen
    assert "completed at 40 D updates" in out.decode()
    frames = screen.replace("\r", "\n")
    assert re.search(r"nsgan: +100%.*40/40 \[\d\d:\d\d<00:00, +[\d.]+ G update/s, d=[\d.]+, g=[\d.]+\]", frames), frames
    assert re.search(r"/40 \[\d\d:\d\d<\d\d:\d\d", frames), "an ETA while it runs"


def test_train_without_a_terminal_prints_log_lines(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "ganzoo", "train", "--variant", "nsgan", "--dataset", "ring8",
                             "--steps", "20", "--log-every", "10", "--device", "cpu", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    # nsgan's n_critic is 1: its D updates are its G updates, and the lines count the run's unit
    assert [" ".join(line.split()[:3]) for line in lines] == ["D update 10/20", "D update 20/20"], lines
    assert "\r" not in result.stderr and "%|" not in result.stderr
