"""Shareable generators: ``ganzoo export RUN --out DIR`` writes a run's G as safetensors (no pickles),
with the configuration that builds it and a model card; ``ganzoo.load_generator(DIR)`` builds G from
them alone, without the training state, and generates what the run's G generated from the same noise.

The weights are the ones the run was scored on: G's moving average where the run kept one
(``g_ema_decay``), else G's own.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo.core import rundir
from ganzoo.core.config import TrainConfig
from ganzoo.core.errors import GanzooError

WEIGHTS, SETTINGS, CARD = "generator.safetensors", "generator.json", "README.md"
EXPORT_FILES = (WEIGHTS, SETTINGS, CARD)
FORMAT = 1  # generator.json's layout


class Generator(nn.Module):
    """An exported G: ``network(z)`` for z of shape (n, z_dim) gives n samples of ``sample_shape``
    (images in [-1, 1])."""

    def __init__(self, network: nn.Module, z_dim: int, sample_shape: tuple[int, ...], config: TrainConfig) -> None:
        super().__init__()
        self.network, self.z_dim, self.sample_shape, self.config = network, z_dim, sample_shape, config

    def forward(self, z: Tensor) -> Tensor:
        return self.network(z)

    def sample(self, n: int, seed: int = 0, device: str | torch.device = "cpu") -> Tensor:
        """``n`` samples from noise seeded by ``seed``: the samples ganzoo's evaluation draws with that seed."""
        from ganzoo.zoo.samples import generate

        return generate(self.network, self.z_dim, n, seed, torch.device(device))


