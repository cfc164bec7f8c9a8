"""Greedy generation in left-padded, length-sorted batches: single prompts and multi-turn chats.

Every answer sftmix generates (held-out answers, MT-Bench's two turns, verifiable-instruction
prompts) goes through :func:`generate_texts`: prompts are rendered with the model's chat template
(or sftmix's fallback template, :func:`sftmix.data.tokenize.render_conversation`), sorted by token
length so a batch holds prompts of similar length (little padding), padded on the left so every
row's next token sits in the last column, and decoded greedily until the end-of-turn token or
``max_new_tokens``. ``batch_size=1`` is one-prompt-at-a-time ``generate`` (the reference the
batched answers are tested against).

:func:`generate_chat_turns` answers multi-turn questions turn by turn: turn ``k`` is asked after
the model's *own* answers to turns ``1..k-1`` (MT-Bench's protocol), each turn batched the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.tokenize import render_conversation

__all__ = ["DEFAULT_MAX_NEW_TOKENS", "Generations", "generate_chat_turns", "generate_responses", "generate_texts",
           "stop_ids"]

#: Greedy generation budget: long enough for open-ended chat answers (a judge export must not
#: hold answers cut mid-sentence); generations that reach it are counted in the results.
DEFAULT_MAX_NEW_TOKENS = 512


@dataclass
class Generations:
    """Greedy answers to a list of prompts, in the prompts' order."""

    texts: list[str] = field(default_factory=list)
    cut: list[bool] = field(default_factory=list)          # used all max_new_tokens without ending the turn
    n_tokens: list[int] = field(default_factory=list)      # generated tokens, end-of-turn token included


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def stop_ids(model, tokenizer) -> list[int]:
    """The tokens that end an answer: the tokenizer's eos and every stop token of the model's generation
    config (e.g. a template's end-of-turn token that differs from eos)."""
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None) if config is not None else None
    extra = extra if isinstance(extra, list) else [] if extra is None else [extra]
    return list(dict.fromkeys([i for i in [tokenizer.eos_token_id, *extra] if i is not None]))


@torch.inference_mode()
def generate_texts(model, tokenizer, prompts: list[str], *, batch_size: int = 64,
                   max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, progress: bool = True) -> Generations:
    """Greedy continuations of already rendered ``prompts`` (see the module docstring)."""
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"batch_size and max_new_tokens must be >= 1, got {batch_size} and {max_new_tokens}")
    device = next(model.parameters()).device
    pad, stops = _pad_id(tokenizer), stop_ids(model, tokenizer)
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    out = Generations([""] * len(prompts), [False] * len(prompts), [0] * len(prompts))
    order = np.argsort([len(e) for e in encoded], kind="stable")
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc="Generating", disable=not progress, leave=False):
            rows = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            attention = torch.zeros_like(ids)
            for j, i in enumerate(rows):
                ids[j, width - len(encoded[i]):] = torch.as_tensor(encoded[i])
                attention[j, width - len(encoded[i]):] = 1
            generated = model.generate(input_ids=ids.to(device), attention_mask=attention.to(device),
                                       do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=stops,
                                       pad_token_id=pad)
            for j, i in enumerate(rows):
                new = generated[j, width:].tolist()
                end = next((k for k, t in enumerate(new) if t in stops), None)
                ended = end is not None
                new = new[:end + 1] if ended else new
                out.texts[i] = tokenizer.decode(new, skip_special_tokens=True)
                out.cut[i] = not ended and len(new) >= max_new_tokens
                out.n_tokens[i] = len(new)
    finally:
        model.train(was_training)
    return out


def generate_responses(model, tokenizer, examples, *, batch_size: int = 64,
                       max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, progress: bool = True,
                       return_hit_limit: bool = False):
    """Greedy responses for canonical examples (``examples["messages"]`` are the prompts).

    With ``return_hit_limit`` also returns, per example, whether the generation used all
    ``max_new_tokens`` tokens without producing the end-of-turn token (it was cut).
    """
    prompts = [render_conversation(tokenizer, m, add_generation_prompt=True) for m in examples["messages"]]
    gens = generate_texts(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                          progress=progress)
    return (gens.texts, gens.cut) if return_hit_limit else gens.texts


def generate_chat_turns(model, tokenizer, user_turns: list[list[str]], *, batch_size: int = 64,
                        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, system: str | None = None,
                        progress: bool = True) -> list[Generations]:
    """Answer multi-turn questions turn by turn; returns one :class:`Generations` per turn.

    ``user_turns[q]`` are question ``q``'s user messages. Turn ``k``'s prompt is the conversation of
    the user's turns ``1..k`` and the model's own answers to turns ``1..k-1``. Questions with fewer
    turns drop out of the later turns (their entries there are empty and not cut).
    """
    n_turns = max((len(t) for t in user_turns), default=0)
    history = [[{"role": "system", "content": system}] if system else [] for _ in user_turns]
    per_turn = []
    for k in range(n_turns):
        asked = [q for q, turns in enumerate(user_turns) if len(turns) > k]
        for q in asked:
            history[q].append({"role": "user", "content": user_turns[q][k]})
        prompts = [render_conversation(tokenizer, history[q], add_generation_prompt=True) for q in asked]
        gens = generate_texts(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                              progress=progress)
        turn = Generations([""] * len(user_turns), [False] * len(user_turns), [0] * len(user_turns))
        for j, q in enumerate(asked):
            turn.texts[q], turn.cut[q], turn.n_tokens[q] = gens.texts[j], gens.cut[j], gens.n_tokens[j]
            history[q].append({"role": "assistant", "content": gens.texts[j]})
        per_turn.append(turn)
    return per_turn
