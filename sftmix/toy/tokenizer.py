"""Offline character-level tokenizers: the toy one with a chat template, and a Gemma-like one without.

The built-in task suite is printable ASCII, so one token per character keeps the
vocabulary tiny (about 100 entries) and needs nothing from a model hub. It is a real
``PreTrainedTokenizerFast``: chat templates, padding, offsets and
``save_pretrained``/``from_pretrained`` behave as they do for any Hugging Face model.

:func:`build_gemma_like_tokenizer` is the tokenizer of ``tiny-gemma3``: like Gemma 3's base
model it has ``<pad>``/``<eos>``/``<bos>``/``<unk>`` at ids 0-3, the turn markers
``<start_of_turn>``/``<end_of_turn>`` in its vocabulary and **no chat template**; unused tokens
fill the vocabulary up to :data:`GEMMA_LIKE_VOCAB` so that the tied output head is as large a
share of a tiny model as Gemma 3 270M's 262,144 x 640 head is of it (62.6%).
"""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<s>", "<|end|>", "<unk>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

# Each message is "<|role|>content<|end|>"; a generation prompt opens the assistant turn.
# The response the model learns is therefore "answer<|end|>", so it also learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


#: tiny-gemma3's vocabulary: its tied head is 62.4% of a 64-wide, 2-layer model (Gemma 3 270M: 62.6%).
GEMMA_LIKE_VOCAB = 3200
GEMMA_TURN_TOKENS = ("<start_of_turn>", "<end_of_turn>")


def build_gemma_like_tokenizer(model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """A character-level tokenizer shaped like Gemma 3 base's: its special tokens and turn markers, no
    chat template, :data:`GEMMA_LIKE_VOCAB` tokens (ASCII characters, then ``<unused_k>`` fillers)."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", *GEMMA_TURN_TOKENS]
    chars = [chr(c) for c in range(32, 127)] + ["\n", "\t"]
    fill = [f"<unused{k}>" for k in range(GEMMA_LIKE_VOCAB - len(specials) - len(chars))]
    vocab = {tok: i for i, tok in enumerate(specials + chars + fill)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        model_max_length=model_max_length, padding_side="right")
    # As in Gemma's GGUF tokenizer: the markers are whole tokens but not special ones.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in GEMMA_TURN_TOKENS])
    return tok


def build_toy_tokenizer(model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Return a character-level tokenizer covering printable ASCII.

    Special tokens: ``<pad>`` (padding), ``<s>`` (bos), ``<|end|>`` (eos, closes each
    chat turn), ``<unk>`` and the role markers used by the chat template.
    """
    specials = [PAD, BOS, EOS, UNK, *ROLE_TOKENS]
    chars = [chr(c) for c in range(32, 127)] + ["\n", "\t"]
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    # A BPE model without merges splits text into single characters; Fuse joins them back.
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=model_max_length,
        padding_side="right",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """The tokenizer of ``tiny-<family>``: Gemma-like for ``gemma3``, the toy one otherwise."""
    return build_gemma_like_tokenizer() if family == "gemma3" else build_toy_tokenizer()
