"""``sftmix eval``: evaluate a model on held-out data (the pipeline's eval stage)."""

from __future__ import annotations

import json
from pathlib import Path

from ..analysis.export import export_alpaca_eval, export_mt_bench
from ..data import load_train_eval
from ..errors import ConfigError
from ..pipeline.stages import evaluate_and_save
from .common import (
    OptionParser,
    load_model_for,
    maybe_print_help,
    parse_training_args,
    split_known,
    training_options_parser,
)

HELP = "Evaluate a trained model on held-out data."


def add_parser(subparsers):
    return training_options_parser(subparsers, "eval", HELP)


def _own_options() -> OptionParser:
    ap = OptionParser(prog="sftmix eval", add_help=False)
    ap.add_argument("--out", default=None, help="Write the metrics to this JSON file.")
    ap.add_argument("--no-generate", action="store_true", help="Skip greedy generation / exact match.")
    ap.add_argument("--export-alpaca-eval", default=None, metavar="FILE",
                    help="Write the generations as an AlpacaEval model-outputs JSON file.")
    ap.add_argument("--export-mt-bench", default=None, metavar="FILE",
                    help="Write the generations as an MT-Bench answer file (single-turn: one turn per example).")
    return ap


def run(args) -> None:
    maybe_print_help(args.argv, "sftmix eval", HELP, _own_options())
    known, argv = split_known(_own_options(), args.argv)
    model_args, data_args, _ = parse_training_args(argv, "sftmix eval")
    model, tokenizer = load_model_for(model_args)
    _, held_out = load_train_eval(data_args)
    if held_out is None:
        raise ConfigError("sftmix eval: no held-out data; pass --eval_dataset FILE")
    result = evaluate_and_save(model, tokenizer, held_out, out_file=known.out, max_length=data_args.max_length,
                               generate=not known.no_generate)
    generations = result.pop("generations", None)
    print(json.dumps(result, indent=2))
    if generations is not None:
        name = Path(model_args.model_name_or_path).name
        if known.export_alpaca_eval:
            prompts = ["\n\n".join(m["content"] for m in msgs) for msgs in held_out["messages"]]
            print("wrote", export_alpaca_eval(prompts, generations, known.export_alpaca_eval, generator=name))
        if known.export_mt_bench:
            print("wrote", export_mt_bench(list(held_out["example_id"]), [[g] for g in generations],
                                           known.export_mt_bench, model_id=name))
