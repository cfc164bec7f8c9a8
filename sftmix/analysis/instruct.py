"""Instruction following without a judge, for one model: MT-Bench answered and verifiable instructions.

:func:`evaluate_instruction_following` is what ``sftmix eval --mt_bench/--ifeval`` and the experiment's
instruct stage run: MT-Bench's two turns answered and exported for FastChat
(:mod:`sftmix.analysis.mtbench`), the reference answers' NLL, and the IFEval-style set answered and
checked (:mod:`sftmix.analysis.ifeval`). :func:`flat_metrics` turns the result into the scalar
measures that results tables compare between methods.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..data.tokenize import render_conversation
from ..io import atomic_write_json
from . import ifeval, mtbench
from .generate import DEFAULT_MAX_NEW_TOKENS, generate_texts

__all__ = ["evaluate_instruction_following", "flat_metrics"]


def evaluate_instruction_following(model, tokenizer, out_dir, *, model_id: str, questions: list[dict] | None = None,
                                   references: dict | None = None, reference_questions: list[dict] | None = None,
                                   ifeval_rows: list[dict] | None = None,
                                   ifeval_source: str | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                                   batch_size: int = 16, max_length: int = 2048, progress: bool = True) -> dict:
    """Run the evaluations that were given and write ``<out_dir>/model_answer/<model_id>.jsonl`` (FastChat),
    ``<out_dir>/<model_id>.instruct.json`` (every measure, the answers, the checks); returns that dict.
    The reference answers are scored for ``reference_questions`` (default: ``questions``), so a subset
    answered to save time can still be scored on every question that has a reference."""
    out_dir = Path(out_dir)
    result: dict = {"model_id": model_id, "max_new_tokens": int(max_new_tokens)}
    if questions:
        start = time.perf_counter()
        answers = mtbench.answer_questions(model, tokenizer, questions, batch_size=batch_size,
                                           max_new_tokens=max_new_tokens, progress=progress)
        result["mt_bench"] = {"n_questions": len(questions), "lengths": mtbench.answer_lengths(answers),
                              "answer_seconds": time.perf_counter() - start, "answers": answers}
        if references:
            result["mt_bench"]["reference_nll"] = mtbench.reference_nll(
                model, tokenizer, reference_questions or questions, references, max_length=max_length,
                progress=progress)
    if ifeval_rows:
        prompts = [render_conversation(tokenizer, [{"role": "user", "content": r["prompt"]}],
                                       add_generation_prompt=True) for r in ifeval_rows]
        start = time.perf_counter()
        gens = generate_texts(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                              progress=progress)
        seconds = time.perf_counter() - start
        scores = ifeval.score_responses(ifeval_rows, gens.texts)
        scores["answer_seconds"] = seconds
        scores["source"] = ifeval_source
        scores["share_cut"] = sum(gens.cut) / len(gens.cut)
        scores["responses"] = gens.texts
        result["ifeval"] = scores
    if questions:  # files are written once everything is measured
        result["mt_bench"]["answer_file"] = str(mtbench.export_answers(answers, out_dir, model_id=model_id))
    atomic_write_json(out_dir / f"{model_id}.instruct.json", result)
    return result


def flat_metrics(result: dict) -> dict[str, float]:
    """Scalar measures of one :func:`evaluate_instruction_following` result, for results tables."""
    out: dict[str, float] = {}
    mt = result.get("mt_bench")
    if mt:
        for turn, rows in mt["lengths"].items():
            out[f"mt_bench_{turn}_words"] = rows["all"]["mean_words"]
            out[f"mt_bench_{turn}_share_cut"] = rows["all"]["share_cut"]
            for category, row in rows.items():
                if category != "all":
                    out[f"mt_bench_{turn}_words_{category}"] = row["mean_words"]
        for turn, row in mt.get("reference_nll", {}).items():
            out[f"mt_bench_ref_nll_per_byte_{turn}"] = row["nll_per_byte"]
            out[f"mt_bench_ref_nll_per_token_{turn}"] = row["nll_per_token"]
    ife = result.get("ifeval")
    if ife:
        for level in ("prompt", "instruction"):
            for mode in ("strict", "loose"):
                out[f"ifeval_{level}_{mode}"] = ife[f"{level}_{mode}"]["accuracy"]
    return out
