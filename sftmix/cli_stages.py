"""The ``sftmix`` subcommands for the recipe's stages and the experiment pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_experiment(argv):
    from .experiment import ExperimentConfig, run_experiment

    ap = argparse.ArgumentParser(prog="sftmix experiment",
                                 description="Run (or resume) the staged experiment described by a YAML file.")
    ap.add_argument("config", help="Experiment YAML (see configs/).")
    ap.add_argument("--name", default=None, help="Override the run name.")
    ap.add_argument("--runs-dir", default=None, help="Override where run directories go.")
    args = ap.parse_args(argv)
    overrides = {k: v for k, v in (("name", args.name), ("runs_dir", args.runs_dir)) if v is not None}
    config = ExperimentConfig.from_yaml(args.config, **overrides)
    run_experiment(config)
    print((config.run_dir / "results.md").read_text())


def cmd_figures(argv):
    from .figures import make_figures

    ap = argparse.ArgumentParser(prog="sftmix figures", description="Regenerate every figure of a run directory.")
    ap.add_argument("run_dir", help="A run directory (e.g. runs/demo).")
    ap.add_argument("--out", default=None, help="Output folder (default: RUN_DIR/figures).")
    args = ap.parse_args(argv)
    written = make_figures(args.run_dir, args.out or Path(args.run_dir) / "figures")
    print("\n".join(str(p) for p in written))
