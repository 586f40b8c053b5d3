"""A sweep's configuration: ``SweepConfig`` (the keys of a preset file), the shipped presets, and the
comparison of a stored study's settings with the current ones.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ganzoo.core.config import EVALUATION_DEFAULTS, EvalSpec, from_dict, to_dict
from ganzoo.core.errors import GanzooError
from ganzoo.evaluate.features import check_spec
from ganzoo.protocols.budget import (
    D_UPDATES,
    G_UPDATES,
    check_unit,
    steps_for,
    updates_of,
)
from ganzoo.protocols.shipped import preset_dir, shipped_presets
from ganzoo.sweep.spaces import parse_distribution

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
SPACES = ("wide", "narrow")
OBJECTIVES = ("final", "best")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    variants: tuple[str, ...]
    datasets: tuple[str, ...]
    n_trials: int = 10  # finished trials per (variant, dataset)
    seeds: int = 1  # every configuration runs with seeds 0..seeds-1; the objective is their mean
    sampler: str = "tpe"
    pruner: str = "none"
    space: str = "wide"
    arch: str | None = None  # one architecture for every loss (Lucic et al. 2018)
    # What steps, epochs and eval_every count (ganzoo.protocols.budget): g_updates (a step is n_critic D updates
    # and one G update) or d_updates (every trial the same D updates, whatever its n_critic: compare_gan's).
    budget: str = D_UPDATES
    steps: int = 1000  # the budget, in its unit
    epochs: float | None = None  # instead of steps: epochs of epoch_size images, at batch_size an update
    epoch_size: int | None = None  # images in an epoch (None: the training split's)
    batch_size: int = 64
    eval_every: int = 0  # the budget's unit between evaluations (pruning, learning curves, objective best); 0: final only
    objective: str = "final"  # a run's FID: at its end (final) or at its best evaluation (best: compare_gan's)
    default_trial: bool = True  # the first trial is the space's default configuration, as compare_gan's
    repeat_seeds: int = 0  # after the search, each study's best configuration again on this many new seeds
    reference: str | None = None  # the published protocol this follows (ganzoo.protocols.REFERENCES), for its table
    evaluation: EvalSpec = EVALUATION_DEFAULTS["during training"]
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # fixed dotted settings
    variant_settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # {variant: {key: value}}
    extra_space: dict[str, Any] = dataclasses.field(default_factory=dict)  # {key: {choice|uniform|log_uniform: ...}}
    device: str = "auto"
    sampler_seed: int = 0
    optional_datasets: tuple[str, ...] = ()  # used when present, skipped with a note otherwise
    # Each run also writes TensorBoard event files, under the study's tensorboard/ (one log directory
    # for the whole sweep). An output, not a setting of the study: it may change when a study resumes.
    tensorboard: bool = False
    # {label: {key: value}}: every variant runs under each set of fixed settings, as a study of its own
    # named VARIANT+LABEL (Kurach et al. 2019's loss x normalisation grid); {}: each variant as it is
    conditions: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Plugin files (absolute paths) and modules its variants, losses, architectures or datasets come
    # from: every run and worker loads them, and each run's config.json names them. Where code lives,
    # not what runs: never compared between runs of a study (a plugin moved keeps its study).
    plugins: tuple[str, ...] = ()

    def validate(self) -> None:
        from ganzoo.zoo.variants import VARIANTS

        if not self.variants or not self.datasets:
            raise GanzooError("a sweep needs at least one variant and one dataset")
        for name in self.variants:
            VARIANTS.get(name)
        for field, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("space", SPACES)):
            if getattr(self, field) not in allowed:
                raise GanzooError(f"{field} must be one of {', '.join(allowed)}, got {getattr(self, field)!r}")
        for field in ("n_trials", "seeds", "steps", "batch_size"):
            if getattr(self, field) < 1:
                raise GanzooError(f"{field} must be >= 1, got {getattr(self, field)}")
        for field in ("eval_every", "repeat_seeds"):
            if getattr(self, field) < 0:
                raise GanzooError(f"{field} must be >= 0, got {getattr(self, field)}")
        check_unit(self.budget)
        if self.epochs is not None and self.epochs <= 0:
            raise GanzooError(f"epochs must be > 0, got {self.epochs}")
        if self.epoch_size is not None and self.epoch_size < 1:
            raise GanzooError(f"epoch_size must be >= 1 (images), got {self.epoch_size}")
        if self.objective not in OBJECTIVES:
            raise GanzooError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.reference is not None:
            from ganzoo.protocols import REFERENCES

            REFERENCES.get(self.reference)
        unknown = sorted(set(self.variant_settings) - set(self.variants))
        if unknown:
            raise GanzooError(f"variant_settings for variants not in the sweep: {', '.join(unknown)}")
        for key, spec in self.extra_space.items():
            parse_distribution(key, spec)
        for label, settings in self.conditions.items():
            if not label or any(c.isspace() or c in "@+/:" for c in label):
                raise GanzooError(f"condition label must be a plain word (no whitespace, @, +, / or :), got {label!r}")
            if not isinstance(settings, Mapping) or not settings:
                raise GanzooError(f"conditions.{label}: expected a table of settings (key = value), got {settings!r}")
        if self.pruner != "none" and self.eval_every == 0:
            raise GanzooError("a pruner needs intermediate results: set eval_every > 0")
        check_spec(self.evaluation)

    def run_config(self, pair: Pair, **overrides: Any) -> Any:
        """A run config of ``pair``: the preset's settings, the variant's own, its condition's, then
        ``overrides`` (a trial's parameters and seed, or what a probe needs)."""
        from ganzoo.zoo.variants import resolve_config

        condition = self.conditions[pair.condition] if pair.condition is not None else {}
        return resolve_config(pair.variant, pair.dataset, arch=self.arch, overrides={
            **self.settings, **self.variant_settings.get(pair.variant, {}), **condition, "plugins": self.plugins,
            **overrides})

    def search_space(self, pair: Pair) -> dict[str, Any]:
        """The dimensions of a trial of ``pair``: its variant's wide or narrow space on the pair's
        architecture (ganzoo.protocols.ranges.on_arch), then extra_space. One-valued ones are fixed, not searched."""
        from ganzoo.protocols.ranges import on_arch
        from ganzoo.zoo.variants import VARIANTS

        v = VARIANTS.get(pair.variant)
        space = on_arch(v.search_space if self.space == "wide" else v.narrow_space, self.arch or v.arch)
        space.update({k: parse_distribution(k, spec) for k, spec in self.extra_space.items()})
        return space

    def updates(self, n_train: int) -> int:
        """The budget in its unit: ``steps``, or ``epochs`` of ``epoch_size`` (else ``n_train``) images."""
        if self.epochs is None:
            return self.steps
        return updates_of(self.epochs, self.epoch_size or n_train, self.batch_size)

    def run_length(self, n_critic: int, n_train: int) -> tuple[int, int]:
        """A run's engine steps and the steps between its evaluations (0: final only), at ``n_critic``."""
        steps = steps_for(self.updates(n_train), self.budget, n_critic)
        every = steps_for(self.eval_every, self.budget, n_critic) if self.eval_every else 0
        return steps, every


@dataclasses.dataclass(frozen=True)
class Pair:
    """One study of a sweep: a variant (under a condition) on a dataset."""

    variant: str
    dataset: str
    condition: str | None = None  # a label of SweepConfig.conditions

    @property
    def label(self) -> str:
        """The variant as trials and reports name it: VARIANT, or VARIANT+CONDITION."""
        return self.variant if self.condition is None else f"{self.variant}+{self.condition}"

    @property
    def name(self) -> str:
        return f"{self.label}@{self.dataset}"


# ---- settings of a stored study ------------------------------------------------------------

_MISSING = object()


def _leaves(cls: type, prefix: str = "") -> list[str]:
    """Dotted paths of a config's settings: nested dataclasses are walked, dicts are one setting."""
    import typing

    hints = typing.get_type_hints(cls)
    out: list[str] = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        path = prefix + field.name
        out.extend(_leaves(hint, path + ".") if dataclasses.is_dataclass(hint) else [path])
    return out


def _get(tree: Mapping[str, Any] | None, path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{prefix}.{key}").items()}
    return {prefix: value}


# What a sweep writes besides its results, and where its code lives: never compared between runs of a study.
OUTPUTS = {"tensorboard", "plugins"}
# Settings ganzoo gained after studies began whose value in effect before differs from today's default:
# a study stored without one ran that way.
BEFORE = {"default_trial": False, "budget": G_UPDATES, "evaluation.mode_rule": "one-percent"}


def settings_difference(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, stored value, current value) for each setting that differs.

    A setting the stored study lacks was added to ganzoo after the study began; it counts as its
    default, which keeps the behaviour of the version that did not have it. So an upgrade never
    locks a user out of their own study, while a setting they changed is always caught. Settings
    ganzoo no longer has cannot change a run and are ignored.
    """
    default = to_dict(SweepConfig(variants=(), datasets=()))
    diff: list[tuple[str, Any, Any]] = []
    for path in _leaves(SweepConfig):
        if path in OUTPUTS:
            continue
        theirs, mine = _get(stored, path), _get(current, path)
        if theirs is _MISSING:
            theirs = BEFORE.get(path, _get(default, path))
        if theirs == mine:
            continue
        if isinstance(theirs, Mapping) and isinstance(mine, Mapping):  # name the entries that differ
            a, b = _flat(theirs, path), _flat(mine, path)
            diff.extend((k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        else:
            diff.append((path, theirs, mine))
    return diff


def record_difference(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, stored value, current value) for each leaf of two pairs' protocol records that
    differs. A run setting the stored record lacks was added to ganzoo since; it counts as its default
    (the run record is a TrainConfig's, whose new fields default to the behaviour before them); one the
    current record lacks is no longer a setting and is ignored."""
    from ganzoo.core.config import TrainConfig

    default_run = to_dict(TrainConfig(variant="", dataset="", loss="", arch=""))
    a, b = _flat(stored, "protocol"), _flat(current, "protocol")
    diff = []
    for key in sorted(set(a) | set(b)):
        theirs, mine = a.get(key, _MISSING), b.get(key, _MISSING)
        if key.startswith("protocol.run."):
            if mine is _MISSING:  # a setting ganzoo no longer has cannot change a run
                continue
            if theirs is _MISSING:
                theirs = _get(default_run, key.removeprefix("protocol.run."))
        if theirs != mine:
            diff.append((key.removeprefix("protocol."), None if theirs is _MISSING else theirs,
                         None if mine is _MISSING else mine))
    return diff


# Settings that ``ganzoo sweep`` has a flag for, so that a resume command can be given.
_SETTING_FLAG = {"n_trials": "--trials", "seeds": "--seeds", "sampler": "--sampler", "pruner": "--pruner",
                 "space": "--space", "steps": "--steps", "epochs": "--epochs", "budget": "--unit",
                 "eval_every": "--eval-every", "arch": "--arch",
                 "device": "--device", "repeat_seeds": "--repeat-seeds"}


def _with_flags(command: list[str], flags: Mapping[str, Any]) -> list[str]:
    """``command`` with each of ``flags`` set to its value (replacing the flag where it is given)."""
    out, skip = [], False
    for word in command:
        if skip:
            skip = False
            continue
        flag = word.split("=", 1)[0]
        if flag in flags:
            skip = "=" not in word
            continue
        out.append(word)
    return out + [w for flag, value in flags.items() for w in (flag, str(value))]


def mismatch_message(study: str, where: str, diff: list[tuple[str, Any, Any]], command: list[str] | None,
                     folder: Path | None) -> str:
    """One line naming every differing setting with both values, and commands that resolve it."""
    def show(value: Any) -> str:
        return "(unset)" if value is None else json.dumps(value)

    changes = "; ".join(f"{key} {show(old)} there, {show(new)} now" for key, old, new in diff)
    text = f"study {study!r} in {where} was run with other settings: {changes}."
    if command is None:
        return text + " Resume it with its own settings, or choose another study name."
    import shlex

    fixes = []
    if all(key in _SETTING_FLAG for key, _, _ in diff):
        resume = _with_flags(command, {_SETTING_FLAG[key]: old for key, old, _ in diff if old is not None})
        fixes.append(f"resume it as it was: {shlex.join(resume)}")
    fresh = next(f"{study}-{i}" for i in range(2, 10_000) if folder is None or not (folder.parent / f"{study}-{i}").exists())
    fixes.append(f"start a new study beside it: {shlex.join(_with_flags(command, {'--study': fresh}))}")
    if folder is not None:
        fixes.append(f"start it over: rm -r {shlex.quote(str(folder))} and run the same command again")
    return text + " To " + "; or to ".join(fixes)


# ---- presets (ganzoo.protocols.shipped finds the shipped ones) -----------------------------------------------------------------------------


def load_preset(name_or_path: str, changes: Mapping[str, Any] | None = None) -> SweepConfig:
    """A shipped preset by name (``smoke``, ``fashion-mnist``) or a TOML file of one's own, with
    ``changes`` (the command line's settings) over it. What the preset states and the command line
    gives is never silently resolved: see ``refuse_ambiguity``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(name_or_path)
    if not path.suffix:
        path = preset_dir() / f"{name_or_path}.toml"
        if not path.exists():
            known = ", ".join(shipped_presets())
            raise GanzooError(f"unknown preset {name_or_path!r}; shipped: {known}, or give a .toml path")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise GanzooError(f"preset file {path} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise GanzooError(f"preset {path} is not valid TOML: {e}") from None
    changes = dict(changes or {})
    refuse_ambiguity(data, changes, f"preset {name_or_path}")
    config = from_dict(SweepConfig, data, "preset")
    config = with_plugins(dataclasses.replace(config, plugins=()), config.plugins, path.parent)
    config = dataclasses.replace(config, **changes)
    config.validate()
    return config


def refuse_ambiguity(stated: Mapping[str, Any], given: Mapping[str, Any], where: str) -> None:
    """One line (a GanzooError) where the preset's settings (``stated``) and the command line's
    (``given``) leave a choice to be guessed: two lengths for one run, or an explicit setting the
    sampler cannot honour. A flag replacing the same setting of the preset is no ambiguity."""
    def flag(key: str) -> str:
        return f"{_SETTING_FLAG[key]} {given[key]}"

    if "steps" in stated and "epochs" in stated:
        raise GanzooError(f"{where} sets two lengths for one run, steps = {stated['steps']} and epochs = "
                          f"{stated['epochs']}: keep one of them")
    for mine, other in (("steps", "epochs"), ("epochs", "steps")):
        if mine in given and other in stated and other not in given:
            raise GanzooError(f"{flag(mine)} against {where}'s {other} = {stated[other]}: two lengths for one run; "
                              f"give its length as it does ({_SETTING_FLAG[other]}), or use a copy of the preset "
                              f"without {other}")
    sampler = given.get("sampler", stated.get("sampler"))
    if sampler == "grid" and stated.get("default_trial") is True:
        side = flag("sampler") if "sampler" in given else "its sampler = \"grid\""
        raise GanzooError(f"{where} sets default_trial = true, which {side} cannot honour (a grid runs its own "
                          "points, so the default configuration cannot go first): set default_trial = false, or "
                          "use the random or tpe sampler")


def with_plugins(config: SweepConfig, specs: tuple[str, ...] | list[str], base: Path | None = None) -> SweepConfig:
    """``config`` with ``specs`` loaded and added to its plugins (a relative file path is relative to
    ``base``, a preset's folder, else the working directory), each once."""
    from ganzoo.core.plugins import is_path, load_plugin, plugin_key

    keys = [plugin_key(str(base / s) if base is not None and is_path(s) and not Path(s).is_absolute() else s)
            for s in specs]
    for key in keys:
        load_plugin(key)
    return dataclasses.replace(config, plugins=tuple(dict.fromkeys((*config.plugins, *keys))))
