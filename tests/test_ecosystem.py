"""Meeting researchers in their tools: TensorBoard event files read back with tensorboard's own reader,
a study's storage opened by optuna-dashboard's own loading code, and exported generators loaded back
to generate what the run generated."""

from __future__ import annotations

import json
import sys
from io import BytesIO
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
import torch
from support.paths import README, ROOT
from support.presets import tiny_preset

from ganzoo import TrainConfig, load_generator
from ganzoo.cli import main
from ganzoo.core.rundir import load_checkpoint, read_json, read_jsonl
from ganzoo.sweep import Sweep, load_preset
from ganzoo.sweep.files import OBJECTIVE
from ganzoo.sweep.storage import storage_kind
from ganzoo.zoo.variants import build_networks

TINY = ["--batch-size", "32", "--device", "cpu", "--no-progress"]


def event_scalars(log_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, int]]:
    """Scalars (tag -> (step, value)) and images (tag -> how many) as tensorboard itself reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    return scalars, {tag: len(events.Images(tag)) for tag in events.Tags()["images"]}


# ---- TensorBoard ------------------------------------------------------------------------------------

def test_a_run_writes_its_statistics_metrics_and_samples_to_tensorboard(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--variant", "began", "--dataset", "digits", "--steps", "20", "--log-every", "5",
                 "--sample-every", "10", "--eval-every", "10", "--features", "domain", "--n-samples", "100",
                 "--out", str(run), "--tensorboard", *TINY]) == 0
    assert read_json(run / "config.json")["tensorboard"] == str(run / "tensorboard")
    scalars, images = event_scalars(run / "tensorboard")
    stats = list(read_jsonl(run / "stats.jsonl"))
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "images_per_second", "loss_k"):
        assert scalars[f"train/{key}"] == [(r["step"], pytest.approx(r[key], rel=1e-6, abs=1e-12)) for r in stats], key
    metrics = list(read_jsonl(run / "metrics.jsonl"))
    assert scalars["eval/fid"] == [(m["step"], pytest.approx(m["fid"], rel=1e-6)) for m in metrics]
    assert [s for s, _ in scalars["eval/classes_covered"]] == [10, 20]
    assert images == {"samples": 2}  # as samples_000010.png and samples_000020.png


def test_a_sweep_writes_one_log_directory_with_a_run_per_trial_and_seed(tmp_path):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    preset = tiny_preset(tmp_path, n_trials=2, seeds=2, steps=20)
    text = preset.read_text().replace('variants = ["nsgan"]', 'variants = ["nsgan", "vanilla"]')
    preset.write_text(text.replace("[evaluation]", "tensorboard = true\neval_every = 10\n\n[evaluation]"))
    Sweep("s", load_preset(str(preset)), tmp_path / "results", population=2).run()
    log_dir = tmp_path / "results" / "s" / "tensorboard"
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(log_dir))
    multiplexer.Reload()
    runs = multiplexer.Runs()
    assert sorted(runs) == [f"{pair}/trial-{t:04d}/seed-{s}" for pair in ("nsgan@ring8", "vanilla@ring8")
                            for t in (0, 1) for s in (0, 1)]
    for run, tags in runs.items():
        assert {"train/d_loss", "train/g_loss", "eval/fid", "eval/modes_covered"} <= set(tags["scalars"]), run
        assert [e.step for e in multiplexer.Scalars(run, "eval/fid")] == [10, 20]


def test_tensorboard_is_an_output_not_a_setting_of_the_study(tmp_path):
    import dataclasses

    from ganzoo.core.config import to_dict
    from ganzoo.core.errors import GanzooError
    from ganzoo.sweep.config import settings_difference

    config = load_preset(str(tiny_preset(tmp_path, n_trials=1, steps=10)))
    Sweep("s", config, tmp_path / "results").run()
    stored = read_json(tmp_path / "results" / "s" / "sweep.json")["settings"]
    on = dataclasses.replace(config, tensorboard=True)
    assert settings_difference(stored, to_dict(on)) == []
    Sweep("s", on, tmp_path / "results").run()  # the same study, resumed with TensorBoard on: not refused
    with pytest.raises(GanzooError, match="seeds 1 there, 2 now"):  # a real setting still is
        Sweep("s", dataclasses.replace(on, seeds=2), tmp_path / "results").run()


# ---- optuna-dashboard ---------------------------------------------------------------------------------

def dashboard_get(app, path: str) -> dict:
    """GET ``path`` from optuna-dashboard's WSGI app, as its web page does."""
    route, _, query = path.partition("?")
    environ = {"PATH_INFO": route, "QUERY_STRING": query, "REQUEST_METHOD": "GET", "wsgi.input": BytesIO()}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), (path, status, body[:300])
    return json.loads(body)


