"""Throughput: ganzoo's trainer against a plain PyTorch loop on the same model and device.

The baseline is the loop of the common tutorials (PyTorch's DCGAN tutorial and its MLP cousins):
a torch DataLoader over host tensors, D ending in a sigmoid with BCELoss, separate forward passes
for real and fake, Adam with torch's defaults, and ``.item()`` on the losses every step. Both sides
build G and D from the same registered architecture with the same seed, and are timed in turns in
one process, so that every speed claim is a ratio measured in one run.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.core import rundir
from ganzoo.core.config import TrainConfig
from ganzoo.core.device import device_name, resolve_device
from ganzoo.core.errors import GanzooError
from ganzoo.data import Data, load_dataset

BENCH_CSV = "throughput.csv"
BENCH_FIGURE = "throughput"


@dataclasses.dataclass(frozen=True)
class BenchSpec:
    variants: tuple[str, ...] = ("vanilla", "nsgan", "dcgan")
    dataset: str = "fashion-mnist"  # dcgan needs images; MLPs flatten them
    batch_sizes: tuple[int, ...] = (64, 256)
    device: str = "auto"
    steps: int = 200  # timed steps per repeat
    warmup: int = 20  # steps before timing (allocation, cuDNN autotuning, compilation)
    repeats: int = 3  # ganzoo and baseline timed in turns; the median repeat counts
    fast: dict[str, Any] = dataclasses.field(default_factory=dict)  # FastPaths overrides for ganzoo

    @classmethod
    def quick(cls, **changes: Any) -> BenchSpec:
        """Small enough for CI on 2 CPU cores: still both loops, every variant, real data."""
        return dataclasses.replace(cls(dataset="digits", batch_sizes=(64,), steps=50, warmup=5, repeats=9), **changes)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TutorialLoop:
    """The tutorial GAN loop on G and D built exactly as ganzoo builds them (same seed, or the very same build)."""

    def __init__(self, config: TrainConfig, data: Data, device: torch.device,
                 networks: tuple[nn.Module, nn.Module] | None = None) -> None:
        """``networks``: G and D as built for ganzoo's side (``measure`` builds them once for both loops);
        None: built here, from the config's architecture and seed."""
        from ganzoo.zoo.variants import build_networks

        assert data.x is not None
        if networks is None:
            torch.manual_seed(config.seed)
            networks = build_networks(config, data.sample_shape, data.bounded)
        G, D = networks
        self.G, self.D = G.to(device), nn.Sequential(D, nn.Sigmoid()).to(device)
        self.device, self.z_dim, self.n_critic = device, config.z_dim, config.n_critic
        self.loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data.x), batch_size=config.batch_size, shuffle=True, drop_last=True)
        self.batches = self._forever()
        self.criterion = nn.BCELoss()
        g, d = config.g_adam, config.d_adam  # each network's own settings, as ganzoo's trainer uses them
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=g.lr, betas=(g.beta1, g.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=d.lr, betas=(d.beta1, d.beta2))
        self.losses: list[tuple[float, float]] = []

    def _forever(self) -> Iterator[torch.Tensor]:
        while True:
            for (x,) in self.loader:
                yield x

    def train_step(self) -> None:
        for _ in range(self.n_critic):
            real = next(self.batches).to(self.device)
            ones = torch.ones(real.size(0), 1, device=self.device)
            zeros = torch.zeros(real.size(0), 1, device=self.device)
            self.opt_d.zero_grad()
            loss_real = self.criterion(self.D(real).view(-1, 1), ones)
            loss_real.backward()
            fake = self.G(torch.randn(real.size(0), self.z_dim, device=self.device))
            loss_fake = self.criterion(self.D(fake.detach()).view(-1, 1), zeros)
            loss_fake.backward()
            self.opt_d.step()
        self.opt_g.zero_grad()
        loss_g = self.criterion(self.D(fake).view(-1, 1), ones)
        loss_g.backward()
        self.opt_g.step()
        self.losses.append((loss_real.item() + loss_fake.item(), loss_g.item()))


def timed_config(variant: str, dataset: str, batch_size: int, device: torch.device,
                 fast: dict[str, Any] | None = None) -> TrainConfig:
    """A config for timing steps: no logging, samples or checkpoints inside the timed window."""
    from ganzoo.zoo.variants import resolve_config

    return resolve_config(variant, dataset, overrides={
        "batch_size": batch_size, "device": str(device), "steps": 10**9, "log_every": 10**6, "sample_every": 0,
        "checkpoint_every": 0, **{f"fast.{k}": v for k, v in (fast or {}).items()}})


