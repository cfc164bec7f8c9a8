"""Scoring, embedding and UMAP cost as the dataset grows (1k, 10k, 50k built-in examples).

Each size runs in a fresh child process: build + tokenize the suite, then
``score_model`` and ``embed_examples`` with the demo's tiny model (d64, random weights),
each timed (fastest of ``--repeats``: the machine is shared) and with its peak memory
above the RSS just before it (VmHWM reset, see README.md). Time should grow linearly in
the number of examples and memory stay flat.
UMAP (``project_umap``, PCA to 50 dims first) runs on the 10k and 50k embeddings in two
child processes sharing a numba cache folder that starts empty: "cold" is the first
fit of the first process (JIT compilation included), "cached" the first fit of the
second process (compiled kernels on disk), "warm" a repeat fit inside a process.
"""
from __future__ import annotations

import ctypes
import os
import sys
import tempfile
import time

import _common as C


def measured(fn):
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = C.rss_mb()
    C.reset_peak()
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, C.peak_mb() - before


def child_data(n: int, emb_path: str, repeats: int) -> None:
    C.setup_torch(2)
    import numpy as np

    from sftmix.analysis.embed import embed_examples
    from sftmix.dynamics.scoring import score_model
    from sftmix.toy import build_tiny_model

    t0 = time.perf_counter()
    tok, data = C.suite_tokenized(n)
    out = {"n": n, "build_and_tokenize_s": time.perf_counter() - t0}
    model = build_tiny_model("llama", tokenizer=tok, hidden_size=64).eval()
    jobs = {"score": lambda: score_model(model, data, progress=False),
            "embed": lambda: embed_examples(model, tok, data, progress=False)}
    for name, fn in jobs.items():
        runs = [measured(fn) for _ in range(repeats)]
        assert len(runs[0][0]) == n
        out[f"{name}_s"], out[f"{name}_peak_mb"] = min(r[1] for r in runs), max(r[2] for r in runs)
        out[f"{name}_all_s"] = [r[1] for r in runs]
    if emb_path:
        np.save(emb_path, runs[0][0])
    C.emit({**out, "rss_mb": C.rss_mb()})


def child_umap(mode: str, paths: list[str]) -> None:
    import numpy as np

    from sftmix.analysis.projection import project_umap

    out = {"mode": mode, "numba_cache_dir": os.environ["NUMBA_CACHE_DIR"]}
    t0 = time.perf_counter()
    import umap  # noqa: F401  (the import alone costs seconds)
    out["import_s"] = time.perf_counter() - t0
    embs = [np.load(p) for p in paths]
    fits = [embs[0]] + embs if mode == "cold" else [embs[0], embs[0]]
    for k, e in enumerate(fits):
        label = f"{'first' if k == 0 else 'warm'}_fit_{len(e)}"
        _, out[f"{label}_s"], out[f"{label}_peak_mb"] = measured(lambda e=e: project_umap(e))
    C.emit(out)


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--child", nargs="+", help="internal")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per size (fastest kept)")
    args = ap.parse_args()
    if args.child:
        if args.child[0] == "data":
            return child_data(int(args.child[1]), args.child[2], int(args.child[3]))
        return child_umap(args.child[1], args.child[2:])
    load0 = C.load_avg()
    sizes = args.sizes or ([200, 400] if args.smoke else [1000, 10000, 50000])
    tmp = tempfile.mkdtemp(prefix="bench_scale_")
    embs = {}
    for n in sizes:
        embs[n] = os.path.join(tmp, f"emb{n}.npy") if n >= 10000 else ""
    reps = str(1 if args.smoke else args.repeats)
    rows = C.run_children([[__file__, "--child", "data", str(n), embs[n], reps] for n in sizes], parallel=args.smoke)
    for r in rows:
        print(f"   n={r['n']}: {r}", flush=True)
    base = rows[0]
    for r in rows:
        for k in ("score", "embed"):
            r[f"{k}_us_per_example"] = 1e6 * r[f"{k}_s"] / r["n"]
            r[f"{k}_time_growth_over_linear"] = (r[f"{k}_s"] / base[f"{k}_s"]) / (r["n"] / base["n"])
    print(C.table(rows, ["n", "score_s", "score_us_per_example", "score_peak_mb", "embed_s",
                         "embed_us_per_example", "embed_peak_mb", "build_and_tokenize_s"]))
    umap_rows = []
    big = [embs[n] for n in sizes if embs.get(n)]
    if not args.smoke and big:
        cache = tempfile.mkdtemp(prefix="numba_cache_")  # empty: the first process compiles
        for mode in ("cold", "cached"):
            umap_rows.append(C.run_child([__file__, "--child", "umap", mode, *big], env={"NUMBA_CACHE_DIR": cache}))
            print(f"   {umap_rows[-1]}", flush=True)
    C.write_result("bench_scale", args, {"model": "tiny-llama d64 (random init)", "batch_size": 64,
                                         "results": rows, "umap": umap_rows}, load0)


if __name__ == "__main__":
    sys.exit(main())
