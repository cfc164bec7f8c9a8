"""Calibrate the judge-free yardsticks: does each measure tell a base model from instruction-tuned ones?

Reads the ``<model_id>.instruct.json`` files that ``sftmix eval --mt_bench DIR --ifeval FILE`` wrote
for several models on one fixed set (same MT-Bench questions, same IFEval-style file), and reports per
model each measure with its 95% interval (Wilson for shares, t for means over items), and for every
model against the first (the base) the paired difference over the same items with its 95% t-interval.
A measure "separates" two models when that interval excludes 0.

Measures: GPT-4 reference-answer NLL per byte (comparable across tokenizers) and per token (only
within one tokenizer), MT-Bench answer length in words and share cut at max_new_tokens per turn,
IFEval-style prompt- and instruction-level accuracy, strict and loose.

    python benchmarks/yardsticks.py DIR base=ID instruct=ID trained=ID [--out benchmarks/results/yardsticks.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from sftmix.analysis.stats import paired_difference, t_interval, wilson_interval

SHARES = {"mt_bench_turn1_share_cut", "mt_bench_turn2_share_cut", "ifeval_prompt_strict", "ifeval_prompt_loose",
          "ifeval_instruction_strict", "ifeval_instruction_loose"}


def items(result: dict) -> dict[str, dict]:
    """measure -> {item key: value} for one model."""
    out: dict[str, dict] = {}
    ref = result["mt_bench"].get("reference_nll", {}).get("all", {})
    out["ref_nll_per_byte"] = dict(ref.get("per_question", {}))
    for answer in result["mt_bench"]["answers"]:
        for t, text in enumerate(answer["turns"]):
            out.setdefault(f"mt_bench_turn{t + 1}_words", {})[answer["question_id"]] = len(text.split())
            out.setdefault(f"mt_bench_turn{t + 1}_share_cut", {})[answer["question_id"]] = float(answer["cut"][t])
    for check in result["ifeval"]["checks"]:
        for mode in ("strict", "loose"):
            out.setdefault(f"ifeval_prompt_{mode}", {})[check["key"]] = float(all(check[mode]))
            for k, ok in enumerate(check[mode]):
                out.setdefault(f"ifeval_instruction_{mode}", {})[f"{check['key']}-{k}"] = float(ok)
    return out


def summary(measure: str, values: dict) -> dict:
    v = np.array(list(values.values()), dtype=float)
    if measure in SHARES:
        lo, hi = wilson_interval(v.mean(), len(v))
        return {"value": float(v.mean()), "low": lo, "high": hi, "n": len(v), "interval": "wilson"}
    mean, lo, hi = t_interval(v)
    return {"value": mean, "low": lo, "high": hi, "n": len(v), "interval": "t"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("models", nargs="+", help="ROLE=MODEL_ID, the base model first")
    ap.add_argument("--out", default="benchmarks/results/yardsticks.json")
    args = ap.parse_args()
    roles = [m.split("=", 1) for m in args.models]
    results = {role: json.loads((Path(args.dir) / f"{mid}.instruct.json").read_text()) for role, mid in roles}
    per_item = {role: items(r) for role, r in results.items()}
    per_token = {role: r["mt_bench"]["reference_nll"]["all"]["nll_per_token"] for role, r in results.items()}
    base = roles[0][0]
    table = {}
    for measure in per_item[base]:
        row = {"models": {role: summary(measure, per_item[role][measure]) for role, _ in roles}, "vs_" + base: {}}
        for role, _ in roles[1:]:
            keys = sorted(set(per_item[base][measure]) & set(per_item[role][measure]), key=str)
            diff = paired_difference([per_item[base][measure][k] for k in keys],
                                     [per_item[role][measure][k] for k in keys])
            row["vs_" + base][role] = {"mean": diff["mean"], "ci95": diff["ci95"], "n": len(keys),
                                       "separates": diff["ci95"] is not None and not diff["ci95"][0] <= 0
                                       <= diff["ci95"][1]}
        table[measure] = row
    lines = [f"| measure | {' | '.join(f'{r} ({m})' for r, m in roles)} | "
             + " | ".join(f"{r} - {base} [95% CI]" for r, _ in roles[1:]) + " |",
             "|---" * (1 + 2 * len(roles) - 1) + "|"]
    for measure, row in table.items():
        cells = [f"{s['value']:.3f} [{s['low']:.3f}, {s['high']:.3f}] (n={s['n']})" for s in row["models"].values()]
        diffs = []
        for d in row["vs_" + base].values():
            ci = "no interval" if d["ci95"] is None else f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
            diffs.append(f"{d['mean']:+.3f} {ci}{' separates' if d['separates'] else ''}")
        lines.append(f"| {measure} | " + " | ".join(cells + diffs) + " |")
    lines.append("| ref NLL per token (pooled; one tokenizer only) | "
                 + " | ".join(f"{per_token[r]:.3f}" for r, _ in roles) + " |" + " |" * (len(roles) - 1))
    markdown = "\n".join(lines)
    print(markdown)
    doc = {"command": " ".join(["python"] + sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "models": dict(roles), "max_new_tokens": {r: results[r]["max_new_tokens"] for r, _ in roles},
           "ifeval_source": {r: results[r]["ifeval"].get("source") for r, _ in roles},
           "ref_nll_per_token_pooled": per_token, "table": table, "markdown": markdown}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    Path(args.out).with_suffix(".md").write_text(f"`{doc['command']}`\n\n{markdown}\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
