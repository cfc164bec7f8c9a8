"""The experiment's instruction-following stage: MT-Bench and verifiable instructions for every trained model.

An experiment YAML turns it on with an ``instruct`` section (empty = off)::

    instruct:
      mt_bench: true          # answer MT-Bench over two turns, score GPT-4's reference answers
      per_category: null      # answer only the first N questions per category (null: all 80)
      ifeval: build           # "build": an IFEval-style set from MT-Bench's first turns (ifeval_seed);
                              # a path: a JSONL file in IFEval's schema; null: none
      ifeval_seed: 0
      max_new_tokens: 256
      batch_size: 16
      seeds: null             # the training seeds evaluated (null: all); e.g. [0] for an export of seed 0

Every (method, seed) model is evaluated by :func:`sftmix.analysis.instruct.evaluate_instruction_following`
into ``<run>/mt_bench/``: FastChat's ``model_answer/<method>-seed<seed>.jsonl`` (one folder, so
FastChat's judge compares all of them at once) and ``<method>-seed<seed>.instruct.json``. The built
IFEval-style set is written once as ``<run>/mt_bench/ifeval_set.jsonl``, the same prompts for every model.
:func:`instruct_results` gives each measure per seed and the paired SFTMix − NTP difference with its
t-interval over seeds (:func:`sftmix.analysis.stats.paired_difference`), as Markdown and CSV.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..analysis import ifeval, mtbench
from ..analysis.instruct import evaluate_instruction_following, flat_metrics
from ..analysis.stats import format_interval, paired_difference
from ..io import atomic_write_text
from ..models import load_tokenizer
from .instruct_options import check_instruct
from .stages import load_trained

__all__ = ["INSTRUCT_DIR", "instruct_output", "instruct_results", "instruct_stage", "instruct_untrained"]

INSTRUCT_DIR = "mt_bench"
#: measure -> higher is better (for the verdict's direction); the others are reported without a verdict
DIRECTION = {"ifeval_prompt_strict": True, "ifeval_prompt_loose": True, "ifeval_instruction_strict": True,
              "ifeval_instruction_loose": True, "mt_bench_ref_nll_per_byte_all": False,
              "mt_bench_ref_nll_per_byte_turn1": False, "mt_bench_ref_nll_per_byte_turn2": False}
#: The measures whose calibration separated an untuned base model from an instruct model
#: (benchmarks/results/yardsticks/: none did at the committed size). Only these get a verdict;
#: the others show their interval and "not calibrated".
CALIBRATED: frozenset[str] = frozenset()
NOT_CALIBRATED = "not calibrated (no verdict; benchmarks/results/yardsticks)"


def instruct_output(run: Path, method: str, seed: int) -> Path:
    return Path(run) / INSTRUCT_DIR / f"{method}-seed{seed}.instruct.json"


def _ifeval_rows(opts: dict, folder: Path) -> tuple[list[dict] | None, str | None]:
    if opts["ifeval"] is None:
        return None, None
    if opts["ifeval"] != "build":
        return ifeval.read_instruction_set(opts["ifeval"]), str(opts["ifeval"])
    path = folder / "ifeval_set.jsonl"
    rows = ifeval.build_instruction_set([q["turns"][0] for q in mtbench.read_questions()], seed=opts["ifeval_seed"])
    ifeval.write_instruction_set(rows, path)   # deterministic: every model's stage writes the same file
    return rows, str(path)


def _evaluate(config, model, tokenizer, folder: Path, model_id: str, progress: bool) -> None:
    """One model under the experiment's ``instruct`` settings, into ``folder``."""
    opts = check_instruct(config.instruct)
    rows, source = _ifeval_rows(opts, folder)
    questions = mtbench.read_questions() if opts["mt_bench"] else None
    evaluate_instruction_following(
        model, tokenizer, folder, model_id=model_id,
        questions=mtbench.subset(questions, opts["per_category"]) if questions else None,
        references=mtbench.read_reference_answers() if questions else None, reference_questions=questions,
        ifeval_rows=rows, ifeval_source=source, max_new_tokens=opts["max_new_tokens"],
        batch_size=opts["batch_size"], progress=progress)


