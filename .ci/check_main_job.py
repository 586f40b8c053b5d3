"""CI's check of the README's main job (``ganzoo sweep --preset smoke``) on a fresh clone: every
pair that ran finished all its trials, without a failure, and the report was written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from ganzoo.sweep import SWEEP_FILE, TRIALS_CSV, load_preset

STUDY = Path("runs") / "smoke"


def main() -> int:
    meta = json.loads((STUDY / SWEEP_FILE).read_text())
    n_trials = load_preset("smoke").n_trials
    trials = pd.read_csv(STUDY / TRIALS_CSV)
    problems = []
    if not meta["pairs"]:
        problems.append("no (variant, dataset) pair ran")
    preset = load_preset("smoke")
    for pair in meta["pairs"]:
        variant, dataset = pair.split("@")
        rows = trials[(trials["variant"] == variant) & (trials["dataset"] == dataset)]
        for phase, wanted in (("search", n_trials), ("repeat", preset.repeat_seeds)):
            mine = rows[rows["phase"] == phase]
            complete = int((mine["state"] == "COMPLETE").sum())
            if complete != wanted:
                problems.append(f"{pair}: {complete} of {wanted} {phase} trials complete ({mine['state'].tolist()})")
    for name in ("report.md", "report.html"):
        if not (STUDY / name).is_file() or (STUDY / name).stat().st_size == 0:
            problems.append(f"{STUDY / name} was not written")
    for problem in problems:
        print(f"ci: main job: {problem}", file=sys.stderr)
    if not problems:
        print(f"ci: main job: {len(meta['pairs'])} pairs x {n_trials} trials complete, report written "
              f"(skipped: {'; '.join(meta['skipped']) or 'none'})", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
