"""Built-in task suite: the embedded default dataset for demos, tests and notebooks.

Fifteen small instruction families with exact answers (reverse a word, add numbers, name
a capital, ...), each at difficulty levels 1..3 and rendered through several paraphrased
instruction templates. Some families are easy for a tiny character-level model trained
briefly (uppercase, repeat, first letter, is-even); others are hard (multiplication,
number to words, counting, memorised look-ups). That unevenness is the point: it gives
SFTMix's confident/unconfident split something real to find.

Every (family, difficulty) has a finite *prompt space*: item x template x framing, where a
framing is an optional neutral prefix/suffix ("Q: ", " Be brief.") shared by all families.
An example is one integer drawn without replacement from that space, so prompts never
repeat, train and test are disjoint by construction, and each space is large enough for
200_000 examples over the default suite. Everything is offline, printable ASCII and
deterministic given the seed (private ``random.Random`` streams, never the global one).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import operator
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

import datasets
import pandas as pd

__all__ = ["TASKS", "TaskFamily", "Level", "make_task_suite", "list_tasks", "number_to_words"]

MAX_PROMPT_CHARS = 80
MAX_RESPONSE_CHARS = 40

# ~150 common English words, lowercase ASCII, bucketed by length into the difficulty levels.
WORDS = tuple("""
    cat dog sun red hat cup pen box bus egg fox map owl pig rat sky toy van web zoo ant bag
    bed car fan gum ice jam key leg net oak pot sea bee cow fish bird tree book door lamp
    milk moon rain ship star wolf frog cake
    apple bread chair cloud dream earth field glass grape horse house juice knife lemon
    money mouse music night ocean paper party piano plant river robot salad sheep shirt
    smile snake spoon stone sugar table tiger train water whale world yellow garden window
    basket button candle carrot castle dinner doctor flower forest
    balloon blanket chicken cabinet diamond dolphin factory giraffe kitchen library monster
    morning package penguin pumpkin rainbow sandwich teacher theater thunder umbrella
    vampire weather village volcano airplane elephant mountain notebook painting question
    scissors squirrel treasure triangle vacation baseball birthday building computer
    dinosaur exercise hospital keyboard language magazine necklace pineapple
""".split())
SHORT_WORDS = tuple(w for w in WORDS if len(w) <= 4)
MEDIUM_WORDS = tuple(w for w in WORDS if 5 <= len(w) <= 6)
LONG_WORDS = tuple(w for w in WORDS if len(w) >= 7)
_BY_LEVEL = {1: SHORT_WORDS, 2: MEDIUM_WORDS, 3: LONG_WORDS}

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "Japan": "Tokyo", "China": "Beijing", "India": "New Delhi",
    "Russia": "Moscow", "Egypt": "Cairo", "Kenya": "Nairobi", "Peru": "Lima",
    "Chile": "Santiago", "Cuba": "Havana", "Canada": "Ottawa", "Mexico": "Mexico City",
    "Brazil": "Brasilia", "Argentina": "Buenos Aires", "Greece": "Athens", "Turkey": "Ankara",
    "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki", "Poland": "Warsaw",
    "Austria": "Vienna", "Ireland": "Dublin", "Iran": "Tehran", "Iraq": "Baghdad",
    "Thailand": "Bangkok", "Vietnam": "Hanoi", "Nepal": "Kathmandu", "Ghana": "Accra",
    "Hungary": "Budapest", "Denmark": "Copenhagen", "Belgium": "Brussels",
    "Australia": "Canberra",
}

# Each word appears in one pair only, so every antonym question has a single answer.
ANTONYM_PAIRS = tuple(tuple(p.split("/")) for p in """
    hot/cold big/small fast/slow up/down day/night happy/sad old/new tall/short light/dark
    open/closed in/out top/bottom early/late rich/poor hard/soft wet/dry full/empty
    loud/quiet win/lose push/pull buy/sell love/hate good/bad right/wrong high/low
    thick/thin strong/weak clean/dirty first/last true/false alive/dead front/back
    inside/outside north/south east/west black/white near/far give/take begin/end
    always/never above/below before/after