def _time_steps(step: Callable[[], None], n: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    _sync(device)
    return time.perf_counter() - start


def measure(variant: str, batch_size: int, spec: BenchSpec, log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Images/s of ganzoo's trainer and of the tutorial loop for one variant and batch size, timed in
    turns so that both see the same machine state: each repeat times both, in alternating order (ABBA),
    and the speedup is the median over repeats of each repeat's own ratio. A machine whose load changes
    during the run (another process, a neighbour VM) then slows both sides of a pair alike; a ratio of
    the two loops' medians, taken from different moments, read 0.44 here when a load stopped mid-run."""
    from ganzoo.training.trainer import Trainer
    from ganzoo.zoo.variants import build_networks

    device = resolve_device(spec.device)
    config = timed_config(variant, spec.dataset, batch_size, device, spec.fast)
    data = load_dataset(spec.dataset, "train", download=False)
    torch.manual_seed(config.seed)
    G, D = build_networks(config, data.sample_shape, data.bounded)  # once: each loop trains its own copy
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp) / "run", quiet=True, networks=(copy.deepcopy(G), copy.deepcopy(D)))
        baseline = TutorialLoop(config, data, device, networks=(G, D))
        loops = {"ganzoo": trainer.train_step, "baseline": baseline.train_step}
        for step in loops.values():
            _time_steps(step, spec.warmup, device)
        seconds: dict[str, list[float]] = {name: [] for name in loops}
        for repeat in range(spec.repeats):
            for name in (list(loops) if repeat % 2 == 0 else list(loops)[::-1]):
                seconds[name].append(_time_steps(loops[name], spec.steps, device))
        fast_paths = trainer.fast_paths()
        execution, precision = trainer.engine.runner.execution, trainer.engine.runner.precision_name
    images_per_step = batch_size * config.n_critic
    rows = []
    for name, times in seconds.items():
        median = statistics.median(times)
        rows.append({
            "variant": variant, "arch": config.arch, "dataset": spec.dataset, "loop": name, "batch_size": batch_size,
            "n_critic": config.n_critic, "steps_per_second": spec.steps / median,
            "images_per_second": spec.steps * images_per_step / median, "repeats": spec.repeats,
            "timed_steps": spec.steps, "device": device_name(device), "torch": torch.__version__,
            "dtype": "bf16-autocast" if config.bf16 and name == "ganzoo" else "float32",
            "fast_paths": fast_paths if name == "ganzoo" else "tutorial",
            "execution": execution if name == "ganzoo" else "eager (tutorial)",
            "precision": precision if name == "ganzoo" else "float32",
        })
    ratio = statistics.median(b / g for g, b in zip(seconds["ganzoo"], seconds["baseline"]))
    for row in rows:
        row["speedup_vs_baseline"] = ratio
    if log:
        log(f"{variant} batch {batch_size}: ganzoo {rows[0]['images_per_second']:.0f} img/s, "
            f"baseline {rows[1]['images_per_second']:.0f} img/s, x{ratio:.2f}")
    return rows


def run(spec: BenchSpec, log: Callable[[str], None] | None = None) -> Any:
    import pandas as pd

    rows = [row for variant in spec.variants for batch in spec.batch_sizes for row in measure(variant, batch, spec, log)]
    return pd.DataFrame(rows)


