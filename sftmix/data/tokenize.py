"""Canonical examples -> token ids with labels on the assistant turns only.

:func:`tokenize_examples` renders each example with the tokenizer's chat template and
builds ``labels`` equal to ``input_ids`` on the trained tokens and ``IGNORE_INDEX``
(-100) elsewhere. In a multi-turn chat every assistant turn is trained (standard SFT);
``last_turn_only=True`` trains only the final one. The masks come from character offsets:
for each assistant turn the conversation is rendered up to the turn (with the generation
prompt) and including it, and the characters in between are that turn's; template markers
are never searched for.

Which tokens of an assistant turn are trained (the same rule as TRL's assistant-only loss):

* the turn's **content** (the message text, as the template renders it), and
* its **end-of-turn** token: the first special token the template puts after the content
  (``<|im_end|>`` in ChatML, ``<|eot_id|>`` in Llama 3, the eos of the fallback template),
  so the model learns to stop.

What the template adds after that (ChatML's ``"\n"`` after ``<|im_end|>``) is not trained:
it is the separator before the next turn, not part of the answer. The turn header
(``<|im_start|>assistant\n``), system and user turns are never trained. If a template puts
no special token after the content, the whole rest of the turn is trained.

``content_labels`` is ``labels`` without the end-of-turn tokens: the tokens that enter an
example's confidence by default (``confidence_tokens="content"``, see
:func:`sftmix.dynamics.scoring.score_rows`). Template tokens are nearly free for an instruct
model and would otherwise make up half of a short answer's scored tokens (measured on
SmolLM2's ChatML template: 50% of the built-in suite's trained tokens, 22% on Alpaca-like
data), sorting examples by answer length and template rather than by content.

Truncation policy: sequences longer than ``max_length`` lose tokens from the end (the
tail of the response). An example with no response token left is dropped; both counts
are reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import datasets

from ..constants import IGNORE_INDEX
from .formats import DataError
from .templates import ALPACA, end_of_turn_id, template_name

logger = logging.getLogger(__name__)

@dataclass
class TokenizeReport:
    """What tokenization did to the data."""
    kept: int = 0
    truncated: int = 0
    dropped_no_response: int = 0
    dropped_ids: list[str] = field(default_factory=list)


def render_conversation(tokenizer, messages: list[dict], *, add_generation_prompt: bool = False) -> str:
    """The conversation as the model sees it: the tokenizer's chat template, else :data:`~.templates.ALPACA`
    (``load_tokenizer`` sets the one ``chat_template`` chooses, see :mod:`sftmix.data.templates`)."""
    return tokenizer.apply_chat_template(messages, chat_template=getattr(tokenizer, "chat_template", None) or ALPACA,
                                         tokenize=False, add_generation_prompt=add_generation_prompt)


def default_system_prompt(tokenizer) -> str | None:
    """The text a chat template adds when the conversation has no system message, or None.

    SmolLM2's template, for one, opens every system-less conversation with
    ``<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging
    Face<|im_end|>\n``: that text is part of every prompt the model is trained and scored on.
    Found by rendering one user message with and without an explicit system message and
    comparing what comes before the user's text.
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    user, system = "\u2063user\u2063", "\u2063system\u2063"  # markers no template adds itself
    try:
        bare = render_conversation(tokenizer, [{"role": "user", "content": user}])
        given = render_conversation(tokenizer, [{"role": "system", "content": system},
                                                {"role": "user", "content": user}])
    except Exception:  # templates that reject a system role add none of their own either
        return None
    before_bare, before_given = bare[:bare.index(user)], given[:given.index(user)]
    header = before_given[before_given.index(system) + len(system):]  # system end + user header
    # The user header is the common suffix; what precedes it in the bare rendering was added.
    common = 0
    while common < min(len(before_bare), len(header)) and before_bare[-1 - common] == header[-1 - common]:
        common += 1
    added = before_bare[:len(before_bare) - common]
    prefix = before_given[:before_given.index(system)]  # e.g. a bos token, also there with a system message
    added = added[len(prefix):] if added.startswith(prefix) else added
    return added or None


