"""What several ``sftmix`` commands share: training options, short help, one-line errors.

Every command that trains or loads data takes the fields of ``ModelArguments``,
``DataArguments`` and ``SFTMixConfig`` as ``--name value`` options, optionally after a
YAML file of flat option names (``sftmix train my_options.yaml --learning_rate 1e-3``).
Options on the command line override the file. Experiment YAMLs (``model:``, ``data:``,
``training:`` sections) belong to ``sftmix experiment``.

``sftmix COMMAND --help`` lists the command's own options first, then the model, data and
recipe options it uses; ``--help-all`` adds every ``transformers.TrainingArguments`` option.
Bad option values raise :class:`~sftmix.errors.ConfigError`, which ``sftmix`` prints as one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

import yaml
from transformers import HfArgumentParser, TrainingArguments

from ..config import DataArguments, ModelArguments, SFTMixConfig
from ..errors import ConfigError
from ..models import load_model_and_tokenizer, load_tokenizer
from ..pipeline.config_files import load_yaml_config

#: Sections of an experiment YAML: a file with them is for `sftmix experiment`.
_EXPERIMENT_SECTIONS = ("model", "data", "training", "reference_training", "recipe", "seeds", "methods")
#: Option groups a command's --help may show: title and the fields shown.
_SECTIONS = {
    "model": ("model options (ModelArguments)", ModelArguments),
    "data": ("data options (DataArguments)", DataArguments),
    "recipe": ("SFTMix recipe options (SFTMixConfig; --help-all lists the TrainingArguments too)", SFTMixConfig),
}
_HELP_FLAGS = ("-h", "--help", "--help-all")


class OptionParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are :class:`ConfigError` (one line, exit code 2)."""

    def error(self, message):
        raise ConfigError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _raise_config_error(prog: str):
    def error(message):
        raise ConfigError(f"{prog}: {message} (see `{prog} --help`)")
    return error


def training_options_parser(subparsers, name: str, help_text: str, description: str | None = None):
    """A subcommand whose options are parsed by :func:`parse_training_args` from ``args.argv``."""
    parser = subparsers.add_parser(name, help=help_text, description=description or help_text, add_help=False,
                                   prefix_chars="\0")  # every option goes to argv, for HfArgumentParser
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    return parser


def yaml_to_argv(path: str) -> list[str]:
    """Flat ``--name value`` options from a YAML file of option names."""
    try:
        data = load_yaml_config(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    sections = [k for k in _EXPERIMENT_SECTIONS if k in data]
    if sections:
        raise ConfigError(f"{path} is an experiment YAML (it has {', '.join(sections)}): run it with "
                          f"`sftmix experiment {path}`; this command takes flat option names")
    argv = []
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(f"{path}: key {key!r} holds a mapping; use flat option names here")
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *[str(v) for v in values]]
    return argv


def parse_training_args(argv: list[str], prog: str):
    """Parse (ModelArguments, DataArguments, SFTMixConfig) from a YAML file and/or options.

    Unknown options and values the configs reject raise :class:`ConfigError`.
    """
    parser = HfArgumentParser((ModelArguments, DataArguments, SFTMixConfig), prog=prog)
    parser.error = _raise_config_error(prog)
    if argv and argv[0].endswith((".yaml", ".yml")):
        argv = yaml_to_argv(argv[0]) + argv[1:]
    if "--output_dir" not in argv:
        argv = argv + ["--output_dir", "runs/train"]
    try:
        model_args, data_args, train_args, rest = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True)
    except ValueError as exc:  # __post_init__ of a config: the message names the option
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"bad option value: {' '.join(str(exc).split())}") from exc
    if rest:
        raise ConfigError(f"{prog}: unknown options: {' '.join(rest)} (see `{prog} --help`)")
    return model_args, data_args, train_args


def _recipe_fields(cls) -> list[dataclasses.Field]:
    base = {f.name for f in dataclasses.fields(TrainingArguments)}
    own = [f for f in dataclasses.fields(cls) if f.name not in base]
    return own if cls is SFTMixConfig else list(dataclasses.fields(cls))


