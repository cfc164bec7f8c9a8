"""Tests for the built-in task suite (sftmix.toy.tasks).

Answers are re-derived here from the prompt text by small checkers written independently
of the generator, so a wrong template, item table or decoding shows up as a mismatch.
"""

import math
import re
import time
from collections import Counter

import pytest

from sftmix.toy.tasks import TASKS, list_tasks, make_task_suite

COLUMNS = {"example_id", "prompt", "response", "answer", "task", "difficulty", "noisy"}


# ----------------------------------------------------------------- independent checkers

def quoted(prompt):
    return re.findall(r"""['"]([A-Za-z]+)['"]""", prompt)


def ints(prompt):
    return [int(x) for x in re.findall(r"\d+", prompt)]


def the_word(prompt):
    (word,) = quoted(prompt)
    return word


def check_letter_at(prompt):
    word = the_word(prompt)
    if "first" in prompt or "start" in prompt:
        return word[0]
    if "last" in prompt or "final" in prompt or "end with" in prompt:
        return word[-1]
    (k,) = ints(prompt)
    return word[k - 1]


def check_is_even(prompt):
    (n,) = ints(prompt)
    asks_odd = re.search(r"\bodd\b", prompt) is not None
    return "yes" if (n % 2 == 1) == asks_odd else "no"


def check_next_letter(prompt):
    (c,) = quoted(prompt)
    if "before" in prompt or "precedes" in prompt:
        shift = -1
    else:
        shift = ints(prompt)[0] if ints(prompt) else 1
    assert len(c) == 1
    return chr(ord(c) + shift)


def check_count_letter(prompt):
    letter, word = sorted(quoted(prompt), key=len)
    assert len(letter) == 1
    return str(word.count(letter))


_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = {w: 10 * i for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}


def words_to_int(text):
    """Parse English number words back to an int (the inverse direction of the generator)."""
    for hyphenated in re.findall(r"\S*-\S*", text):
        left, right = hyphenated.split("-")
        assert left in _TENS and right in _UNITS[1:10], text
    total = current = 0
    for token in re.split(r"[ -]", text):
        if token in _UNITS:
            current += _UNITS.index(token)
        elif token in _TENS:
            current += _TENS[token]
        elif token == "hundred":
            current *= 100
        elif token == "thousand":
            total, current = total + current * 1000, 0
        else:
            raise AssertionError(f"unexpected token {token!r} in {text!r}")
    return total + current


def check_number_to_words(prompt):
    (n,) = ints(prompt)
    return n  # compared through words_to_int, see answer_ok


# A few facts typed in by hand; every other look-up is checked for consistency instead.
CAPITAL_FACTS = {"France": "Paris", "Japan": "Tokyo", "Peru": "Lima", "Egypt": "Cairo",
                 "Canada": "Ottawa", "Argentina": "Buenos Aires", "India": "New Delhi",
                 "Norway": "Oslo", "Kenya": "Nairobi", "Mexico": "Mexico City"}
ANTONYM_FACTS = {"hot": "cold", "big": "small", "up": "down", "day": "night",
                 "black": "white", "north": "south", "open": "closed", "before": "after"}
ANTONYM_FACTS.update({v: k for k, v in ANTONYM_FACTS.items()})
CITY_FACTS = {city: country for country, city in CAPITAL_FACTS.items()}

CHECKERS = {
    "uppercase": lambda p: the_word(p).upper(),
    "reverse_word": lambda p: the_word(p)[::-1],
    "repeat_word": lambda p: " ".join([the_word(p)] * ints(p)[0]),
    "letter_at": check_letter_at,
    "is_even": check_is_even,
    "add": lambda p: str(sum(ints(p))),
    "multiply": lambda p: str(math.prod(ints(p))),
    "max_of_list": lambda p: str(max(ints(p))),
    "sort_digits": lambda p: "".join(sorted(str(ints(p)[0]))),
    "count_letter": check_count_letter,
    "vowel_count": lambda p: str(sum(c in "aeiou" for c in the_word(p))),
    "next_letter": check_next_letter,
    "number_to_words": check_number_to_words,
}
LOOKUPS = {"capital", "antonym"}


