"""Chat templates for models that have none (base models), chosen by name.

The ``chat_template`` setting (``--chat_template``, ``model: {chat_template: ...}`` in an
experiment YAML, ``ModelArguments(chat_template=...)``) picks how conversations are rendered:

* ``auto``: the tokenizer's own template; a model without one gets its documented default
  (``gemma3-270m``: see :data:`sftmix.offline.MODELS`) or else ``alpaca``;
* ``alpaca``: ``### Instruction:`` / ``### Response:`` blocks, the answer closed by eos;
* ``chatml``: ``<|im_start|>role`` ... ``<|im_end|>`` turns;
* ``gemma``: the Gemma family's turn markers ``<start_of_turn>user`` / ``<start_of_turn>model``
  ... ``<end_of_turn>`` after ``<bos>`` (a system message opens the first user turn); only for a
  vocabulary that holds both markers as single tokens;
* a path to a Jinja file.

:func:`apply_chat_template` sets the chosen template on the tokenizer, so everything downstream
(tokenization, scoring, generation, ``save_pretrained``) renders the same way and a trained model
carries the template it was trained with. It first checks that the template renders a prompt
the same way alone and inside the full conversation (response masks are built from that
prefix): a template that does not is a :class:`~sftmix.errors.ConfigError` before anything trains.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

__all__ = ["ALPACA", "CHATML", "GEMMA", "TEMPLATES", "TemplateChoice", "apply_chat_template", "check_template",
           "end_of_turn_id", "template_name"]

# Each run of non-assistant messages becomes one instruction block; the answer ends with eos.
ALPACA = (
    "{%- set ns = namespace(pending=[]) -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '### Instruction:\\n' + ns.pending | join('\\n\\n') + '\\n\\n### Response:\\n' + message['content']"
    " + (eos_token or '') }}"
    "{%- set ns.pending = [] -%}"
    "{%- else -%}{%- set ns.pending = ns.pending + [message['content']] -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '### Instruction:\\n' + ns.pending | join('\\n\\n') + '\\n\\n### Response:\\n' }}"
    "{%- endif -%}"
)

CHATML = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# Gemma has two roles, user and model; a system message's text opens the next user turn.
GEMMA = (
    "{{ bos_token or '' }}"
    "{%- set ns = namespace(system='') -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{%- set ns.system = ns.system + message['content'] + '\\n\\n' -%}"
    "{%- else -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (ns.system if role == 'user' else '') + message['content']"
    " + '<end_of_turn>\\n' }}"
    "{%- if role == 'user' -%}{%- set ns.system = '' -%}{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

#: Named templates and the tokens each needs in the vocabulary.
TEMPLATES = {"alpaca": (ALPACA, ()), "chatml": (CHATML, ()),
             "gemma": (GEMMA, ("<start_of_turn>", "<end_of_turn>"))}
_PROBE = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
          {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another one?"}]


class TemplateChoice(str):
    """The template's name plus why it was chosen (``str`` is the name)."""

    reason: str = ""


def template_name(template: str | None) -> str:
    """The registry name of a template text, ``'own'`` for another one, ``'none'`` when unset."""
    if not template:
        return "none"
    return next((name for name, (text, _) in TEMPLATES.items() if text == template), "own")


def _template_text(choice: str) -> tuple[str, tuple[str, ...]]:
    if choice in TEMPLATES:
        return TEMPLATES[choice]
    path = Path(choice)
    if path.suffix.lower() not in (".jinja", ".j2", ".jinja2", ".txt") or not path.is_file():
        raise ConfigError(f"chat_template={choice!r}: choose auto, {', '.join(TEMPLATES)} or the path of an "
                          "existing Jinja file (.jinja)")
    return path.read_text(), ()


def apply_chat_template(tokenizer, choice: str = "auto", *, default: str | None = None,
                        model: str = "the model") -> TemplateChoice:
    """Set the chosen template on ``tokenizer``; return its name with the reason (see the module docstring).

    ``default`` is the model's documented template for ``auto`` when the tokenizer has none.
    """
    own = getattr(tokenizer, "chat_template", None)
    if choice == "auto":
        if own:
            name = TemplateChoice(template_name(own))
            name.reason = "the template its tokenizer carries"
            check_template(tokenizer, f"{model}'s chat template")
            return name
        choice = default or "alpaca"
        why = f"auto: {model} has no chat template; " + \
            (f"{choice} is its documented default" if default else "the fallback for base models")
    else:
        why = "asked for" + (f", replacing {model}'s own template" if own else "")
    text, needed = _template_text(choice)
    vocab = tokenizer.get_vocab()
    missing = [t for t in needed if t not in vocab]
    if missing:
        raise ConfigError(f"chat_template={choice!r} needs the tokens {', '.join(missing)}, which {model}'s "
                          f"vocabulary lacks; choose auto, alpaca or chatml")
    # Gemma's GGUF tokenizer holds the markers as ordinary added tokens: marked special here (no new ids),
    # the end-of-turn marker is trained as the answer's last token and generation stops there.
    unmarked = [t for t in needed if t not in set(tokenizer.all_special_tokens)]
    if unmarked:
        size = len(tokenizer)
        tokenizer.add_special_tokens({"additional_special_tokens": unmarked}, False)
        assert len(tokenizer) == size, "marking existing tokens special must not grow the vocabulary"
    tokenizer.chat_template = text
    check_template(tokenizer, f"chat_template={choice!r}")
    name = TemplateChoice(choice if choice in TEMPLATES else Path(choice).name)
    name.reason = why
    return name


def check_template(tokenizer, what: str) -> None:
    """ConfigError when the template renders a prompt differently alone than inside the conversation."""
    probes = [_PROBE[1:3], _PROBE[1:], _PROBE[:2], _PROBE]  # without and with a system message
    rendered = 0
    for messages in probes:
        try:
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": "Red."}],
                                                 tokenize=False)
        except Exception as exc:  # a Jinja error, or a template that refuses a system message
            if messages[0]["role"] == "system" and rendered:
                continue
            raise ConfigError(f"{what}: the template fails on a user/assistant conversation "
                              f"({' '.join(str(exc).split())})") from None
        rendered += 1
        if not full.startswith(prompt):
            raise ConfigError(f"{what}: the template renders the prompt differently inside the full conversation "
                              f"(the prompt ends {prompt[-30:]!r}, the conversation has "
                              f"{full[max(0, len(prompt) - 30):len(prompt)]!r} there), so the trained answer "
                              "tokens cannot be found; fix the template or choose another")


def end_of_turn_id(tokenizer) -> int | None:
    """The special token that closes an assistant turn in the tokenizer's template (``<end_of_turn>``,
    ``<|im_end|>``, eos), or None: generation stops there as well as at eos."""
    answer = "Blue."
    messages = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": answer}]
    try:
        full = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # no usable template: nothing to add to eos
        return None
    tail = full[full.rindex(answer) + len(answer):]
    ids = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail else []
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    return ids[0] if ids and ids[0] in special else None