def export_run(run_dir: Path | str, out: Path | str, overwrite: bool = False) -> Path:
    """Write the run's generator to ``out``: a new or empty folder, or (``overwrite``) an earlier export,
    which is replaced. A folder holding anything else is refused: an export replaces only an export."""
    from safetensors.torch import save_file

    from ganzoo.core.plugins import load_plugin

    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / rundir.CONFIG).is_file():
        raise GanzooError(f"{run_dir} holds no run ({rundir.CONFIG} not found)")
    _check_target(out, overwrite)
    config = TrainConfig.from_dict(rundir.read_json(run_dir / rundir.CONFIG))
    for spec in config.plugins:  # the architecture may be a plugin's
        load_plugin(spec)
    state = rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)
    averaged = config.g_ema_decay > 0 and "G_ema" in state
    weights = {k: v.detach().cpu().contiguous() for k, v in state["G_ema" if averaged else "G"].items()}
    data = rundir.read_json(run_dir / rundir.DATA)
    status = rundir.read_json(run_dir / rundir.STATUS) if (run_dir / rundir.STATUS).exists() else {}
    metrics = list(rundir.read_jsonl(run_dir / rundir.METRICS)) if (run_dir / rundir.METRICS).exists() else []
    settings = {
        "format": FORMAT, "config": config.to_dict(), "sample_shape": data["sample_shape"],
        "z_dim": config.z_dim, "step": int(state["step"]), "weights": "G's moving average" if averaged else "G",
        "status": status.get("status"), "metrics": metrics[-1] if metrics else None, "torch": torch.__version__,
    }
    _build(settings)  # the folder must load: refuse to write one that would not
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".export-"))  # inside out: renames stay on its filesystem
    try:
        save_file(weights, str(staging / WEIGHTS), metadata={"format": "pt", "ganzoo": str(FORMAT)})
        (staging / SETTINGS).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
        (staging / CARD).write_text(model_card(settings, data))
        umask = rundir.umask()  # mkdtemp's files would keep 0600: the modes a plain open() would give
        for file in staging.iterdir():
            os.chmod(file, 0o666 & ~umask)
        # generator.json goes first and comes back last: an export cut short in between is no export
        # (load_generator refuses it, a new export --overwrite replaces it), never new settings on old weights.
        (out / SETTINGS).unlink(missing_ok=True)
        for name in (WEIGHTS, CARD, SETTINGS):
            os.replace(staging / name, out / name)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _check_target(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` whose contents an export would lose: anything but an earlier export (only with
    ``overwrite``), an empty folder, or nothing."""
    if not out.exists():
        return
    if not out.is_dir():
        raise GanzooError(f"--out {out} is a file, not a folder")
    present = sorted(p.name for p in out.iterdir() if not p.name.startswith(".export-"))
    if not present:
        return
    foreign = [name for name in present if name not in EXPORT_FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise GanzooError(f"{out} holds files that are not a ganzoo export ({shown}); --overwrite replaces only an "
                          "export: choose a new or empty --out")
    if not overwrite:
        raise GanzooError(f"{out} already holds an export; choose another --out or pass --overwrite to replace it")


def _build(settings: dict[str, Any]) -> Generator:
    from ganzoo.zoo.variants import build_networks

    config = TrainConfig.from_dict(settings["config"])
    sample_shape = tuple(settings["sample_shape"])
    network, _ = build_networks(config, sample_shape, bounded=len(sample_shape) == 3)  # images are (C, H, W)
    return Generator(network, settings["z_dim"], sample_shape, config)


def load_generator(folder: Path | str, device: str | torch.device = "cpu") -> Generator:
    """The generator ``ganzoo export`` wrote to ``folder``, in eval mode on ``device``. Its weights are
    read from safetensors: loading runs no code from the folder (a plugin architecture's plugin must be
    loadable, as the run's config names it)."""
    from safetensors.torch import load_file


    folder = Path(folder)
    try:
        settings = json.loads((folder / SETTINGS).read_text())
    except FileNotFoundError:
        raise GanzooError(f"{folder} holds no exported generator ({SETTINGS} not found)") from None
    if settings.get("format") != FORMAT:
        raise GanzooError(f"{folder}: generator format {settings.get('format')!r}; this ganzoo reads {FORMAT}")
    _load_plugins(settings["config"], folder)
    G = _build(settings)
    G.network.load_state_dict(load_file(str(folder / WEIGHTS)))
    return G.to(device).eval()


def _load_plugins(config: dict[str, Any], folder: Path) -> None:
    """The plugins the run named. One that cannot be loaded here (the folder was copied to another machine)
    is fine once the caller has imported it: only an architecture still unknown is an error."""
    from ganzoo.core.plugins import load_plugin
    from ganzoo.zoo.architectures import ARCHITECTURES

    problems = []
    for spec in config.get("plugins", []):
        try:
            load_plugin(spec)
        except GanzooError as e:
            problems.append(str(e))
    if problems and config["arch"] not in ARCHITECTURES:
        raise GanzooError(f"{folder}: its architecture {config['arch']!r} is registered by a plugin that cannot be "
                          f"loaded here ({'; '.join(problems)}): import the plugin (or ganzoo.core.plugins.load_plugin(PATH)) "
                          "before load_generator")


def model_card(settings: dict[str, Any], data: dict[str, Any]) -> str:
    """README.md of an exported generator: what it is, how it was trained and scored, how to load it."""
    from ganzoo.zoo.variants import VARIANTS

    c = settings["config"]
    variant = VARIANTS.get(c["variant"]) if c["variant"] in VARIANTS else None
    m = settings["metrics"]
    if m and m.get("fid") is not None:
        against = m["reference"] + (f" ({m['n_reference']:,} samples)" if m.get("n_reference") else "")
        score = (f"FID {m['fid']:.4g} at step {m['step']}: {m['n_samples']:,} generated samples against {against}, "
                 f"features by {m['extractor']} ({m.get('extractor_precision', 'precision unrecorded')}). FIDs "
                 "compare only with the same extractor and sample counts.")
    else:
        score = "not evaluated (ganzoo eval RUN scores a run before export)."
    g, d = c["g_adam"], c["d_adam"]
    def named(kind: str, name: str, params: dict[str, Any] | None) -> str:
        return f"{kind} `{name}`" + (" " + ", ".join(f"{k} {v}" for k, v in params.items()) if params else "")

    parts = [named("loss", c["loss"], c.get("loss_params")), named("architecture", c["arch"], c.get("arch_params"))]
    if c.get("penalty", "none") != "none":
        parts.append(named("penalty", c["penalty"], c.get("penalty_params")))
    if c.get("d_spectral_norm"):
        parts.append("spectral norm in D")
    if c.get("d_weight_clip"):
        parts.append(f"D's weights clipped to {c['d_weight_clip']:g}")
    lines = [
        f"# ganzoo generator: {c['variant']} on {c['dataset']}",
        "",
        f"- **Variant**: `{c['variant']}`" + (f": {variant.description}" if variant and variant.description else ""),
        f"- **Trained as**: {'; '.join(parts)}",
        f"- **Dataset**: `{c['dataset']}` (training samples of shape {tuple(settings['sample_shape'])}"
        + (f", {data['samples']:,} of them" if data.get("samples") else "") + ")",
        f"- **Score**: {score}",
        f"- **Training**: {settings['step']:,} of {c['steps']:,} steps ({settings['status'] or 'unknown status'}), "
        f"batch {c['batch_size']}, {c['n_critic']} D update(s) per G update, Adam G lr {g['lr']:g} betas "
        f"({g['beta1']:g}, {g['beta2']:g}), D lr {d['lr']:g} betas ({d['beta1']:g}, {d['beta2']:g}), seed {c['seed']}",
        f"- **Weights**: {settings['weights']}"
        + (f" (decay {c['g_ema_decay']:g} from G update {c.get('g_ema_start', 0)}, BatchNorm statistics recomputed)"
           if settings["weights"] != "G" else "")
        + f"; z of {settings['z_dim']} dimensions, N(0, 1)"
        + (", which G's first module maps to U(-1, 1), the noise it was trained on" if c.get("z_dist") == "uniform"
           else "") + f"; trained with torch {settings['torch']}",
        "",
        "## Load",
        "",
        *([f"Needs the plugin{'s' if len(c['plugins']) > 1 else ''} it was trained with, which "
           f"register{'' if len(c['plugins']) > 1 else 's'} its architecture `{c['arch']}`: "
           + ", ".join(f"`{p}`" for p in c["plugins"]) + ". `load_generator` loads "
           "them from there; elsewhere, import the plugin first.", ""] if c.get("plugins") else []),
        "```python",
        "import ganzoo",
        "",
        'G = ganzoo.load_generator("path/to/this/folder")  # safetensors: no code is unpickled',
        "samples = G.sample(16, seed=0)  # or G(z) for z of shape (n, G.z_dim)"
        + (", images in [-1, 1]" if len(settings["sample_shape"]) == 3 else ""),
        "```",
        "",
        f"Files: `{WEIGHTS}` (G's weights), `{SETTINGS}` (the run's configuration and last evaluation), this card.",
        "",
    ]
    return "\n".join(lines)
