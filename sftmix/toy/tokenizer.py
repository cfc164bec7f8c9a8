"""An offline character-level tokenizer with a chat template.

The built-in task suite is printable ASCII, so one token per character keeps the
vocabulary tiny (about 100 entries) and needs nothing from a model hub. It is a real
``PreTrainedTokenizerFast``: chat templates, padding, offsets and
``save_pretrained``/``from_pretrained`` behave as they do for any Hugging Face model.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models
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
