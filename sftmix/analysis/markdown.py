"""Markdown tables: the one place sftmix spells out a table's pipes and rules.

Every report sftmix writes (``results.md``, the ablation and real-model summaries, the
figures' captions) builds its tables with :func:`markdown_table` or :func:`frame_table`
and joins its lines with :func:`markdown_document`.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import pandas as pd

__all__ = ["frame_table", "markdown_document", "markdown_table"]


def _cell(value) -> str:
    # A pipe inside a cell would end it; a line break would end the row.
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(header: Sequence, rows: Iterable[Sequence]) -> list[str]:
    """The lines of a Markdown table: ``header``, the rule, one line per row (each as long as the header)."""
    header = [_cell(h) for h in header]
    if not header:
        raise ValueError("a Markdown table needs at least one column")
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for i, row in enumerate(rows):
        row = [_cell(v) for v in row]
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def frame_table(frame: pd.DataFrame, *, float_format: Callable[[float], str] = "{:.4f}".format) -> list[str]:
    """A DataFrame's columns and rows as a Markdown table (floats through ``float_format``)."""
    def cell(v):
        return float_format(v) if isinstance(v, float) else v
    return markdown_table(list(frame.columns), ([cell(v) for v in row] for row in frame.itertuples(index=False)))


def markdown_document(lines: Iterable[str]) -> str:
    """Lines joined into a document that ends in one newline."""
    return "\n".join(lines).rstrip("\n") + "\n"
