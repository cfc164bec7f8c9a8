"""Chat templates for base models: the registry, the choice and its one line, bad templates, saving."""

import json

import pytest
import transformers

from sftmix import models, offline
from sftmix.cli import main
from sftmix.config import ModelArguments
from sftmix.constants import IGNORE_INDEX
from sftmix.data import canonicalize, tokenize_examples
from sftmix.data.templates import ALPACA, GEMMA, apply_chat_template, template_name
from sftmix.data.tokenize import render_conversation
from sftmix.errors import ConfigError
from sftmix.models import load_model_and_tokenizer, load_tokenizer
from sftmix.toy import build_gemma_like_tokenizer
from sftmix.toy.tokenizer import CHAT_TEMPLATE

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "More"}]


def test_alpaca_renders_the_instruction_response_blocks_closed_by_eos():
    tok = build_gemma_like_tokenizer()
    assert tok.chat_template is None  # like Gemma 3 base: no template of its own
    assert render_conversation(tok, CHAT, add_generation_prompt=True) == (
        "### Instruction:\nBe brief.\n\nHi\n\n### Response:\nHello<eos>### Instruction:\nMore\n\n### Response:\n")


def test_gemma_renders_bos_and_turn_markers_with_the_system_text_in_the_first_user_turn():
    tok = build_gemma_like_tokenizer()
    assert apply_chat_template(tok, "gemma") == "gemma"
    assert render_conversation(tok, CHAT, add_generation_prompt=True) == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nMore<end_of_turn>\n<start_of_turn>model\n")


def test_gemma_template_trains_the_answer_and_end_of_turn_not_the_newline_after_it():
    tok = build_gemma_like_tokenizer()
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    assert eot not in tok.all_special_ids        # as in Gemma's GGUF tokenizer: a whole token, not a special one
    apply_chat_template(tok, "gemma")
    assert eot in tok.all_special_ids and len(tok) == 3200   # marked special, no new ids
    data = canonicalize([{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}],
                        source="test")
    row = tokenize_examples(data, tok, max_length=64)[0]
    trained = [i for i, label in zip(row["input_ids"], row["labels"]) if label != IGNORE_INDEX]
    assert tok.convert_ids_to_tokens(trained) == ["Y", "o", "<end_of_turn>"]
    assert row["input_ids"][0] == tok.bos_token_id


def test_auto_keeps_an_own_template_and_falls_back_or_uses_the_documented_default(monkeypatch):
    own = load_tokenizer(ModelArguments(model_name_or_path="tiny-llama"))
    assert own.chat_template == CHAT_TEMPLATE                                # the toy tokenizer's own
    base = load_tokenizer(ModelArguments(model_name_or_path="tiny-gemma3"))
    assert base.chat_template == ALPACA
    tok = build_gemma_like_tokenizer()
    choice = apply_chat_template(tok, "auto", default="gemma", model="gemma3-270m")
    assert choice == "gemma" and "documented default" in choice.reason and tok.chat_template == GEMMA
    assert offline.MODELS["gemma3-270m"].chat_template in ("gemma", "alpaca")


def test_every_tokenizing_command_says_in_one_line_which_template_and_why(capsys, monkeypatch):
    monkeypatch.setattr(models, "_ANNOUNCED", set())  # said once per process: start afresh
    main(["data", "--model_name_or_path", "tiny-gemma3", "--chat_template", "gemma", "--n_train", "4",
          "--n_test", "0"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "chat template" in line]
    assert lines == ["sftmix: chat template for tiny-gemma3: gemma (asked for)"]


def test_gemma_markers_on_a_vocabulary_without_them_exit_2_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model_name_or_path", "tiny-llama", "--chat_template", "gemma", "--n_train", "4",
              "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "<start_of_turn>" in err[-1] and "vocabulary lacks" in err[-1]
    assert not (tmp_path / "out").exists()


def test_a_template_that_renders_the_prompt_differently_exits_2_before_training(tmp_path, capsys):
    odd = tmp_path / "odd.jinja"  # the generation prompt opens "Answer:" but the conversation writes "A:"
    odd.write_text("{% for m in messages %}{{ ('A: ' if m['role'] == 'assistant' else 'Q: ') + m['content'] + '\\n' }}"
                   "{% endfor %}{% if add_generation_prompt %}Answer: {% endif %}")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model_name_or_path", "tiny-gemma3", "--chat_template", str(odd), "--n_train", "4",
              "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "renders the prompt differently inside the full conversation" in err and "odd.jinja" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="path of an existing Jinja file"):
        apply_chat_template(build_gemma_like_tokenizer(), str(tmp_path / "missing.jinja"))


def test_a_trained_model_keeps_its_template_and_stops_generating_at_end_of_turn(tmp_path, capsys):
    out = tmp_path / "gemma"
    main(["train", "--model_name_or_path", "tiny-gemma3", "--chat_template", "gemma", "--n_train", "8",
          "--max_steps", "1", "--per_device_train_batch_size", "4", "--output_dir", str(out)])
    saved = transformers.AutoTokenizer.from_pretrained(out)
    assert template_name(saved.chat_template) == "gemma"
    assert json.loads((out / "train_config.json").read_text())["chat_template"] == "gemma"
    capsys.readouterr()
    model, tok = load_model_and_tokenizer(ModelArguments(model_name_or_path=str(out)))   # eval's way: auto
    assert template_name(tok.chat_template) == "gemma"
    assert "chat template for " + str(out) + ": gemma (the template its tokenizer carries)" in capsys.readouterr().err
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    assert eot in model.generation_config.eos_token_id and tok.eos_token_id in model.generation_config.eos_token_id