def write(frame: Any, out: Path) -> Path:
    """throughput.csv and a seaborn bar chart (png, svg) of images/s per variant, ganzoo vs baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    out.mkdir(parents=True, exist_ok=True)
    rundir.atomic_write(out / BENCH_CSV, lambda f: f.write(frame.to_csv(index=False).encode()))
    sizes = sorted(frame["batch_size"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.8 * len(sizes), 3.8), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        rows = frame[frame["batch_size"] == size]
        sns.barplot(data=rows, x="variant", y="images_per_second", hue="loop", ax=ax,
                    hue_order=["ganzoo", "baseline"])
        for bars in ax.containers:
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ratios = rows.groupby("variant", sort=False)["speedup_vs_baseline"].first()
        ax.set(title=f"batch {size}: " + ", ".join(f"{v} x{r:.1f}" for v, r in ratios.items()),
               xlabel="", ylabel="training images/s")
    devices = "; ".join(f"{d}, torch {t}" for d, t in frame[["device", "torch"]].drop_duplicates().itertuples(index=False))
    fig.suptitle(f"ganzoo's trainer vs the tutorial loop on {devices}", fontsize=9)
    fig.tight_layout()
    for ext in ("png", "svg"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=110)
        rundir.atomic_write(out / f"{BENCH_FIGURE}.{ext}", lambda f, b=buffer: f.write(b.getvalue()))
    plt.close(fig)
    return out / BENCH_CSV


def extraction(features: str, dataset: str, n: int, device: str = "auto", batch_size: int = 250,
               precision: str = "auto") -> dict[str, Any]:
    """Images/s of FID feature extraction of ``n`` generated images and the FID it gives, for a fixed
    untrained dcgan G (a first call extracts and caches the reference features; the timed one then
    extracts the generated side only, which is what each trial of a study costs)."""
    from ganzoo.core.config import EvalSpec
    from ganzoo.evaluate.metrics import evaluate
    from ganzoo.zoo.variants import build_architecture, resolve_config

    dev = resolve_device(device)
    data = load_dataset(dataset, "test", download=False)
    config = resolve_config("dcgan", dataset)
    torch.manual_seed(0)
    G, _ = build_architecture(config).build(sample_shape=data.sample_shape, z_dim=config.z_dim, bounded=data.bounded)
    G = G.to(dev).eval()
    spec = EvalSpec(features=features, n_samples=n, n_reference=n, batch_size=batch_size, precision=precision)
    evaluate(G, config.z_dim, dataset, data, spec, dev)  # reference features and weights, cached
    result = evaluate(G, config.z_dim, dataset, data, spec, dev)
    return {"features": result.get("extractor", features), "dataset": dataset, "n_samples": n, "fid": result["fid"],
            "precision": result["extractor_precision"], "batch_size": batch_size,
            "images_per_second": result["extraction_images_per_second"], "device": device_name(dev),
            "torch": torch.__version__}


POPULATION_CSV = "population.csv"


def population(variant: str, dataset: str, members: int, steps: int, device: str = "auto",
               batch_size: int = 64) -> dict[str, Any]:
    """Trials per hour of P members trained as one population against the same P trained one at a
    time by the (fast) single-run trainer, in one run: seeds 0..P-1, learning rates spread over
    [1e-4, 1e-3], ``steps`` steps each, no evaluation (training throughput only)."""
    from ganzoo.training.population import PopulationTrainer
    from ganzoo.training.trainer import Trainer
    from ganzoo.zoo.variants import resolve_config

    dev = resolve_device(device)

    def config(i: int) -> TrainConfig:
        lr = 1e-4 * 10 ** (i / max(members - 1, 1))
        return resolve_config(variant, dataset, overrides={
            "seed": i, "adam.lr": lr, "steps": steps, "batch_size": batch_size, "device": str(dev),
            "log_every": max(1, steps // 2), "sample_every": 0, "checkpoint_every": 0})

    configs = [config(i) for i in range(members)]
    with tempfile.TemporaryDirectory() as tmp:
        _sync(dev)
        start = time.perf_counter()
        PopulationTrainer(configs, [Path(tmp) / f"p{i}" for i in range(members)]).run()
        _sync(dev)
        together = time.perf_counter() - start
        start = time.perf_counter()
        for i, c in enumerate(configs):
            Trainer(c, Path(tmp) / f"s{i}", quiet=True).run()
        _sync(dev)
        alone = time.perf_counter() - start
    return {"variant": variant, "dataset": dataset, "members": members, "steps": steps, "batch_size": batch_size,
            "population_seconds": together, "one_at_a_time_seconds": alone,
            "population_trials_per_hour": 3600 * members / together, "one_at_a_time_trials_per_hour": 3600 * members / alone,
            "speedup": alone / together, "device": device_name(dev), "torch": torch.__version__}


def graph_vs_eager(variant: str, batch_size: int, spec: BenchSpec) -> dict[str, Any]:
    """Steps/s of the same run's step captured as one CUDA graph and run eagerly, timed in turns."""
    from ganzoo.training.trainer import Trainer

    device = resolve_device(spec.device)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {graph: Trainer(timed_config(variant, spec.dataset, batch_size, device,
                                                {**spec.fast, "cuda_graph": graph}), Path(tmp) / graph, quiet=True)
                    for graph in ("auto", "off")}
        for trainer in trainers.values():
            _time_steps(trainer.train_step, spec.warmup, device)
        seconds: dict[str, list[float]] = {graph: [] for graph in trainers}
        for _ in range(spec.repeats):
            for graph, trainer in trainers.items():
                seconds[graph].append(_time_steps(trainer.train_step, spec.steps, device))
        graphed = trainers["auto"].engine.runner
        rates = {graph: spec.steps / statistics.median(times) for graph, times in seconds.items()}
        return {"variant": variant, "dataset": spec.dataset, "batch_size": batch_size,
                "graph_steps_per_second": rates["auto"], "eager_steps_per_second": rates["off"],
                "speedup": rates["auto"] / rates["off"], "execution": graphed.execution,
                "precision": graphed.precision_name, "device": device_name(device), "torch": torch.__version__}


