"""ShareGPT conversations to canonical examples, repaired the way the ecosystem repairs them, visibly.

A ShareGPT record is ``{"id": ..., "conversations": [{"from": ..., "value": ...}, ...]}`` (in a
JSON array, JSON Lines or parquet). Roles: ``human``/``user`` -> user, ``gpt``/``assistant`` ->
assistant, ``system`` -> system. The last kept assistant turn is the response; the turns before it
are the prompt ``messages``; any other key of the record is a metadata column.

Real exports are messy (Vicuna's ShareGPT V3, what LLaMA-Factory, Axolotl and FastChat users
train on). The default policy removes whole turns or whole conversations and never edits text,
so what is kept trains exactly the text of the file. Every repair is counted by reason in the
:class:`~sftmix.data.report.DataReport`; with ``strict=True`` each one is instead a
:class:`~sftmix.data.canonical.DataError` naming file, row, turn and field.

The checks run in the order of :data:`DROPS` and :data:`TRIMS`: the structural checks look at
the whole conversation, then the trims, then the checks of what is left. A dropped
conversation is counted under the first reason that drops it; a kept one may be trimmed at both
ends. ``max_exchanges`` (see :func:`~sftmix.data.canonical.cut_exchanges`) cuts only after
this policy, so the counts do not depend on it.

On the packaged ShareGPT V3 file (``--dataset sharegpt``: 17,671 complete records before the
cut) the policy keeps 17,284 and drops 126 empty conversations, 11 with chatgpt/bing/bard turns,
73 with a speaker twice in a row (75 have one; 2 of them also have a stray speaker), 146 with no
exchange (131 lone gpt chunks, 12 lone system banners, 3 with only a human turn) and 31 with an empty
turn; it trims 6,162 leading gpt turns (of 6,358 conversations that open with one; the other 196
are dropped for a reason above) and 4 trailing human turns. Its 123 repeated ids are each an
empty conversation followed by the real one, so no duplicate_id is left once empties go. Its 41
system turns are share-tool banners ("This conversation is shared from ChatHub"); the 17 left
are kept as system messages like any other, and counted (``with_system``) so a user can decide.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from .canonical import ID_COLUMNS, DataError, example_id_for, locate
from .files import decode_nested
from .report import DataReport

__all__ = ["DROPS", "ROLE_MAP", "TRIMS", "sharegpt_examples"]

#: ShareGPT speaker names and the chat role each becomes.
ROLE_MAP = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}

#: Why a conversation is dropped, in the order checked.
DROPS = {
    "malformed_turn": "a turn that is not an object with string 'from' and 'value'",
    "empty_conversation": "no turns at all",
    "unknown_role": "a speaker other than human/user, gpt/assistant or system (chatgpt, bing, bard, ...)",
    "same_speaker_twice": "two turns in a row by one speaker",
    "misplaced_system": "a system turn after the first user or assistant turn",
    "no_exchange": "no user turn answered by an assistant turn once trimmed",
    "empty_turn": "a kept turn whose text is empty or only whitespace",
    "duplicate_id": "an id that a conversation kept earlier in the file already has",
}
#: What is trimmed from a conversation that is kept, in the order checked.
TRIMS = {
    "leading_assistant": "an assistant turn before the first user turn (a later chunk of a split conversation)",
    "trailing_user": "a final user turn that no assistant turn answers",
}
_STRICT = "strict=True (--strict True) turns each repair into an error; without it such conversations are "


class _Dropped(Exception):
    def __init__(self, reason: str):
        self.reason = reason


class _Policy:
    """Apply the repairs to one record; raise in strict mode, count otherwise."""

    def __init__(self, source: str, strict: bool, report: DataReport):
        self.source, self.strict, self.report = source, strict, report

    def drop(self, reason: str, row: int, detail: str, *, turn: int | None = None, field: str = "conversations"):
        if self.strict:
            raise DataError(f"{locate(self.source, row, field, turn=turn)}: {detail} ({_STRICT}dropped)")
        raise _Dropped(reason)

    def trim(self, reason: str, row: int, detail: str, *, turn: int, field: str, trims: list[str]) -> None:
        if self.strict:
            raise DataError(f"{locate(self.source, row, field, turn=turn)}: {detail} ({_STRICT}kept without this turn)")
        trims.append(reason)

    def convert(self, record: dict, row: int) -> tuple[list[dict], str, list[str]]:
        """(messages, response, trims) of one record, or :class:`_Dropped`."""
        turns = _turns(record, row, self.source)
        for k, turn in enumerate(turns):
            if not isinstance(turn, dict):
                self.drop("malformed_turn", row, f"expected an object with 'from' and 'value', got "
                          f"{type(turn).__name__}", turn=k, field=f"conversations[{k}]")
            for key in ("from", "value"):
                value = turn.get(key)
                if not isinstance(value, str):
                    got = "missing" if value is None else f"expected a string, got {type(value).__name__}"
                    self.drop("malformed_turn", row, got, turn=k, field=f"conversations[{k}].{key}")
        if not turns:
            self.drop("empty_conversation", row, "the conversation has no turns")
        roles = [ROLE_MAP.get(turn["from"]) for turn in turns]
        for k, role in enumerate(roles):
            if role is None:
                self.drop("unknown_role", row, f"unknown speaker {turns[k]['from']!r}; ShareGPT speakers are "
                          f"{', '.join(ROLE_MAP)}", turn=k, field=f"conversations[{k}].from")
        for k in range(1, len(turns)):
            if roles[k] == roles[k - 1]:
                self.drop("same_speaker_twice", row, f"turns {k - 1} and {k} are both by {turns[k]['from']!r}",
                          turn=k, field=f"conversations[{k}].from")
        start = next((k for k, role in enumerate(roles) if role != "system"), len(roles))
        for k in range(start, len(roles)):
            if roles[k] == "system":
                self.drop("misplaced_system", row, "a system turn after the conversation has started",
                          turn=k, field=f"conversations[{k}].from")
        trims: list[str] = []
        # No speaker speaks twice in a row, so at most one turn goes at either end.
        first, end = start, len(turns)
        if first < end and roles[first] == "assistant":
            self.trim("leading_assistant", row, f"the conversation starts with an assistant turn "
                      f"({turns[first]['from']!r})", turn=first, field=f"conversations[{first}].from", trims=trims)
            first += 1
        if end > first and roles[end - 1] == "user":
            self.trim("trailing_user", row, f"the last turn is a user turn ({turns[end - 1]['from']!r}) that no "
                      "assistant turn answers", turn=end - 1, field=f"conversations[{end - 1}].from", trims=trims)
            end -= 1
        if end - first < 2:
            self.drop("no_exchange", row, "no user turn answered by an assistant turn is left")
        kept = list(range(start)) + list(range(first, end))
        for k in kept:
            if not turns[k]["value"].strip():
                self.drop("empty_turn", row, "the text is empty" if not turns[k]["value"] else
                          "the text is only whitespace", turn=k, field=f"conversations[{k}].value")
        messages = [{"role": roles[k], "content": turns[k]["value"]} for k in kept]
        return messages[:-1], messages[-1]["content"], trims


def _turns(record: dict, row: int, source: str) -> list:
    turns = decode_nested(record.get("conversations"))
    if turns is None:
        other = [c for c in ("messages", "instruction", "prompt") if record.get(c) is not None]
        hint = f"; this row looks like another format (it has {other[0]!r}): one file must use one format" \
            if other else ""
        raise DataError(f"{locate(source, row, 'conversations')}: missing (format 'sharegpt'){hint}")
    if not isinstance(turns, list):
        raise DataError(f"{locate(source, row, 'conversations')}: expected a list of turns, got {type(turns).__name__}")
    return turns


def sharegpt_examples(records: Iterable[dict], *, source: str, strict: bool = False,
                      report: DataReport) -> Iterator[dict]:
    """Canonical examples from ShareGPT records, in file order; ``report`` counts what was read, kept and repaired.

    Each example has ``example_id`` (the record's ``example_id`` or ``id``, else derived from
    content), ``messages``, ``response`` and the record's other keys. A repeated given id drops
    the later conversation (reason ``duplicate_id``; the check runs on kept conversations only,
    so an empty conversation does not claim an id). Repeated content ids (identical
    conversations without ids) are numbered ``<id>-2``, ``<id>-3``, ... as for the other formats.
    """
    policy = _Policy(source, strict, report)
    seen: dict[str, int] = {}
    for row, record in enumerate(records):
        report.records += 1
        try:
            messages, response, trims = policy.convert(record, row)
            id_key = next((c for c in ID_COLUMNS if record.get(c) is not None), None)
            eid = str(record[id_key]) if id_key else example_id_for(messages, response)
            if eid in seen:
                if id_key is None:
                    k = 2
                    while f"{eid}-{k}" in seen:
                        k += 1
                    eid = f"{eid}-{k}"
                elif strict:
                    raise DataError(f"{locate(source, row, id_key)}: duplicate id {eid!r}, also at row {seen[eid]}; "
                                    "ids must be unique (fix or drop one of the two rows)")
                else:
                    raise _Dropped("duplicate_id")
        except _Dropped as dropped:
            report.count_drop(dropped.reason, row)
            continue
        seen[eid] = row
        for reason in trims:
            report.count_trim(reason, row)
        report.kept += 1
        report.with_system += int(bool(messages) and messages[0]["role"] == "system")
        extra = {k: v for k, v in record.items() if k not in ("conversations", id_key)}
        yield {"example_id": eid, "messages": messages, "response": response, **extra}
