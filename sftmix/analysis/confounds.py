"""What else the confidence split splits: tasks, answer lengths and label noise.

The split ranks examples by how sure the reference model was of them. On a suite of very
different tasks that ranking also sorts *tasks* (a family the model computes well lands
almost entirely in the confident half), *answer lengths* (a long answer has more tokens to
get wrong) and *corrupted answers* (which the model finds surprising). Mixup then pairs
examples across those groups too. These functions put each confound in a table:

* :func:`split_by_task` - per task: examples, share in the confident half, corrupted answers;
* :func:`half_profile` - per half: examples, mean answer length, corrupted answers and the
  share of all corrupted answers that half holds;
* :func:`noise_precision_recall` - the unconfident half as a detector of corrupted answers;
* :func:`side_changes` - the examples that change side between two splits.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["HALVES", "half_of", "split_by_task", "half_profile", "noise_precision_recall", "side_changes"]

HALVES = ("confident", "unconfident")


def half_of(table: pd.DataFrame, split: Mapping) -> pd.Series:
    """``"confident"`` / ``"unconfident"`` / ``"not in split"`` per row of the table."""
    ids = table["example_id"].astype(str)
    conf = ids.isin({str(i) for i in split["confident"]})
    unconf = ids.isin({str(i) for i in split["unconfident"]}) & ~conf
    return pd.Series(np.where(conf, "confident", np.where(unconf, "unconfident", "not in split")),
                     index=table.index, name="half")


def split_by_task(table: pd.DataFrame, split: Mapping) -> pd.DataFrame:
    """Per task (sorted by its share in the confident half, highest first): ``examples``,
    ``confident``, ``share_confident``, ``mean_tokens`` (response tokens) and, with a ``noisy``
    column, ``corrupted`` and ``corrupted_unconfident``."""
    if "task" not in table.columns:
        raise KeyError("split_by_task needs a task column in the dynamics table")
    frame = table.assign(_half=half_of(table, split).to_numpy())
    frame["_conf"] = frame["_half"] == "confident"
    agg = {"examples": ("example_id", "size"), "confident": ("_conf", "sum"), "share_confident": ("_conf", "mean")}
    if "n_tokens" in frame:
        agg["mean_tokens"] = ("n_tokens", "mean")
    if "noisy" in frame:
        frame["_noisy"] = frame["noisy"].astype(bool)
        frame["_noisy_unconf"] = frame["_noisy"] & (frame["_half"] == "unconfident")
        agg.update(corrupted=("_noisy", "sum"), corrupted_unconfident=("_noisy_unconf", "sum"))
    out = frame.groupby("task").agg(**agg)
    return out.sort_values(["share_confident", "examples"], ascending=[False, False], kind="stable")


def half_profile(table: pd.DataFrame, split: Mapping) -> pd.DataFrame:
    """Per half: ``examples``, ``mean_tokens`` (response tokens per answer), ``corrupted``,
    ``share_corrupted`` (of the half) and ``share_of_all_corrupted`` (of every corrupted answer),
    and the half's most common task."""
    half = half_of(table, split)
    rows = {}
    n_noisy = int(table["noisy"].astype(bool).sum()) if "noisy" in table else 0
    for name in HALVES:
        part = table[(half == name).to_numpy()]
        row = {"examples": len(part)}
        if "n_tokens" in part:
            row["mean_tokens"] = float(part["n_tokens"].mean())
        if "noisy" in part:
            k = int(part["noisy"].astype(bool).sum())
            row.update(corrupted=k, share_corrupted=k / len(part) if len(part) else float("nan"),
                       share_of_all_corrupted=k / n_noisy if n_noisy else float("nan"))
        if "task" in part and len(part):
            top = part["task"].value_counts()
            row["most common task"] = f"{top.index[0]} ({top.iloc[0]})"
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def noise_precision_recall(table: pd.DataFrame, split: Mapping) -> dict:
    """The unconfident half as a detector of corrupted answers.

    ``precision``: share of the unconfident half that is corrupted; ``recall``: share of the
    corrupted answers that are in the unconfident half; with the counts ``n_unconfident``,
    ``n_corrupted`` and ``n_caught``. NaN where a count is zero (or without a ``noisy`` column).
    """
    unconf = (half_of(table, split) == "unconfident").to_numpy()
    if "noisy" not in table:
        return {"precision": float("nan"), "recall": float("nan"), "n_unconfident": int(unconf.sum()),
                "n_corrupted": 0, "n_caught": 0}
    noisy = table["noisy"].to_numpy(dtype=bool)
    caught = int((noisy & unconf).sum())
    return {"precision": caught / unconf.sum() if unconf.sum() else float("nan"),
            "recall": caught / noisy.sum() if noisy.sum() else float("nan"),
            "n_unconfident": int(unconf.sum()), "n_corrupted": int(noisy.sum()), "n_caught": caught}


def side_changes(table: pd.DataFrame, before: Mapping, after: Mapping) -> pd.DataFrame:
    """The examples whose half differs between split ``before`` and split ``after``:
    ``example_id``, ``from``, ``to`` (and ``task``, ``noisy``, the split metric), ordered by
    the split metric (most confident first)."""
    a, b = half_of(table, before), half_of(table, after)
    moved = (a != b).to_numpy()
    keep = [c for c in ("example_id", "task", "noisy", after.get("metric", "confidence")) if c in table.columns]
    out = table.loc[moved, keep].copy()
    out.insert(1, "from", a[moved].to_numpy())
    out.insert(2, "to", b[moved].to_numpy())
    metric = after.get("metric", "confidence")
    if metric in out:
        out = out.sort_values(metric, ascending=False, kind="stable")
    return out.reset_index(drop=True)