WIDTH_CSV = "population_width.csv"


def population_widths(variant: str, dataset: str, sizes: Sequence[int], steps: int = 30, arch: str | None = None,
                      device: str = "auto", batch_size: int = 64) -> list[dict[str, Any]]:
    """Member-steps/s of populations of each size (1: a single run, as a trial alone trains), each
    measured after its warm-up, and their ratio to the single run's."""
    from ganzoo.training.population import timed_members
    from ganzoo.zoo.variants import resolve_config

    dev = resolve_device(device)
    config = resolve_config(variant, dataset, arch=arch, overrides={"batch_size": batch_size, "device": str(dev)})
    rows = []
    for members in sizes:
        record = timed_members(config, members, steps)  # its peak memory is this size's alone (the engine resets it)
        rows.append({"variant": variant, "arch": config.arch, "dataset": dataset, "batch_size": batch_size,
                     "members": members, "member_steps_per_second": record["member_steps_per_second"],
                     "peak_memory_bytes": record["peak_memory_bytes"], "execution": record["execution"],
                     "precision": record["precision"], "device": record["device"], "torch": record["torch"]})
    single = next((r["member_steps_per_second"] for r in rows if r["members"] == 1), None)
    for row in rows:
        row["speedup_vs_single"] = row["member_steps_per_second"] / single if single else None
    return rows


def separate_processes(variant: str, dataset: str, n: int, steps: int = 200, arch: str | None = None,
                       device: str = "auto", batch_size: int = 64) -> dict[str, Any]:
    """What a user would do without populations: ``n`` plain ``ganzoo train`` processes at once on one
    device. Their aggregate member-steps/s is the sum of each run's own (warm-up excluded)."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        runs = [Path(tmp) / f"run-{i}" for i in range(n)]
        command = [sys.executable, "-m", "ganzoo", "train", "--variant", variant, "--dataset", dataset,
                   "--steps", str(steps), "--batch-size", str(batch_size), "--device", device,
                   "--log-every", str(max(1, steps // 4)), "--sample-every", "0", "--checkpoint-every", "0",
                   *(["--arch", arch] if arch else [])]
        processes = [subprocess.Popen([*command, "--seed", str(i), "--out", str(run)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True) for i, run in enumerate(runs)]
        errors = [p.communicate()[1] for p in processes]
        if any(p.returncode for p in processes):
            raise GanzooError(f"a ganzoo train process failed: {next(e for e in errors if e).strip()}")
        records = [rundir.read_json(run / rundir.THROUGHPUT) for run in runs]
    return {"variant": variant, "arch": arch, "dataset": dataset, "batch_size": batch_size, "processes": n,
            "member_steps_per_second": sum(r["member_steps_per_second"] for r in records),
            "device": records[0]["device"], "torch": records[0]["torch"], "precision": records[0]["precision"]}


def sweep_slice(preset: str, n_trials: int, steps: int, populations: Sequence[int | str] = ("auto", 1),
                variants: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
                n_samples: int | None = None, device: str | None = None) -> list[dict[str, Any]]:
    """Trials per hour of ``ganzoo sweep`` on a slice of ``preset`` (``n_trials`` trials of ``steps``
    steps per variant, evaluation included), once per population setting, in one run; each row's
    ``speedup`` is over the last setting's (one trial at a time by default)."""
    from ganzoo.sweep import Sweep, load_preset

    config = load_preset(preset)
    changes: dict[str, Any] = {"n_trials": n_trials, "steps": steps, "epochs": None, "pruner": "none"}
    if variants is not None:
        changes["variants"] = tuple(variants)
        changes["variant_settings"] = {v: s for v, s in config.variant_settings.items() if v in variants}
    if datasets is not None:
        changes["datasets"], changes["optional_datasets"] = tuple(datasets), ()
    if n_samples is not None:
        changes["evaluation"] = dataclasses.replace(config.evaluation, n_samples=n_samples)
    if device is not None:
        changes["device"] = device
    config = dataclasses.replace(config, **changes)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for population in populations:
            start = time.perf_counter()
            Sweep(f"slice-{population}", config, Path(tmp), population=population, log=lambda line: None,
                  progress=False).run()
            seconds = time.perf_counter() - start
            trials = n_trials * len(config.variants) * max(1, len(config.conditions)) * len(config.datasets)
            rows.append({"preset": preset, "population": str(population), "trials": trials, "steps": steps,
                         "n_samples": config.evaluation.n_samples, "seconds": seconds,
                         "trials_per_hour": 3600 * trials / seconds, "torch": torch.__version__})
    for row in rows:
        row["speedup"] = row["trials_per_hour"] / rows[-1]["trials_per_hour"]
    return rows


