"""``sftmix ablate``: sweep the recipe's settings one at a time around an experiment's recipe, over seeds.

The settings it can vary are the ablation axes of :mod:`sftmix.config` (the Mixup settings of
``training:`` and the split settings of ``recipe:``; see :data:`sftmix.pipeline.ablation.AXES`), on
whatever data the experiment YAML names.
"""

from __future__ import annotations

from ..io import RunDir, atomic_write_text
from ..pipeline.ablation import AXES, DEFAULT_SWEEP, SWEEPABLE, plot_sweep, run_ablation, summary_markdown
from ..viz.plots import save_figure
from .common import add_set_option, load_experiment_config

HELP = "Sweep the Mixup and split settings one at a time around an experiment's recipe, over several seeds."


def add_parser(subparsers):
    ap = subparsers.add_parser(
        "ablate", help=HELP,
        description="Sweep one setting at a time (a Mixup setting of training:, or a split setting of recipe:) "
                    "around the recipe of an experiment YAML, over several seeds, sharing one reference run. "
                    "Results: RUN/ablation/results.csv and summary.md.")
    ap.add_argument("config", help="Experiment YAML of the centre recipe (see configs/).")
    ap.add_argument("--param", choices=SWEEPABLE, default=None,
                    help="The setting to vary (" + ", ".join(f"{AXES[p]}.{p}" for p in SWEEPABLE)
                         + "; default: the whole default sweep: "
                         + "; ".join(f"{k} {','.join(map(str, v))}" for k, v in DEFAULT_SWEEP.items()) + ").")
    ap.add_argument("--values", default=None, help="Comma-separated values of --param, e.g. 0.1,0.5,1.0.")
    ap.add_argument("--seeds", default=None, help="Comma-separated seeds (default: the YAML's seeds).")
    ap.add_argument("--no-centre", action="store_true", help="Do not add the centre value to --values.")
    ap.add_argument("--keep-weights", action="store_true", help="Keep each cell's trained weights.")
    ap.add_argument("--name", default=None, help="Override the run name.")
    ap.add_argument("--runs-dir", default=None, help="Override where run directories go.")
    add_set_option(ap)
    return ap


def run(args) -> None:
    if (args.param is None) != (args.values is None):
        args.parser.error("--param and --values go together")
    overrides = {k: v for k, v in (("name", args.name), ("runs_dir", args.runs_dir)) if v is not None}
    config = load_experiment_config(args.config, args.set, **overrides)
    sweep = {args.param: args.values} if args.param else None
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    results = run_ablation(config, sweep, seeds, include_centre=not args.no_centre, keep_weights=args.keep_weights)
    run_dir = RunDir(config.run_dir)
    out = run_dir.ablation
    text = summary_markdown(results)
    atomic_write_text(out / "summary.md", text)
    for metric in ("exact_match", "nll"):
        save_figure(plot_sweep(results, metric), out / f"ablation_{metric}")
    print(text)
    print(f"results: {run_dir.ablation_results}; figures and summary.md in {out}/")
