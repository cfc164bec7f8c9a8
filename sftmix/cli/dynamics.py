"""``sftmix dynamics``: reference run + per-example training dynamics (the pipeline's stages)."""

from __future__ import annotations

from ..data.prepare import prepare_train_eval
from ..io import RunDir
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


def add_parser(subparsers):
    return training_options_parser(subparsers, "dynamics", HELP)


def run(args) -> None:
    ap = OptionParser(prog="sftmix dynamics", add_help=False)
    ap.add_argument("--n_checkpoints", type=int, default=3, help="Checkpoints spread evenly over the reference run.")
    ap.add_argument("--mode", choices=("checkpoints", "online"), default="checkpoints",
                    help="Score saved checkpoints (the paper) or record from the training forward passes.")
    ap.add_argument("--confidence_tokens", choices=("content", "trained"), default="content",
                    help="Response tokens that enter confidence: the assistant turns' content (default) or every "
                         "trained token (content + end-of-turn).")
    maybe_print_help(args.argv, "sftmix dynamics", HELP, ap, sections=("model", "data", "recipe"))
    known, rest = split_known(ap, args.argv)
    model_args, data_args, cfg = parse_training_args(rest, "sftmix dynamics [--n_checkpoints N] [--mode M]")
    run_dir = RunDir(cfg.output_dir)
    tokenizer = load_model_for(model_args, tokenizer_only=True) if data_args.drop_overlong else None
    train, _ = prepare_train_eval(data_args, tokenizer)
    online = known.mode == "online"
    checkpoints = reference_run(run_dir, model_args, cfg, train, max_length=data_args.max_length,
                                n_checkpoints=known.n_checkpoints, online=online,
                                confidence_tokens=known.confidence_tokens)
    table = score_reference(run_dir, model_args, train, max_length=data_args.max_length, online=online,
                            tokens=known.confidence_tokens)
    if table is not None:
        print(f"wrote {run_dir.dynamics}: {len(table)} examples x {len(checkpoints)} checkpoints; mean confidence "
              f"{table['confidence'].mean():.3f}")