""".split())
ANTONYMS = {**dict(ANTONYM_PAIRS), **{b: a for a, b in ANTONYM_PAIRS}}

# Neutral framings multiply every prompt space by 49 without changing any answer; they
# also teach the model to ignore politeness noise. Index 0 is the plain prompt.
PREFIXES = ("", "Q: ", "Task: ", "Quiz: ", "Hey! ", "Hi. ", "Okay: ")
SUFFIXES = ("", " Thanks.", " Please.", " Be brief.", " Answer only.", " Short answer.",
            " Quickly.")
FRAMINGS = tuple((p, s) for p in PREFIXES for s in SUFFIXES)


def number_to_words(n: int) -> str:
    """English words for ``0 <= n < 1_000_000``, no "and": 4021 -> "four thousand twenty-one"."""
    ones = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen").split()
    tens = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 20:
        return ones[n]
    if n < 100:
        t, r = divmod(n, 10)
        return tens[t] + (f"-{ones[r]}" if r else "")
    big, unit = (100, " hundred") if n < 1000 else (1000, " thousand")
    q, r = divmod(n, big)
    return number_to_words(q) + unit + (f" {number_to_words(r)}" if r else "")


class _Grid:
    """The product of ``axes`` (sequences) as an indexable sequence that is never built."""

    def __init__(self, *axes: Sequence):
        self.axes = axes
        self._len = math.prod(len(a) for a in axes)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> tuple:
        out = []
        for axis in reversed(self.axes):
            i, r = divmod(i, len(axis))
            out.append(axis[r])
        return tuple(reversed(out))


class _Arrangements:
    """Ordered choices of ``k`` distinct elements of ``pool``, indexable, never built."""

    def __init__(self, pool: Sequence, k: int):
        self.pool, self.k = tuple(pool), k
        self._len = math.perm(len(pool), k)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> tuple:
        left, out = list(self.pool), []
        for size in range(len(self.pool) - self.k + 1, len(self.pool) + 1):
            i, r = divmod(i, size)
            out.append(r)
        # out[j] indexes into what is left after j picks (radices n, n-1, ..., n-k+1).
        return tuple(left.pop(r) for r in reversed(out))


@dataclass(frozen=True)
class Level:
    """One difficulty of a family: paraphrased templates, the items, and how to render one.

    ``render(item)`` returns the template fields and the exact answer.
    """

    templates: tuple[str, ...]
    items: Sequence
    render: Callable[[Any], tuple[dict, str]]


@dataclass(frozen=True)
class TaskFamily:
    """A task with exact answers at difficulties 1..3.

    ``wrong(item, answer, rng)`` optionally proposes a plausible wrong answer for label
    noise; without it, the answer of another random item of the same level is used.
    """

    name: str
    description: str
    levels: dict[int, Level]
    wrong: Optional[Callable[[Any, str, random.Random], str]] = None

    def capacity(self, difficulty: int) -> int:
        """Number of distinct prompts at ``difficulty``."""
        level = self.levels[difficulty]
        return len(level.items) * len(level.templates) * len(FRAMINGS)

    def _decode(self, difficulty: int, index: int) -> tuple[Level, Any, str, tuple[str, str]]:
        level = self.levels[difficulty]
        rest, framing = divmod(index, len(FRAMINGS))
        item, template = divmod(rest, len(level.templates))
        return level, level.items[item], level.templates[template], FRAMINGS[framing]

    def example(self, difficulty: int, index: int) -> tuple[str, str]:
        """The (prompt, answer) at position ``index`` of the prompt space."""
        level, item, template, (prefix, suffix) = self._decode(difficulty, index)
        fields, answer = level.render(item)
        return prefix + template.format(**fields) + suffix, answer

    def wrong_answer(self, difficulty: int, index: int, rng: random.Random) -> str:
        """A plausible answer for example ``index`` that differs from its true answer."""
        level, item, _, _ = self._decode(difficulty, index)
        answer = level.render(item)[1]
        for _ in range(1000):
            if self.wrong is not None:
                candidate = self.wrong(item, answer, rng)
            else:
                candidate = level.render(level.items[rng.randrange(len(level.items))])[1]
            if candidate != answer:
                return candidate
        raise RuntimeError(f"task {self.name!r} found no wrong answer for {answer!r}")


# ---------------------------------------------------------------- family definitions

def _per_word(templates: tuple[str, ...], answer: Callable[[str], str]) -> dict[int, Level]:
    """Levels 1..3 over short, medium and long words."""
    render = lambda w: ({"w": w}, answer(w))  # noqa: E731
    return {d: Level(templates, words, render) for d, words in _BY_LEVEL.items()}


def _near_miss(item: Any, answer: str, rng: random.Random) -> str:
    """An integer answer off by one or two, never negative: the typical arithmetic slip."""
    n = int(answer) + rng.choice((-2, -1, 1, 2))
    return str(abs(n))


def _other_list_element(xs: tuple, answer: str, rng: random.Random) -> str:
    """For max-of-list: a number from the same list that is not the maximum."""
    others = [x for x in xs if str(x) != answer]
    return str(rng.choice(others)) if others else _near_miss(xs, answer, rng)


def _other_letter_of_word(item: Any, answer: str, rng: random.Random) -> str:
    """For letter_at: another letter of the same word, as a miscounted position would give."""
    word = item if isinstance(item, str) else item[0]
    return rng.choice(sorted(set(word) - {answer}))


def _neighbour_letter(item: Any, answer: str, rng: random.Random) -> str:
    """For next_letter: a letter one or two places off, in the same case."""
    abc = _LOWER if answer.islower() else _UPPER
    i = abc.index(answer) + rng.choice((-2, -1, 1, 2))
    return abc[min(max(i, 0), 25)]


def _almost_sorted(item: Any, answer: str, rng: random.Random) -> str:
    """For sort_digits: the sorted digits with one adjacent pair swapped."""
    spots = [i for i in range(len(answer) - 1) if answer[i] != answer[i + 1]]
    if not spots:  # all digits equal, e.g. 777: change one
        return answer[:-1] + str((int(answer[-1]) + 1) % 10)
    i = rng.choice(spots)
    return answer[:i] + answer[i + 1] + answer[i] + answer[i + 2:]


def _arithmetic(fn: Callable[[int, int], int], templates: tuple[str, ...],
                ranges: dict[int, tuple[range, range]]) -> dict[int, Level]:
    render = lambda ab: ({"a": ab[0], "b": ab[1]}, str(fn(*ab)))  # noqa: E731
    return {d: Level(templates, _Grid(ra, rb), render) for d, (ra, rb) in ranges.items()}


_ORDINALS = {2: "2nd", 3: "3rd", 4: "4th"}
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
# 1000-9999 whose words fit in a response ("seven thousand seven hundred seventy-seven" does not).
_THOUSANDS = tuple(n for n in range(1000, 10000) if len(number_to_words(n)) <= MAX_RESPONSE_CHARS)


def _shift_items(shifts: Iterable[int]) -> tuple[tuple[str, int], ...]:
    """(letter, shift) pairs whose target stays inside the alphabet, both cases."""
    return tuple((abc[i], k) for abc in (_LOWER, _UPPER) for k in shifts
                 for i in range(26) if 0 <= i + k < 26)


def _shift_render(pair: tuple[str, int]) -> tuple[dict, str]:
    c, k = pair
    return {"c": c, "k": abs(k)}, chr(ord(c) + k)


def _count_items(words: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(word, letter): every letter of the word plus two it lacks, so zero is a fair answer."""
    items = []
    for w in words:
        absent = [c for c in _LOWER if c not in w]
        items += [(w, c) for c in sorted(set(w))]
        items += [(w, c) for c in random.Random(w).sample(absent, 2)]
    return tuple(items)


