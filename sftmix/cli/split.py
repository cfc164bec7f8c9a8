"""``sftmix split``: split examples into confident / unconfident halves (the pipeline's split stage)."""

from __future__ import annotations

from pathlib import Path

from ..io import RunDir
from ..pipeline.stages import split_dynamics
from ..recipe import SPLIT_METRICS

HELP = "Split training examples into confident / unconfident halves (writes split.json)."


def add_parser(subparsers):
    ap = subparsers.add_parser("split", help=HELP, description=HELP)
    ap.add_argument("dynamics", help="dynamics.parquet written by `sftmix dynamics`.")
    ap.add_argument("--ratio", type=float, default=0.5, help="Fraction in the confident half (paper: 0.5).")
    ap.add_argument("--metric", choices=SPLIT_METRICS, default="confidence",
                    help="confidence = minus mean perplexity (the paper).")
    ap.add_argument("--out", default=None, help="Output path (default: split.json beside the table).")
    return ap


def run(args) -> None:
    out = args.out or RunDir(Path(args.dynamics).parent).split
    split = split_dynamics(args.dynamics, out, ratio=args.ratio, metric=args.metric)
    print(f"wrote {out}: {len(split['confident'])} confident, {len(split['unconfident'])} unconfident, "
          f"threshold {split['metric']} = {split['threshold']:.4g}")