def answer_ok(task, prompt, answer):
    if task == "number_to_words":
        return words_to_int(answer) == check_number_to_words(prompt) and " and " not in answer
    return CHECKERS[task](prompt) == answer


def lookup_pairs(row):
    """The (key, value) pairs a capital/antonym row asks about, with the facts to check."""
    prompt, values = row["prompt"], row["answer"].split(", ")
    if row["task"] == "antonym":
        return list(zip(quoted(prompt), values)), ANTONYM_FACTS
    if row["difficulty"] == 2:  # "Lima is the capital of which country?"
        cities = [c for c in CITY_FACTS if c in prompt]
        return [(c, v) for c, v in zip(cities, values)], CITY_FACTS
    countries = sorted((c for c in CAPITAL_FACTS if re.search(rf"\b{c}\b", prompt)),
                       key=prompt.index)
    if len(countries) != len(values):  # a country missing from our hand-typed table
        return [], CAPITAL_FACTS
    return list(zip(countries, values)), CAPITAL_FACTS


# ----------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def suite():
    return make_task_suite(20_000, 2_000, seed=0, noise=0.1)


@pytest.fixture(scope="module")
def rows(suite):
    return {split: suite[split].to_list() for split in ("train", "test")}


# ----------------------------------------------------------------- registry and listing

def test_registry_has_enough_families_with_levels_and_paraphrases():
    assert len(TASKS) >= 12
    for name, family in TASKS.items():
        assert family.name == name
        assert sorted(family.levels) == [1, 2, 3]
        for level in family.levels.values():
            assert len(set(level.templates)) >= 3


def test_every_family_has_an_independent_checker():
    assert set(TASKS) <= set(CHECKERS) | LOOKUPS
    assert len(CHECKERS) >= 8


def test_list_tasks_shows_a_correct_example_per_family_and_difficulty():
    table = list_tasks()
    assert {"name", "difficulty", "description", "example_prompt",
            "example_response"} <= set(table.columns)
    assert len(table) == 3 * len(TASKS)
    assert set(zip(table["name"], table["difficulty"])) == {
        (t, d) for t in TASKS for d in (1, 2, 3)}
    for r in table.itertuples():
        if r.name in CHECKERS:
            assert answer_ok(r.name, r.example_prompt, r.example_response), r
        assert len(r.example_prompt) <= 80 and len(r.example_response) <= 40


def test_lookup_spaces_support_200k_examples():
    # Every (task, difficulty) cell must hold its round-robin share of 200k + 300 examples.
    share = math.ceil((200_000 + 300) / (len(TASKS) * 3))
    for family in TASKS.values():
        for d in (1, 2, 3):
            assert family.capacity(d) >= share, (family.name, d)


# ----------------------------------------------------------------- answers

@pytest.mark.parametrize("task", sorted(CHECKERS))
def test_answers_match_independent_checker(rows, task):
    checked = 0
    for split in ("train", "test"):
        for r in rows[split]:
            if r["task"] == task:
                assert answer_ok(task, r["prompt"], r["answer"]), r
                if not r["noisy"]:
                    assert r["response"] == r["answer"]
                checked += 1
    assert checked > 300


def test_lookups_match_hand_typed_facts(rows):
    checked = 0
    for r in rows["train"] + rows["test"]:
        if r["task"] in LOOKUPS:
            pairs, facts = lookup_pairs(r)
            for key, value in pairs:
                if key in facts:
                    assert value == facts[key], r
                    checked += 1
            assert r["noisy"] or r["response"] == r["answer"]
    assert checked > 300


def test_antonyms_are_symmetric(rows):
    mapping = {}
    for r in rows["train"] + rows["test"]:
        if r["task"] == "antonym":
            for word, opposite in zip(quoted(r["prompt"]), r["answer"].split(", ")):
                assert mapping.setdefault(word, opposite) == opposite
    for word, opposite in mapping.items():
        assert mapping.get(opposite, word) == word