def protocol_hours(member_steps_per_second: float, preset: str = "fashion-mnist", n_train: int | None = None,
                   eval_images_per_second: float | None = None) -> dict[str, Any]:
    """The full protocol's GPU-hours at a measured training speed (member-steps per second at n_critic
    1): (runs x steps a run) / that speed, where the runs are every pair's trials times seeds and its
    repeat runs; under a D-update budget a run at n_critic 1 takes the most steps (5 critic steps make
    a fifth of them, each dearer, but with fewer G updates in all), so this is an upper bound. Given the
    extraction speed, each run's evaluations (every eval_every and at the end) of n_samples images are
    added (the reference statistics are extracted once and cached)."""
    from ganzoo.protocols.budget import steps_for
    from ganzoo.sweep import load_preset

    preset_config = load_preset(preset)
    if n_train is None:
        n_train = len(load_dataset(preset_config.datasets[0], "train", download=False))
    updates = preset_config.updates(n_train)
    steps = steps_for(updates, preset_config.budget, 1)
    pairs = len(preset_config.variants) * max(1, len(preset_config.conditions)) * len(preset_config.datasets)
    runs = pairs * (preset_config.n_trials * preset_config.seeds + preset_config.repeat_seeds)
    train = runs * steps / member_steps_per_second / 3600
    evaluations = 1 + (updates - 1) // preset_config.eval_every if preset_config.eval_every else 1
    evaluation = (runs * evaluations * preset_config.evaluation.n_samples / eval_images_per_second / 3600
                  if eval_images_per_second else None)
    return {"preset": preset, "runs": runs, "steps_per_run": steps, "member_steps": runs * steps,
            "training_hours": train, "evaluation_hours": evaluation,
            "total_hours": train + evaluation if evaluation is not None else None}


def check_spec(spec: BenchSpec) -> None:
    from ganzoo.zoo.variants import VARIANTS

    for v in spec.variants:
        VARIANTS.get(v)
    if not spec.batch_sizes or min(spec.batch_sizes) < 1:
        raise GanzooError(f"batch sizes must be >= 1, got {spec.batch_sizes}")
    if spec.steps < 1 or spec.repeats < 1 or spec.warmup < 0:
        raise GanzooError("steps and repeats must be >= 1 and warmup >= 0")


def parse_sizes(text: str, flag: str = "--batch-sizes") -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x)
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise GanzooError(f"{flag} must be comma-separated positive integers, got {text!r}")
    return sizes


def variants_list(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.split(",") if x)


POPULATION_VARIANT = "nsgan"  # what --population and --widths time unless --variants names one


def population_variant(variants: str | None) -> str:
    """The variant a population benchmark times: the first of ``--variants``, else POPULATION_VARIANT."""
    return variants_list(variants)[0] if variants else POPULATION_VARIANT


def save_rows(rows: Sequence[dict[str, Any]], path: Path, append: bool = False) -> Path:
    """Write benchmark rows as a CSV (atomically); ``append``: after the rows already there, so that
    measurements made one at a time (``--population P`` for several P) gather in one table."""
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    if append and path.exists():
        frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rundir.atomic_write(path, lambda f: f.write(frame.to_csv(index=False).encode()))
    return path


__all__: Sequence[str] = ("BenchSpec", "TutorialLoop", "measure", "run", "write", "extraction", "population")
