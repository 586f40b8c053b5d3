"""``ganzoo bench --self-check``: its CPU smoke mode runs every check through the CLI (what CI can run
of the GPU self-check), and a failing check fails the command in one line."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch

from ganzoo.checks import selfcheck
from ganzoo.checks.selfcheck import runner, training
from ganzoo.cli import EXIT_FAILED, EXIT_USAGE, main

LINE = re.compile(r"^\[(\d+)/(\d+)\] (\S+) +(pass|FAIL|n/a \([^)]*\)) +\d+\.\d s  (.+)$")
# What a CPU cannot check (capture and its fallback, graph speed, CUDA precisions, CUDA memory): executed
# at tiny sizes, their verdicts n/a. Population against members, host syncs (ganzoo.training.capture's operator
# check) and resume are checked.
CUDA_ONLY = ("variants", "syncing-plugin", "graph-vs-eager", "inception", "sizing-memory")
CHECKED_ON_A_CPU = ("population", "no-host-sync", "resume")


def check_lines(stderr: str) -> dict[str, tuple[str, str]]:
    """check -> (verdict, detail) from the one line each check prints."""
    found = {}
    for line in stderr.splitlines():
        if (m := LINE.match(line)) is not None:
            found[m.group(3)] = (m.group(4), m.group(5))
    return found


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_cpu_smoke_mode_runs_every_check_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--self-check", "--cpu", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == f"bench: {tmp_path / selfcheck.SUMMARY_CSV}"
    lines = check_lines(err)
    assert list(lines) == list(selfcheck.CHECKS), err  # one line per check, in order
    for name in CUDA_ONLY:
        assert lines[name][0] == "n/a (cpu)", (name, lines[name])
    for name in CHECKED_ON_A_CPU:
        assert lines[name][0] == "pass", (name, lines[name])
    assert "0 FAIL" in err.splitlines()[-1] and "cpu" in err.splitlines()[-1]

    rows = read_csv(tmp_path / selfcheck.SUMMARY_CSV)
    assert [r["check"] for r in rows] == list(selfcheck.CHECKS)
    assert [r["verdict"] for r in rows] == [lines[r["check"]][0] for r in rows]
    tables = sorted(tmp_path.glob("selfcheck-*.csv"))
    assert {p.stem.removeprefix("selfcheck-") for p in tables} >= {"variants", "population", "resume", "inception"}
    for row in rows + [r for path in tables for r in read_csv(path)]:  # every row says where it was measured
        assert row["device"].startswith("cpu") and row["torch"] == torch.__version__ and row["precision"], row
    # Every registered variant trained twice; equal bit for bit on a CPU, where both runs are eager.
    variants = read_csv(tmp_path / "selfcheck-variants.csv")
    assert {r["variant"] for r in variants} >= {"nsgan", "dcgan", "wgan-gp", "began"}
    assert all(r["result"] == "ok" and float(r["max_difference"]) == 0.0 for r in variants)
    assert [r["precision"] for r in read_csv(tmp_path / "selfcheck-inception.csv")] == ["float32"]


def test_a_failing_check_fails_the_command_in_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: selfcheck.Context) -> selfcheck.Outcome:
        raise AssertionError("deliberately broken for this test")

    # One check raising, one whose own comparison fails (a tolerance nothing meets): both are FAIL lines.
    monkeypatch.setattr(runner, "CHECKS", {"resume": broken, "population": training.check_population})
    monkeypatch.setattr(training, "TRAJECTORY_TOLERANCE", -1.0)  # where check 2 reads it
    code = main(["bench", "--self-check", "--cpu", "--out", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == EXIT_FAILED
    lines = check_lines(err)
    verdict, detail = lines["resume"]
    # the exception and where it was raised, on the check's line
    assert verdict == "FAIL" and detail.startswith("AssertionError: deliberately broken for this test (at ")
    assert "test_selfcheck.py" in detail
    assert lines["population"][0] == "FAIL" and "|member - alone|" in lines["population"][1]
    assert [ln for ln in err.splitlines() if "deliberately broken" in ln] == [
        next(ln for ln in err.splitlines() if ln.startswith("[1/2] resume"))]  # said once, on its own line
    assert err.splitlines()[-1].endswith("FAILED: resume, population")
    assert [r["verdict"] for r in read_csv(tmp_path / selfcheck.SUMMARY_CSV)] == ["FAIL", "FAIL"]


def test_cpu_is_a_self_check_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--cpu", "--out", str(tmp_path)]) == EXIT_USAGE
    assert "--cpu goes with --self-check" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="where there is CUDA, the self-check runs")
def test_the_self_check_without_cuda_points_to_the_smoke_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--self-check", "--out", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--self-check --cpu" in err
    assert not (tmp_path / selfcheck.SUMMARY_CSV).exists()
