"""MT-Bench answered over two turns: the packaged data, FastChat's answer file, lengths, reference NLL."""

import glob
import json
import os
import re

import numpy as np
import pytest
import torch

from sftmix.analysis import mtbench
from sftmix.data import DataError
from sftmix.data.tokenize import render_conversation
from sftmix.toy.base import load_base_model
from tests.test_cli_errors import assert_one_line_error, sftmix


def _fastchat_answers(answer_dir):
    """What FastChat's llm_judge does with an answer folder: every ``*.jsonl`` is a model named after the
    file, its lines keyed by ``question_id`` as parsed; the judge reads ``choices[0]["turns"][0]`` and ``[1]``."""
    models = {}
    for filename in sorted(glob.glob(os.path.join(answer_dir, "*.jsonl"))):
        with open(filename) as f:
            models[os.path.basename(filename)[:-6]] = {json.loads(line)["question_id"]: json.loads(line)
                                                       for line in f}
    return models


def test_packaged_questions_and_references():
    questions = mtbench.read_questions()
    assert len(questions) == 80 and all(len(q["turns"]) == 2 for q in questions)
    categories = [q["category"] for q in questions]
    assert {c: categories.count(c) for c in set(categories)} == {c: 10 for c in set(categories)}
    assert len(set(categories)) == 8
    assert questions[0]["question_id"] == 81 and questions[0]["turns"][1].startswith("Rewrite your previous")
    refs = mtbench.read_reference_answers()
    assert len(refs) == 30 and all(isinstance(k, int) and len(v) == 2 for k, v in refs.items())
    assert len(mtbench.subset(questions, 2)) == 16


def test_export_is_read_by_fastchats_loader(tmp_path):
    answers = [{"question_id": 81, "category": "writing", "turns": ["Aloha!", "A trip."]},
               {"question_id": 82, "category": "writing", "turns": ["Dear boss,", "It was short."]}]
    path = mtbench.export_answers(answers, tmp_path, model_id="ntp-seed0")
    assert path == tmp_path / "model_answer" / "ntp-seed0.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    first.pop("tstamp")
    assert first == {"question_id": 81, "answer_id": first["answer_id"], "model_id": "ntp-seed0",
                     "choices": [{"index": 0, "turns": ["Aloha!", "A trip."]}]}
    loaded = _fastchat_answers(tmp_path / "model_answer")
    questions = {q["question_id"]: q for q in mtbench.read_questions()}
    answer = loaded["ntp-seed0"][questions[82]["question_id"]]   # the question file's int id finds the answer
    assert answer["choices"][0]["turns"][0] == "Dear boss," and answer["choices"][0]["turns"][1] == "It was short."
    with pytest.raises(ValueError, match="integer"):
        mtbench.export_answers([{**answers[0], "question_id": "81"}], tmp_path, model_id="x")
    with pytest.raises(ValueError, match="file name"):
        mtbench.export_answers(answers, tmp_path, model_id="ntp/seed0")


def test_model_ids_tell_runs_apart(tmp_path):
    for method in ("ntp", "sftmix"):
        (tmp_path / "runs" / "exp" / method / "seed0").mkdir(parents=True)
    assert mtbench.model_id_for(str(tmp_path / "runs/exp/ntp/seed0")) == "ntp-seed0"
    assert mtbench.model_id_for(str(tmp_path / "runs/exp/sftmix/seed0")) == "sftmix-seed0"
    assert mtbench.model_id_for("smollm2-135m") == "smollm2-135m"
    assert mtbench.model_id_for("/work/cache/gemma/gemma-3-270m-q4_k_m.gguf") == "gemma-3-270m-q4_k_m"


def test_answer_lengths_literal():
    answers = [{"category": "math", "turns": ["one two", "x"], "cut": [False, True], "n_tokens": [3, 8]},
               {"category": "math", "turns": ["a b c d", "y z"], "cut": [False, False], "n_tokens": [5, 2]},
               {"category": "stem", "turns": ["q", "r s t"], "cut": [True, True], "n_tokens": [8, 8]}]
    lengths = mtbench.answer_lengths(answers)
    assert lengths["turn1"]["all"] == {"n": 3, "mean_tokens": 16 / 3, "mean_words": 7 / 3, "share_cut": 1 / 3,
                                       "n_cut": 1}
    assert lengths["turn2"]["math"] == {"n": 2, "mean_tokens": 5.0, "mean_words": 1.5, "share_cut": 0.5, "n_cut": 1}


def test_two_turn_answers_on_a_tiny_model(tokenizer):
    model = load_base_model().eval()
    questions = mtbench.subset(mtbench.read_questions(), 1)[:3]
    answers = mtbench.answer_questions(model, tokenizer, questions, batch_size=2, max_new_tokens=6, progress=False)
    assert [a["question_id"] for a in answers] == [q["question_id"] for q in questions]
    assert all(len(a["turns"]) == 2 and all(1 <= n <= 6 for n in a["n_tokens"]) for a in answers)


def test_reference_nll_turn2_is_conditioned_on_the_reference_first_answer(tokenizer):
    model = load_base_model().eval()
    question = {"question_id": 7, "category": "math", "turns": ["What is 2 + 3?", "And times 4?"]}
    ref = ["It is 5.", "It is 20."]
    result = mtbench.reference_nll(model, tokenizer, [question], {7: ref}, progress=False)
    assert result["turn1"]["n"] == result["turn2"]["n"] == 1 and result["all"]["n"] == 2
    # turn 2 by hand: the conversation with the reference first answer, NLL of the second answer's content
    history = [{"role": "user", "content": question["turns"][0]}, {"role": "assistant", "content": ref[0]},
               {"role": "user", "content": question["turns"][1]}]
    prompt = render_conversation(tokenizer, history, add_generation_prompt=True)
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r = tokenizer(ref[1], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([p + r]), labels=torch.tensor([[-100] * len(p) + r])).loss.item()
    assert result["turn2"]["nll_per_token"] == pytest.approx(loss, rel=1e-4)
    assert result["turn2"]["nll_per_byte"] == pytest.approx(loss * len(r) / len(ref[1].encode()), rel=1e-4)
    assert result["turn2"]["per_question"] == {"7-2": pytest.approx(result["turn2"]["nll_per_byte"])}
    assert np.isfinite(result["all"]["nll_per_byte"])
    assert mtbench.reference_nll(model, tokenizer, [question], {}, progress=False) == {}


@pytest.mark.parametrize("row, field", [
    ({"question_id": 1, "category": "x"}, "turns"),
    ({"question_id": 1, "category": "x", "turns": ["ok", ""]}, "turns[1]"),
    ({"question_id": "1", "category": "x", "turns": ["ok"]}, "question_id"),
])
def test_bad_question_files_fail_before_anything_is_written(tmp_path, row, field):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question_id": 0, "category": "x", "turns": ["fine"]}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=re.escape(f"q.jsonl, row 1, field '{field}'")):
        mtbench.read_questions(path)
    out = tmp_path / "out"
    proc = sftmix("eval", "--model_name_or_path", "tiny-llama", "--mt_bench", str(out), "--mt_bench_questions",
                  str(path))
    assert_one_line_error(proc, "row 1", field)
    assert not out.exists()