def test_optuna_dashboard_opens_a_finished_study_as_it_is(store, tmp_path):
    from optuna_dashboard._app import create_app
    from optuna_dashboard._storage_url import get_storage

    Sweep("s", load_preset(str(tiny_preset(tmp_path, n_trials=2, seeds=2, steps=10))), tmp_path / "r",
          storage=store).run()
    # The argument a user gives optuna-dashboard, opened by optuna-dashboard's own loader.
    app = create_app(get_storage(storage_kind(store).dashboard_url(store)))
    (summary,) = [s for s in dashboard_get(app, "/api/studies")["study_summaries"] if s["study_name"] == "s/nsgan@ring8"]
    detail = dashboard_get(app, f"/api/studies/{summary['study_id']}?after=0")
    assert detail["objective_names"] == [OBJECTIVE]
    trials = detail["trials"]
    assert [t["state"] for t in trials] == ["Complete", "Complete"]
    for trial in trials:
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert attrs["status"] == "complete" and attrs["seeds"] == "[0, 1]", attrs
        assert float(attrs["fid_mean"]) == pytest.approx(trial["values"][0])
        assert len(json.loads(attrs["fid_per_seed"])) == 2
    study_attrs = {a["key"]: a["value"] for a in detail["user_attrs"]}
    assert study_attrs["variant"] == "nsgan" and study_attrs["dataset"] == "ring8"


# ---- shareable generators -------------------------------------------------------------------------------

@pytest.mark.parametrize("variant, dataset, extra", [
    ("dcgan", "digits", ["--set", "arch.width=8", "--g-ema-decay", "0.9"]),  # images, G's moving average exported
    ("nsgan", "ring8", []),  # points, G itself
])
def test_an_exported_generator_loads_back_and_generates_what_the_run_did(tmp_path, capsys, variant, dataset, extra):
    run, out = tmp_path / "run", tmp_path / "export"
    assert main(["train", "--variant", variant, "--dataset", dataset, "--steps", "10", "--log-every", "5",
                 "--eval-every", "10", "--n-samples", "100", "--out", str(run), *extra, *TINY]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "generator.json", "generator.safetensors"]

    G = load_generator(out)
    config = TrainConfig.from_dict(read_json(run / "config.json"))
    state = load_checkpoint(run / "checkpoint.pt")
    ema = config.g_ema_decay > 0
    assert ema == (variant == "dcgan")
    shape = tuple(read_json(run / "data.json")["sample_shape"])
    reference, _ = build_networks(config, shape, len(shape) == 3)
    reference.load_state_dict(state["G_ema" if ema else "G"])
    reference.eval()
    z = torch.randn(7, config.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(G(z), reference(z))
    assert not G.training
    assert G.sample(5, seed=1).shape == (5, *shape) and torch.equal(G.sample(5, seed=1), G.sample(5, seed=1))

    card = (out / "README.md").read_text()
    fid = list(read_jsonl(run / "metrics.jsonl"))[-1]
    assert f"FID {fid['fid']:.4g} at step 10" in card and fid["extractor"] in card and "100 generated samples" in card
    assert f"`{variant}`" in card and "seed 0" in card and "ganzoo.load_generator" in card
    assert ("G's moving average (decay 0.9 from G update 0, BatchNorm statistics recomputed)" in card) == ema
    # The weights are plain tensors: safetensors' own reader, no pickle.
    from safetensors.torch import load_file

    assert set(load_file(str(out / "generator.safetensors"))) == set(state["G"])


def test_an_export_replaces_only_an_export_and_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    run, out = tmp_path / "run", tmp_path / "export"
    assert main(["train", "--variant", "nsgan", "--dataset", "ring8", "--steps", "4", "--log-every", "2",
                 "--out", str(run), *TINY]) == 0
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    capsys.readouterr()
    for flags in ([], ["--overwrite"]):  # a folder that is not an export is never replaced, asked or not
        assert main(["export", str(run), "--out", str(out), *flags]) == 2
        err = capsys.readouterr().err
        assert "not a ganzoo export (mine.txt)" in err and len(err.strip().splitlines()) == 1, err
        assert sorted(p.name for p in out.iterdir()) == ["mine.txt"] and (out / "mine.txt").read_text() == "keep me"
    (out / "mine.txt").unlink()
    assert main(["export", str(run), "--out", str(out)]) == 0, "an empty folder takes an export"
    first = (out / "generator.json").read_text()
    assert main(["export", str(run), "--out", str(out)]) == 2 and "already holds an export" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(out), "--overwrite"]) == 0, "an export is replaced when asked"
    assert (out / "generator.json").read_text() == first and load_generator(out).z_dim > 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "generator.json", "generator.safetensors"], \
        "no staging folder is left"
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["export", str(run), "--out", "."]) == 0 and main(["export", str(run), "--out", ".", "--overwrite"]) == 0
    assert load_generator(here).z_dim > 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "holds no run" in err and "Traceback" not in err
    with pytest.raises(Exception, match="holds no exported generator"):
        load_generator(tmp_path / "nothing")


def test_the_readme_says_how_to_install_without_cuda_and_lists_every_extra():
    readme = README.read_text()
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
    for extra in project["optional-dependencies"]:
        assert f"`{extra}`" in readme and f".[{extra}]" in readme, extra
