"""Wall time of ``sftmix demo --quick`` and ``sftmix demo``, with the per-stage breakdown.

Each demo runs as ``python -m sftmix.cli demo [--quick] --runs-dir <temp dir>`` in a
child process; the stage times come from ``<run>/stages/*.json``. "outside stages" is
the wall time not inside any stage: interpreter start, imports, building the suite,
results and figures. ``--smoke`` runs a miniature experiment through the same
``run_experiment`` instead (the real demos take from one to several minutes).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C


def smoke_child(runs_dir: str) -> None:
    from sftmix.pipeline.experiment import run_experiment
    from sftmix.pipeline.experiment_config import ExperimentConfig

    config = ExperimentConfig(
        name="demo-smoke", runs_dir=runs_dir, seeds=[0], methods=["ntp", "sftmix"],
        model={"model_name_or_path": "tiny-llama", "tiny_hidden_size": 16, "tiny_heads": 2},
        data={"n_train": 32, "n_test": 8, "max_length": 64},
        training={"num_train_epochs": 1, "per_device_train_batch_size": 8, "logging_steps": 1,
                  "learning_rate": 1e-3},
        recipe={"n_checkpoints": 1}, generate=False, embeddings=False, figures=False)
    run_experiment(config, progress=False)


def run_demo(kind: str, smoke: bool) -> dict:
    runs = tempfile.mkdtemp(prefix="bench_demo_")
    if smoke:
        argv, name = [__file__, "--smoke-child", runs], "demo-smoke"
    else:
        argv = ["-m", "sftmix.cli", "demo", "--runs-dir", runs] + (["--quick"] if kind == "quick" else [])
        name = "demo-quick" if kind == "quick" else "demo"
    cache = Path(os.environ["NUMBA_CACHE_DIR"])
    cache_warm = cache.exists() and any(cache.rglob("*.nbi"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=C.ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{kind} demo failed:\n{proc.stderr[-3000:]}")
    stages = {f.stem.replace("__", "/"): json.loads(f.read_text())["seconds"]
              for f in sorted((Path(runs) / name / "stages").glob("*.json"))}
    groups = {}
    for stage, s in stages.items():
        key = stage.split("/")[0] + ("/" + stage.split("/")[1] if stage.count("/") else "")
        groups[key] = groups.get(key, 0.0) + s
    return {"demo": kind, "wall_s": wall, "stages_s": stages, "stage_groups_s": groups,
            "outside_stages_s": wall - sum(stages.values()), "numba_cache_warm_at_start": cache_warm,
            "run_dir": str(Path(runs) / name)}


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--smoke-child", help="internal")
    ap.add_argument("--only", choices=["quick", "full"], help="run one of the two demos")
    args = ap.parse_args()
    if args.smoke_child:
        return smoke_child(args.smoke_child)
    load0 = C.load_avg()
    kinds = ["smoke"] if args.smoke else ([args.only] if args.only else ["quick", "full"])
    rows = []
    for kind in kinds:
        print(f"== demo {kind} ...", flush=True)
        rows.append(run_demo(kind, args.smoke))
        r = rows[-1]
        print(f"   wall {r['wall_s']:.1f} s, outside stages {r['outside_stages_s']:.1f} s", flush=True)
        print(C.table([{"stage": k, "seconds": v, "share": f"{100 * v / r['wall_s']:.0f}%"}
                       for k, v in r["stages_s"].items()], ["stage", "seconds", "share"]))
    C.write_result("bench_demo", args, {"results": rows}, load0)


if __name__ == "__main__":
    sys.exit(main())
