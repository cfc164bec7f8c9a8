"""The split: a confident and an unconfident half of the training data (SFTMix's stage 2).

:func:`split_by_confidence` ranks the dynamics table by a metric; :func:`save_split` /
:func:`load_split` keep the result as ``split.json``; :func:`check_split` and
:func:`split_groups` are the one place a split is checked against itself and the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SplitError
from ..io import atomic_write
from ..recipe import SPLIT_METRICS, SUMMARIES

__all__ = ["SplitError", "check_split", "load_split", "save_split", "split_by_confidence", "split_groups"]


def split_by_confidence(table: pd.DataFrame, ratio: float = 0.5, metric: str = "confidence") -> dict:
    """Split examples into a confident and an unconfident set by a dynamics metric.

    The ``k = floor(ratio * n + 0.5)`` examples with the highest ``metric`` (ratio * n
    rounded half up, kept within [1, n - 1]) are confident; ties are broken by
    ``example_id`` (ascending ids first), so the split is deterministic.

    Parameters
    ----------
    table : dynamics table with ``example_id`` and ``metric``.
    ratio : fraction of examples in the confident set, in (0, 1). The paper uses 0.5.
    metric : a summary of :data:`sftmix.recipe.SUMMARIES` that ranks confidence (one of
        :data:`sftmix.recipe.SPLIT_METRICS`): ``"confidence"`` (the paper),
        ``"confidence_prob"``, ``"correctness"`` or ``"confidence_last"``; its ``direction``
        says whether higher or lower values are the confident ones.

    Returns
    -------
    dict with ``confident`` and ``unconfident`` (lists of example ids, most confident
    first), ``threshold`` (the least confident metric value in the confident set: the
    lowest for a higher-is-confident metric), ``ratio``, ``metric`` and ``n``.
    """
    if metric not in SPLIT_METRICS:
        raise ValueError(f"unknown split metric {metric!r}; choose one of {', '.join(SPLIT_METRICS)}")
    if not 0.0 < float(ratio) < 1.0:
        raise ValueError(f"ratio must lie strictly between 0 and 1, got {ratio}")
    for column in ("example_id", metric):
        if column not in table.columns:
            raise KeyError(f"the dynamics table has no {column!r} column")
    n = len(table)
    if n < 2:
        raise ValueError(f"a split needs at least 2 examples, got {n}")
    ids = table["example_id"].astype(str).to_numpy()
    if len(set(ids)) != n:
        raise ValueError("the dynamics table has duplicate example ids")
    values = table[metric].to_numpy(dtype=np.float64)
    direction = SUMMARIES[metric].direction
    if np.isnan(values).any():
        raise ValueError(f"{int(np.isnan(values).sum())} examples have no {metric} value (NaN), e.g. "
                         f"{list(ids[np.isnan(values)][:3])}; score them or drop them first")
    k = min(max(int(np.floor(ratio * n + 0.5)), 1), n - 1)
    order = np.lexsort((ids, -direction * values))  # last key first: most confident first, then id ascending
    return {"confident": ids[order[:k]].tolist(), "unconfident": ids[order[k:]].tolist(),
            "threshold": float(values[order[k - 1]]), "ratio": float(ratio), "metric": metric, "n": n}


def save_split(split: dict, path) -> Path:
    """Write a split as JSON, atomically."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(split, f, indent=1)
    return atomic_write(path, write)


def load_split(path) -> dict:
    """Read a split written by :func:`save_split` and check its fields."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: split file not found (run `sftmix split` first)")
    split = json.loads(path.read_text(encoding="utf-8"))
    check_split(split, source=str(path))
    return split


def check_split(split: dict, *, source: str = "split") -> None:
    """Raise :class:`SplitError` unless both halves are non-empty lists of ids with none in both."""
    for key in ("confident", "unconfident"):
        if not isinstance(split.get(key), list) or not split[key]:
            raise SplitError(f"{source}: field {key!r} must be a non-empty list of example ids")
    both = set(map(str, split["confident"])) & set(map(str, split["unconfident"]))
    if both:
        raise SplitError(f"{source}: {len(both)} ids are in both halves, e.g. {sorted(both)[:3]}")


def split_groups(split: dict, example_ids: list[str], *, source: str = "split") -> tuple[list[int], list[int]]:
    """Row indices of the confident and unconfident examples of a training set."""
    check_split(split, source=source)
    rows = {eid: i for i, eid in enumerate(example_ids)}
    conf, unconf = [str(e) for e in split["confident"]], [str(e) for e in split["unconfident"]]
    unknown = [e for e in conf + unconf if e not in rows]
    if unknown:
        raise SplitError(f"{source}: {len(unknown)} ids are not in the training data, e.g. {unknown[:3]}; "
                         "the split was made for another dataset")
    missing = set(rows) - set(conf) - set(unconf)
    if missing:
        raise SplitError(f"{source}: {len(missing)} training ids are in neither half, e.g. {sorted(missing)[:3]}; "
                         "the split was made for another dataset")
    return [rows[e] for e in conf], [rows[e] for e in unconf]
