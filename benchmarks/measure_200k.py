"""Wall time and memory of the data path at 200k examples: load, tokenize, score.

    OMP_NUM_THREADS=1 python benchmarks/measure_200k.py                  # 200k examples, 2 tokenizer processes
    OMP_NUM_THREADS=1 python benchmarks/measure_200k.py --n 5000          # quick look

Phases, in one process, in order:

* ``load``: ``load_examples("builtin", n_train=N, n_test=0)`` (the suite is generated in
  Python, then canonicalized through ``Dataset.map``);
* ``tokenize``: ``tokenize_examples(..., num_proc=P)``;
* ``score``: ``score_checkpoints`` of one tiny model (every example, one parquet file).

For each phase: wall time, resident memory (RSS) before and after, and the process's
peak RSS so far (``ru_maxrss``: it never goes down, so a phase's peak is the highest of it
and the phases before). The tokenizer's worker processes are reported separately (the
largest child's peak, ``RUSAGE_CHILDREN``). Writes benchmarks/results/measure_200k.json
and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results"


def rss_mb() -> float:
    """Current resident set size of this process (Linux /proc; ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_mb()


def peak_mb(who=resource.RUSAGE_SELF) -> float:
    kb = resource.getrusage(who).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def measure(args) -> dict:
    import datasets
    import torch
    import transformers

    from sftmix.data import load_examples, tokenize_examples
    from sftmix.dynamics.scoring import score_checkpoints
    from sftmix.toy import build_tiny_model, build_toy_tokenizer

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    load_start = [round(x, 2) for x in os.getloadavg()]
    phases = []

    def phase(name, fn, **info):
        before = rss_mb()
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        row = {"phase": name, "seconds": round(seconds, 2), "rss_before_mb": round(before, 1),
               "rss_after_mb": round(rss_mb(), 1), "peak_rss_mb": round(peak_mb(), 1),
               "children_peak_rss_mb": round(peak_mb(resource.RUSAGE_CHILDREN), 1), **info}
        phases.append(row)
        print(f"  {name}: {seconds:.1f} s", flush=True)
        return result

    tok = build_toy_tokenizer()
    model = build_tiny_model("llama", tokenizer=tok, hidden_size=args.hidden_size, num_heads=2, seed=0)
    examples = phase("load", lambda: load_examples("builtin", n_train=args.n, n_test=0))
    tokenized = phase("tokenize", lambda: tokenize_examples(examples, tok, max_length=args.max_length,
                                                            num_proc=args.num_proc),
                      num_proc=args.num_proc)
    n_tokens = int(sum(tokenized["length"]))
    with tempfile.TemporaryDirectory() as out:
        frames = phase("score", lambda: score_checkpoints([("tiny", model)], tokenized, out_dir=out,
                                                          batch_size=args.batch_size, progress=False),
                       batch_size=args.batch_size, hidden_size=args.hidden_size)
        parquet_mb = round(sum(p.stat().st_size for p in Path(out).glob("*.parquet")) / 2**20, 2)
    frame = frames[0]
    assert len(frame) == len(tokenized) and frame["ppl"].notna().all()
    return {
        "n_examples": args.n, "n_kept": len(tokenized), "n_tokens": n_tokens,
        "arrow_mb": {"examples": round(examples.data.nbytes / 2**20, 1),
                     "tokenized": round(tokenized.data.nbytes / 2**20, 1)},
        "score_parquet_mb": parquet_mb,
        "phases": phases,
        "total_seconds": round(sum(p["seconds"] for p in phases), 1),
        "machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "transformers": transformers.__version__, "datasets": datasets.__version__,
                    "platform": platform.platform(), "load_avg_start": load_start,
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
        "command": "OMP_NUM_THREADS=%s python benchmarks/measure_200k.py %s"
                   % (os.environ.get("OMP_NUM_THREADS", ""), " ".join(sys.argv[1:])),
    }


def table(result: dict) -> str:
    lines = [f"{result['n_examples']} examples ({result['n_kept']} kept, {result['n_tokens']} tokens)", "",
             "| phase | seconds | RSS before (MB) | RSS after (MB) | peak RSS so far (MB) | workers' peak (MB) |",
             "|---|---|---|---|---|---|"]
    for p in result["phases"]:
        lines.append(f"| {p['phase']} | {p['seconds']:.1f} | {p['rss_before_mb']:.0f} | {p['rss_after_mb']:.0f} "
                     f"| {p['peak_rss_mb']:.0f} | {p['children_peak_rss_mb']:.0f} |")
    lines.append(f"\nArrow data in memory: examples {result['arrow_mb']['examples']} MB, tokenized "
                 f"{result['arrow_mb']['tokenized']} MB; per-example scores {result['score_parquet_mb']} MB parquet.")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="training examples (default 200000)")
    ap.add_argument("--num-proc", type=int, default=2, help="tokenizer processes (default 2)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64, help="scoring batch (the pipeline's default, 64)")
    ap.add_argument("--hidden-size", type=int, default=16, help="width of the tiny scoring model")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/measure_200k.json; "
                                                "only written for the default --n)")
    args = ap.parse_args(argv)
    result = measure(args)
    print(table(result))
    out = args.out or (RESULTS / "measure_200k.json" if args.n == 200_000 else None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
