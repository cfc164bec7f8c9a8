"""The canonical example every loader produces, and the error every loader raises.

A canonical example is a row with ``example_id`` (str), ``messages`` (the prompt as chat
messages ``{"role", "content"}``, earlier turns included), ``response`` (the final assistant
turn) and any metadata columns. This module holds what the readers of every format share:
:class:`DataError` and :func:`locate` (errors name file, row, turn and field), the roles a
message may have, content-derived ids and :func:`cut_exchanges`.
"""

from __future__ import annotations

import hashlib
import json

from ..errors import DataError

__all__ = ["ID_COLUMNS", "ROLES", "DataError", "cut_exchanges", "example_id_for", "locate"]

#: Chat roles a message may have.
ROLES = ("system", "user", "assistant")
#: Columns read as the example id, first found wins.
ID_COLUMNS = ("example_id", "id")


def locate(source, row: int | None = None, field_name: str | None = None, *, turn: int | None = None) -> str:
    """``"data.json, row 3, turn 1, field 'conversations[1].value'"``: where a problem is (rows count from 0)."""
    parts = [str(source)]
    if row is not None:
        parts.append(f"row {row}")
    if turn is not None:
        parts.append(f"turn {turn}")
    if field_name is not None:
        parts.append(f"field {field_name!r}")
    return ", ".join(parts)


def example_id_for(messages: list[dict], response: str) -> str:
    """A stable id derived from content, for data that brings none."""
    blob = json.dumps([messages, response], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]


def cut_exchanges(messages: list[dict], response: str, n: int) -> tuple[list[dict], str, int]:
    """Keep the first ``n`` user->assistant exchanges of a conversation.

    An exchange ends with an assistant turn: the result is everything before the ``n``-th
    assistant turn as the prompt and that turn as the response. Whole turns are removed, so
    the text that stays is exactly the original. Returns ``(messages, response, removed)``,
    ``removed`` being the number of exchanges cut off (0 when the conversation has at most ``n``).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen = 0
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            seen += 1
            if seen == n:
                later = sum(m["role"] == "assistant" for m in messages[i + 1:])
                return messages[:i], message["content"], later + 1
    return messages, response, 0
