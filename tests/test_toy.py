"""The offline tokenizer and tiny models: round trips and the chat template."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sftmix.toy import FAMILIES, build_tiny_model


def test_tokenizer_round_trip(tmp_path, tokenizer):
    text = "Reverse 'cat'! 12 + 3 = 15"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)                      # one token per character
    assert tokenizer.decode(ids) == text
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text, add_special_tokens=False)["input_ids"] == ids
    assert (again.pad_token, again.eos_token) == (tokenizer.pad_token, tokenizer.eos_token)
    messages = [{"role": "user", "content": "hi"}]
    rendered = again.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|user|>hi<|end|><|assistant|>"


def test_role_markers_are_single_tokens(tokenizer):
    ids = tokenizer("<|user|>a<|end|>", add_special_tokens=False)["input_ids"]
    assert len(ids) == 3 and ids[-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_round_trip(tmp_path, tokenizer, family):
    model = build_tiny_model(family, tokenizer=tokenizer, hidden_size=32, num_heads=2, seed=3)
    assert model.config.vocab_size == len(tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 200_000
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    x = torch.randint(8, len(tokenizer), (2, 12))
    with torch.no_grad():
        assert torch.allclose(model.eval()(input_ids=x).logits, loaded(input_ids=x).logits, atol=1e-6)


def test_same_seed_same_weights_other_seed_differs(tokenizer):
    a, b, c = (build_tiny_model("llama", tokenizer=tokenizer, seed=s) for s in (0, 0, 1))
    wa, wb, wc = (m.get_output_embeddings().weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_bad_arguments(tokenizer):
    with pytest.raises(ValueError, match="unknown model family"):
        build_tiny_model("bert", tokenizer=tokenizer)
    with pytest.raises(ValueError, match="divisible"):
        build_tiny_model("llama", tokenizer=tokenizer, hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="vocab_size or tokenizer"):
        build_tiny_model("llama")