def instruct_stage(config, run: Path, method: str, seed: int, model_dir: Path, *, progress: bool = True) -> None:
    """Evaluate one trained model (see the module docstring)."""
    _evaluate(config, load_trained(model_dir), load_tokenizer(config.model_args()), Path(run) / INSTRUCT_DIR,
              f"{method}-seed{seed}", progress)


def instruct_untrained(config, out: Path, *, model_id: str = "base", progress: bool = True) -> Path:
    """The experiment's model *before* training, under the same ``instruct`` settings as the trained
    models (the untuned base beside them); writes ``out/<model_id>.instruct.json`` and FastChat's
    answer file, and returns the former."""
    from ..models import load_model

    tokenizer = load_tokenizer(config.model_args())
    _evaluate(config, load_model(config.model_args(), tokenizer), tokenizer, Path(out), model_id, progress)
    return Path(out) / f"{model_id}.instruct.json"


def instruct_results(run: Path, config) -> dict:
    """Per seed and method every flat measure, the paired SFTMix − NTP difference per measure;
    writes ``<run>/instruct_results.csv`` (one row per method, seed and measure) and returns
    ``{"per_seed", "comparison", "markdown"}`` (empty when the stage did not run)."""
    per_seed: dict[str, dict[int, dict]] = {}
    for method in config.methods:
        for seed in config.seeds:
            path = instruct_output(run, method, seed)
            if path.exists():
                per_seed.setdefault(method, {})[seed] = flat_metrics(json.loads(path.read_text()))
    if not per_seed:
        return {}
    rows = [{"method": m, "seed": s, "measure": k, "value": v}
            for m, by_seed in per_seed.items() for s, metrics in by_seed.items() for k, v in metrics.items()]
    atomic_write_text(Path(run) / "instruct_results.csv", pd.DataFrame(rows).to_csv(index=False))
    comparison = {}
    if "ntp" in per_seed and "sftmix" in per_seed:
        seeds = sorted(set(per_seed["ntp"]) & set(per_seed["sftmix"]))
        measures = sorted(set.intersection(*(set(per_seed[m][s]) for m in ("ntp", "sftmix") for s in seeds)))
        for k in measures:
            comparison[k] = paired_difference([per_seed["ntp"][s][k] for s in seeds],
                                              [per_seed["sftmix"][s][k] for s in seeds],
                                              higher_is_better=DIRECTION.get(k, True))
            if k not in DIRECTION:
                comparison[k]["verdict"] = "descriptive (no direction)"
            elif k not in CALIBRATED:
                comparison[k]["verdict"] = NOT_CALIBRATED
    methods = list(per_seed)
    lines = ["## Instruction following without a judge", "",
             f"Per seed; FastChat answer files for the judge in `{INSTRUCT_DIR}/model_answer/`. Answer lengths and "
             "the share cut describe the answers; they have no better direction. A measure gets a verdict only once "
             "its "
             "calibration separated a base from an instruct model (none has yet: benchmarks/results/yardsticks).", "",
             "| measure | " + " | ".join(f"{m} seed {s}" for m in methods for s in per_seed[m])
             + (" | SFTMix − NTP (paired, 95% CI) | verdict |" if comparison else " |"),
             "|---" * (1 + sum(len(per_seed[m]) for m in methods) + (2 if comparison else 0)) + "|"]
    for k in sorted({k for m in methods for s in per_seed[m] for k in per_seed[m][s]}):
        row = f"| {k} | " + " | ".join(f"{per_seed[m][s].get(k, float('nan')):.3f}" for m in methods
                                       for s in per_seed[m])
        if comparison:
            c = comparison.get(k)
            row += f" | {format_interval(c)} | {c['verdict']}" if c else " | – | –"
        lines.append(row + " |")
    return {"per_seed": {m: {str(s): v for s, v in d.items()} for m, d in per_seed.items()},
            "comparison": comparison, "markdown": "\n".join(lines)}
