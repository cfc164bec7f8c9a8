"""Configuration: every typed setting of sftmix, each with its help text and its checks.

Four dataclasses, all parsed by ``HfArgumentParser`` from YAML files or the command line:
:class:`ModelArguments` (which model), :class:`DataArguments` (which data),
:class:`SFTMixConfig` (how one run trains: ``TrainingArguments`` plus the Mixup settings) and
:class:`RecipeArguments` (the rest of the recipe: the reference run's checkpoints, how the
training dynamics are recorded and scored, how the data are split). An experiment YAML has
one section per dataclass (``model``, ``data``, ``training``, ``recipe``; see
:mod:`sftmix.pipeline.experiment_config`). Defaults that differ from ``TrainingArguments``
are set openly below; bad values raise :class:`~sftmix.errors.ConfigError` (a ``ValueError``)
in ``__post_init__``, where they are found.

A setting that is an ablation axis (``sftmix ablate --param`` accepts it) says so in its
annotation, ``Annotated[float, Axis(...)]`` (:class:`Axis`: its default sweep values, and its
choices when its values are names); ``HfArgumentParser`` reads the plain type. ``choices`` in a
field's metadata lists the valid names of a categorical setting (argparse reads it too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Annotated

from transformers import TrainingArguments

from .constants import BUILTIN, CONFIDENCE_TOKENS, FORMATS, METHODS
from .errors import ConfigError
from .offline import is_named_dataset
from .recipe import ALIGNMENTS, LOSS_VARIANTS, PAIRINGS, SPLIT_METRICS

__all__ = ["DYNAMICS_MODES", "Axis", "DataArguments", "ModelArguments", "RecipeArguments", "SFTMixConfig",
           "check_recipe"]

#: How the training dynamics are recorded: scored at saved checkpoints (the paper) or online.
DYNAMICS_MODES = ("checkpoints", "online")


@dataclass(frozen=True)
class Axis:
    """Marks a setting as an ablation axis: ``default`` are the values of the default sweep (none: swept on
    request only); ``choices`` the valid values of a setting whose values are names."""

    default: tuple = ()
    choices: tuple | None = None


def _choice(name: str, value, options) -> None:
    if value not in options:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(str, options))}")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(default="tiny-llama", metadata={
        "help": "A local path or Hub name of a causal LM; 'tiny-base' for the shipped tiny pretrained base "
                "(built-in character tokenizer, offline); or 'tiny-<family>' (tiny-llama, tiny-mistral, "
                "tiny-qwen2, tiny-gemma, tiny-gemma2, tiny-gemma3, tiny-gpt2): random."})
    tokenizer_name_or_path: str | None = field(default=None, metadata={
        "help": "Tokenizer path or name; defaults to the model's."})
    chat_template: str = field(default="auto", metadata={
        "help": "auto|alpaca|chatml|gemma|FILE.jinja"})
    tiny_hidden_size: int = field(default=64, metadata={"help": "Width of a tiny-* model."})
    tiny_layers: int = field(default=2, metadata={"help": "Layers of a tiny-* model."})
    tiny_heads: int = field(default=4, metadata={"help": "Attention heads of a tiny-* model."})
    model_seed: int = field(default=0, metadata={
        "help": "Initialisation seed of a tiny-* model and of fresh LoRA adapters."})
    torch_dtype: str = field(default="float32", metadata={
        "help": "Weights dtype when loading a pretrained model: float32, bfloat16, float16 or auto."})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "Allow model code from the Hub. Off by default: only enable it for repositories you trust."})
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of all weights (needs peft)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(default="all-linear", metadata={
        "help": "Modules that get adapters: 'all-linear' or a comma-separated list of names."})

    def __post_init__(self):
        if self.torch_dtype not in ("float32", "bfloat16", "float16", "auto"):
            raise ConfigError(f"torch_dtype={self.torch_dtype!r}; choose float32, bfloat16, float16 or auto")
        for name in ("tiny_hidden_size", "tiny_layers", "tiny_heads", "lora_r"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


#: DataArguments that act on data files (and named datasets) only, and on the built-in suite only.
_FILE_ONLY = frozenset({"dataset_format", "strict", "keep_complete_records", "max_exchanges", "drop_duplicates",
                        "drop_overlong", "held_out_size", "train_size", "selection_seed"})
_SUITE_ONLY = frozenset({"n_train", "n_test", "suite_seed", "tasks"})


@dataclass
class DataArguments:
    dataset: str = field(default="builtin", metadata={
        "help": "'builtin' (the task suite), 'sharegpt' (real ShareGPT chats, offline), a local "
                ".json/.jsonl/.parquet/.csv file, or a Hub dataset name."})
    dataset_split: str = field(default="train", metadata={"help": "Split to train on (builtin/Hub)."})
    eval_dataset: str | None = field(default=None, metadata={
        "help": "Held-out data: a file or Hub name. Defaults to the built-in suite's test split when "
                "dataset is 'builtin', else none."})
    eval_split: str = field(default="test", metadata={"help": "Split of eval_dataset (builtin/Hub)."})
    dataset_format: str | None = field(default=None, metadata={
        "help": "alpaca, chat, sharegpt, prompt_completion or prompt_response; detected from columns "
                "when omitted."})
    max_length: int = field(default=1024, metadata={
        "help": "Maximum tokens per example (template included); longer ones lose their tail, and are dropped "
                "when no response token remains. The toy configs use 128."})
    max_examples: int | None = field(default=None, metadata={"help": "Use only the first N training examples."})
    last_turn_only: bool = field(default=False, metadata={
        "help": "Multi-turn chats: train only the final assistant turn (default: every assistant turn)."})
    n_train: int = field(default=2000, metadata={"help": "Built-in suite: training examples."})
    n_test: int = field(default=300, metadata={"help": "Built-in suite: held-out examples."})
    noise: float = field(default=0.0, metadata={
        "help": "Fraction of training answers corrupted on purpose: the built-in suite's own wrong answers; for "
                "data files and named datasets, final answers swapped between conversations (selection_seed)."})
    suite_seed: int = field(default=0, metadata={"help": "Built-in suite: generation seed."})
    tasks: str | None = field(default=None, metadata={
        "help": "Built-in suite: comma-separated task families (default all)."})
    strict: bool = field(default=False, metadata={
        "help": "ShareGPT data: make every repair of the default policy (dropped conversations, trimmed turns; "
                "`sftmix data` lists them) an error naming file, row, turn and field."})
    keep_complete_records: bool = field(default=False, metadata={
        "help": "A JSON/JSONL file that breaks off (cut short, or invalid from some point on): keep the complete "
                "records before the break and report where reading stopped, instead of an error. Always on for "
                "the named dataset 'sharegpt', whose packaged file is cut in the middle of a record."})
    max_exchanges: int | None = field(default=None, metadata={
        "help": "Multi-turn chats: keep only the first N user->assistant exchanges of each conversation. Whole "
                "turns are cut, so the kept text is exactly the file's; the data report counts the cuts."})

    drop_duplicates: bool = field(default=False, metadata={
        "help": "Data files: leave out exact repeats (same prompt and answer) of an earlier example (reported)."})
    drop_overlong: bool = field(default=False, metadata={
        "help": "Data files: leave out examples longer than max_length tokens (reported) instead of cutting "
                "their tail."})
    held_out_size: int = field(default=0, metadata={
        "help": "Data files without eval_dataset: hold out a random sample of this many examples (selection_seed)."})
    train_size: int | None = field(default=None, metadata={
        "help": "Data files: train on a random sample of this many examples (after drop_overlong and "
                "held_out_size; selection_seed)."})
    selection_seed: int = field(default=0, metadata={
        "help": "Data files: seed of held_out_size / train_size sampling and of the answer swapping (noise)."})

    def __post_init__(self):
        if self.dataset_format is not None:
            _choice("dataset_format", self.dataset_format, FORMATS)
        if self.held_out_size < 0 or (self.train_size is not None and self.train_size < 1):
            raise ConfigError("held_out_size must be >= 0 and train_size >= 1")
        if self.max_length < 2:
            raise ConfigError(f"max_length must be >= 2, got {self.max_length}")
        if not 0.0 <= self.noise < 1.0:
            raise ConfigError(f"noise must be in [0, 1), got {self.noise}")
        if self.n_train < 1 or self.n_test < 0:
            raise ConfigError("n_train must be >= 1 and n_test >= 0")
        if self.max_exchanges is not None and self.max_exchanges < 1:
            raise ConfigError(f"max_exchanges must be >= 1 (or unset), got {self.max_exchanges}")
        self._refuse_what_cannot_act()

    def _refuse_what_cannot_act(self) -> None:
        """A setting changed from its default where the source it applies to is not used: an error naming
        it, not a run that silently ignores it."""
        defaults = {f.name: f.default for f in fields(self)}
        changed = {name for name, default in defaults.items() if getattr(self, name) != default}
        builtin = self.dataset == BUILTIN
        local = not builtin and (is_named_dataset(self.dataset) or bool(os.path.splitext(self.dataset)[1])
                                 or os.path.exists(self.dataset))
        unused = []
        if builtin:
            unused += [(n, "the built-in suite: it applies to data files") for n in sorted(changed & _FILE_ONLY)]
        elif self.eval_dataset != BUILTIN:
            unused += [(n, f"dataset={self.dataset!r}: it configures the built-in suite")
                       for n in sorted(changed & _SUITE_ONLY)]
        if local and "dataset_split" in changed:
            unused.append(("dataset_split", f"dataset={self.dataset!r}: a local file has no splits"))
        if "eval_split" in changed and (self.eval_dataset is None or self.eval_dataset != BUILTIN and (
                is_named_dataset(self.eval_dataset) or os.path.splitext(self.eval_dataset)[1])):
            unused.append(("eval_split", "held-out data without splits (no eval_dataset, or a local file)"))
        if unused:
            raise ConfigError("; ".join(f"{name}={getattr(self, name)!r} has no effect with {why}"
                                        for name, why in unused) + "; leave it out")

    def suite_kwargs(self) -> dict:
        tasks = [t.strip() for t in self.tasks.split(",")] if self.tasks else None
        return dict(n_train=self.n_train, n_test=self.n_test, seed=self.suite_seed, noise=self.noise, tasks=tasks)


@dataclass
class SFTMixConfig(TrainingArguments):
    """``TrainingArguments`` plus the SFTMix recipe (arXiv:2410.05248)."""

    method: str = field(default="ntp", metadata={
        "help": "'ntp' (plain next-token prediction on responses) or 'sftmix' (NTP + Mixup regulariser)."})
    mixup_alpha: Annotated[float, Axis((0.1, 0.5, 2.0))] = field(default=0.5, metadata={
        "help": "Mixing coefficients are drawn from Beta(alpha, alpha); the paper uses 0.5."})
    mixup_weight: Annotated[float, Axis((0.05, 0.2, 1.0))] = field(default=0.2, metadata={
        "help": "mu in loss = NTP + mu * Mixup; the paper uses 0.2."})
    loss_variant: Annotated[str, Axis(LOSS_VARIANTS.names(paper=True), LOSS_VARIANTS.names())] = field(
        default=LOSS_VARIANTS.names()[0], metadata={
        "help": "How the NTP and Mixup losses are combined (the paper's role-of-Mixup variants): "
                + LOSS_VARIANTS.help() + "."})
    split_file: str | None = field(default=None, metadata={
        "aliases": ["--split"],
        "help": "split.json with the confident/unconfident example ids: method='sftmix' needs it, unless the "
                "split is passed in memory (SFTMixTrainer(split=...), train_model(split=...))."})
    pairing: Annotated[str, Axis(PAIRINGS.names(paper=True), PAIRINGS.names())] = field(
        default=PAIRINGS.names()[0], metadata={
        "help": "Which examples are mixed: " + PAIRINGS.help() + "."})
    mixup_alignment: str = field(default=ALIGNMENTS.names()[0], metadata={
        "help": "How the positions of a pair are aligned: " + ALIGNMENTS.help() + "."})
    ce_chunk_size: int = field(default=4096, metadata={
        "help": "Tokens per chunk in the fused output-head cross-entropy (bounds peak memory)."})
    length_window: int = field(default=8, metadata={
        "help": "With train_sampling_strategy='group_by_length': how many batches' worth of examples are "
                "sorted by length together. Larger windows cut more padding but make batches more alike "
                "(on the built-in suite, length tracks the task family)."})

    # Defaults that differ from TrainingArguments, set openly.
    remove_unused_columns: bool = field(default=False, metadata={
        "help": "Kept False: example_index must reach the loss."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    save_strategy: str = field(default="no", metadata={"help": "Checkpointing: 'no', 'steps' or 'epoch'."})
    learning_rate: float = field(default=2e-5, metadata={
        "help": "Peak learning rate. The default is one a pretrained model survives (TRL's SFT default; "
                "SmolLM2-135M measured in benchmarks/README.md); the paper uses 2e-6 for 7-14B models; the toy "
                "configs (tiny-base, tiny-*) set 1e-3."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "The paper uses cosine."})
    warmup_steps: float = field(default=0.1, metadata={
        "help": "Linear warm-up: a fraction of the total steps (< 1) or a number of steps (>= 1). The paper warms "
                "up over 0.1 of the steps."})
    warmup_ratio: float | None = field(default=None, metadata={
        "help": "The warm-up as a fraction of the total steps (the transformers 4 name, kept for configs): when "
                "set it becomes warmup_steps. transformers 5 dropped the option, and a config that set it trained "
                "without warm-up."})
    weight_decay: float = field(default=0.1, metadata={"help": "The paper uses 0.1."})

    def __post_init__(self):
        if self.warmup_ratio is not None:
            if not 0.0 <= self.warmup_ratio < 1.0:
                raise ConfigError(f"warmup_ratio must be a fraction in [0, 1), got {self.warmup_ratio}")
            self.warmup_steps = self.warmup_ratio
        check_recipe(self)
        try:
            super().__post_init__()
        except ValueError as exc:  # TrainingArguments' own checks: a config error too, found here
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(" ".join(str(exc).split())) from exc


@dataclass
class RecipeArguments:
    """The recipe beside the training settings: the reference run's checkpoints, the training
    dynamics and the split into a confident and an unconfident half (arXiv:2410.05248, Sec. 3)."""

    n_checkpoints: int = field(default=3, metadata={
        "help": "Checkpoints of the reference run at which the training dynamics are scored, spread evenly "
                "over the run (the paper's C)."})
    dynamics_mode: str = field(default="checkpoints", metadata={
        "choices": DYNAMICS_MODES,
        "help": "How the training dynamics are recorded: 'checkpoints' scores the saved reference checkpoints "
                "(the paper); 'online' records them from the reference run's own forward passes (no extra "
                "passes; the model moves during an epoch)."})
    confidence_tokens: str = field(default=CONFIDENCE_TOKENS[0], metadata={
        "choices": CONFIDENCE_TOKENS,
        "help": "Response tokens that enter confidence: 'content' (the assistant turns' text) or 'trained' "
                "(content + end-of-turn). Training always uses content + end-of-turn."})
    reference_weights: str = field(default="last", metadata={
        "choices": ("last", "all"),
        "help": "Reference checkpoints that keep their weights once the dynamics are scored: 'last' (a real "
                "model's checkpoint is its full weights; re-scoring, e.g. after changing confidence_tokens, "
                "retrains the reference) or 'all'."})
    split_ratio: Annotated[float, Axis((0.3, 0.5, 0.7))] = field(default=0.5, metadata={
        "help": "Fraction of the examples in the confident half (the paper splits at the median)."})
    split_metric: Annotated[str, Axis((), SPLIT_METRICS)] = field(default="confidence", metadata={
        "choices": SPLIT_METRICS,
        "help": "Per-example summary of the training dynamics that ranks the examples for the split."})
    ntp_from_reference: bool = field(default=True, metadata={
        "help": "When nothing sets the reference run apart (no reference_model, no reference_training, "
                "checkpoint scoring), the NTP run of the first seed is the reference run and is not trained "
                "twice (the paper's reference model is the model being trained, trained the same way)."})
    reference_max_length: int | None = field(default=None, metadata={
        "help": "Tokens per example for a reference_model of another tokenizer (default: data.max_length). Another "
                "family's tokenizer may need more tokens for the same text; the examples stay those data.max_length "
                "selects, and a reference that would lose an example's whole answer is refused."})

    def __post_init__(self):
        for f in fields(self):
            if "choices" in f.metadata:
                _choice(f.name, getattr(self, f.name), f.metadata["choices"])
        if not 0.0 < float(self.split_ratio) < 1.0:
            raise ConfigError(f"split_ratio must lie strictly between 0 and 1, got {self.split_ratio}")
        if self.n_checkpoints < 1:
            raise ConfigError(f"n_checkpoints must be >= 1, got {self.n_checkpoints}")
        if self.reference_max_length is not None and self.reference_max_length < 2:
            raise ConfigError(f"reference_max_length must be >= 2 (or unset), got {self.reference_max_length}")


def check_recipe(args) -> None:
    """Check the recipe's fields of a training configuration: :class:`SFTMixConfig`, or one that
    carries the same fields (the TRL integration's ``SFTMixTRLConfig``)."""
    _choice("method", args.method, METHODS)
    for registry, value in ((LOSS_VARIANTS, args.loss_variant), (PAIRINGS, args.pairing),
                            (ALIGNMENTS, args.mixup_alignment)):
        registry[value]  # raises ValueError naming the choices
    if not args.mixup_alpha > 0:
        raise ConfigError(f"mixup_alpha must be > 0 (Beta(alpha, alpha)), got {args.mixup_alpha}")
    if not args.mixup_weight >= 0:
        raise ConfigError(f"mixup_weight must be >= 0, got {args.mixup_weight}")
    if args.length_window < 1:
        raise ConfigError(f"length_window must be >= 1 batch, got {args.length_window}")
    if args.ce_chunk_size < 1:
        raise ConfigError(f"ce_chunk_size must be >= 1, got {args.ce_chunk_size}")
    # method='sftmix' needs a split: split_file here, or one passed in memory to the trainer
    # (SFTMixTrainer(split=...)), which checks that one of the two is there.
    if args.method == "sftmix" and args.per_device_train_batch_size % 2:
        raise ConfigError("method='sftmix' pairs examples within a batch: per_device_train_batch_size "
                          f"must be even, got {args.per_device_train_batch_size}")
    if args.train_sampling_strategy not in ("random", "group_by_length"):
        raise ConfigError("sftmix draws its own batches: train_sampling_strategy must be 'random' or "
                          f"'group_by_length', got {args.train_sampling_strategy!r}")
