"""``sftmix data``: load a dataset, validate it and report what training would see.

The report: the format detected and the number of examples; what loading did (records read,
ShareGPT repairs counted by reason with example rows, the number kept, where a broken file
stopped, what ``--max_exchanges`` cut); prompt and response lengths
in tokens of the chosen tokenizer (p50/p90/p99/max); how many examples ``--max_length``
would truncate or drop; exact duplicates (same prompt and response); counts per task and
noise flag for the built-in suite; the first rows as a table. ``--out`` writes canonical
JSONL, ``--plot`` a histogram of the lengths.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..constants import BUILTIN, IGNORE_INDEX
from ..data import SHAREGPT_DROPS, SHAREGPT_TRIMS, tokenize_examples
from ..data.prepare import prepare_train_eval
from ..data.tokenize import tokenizer_summary
from ..io import atomic_write
from ..viz.plots.data import plot_lengths
from .common import (
    OptionParser,
    load_model_for,
    maybe_print_help,
    parse_training_args,
    split_known,
    training_options_parser,
)

__all__ = ["HELP", "PERCENTILES", "add_parser", "exact_duplicates", "head_table", "length_summary", "loading_text",
           "report_text", "run", "token_lengths"]


HELP = "Load a dataset, validate it and report lengths, truncation, duplicates and counts."
PERCENTILES = (50, 90, 99)


def add_parser(subparsers):
    return training_options_parser(subparsers, "data", HELP, __doc__.split("\n\n", 1)[1].strip())


def _own_options() -> OptionParser:
    ap = OptionParser(prog="sftmix data", add_help=False)
    ap.add_argument("--head", type=int, default=5, metavar="N", help="Show the first N rows (default: 5).")
    ap.add_argument("--out", default=None, metavar="FILE", help="Write the canonical examples as JSONL here.")
    ap.add_argument("--plot", default=None, metavar="PNG", help="Save a histogram of prompt/response lengths here.")
    return ap


def token_lengths(examples, tokenizer, *, last_turn_only: bool = False) -> pd.DataFrame:
    """Per example: ``example_id``, ``prompt`` and ``response`` tokens (untruncated) and
    ``first_response``, the position of the first trained token.

    ``response`` counts every trained (assistant) token; ``prompt`` the rest.
    """
    tokenized = tokenize_examples(examples.select_columns(["example_id", "messages", "response"]), tokenizer,
                                  max_length=10**9, last_turn_only=last_turn_only)
    rows = []
    for eid, labels in zip(tokenized["example_id"], tokenized["labels"]):
        trained = np.asarray(labels) != IGNORE_INDEX
        first = int(np.argmax(trained[1:])) + 1 if trained[1:].any() else len(labels)
        rows.append((eid, int((~trained).sum()), int(trained.sum()), first))
    return pd.DataFrame(rows, columns=["example_id", "prompt", "response", "first_response"])


def length_summary(lengths: pd.DataFrame, max_length: int) -> dict:
    """Percentiles of prompt/response tokens and what ``max_length`` would do."""
    total = lengths["prompt"] + lengths["response"]
    out = {col: {f"p{q}": float(np.percentile(lengths[col], q)) for q in PERCENTILES} | {"max": int(lengths[col].max())}
           for col in ("prompt", "response")}
    out["truncated"] = int((total > max_length).sum())
    # Dropped: no trained token left at positions 1..max_length-1 (position 0 predicts nothing).
    out["dropped"] = int((lengths["first_response"] >= max_length).sum())
    return out


def exact_duplicates(examples) -> list[list[str]]:
    """Groups of example ids with the same prompt and response (groups of two or more)."""
    groups: dict[str, list[str]] = {}
    for eid, messages, response in zip(examples["example_id"], examples["messages"], examples["response"]):
        groups.setdefault(json.dumps([messages, response], sort_keys=True), []).append(str(eid))
    return [ids for ids in groups.values() if len(ids) > 1]


def head_table(examples, n: int, width: int = 48) -> pd.DataFrame:
    """The first ``n`` rows: id, prompt, response and any of task/difficulty/noisy, texts shortened."""
    def short(text: str) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= width else text[: width - 1] + "…"

    rows = examples.select(range(min(n, len(examples))))
    table = pd.DataFrame({
        "example_id": rows["example_id"],
        "prompt": [short(" | ".join(f"{m['role']}: {m['content']}" for m in msgs)) for msgs in rows["messages"]],
        "response": [short(r) for r in rows["response"]]})
    for col in ("task", "difficulty", "noisy"):
        if col in rows.column_names:
            table[col] = rows[col]
    return table


def loading_text(data_reports: dict) -> str:
    """What loading did, per source (``{"train": DataReport, "held_out": ...}``): repairs by reason, kept."""
    lines = []
    for name, report in data_reports.items():
        lines += [f"{name.replace('_', '-')} data:"] + report.lines({**SHAREGPT_DROPS, **SHAREGPT_TRIMS})
    return "\n".join(lines)


def report_text(examples, lengths: pd.DataFrame, *, fmt: str, max_length: int, head: int,
                held_out=None, data_reports: dict | None = None) -> str:
    """The printed report; ``data_reports`` (``{"train": DataReport, ...}``) adds what loading did."""
    lines = [f"format: {fmt}; {len(examples)} training examples"
             + (f", {len(held_out)} held-out" if held_out is not None else "")]
    if data_reports:
        lines += ["", loading_text(data_reports)]
    summary = length_summary(lengths, max_length)
    lines += ["", "tokens per example (trained: each assistant turn's content and end-of-turn token; multi-turn: "
                  "every assistant turn):",
              pd.DataFrame({k: summary[k] for k in ("prompt", "response")}).T.to_string(float_format="{:.0f}".format),
              "", f"at max_length={max_length}: {summary['truncated']} truncated, {summary['dropped']} dropped "
                  "(no response token left)"]
    dups = exact_duplicates(examples)
    lines.append("")
    if dups:
        extra = sum(len(g) - 1 for g in dups)
        lines.append(f"exact duplicates (same prompt and response): {len(dups)} groups, {extra} extra rows; "
                     "e.g. " + "; ".join(", ".join(g[:4]) for g in dups[:3]))
    else:
        lines.append("exact duplicates (same prompt and response): none")
    frame = examples.select_columns([c for c in ("task", "noisy") if c in examples.column_names]).to_pandas()
    if "task" in frame:
        counts = frame.groupby("task").size().rename("n").to_frame()
        if "noisy" in frame:
            counts = counts.join(frame.groupby(["task", "noisy"]).size().unstack(fill_value=0)
                                 .rename(columns=lambda v: f"noisy={v}"))
        lines += ["", "examples per task:", counts.to_string()]
    if head > 0:
        lines += ["", f"first {min(head, len(examples))} rows:", head_table(examples, head).to_string(index=False)]
    return "\n".join(lines)


def run(args) -> None:
    import datasets

    datasets.disable_progress_bars()
    own = _own_options()
    maybe_print_help(args.argv, "sftmix data", HELP, own)
    known, argv = split_known(own, args.argv)
    model_args, data_args, _ = parse_training_args(argv, "sftmix data")
    tokenizer = load_model_for(model_args, tokenizer_only=True)
    print(tokenizer_summary(tokenizer, model_args.tokenizer_name_or_path or model_args.model_name_or_path))
    # The same preparation as `sftmix train` (duplicates, overlong, held_out_size, train_size, noise),
    # so the counts reported here are the ones training sees.
    train, held_out, prepared = prepare_train_eval(data_args, tokenizer, return_report=True)
    data_reports = prepared.loading
    if data_args.dataset == BUILTIN:
        fmt = "built-in task suite"
    else:
        report = data_reports["train"]
        fmt = f"{report.format} ({'given' if report.format_given else 'detected'})"
    shown = {k: r for k, r in data_reports.items() if not r.source.startswith(f"{BUILTIN}[")}  # files, Hub
    if shown:  # before tokenizing, which takes minutes on a large file
        print(loading_text(shown) + "\n", flush=True)
    if prepared.steps:
        print("preparation (as `sftmix train` does it):\n" + "\n".join(f"  {line}" for line in prepared.steps) + "\n",
              flush=True)
    datasets.enable_progress_bars()  # tokenizing a large file takes minutes (the packaged ShareGPT: ~3.5 min)
    try:
        lengths = token_lengths(train, tokenizer, last_turn_only=data_args.last_turn_only)
    finally:
        datasets.disable_progress_bars()
    print(report_text(train, lengths, fmt=fmt, max_length=data_args.max_length, head=known.head,
                      held_out=held_out))
    if known.out:
        atomic_write(known.out, lambda tmp: train.to_json(tmp, lines=True, force_ascii=False))
        print(f"\nwrote {len(train)} canonical examples to {known.out}")
    if known.plot:
        fig = plot_lengths(lengths, max_length=data_args.max_length)
        atomic_write(known.plot, lambda tmp: fig.savefig(tmp, dpi=150, format=Path(known.plot).suffix[1:] or "png"))
        print(f"wrote {known.plot}")
