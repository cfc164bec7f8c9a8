"""What length-aware batching costs in accuracy on the demo: NTP with random vs length-grouped batches.

The demo's NTP run (``demo_config()``: tiny-base, 2,500 noisy examples, 3 epochs) trained with
``train_sampling_strategy="random"`` and with ``"group_by_length"`` at two window sizes, each
over several seeds, then evaluated on the held-out set. Reports exact match and held-out NLL
(mean ± std over seeds) and the training time per run. Uses the staged pipeline, so a run
directory that already holds a finished setting is read, not retrained.

    python benchmarks/bench_grouping.py [--seeds 0 1 2] [--windows 8 50] [--runs-dir runs/bench-grouping]

Speed and padding of the same settings: ``bench_throughput.py``.
"""
from __future__ import annotations

import statistics
import tempfile

import _common as C


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--windows", type=int, nargs="+", default=[8, 50])
    ap.add_argument("--runs-dir", default=None, help="default runs/bench-grouping (a temporary folder with --smoke)")
    args = ap.parse_args()
    load_start = C.load_avg()
    C.setup_torch(1)
    from sftmix.pipeline.experiment import demo_config, run_experiment

    runs_dir = args.runs_dir or (tempfile.mkdtemp() if args.smoke else str(C.ROOT / "runs" / "bench-grouping"))
    base = demo_config(quick=args.smoke, runs_dir=runs_dir)
    if args.smoke:
        base = base.override({"data.n_train": 64, "data.n_test": 15, "training.num_train_epochs": 1})
        args.seeds, args.windows = args.seeds[:1], args.windows[:1]
    settings = [("random", None)] + [("group_by_length", w) for w in args.windows]
    results, rows = [], []
    for strategy, window in settings:
        name = "ntp-random" if window is None else f"ntp-window{window}"
        changes = {"training.train_sampling_strategy": strategy}
        if window is not None:
            changes["training.length_window"] = window
        config = base.override({**changes, "name": ("smoke-" if args.smoke else "") + name, "seeds": args.seeds,
                                "methods": ["ntp"], "embeddings": False, "figures": False})
        out = run_experiment(config, progress=False)
        per_seed = out["per_seed"]["ntp"]
        em = [per_seed[str(s)]["exact_match"] for s in args.seeds]
        nll = [per_seed[str(s)]["nll"] for s in args.seeds]
        train_s = [out["stage_seconds"].get(f"train/ntp/seed{s}") for s in args.seeds]
        sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
        results.append({"setting": name, "train_sampling_strategy": strategy, "length_window": window,
                        "seeds": args.seeds, "exact_match": em, "nll": nll, "train_seconds": train_s})
        rows.append({"setting": name, "exact match": f"{statistics.mean(em):.3f} ± {sd(em):.3f}",
                     "held-out NLL": f"{statistics.mean(nll):.3f} ± {sd(nll):.3f}",
                     "train s/run": " / ".join(f"{t:.0f}" for t in train_s if t is not None)})
    print(C.table(rows, list(rows[0])))
    C.write_result("bench_grouping", args, {"results": results, "n_train": base.data["n_train"]}, load_start)


if __name__ == "__main__":
    main()