def _lookup_level(templates: tuple[str, ...], keys: Sequence[str], table: dict[str, str],
                  k: int, quote: str = "") -> Level:
    """Ask for ``table[key]`` of k distinct keys at once; the answer joins them with ", "."""
    items = _Arrangements(keys, k)

    def render(ks: tuple) -> tuple[dict, str]:
        shown = ", ".join(f"{quote}{x}{quote}" for x in ks)
        return {"x": shown}, ", ".join(table[x] for x in ks)

    return Level(templates, items, render)


_ANTONYM_WORDS = tuple(sorted(ANTONYMS))
_COUNTRIES = tuple(CAPITALS)
_CITY_TO_COUNTRY = {city: country for country, city in CAPITALS.items()}

_FAMILIES = [
    TaskFamily(
        "uppercase", "Write a word in capital letters (easy).",
        _per_word(("Write '{w}' in capital letters.", 'Uppercase the word "{w}".',
                   "Convert '{w}' to upper case.", 'What is "{w}" in all caps?'), str.upper)),
    TaskFamily(
        "repeat_word", "Repeat a word n times, space separated (easy).",
        {d: Level(("Repeat '{w}' {n} times.", 'Write "{w}" {n} times.', "Say '{w}' {n} times.",
                   "Copy the word '{w}' {n} times."),
                  _Grid(words, (d + 1,)),
                  lambda wn: ({"w": wn[0], "n": wn[1]}, " ".join([wn[0]] * wn[1])))
         for d, words in _BY_LEVEL.items()}),
    TaskFamily(
        "letter_at", "First letter (1), last letter (2), or 2nd-4th letter (3) of a word.",
        {1: Level(("What is the first letter of '{w}'?", 'Give the first letter of "{w}".',
                   "Which letter does '{w}' start with?", "Name the first letter in '{w}'."),
                  WORDS, lambda w: ({"w": w}, w[0])),
         2: Level(("What is the last letter of '{w}'?", 'Give the last letter of "{w}".',
                   "Which letter does '{w}' end with?", "Name the final letter in '{w}'."),
                  WORDS, lambda w: ({"w": w}, w[-1])),
         3: Level(("What is the {k} letter of '{w}'?", 'Give the {k} letter of "{w}".',
                   "Which letter is {k} in '{w}'?", "Name letter number {n} in '{w}'."),
                  tuple((w, k) for w in WORDS for k in (2, 3, 4) if k < len(w)),
                  lambda wk: ({"w": wk[0], "k": _ORDINALS[wk[1]], "n": wk[1]}, wk[0][wk[1] - 1]))},
        wrong=_other_letter_of_word),
    TaskFamily(
        "is_even", "Is a number even? yes/no; level 3 also asks 'odd' about longer numbers.",
        {d: Level(("Is {n} {p}?", "Is the number {n} {p}? Answer yes or no.",
                   "Yes or no: is {n} {p}?", "Tell me whether {n} is {p} (yes/no)."),
                  _Grid(numbers_, parities),
                  lambda npar: ({"n": npar[0], "p": npar[1]},
                                "yes" if (npar[0] % 2 == 0) == (npar[1] == "even") else "no"))
         for d, numbers_, parities in ((1, range(100), ("even",)),
                                       (2, range(100, 100_000), ("even",)),
                                       (3, range(100_000, 10_000_000), ("even", "odd")))}),
    TaskFamily(
        "reverse_word", "Spell a word backwards; longer words at higher levels.",
        _per_word(("Reverse the word '{w}'.", 'Spell "{w}" backwards.',
                   "Write '{w}' in reverse order.", "What is '{w}' reversed?",
                   'Reverse the letters of "{w}".'), lambda w: w[::-1])),
    TaskFamily(
        "next_letter", "Letter after (1), before (2), or 2-5 places after (3) a letter.",
        {1: Level(("What letter comes after '{c}'?",
                   "Which letter follows '{c}' in the alphabet?",
                   'Name the letter after "{c}".', "What is the next letter after '{c}'?"),
                  _shift_items((1,)), _shift_render),
         2: Level(("What letter comes before '{c}'?",
                   "Which letter precedes '{c}' in the alphabet?",
                   'Name the letter before "{c}".', "What is the letter just before '{c}'?"),
                  _shift_items((-1,)), _shift_render),
         3: Level(("What letter is {k} places after '{c}'?",
                   "Which letter is {k} steps after '{c}'?",
                   'Count {k} letters forward from "{c}".', "Skip {k} letters ahead of '{c}'."),
                  _shift_items((2, 3, 4, 5)), _shift_render)},
        wrong=_neighbour_letter),
    TaskFamily(
        "add", "Add two numbers: 1-digit (1), 2-digit (2), 3-digit (3).",
        _arithmetic(operator.add,
                    ("What is {a} + {b}?", "Add {a} and {b}.", "Compute {a} plus {b}.",
                     "What is the sum of {a} and {b}?", "{a} + {b} = ?"),
                    {1: (range(10), range(10)), 2: (range(10, 100), range(10, 100)),
                     3: (range(100, 1000), range(100, 1000))}),
        wrong=_near_miss),
    TaskFamily(
        "max_of_list", "Largest of 3 one-digit, 4 two-digit or 5 three-digit numbers.",
        {d: Level(("What is the largest of {xs}?", "Which number is biggest: {xs}?",
                   "Find the maximum of {xs}.", "Give the max of the list {xs}."),
                  _Grid(*[range(lo, hi + 1)] * k),
                  lambda xs: ({"xs": ", ".join(map(str, xs))}, str(max(xs))))
         for d, k, lo, hi in ((1, 3, 0, 9), (2, 4, 10, 99), (3, 5, 100, 999))},
        wrong=_other_list_element),
    TaskFamily(
        "sort_digits", "Sort the digits of a 3-, 5- or 7-digit number in ascending order.",
        {d: Level(("Sort the digits of {n} in ascending order.",
                   "Write the digits of {n} from smallest to largest.",
                   "Arrange the digits of {n} in increasing order.",
                   "Put the digits of {n} in sorted order."),
                  range(10 ** (k - 1), 10 ** k), lambda n: ({"n": n}, "".join(sorted(str(n)))))
         for d, k in ((1, 3), (2, 5), (3, 7))},
        wrong=_almost_sorted),
    TaskFamily(
        "count_letter", "How often a letter occurs in a word (counting, hard).",
        {d: Level(("How many times does '{c}' appear in '{w}'?", 'Count the letter "{c}" in "{w}".',
                   "How many '{c}' are in '{w}'?", "Number of times '{c}' occurs in '{w}'?"),
                  _count_items(words),
                  lambda wc: ({"w": wc[0], "c": wc[1]}, str(wc[0].count(wc[1]))))
         for d, words in _BY_LEVEL.items()},
        wrong=_near_miss),
    TaskFamily(
        "vowel_count", "Number of vowels (a, e, i, o, u) in a word (counting, hard).",
        _per_word(("How many vowels are in '{w}'?", 'Count the vowels in "{w}".',
                   "Number of vowels in '{w}'?", "How many vowels does '{w}' have?"),
                  lambda w: str(sum(c in "aeiou" for c in w))),
        wrong=_near_miss),
    TaskFamily(
        "multiply", "Multiply: 1x1 digit (1), 2x1 digits (2), 2-3 x 2 digits (3) (hard).",
        _arithmetic(operator.mul,
                    ("What is {a} * {b}?", "Multiply {a} by {b}.", "Compute {a} times {b}.",
                     "What is the product of {a} and {b}?", "{a} x {b} = ?"),
                    {1: (range(2, 10), range(2, 10)), 2: (range(10, 100), range(2, 10)),
                     3: (range(10, 1000), range(10, 100))}),
        wrong=_near_miss),
    TaskFamily(
        "number_to_words", "Write a number in English words: 0-99, 100-999, 1000-9999 (hard).",
        {d: Level(("Write {n} in words.", "Spell out the number {n}.",
                   "How do you write {n} in English words?", "Say {n} in words."),
                  numbers_, lambda n: ({"n": n}, number_to_words(n)))
         for d, numbers_ in ((1, range(100)), (2, range(100, 1000)), (3, _THOUSANDS))}),
    TaskFamily(
        "capital", "Capital of a country (1), country of a capital (2), two capitals (3); "
                   "memorised look-ups.",
        {1: _lookup_level(("What is the capital of {x}?", "Name the capital city of {x}.",
                           "Which city is the capital of {x}?", "The capital of {x} is?"),
                          _COUNTRIES, CAPITALS, 1),
         2: _lookup_level(("{x} is the capital of which country?",
                           "Which country has {x} as its capital?",
                           "Name the country whose capital is {x}.",
                           "Of which country is {x} the capital?"),
                          tuple(_CITY_TO_COUNTRY), _CITY_TO_COUNTRY, 1),
         3: _lookup_level(("What are the capitals of {x}?", "Name the capitals of {x}.",
                           "Give the capital cities of {x}.", "Capitals of {x}, in order?"),
                          _COUNTRIES, CAPITALS, 2)}),
    TaskFamily(
        "antonym", "Opposite of one, two or three words (memorised look-ups).",
        {1: _lookup_level(("What is the opposite of {x}?", "Give an antonym of {x}.",
                           "What word means the opposite of {x}?", "Name the opposite of {x}."),
                          _ANTONYM_WORDS, ANTONYMS, 1, "'"),
         **{k: _lookup_level(("Give the opposites of {x}.", "Antonyms, in order: {x}.",
                              "Write the opposites of {x}.", "What are the opposites of {x}?"),
                             _ANTONYM_WORDS, ANTONYMS, k, "'")
            for k in (2, 3)}}),
]

