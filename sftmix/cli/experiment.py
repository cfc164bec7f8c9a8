"""``sftmix experiment``: run (or resume) the staged experiment described by a YAML file."""

from __future__ import annotations

from ..io import RunDir
from ..pipeline.experiment import run_experiment
from .common import add_set_option, load_experiment_config

HELP = "Run the staged, resumable experiment described by a YAML file."


def add_parser(subparsers):
    ap = subparsers.add_parser("experiment", help=HELP,
                               description="Run (or resume) the staged experiment described by a YAML file.")
    ap.add_argument("config", help="Experiment YAML (see configs/; a `base:` key names the file it builds on).")
    ap.add_argument("--name", default=None, help="Override the run name.")
    ap.add_argument("--runs-dir", default=None, help="Override where run directories go.")
    add_set_option(ap)
    return ap


def run(args) -> None:
    overrides = {k: v for k, v in (("name", args.name), ("runs_dir", args.runs_dir)) if v is not None}
    config = load_experiment_config(args.config, args.set, **overrides)
    run_experiment(config)
    print(RunDir(config.run_dir).results_md.read_text())
