"""``sftmix data``: load a dataset, validate it and print a summary."""

from __future__ import annotations

import argparse
import json

from ..data import load_train_eval
from .common import parse_training_args, split_known, training_options_parser

HELP = "Load a dataset, validate it and print a summary (optionally write canonical JSONL)."


def add_parser(subparsers):
    return training_options_parser(subparsers, "data", HELP)


def run(args) -> None:
    ap = argparse.ArgumentParser(prog="sftmix data", add_help=False)
    ap.add_argument("--out", default=None, help="Write the canonical examples as JSONL here.")
    known, argv = split_known(ap, args.argv)
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
