"""Training dynamics as dynamics: each example's scores across the reference checkpoints.

The paper's confidence is a *mean over checkpoints* of the response perplexity. Three
things follow that a single number hides, and this module makes each one a table:

* :func:`trajectories` - the per-checkpoint values of chosen examples (long format), and
  :func:`pick_examples` - a few characteristic ones (confident throughout, learnt late,
  never learnt, a corrupted answer, one that changes side);
* :func:`mean_vs_last` - the split by the mean over checkpoints (the paper's) against the
  split by the last checkpoint alone: who changes side;
* :func:`checkpoint_shares` - how much each checkpoint contributes to the mean
  perplexity. Perplexity falls as training goes on, so early checkpoints weigh most.

All functions read the dynamics table (``ppl_<c>``, ``gprob_<c>``, ``acc_<c>`` for
checkpoints ``c = 0..C-1``; ``attrs["steps"]`` when the table was loaded from disk).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..dynamics.split import split_by_confidence
from ..dynamics.sums import table_metrics

__all__ = ["checkpoint_columns", "checkpoint_steps", "trajectories", "pick_examples", "mean_vs_last",
           "side_counts", "checkpoint_shares"]

def checkpoint_columns(table: pd.DataFrame, metric: str = "ppl") -> list[str]:
    """The ``<metric>_<c>`` columns of the table, in checkpoint order (``metric``: one of
    :func:`sftmix.dynamics.sums.table_metrics`)."""
    if metric not in table_metrics():
        raise ValueError(f"unknown per-checkpoint metric {metric!r}; choose one of {', '.join(table_metrics())}")
    found = sorted((int(m.group(1)), c) for c in table.columns if (m := re.fullmatch(rf"{metric}_(\d+)", str(c))))
    if not found:
        raise KeyError(f"the dynamics table has no per-checkpoint {metric!r} columns ({metric}_0, {metric}_1, ...)")
    return [c for _, c in found]


def checkpoint_steps(table: pd.DataFrame) -> list[int]:
    """Training step of each checkpoint: ``attrs["steps"]``, else the ``checkpoint-<step>`` folder
    names in ``attrs["checkpoints"]`` (as a table read from disk has them), else 0, 1, 2, ... ."""
    n = len(checkpoint_columns(table, "ppl"))
    steps = table.attrs.get("steps")
    if steps is not None and len(steps) == n and all(s is not None for s in steps):
        return [int(s) for s in steps]
    names = [re.search(r"checkpoint-(\d+)", str(c)) for c in table.attrs.get("checkpoints") or []]
    if len(names) == n and all(names):
        return [int(m.group(1)) for m in names]
    return list(range(n))


def trajectories(table: pd.DataFrame, ids=None, *, metric: str = "ppl") -> pd.DataFrame:
    """One row per (example, checkpoint): ``example_id``, ``checkpoint``, ``step``, ``value``
    (and ``task`` / ``noisy`` when the table has them). ``ids``: the examples (default: all)."""
    columns = checkpoint_columns(table, metric)
    part = table
    if ids is not None:
        ids = [str(i) for i in ids]
        known = set(table["example_id"].astype(str))
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise KeyError(f"example ids not in the dynamics table: {unknown[:5]}")
        part = table.set_index(table["example_id"].astype(str)).loc[ids].reset_index(drop=True)
    steps = checkpoint_steps(table)
    meta = [c for c in ("task", "noisy") if c in part.columns]
    long = part[["example_id", *meta, *columns]].melt(id_vars=["example_id", *meta], value_vars=columns,
                                                       var_name="column", value_name="value")
    long["checkpoint"] = long["column"].map({c: i for i, c in enumerate(columns)})
    long["step"] = long["checkpoint"].map(dict(enumerate(steps)))
    order = {e: i for i, e in enumerate(part["example_id"].astype(str))}
    long["example_id"] = long["example_id"].astype(str)
    long = long.sort_values(["example_id", "checkpoint"], key=lambda s: s.map(order) if s.name == "example_id"
                            else s, kind="stable")
    return long[["example_id", *meta, "checkpoint", "step", "value"]].reset_index(drop=True)


def pick_examples(table: pd.DataFrame, *, split: dict | None = None) -> dict[str, str]:
    """A few characteristic examples, ``{description: example_id}`` (deterministic).

    * "confident throughout": the highest ``confidence_prob`` among clean answers;
    * "learnt late": the clean answer whose perplexity fell the most from the first to the
      last checkpoint (relative to the first);
    * "never learnt": the lowest ``confidence_prob`` among clean answers;
    * "corrupted answer": the median-confidence corrupted answer (when the table has ``noisy``);
    * "changes side": the example nearest the threshold among those whose side differs
      between the mean-over-checkpoints split and the last-checkpoint split.
    """
    ppl = table[checkpoint_columns(table, "ppl")].to_numpy(dtype=float)
    ids = table["example_id"].astype(str).to_numpy()
    clean = ~table["noisy"].to_numpy(dtype=bool) if "noisy" in table else np.ones(len(table), bool)
    prob = table["confidence_prob"].to_numpy(dtype=float)
    out = {}
    cand = np.flatnonzero(clean)
    out["confident throughout"] = ids[cand[np.argmax(prob[cand])]]
    out["never learnt"] = ids[cand[np.argmin(prob[cand])]]
    drop = (ppl[:, 0] - ppl[:, -1]) / ppl[:, 0]
    out["learnt late"] = ids[cand[np.nanargmax(drop[cand])]]
    if not clean.all():
        noisy = np.flatnonzero(~clean)
        conf = table["confidence"].to_numpy(dtype=float)[noisy]
        out["corrupted answer"] = ids[noisy[np.argsort(conf, kind="stable")[len(noisy) // 2]]]
    if ppl.shape[1] > 1:
        sides = mean_vs_last(table, ratio=(split or {}).get("ratio", 0.5))
        moved = sides[sides["changed"]]
        if len(moved):
            gap = (moved["confidence"] - float(sides.attrs["threshold_mean"])).abs()
            out["changes side"] = str(moved.loc[gap.idxmin(), "example_id"])
    return out


def mean_vs_last(table: pd.DataFrame, *, ratio: float = 0.5) -> pd.DataFrame:
    """The split by the mean over checkpoints (the paper's confidence) against the split by
    the last checkpoint's −perplexity alone, at the same ratio.

    Returns one row per example: ``example_id``, ``confidence`` (mean), ``confidence_last``,
    ``side_mean``, ``side_last`` (``"confident"`` / ``"unconfident"``), ``changed``, and
    ``task`` / ``noisy`` when present; ``attrs`` holds both thresholds.
    """
    last = checkpoint_columns(table, "ppl")[-1]
    frame = table[["example_id", "confidence"]].copy()
    frame["example_id"] = frame["example_id"].astype(str)
    frame["confidence_last"] = -table[last].to_numpy(dtype=float)
    by_mean = split_by_confidence(frame, ratio=ratio, metric="confidence")
    by_last = split_by_confidence(frame.assign(confidence=frame["confidence_last"]), ratio=ratio,
                                  metric="confidence")
    conf_mean, conf_last = set(by_mean["confident"]), set(by_last["confident"])
    frame["side_mean"] = np.where(frame["example_id"].isin(conf_mean), "confident", "unconfident")
    frame["side_last"] = np.where(frame["example_id"].isin(conf_last), "confident", "unconfident")
    frame["changed"] = frame["side_mean"] != frame["side_last"]
    for column in ("task", "noisy"):
        if column in table:
            frame[column] = table[column].to_numpy()
    frame.attrs.update(threshold_mean=by_mean["threshold"], threshold_last=by_last["threshold"], ratio=ratio)
    return frame


def side_counts(sides: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """How many examples keep or change side in :func:`mean_vs_last` (per ``by``, e.g. ``"task"``)."""
    keys = ["side_mean", "side_last"] if by is None else [by, "side_mean", "side_last"]
    counts = sides.groupby(keys).size().rename("examples").reset_index()
    return counts


def checkpoint_shares(table: pd.DataFrame) -> pd.DataFrame:
    """What each checkpoint contributes to the mean perplexity (the paper's confidence).

    One row per checkpoint: ``checkpoint``, ``step``, ``median_ppl`` (over examples),
    ``share`` (mean over examples of ``ppl_c / sum_c' ppl_c'``: 1/C each if every checkpoint
    counted alike) and ``rank_corr`` (Spearman correlation over examples between ``−ppl_c``
    and the mean-over-checkpoints confidence: how much of the ranking that checkpoint decides).
    """
    ppl = table[checkpoint_columns(table, "ppl")].to_numpy(dtype=float)
    keep = np.isfinite(ppl).all(axis=1)
    ppl = ppl[keep]
    share = ppl / ppl.sum(axis=1, keepdims=True)
    mean_rank = pd.Series(ppl.mean(axis=1)).rank().to_numpy()
    rows = []
    for c, step in enumerate(checkpoint_steps(table)):
        rank = pd.Series(ppl[:, c]).rank().to_numpy()
        rows.append({"checkpoint": c, "step": step, "median_ppl": float(np.median(ppl[:, c])),
                     "share": float(share[:, c].mean()), "rank_corr": float(np.corrcoef(rank, mean_rank)[0, 1])})
    return pd.DataFrame(rows)