def tokenizer_summary(tokenizer, name: str) -> str:
    """One paragraph on the tokenizer a report counted with: name, class, vocabulary, template,
    end-of-turn token and any default system prompt."""
    template = getattr(tokenizer, "chat_template", None)
    kind = {"none": "none (the fallback '### Instruction / ### Response' template)", "own": "the tokenizer's own",
            "chatml": "chatml (<|im_start|>role ... <|im_end|>)"}.get(template_name(template), template_name(template))
    if kind == "the tokenizer's own" and "<|im_start|>" in template:
        kind = "ChatML (<|im_start|>role ... <|im_end|>)"
    lines = [f"tokenizer: {name} ({type(tokenizer).__name__}, {len(tokenizer):,} tokens); chat template: {kind}; "
             f"end of turn: {_end_of_turn(tokenizer)!r}; padding: {tokenizer.pad_token!r}"]
    system = default_system_prompt(tokenizer)
    if system:
        lines.append(f"default system prompt (added to every conversation without one, and trained on as "
                     f"prompt): {system!r}")
    return "\n".join(lines)


def _end_of_turn(tokenizer) -> str | None:
    eot = end_of_turn_id(tokenizer)
    return tokenizer.convert_ids_to_tokens(eot) if eot is not None else tokenizer.eos_token


def render(tokenizer, messages: list[dict], response: str) -> tuple[str, str]:
    """Return (prompt text, prompt + response text) as the model will see them."""
    prompt = render_conversation(tokenizer, messages, add_generation_prompt=True)
    full = render_conversation(tokenizer, messages + [{"role": "assistant", "content": response}])
    if not full.startswith(prompt):
        raise DataError("the chat template renders the prompt differently inside the full conversation; "
                        "response masks cannot be built from offsets for this tokenizer")
    return prompt, full


def assistant_spans(tokenizer, messages: list[dict], response: str, *,
                    last_turn_only: bool = False) -> tuple[str, list[tuple[int, int, int]]]:
    """The rendered conversation and the character spans of its trained assistant turns.

    ``messages`` are the canonical prompt messages (earlier assistant turns included) and
    ``response`` the final assistant turn. Each span is ``(start, content_end, end)``: the
    turn runs from the end of the conversation rendered up to it with the generation prompt
    (``start``) to the end of it rendered including the turn (``end``); its content ends at
    ``content_end`` (the template's closing tokens follow). When the template does not
    render the content verbatim, ``content_end == end``.
    """
    conversation = messages + [{"role": "assistant", "content": response}]
    full = render_conversation(tokenizer, conversation)
    turns = [len(conversation) - 1] if last_turn_only else \
        [i for i, m in enumerate(conversation) if m["role"] == "assistant"]
    spans = []
    for i in turns:
        before = render_conversation(tokenizer, conversation[:i], add_generation_prompt=True)
        through = full if i == len(conversation) - 1 else render_conversation(tokenizer, conversation[:i + 1])
        if not (through.startswith(before) and full.startswith(through)):
            raise DataError(f"the chat template renders assistant turn {i} differently inside the full "
                            "conversation; response masks cannot be built from offsets for this tokenizer")
        start, end = len(before), len(through)
        spans.append((start, _content_end(full, conversation[i]["content"], start, end), end))
    return full, spans


def _content_end(full: str, content: str, start: int, end: int) -> int:
    """Where a turn's content ends in ``full`` (templates may strip it); ``end`` if it is not found."""
    for text in (content, content.strip()):
        at = full.find(text, start, end) if text else -1
        if at >= 0:
            return at + len(text)
    return end


