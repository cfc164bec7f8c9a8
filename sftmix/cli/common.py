"""What several ``sftmix`` commands share: training options from a YAML file and/or the command line.

Every command that trains or loads data takes the fields of ``ModelArguments``,
``DataArguments`` and ``SFTMixConfig`` as ``--name value`` options (``sftmix train
--help`` lists them all with their help text), optionally after a YAML file of flat
option names (``sftmix train my_options.yaml --learning_rate 1e-3``). Options on the
command line override the file. Experiment YAMLs (``model:``, ``data:``, ``training:``
sections) belong to ``sftmix experiment``.
"""

from __future__ import annotations

import argparse

from transformers import HfArgumentParser

from ..config import DataArguments, ModelArguments, SFTMixConfig
from ..pipeline.config_files import load_yaml_config

#: Sections of an experiment YAML: a file with them is for `sftmix experiment`.
_EXPERIMENT_SECTIONS = ("model", "data", "training", "reference_training", "seeds", "methods")


def training_options_parser(subparsers, name: str, help_text: str, description: str | None = None):
    """A subcommand whose options are parsed by :func:`parse_training_args` from ``args.argv``."""
    parser = subparsers.add_parser(name, help=help_text, description=description or help_text, add_help=False,
                                   prefix_chars="\0")  # every option goes to argv, for HfArgumentParser
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    return parser


def yaml_to_argv(path: str) -> list[str]:
    """Flat ``--name value`` options from a YAML file of option names."""
    data = load_yaml_config(path)
    sections = [k for k in _EXPERIMENT_SECTIONS if k in data]
    if sections:
        raise SystemExit(f"{path} is an experiment YAML (it has {', '.join(sections)}): run it with "
                         f"`sftmix experiment {path}`; this command takes flat option names")
    argv = []
    for key, value in data.items():
        if isinstance(value, dict):
            raise SystemExit(f"{path}: key {key!r} holds a mapping; use flat option names here")
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *[str(v) for v in values]]
    return argv


def parse_training_args(argv: list[str], prog: str):
    """Parse (ModelArguments, DataArguments, SFTMixConfig) from a YAML file and/or options."""
    parser = HfArgumentParser((ModelArguments, DataArguments, SFTMixConfig), prog=prog)
    if argv and argv[0].endswith((".yaml", ".yml")):
        argv = yaml_to_argv(argv[0]) + argv[1:]
    if "--output_dir" not in argv and not any(a in ("-h", "--help") for a in argv):
        argv = argv + ["--output_dir", "runs/train"]
    model_args, data_args, train_args, rest = parser.parse_args_into_dataclasses(
        args=argv, return_remaining_strings=True)
    if rest:
        parser.error(f"unknown options: {' '.join(rest)}")
    return model_args, data_args, train_args


def split_known(parser: argparse.ArgumentParser, argv: list[str]):
    """Parse this command's own options from ``argv``; the rest are training options."""
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
    return parser.parse_known_args(argv)


__all__ = ["parse_training_args", "split_known", "training_options_parser", "yaml_to_argv"]
