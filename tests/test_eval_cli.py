"""``sftmix eval`` for chat models: LoRA adapter folders, generation budgets, judge exports."""

import json

import pytest

from sftmix.cli import main

TINY = ["--tiny_hidden_size", "16", "--tiny_heads", "2"]
DATA = ["--dataset", "builtin", "--n_train", "32", "--n_test", "12", "--max_length", "96"]


def _eval(capsys, *argv):
    main(["eval", *argv])
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):out.rindex("}") + 1])


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    pytest.importorskip("peft")
    out = tmp_path_factory.mktemp("lora") / "adapter"
    main(["train", "--model_name_or_path", "tiny-llama", *TINY, *DATA, "--use_lora", "True", "--lora_r", "4",
          "--learning_rate", "5e-2", "--num_train_epochs", "2", "--per_device_train_batch_size", "8",
          "--disable_tqdm", "True", "--output_dir", str(out)])
    return out


def test_eval_on_an_adapter_folder_evaluates_that_adapter(adapter, capsys):
    assert (adapter / "adapter_config.json").exists() and (adapter / "sftmix_adapter_base.json").exists()
    base = _eval(capsys, "--model_name_or_path", "tiny-llama", *TINY, *DATA, "--no-generate")
    # --use_lora True on an adapter folder must not wrap a fresh (zero) adapter around it.
    for flags in ([], ["--use_lora", "True"]):
        main(["eval", "--model_name_or_path", str(adapter), *flags, *DATA, "--no-generate"])
        out = capsys.readouterr().out
        assert "evaluating the LoRA adapter" in out
        tuned = json.loads(out[out.index("{"):out.rindex("}") + 1])
        assert tuned["nll"] < base["nll"] - 0.05   # the trained adapter's numbers, not the base's


def test_out_keeps_every_generation_and_counts_cut_ones(tmp_path, capsys):
    out = tmp_path / "eval.json"
    result = _eval(capsys, "--model_name_or_path", "tiny-llama", *TINY, *DATA, "--max_new_tokens", "3",
                   "--out", str(out))
    saved = json.loads(out.read_text())
    assert saved["max_new_tokens"] == 3 and saved["n_generations_cut"] == result["n_generations_cut"]
    assert len(saved["generations"]) == 12
    first = saved["generations"][0]
    assert set(first) == {"example_id", "prompt", "reference", "output", "cut"}
    assert sum(g["cut"] for g in saved["generations"]) == saved["n_generations_cut"] > 0


def test_prompts_without_references_are_answered_and_exported(tmp_path, capsys):
    questions = tmp_path / "alpaca_eval.json"
    questions.write_text(json.dumps([{"instruction": "Reverse the word cat"}, {"instruction": "Say hi"}]))
    mt = tmp_path / "mt_bench_questions.jsonl"
    mt.write_text("\n".join(json.dumps({"question_id": 81 + i, "turns": [t, "And again?"]})
                            for i, t in enumerate(["Name a colour", "Count to three"])) + "\n")
    ae_out, mt_out, out = tmp_path / "ae_out.json", tmp_path / "mt_out", tmp_path / "gen.json"
    main(["eval", "--model_name_or_path", "tiny-llama", *TINY, "--eval_dataset", str(questions),
          "--max_new_tokens", "5", "--export-alpaca-eval", str(ae_out), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "answered 2 prompts without reference answers" in printed
    rows = json.loads(ae_out.read_text())
    assert [r["instruction"] for r in rows] == ["Reverse the word cat", "Say hi"]
    assert json.loads(out.read_text())["generations"][1]["reference"] is None
    main(["eval", "--model_name_or_path", "tiny-llama", *TINY, "--mt_bench", str(mt_out), "--mt_bench_questions",
          str(mt), "--max_new_tokens", "5", "--model_id", "ntp-seed0"])
    answers = [json.loads(line) for line in (mt_out / "model_answer" / "ntp-seed0.jsonl").read_text().splitlines()]
    assert [a["question_id"] for a in answers] == [81, 82]   # integers, as FastChat keys them
    assert [len(a["choices"][0]["turns"]) for a in answers] == [2, 2] and answers[0]["model_id"] == "ntp-seed0"


def test_bad_max_new_tokens_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--model_name_or_path", "tiny-llama", "--max_new_tokens", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "sftmix: error: sftmix eval: --max_new_tokens must be >= 1, got 0"


def test_multiple_choice_accuracy_from_the_command_line(tmp_path, capsys):
    questions = [("Reverse the word cat", ["tac", "cat"]), ("Say hi", ["hi", "bye"]),
                 ("Count to three", ["1 2 3", "3 2 1"]), ("Name a colour", ["red", "seven"])]
    results = []
    for answer in (0, "B"):  # an index, then a key: each question's other option
        path = tmp_path / f"mc_{answer}.jsonl"
        options = [o if answer == 0 else dict(zip("AB", o)) for _, o in questions]
        path.write_text("\n".join(json.dumps({"question": q, "options": o, "answer": answer})
                                  for (q, _), o in zip(questions, options)) + "\n")
        out = tmp_path / f"mc_{answer}.json"
        results.append(_eval(capsys, "--model_name_or_path", "tiny-llama", *TINY, "--multiple_choice", str(path),
                             "--out", str(out)))
        assert json.loads(out.read_text()) == results[-1]
    assert [r["n_items"] for r in results] == [4, 4]
    # Two options per question: the model picks one of them, so the two answer keys split the items.
    assert results[0]["accuracy"] + results[1]["accuracy"] == pytest.approx(1.0)
    assert results[0]["accuracy_sum"] + results[1]["accuracy_sum"] == pytest.approx(1.0)


def test_multiple_choice_file_errors_name_the_row_and_field(tmp_path, capsys):
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps({"question": "Q?", "options": ["a", "b"], "answer": 1}) + "\n"
                    + json.dumps({"question": "Q2?", "options": ["a", "b"], "answer": "C"}) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model_name_or_path", "tiny-llama", *TINY, "--multiple_choice", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}, row 1, field 'answer'" in err and "not one of the options" in err
