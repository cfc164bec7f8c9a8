"""Tiny randomly initialised causal LMs built from a config (nothing is downloaded).

The demo, tests and notebooks train these on a CPU. Several families are available so
that tests can check that the SFTMix head pass matches each family's own logits
(Gemma-2, for example, soft-caps its logits). ``tiny-gemma3`` is Gemma 3 270M's architecture
(``Gemma3ForCausalLM``) at CPU size with its own Gemma-like tokenizer
(:func:`~sftmix.toy.tokenizer.build_gemma_like_tokenizer`): a second family with a second tokenizer.
"""

from __future__ import annotations

import torch
import transformers

FAMILIES = ("llama", "mistral", "qwen2", "gemma", "gemma2", "gemma3", "gpt2")


def _config(family: str, *, vocab_size: int, hidden_size: int, num_layers: int,
            num_heads: int, max_position: int, pad_token_id: int | None,
            bos_token_id: int | None, eos_token_id: int | None):
    special = dict(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id)
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=vocab_size, n_embd=hidden_size, n_layer=num_layers, n_head=num_heads,
            n_positions=max_position, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **special)
    common = dict(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2), max_position_embeddings=max_position,
        tie_word_embeddings=family.startswith("gemma"), **special)
    if family == "llama":
        return transformers.LlamaConfig(**common)
    if family == "mistral":
        return transformers.MistralConfig(**common, sliding_window=None)
    if family == "qwen2":
        return transformers.Qwen2Config(**common)
    if family == "gemma":
        return transformers.GemmaConfig(**common, head_dim=hidden_size // num_heads)
    if family == "gemma2":
        # Small soft-cap so the cap visibly changes logits in tests.
        return transformers.Gemma2Config(**common, head_dim=hidden_size // num_heads,
                                         final_logit_softcapping=5.0, query_pre_attn_scalar=16,
                                         sliding_window=max_position)
    if family == "gemma3":
        # Gemma 3 text (Gemma3ForCausalLM): local sliding-window and global layers, tied embeddings.
        return transformers.Gemma3TextConfig(
            **common, head_dim=hidden_size // num_heads, query_pre_attn_scalar=hidden_size // num_heads,
            sliding_window=max(8, max_position // 4),
            layer_types=["sliding_attention" if (k + 1) % 2 else "full_attention" for k in range(num_layers)])
    raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")


def build_tiny_model(family: str = "llama", *, vocab_size: int | None = None, tokenizer=None,
                     hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                     max_position: int = 256, seed: int = 0) -> transformers.PreTrainedModel:
    """Return a randomly initialised causal LM of the given family, sized for a CPU.

    Parameters
    ----------
    family : one of ``FAMILIES``.
    vocab_size : vocabulary size; taken from ``tokenizer`` when omitted.
    tokenizer : sets the vocabulary size and the pad/bos/eos ids.
    hidden_size, num_layers, num_heads, max_position : model size.
    seed : initialisation seed (the same seed gives the same weights).
    """
    if vocab_size is None:
        if tokenizer is None:
            raise ValueError("build_tiny_model needs vocab_size or tokenizer")
        vocab_size = len(tokenizer)
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
    ids = {k: getattr(tokenizer, k, None) for k in ("pad_token_id", "bos_token_id", "eos_token_id")}
    config = _config(family, vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers,
                     num_heads=num_heads, max_position=max_position, **ids)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(config)
    if model.generation_config is not None and ids["pad_token_id"] is not None:
        model.generation_config.pad_token_id = ids["pad_token_id"]
    return model