def special_token_ids(tokenizer) -> set[int]:
    """Ids of the tokenizer's special tokens (eos, pad, chat markers, added special tokens)."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    for token_id, token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items():
        if getattr(token, "special", False):
            ids.add(int(token_id))
    return ids


def turn_labels(ids: list[int], offsets: list[tuple[int, int]], spans: list[tuple[int, int, int]],
                special: set[int]) -> tuple[list[int], list[int]]:
    """``(labels, content_labels)`` of one rendered conversation (see the module docstring).

    A token belongs to a turn when its first character lies in ``[start, end)``; to the
    content when it lies in ``[start, content_end)``. After the content, tokens are trained
    up to and including the first special token (the end-of-turn marker); if there is none,
    all of them are.
    """
    labels = [IGNORE_INDEX] * len(ids)
    content = [IGNORE_INDEX] * len(ids)
    for start, content_end, end in spans:
        inside = [k for k, (a, _b) in enumerate(offsets) if start <= a < end]
        tail = [k for k in inside if offsets[k][0] >= content_end]
        closing = next((j for j, k in enumerate(tail) if ids[k] in special), None)
        trained_tail = set(tail if closing is None else tail[:closing + 1])
        for k in inside:
            if offsets[k][0] < content_end:
                labels[k] = content[k] = ids[k]
            elif k in trained_tail:
                labels[k] = ids[k]
    return labels, content


def _tokenize_batch(batch, tokenizer, max_length, last_turn_only=False):
    out = {"input_ids": [], "labels": [], "content_labels": [], "length": [], "n_truncated": [], "keep": []}
    special = special_token_ids(tokenizer)
    for messages, response in zip(batch["messages"], batch["response"]):
        full, spans = assistant_spans(tokenizer, messages, response, last_turn_only=last_turn_only)
        enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        labels, content = turn_labels(ids, offsets, spans, special)
        truncated = len(ids) > max_length
        ids, labels, content = ids[:max_length], labels[:max_length], content[:max_length]
        out["input_ids"].append(ids)
        out["labels"].append(labels)
        out["content_labels"].append(content)
        out["length"].append(len(ids))
        out["n_truncated"].append(truncated)
        # Position 0 is never a prediction target, so a response token must sit at t >= 1.
        out["keep"].append(any(label != IGNORE_INDEX for label in content[1:]))
    return out


def tokenize_examples(examples: datasets.Dataset, tokenizer, *, max_length: int = 512,
                      num_proc: int | None = None, return_report: bool = False, last_turn_only: bool = False):
    """Tokenize canonical examples with labels on every assistant turn (or the last one only).

    Returns a ``datasets.Dataset`` with ``input_ids``, ``labels`` (``IGNORE_INDEX`` on untrained
    tokens), ``content_labels`` (``labels`` without the end-of-turn tokens), ``length``,
    ``example_index`` (row in the returned dataset, used to key per-example
    statistics during training) and the metadata columns. With ``return_report=True``
    also returns a :class:`TokenizeReport`.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")
    drop = [c for c in ("messages", "response") if c in examples.column_names]
    tokenized = examples.map(_tokenize_batch, batched=True, num_proc=num_proc,
                             fn_kwargs={"tokenizer": tokenizer, "max_length": max_length,
                                        "last_turn_only": last_turn_only},
                             desc="Tokenizing")
    report = TokenizeReport(truncated=int(sum(tokenized["n_truncated"])))
    keep = tokenized["keep"]
    report.dropped_ids = [eid for eid, k in zip(tokenized["example_id"], keep) if not k]
    report.dropped_no_response = len(report.dropped_ids)
    if report.dropped_no_response:
        logger.warning("dropped %d examples with no response token left after truncation to %d tokens",
                       report.dropped_no_response, max_length)
        tokenized = tokenized.filter(lambda k: k, input_columns="keep")
    if report.truncated:
        logger.info("truncated %d examples to max_length=%d", report.truncated, max_length)
    tokenized = tokenized.remove_columns(drop + ["n_truncated", "keep"])
    # Added as whole columns: a per-row map here cost half the tokenization time at 200k rows.
    tokenized = tokenized.add_column("example_index", list(range(len(tokenized))))
    report.kept = len(tokenized)
    return (tokenized, report) if return_report else tokenized
