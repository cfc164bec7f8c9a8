"""The ``sftmix`` command.

Every subcommand that trains or loads data takes the fields of ``ModelArguments``,
``DataArguments`` and ``SFTMixConfig`` as ``--name value`` options (``sftmix train
--help`` lists them all with their help text), optionally after a YAML file whose keys
are the same names: ``sftmix train configs/demo.yaml --learning_rate 1e-3``. Options on
the command line override the file.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import yaml

COMMANDS = {
    "demo": "Run the end-to-end experiment on the built-in task suite (tiny model, CPU, minutes).",
    "data": "Load a dataset, validate it and print a summary (optionally write canonical JSONL).",
    "train": "Train a model with NTP or SFTMix.",
    "eval": "Evaluate a trained model on held-out data.",
    "dynamics": "Reference run + per-example training dynamics (writes dynamics.parquet).",
    "split": "Split training examples into confident / unconfident halves (writes split.json).",
    "experiment": "Run the staged, resumable experiment described by a YAML file.",
    "ablate": "Sweep Mixup settings over several seeds on the built-in suite.",
    "figures": "Regenerate every figure of a run directory.",
}


def _yaml_to_argv(path: str) -> list[str]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a mapping of option names to values")
    argv = []
    for key, value in data.items():
        if isinstance(value, dict):
            raise SystemExit(f"{path}: key {key!r} holds a mapping; use flat option names here")
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *[str(v) for v in values]]
    return argv


def parse_training_args(argv: list[str], prog: str):
    """Parse (ModelArguments, DataArguments, SFTMixConfig) from a YAML file and/or options."""
    from transformers import HfArgumentParser

    from .config import DataArguments, ModelArguments, SFTMixConfig

    parser = HfArgumentParser((ModelArguments, DataArguments, SFTMixConfig), prog=prog)
    if argv and argv[0].endswith((".yaml", ".yml")):
        argv = _yaml_to_argv(argv[0]) + argv[1:]
    if "--output_dir" not in argv and not any(a in ("-h", "--help") for a in argv):
        argv = argv + ["--output_dir", "runs/train"]
    model_args, data_args, train_args, rest = parser.parse_args_into_dataclasses(
        args=argv, return_remaining_strings=True)
    if rest:
        parser.error(f"unknown options: {' '.join(rest)}")
    return model_args, data_args, train_args


def cmd_train(argv):
    from .models import load_model_and_tokenizer
    from .training import load_train_eval, train_model

    model_args, data_args, cfg = parse_training_args(argv, "sftmix train")
    model, tokenizer = load_model_and_tokenizer(model_args)
    train, _ = load_train_eval(data_args)
    from .data import tokenize_examples

    tokenized, report = tokenize_examples(train, tokenizer, max_length=data_args.max_length, return_report=True)
    print(f"training on {report.kept} examples ({report.truncated} truncated, "
          f"{report.dropped_no_response} dropped with no response token left)")
    train_model(model, tokenizer, tokenized, cfg)
    print(f"saved model to {cfg.output_dir}")


def cmd_eval(argv):
    from .evaluate import evaluate_model
    from .models import load_model_and_tokenizer
    from .training import load_train_eval, write_json

    ap = argparse.ArgumentParser(prog="sftmix eval", add_help=False)
    ap.add_argument("--out", default=None, help="Write the metrics to this JSON file.")
    ap.add_argument("--no-generate", action="store_true", help="Skip greedy generation / exact match.")
    ap.add_argument("--export-alpaca-eval", default=None, metavar="FILE",
                    help="Write the generations as an AlpacaEval model-outputs JSON file.")
    ap.add_argument("--export-mt-bench", default=None, metavar="FILE",
                    help="Write the generations as an MT-Bench answer file (single-turn: one turn per example).")
    known, argv = ap.parse_known_args(argv)
    model_args, data_args, cfg = parse_training_args(argv, "sftmix eval")
    model, tokenizer = load_model_and_tokenizer(model_args)
    train, held_out = load_train_eval(data_args)
    if held_out is None:
        raise SystemExit("no held-out data: pass --eval_dataset FILE")
    result = evaluate_model(model, tokenizer, held_out, max_length=data_args.max_length,
                            generate=not known.no_generate)
    generations = result.pop("generations", None)
    print(json.dumps(result, indent=2))
    if generations is not None and (known.export_alpaca_eval or known.export_mt_bench):
        from .export import export_alpaca_eval, export_mt_bench

        name = Path(model_args.model_name_or_path).name
        if known.export_alpaca_eval:
            prompts = ["\n\n".join(m["content"] for m in msgs) for msgs in held_out["messages"]]
            print("wrote", export_alpaca_eval(prompts, generations, known.export_alpaca_eval, generator=name))
        if known.export_mt_bench:
            print("wrote", export_mt_bench(list(held_out["example_id"]), [[g] for g in generations],
                                           known.export_mt_bench, model_id=name))
    if known.out:
        write_json(known.out, result)


def cmd_data(argv):
    from .training import load_train_eval

    ap = argparse.ArgumentParser(prog="sftmix data", add_help=False)
    ap.add_argument("--out", default=None, help="Write the canonical examples as JSONL here.")
    known, argv = ap.parse_known_args(argv)
    _, data_args, _ = parse_training_args(argv, "sftmix data")
    train, held_out = load_train_eval(data_args)
    print(f"{len(train)} training examples" + (f", {len(held_out)} held-out" if held_out is not None else ""))
    frame = train.to_pandas()
    if "task" in frame:
        cols = [c for c in ("difficulty", "noisy") if c in frame]
        print(frame.groupby("task")[cols].agg(["mean"]).assign(n=frame.groupby("task").size()).to_string())
    first = train[0]
    print("first example:", json.dumps({"messages": first["messages"], "response": first["response"]})[:300])
    if known.out:
        train.to_json(known.out, lines=True)
        print(f"wrote {known.out}")


def cmd_demo(argv):
    from .experiment import run_demo

    ap = argparse.ArgumentParser(prog="sftmix demo", description=COMMANDS["demo"])
    ap.add_argument("--quick", action="store_true", help="Smaller data and shorter training (under a minute).")
    ap.add_argument("--runs-dir", default="runs", help="Where the run directory is created (default: runs).")
    ap.add_argument("--name", default=None, help="Run name (default: demo or demo-quick).")
    args = ap.parse_args(argv)
    run_demo(quick=args.quick, runs_dir=args.runs_dir, name=args.name)


def _dispatch(name: str):
    table = {"train": cmd_train, "eval": cmd_eval, "data": cmd_data, "demo": cmd_demo}
    if name in table:
        return table[name]
    from . import cli_stages

    return getattr(cli_stages, f"cmd_{name}")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: sftmix COMMAND [options]   (sftmix COMMAND --help for its options)\n")
        for name, text in COMMANDS.items():
            print(f"  {name:<11}{text}")
        raise SystemExit(0 if not argv or argv[0] in ("-h", "--help") else 2)
    _dispatch(argv[0])(argv[1:])


if __name__ == "__main__":
    main()
