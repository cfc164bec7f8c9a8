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


def cmd_ablate(argv):
    from .ablation import DEFAULT_SWEEP, SWEEPABLE, plot_sweep, run_ablation, summary_markdown
    from .experiment import ExperimentConfig
    from .plots import save_figure

    ap = argparse.ArgumentParser(
        prog="sftmix ablate",
        description="Sweep one Mixup setting at a time around the recipe of an experiment YAML, over several "
                    "seeds, sharing one reference run. Results: RUN/ablation/results.csv and summary.md.")
    ap.add_argument("config", help="Experiment YAML of the centre recipe (see configs/).")
    ap.add_argument("--param", choices=SWEEPABLE, default=None,
                    help="The setting to vary (default: the whole default sweep: "
                         + "; ".join(f"{k} {','.join(map(str, v))}" for k, v in DEFAULT_SWEEP.items()) + ").")
    ap.add_argument("--values", default=None, help="Comma-separated values of --param, e.g. 0.1,0.5,1.0.")
    ap.add_argument("--seeds", default=None, help="Comma-separated seeds (default: the YAML's seeds).")
    ap.add_argument("--no-centre", action="store_true", help="Do not add the centre value to --values.")
    ap.add_argument("--keep-weights", action="store_true", help="Keep each cell's trained weights.")
    ap.add_argument("--name", default=None, help="Override the run name.")
    ap.add_argument("--runs-dir", default=None, help="Override where run directories go.")
    args = ap.parse_args(argv)
    if (args.param is None) != (args.values is None):
        ap.error("--param and --values go together")
    overrides = {k: v for k, v in (("name", args.name), ("runs_dir", args.runs_dir)) if v is not None}
    config = ExperimentConfig.from_yaml(args.config, **overrides)
    sweep = {args.param: args.values} if args.param else None
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    results = run_ablation(config, sweep, seeds, include_centre=not args.no_centre, keep_weights=args.keep_weights)
    out = config.run_dir / "ablation"
    text = summary_markdown(results)
    (out / "summary.md").write_text(text)
    for metric in ("exact_match", "nll"):
        save_figure(plot_sweep(results, metric), out / f"ablation_{metric}")
    print(text)
    print(f"results: {out / 'results.csv'}; figures and summary.md in {out}/")


def cmd_dynamics(argv):
    from .cli import parse_training_args
    from .data import tokenize_examples
    from .dynamics import compute_dynamics, dataset_fingerprint, read_checkpoint_frames, save_dynamics
    from .models import load_model_and_tokenizer
    from .scoring import score_checkpoints, train_reference
    from .training import load_train_eval

    ap = argparse.ArgumentParser(prog="sftmix dynamics", add_help=False)
    ap.add_argument("--n_checkpoints", type=int, default=3, help="Checkpoints spread evenly over the reference run.")
    ap.add_argument("--mode", choices=("checkpoints", "online"), default="checkpoints",
                    help="Score saved checkpoints (the paper) or record from the training forward passes.")
    known, rest = ap.parse_known_args(argv)
    if any(a in ("-h", "--help") for a in rest):
        ap.print_help()
    model_args, data_args, cfg = parse_training_args(rest, "sftmix dynamics [--n_checkpoints N] [--mode M]")
    out = Path(cfg.output_dir)
    model, tokenizer = load_model_and_tokenizer(model_args)
    train, _ = load_train_eval(data_args)
    tokenized = tokenize_examples(train, tokenizer, max_length=data_args.max_length)
    checkpoints = train_reference(model, tokenizer, tokenized, cfg, n_checkpoints=known.n_checkpoints,
                                  out_dir=out / "reference", record_online=known.mode == "online")
    if known.mode == "online":
        frames = read_checkpoint_frames(out / "reference" / "online")
    else:
        frames = score_checkpoints(checkpoints, tokenized, out_dir=out / "reference" / "scores")
    table = compute_dynamics(frames, train)
    path = save_dynamics(table, out / "dynamics.parquet", fingerprint=dataset_fingerprint(train["example_id"]),
                         model_name=model_args.model_name_or_path, checkpoints=[str(c) for c in checkpoints])
    print(f"wrote {path}: {len(table)} examples x {len(frames)} checkpoints; mean confidence "
          f"{table['confidence'].mean():.3f}")


def cmd_split(argv):
    from .dynamics import SPLIT_METRICS, load_dynamics, save_split, split_by_confidence

    ap = argparse.ArgumentParser(prog="sftmix split", description="Split examples by confidence (writes split.json).")
    ap.add_argument("dynamics", help="dynamics.parquet written by `sftmix dynamics`.")
    ap.add_argument("--ratio", type=float, default=0.5, help="Fraction in the confident half (paper: 0.5).")
    ap.add_argument("--metric", choices=SPLIT_METRICS, default="confidence",
                    help="confidence = minus mean perplexity (the paper).")
    ap.add_argument("--out", default=None, help="Output path (default: split.json beside the table).")
    args = ap.parse_args(argv)
    split = split_by_confidence(load_dynamics(args.dynamics), ratio=args.ratio, metric=args.metric)
    out = save_split(split, args.out or Path(args.dynamics).with_name("split.json"))
    print(f"wrote {out}: {len(split['confident'])} confident, {len(split['unconfident'])} unconfident, "
          f"threshold {split['metric']} = {split['threshold']:.4g}")