def test_every_paraphrase_is_used(rows):
    by_cell = {}
    for r in rows["train"]:
        by_cell.setdefault((r["task"], r["difficulty"]), []).append(r["prompt"])
    for (task, d), prompts in by_cell.items():
        for template in TASKS[task].levels[d].templates:
            pieces = [p for p in re.split(r"\{\w+\}", template) if p]
            assert any(all(p in prompt for p in pieces) for prompt in prompts), template


def test_difficulty_three_is_bigger_than_one(rows):
    def size(task, prompt, answer):
        if task in ("uppercase", "reverse_word", "vowel_count", "count_letter"):
            return max(map(len, quoted(prompt)))
        if task == "repeat_word":
            return ints(prompt)[0] * len(the_word(prompt))
        if task in ("add", "multiply", "sort_digits", "is_even", "number_to_words"):
            return sum(len(str(n)) for n in ints(prompt))
        if task == "max_of_list":
            return len(ints(prompt)) * len(str(max(ints(prompt))))
        if task in ("antonym", "capital"):
            return len(answer)
        return None

    means = {}
    for r in rows["train"]:
        s = size(r["task"], r["prompt"], r["answer"])
        if s is not None:
            means.setdefault((r["task"], r["difficulty"]), []).append(s)
    tasks = {t for t, _ in means}
    assert len(tasks) >= 10
    for t in tasks:
        m = [sum(means[t, d]) / len(means[t, d]) for d in (1, 2, 3)]
        assert m[0] < m[2], (t, m)


# ----------------------------------------------------------------- format and layout

def test_columns_ascii_and_length_limits(suite, rows):
    for split in ("train", "test"):
        assert set(suite[split].column_names) == COLUMNS
        for r in rows[split]:
            for key in ("prompt", "response", "answer", "example_id", "task"):
                assert all(32 <= ord(c) <= 126 for c in r[key]), r
            assert 0 < len(r["prompt"]) <= 80 and 0 < len(r["response"]) <= 40, r
            assert len(r["answer"]) <= 40
            assert isinstance(r["difficulty"], int) and isinstance(r["noisy"], bool)


def test_prompts_unique_and_splits_disjoint(rows):
    train = [r["prompt"] for r in rows["train"]]
    test = [r["prompt"] for r in rows["test"]]
    assert len(set(train)) == len(train) and len(set(test)) == len(test)
    assert not set(train) & set(test)


def test_example_ids_unique_and_well_formed(rows):
    ids = [r["example_id"] for split in rows.values() for r in split]
    assert len(set(ids)) == len(ids)
    for r in rows["test"][:500]:
        assert re.fullmatch(rf"{r['task']}-{r['difficulty']}-[0-9a-f]{{8,}}", r["example_id"])


def test_round_robin_balances_tasks_and_difficulties(rows):
    for split in ("train", "test"):
        per_task = Counter(r["task"] for r in rows[split])
        per_cell = Counter((r["task"], r["difficulty"]) for r in rows[split])
        assert set(per_task) == set(TASKS)
        assert len(per_cell) == 3 * len(TASKS)
        assert max(per_task.values()) - min(per_task.values()) <= 1
        assert max(per_cell.values()) - min(per_cell.values()) <= 1
    first = rows["train"][: len(TASKS)]
    assert [r["task"] for r in first] == list(TASKS)


def test_subsets_of_tasks_and_difficulties():
    ds = make_task_suite(60, 12, tasks=["add", "capital"], difficulties=(3,))
    for split in ("train", "test"):
        assert set(ds[split]["task"]) == {"add", "capital"}
        assert set(ds[split]["difficulty"]) == {3}
    assert set(make_task_suite(5, 1, tasks="reverse_word")["train"]["task"]) == {"reverse_word"}


def test_empty_test_split_keeps_schema():
    ds = make_task_suite(10, 0)
    assert len(ds["test"]) == 0
    assert ds["test"].features == ds["train"].features


