"""Evaluation scorers on literal examples and hand-computed cases."""

import json

import numpy as np
import pytest
import torch

from sftmix.analysis.evaluate import (
    answer_index,
    evaluate_model,
    expected_calibration_error,
    multiple_choice_accuracy,
    multiple_choice_loglik,
    normalize_answer,
)
from sftmix.analysis.export import export_alpaca_eval
from sftmix.toy import build_tiny_model


def test_ece_hand_computed():
    # Bin (0.8, 0.9]: confidences 0.85, 0.85, accuracy 1/2 -> |0.5 - 0.85| = 0.35, weight 2/4
    # Bin (0.2, 0.3]: confidences 0.25, 0.25, accuracy 0   -> |0 - 0.25|   = 0.25, weight 2/4
    ece = expected_calibration_error([0.85, 0.85, 0.25, 0.25], [1, 0, 0, 0])
    assert ece == pytest.approx(0.5 * 0.35 + 0.5 * 0.25)
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == pytest.approx(0.0)   # perfectly calibrated
    assert expected_calibration_error([0.0, 1.0], [0, 1]) == pytest.approx(0.0)   # edges fall in the end bins
    assert expected_calibration_error([0.6] * 10, [1] * 6 + [0] * 4) == pytest.approx(0.0)
    assert np.isnan(expected_calibration_error([], []))
    with pytest.raises(ValueError):
        expected_calibration_error([0.5], [1, 0])


def test_exact_match_normalisation():
    assert normalize_answer("  Paris ") == normalize_answer("paris")
    assert normalize_answer("new  delhi") == "new delhi"
    assert normalize_answer("42") != normalize_answer("4 2")
    # Trailing punctuation does not count; punctuation inside the answer does.
    assert normalize_answer("Paris.") == normalize_answer("paris") == normalize_answer("Paris !")
    assert normalize_answer("3.5") != normalize_answer("35")
    assert normalize_answer("a, b") == "a, b"


def test_multiple_choice_accuracy_literal():
    # item 1: option B has the best mean log-lik per token (-0.5 vs -1.0); sums would pick A.
    logliks = [np.array([[-2.0, 2], [-3.0, 6]]), np.array([[-1.0, 1], [-5.0, 1], [-0.5, 1]])]
    assert multiple_choice_accuracy(logliks, [1, 2]) == 1.0
    assert multiple_choice_accuracy(logliks, [1, 2], normalize=False) == 0.5
    assert answer_index({"options": {"A": "x", "B": "y"}, "answer": "B"}) == 1
    assert answer_index({"options": ["x", "y", "z"], "answer": 2}) == 2
    with pytest.raises(ValueError, match="not one of the options"):
        answer_index({"options": ["x"], "answer": "Q"})


def test_multiple_choice_loglik_matches_model_loss(tokenizer):
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2).eval()
    items = [{"question": "Capital of France?", "options": ["Paris", "Rome and more"], "answer": 0}]
    scores = multiple_choice_loglik(model, tokenizer, items, progress=False)[0]
    for j, option in enumerate(items[0]["options"]):
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": items[0]["question"]}], tokenize=False,
                                               add_generation_prompt=True)
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        r = tokenizer(option + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p + r])
        labels = torch.tensor([[-100] * len(p) + r])
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss.item()
        assert scores[j, 1] == len(r)
        assert scores[j, 0] == pytest.approx(-loss * len(r), rel=1e-4)


def test_evaluate_model_reports_all_metrics(tokenizer, suite_examples):
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2)
    test = suite_examples[1].select(range(16))
    result = evaluate_model(model, tokenizer, test, progress=False, max_new_tokens=4)
    assert {"nll", "perplexity", "ece", "token_accuracy", "exact_match", "exact_match_by_task"} <= set(result)
    assert result["perplexity"] == pytest.approx(np.exp(result["nll"]))
    assert len(result["generations"]) == 16 and 0.0 <= result["exact_match"] <= 1.0
    # an untrained model is near uniform over the vocabulary
    assert abs(result["nll"] - np.log(len(tokenizer))) < 1.0
    # An untrained model rarely ends its turn within 4 tokens: those generations are counted as cut.
    assert result["max_new_tokens"] == 4
    cut = result["generation_cut"]
    assert result["n_generations_cut"] == sum(cut) and sum(cut) > 0
    assert "content_nll" in result and result["content_nll"] != result["nll"]
    # Open-ended chats: generations are kept, exact match is not reported at all (not as 0.0).
    chat = evaluate_model(model, tokenizer, test, progress=False, max_new_tokens=4, exact_match=False)
    assert "exact_match" not in chat and "exact_match_by_task" not in chat
    assert chat["generations"] == result["generations"] and chat["nll"] == pytest.approx(result["nll"])


def test_default_budget_does_not_cut_open_ended_answers(tokenizer, suite_examples):
    from sftmix.analysis.generate import DEFAULT_MAX_NEW_TOKENS

    assert DEFAULT_MAX_NEW_TOKENS >= 256
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2)
    test = suite_examples[1].select(range(4))
    short = evaluate_model(model, tokenizer, test, progress=False, max_new_tokens=None)
    longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in test["answer"])
    assert short["max_new_tokens"] == longest + 16   # None: sized to the references


def test_exports(tmp_path):
    path = export_alpaca_eval(["Say hi"], ["hi"], tmp_path / "ae.json", generator="tiny")
    assert json.loads(path.read_text()) == [{"instruction": "Say hi", "output": "hi", "generator": "tiny",
                                             "dataset": "sftmix"}]
    with pytest.raises(ValueError):
        export_alpaca_eval(["a"], [], tmp_path / "x.json", generator="g")
