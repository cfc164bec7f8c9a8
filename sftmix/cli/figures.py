"""``sftmix figures``: regenerate every figure of a run directory."""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import ConfigError
from ..io import RunDir
from ..viz.figures import make_figures

__all__ = ["HELP", "add_parser", "run"]


HELP = "Regenerate every figure of a run directory."


def add_parser(subparsers):
    ap = subparsers.add_parser("figures", help=HELP, description=HELP)
    ap.add_argument("run_dir", help="A run directory (e.g. runs/demo).")
    ap.add_argument("--out", default=None, help="Output folder (default: RUN_DIR/figures).")
    return ap


def _check_run_dir(run_dir: str) -> None:
    """A ConfigError naming ``run_dir`` (and a close sibling folder) when it is not a directory."""
    path = Path(run_dir)
    if path.is_dir():
        return
    siblings = [p.name for p in path.parent.iterdir() if p.is_dir()] if path.parent.is_dir() else []
    close = difflib.get_close_matches(path.name, siblings, n=1)
    hint = f"; did you mean {str(path.parent / close[0])!r}?" if close else ""
    raise ConfigError(f"{run_dir}: no such run directory{hint}")


def run(args) -> None:
    _check_run_dir(args.run_dir)
    written = make_figures(args.run_dir, args.out or RunDir(args.run_dir).figures)
    if not written:
        raise ConfigError(f"{args.run_dir}: no figures to draw: the folder holds none of a run's files (dynamics "
                          "table, split, projection, training logs, eval results); is it a run directory?")
    print("\n".join(str(p) for p in written))