TASKS: dict[str, TaskFamily] = {f.name: f for f in _FAMILIES}

# ---------------------------------------------------------------- suite generation

FEATURES = datasets.Features({
    "example_id": datasets.Value("string"),
    "prompt": datasets.Value("string"),
    "response": datasets.Value("string"),
    "answer": datasets.Value("string"),
    "task": datasets.Value("string"),
    "difficulty": datasets.Value("int64"),
    "noisy": datasets.Value("bool"),
})


def make_task_suite(
    n_train: int = 2000,
    n_test: int = 300,
    *,
    seed: int = 0,
    noise: float = 0.0,
    tasks: Optional[Iterable[str] | str] = None,
    difficulties: Iterable[int] | int = (1, 2, 3),
) -> datasets.DatasetDict:
    """Build the built-in instruction suite as a ``DatasetDict`` with "train" and "test".

    Parameters
    ----------
    n_train, n_test : number of examples (``n_train >= 1``, ``n_test >= 0``).
    seed : the only source of randomness; same arguments give identical datasets.
    noise : fraction of *train* examples given a plausible wrong ``response``; exactly
        ``round(noise * n_train)`` rows get ``noisy=True``. Must lie in [0, 1).
    tasks : family names (default: every family in ``TASKS``, in registry order).
    difficulties : levels to include, a subset of (1, 2, 3).

    Returns
    -------
    DatasetDict whose rows have ``example_id, prompt, response, answer, task, difficulty,
    noisy``. Rows go round-robin over tasks and difficulties (row i has task
    ``tasks[i % T]``), so counts per task, and per (task, difficulty), differ by at most
    one. Prompts are unique across both splits; the test split is never noisy and, for a
    given seed, does not depend on ``n_train``. ``example_id`` is
    ``"{task}-{difficulty}-{12 hex digits}"`` hashed from split and prompt.
    """
    names, levels = _check_args(n_train, n_test, seed, noise, tasks, difficulties)

    def cells(n: int) -> list[tuple[str, int]]:
        # Rotating the level by task index puts several difficulties in every short prefix.
        T, D = len(names), len(levels)
        return [(names[i % T], levels[(i // T + i % T) % D]) for i in range(n)]

    test_cells, train_cells = cells(n_test), cells(n_train)
    streams = {}
    for (name, d), k in (Counter(test_cells) + Counter(train_cells)).items():
        capacity = TASKS[name].capacity(d)
        if k > capacity:
            raise ValueError(
                f"task {name!r} at difficulty {d} has only {capacity} distinct prompts but "
                f"{k} were requested (n_train + n_test spread over {len(names)} task(s) x "
                f"{len(levels)} difficulty level(s)); ask for fewer examples or include more "
                f"tasks/difficulties")
        rng = random.Random(f"sftmix-tasks:{seed}:{name}:{d}")
        # Test examples come first from each stream, so the test split ignores n_train.
        streams[name, d] = iter(_sample_distinct(rng, capacity, k))

    splits = {}
    for split, split_cells in (("test", test_cells), ("train", train_cells)):
        rows = [(name, d, next(streams[name, d])) for name, d in split_cells]
        columns = _render_rows(split, rows)
        if split == "train":
            _add_noise(columns, rows, noise, seed)
        splits[split] = datasets.Dataset.from_dict(columns, features=FEATURES)
    return datasets.DatasetDict(train=splits["train"], test=splits["test"])


def list_tasks() -> pd.DataFrame:
    """One row per (family, difficulty): name, difficulty, description, an example prompt
    and response (plain framing, first template), and n_prompts, the size of its space."""
    records = []
    for family in TASKS.values():
        for d, level in sorted(family.levels.items()):
            # A fixed pseudo-random item, first template, plain framing.
            item = random.Random(f"{family.name}:{d}").randrange(len(level.items))
            index = item * len(level.templates) * len(FRAMINGS)
            prompt, answer = family.example(d, index)
            records.append({"name": family.name, "difficulty": d,
                            "description": family.description, "example_prompt": prompt,
                            "example_response": answer, "n_prompts": family.capacity(d)})
    return pd.DataFrame.from_records(records)


def _check_args(n_train, n_test, seed, noise, tasks, difficulties) -> tuple[list[str], list[int]]:
    for arg, value, low in (("n_train", n_train, 1), ("n_test", n_test, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{arg} must be an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{arg} must be >= {low}, got {value}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not isinstance(noise, numbers.Real) or not 0.0 <= noise < 1.0:
        raise ValueError(f"noise must be a fraction in [0, 1), got {noise!r}")

    names = list(TASKS) if tasks is None else [tasks] if isinstance(tasks, str) else list(tasks)
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; valid names: {', '.join(TASKS)}")
    levels = [difficulties] if isinstance(difficulties, numbers.Integral) else list(difficulties)
    bad = [d for d in levels if d not in (1, 2, 3)]
    if bad:
        raise ValueError(f"difficulties must be among 1, 2, 3; got {bad}")
    for arg, values in (("tasks", names), ("difficulties", levels)):
        if not values:
            raise ValueError(f"{arg} must not be empty")
        if len(set(values)) != len(values):
            raise ValueError(f"{arg} must not repeat: {values}")
    return names, [int(d) for d in levels]


def _sample_distinct(rng: random.Random, n: int, k: int) -> list[int]:
    """k distinct integers from range(n): a lazy Fisher-Yates shuffle, O(k) time and memory.

    Prefix-stable: the first j results do not depend on k.
    """
    moved: dict[int, int] = {}
    out = []
    for i in range(k):
        j = rng.randrange(i, n)
        out.append(moved.get(j, j))
        moved[j] = moved.get(i, i)
    return out


def _render_rows(split: str, rows: list[tuple[str, int, int]]) -> dict[str, list]:
    columns: dict[str, list] = {name: [] for name in FEATURES}
    for name, d, index in rows:
        prompt, answer = TASKS[name].example(d, index)
        digest = hashlib.blake2b(f"{split}\n{prompt}".encode(), digest_size=6).hexdigest()
        columns["example_id"].append(f"{name}-{d}-{digest}")
        columns["prompt"].append(prompt)
        columns["response"].append(answer)
        columns["answer"].append(answer)
        columns["task"].append(name)
        columns["difficulty"].append(d)
        columns["noisy"].append(False)
    if len(set(columns["example_id"])) != len(rows):  # 48-bit hashes: astronomically rare
        raise RuntimeError("example_id collision; please report this seed and size")
    return columns


def _add_noise(columns: dict[str, list], rows: list[tuple[str, int, int]], noise: float,
               seed: int) -> None:
    """Give exactly round(noise * n) rows, chosen at random, a wrong but plausible response."""
    rng = random.Random(f"sftmix-noise:{seed}")
    chosen = sorted(_sample_distinct(rng, len(rows), round(noise * len(rows))))
    for r in chosen:
        name, d, index = rows[r]
        columns["response"][r] = TASKS[name].wrong_answer(d, index, rng)
        columns["noisy"][r] = True
