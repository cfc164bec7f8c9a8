"""Held-out evaluation: response NLL/perplexity, calibration and greedy exact match.

Per-token quantities come from :func:`sftmix.dynamics.scoring.score_rows` (the one
response-NLL loop), computed from the last hidden states in token chunks, so no
full-vocabulary logits pile up across the evaluation set. Greedy answers come from
:mod:`sftmix.analysis.generate`.
"""

from __future__ import annotations

import numpy as np

from ..data import DataError, canonicalize, read_records, tokenize_examples
from ..data.canonical import locate
from ..data.files import decode_nested
from ..dynamics.scoring import length_sorted_shard, score_rows
from .generate import DEFAULT_MAX_NEW_TOKENS, generate_responses

__all__ = ["answer_index", "evaluate_model", "evaluate_multiple_choice", "expected_calibration_error",
           "multiple_choice_accuracy", "multiple_choice_loglik", "normalize_answer", "read_multiple_choice",
           "token_statistics"]


def expected_calibration_error(confidence, correct, *, n_bins: int = 10) -> float:
    """ECE with equal-width bins: sum_b (n_b / N) * |accuracy_b - mean confidence_b|.

    ``confidence`` (N,) in [0, 1] is the probability of the predicted token, ``correct``
    (N,) whether the prediction was right. Bins are (lo, hi], the first is [0, hi].
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.shape != correct.shape or confidence.ndim != 1:
        raise ValueError("confidence and correct must be 1-D arrays of the same length")
    if len(confidence) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(ece)


_TRAILING = ".!?,;:"


def normalize_answer(text: str) -> str:
    """Exact match ignores surrounding white space, letter case and trailing punctuation
    ("Paris." matches "paris"); punctuation inside the answer counts ("3.5" is not "35")."""
    return " ".join(text.strip().split()).lower().rstrip(_TRAILING).rstrip()


def token_statistics(model, tokenized, *, batch_size: int = 64, chunk_size: int = 4096,
                     progress: bool = True) -> dict[str, np.ndarray]:
    """Per-example response NLL sums and token counts, plus per-token (max prob, correct).

    The statistics come from :func:`sftmix.dynamics.scoring.score_rows`, the same
    computation that scores the reference checkpoints: ``nll_sum``/``count`` over the
    trained tokens (content + end-of-turn, what the training loss covers), and, when the
    data has ``content_labels``, ``content_nll_sum``/``content_count`` over the content
    tokens (what confidence covers by default).
    """
    rows = length_sorted_shard(tokenized, 0, 1)  # similar lengths together: less padding
    was_training = model.training
    model.eval()
    try:
        sums = score_rows(model, tokenized, rows, batch_size=batch_size, chunk_size=chunk_size, progress=progress,
                          token_confidence=True)
    finally:
        model.train(was_training)
    out = {"pmax": sums["max_prob"], "correct": sums["correct"]}
    for tokens, prefix in (("trained", ""), ("content", "content_")):
        if tokens in sums:
            nll_sum, count = np.zeros(len(tokenized)), np.zeros(len(tokenized))
            nll_sum[rows], count[rows] = sums[tokens].nll_sum, sums[tokens].n_tokens
            out[f"{prefix}nll_sum"], out[f"{prefix}count"] = nll_sum, count
    return out


def evaluate_model(model, tokenizer, examples, *, max_length: int = 512, batch_size: int = 64,
                   generate: bool = True, max_new_tokens: int | None = DEFAULT_MAX_NEW_TOKENS,
                   exact_match: bool = True, progress: bool = True, tokenized=None) -> dict:
    """Evaluate a causal LM on canonical held-out examples.

    ``tokenized``: the same examples already tokenized (:func:`~sftmix.data.tokenize_examples`, e.g.
    with ``last_turn_only`` as the model trained); the likelihood metrics are computed on them.

    Returns a dict with ``nll`` (mean NLL over the trained response tokens: content and
    end-of-turn, as the training loss), ``content_nll`` (over content tokens only, as
    confidence), ``perplexity``, ``ece`` (of next-token predictions on trained tokens),
    ``token_accuracy`` and, when ``generate``,
    ``exact_match`` overall and ``exact_match_by_task`` (the reference answer is the
    ``answer`` column when present, else ``response``; see :func:`normalize_answer`), plus
    ``generations``, ``generation_cut`` (per example: reached ``max_new_tokens`` without
    ending its turn), ``n_generations_cut`` and ``max_new_tokens``. ``max_new_tokens=None``
    sets the budget to the longest reference answer + 16 tokens (for short-answer suites).
    ``exact_match=False`` generates without scoring exact match (open-ended chats, where no
    answer matches a reference word for word).
    """
    if tokenized is None:
        tokenized = tokenize_examples(examples, tokenizer, max_length=max_length)
    stats = token_statistics(model, tokenized, batch_size=batch_size,
                             progress=progress)
    total = stats["count"].sum()
    nll = float(stats["nll_sum"].sum() / max(total, 1))
    result = {
        "n_examples": len(tokenized), "n_tokens": int(total), "nll": nll, "perplexity": float(np.exp(nll)),
        "token_accuracy": float(stats["correct"].mean()) if total else float("nan"),
        "ece": expected_calibration_error(stats["pmax"], stats["correct"]),
    }
    if "content_count" in stats:  # the same NLL over content tokens only (no end-of-turn marker)
        result["content_nll"] = float(stats["content_nll_sum"].sum() / max(stats["content_count"].sum(), 1))
    if generate:
        refs = examples["answer"] if "answer" in examples.column_names else examples["response"]
        if max_new_tokens is None:
            longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in refs)
            max_new_tokens = longest + 16
        gens, cut = generate_responses(model, tokenizer, examples, batch_size=batch_size,
                                       max_new_tokens=max_new_tokens, progress=progress, return_hit_limit=True)
        result["max_new_tokens"] = int(max_new_tokens)
        result["n_generations_cut"] = int(sum(cut))
        hits = np.array([normalize_answer(g) == normalize_answer(r) for g, r in zip(gens, refs)])
        if exact_match:
            result["exact_match"] = float(hits.mean())
        if exact_match and "task" in examples.column_names:
            tasks = np.array(examples["task"])
            result["exact_match_by_task"] = {str(t): float(hits[tasks == t].mean()) for t in sorted(set(tasks))}
        result["generations"] = gens
        result["generation_cut"] = cut
    return result


def _option_list(item: dict) -> tuple[list[str], list[str]]:
    options = item["options"]
    if isinstance(options, dict):
        return list(options.keys()), [str(v) for v in options.values()]
    return [chr(ord("A") + i) for i in range(len(options))], [str(v) for v in options]


def multiple_choice_loglik(model, tokenizer, items: list[dict], *, max_length: int = 512,
                           batch_size: int = 64, progress: bool = True) -> list[np.ndarray]:
    """Log-likelihood of every option as the response to its question.

    ``items``: dicts with ``question`` (str), ``options`` (list of str, or dict key ->
    text, e.g. ``{"A": ..., "B": ...}``) and ``answer`` (index or key). Returns, per item,
    an array ``(n_options, 2)`` of (summed log-likelihood, number of scored tokens); the
    scored tokens are the option text and the end-of-turn marker, under the chat template.
    """
    rows, owner = [], []
    for i, item in enumerate(items):
        for j, text in enumerate(_option_list(item)[1]):
            rows.append({"example_id": f"{i}-{j}", "prompt": item["question"], "response": text})
            owner.append((i, j))
    tokenized = tokenize_examples(canonicalize(rows, source="multiple-choice items"), tokenizer,
                                  max_length=max_length)
    if len(tokenized) != len(rows):
        raise ValueError("some options lost every token to truncation; raise max_length")
    stats = token_statistics(model, tokenized, batch_size=batch_size,
                             progress=progress)
    out = [np.zeros((len(_option_list(item)[1]), 2)) for item in items]
    for k, (i, j) in enumerate(owner):
        out[i][j] = (-stats["nll_sum"][k], stats["count"][k])
    return out


def multiple_choice_accuracy(logliks: list[np.ndarray], answers: list[int], *, normalize: bool = True) -> float:
    """Fraction of items whose highest-scoring option is the answer.

    ``normalize`` compares mean log-likelihood per token (so long options are not
    penalised for their length); otherwise the summed log-likelihood. Ties go to the
    first option.
    """
    if len(logliks) != len(answers):
        raise ValueError("one answer per item is needed")
    hits = []
    for scores, answer in zip(logliks, answers):
        scores = np.asarray(scores, dtype=float)
        value = scores[:, 0] / np.maximum(scores[:, 1], 1) if normalize else scores[:, 0]
        hits.append(int(np.argmax(value)) == int(answer))
    return float(np.mean(hits)) if hits else float("nan")


def _index_of(answer, keys: list[str]) -> int | None:
    """``answer`` as an option index when it is an option key or a 0-based index, else None."""
    if isinstance(answer, str) and answer in keys:
        return keys.index(answer)
    if isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and 0 <= int(answer) < len(keys):
        return int(answer)
    return None


def answer_index(item: dict) -> int:
    """The answer of a multiple-choice item as an option index.

    ``answer`` is an option key or a 0-based index; MedQA's layout (``answer_idx`` the key,
    ``answer`` the option's text) is read too, and the two must name the same option.
    """
    keys, texts = _option_list(item)
    answer, answer_idx = item.get("answer"), item.get("answer_idx")
    if answer_idx is None:
        index = _index_of(answer, keys)
        if index is None:
            raise ValueError(f"answer {answer!r} is not one of the options {keys}")
        return index
    index = _index_of(answer_idx, keys)
    if index is None:
        raise ValueError(f"answer_idx {answer_idx!r} is not one of the options {keys}")
    if answer is not None and _index_of(answer, keys) != index and str(answer).strip() != texts[index].strip():
        raise ValueError(f"answer {answer!r} is not option {keys[index]!r} ({texts[index]!r}), which answer_idx "
                         "names")
    return index


def read_multiple_choice(path) -> list[dict]:
    """Multiple-choice items from a local JSON/JSONL/parquet/CSV file, one per row.

    Each row needs ``question`` (text), ``options`` (at least two: a list, or an object
    ``{"A": ..., "B": ...}``) and ``answer`` (an option key or a 0-based index), or MedQA's
    ``answer_idx`` (the key) with ``answer`` (the option's text). Raises
    :class:`sftmix.data.DataError` naming the file, row and field of the first bad row.
    """
    items = []
    for row, record in enumerate(read_records(path)):
        item = {k: decode_nested(record.get(k)) for k in ("question", "options", "answer", "answer_idx")}
        if item["answer_idx"] is None:
            del item["answer_idx"]
        if not isinstance(item["question"], str) or not item["question"].strip():
            raise DataError(f"{locate(path, row, 'question')}: the question must be non-empty text")
        if not isinstance(item["options"], (list, dict)) or len(item["options"]) < 2:
            raise DataError(f"{locate(path, row, 'options')}: needs at least two options, as a list or an "
                            f"object of key -> text; got {item['options']!r}")
        try:
            answer_index(item)
        except (KeyError, ValueError) as err:
            field = "answer_idx" if str(err).startswith("answer_idx") else "answer"
            raise DataError(f"{locate(path, row, field)}: {err}") from None
        items.append(item)
    if not items:
        raise DataError(f"{path}: no multiple-choice items")
    return items


def evaluate_multiple_choice(model, tokenizer, items: list[dict], *, max_length: int = 512, batch_size: int = 64,
                             progress: bool = True) -> dict:
    """Accuracy on multiple-choice ``items`` (see :func:`read_multiple_choice`): the option with the
    highest mean log-likelihood per token (``accuracy``) or summed log-likelihood (``accuracy_sum``)."""
    logliks = multiple_choice_loglik(model, tokenizer, items, max_length=max_length, batch_size=batch_size,
                                     progress=progress)
    answers = [answer_index(item) for item in items]
    return {"n_items": len(items), "accuracy": multiple_choice_accuracy(logliks, answers),
            "accuracy_sum": multiple_choice_accuracy(logliks, answers, normalize=False)}
