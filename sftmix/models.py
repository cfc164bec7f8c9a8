"""Load the model and tokenizer named by :class:`sftmix.config.ModelArguments`.

What ``model_name_or_path`` may be, resolved here and nowhere else (:func:`resolve_model_path`):

* ``tiny-base``: the shipped pretrained tiny base (:mod:`sftmix.toy.base`);
* ``tiny-<family>``: a random CPU-sized model with the built-in tokenizer (``tiny-gemma3``: a Gemma-like one);
* a named offline real model (``smollm2-135m``, ``gemma3-270m``, :mod:`sftmix.offline`), a ``.gguf`` file or
  a folder holding one: converted once into a cached float32 safetensors folder
  (:mod:`sftmix.convert`), then loaded like any local folder;
* a LoRA adapter folder (``adapter_config.json``): its base model with the trained adapter
  loaded on top (never a fresh adapter wrapped around it);
* any other local folder or Hub name, loaded with ``from_pretrained`` (safetensors only,
  remote code only when asked for).

:func:`load_tokenizer` also sets the chat template that ``chat_template`` chooses
(:mod:`sftmix.data.templates`) and says once per process, in one line, which one and why.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch
import transformers

from .config import ModelArguments
from .convert import converted_model_dir, find_gguf
from .data.templates import apply_chat_template, end_of_turn_id
from .errors import ConfigError
from .io import require_weights
from .offline import MODELS, artefact_file
from .toy.base import BASE_NAME, load_base_model
from .toy.model import FAMILIES, build_tiny_model
from .toy.tokenizer import build_toy_tokenizer, tiny_tokenizer

logger = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def is_tiny(name: str) -> bool:
    return name.startswith("tiny-")


#: Written beside a trained LoRA adapter: the ModelArguments of its base, so it can be rebuilt
#: (a tiny random base has no name on the Hub).
ADAPTER_BASE_FILE = "sftmix_adapter_base.json"


def resolve_model_path(name: str, *, progress: bool = True) -> str:
    """A loadable name or folder for ``name``: named offline models and GGUF files become their
    converted cache folder; other names are returned unchanged."""
    if name in MODELS:
        return str(converted_model_dir(artefact_file(MODELS[name]), name=name, progress=progress))
    if is_tiny(name):
        return name
    gguf = find_gguf(name) if Path(name).suffix.lower() == ".gguf" or Path(name).is_dir() else None
    return str(converted_model_dir(gguf, progress=progress)) if gguf is not None else name


def adapter_base(path: str) -> ModelArguments | None:
    """The base model of a LoRA adapter folder (None when ``path`` is not one)."""
    folder = Path(path)
    if not (folder / "adapter_config.json").exists():
        return None
    if (folder / ADAPTER_BASE_FILE).exists():
        return ModelArguments(**json.loads((folder / ADAPTER_BASE_FILE).read_text()))
    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise ConfigError(f"{folder} is a LoRA adapter whose base model is not recorded "
                          "(adapter_config.json has no base_model_name_or_path)")
    return ModelArguments(model_name_or_path=base)


_ANNOUNCED: set[tuple[str, str]] = set()


def load_tokenizer(args: ModelArguments):
    """The tokenizer, with the chat template ``args.chat_template`` chooses (one line on stderr says which)."""
    name = args.tokenizer_name_or_path or args.model_name_or_path
    base = adapter_base(name) if not is_tiny(name) and args.tokenizer_name_or_path is None else None
    if base is not None and not (Path(name) / "tokenizer_config.json").exists():
        return load_tokenizer(base)
    if is_tiny(name):
        tok = tiny_tokenizer(name[len("tiny-"):]) if name != BASE_NAME else build_toy_tokenizer()
    else:
        tok = transformers.AutoTokenizer.from_pretrained(resolve_model_path(name),
                                                         trust_remote_code=args.trust_remote_code)
        if tok.pad_token is None:
            # Padding positions are masked out of every loss, so reusing eos for padding is safe.
            tok.pad_token = tok.eos_token
        tok.padding_side = "right"
    default = MODELS[name].chat_template if name in MODELS else None
    choice = apply_chat_template(tok, args.chat_template, default=default, model=name)
    if (name, choice) not in _ANNOUNCED:  # once per process, however many stages load it
        _ANNOUNCED.add((name, choice))
        print(f"sftmix: chat template for {name}: {choice} ({choice.reason})", file=sys.stderr, flush=True)
    return tok


def load_model(args: ModelArguments, tokenizer=None) -> torch.nn.Module:
    """The causal LM, wrapped with fresh LoRA adapters when ``args.use_lora`` (for training).

    An adapter folder loads its base and that adapter (trainable only when ``use_lora``). Given the
    tokenizer, generation also stops at its template's end-of-turn token (:func:`stop_at_end_of_turn`).
    """
    name = args.model_name_or_path
    base = adapter_base(name) if not is_tiny(name) else None
    if base is not None:
        return load_adapter(name, base, args, tokenizer, trainable=args.use_lora)
    if name == BASE_NAME:
        model = load_base_model(dtype=_DTYPES[args.torch_dtype])
    elif is_tiny(name):
        family = name[len("tiny-"):]
        if family not in FAMILIES:
            raise ValueError(f"unknown tiny model {name!r}; choose {BASE_NAME} (the shipped pretrained base) "
                             "or a random one of " + ", ".join(f"tiny-{f}" for f in FAMILIES))
        model = build_tiny_model(family, tokenizer=tokenizer or tiny_tokenizer(family),
                                 hidden_size=args.tiny_hidden_size, num_layers=args.tiny_layers,
                                 num_heads=args.tiny_heads, seed=args.model_seed)
    else:
        require_weights(name)  # a trained run's folder whose weights keep_weights: reference removed
        model = transformers.AutoModelForCausalLM.from_pretrained(
            resolve_model_path(name), dtype=_DTYPES[args.torch_dtype], trust_remote_code=args.trust_remote_code,
            use_safetensors=True)
    if tokenizer is not None:
        stop_at_end_of_turn(model, tokenizer)
    if args.use_lora:
        model = add_lora(model, args)
        model.sftmix_base_args = {k: v for k, v in vars(args).items() if k != "use_lora"}
    return model


def _import_peft():
    try:
        import peft
    except ImportError as exc:  # optional dependency
        raise ImportError("LoRA needs peft: pip install 'sftmix[lora]' (or pip install peft)") from exc
    return peft


def load_adapter(path: str, base: ModelArguments, args: ModelArguments | None = None, tokenizer=None, *,
                 trainable: bool = False):
    """A trained LoRA adapter folder on its base model (``PeftModel.from_pretrained``)."""
    peft = _import_peft()
    settings = {k: v for k, v in vars(base).items() if k not in ("use_lora",)}
    if args is not None:  # the dtype asked for now wins over the one the adapter was trained with
        settings["torch_dtype"] = args.torch_dtype
    model = load_model(ModelArguments(**{**settings, "use_lora": False}), tokenizer)
    return peft.PeftModel.from_pretrained(model, path, is_trainable=trainable)


def add_lora(model, args: ModelArguments):
    peft = _import_peft()
    targets = args.lora_target_modules
    config = peft.LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, task_type="CAUSAL_LM",
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",")])
    # Fresh adapters are drawn from their own seed: the global RNG's state depends on whatever ran
    # before in the process, so the same command could otherwise start from other adapter weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.model_seed)
        model = peft.get_peft_model(model, config)
    # Needed when gradient checkpointing is on: the frozen embeddings would otherwise
    # cut the graph before the first adapter.
    model.enable_input_require_grads()
    return model


def load_model_and_tokenizer(args: ModelArguments):
    tokenizer = load_tokenizer(args)
    return load_model(args, tokenizer), tokenizer


def stop_at_end_of_turn(model, tokenizer) -> None:
    """Make generation stop at the template's end-of-turn token too (``<end_of_turn>`` for the gemma
    template on a base model, whose generation config knows only ``<eos>``); saved with the model."""
    config = getattr(model, "generation_config", None)
    eot = end_of_turn_id(tokenizer)
    if config is None or eot is None:
        return
    stops = config.eos_token_id if isinstance(config.eos_token_id, list) else \
        [config.eos_token_id] if config.eos_token_id is not None else []
    if eot not in stops:
        config.eos_token_id = [*stops, eot]
