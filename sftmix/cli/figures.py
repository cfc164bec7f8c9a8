"""``sftmix figures``: regenerate every figure of a run directory."""

from __future__ import annotations

from ..io import RunDir
from ..viz.figures import make_figures

HELP = "Regenerate every figure of a run directory."


def add_parser(subparsers):
    ap = subparsers.add_parser("figures", help=HELP, description=HELP)
    ap.add_argument("run_dir", help="A run directory (e.g. runs/demo).")
    ap.add_argument("--out", default=None, help="Output folder (default: RUN_DIR/figures).")
    return ap


def run(args) -> None:
    written = make_figures(args.run_dir, args.out or RunDir(args.run_dir).figures)
    print("\n".join(str(p) for p in written))
