"""The real-model experiment with 3 seeds, and the committed results in figures/real/smollm2-135m/.

SmolLM2-135M-Instruct on ShareGPT first exchanges (configs/real/sharegpt-smollm2.yaml, the
package's `sftmix demo --real` settings), seeds 0, 1, 2; then figures, tables and CSVs.

    python figures/real_model.py               # run (or resume) the 3 seeds, then write figures/real/smollm2-135m/
    python figures/real_model.py --report-only  # rewrite figures/real/smollm2-135m/ from the finished run

About 75 minutes on one CPU thread of a 2-core machine (the run directory is runs/real-3seeds;
interrupt and rerun to resume).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs" / "real" / "sharegpt-smollm2.yaml"
OUT = ROOT / "figures" / "real" / "smollm2-135m"
SEEDS = [0, 1, 2]


def experiment(runs_dir: str):
    from sftmix.pipeline import ExperimentConfig

    return ExperimentConfig.from_yaml(CONFIG, name="real-3seeds", runs_dir=runs_dir, seeds=SEEDS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--report-only", action="store_true", help="only rewrite figures/real/smollm2-135m/ from the run")
    args = ap.parse_args()
    config = experiment(args.runs_dir)
    if not args.report_only:
        from sftmix.io import atomic_write_json
        from sftmix.pipeline import run_experiment

        start = time.time()
        run_experiment(config)
        usage = {"wall_seconds_this_call": round(time.time() - start, 1),
                 "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        atomic_write_json(config.run_dir / "resources.json", usage)
        print(usage)
    from sftmix.pipeline import write_real_report

    for path in write_real_report(config.run_dir, OUT, toy_results=ROOT / "figures" / "demo_results.md",
                                  made_by="`python figures/real_model.py` (config "
                                          "`configs/real/sharegpt-smollm2.yaml`)"):
        print("wrote", path)


if __name__ == "__main__":
    main()
