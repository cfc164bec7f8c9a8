"""What the stages of one run share: the configuration, the run directory, the data, loaded once.

:func:`open_run` writes the configuration into the run directory, prepares the data (printing
the data report) and returns a :class:`RunContext`. Every stage function of
:mod:`sftmix.pipeline.stages` takes that context. It loads each tokenizer the run needs once
and tokenizes each data set once per tokenizer (the model's, and the reference model's when
that one has another tokenizer), on first use: a run whose stages are all up to date loads
nothing. :meth:`RunContext.with_config` gives a context for a changed configuration (an
ablation cell) that shares those caches; the data and the model, hence the tokens, are the
same for every cell.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import transformers
import yaml

from ..config import DataArguments, ModelArguments
from ..data import tokenize_examples
from ..data.prepare import prepare_train_eval
from ..distributed import Processes
from ..io import RunDir, atomic_write_json, atomic_write_text, remove_temp_files
from ..models import load_tokenizer
from .experiment_config import ExperimentConfig
from .runner import StageBook

__all__ = ["RunContext", "open_run", "tokenize_for_training"]

#: ModelArguments fields that shape the model but not its tokenizer: two models that differ only in
#: these share one tokenizer (and its tokens). A new field counts as shaping the tokenizer.
_MODEL_ONLY = ("tiny_hidden_size", "tiny_layers", "tiny_heads", "model_seed", "torch_dtype", "use_lora", "lora_r",
               "lora_alpha", "lora_dropout", "lora_target_modules")


def tokenize_for_training(examples: datasets.Dataset, tokenizer, data_args: DataArguments, *,
                          alone: bool = False) -> datasets.Dataset:
    """Examples tokenized as the data settings say (``max_length``, ``last_turn_only``).

    Called on every process, the main process goes first, so a dataset cached on disk is written
    once and read by the others. ``alone``: called on the main process alone (in a stage the others
    wait for), so nothing waits for the others.
    """
    def tokenize():
        return tokenize_examples(examples, tokenizer, max_length=data_args.max_length,
                                 last_turn_only=data_args.last_turn_only)

    if alone:
        return tokenize()
    with Processes().state.main_process_first():
        return tokenize()


def tokenizer_key(args: ModelArguments) -> str:
    """What identifies a model's tokenizer: its ModelArguments without the fields that only shape the model."""
    return json.dumps({k: v for k, v in dataclasses.asdict(args).items() if k not in _MODEL_ONLY}, sort_keys=True,
                      default=str)


@dataclass
class RunContext:
    """What the stages of one call share: the configuration, the run directory and its stage book,
    the prepared data, whether the stages show their own progress bars, and the tokenizers and
    tokenized data sets loaded so far (shared with every :meth:`with_config` copy)."""

    config: ExperimentConfig
    rd: RunDir
    book: StageBook
    train_examples: datasets.Dataset | None = None
    held_out: datasets.Dataset | None = None
    bars: bool = True
    _cache: dict = field(default_factory=dict, repr=False)

    def tokenizer(self, *, reference: bool = False):
        """The tokenizer of the model (``reference``: of the reference model), loaded once per run."""
        args = self.config.model_args(reference=reference)
        key = ("tokenizer", tokenizer_key(args))
        if key not in self._cache:
            self._cache[key] = load_tokenizer(args)
        return self._cache[key]

    def tokenized(self, which: str = "train", *, reference: bool = False, alone: bool = False) -> datasets.Dataset:
        """``"train"`` or ``"held_out"`` tokenized with the (reference) model's tokenizer, once per tokenizer.

        ``alone``: asked for by a stage that runs on the main process alone (see
        :func:`tokenize_for_training`); the stages that run everywhere leave it False.
        """
        examples = {"train": self.train_examples, "held_out": self.held_out}[which]
        if examples is None:
            raise ValueError(f"this run has no {which} examples")
        # The data settings are the same for every config sharing this cache (see with_config).
        key = ("tokens", which, tokenizer_key(self.config.model_args(reference=reference)))
        if key not in self._cache:
            data_args = self.config.data_args()
            longer = self.config.recipe_args().reference_max_length
            if reference and self.config.reference_model is not None and longer:
                data_args = dataclasses.replace(data_args, max_length=longer)
            self._cache[key] = tokenize_for_training(examples, self.tokenizer(reference=reference), data_args,
                                                     alone=alone)
        return self._cache[key]

    def with_config(self, config: ExperimentConfig) -> RunContext:
        """This run with a changed configuration (same data and model): the caches are shared."""
        if config.data_args() != self.config.data_args():
            raise ValueError("with_config changes the training or recipe settings, not the data")
        return dataclasses.replace(self, config=config)


def open_run(config: ExperimentConfig, *, progress: bool | str = True) -> RunContext:
    """Write the configuration, prepare the data (printing the data report) and open the stage book."""
    _quiet_libraries()
    procs = Processes()
    rd = RunDir(config.run_dir)

    def prepare():
        remove_temp_files(rd.root)
        atomic_write_json(rd.config_json, dataclasses.asdict(config))
        atomic_write_text(rd.config, yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))

    procs.on_main(prepare, "writing the configuration")
    ctx = RunContext(config, rd, StageBook(rd.stages), bars=progress is True)
    data_args = config.data_args()
    tokenizer = ctx.tokenizer() if data_args.drop_overlong else None
    with procs.state.main_process_first():  # Hub datasets: one download, the others read the cache
        ctx.train_examples, ctx.held_out, data_report = prepare_train_eval(data_args, tokenizer, return_report=True)
    procs.on_main(lambda: _write_data_report(rd.data_report, data_report), "writing the data report")
    if progress and procs.is_main:
        for line in data_report.loading_lines() + data_report.lines():
            print(f"[data] {line}", flush=True)
        if "sftmix" in config.methods:
            print(f"[reference] {_reference_note(config)}", flush=True)
    return ctx


def _write_data_report(path: Path, prepared) -> None:
    """``data_report.json``: what loading did per source ("train", "held_out") and what preparing did
    ("prepare"); rewritten only when it changed (a rerun leaves the run directory as it was)."""
    steps = {k: v for k, v in dataclasses.asdict(prepared).items() if k != "loading"}
    report = {**{k: r.to_dict() for k, r in prepared.loading.items()}, "prepare": steps}
    report = json.loads(json.dumps(report, default=str))
    if not path.exists() or json.loads(path.read_text()) != report:
        atomic_write_json(path, report)


def _reference_note(config: ExperimentConfig) -> str:
    """Whether the NTP run of the first seed is the reference run, and why not when it is not."""
    if config.reference_is_ntp_run:
        return f"the NTP run of seed {config.seeds[0]} is the reference run (trained once, as in the paper)"
    recipe = config.recipe_args()
    why = [name for name, on in (("reference_model", config.reference_model is not None),
                                 ("reference_training", bool(config.reference_training)),
                                 ("recipe.dynamics_mode=online", recipe.dynamics_mode == "online"),
                                 ("recipe.ntp_from_reference=false", not recipe.ntp_from_reference)) if on]
    if "ntp" not in config.methods:
        why.append("no NTP method")
    return f"trained apart from NTP ({', '.join(why)} set it apart): NTP seed {config.seeds[0]} trains separately"


def _quiet_libraries() -> None:
    """Keep the stage log readable: our own progress bars stay, library chatter goes."""
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
