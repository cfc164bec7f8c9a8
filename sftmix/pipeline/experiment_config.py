"""One experiment's settings, resolved once into the typed argument dataclasses.

An experiment YAML has a few top-level keys of its own (:class:`ExperimentConfig`'s fields:
name, seeds, methods, evaluation and outputs, each with its help text) and one section per
typed dataclass of :mod:`sftmix.config`: ``model`` and ``reference_model``
(:class:`~sftmix.config.ModelArguments`), ``data`` (:class:`~sftmix.config.DataArguments`),
``training`` and ``reference_training`` (:class:`~sftmix.config.SFTMixConfig`: how a run
trains, the Mixup settings included) and ``recipe`` (:class:`~sftmix.config.RecipeArguments`:
the reference checkpoints, the dynamics and the split). ``sftmix experiment --help`` lists
them all with their defaults. :class:`ExperimentConfig` keeps each section as the mapping
that was written (what ``config.yaml`` records) and resolves it once, when the config is made,
into the typed objects every stage reads (and whose values the stage keys hash):

    config.model_args()                the ModelArguments (reference=True: the reference's)
    config.data_args()                 the DataArguments
    config.recipe_args()               the RecipeArguments
    config.training_args(method, seed, output_dir)   one run's SFTMixConfig

A bad key or value raises :class:`~sftmix.errors.ConfigError` there, naming the section and
the key, before anything runs; a key of an older layout is refused with a line naming its
new place. :meth:`ExperimentConfig.override` is the one way to change settings, by dotted
name, checked against the field's type::

    config.override({"data.n_train": 600, "training.mixup_alpha": 2.0, "recipe.split_ratio": 0.3})

The ablation, the regime map and the notebooks change settings through it.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from ..config import DataArguments, ModelArguments, RecipeArguments, SFTMixConfig
from ..constants import METHODS
from ..errors import ConfigError
from ..io import RunDir
from ..recipe import PROJECTIONS as PROJECTION_REGISTRY
from .config_files import load_yaml_config

__all__ = ["KEEP_WEIGHTS", "PROJECTIONS", "SECTIONS", "ExperimentConfig"]

#: The sections of an experiment and the dataclass each one's keys belong to.
SECTIONS = {"model": ModelArguments, "reference_model": ModelArguments, "data": DataArguments,
            "training": SFTMixConfig, "reference_training": SFTMixConfig, "recipe": RecipeArguments}
#: Set per run by the pipeline, never by a config: the run's method, seed and folder, the split it
#: reads, and its checkpointing (every epoch for a training run, to resume from; the reference run
#: saves the checkpoints it is scored at).
_PER_RUN = ("method", "seed", "output_dir", "split_file", "save_strategy", "save_steps", "save_total_limit")
#: 2-D projections of the embeddings the experiment can draw: the names of :data:`sftmix.recipe.PROJECTIONS`.
PROJECTIONS = tuple(PROJECTION_REGISTRY)
#: What a run directory keeps of the models' weights (``keep_weights``).
KEEP_WEIGHTS = ("all", "reference")
#: Keys of older experiment layouts and where they live now (refused with this line).
MOVED = {**{f.name: f"recipe.{f.name}" for f in dataclasses.fields(RecipeArguments)},
         "training.record_dynamics": "recipe.dynamics_mode (online)",
         "reference_training.record_dynamics": "recipe.dynamics_mode (online)"}


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass
class ExperimentConfig:
    """One experiment: the model, data, training and recipe sections plus what to run and produce."""

    name: str = field(default="experiment", metadata=_help("Run name: the run directory is runs_dir/name."))
    runs_dir: str = field(default="runs", metadata=_help("Folder that holds the run directories."))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata=_help(
        "Training seeds of every method (the reference run uses the first)."))
    methods: list[str] = field(default_factory=lambda: ["ntp", "sftmix"], metadata=_help(
        "Methods trained per seed: 'ntp' and/or 'sftmix' (SFTMix also runs the reference, dynamics and split)."))
    model: dict = field(default_factory=dict, metadata=_help("ModelArguments fields."))
    data: dict = field(default_factory=dict, metadata=_help("DataArguments fields."))
    training: dict = field(default_factory=dict, metadata=_help("SFTMixConfig fields shared by all runs."))
    reference_model: dict | None = field(default=None, metadata=_help(
        "ModelArguments of the reference run (default: model)."))
    reference_training: dict = field(default_factory=dict, metadata=_help(
        "SFTMixConfig fields of the reference run, over training."))
    recipe: dict = field(default_factory=dict, metadata=_help(
        "RecipeArguments fields: reference checkpoints, dynamics, split."))
    generate: bool = field(default=True, metadata=_help(
        "Generate greedy answers to the held-out prompts (exact match, side-by-side generations)."))
    max_new_tokens: int | None = field(default=512, metadata=_help(
        "Greedy generation budget per held-out answer; null = longest reference answer + 16 tokens (short-answer "
        "suites). Generations that reach it are counted in eval.json and the results."))
    exact_match: bool = field(default=True, metadata=_help(
        "Score greedy exact match against the references (short-answer data such as the built-in suite); false "
        "for open-ended chats, which are generated but never match a reference word for word."))
    instruct: dict = field(default_factory=dict, metadata=_help(
        "Instruction following without a judge for every trained model (sftmix.pipeline.instruct_stage): "
        "mt_bench, per_category, ifeval, ifeval_seed, max_new_tokens, batch_size; empty = off."))
    embeddings: bool = field(default=True, metadata=_help(
        "Embed the training examples with the final reference model and project them to 2-D."))
    projection: str = field(default="umap", metadata=_help(
        "2-D projection of the embeddings: " + ", ".join(PROJECTIONS) + ".", choices=PROJECTIONS))
    figures: bool = field(default=True, metadata=_help("Draw the run's figures into RUN/figures/."))
    keep_weights: str = field(default="all", metadata=_help(
        "Which final weights the run directory keeps: 'all' (every trained model's) or 'reference' (only the "
        "reference run's last checkpoint, which is also the NTP run of the first seed when that run is the "
        "reference; dynamics and embeddings read it). With 'reference' each other training run's weights are "
        "deleted once its eval and instruct stages have read them (a tidy/<method>/seed<k> stage); its "
        "log_history.json, eval.json, generations and weights_removed.json stay, a rerun trains nothing again, and a "
        "later step that needs the weights (a changed eval setting, confidence_spread, load_trained) stops with "
        "one line naming this setting. Setting 'all' again retrains the removed runs. A Gemma 3 270M run keeps "
        "1.07 GB of float32 weights per model.", choices=KEEP_WEIGHTS))

    def __post_init__(self):
        self._check()
        self._resolve()

    # ------------------------------------------------------------------ resolution
    def _check(self) -> None:
        if not self.seeds:
            raise ConfigError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct, got {self.seeds}")
        if not self.methods:
            raise ConfigError("methods must name at least one method: 'ntp' and/or 'sftmix'")
        for method in self.methods:
            if method not in METHODS:
                raise ConfigError(f"methods: unknown method {method!r}; use 'ntp' and/or 'sftmix'")
        if self.keep_weights not in KEEP_WEIGHTS:
            raise ConfigError(f"keep_weights={self.keep_weights!r}; choose one of {', '.join(KEEP_WEIGHTS)}")
        if self.projection not in PROJECTIONS:
            raise ConfigError(f"projection={self.projection!r}; choose one of {', '.join(PROJECTIONS)}")
        if self.instruct:
            from .instruct_options import check_instruct
            unknown = sorted(set(check_instruct(self.instruct)["seeds"] or []) - set(self.seeds))
            if unknown:
                raise ConfigError(f"instruct.seeds: {unknown} are not training seeds {self.seeds}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1 (or null), got {self.max_new_tokens}")
        for section in ("training", "reference_training"):
            fixed = sorted(set(getattr(self, section)) & set(_PER_RUN))
            if fixed:
                raise ConfigError(f"{section}: {fixed} are set per run by the pipeline (methods, seeds, the "
                                  "run directory, the split, checkpointing); leave them out")
            _refuse_moved({f"{section}.{k}" for k in getattr(self, section)})

    def _resolve(self) -> None:
        """Build the typed arguments once; a bad key or value fails here, naming its section."""
        self._model = _build(ModelArguments, self.model, "model")
        self._reference_model = _build(ModelArguments, self.reference_model, "reference_model") \
            if self.reference_model else self._model
        self._data = _build(DataArguments, self.data, "data")
        self._recipe = _build(RecipeArguments, self.recipe, "recipe")
        longer = self._recipe.reference_max_length
        if longer is not None and (self.reference_model is None or longer < self._data.max_length):
            raise ConfigError(f"recipe.reference_max_length={longer} acts only with a reference_model of another "
                              f"tokenizer, and must be >= data.max_length={self._data.max_length}"
                              + ("" if self.reference_model else ": this experiment has no reference_model"))
        rd = RunDir(self.run_dir)
        shared = {"use_cpu": not torch.cuda.is_available(), **self.training}
        self._training = {method: _build(SFTMixConfig, {**shared, "method": method, "seed": self.seeds[0],
                                                        "output_dir": str(rd.train(method, self.seeds[0]))}, "training")
                          for method in self.methods}
        reference = shared if self.reference_is_ntp_run else {**shared, "eval_strategy": "no",
                                                               **self.reference_training}
        self._reference_training = _build(SFTMixConfig, {**reference, "method": "ntp", "seed": self.seeds[0],
                                                         "output_dir": str(rd.reference)},
                                          "reference_training")

    @property
    def reference_is_ntp_run(self) -> bool:
        """True when the NTP run of the first seed is taken from the reference run."""
        recipe = self._recipe
        return (recipe.ntp_from_reference and self.reference_model is None and not self.reference_training
                and recipe.dynamics_mode == "checkpoints" and "ntp" in self.methods and "sftmix" in self.methods)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def model_args(self, reference: bool = False) -> ModelArguments:
        """The model (``reference``: the reference run's model, by default the same)."""
        return self._reference_model if reference else self._model

    def data_args(self) -> DataArguments:
        return self._data

    def recipe_args(self) -> RecipeArguments:
        """The reference checkpoints, dynamics and split settings."""
        return self._recipe

    def training_args(self, method: str, seed: int, output_dir: Path, split_file: Path | None = None,
                      extra: dict | None = None) -> SFTMixConfig:
        """One run's arguments: the resolved ``training`` section with the run's method, seed,
        folder, split file and ``extra`` settings of the stage (checkpointing, evaluation)."""
        if method not in self._training:
            raise ConfigError(f"method {method!r} is not among this experiment's methods {self.methods}")
        changes = {"seed": seed, "output_dir": str(output_dir), **(extra or {})}
        if split_file is not None:
            changes["split_file"] = str(split_file)
        return _replace(self._training[method], changes, "training")

    def reference_args(self, extra: dict | None = None) -> SFTMixConfig:
        """The reference run's arguments: ``training`` with ``reference_training`` over it (and no
        held-out evaluation), or exactly the first seed's NTP run when that run is the reference."""
        return _replace(self._reference_training, extra or {}, "reference_training")

    # ------------------------------------------------------------------- changes
    def override(self, changes: Mapping[str, Any]) -> ExperimentConfig:
        """A copy with settings changed by dotted name, resolved again (so checked again).

        ``{"data.n_train": 600, "training.mixup_alpha": 2.0, "recipe.split_ratio": 0.3}``: a
        section's key is ``<section>.<field>`` (sections: :data:`SECTIONS`), anything else a
        top-level key. Names are checked against the dataclasses and values against the fields'
        types; an unknown name or a value of the wrong type raises
        :class:`~sftmix.errors.ConfigError` naming it.
        """
        top = _field_types(type(self))
        new: dict[str, Any] = {}
        _refuse_moved(changes, "override ")
        for key, value in changes.items():
            section, _, name = key.partition(".")
            if not name:
                if key not in top:
                    raise ConfigError(f"override {key!r}: no such experiment key{_did_you_mean(key, top)}")
                _check_type(key, value, top[key])
                new[key] = value
                continue
            if section not in SECTIONS:
                raise ConfigError(f"override {key!r}: {section!r} is not a section; sections: {', '.join(SECTIONS)}")
            fields = _field_types(SECTIONS[section])
            if name not in fields:
                raise ConfigError(f"override {key!r}: {SECTIONS[section].__name__} has no field {name!r}"
                                  f"{_did_you_mean(name, fields)}")
            _check_type(key, value, fields[name])
            current = new.get(section, getattr(self, section))
            new[section] = {**(current or {}), name: value}
        return dataclasses.replace(self, **new)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "experiment") -> ExperimentConfig:
        """An experiment from the mapping of a YAML file; unknown or moved keys are refused naming ``source``."""
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            _refuse_moved(data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        unknown = sorted(set(data) - names)
        if unknown:
            flat = {f.name for c in (ModelArguments, DataArguments, SFTMixConfig) for f in dataclasses.fields(c)}
            if set(unknown) <= flat:
                raise ConfigError(f"{source}: keys {unknown} are training options, not experiment keys: this is an "
                                  f"options file for `sftmix train` (run `sftmix train {source}`), or nest them "
                                  f"under model:, data: or training:")
            raise ConfigError(f"{source}: unknown keys {unknown}; valid keys: {sorted(names)}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> ExperimentConfig:
        """Read an experiment YAML (resolving its ``base:`` chain); ``overrides`` replace top-level keys."""
        data = load_yaml_config(path)
        data.update(overrides)
        return cls.from_dict(data, str(path))


def _refuse_moved(keys, prefix: str = "") -> None:
    """A key of an older layout: one line saying where it lives now."""
    moved = [k for k in keys if k in MOVED]
    if moved:
        raise ConfigError("; ".join(f"{prefix}{k!r} is now {MOVED[k]}" for k in moved)
                          + " (a section of its own: recipe:, see `sftmix experiment --help`)")


def _build(cls, spec: dict, section: str):
    """``cls(**spec)``, with an unknown key or a rejected value as a ConfigError naming the section."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(spec) - names)
    if unknown:
        close = _did_you_mean(unknown[0], names)
        raise ConfigError(f"{section}: unknown keys {unknown} for {cls.__name__}{close}")
    try:
        return cls(**spec)
    except (ValueError, TypeError) as exc:  # TrainingArguments' own checks raise ValueError
        raise ConfigError(f"{section}: {' '.join(str(exc).split())}") from None


def _replace(args: SFTMixConfig, changes: dict, section: str) -> SFTMixConfig:
    try:
        return dataclasses.replace(args, **changes)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{section}: {' '.join(str(exc).split())}") from None


@functools.cache
def _field_types(cls) -> dict[str, Any]:
    """Each field's annotation, read from the class (``HfArgumentParser`` rewrites ``Field.type`` in
    place, so the fields' own ``type`` depends on whether a parser has seen the class)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: no type check for it
        hints = {}
    return {f.name: hints.get(f.name) for f in dataclasses.fields(cls)}


def _did_you_mean(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_type(key: str, value, annotation) -> None:
    """Raise ConfigError when ``value`` cannot be a value of a field annotated ``annotation``."""
    allowed = _types(annotation)
    if allowed is None or value is None and type(None) in allowed:
        return
    if any(issubclass(t, enum.Enum) for t in allowed):  # TrainingArguments' strategies: named by a string
        allowed = (*allowed, str)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return  # an integer is a fine float
    if bool not in allowed and isinstance(value, bool) and (int in allowed or float in allowed):
        raise ConfigError(f"override {key!r}: expected a number, got {value!r}")
    if not isinstance(value, allowed):
        names = " or ".join(t.__name__ for t in allowed)
        raise ConfigError(f"override {key!r}: expected {names}, got {type(value).__name__} {value!r}")


def _types(annotation) -> tuple[type, ...] | None:
    """The plain types a resolved annotation allows (``int | None`` -> (int, NoneType)); None when unknown."""
    if isinstance(annotation, type):
        return (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [typing.get_origin(a) or a for a in typing.get_args(annotation)]
        return tuple(parts) if all(isinstance(p, type) for p in parts) else None
    return None
