"""``sftmix pretrain``: pretrain the tiny base model on the task suite's plain-text world."""

from __future__ import annotations

import dataclasses
import json

from ..toy.pretrain import PretrainConfig, pretrain

HELP = "Pretrain the tiny base model on the built-in world corpus (writes a model folder)."


def add_parser(subparsers):
    ap = subparsers.add_parser("pretrain", help=HELP, description=HELP)
    ap.add_argument("--out", default="runs/tiny-base", help="Output model folder (default: runs/tiny-base).")
    ap.add_argument("--no-resume", action="store_true", help="Start over instead of continuing a saved run.")
    ap.add_argument("--quiet", action="store_true", help="No progress bar.")
    for f in dataclasses.fields(PretrainConfig):
        if f.type in ("int", "float", int, float):
            kind = int if f.type in ("int", int) else float
            ap.add_argument(f"--{f.name}", type=kind, default=f.default, help=f"(default: {f.default})")
        elif f.name == "threads":
            ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
        elif f.name == "phase2_step":
            ap.add_argument("--phase2_step", type=int, default=None,
                            help="From this step on, qa_fraction of the text is worked Q/A examples "
                                 "(default: never; the shipped base used 1750).")
    return ap


def run(args) -> None:
    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    cfg = PretrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    record = pretrain(cfg, args.out, resume=not args.no_resume, progress=not args.quiet)
    print(json.dumps(record, indent=2, default=str))
    print(f"wrote {args.out}")