def test_generating_20k_is_fast():
    start = time.perf_counter()
    make_task_suite(20_000, 300)
    assert time.perf_counter() - start < 5.0  # about 0.3 s on a laptop core


# ----------------------------------------------------------------- determinism

def test_same_seed_same_dataset_different_seed_different():
    a = make_task_suite(500, 100, seed=3, noise=0.2)
    b = make_task_suite(500, 100, seed=3, noise=0.2)
    c = make_task_suite(500, 100, seed=4, noise=0.2)
    for split in ("train", "test"):
        assert a[split].to_dict() == b[split].to_dict()
        assert a[split]["prompt"] != c[split]["prompt"]
    assert a["train"]["noisy"] != c["train"]["noisy"]


def test_test_split_does_not_depend_on_n_train_and_train_grows_by_prefix():
    small = make_task_suite(300, 90, seed=1)
    large = make_task_suite(900, 90, seed=1)
    assert small["test"].to_dict() == large["test"].to_dict()
    assert small["train"].to_dict() == large["train"].select(range(300)).to_dict()


# ----------------------------------------------------------------- label noise

@pytest.mark.parametrize("noise", [0.0, 0.05, 0.25, 0.5, 0.999])
def test_label_noise_hits_exact_count_in_train_only(noise):
    ds = make_task_suite(777, 200, seed=2, noise=noise)
    train = ds["train"].to_list()
    noisy = [r for r in train if r["noisy"]]
    assert len(noisy) == round(noise * 777)
    assert not any(ds["test"]["noisy"])
    assert all(r["response"] == r["answer"] for r in ds["test"].to_list())
    for r in train:
        assert (r["response"] != r["answer"]) == r["noisy"]
    if 0 < len(noisy) < 777:  # chosen at random, not the first rows
        assert [i for i, r in enumerate(train) if r["noisy"]] != list(range(len(noisy)))


def test_noisy_responses_look_like_answers_of_their_task(rows):
    noisy = [r for r in rows["train"] if r["noisy"]]
    assert len(noisy) == 2_000
    assert {r["task"] for r in noisy} == set(TASKS)
    for r in noisy:
        wrong, right = r["response"], r["answer"]
        assert wrong != right and 0 < len(wrong) <= 40
        if r["task"] in CHECKERS:  # the checkers do tell a wrong answer apart
            assert not answer_ok(r["task"], r["prompt"], wrong), r
        assert all(32 <= ord(c) <= 126 for c in wrong)
        if right.isdigit():
            assert wrong.isdigit(), r
        elif right in ("yes", "no"):
            assert wrong in ("yes", "no")
        elif len(right) == 1:
            assert len(wrong) == 1 and wrong.isalpha()
        if r["task"] == "number_to_words":
            words_to_int(wrong)  # still well-formed number words
        if r["task"] == "sort_digits":
            assert sorted(wrong) == sorted(right) or len(wrong) == len(right)


# ----------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("kwargs, message", [
    ({"noise": -0.1}, "noise"),
    ({"noise": 1.0}, "noise"),
    ({"noise": float("nan")}, "noise"),
    ({"tasks": ["reverse_word", "nope"]}, r"nope.*valid names: .*reverse_word"),
    ({"tasks": []}, "tasks"),
    ({"tasks": ["add", "add"]}, "repeat"),
    ({"difficulties": (0, 1)}, "difficulties"),
    ({"difficulties": (4,)}, "difficulties"),
    ({"difficulties": ()}, "difficulties"),
    ({"n_train": 0}, "n_train"),
    ({"n_test": -1}, "n_test"),
    ({"n_train": 10**5, "tasks": ["capital"], "difficulties": (1,)}, "distinct prompts"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_task_suite(**{"n_train": 10, "n_test": 2, **kwargs})


def test_non_integer_sizes_raise_type_error():
    with pytest.raises(TypeError, match="n_train"):
        make_task_suite(10.5)
