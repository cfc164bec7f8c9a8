"""Verifiable instructions offline: literal answers that follow and break them, the set, the file schema."""

import json

import pytest

from sftmix.analysis import ifeval
from sftmix.analysis.stats import wilson_interval
from sftmix.data import DataError
from tests.test_cli_errors import assert_one_line_error, sftmix

# (instruction id, arguments, an answer that follows it, one that does not)
CASES = [
    ("change_case:english_lowercase", {},
     "the weather in paris is mild in spring and the streets are full of people walking along the river.",
     "The Weather In Paris Is Mild In Spring And The Streets Are Full Of People."),
    ("punctuation:no_comma", {}, "No commas appear here at all.", "Here, there is one."),
    ("detectable_format:json_format", {}, '{"answer": 5}', "The answer is 5."),
    ("keywords:existence", {"keywords": ["apple", "pear"]}, "I ate an apple and a pear.", "I ate an apple."),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, "Short and sweet.",
     "This answer has far more than five words in it."),
    # sentence counting with the offline Punkt model: "Dr." does not end a sentence
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"},
     "Dr. Smith went home. He was tired.", "Dr. Smith went home."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Paris is the capital. Any other questions?",
     "Any other questions? Paris is the capital."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello.\n\nP.S. See you soon.",
     "Hello. See you soon."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "The NASA and ESA teams met.", "The Nasa and Esa teams met."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", "* one"),
]


@pytest.mark.parametrize("type_id, kwargs, follows, breaks", CASES, ids=[c[0] for c in CASES])
def test_literal_answers(type_id, kwargs, follows, breaks):
    row = {"prompt": "Answer.", "instruction_id_list": [type_id], "kwargs": [kwargs]}
    assert ifeval.check_response(row, follows) == [(True, True)]
    assert ifeval.check_response(row, breaks) == [(False, False)]


def test_loose_accepts_a_leading_line_strict_does_not():
    row = {"prompt": "x", "instruction_id_list": ["detectable_format:json_format"], "kwargs": [{}]}
    assert ifeval.check_response(row, 'Here it is:\n{"a": 1}') == [(False, True)]
    assert ifeval.check_response(row, "") == [(False, False)]


def test_offline_punkt_agrees_with_the_packaged_tokenizer():
    import punkt

    text = ("Dr. Smith went home. He was tired. Mr. J. R. R. Tolkien wrote books. It is 3.5 km away! Why? Yes. "
            "The U.S. economy grew 2 pct. in Jan. last year. \"Stop.\" She left.")
    ours = ifeval.punkt_sentence_tokenizer().tokenize(text)
    assert ours == punkt.sent_tokenize(text)
    assert ours[:3] == ["Dr. Smith went home.", "He was tired.", "Mr. J. R. R. Tolkien wrote books."]


def test_scores_literal():
    rows = [{"key": 1, "prompt": "a", "instruction_id_list": ["punctuation:no_comma", "keywords:existence"],
             "kwargs": [{}, {"keywords": ["pear"]}]},
            {"key": 2, "prompt": "b", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}]
    scores = ifeval.score_responses(rows, ["A pear, ripe.", "Fine as is."])
    # prompt 1: comma breaks no_comma, pear present -> 1 of 2; prompt 2 follows its one instruction
    assert scores["prompt_strict"]["accuracy"] == 0.5 and scores["prompt_strict"]["n"] == 2
    assert scores["instruction_strict"]["accuracy"] == pytest.approx(2 / 3)
    assert (scores["instruction_strict"]["low"], scores["instruction_strict"]["high"]) == \
        pytest.approx(wilson_interval(2 / 3, 3))
    assert scores["by_type"]["punctuation:no_comma"] == {"n": 2, "strict": 0.5, "loose": 0.5}
    assert scores["checks"][0] == {"key": 1, "strict": [False, True], "loose": [False, True]}


def test_built_set_is_seeded_conflict_free_and_round_trips(tmp_path):
    _, conflicts = ifeval.registry()
    prompts = [f"Write about topic {i}." for i in range(40)]
    rows = ifeval.build_instruction_set(prompts, seed=3)
    assert rows == ifeval.build_instruction_set(prompts, seed=3)
    assert rows != ifeval.build_instruction_set(prompts, seed=4)
    assert {len(r["instruction_id_list"]) for r in rows} == {1, 2, 3}
    for r in rows:
        ids = r["instruction_id_list"]
        assert all(b not in conflicts.get(a, ()) for a in ids for b in ids if a != b) and len(set(ids)) == len(ids)
        assert r["prompt"].startswith(prompts[int(r["key"].split("-")[1])])
    path, digest = ifeval.write_instruction_set(rows, tmp_path / "set.jsonl")
    assert ifeval.read_instruction_set(path) == rows and len(digest) == 64


def test_real_ifeval_schema_hub_nulls_and_original_used_only(tmp_path):
    hub = {"key": 1000, "prompt": "Write a haiku. Do not use any commas.",
           "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
           "kwargs": [{"num_words": None, "relation": None, "keywords": None},
                      {"num_words": 20, "relation": "less than", "keywords": None}]}
    original = {**hub, "kwargs": [{}, {"num_words": 20, "relation": "less than"}]}
    (tmp_path / "hub.jsonl").write_text(json.dumps(hub) + "\n")
    (tmp_path / "orig.jsonl").write_text(json.dumps(original) + "\n")
    assert ifeval.read_instruction_set(tmp_path / "hub.jsonl") == ifeval.read_instruction_set(tmp_path / "orig.jsonl")
    row = ifeval.read_instruction_set(tmp_path / "hub.jsonl")[0]
    assert row["kwargs"] == [{}, {"num_words": 20, "relation": "less than"}]
    assert ifeval.score_responses([row], ["Snow on the old pine"])["prompt_strict"]["accuracy"] == 1.0


@pytest.mark.parametrize("change, field", [
    ({"instruction_id_list": ["no_such:thing"], "kwargs": [{}]}, "instruction_id_list[0]"),
    ({"instruction_id_list": ["length_constraints:number_words"],
      "kwargs": [{"num_words": 5, "relation": "roughly"}]}, "kwargs[0]"),
    ({"kwargs": []}, "kwargs"),
    ({"prompt": ""}, "prompt"),
])
def test_bad_instruction_files(tmp_path, change, field):
    good = {"key": 1, "prompt": "Hi.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, **change}) + "\n")
    with pytest.raises(DataError, match=r"set\.jsonl, row 1, field"):
        ifeval.read_instruction_set(path)
    out = tmp_path / "out.json"
    proc = sftmix("eval", "--model_name_or_path", "tiny-llama", "--ifeval", str(path), "--out", str(out))
    assert_one_line_error(proc, "set.jsonl", "row 1", f"field '{field}'")
    assert not out.exists()


def test_cli_builds_a_set_from_mt_bench_and_held_out_prompts(tmp_path):
    prompts = tmp_path / "held_out.json"
    prompts.write_text(json.dumps([{"instruction": "Describe a cat."}, {"instruction": "Name three rivers."}]))
    out = tmp_path / "set.jsonl"
    proc = sftmix("eval", "--model_name_or_path", "tiny-llama", "--ifeval_build", str(out), "--ifeval_prompts",
                  str(prompts), "--ifeval_seed", "1")
    assert proc.returncode == 0, proc.stderr
    rows = ifeval.read_instruction_set(out)
    assert len(rows) == 82 and rows[-1]["prompt"].startswith("Name three rivers.")
    assert rows[0]["prompt"].startswith("Compose an engaging travel blog post")
