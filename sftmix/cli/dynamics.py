"""``sftmix dynamics``: reference run + per-example training dynamics (the pipeline's stages)."""

from __future__ import annotations

import dataclasses

from ..config import RecipeArguments
from ..data.prepare import prepare_train_eval
from ..io import RunDir
from ..models import load_model
from ..pipeline.context import tokenize_for_training
from ..pipeline.stages import reference_run, score_reference
from .common import (
    OptionParser,
    load_model_for,
    maybe_print_help,
    parse_training_args,
    split_known,
    training_options_parser,
)

HELP = "Reference run + per-example training dynamics (writes dynamics.parquet under --output_dir)."
#: The recipe settings this command takes (help, defaults and choices from RecipeArguments), and
#: the older spelling of one of them.
_RECIPE = {"n_checkpoints": (), "dynamics_mode": ("--mode",), "confidence_tokens": ()}


def add_parser(subparsers):
    return training_options_parser(subparsers, "dynamics", HELP)


def _own_options() -> OptionParser:
    ap = OptionParser(prog="sftmix dynamics", add_help=False)
    fields = {f.name: f for f in dataclasses.fields(RecipeArguments)}
    for name, aliases in _RECIPE.items():
        f = fields[name]
        ap.add_argument(f"--{name}", *aliases, dest=name, type=type(f.default), default=f.default,
                        choices=f.metadata.get("choices"), help=f"{f.metadata['help']} (default: {f.default})")
    return ap


def run(args) -> None:
    maybe_print_help(args.argv, "sftmix dynamics", HELP, _own_options(), sections=("model", "data", "recipe"))
    known, rest = split_known(_own_options(), args.argv)
    recipe = RecipeArguments(**{name: getattr(known, name) for name in _RECIPE})
    model_args, data_args, cfg = parse_training_args(rest, "sftmix dynamics [--n_checkpoints N] [--mode M]")
    run_dir = RunDir(cfg.output_dir)
    tokenizer = load_model_for(model_args, tokenizer_only=True)
    train, _ = prepare_train_eval(data_args, tokenizer if data_args.drop_overlong else None)
    tokenized = tokenize_for_training(train, tokenizer, data_args)  # last_turn_only as training does
    online = recipe.dynamics_mode == "online"
    checkpoints = reference_run(run_dir, load_model(model_args, tokenizer), tokenizer, tokenized, cfg,
                                n_checkpoints=recipe.n_checkpoints, online=online,
                                confidence_tokens=recipe.confidence_tokens)
    table = score_reference(run_dir, tokenized, train, model_name=model_args.model_name_or_path, online=online,
                            tokens=recipe.confidence_tokens)
    if table is not None:
        print(f"wrote {run_dir.dynamics}: {len(table)} examples x {len(checkpoints)} checkpoints; mean confidence "
              f"{table['confidence'].mean():.3f}")
