"""Load the model and tokenizer named by :class:`sftmix.config.ModelArguments`.

``tiny-base`` loads the shipped pretrained tiny base (:mod:`sftmix.toy.base`);
``tiny-<family>`` builds a random CPU-sized model with the built-in tokenizer; anything
else is a local path or Hub name loaded with ``from_pretrained`` (safetensors only,
remote code only when asked for).
"""

from __future__ import annotations

import logging

import torch
import transformers

from .config import ModelArguments
from .toy.base import BASE_NAME, load_base_model
from .toy.model import FAMILIES, build_tiny_model
from .toy.tokenizer import build_toy_tokenizer

logger = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def is_tiny(name: str) -> bool:
    return name.startswith("tiny-")


def load_tokenizer(args: ModelArguments):
    name = args.tokenizer_name_or_path or args.model_name_or_path
    if is_tiny(name):
        return build_toy_tokenizer()
    tok = transformers.AutoTokenizer.from_pretrained(name, trust_remote_code=args.trust_remote_code)
    if tok.pad_token is None:
        # Padding positions are masked out of every loss, so reusing eos for padding is safe.
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def load_model(args: ModelArguments, tokenizer=None) -> torch.nn.Module:
    """The causal LM, wrapped with LoRA adapters when ``args.use_lora``."""
    name = args.model_name_or_path
    if name == BASE_NAME:
        model = load_base_model(dtype=_DTYPES[args.torch_dtype])
    elif is_tiny(name):
        family = name[len("tiny-"):]
        if family not in FAMILIES:
            raise ValueError(f"unknown tiny model {name!r}; choose {BASE_NAME} (the shipped pretrained base) "
                             "or a random one of " + ", ".join(f"tiny-{f}" for f in FAMILIES))
        model = build_tiny_model(family, tokenizer=tokenizer or build_toy_tokenizer(),
                                 hidden_size=args.tiny_hidden_size, num_layers=args.tiny_layers,
                                 num_heads=args.tiny_heads, seed=args.model_seed)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            name, dtype=_DTYPES[args.torch_dtype], trust_remote_code=args.trust_remote_code,
            use_safetensors=True)
    if args.use_lora:
        model = add_lora(model, args)
    return model


def add_lora(model, args: ModelArguments):
    try:
        import peft
    except ImportError as exc:  # optional dependency
        raise ImportError("LoRA needs peft: pip install 'sftmix[lora]' (or pip install peft)") from exc
    targets = args.lora_target_modules
    config = peft.LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, task_type="CAUSAL_LM",
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")])
    model = peft.get_peft_model(model, config)
    # Needed when gradient checkpointing is on: the frozen embeddings would otherwise
    # cut the graph before the first adapter.
    model.enable_input_require_grads()
    return model


def load_model_and_tokenizer(args: ModelArguments):
    tokenizer = load_tokenizer(args)
    return load_model(args, tokenizer), tokenizer
