"""The toy world's plain text: what the tiny base model reads before any instruction tuning.

The paper instruction-tunes *pretrained* models: the knowledge is in the base, and SFT
teaches it to answer instructions. At toy scale the same holds if the base first reads
plain statements about the suite's world ("The capital of Peru is Lima.", "17 + 25 = 42",
"horse backwards is esroh.") and only later sees the chat template and the suite's
instruction wordings. This module writes that text.

Statements are drawn from the same item spaces as :mod:`sftmix.toy.tasks` (so the world
the base knows is the world the suite asks about) but phrased as facts, never as the
suite's instruction templates and never in the chat template. A held-out suite prompt
is therefore new to the base as *a question*, while the fact behind it may be known, as
it is for a pretrained LLM asked about a capital. The stream is deterministic given its
seed and endless; :func:`world_corpus` returns a finite sample as a list of strings.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

from .tasks import TASKS

__all__ = ["FAMILY_WEIGHTS", "QUESTIONS", "STATEMENTS", "world_statements", "world_corpus", "statement",
           "worked_example", "world_text"]

# (fields, answer) -> text. One list per (family, difficulty); a statement ends with its
# answer where the phrasing allows, so "knowing the fact" means predicting the answer.
Phrase = Callable[[dict, str], str]


def _p(*templates: str) -> list[Phrase]:
    return [lambda f, a, t=t: t.format(a=a, **f) for t in templates]


def _parity(f: dict, a: str) -> str:
    n = f["n"]
    return f"{n} is {'even' if n % 2 == 0 else 'odd'}."


def _parity_qa(f: dict, a: str) -> str:
    return f"{f['n']} {f['p']}: {a}."


def _word_statements(*templates: str) -> dict[int, list[Phrase]]:
    return {d: _p(*templates) for d in (1, 2, 3)}


STATEMENTS: dict[str, dict[int, list[Phrase]]] = {
    "uppercase": _word_statements("{w} in capitals is {a}.", "The word {w} in caps: {a}.",
                                  "upper case of {w} = {a}"),
    "repeat_word": _word_statements("{w} said {n} times: {a}.", "{n} times {w} is {a}.",
                                    "{w} x{n} = {a}"),
    "letter_at": {1: _p("{w} starts with {a}.", "The first letter of {w} is {a}."),
                  2: _p("{w} ends with {a}.", "The last letter of {w} is {a}."),
                  3: _p("The {k} letter of {w} is {a}.", "Letter {n} of {w} is {a}.")},
    "is_even": {d: [_parity, _parity_qa] for d in (1, 2, 3)},
    "reverse_word": _word_statements("{w} backwards is {a}.", "{w} reversed: {a}.",
                                     "reverse of {w} = {a}"),
    "next_letter": {1: _p("After {c} comes {a}.", "{c} is followed by {a}."),
                    2: _p("Before {c} comes {a}.", "{c} comes right after {a}."),
                    3: _p("{k} letters after {c} is {a}.", "{c} plus {k} letters is {a}.")},
    "add": {d: _p("{a_} + {b} = {a}", "{a_} plus {b} is {a}.", "The sum of {a_} and {b} is {a}.")
            for d in (1, 2, 3)},
    "max_of_list": {d: _p("The largest of {xs} is {a}.", "max of {xs} = {a}") for d in (1, 2, 3)},
    "sort_digits": {d: _p("The digits of {n} sorted: {a}.", "sorted digits of {n} = {a}")
                    for d in (1, 2, 3)},
    "count_letter": {d: _p("The letter {c} appears {a} times in {w}.", "{w} has {a} of the letter {c}.",
                           "count of {c} in {w} = {a}") for d in (1, 2, 3)},
    "vowel_count": _word_statements("{w} has {a} vowels.", "vowels in {w} = {a}"),
    "multiply": {d: _p("{a_} * {b} = {a}", "{a_} times {b} is {a}.") for d in (1, 2, 3)},
    "number_to_words": {d: _p("{n} in words is {a}.", "{n} is written {a}.") for d in (1, 2, 3)},
    "capital": {1: _p("The capital of {x} is {a}.", "{x} has its capital in {a}."),
                2: _p("{x} is the capital of {a}.", "The city {x} is in {a}."),
                3: _p("The capitals of {x} are {a}.")},
    "antonym": {1: _p("The opposite of {x} is {a}.", "{x} is the opposite of {a}."),
                2: _p("The opposites of {x} are {a}."),
                3: _p("The opposites of {x} are {a}.")},
}

# Families whose items are a small finite set are learned by heart quickly; families that
# need a procedure (carries, sorting, spelling numbers) get more of the stream.
FAMILY_WEIGHTS: dict[str, float] = {name: 1.0 for name in TASKS}
FAMILY_WEIGHTS.update({"add": 3.0, "multiply": 3.0, "max_of_list": 2.0, "sort_digits": 3.0,
                       "number_to_words": 3.0, "is_even": 1.5, "count_letter": 1.5})


def statement(family: str, difficulty: int, index: int, phrase: int = 0) -> str:
    """The world statement about item ``index`` of ``family`` at ``difficulty``."""
    level = TASKS[family].levels[difficulty]
    fields, answer = level.render(level.items[index])
    if "a" in fields:  # arithmetic names its first operand "a"; the answer is "a" here
        fields = {("a_" if k == "a" else k): v for k, v in fields.items()}
    phrases = STATEMENTS[family][difficulty]
    return phrases[phrase % len(phrases)](fields, answer)


def world_statements(seed: int = 0) -> Iterator[str]:
    """An endless, deterministic stream of world statements (families by FAMILY_WEIGHTS,
    difficulty and item uniform, phrasing uniform)."""
    rng = random.Random(f"sftmix-world:{seed}")
    names = list(TASKS)
    weights = [FAMILY_WEIGHTS[n] for n in names]
    while True:
        family = rng.choices(names, weights)[0]
        difficulty = rng.choice(sorted(TASKS[family].levels))
        n_items = len(TASKS[family].levels[difficulty].items)
        yield statement(family, difficulty, rng.randrange(n_items), rng.randrange(8))


def world_corpus(n: int, seed: int = 0) -> list[str]:
    """The first ``n`` statements of :func:`world_statements`."""
    stream = world_statements(seed)
    return [next(stream) for _ in range(n)]


# ------------------------------------------------------------------ worked examples
# Phase 2 of pretraining: the same facts as question/answer pairs in *plain text*
# ("Q: ... A: ...", like FAQ pages and exam sheets on the web). Knowledge stated in a few
# fixed phrasings is hard to retrieve from a new phrasing; facts seen in many phrasings,
# with the item quoted or not, are not (Allen-Zhu & Li, "Physics of Language Models:
# Part 3.1", arXiv:2309.14316). The wordings below are our own and differ from every
# instruction template of the suite (a test checks it), so a suite prompt stays new.
QUESTIONS: dict[str, dict[int, tuple[str, ...]]] = {
    "uppercase": {d: ("{w} in capital letters?", "Capitalize every letter of {w}.", "All-caps form of {w}?",
                      "{w} shouted in caps?") for d in (1, 2, 3)},
    "repeat_word": {d: ("{w}, {n} times over?", "Write out {w} {n} times in a row.", "{w} repeated {n} times?",
                        "Echo {w} {n} times.") for d in (1, 2, 3)},
    "letter_at": {1: ("First letter of {w}?", "{w} begins with which letter?", "Initial of {w}?"),
                  2: ("Last letter of {w}?", "{w} ends in which letter?", "Final character of {w}?"),
                  3: ("{k} letter of {w}?", "Letter number {n} in {w}?", "Position {n} of {w} holds which letter?")},
    "is_even": {d: ("{n} {p}, yes or no?", "Is it true that {n} is {p}?", "Check: {n} is {p}?") for d in (1, 2, 3)},
    "reverse_word": {d: ("{w} spelled back to front?", "Flip the letters of {w}.", "{w} read backwards?",
                         "Mirror the word {w}.") for d in (1, 2, 3)},
    "next_letter": {1: ("Letter after {c}?", "Which letter comes next after {c}?", "{c}, then which letter?"),
                    2: ("Letter before {c}?", "Which letter comes just ahead of {c}?", "Which letter precedes {c}?"),
                    3: ("{k} letters past {c}?", "Move {k} letters on from {c}.", "{c} shifted by {k}?")},
    "add": {d: ("{a_} plus {b}?", "Sum of {a_} and {b}?", "Total of {a_} and {b}?", "{a_}+{b}?") for d in (1, 2, 3)},
    "max_of_list": {d: ("Biggest of {xs}?", "Largest number among {xs}?", "Max: {xs}?") for d in (1, 2, 3)},
    "sort_digits": {d: ("Digits of {n} in rising order?", "Order the digits of {n}, smallest first.",
                        "{n} with its digits sorted?") for d in (1, 2, 3)},
    "count_letter": {d: ("How often is {c} in {w}?", "Occurrences of {c} in {w}?", "Count {c} inside {w}.")
                     for d in (1, 2, 3)},
    "vowel_count": {d: ("Vowels in {w}, how many?", "Count the vowels of {w}.", "How many of a, e, i, o, u in {w}?")
                    for d in (1, 2, 3)},
    "multiply": {d: ("{a_} times {b}?", "Product of {a_} and {b}?", "{a_}*{b}?", "{a_} multiplied by {b}?")
                 for d in (1, 2, 3)},
    "number_to_words": {d: ("{n} spelled out?", "{n} as English words?", "Words for {n}?") for d in (1, 2, 3)},
    "capital": {1: ("Capital of {x}?", "{x}: which city is the capital?", "Seat of government of {x}?"),
                2: ("{x} is the capital of?", "Which country is {x} the capital of?", "Country with capital {x}?"),
                3: ("Capitals of {x}?", "Capital cities of {x}, in order?", "{x}: their capitals?")},
    "antonym": {1: ("Opposite of {x}?", "Antonym for {x}?", "{x}: what is its opposite?"),
                2: ("Opposites of {x}?", "Antonyms for {x}, in order?", "{x}: their opposites?"),
                3: ("Opposites of {x}?", "Antonyms for {x}, in order?", "{x}: their opposites?")},
}
_QA_FORMATS = ("Q: {q} A: {a}", "Question: {q}\nAnswer: {a}", "{q} {a}", "Q: {q}\nA: {a}")
_QUOTES = ("", "'", '"')


def worked_example(family: str, difficulty: int, index: int, rng: random.Random) -> str:
    """A question/answer pair about item ``index`` in one of the plain-text Q/A formats."""
    level = TASKS[family].levels[difficulty]
    fields, answer = level.render(level.items[index])
    quote = rng.choice(_QUOTES)
    fields = {("a_" if k == "a" else k): (f"{quote}{v}{quote}" if k in ("w", "c") else v)
              for k, v in fields.items()}
    question = rng.choice(QUESTIONS[family][difficulty]).format(**fields)
    return rng.choice(_QA_FORMATS).format(q=question, a=answer)


def world_text(seed: int = 0, qa_fraction: float = 0.0) -> Iterator[str]:
    """World statements mixed with worked examples (a fraction ``qa_fraction`` of the stream)."""
    rng = random.Random(f"sftmix-world-text:{seed}")
    statements = world_statements(seed)
    names = list(TASKS)
    weights = [FAMILY_WEIGHTS[n] for n in names]
    while True:
        if rng.random() >= qa_fraction:
            yield next(statements)
            continue
        family = rng.choices(names, weights)[0]
        difficulty = rng.choice(sorted(TASKS[family].levels))
        yield worked_example(family, difficulty, rng.randrange(len(TASKS[family].levels[difficulty].items)), rng)