def command_help(prog: str, description: str, own: OptionParser | None, sections=("model", "data"),
                 *, full: bool = False) -> str:
    """Help text: the command's own options, then the sections' fields (and, with ``full``, all)."""
    hp = argparse.ArgumentParser(prog=prog, description=description, add_help=False,
                                 usage=f"{prog} [options]   (--help-all: every TrainingArguments option too)")
    group = hp.add_argument_group(f"options of {prog}")
    group.add_argument("-h", "--help", action="store_true", help="Show this help.")
    group.add_argument("--help-all", action="store_true", help="Also list every transformers TrainingArguments "
                       "option (the HfArgumentParser help).")
    for action in (own._actions if own is not None else []):
        if action.option_strings and "-h" not in action.option_strings:
            group._add_action(action)
    for key in sections:
        title, cls = _SECTIONS[key]
        sub = hp.add_argument_group(title)
        hints = typing.get_type_hints(cls)  # the plain types (an ablation axis is Annotated)
        for f in _recipe_fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            hint = hints.get(f.name, f.type)
            kind = str(getattr(hint, "__name__", hint)).replace(" | None", "").upper()
            sub.add_argument(f"--{f.name}", metavar=kind,
                             help=f"{f.metadata.get('help', '')} (default: {default})")
    text = hp.format_help()
    if full:
        text += "\n\nall options (ModelArguments, DataArguments, SFTMixConfig incl. TrainingArguments):\n\n"
        text += HfArgumentParser((ModelArguments, DataArguments, SFTMixConfig), prog=prog).format_help()
    return text


def maybe_print_help(argv: list[str], prog: str, description: str, own: OptionParser | None = None,
                     sections=("model", "data")) -> None:
    """Print the command's help and exit when ``argv`` asks for it."""
    if any(a in _HELP_FLAGS for a in argv):
        sys.stdout.write(command_help(prog, description, own, sections, full="--help-all" in argv))
        raise SystemExit(0)


def load_model_for(model_args: ModelArguments, *, tokenizer_only: bool = False):
    """``load_model_and_tokenizer`` (or ``load_tokenizer``) with a one-line error for a bad model name."""
    name = model_args.tokenizer_name_or_path if tokenizer_only and model_args.tokenizer_name_or_path \
        else model_args.model_name_or_path
    try:
        return load_tokenizer(model_args) if tokenizer_only else load_model_and_tokenizer(model_args)
    except ConfigError:
        raise
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load model {name!r}: {first}; pass a local model folder, a .gguf file, a Hub "
                          "name (needs network access), smollm2-135m (offline), tiny-base or tiny-<family> such "
                          "as tiny-llama") from exc


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): change a setting of the experiment YAML by dotted name."""
    parser.add_argument("--set", dest="set", action="append", default=[], metavar="KEY=VALUE",
                        help="Change one setting of the YAML, e.g. --set data.n_train=600 --set "
                             "training.mixup_alpha=2.0 --set recipe.split_ratio=0.3 (values read as YAML; repeatable).")


def parse_sets(items: list[str]) -> dict:
    """``["data.n_train=600", "methods=[ntp]"]`` -> ``{"data.n_train": 600, "methods": ["ntp"]}``."""
    changes = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set data.n_train=600")
        try:
            changes[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from exc
    return changes


def load_experiment_config(path: str, sets: list[str] | None = None, **overrides):
    """``ExperimentConfig.from_yaml`` plus ``--set`` changes (``ExperimentConfig.override``), with bad
    keys and values as :class:`ConfigError`."""
    from ..pipeline.experiment_config import ExperimentConfig

    try:
        config = ExperimentConfig.from_yaml(path, **overrides)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from exc
    return config.override(parse_sets(sets)) if sets else config


def split_known(parser: argparse.ArgumentParser, argv: list[str]):
    """Parse this command's own options from ``argv``; the rest are training options."""
    return parser.parse_known_args(argv)


__all__ = ["OptionParser", "add_set_option", "command_help", "load_experiment_config", "load_model_for",
           "maybe_print_help", "parse_sets", "parse_training_args", "split_known", "training_options_parser",
           "yaml_to_argv"]
