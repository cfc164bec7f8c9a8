"""What loading did to a dataset: records read, repairs by reason, what was kept, where a file stopped.

:func:`~sftmix.data.formats.load_examples_with_report` returns a :class:`DataReport` beside the
examples; ``sftmix data`` prints :meth:`DataReport.lines`, an experiment writes
:meth:`DataReport.to_dict` to ``data_report.json`` and prints :meth:`DataReport.summary`.
Repairs happen only under the ShareGPT policy (:mod:`sftmix.data.sharegpt`); the other
formats raise on a bad row instead, so their reports show no repairs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .files import Truncation

__all__ = ["EXAMPLE_ROWS", "DataReport"]

#: Rows kept per repair reason, to show where to look.
EXAMPLE_ROWS = 3


@dataclass
class DataReport:
    """Counts of one load. Rows count from 0 in file order."""

    source: str                               # the file (or builtin[split], Hub name[split])
    named: str | None = None                  # the named offline dataset it is, if any ("sharegpt")
    format: str | None = None
    format_given: bool = False
    strict: bool = False
    records: int = 0                          # records read from the source
    kept: int = 0                             # canonical examples returned
    dropped: dict[str, int] = field(default_factory=dict)   # reason -> conversations dropped
    trimmed: dict[str, int] = field(default_factory=dict)   # reason -> conversations kept without a turn
    rows: dict[str, list[int]] = field(default_factory=dict)  # reason -> first rows it applied to
    with_system: int = 0                      # kept examples that open with a system message
    truncation: Truncation | None = None      # set when keep_complete_records stopped at a break
    stopped_at_max_examples: int | None = None  # reading stopped once this many examples were kept
    max_exchanges: int | None = None
    cut: int = 0                              # examples cut to max_exchanges
    exchanges_removed: int = 0

    def count_drop(self, reason: str, row: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self._note(reason, row)

    def count_trim(self, reason: str, row: int) -> None:
        self.trimmed[reason] = self.trimmed.get(reason, 0) + 1
        self._note(reason, row)

    def _name(self) -> str:
        return f"{self.named} ({self.source})" if self.named else self.source

    def _note(self, reason: str, row: int) -> None:
        rows = self.rows.setdefault(reason, [])
        if len(rows) < EXAMPLE_ROWS:
            rows.append(row)

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def changed(self) -> bool:
        """True when the examples differ from the file's records: something dropped, trimmed, cut or left unread."""
        return bool(self.dropped or self.trimmed or self.truncation or self.cut)

    def summary(self) -> str:
        """One line: what was read, kept, dropped and trimmed, and why."""
        fmt = f"{self.format} ({'given' if self.format_given else 'detected'})" if self.format else "?"
        parts = [f"{self._name()} [{fmt}]: {self.records:,} records read"]
        if self.truncation is not None:
            parts.append(f"the file breaks off at line {self.truncation.line}, column {self.truncation.column}: kept "
                         f"the {self.truncation.rows_kept:,} complete records before it")
        if self.stopped_at_max_examples is not None:
            parts.append(f"stopped after {self.stopped_at_max_examples:,} examples (max_examples)")
        parts.append(f"kept {self.kept:,}")
        if self.dropped:
            parts.append(f"dropped {self.n_dropped:,} ({_counts(self.dropped)})")
        if self.trimmed:
            parts.append(f"trimmed {_counts(self.trimmed)}")
        if self.max_exchanges is not None:
            parts.append(f"max_exchanges={self.max_exchanges} cut {self.cut:,} ({self.exchanges_removed:,} exchanges)")
        return "; ".join(parts)

    def lines(self, descriptions: dict[str, str] | None = None) -> list[str]:
        """The report as printed by ``sftmix data``; ``descriptions`` explain each reason."""
        descriptions = descriptions or {}
        fmt = f"{self.format}, {'given' if self.format_given else 'detected'}" if self.format else "format unknown"
        out = [f"data: {self._name()} ({fmt}): {self.records:,} records read"]
        if self.truncation is not None:
            out.append(f"  the file breaks off: {self.truncation}")
        if self.stopped_at_max_examples is not None:
            out.append(f"  reading stopped once {self.stopped_at_max_examples:,} examples were kept (max_examples)")
        policy = "strict: any repair is an error" if self.strict else \
            "the default repair policy; --strict True makes each repair an error"
        width = max(map(len, [*self.dropped, *self.trimmed]), default=0)
        for title, counts in ((f"dropped {self.n_dropped:,} conversations ({policy}):", self.dropped),
                              ("trimmed (the conversation is kept without that turn):", self.trimmed)):
            if counts:
                out.append(f"  {title}")
                for reason, n in counts.items():
                    rows = ", ".join(map(str, self.rows.get(reason, [])))
                    out.append(f"    {reason:<{width}} {n:>7,}  {descriptions.get(reason, '')}"
                               + (f" (e.g. rows {rows})" if rows else ""))
        system = f" ({self.with_system:,} open with a system message)" if self.with_system else ""
        out.append(f"  kept {self.kept:,} examples{system}")
        if self.max_exchanges is not None:
            n = self.max_exchanges
            out.append(f"  max_exchanges={n}: {self.cut:,} conversations cut to their first {n} exchange"
                       f"{'s' if n > 1 else ''}, {self.exchanges_removed:,} later exchanges removed (whole turns; "
                       "the kept text is unchanged)")
        return out

    def to_dict(self) -> dict:
        """JSON-ready; ``truncation`` becomes a dict (or None)."""
        return dataclasses.asdict(self)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in counts.items())
