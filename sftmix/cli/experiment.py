"""``sftmix experiment``: run (or resume) the staged experiment described by a YAML file.

``sftmix experiment --help`` lists the YAML's keys with their defaults: the experiment's own keys,
the ``recipe:`` section (:class:`~sftmix.config.RecipeArguments`) and the Mixup settings of the
``training:`` section; ``sftmix train --help`` lists the model, data and training options.
"""

from __future__ import annotations

import argparse
import dataclasses
import textwrap

from transformers import TrainingArguments

from ..config import RecipeArguments, SFTMixConfig
from ..io import RunDir
from ..pipeline.experiment import run_experiment
from ..pipeline.experiment_config import SECTIONS, ExperimentConfig
from .common import add_set_option, load_experiment_config

HELP = "Run the staged, resumable experiment described by a YAML file."


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _listing(title: str, fields, prefix: str = "") -> str:
    lines = [f"{title}:"]
    for f in fields:
        value = _default(f)
        shown = "(section)" if f.name in SECTIONS else f"(default: {value})"
        lines.append(f"  {prefix}{f.name} {shown}")
        lines += textwrap.wrap(f.metadata.get("help", ""), 100, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def settings_help() -> str:
    """The YAML's keys with defaults and help: the experiment's, the recipe's and the Mixup settings."""
    base = {f.name for f in dataclasses.fields(TrainingArguments)}
    mixup = [f for f in dataclasses.fields(SFTMixConfig) if f.name not in base and f.name != "method"]
    return "\n\n".join([
        _listing("experiment keys (top level of the YAML)", dataclasses.fields(ExperimentConfig)),
        _listing("recipe: section (RecipeArguments)", dataclasses.fields(RecipeArguments), "recipe."),
        _listing("training: section, the recipe's own fields (SFTMixConfig; `sftmix train --help-all` lists the "
                 "TrainingArguments too; model: and data: fields: `sftmix train --help`)", mixup, "training."),
    ])


def add_parser(subparsers):
    ap = subparsers.add_parser("experiment", help=HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                               description="Run (or resume) the staged experiment described by a YAML file.",
                               epilog=settings_help())
    ap.add_argument("config", help="Experiment YAML (see configs/; a `base:` key names the file it builds on).")
    ap.add_argument("--name", default=None, help="Override the run name.")
    ap.add_argument("--runs-dir", default=None, help="Override where run directories go.")
    add_set_option(ap)
    return ap


def run(args) -> None:
    overrides = {k: v for k, v in (("name", args.name), ("runs_dir", args.runs_dir)) if v is not None}
    config = load_experiment_config(args.config, args.set, **overrides)
    run_experiment(config)
    print(RunDir(config.run_dir).results_md.read_text())
