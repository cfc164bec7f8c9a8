"""Choosing examples to look at, from a dynamics table and a split; HTML tables of them.

* :func:`region_mask` and :func:`select_examples` - the examples of a region of the
  training-dynamics map (easy-to-learn, ambiguous, hard-to-learn; Swayamdipta et al.,
  2020), a task or a noise flag, most typical first;
* :func:`examples_html` - those examples as an HTML table (texts escaped and shortened);
* :func:`pick_pair` - a random (confident, unconfident) pair, as training draws them;
* :func:`split_summary` - per half of a split: size, mean metric, share noisy, top task.

Plain functions over DataFrames, no widgets: the explorers of :mod:`sftmix.viz.widgets` call
them (and re-export them), and notebooks and scripts can call them directly.
"""

from __future__ import annotations

import html
from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["REGIONS", "examples_html", "instruction_text", "pick_pair", "region_mask", "select_examples", "shorten",
           "split_summary"]


#: The map regions of :func:`region_mask`.
REGIONS = ("easy-to-learn", "ambiguous", "hard-to-learn", "all")
_SHOWN_COLUMNS = ("confidence", "confidence_prob", "variability_prob", "correctness")


def _frame(data) -> pd.DataFrame:
    return data.copy() if isinstance(data, pd.DataFrame) else data.to_pandas()


def instruction_text(messages) -> str:
    """The prompt of an example as one string (its user and system turns)."""
    if isinstance(messages, str):
        return messages
    return "\n\n".join(str(m["content"]) for m in messages if m.get("role", "user") != "assistant")


def shorten(text, n: int = 160) -> str:
    """``text`` cut to at most ``n`` characters, with an ellipsis when cut."""
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


# ============================================================ pairs and halves
def pick_pair(examples, split: Mapping, *, seed: int = 0) -> list[dict]:
    """A (confident, unconfident) pair of canonical examples, drawn at random from the halves.

    Random, as in training (where pairs are drawn at random from the two halves);
    ``seed`` picks another pair.
    """
    frame = _frame(examples).set_index(_frame(examples)["example_id"].astype(str))
    rng = np.random.default_rng(seed)
    out = []
    for half in ("confident", "unconfident"):
        ids = [str(i) for i in split[half] if str(i) in frame.index]
        if not ids:
            raise ValueError(f"none of the {half} ids of the split are among the examples")
        out.append(frame.loc[ids[int(rng.integers(len(ids)))]].to_dict())
    return out


def split_summary(table: pd.DataFrame, split: Mapping) -> pd.DataFrame:
    """Per half of a split: n, the split metric's mean, share of noisy examples, top task."""
    metric = split.get("metric", "confidence")
    ids = table["example_id"].astype(str)
    rows = {}
    for half in ("confident", "unconfident"):
        part = table[ids.isin(set(map(str, split[half])))]
        row = {"n": len(part), f"mean {metric}": float(part[metric].mean())}
        if "noisy" in part:
            row["share noisy"] = float(part["noisy"].mean())
        if "task" in part and len(part):
            top = part["task"].value_counts()
            row["most common task"] = f"{top.index[0]} ({top.iloc[0]})"
        rows[half] = row
    return pd.DataFrame.from_dict(rows, orient="index")


# ============================================================ map regions
def region_mask(table: pd.DataFrame, region: str, *, fraction: float = 1 / 3) -> np.ndarray:
    """Boolean mask of a training-dynamics-map region (Swayamdipta et al., 2020).

    The rule, on the probability scale of the map (``confidence_prob``,
    ``variability_prob``): with ``q = fraction``,

    * ``easy-to-learn``: confidence_prob at or above its (1 - q) quantile;
    * ``hard-to-learn``: confidence_prob at or below its q quantile;
    * ``ambiguous``: variability_prob at or above its (1 - q) quantile;
    * ``all``: every example.

    Each region is a top or bottom share along one axis, as in Dataset Cartography, so
    ``ambiguous`` may overlap the other two; ``easy-to-learn`` and ``hard-to-learn``
    never overlap for ``fraction < 0.5``.
    """
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    if region == "all":
        return np.ones(len(table), dtype=bool)
    column = "variability_prob" if region == "ambiguous" else "confidence_prob"
    if column not in table.columns:
        raise KeyError(f"the dynamics table has no {column!r} column")
    values = table[column].to_numpy(dtype=float)
    if region == "hard-to-learn":
        return values <= np.nanquantile(values, fraction)
    return values >= np.nanquantile(values, 1 - fraction)


def select_examples(table: pd.DataFrame, examples=None, *, region: str = "all", task: str | None = None,
                    noisy: bool | None = None, n: int = 10, fraction: float = 1 / 3, seed: int = 0) -> pd.DataFrame:
    """The ``n`` most typical examples of a region (and task / noise flag), with their texts.

    Easy-to-learn are sorted by confidence_prob (highest first), hard-to-learn by
    confidence_prob (lowest first), ambiguous by variability_prob (highest first);
    ``all`` is a seeded random sample. ``examples`` (canonical, with ``messages`` and
    ``response``) adds ``instruction`` and ``response`` (and ``answer`` when present).
    """
    mask = region_mask(table, region, fraction=fraction)
    if task not in (None, "all"):
        mask &= (table["task"] == task).to_numpy()
    if noisy is not None:
        mask &= (table["noisy"].astype(bool) == bool(noisy)).to_numpy()
    part = table[mask]
    if region == "all":
        part = part.sample(n=min(n, len(part)), random_state=seed) if len(part) else part
    else:
        column = "variability_prob" if region == "ambiguous" else "confidence_prob"
        part = part.sort_values(column, ascending=region == "hard-to-learn", kind="stable").head(n)
    keep = [c for c in ("example_id", "task", "noisy", *_SHOWN_COLUMNS) if c in part.columns]
    part = part[keep].copy()
    part["example_id"] = part["example_id"].astype(str)
    if examples is not None:
        texts = _frame(examples)
        texts["example_id"] = texts["example_id"].astype(str)
        texts["instruction"] = texts["messages"].map(instruction_text) if "messages" in texts else texts.get("prompt")
        cols = ["example_id", "instruction", "response"] + (["answer"] if "answer" in texts else [])
        part = part.merge(texts[cols], on="example_id", how="left")
    return part.reset_index(drop=True)


def examples_html(selection: pd.DataFrame) -> str:
    """An HTML table of :func:`select_examples`' rows (texts escaped and shortened)."""
    if selection.empty:
        return "<p><i>no examples match</i></p>"
    heads = [c for c in ("example_id", "task", "instruction", "response", "answer", "noisy", *_SHOWN_COLUMNS)
             if c in selection.columns]
    out = ["<table style='border-collapse:collapse;font-size:90%'><tr>"
           + "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(h)}</th>" for h in heads) + "</tr>"]
    for row in selection.itertuples(index=False):
        r = row._asdict()
        cells = []
        for h in heads:
            v = r[h]
            if h == "noisy":
                text = "⚠ noisy" if bool(v) else "clean"
            elif h in _SHOWN_COLUMNS:
                text = f"{float(v):.3g}"
            elif h == "answer" and str(v) == str(r.get("response")):
                text = "="
            else:
                text = shorten(v, 120 if h == "instruction" else 60)
            style = "padding:2px 8px;vertical-align:top" + (";color:#D55E00" if h == "noisy" and bool(v) else "")
            cells.append(f"<td style='{style}'>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    note = ("<small>answer: the correct answer where it differs from the trained response "
            "('=' when they agree).</small>") if "answer" in heads else ""
    return "".join(out) + "</table>" + note
