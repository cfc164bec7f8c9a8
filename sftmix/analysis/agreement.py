"""How far two reference models agree on which examples are confident.

The paper splits Llama-3.1-8B's data with a smaller model of another family (Gemma-2B): the
split transfers because it is keyed by example, not by token. :func:`confidence_agreement`
measures how much two models' confidences (two dynamics tables, e.g. SmolLM2-135M's and Gemma 3
270M's on the same examples) agree: the Spearman rank correlation of the metric, and how much
of one model's confident half is also the other's (at ``ratio=0.5`` two unrelated rankings
share half of it by chance; identical ones all of it).
"""

from __future__ import annotations

import pandas as pd

from ..dynamics.split import split_by_confidence
from ..errors import DatasetMismatchError

__all__ = ["confidence_agreement"]


def confidence_agreement(first: pd.DataFrame, second: pd.DataFrame, *, metric: str = "confidence",
                         ratio: float = 0.5) -> dict:
    """Agreement of two dynamics tables on the same examples.

    Parameters
    ----------
    first, second : dynamics tables (``example_id`` and ``metric`` columns) of the same examples.
    metric : the column ranked (a split metric, see :func:`~sftmix.dynamics.split_by_confidence`).
    ratio : the confident share, as in the split.

    Returns
    -------
    dict with ``n`` (examples), ``spearman`` (rank correlation of ``metric``), ``confident_overlap``
    (fraction of the first table's confident set that is also the second's), ``chance_overlap``
    (the expected fraction for unrelated rankings: the confident share) and ``metric``.

    Raises :class:`~sftmix.errors.DatasetMismatchError` when the tables hold different example ids.
    """
    a, b = (t.assign(example_id=t["example_id"].astype(str)).set_index("example_id")[metric] for t in (first, second))
    if set(a.index) != set(b.index):
        only = sorted(set(a.index) ^ set(b.index))
        raise DatasetMismatchError(f"the two dynamics tables hold different examples ({len(only)} ids in only one, "
                                   f"e.g. {only[:3]}): agreement needs the same examples")
    b = b.loc[a.index]
    spearman = float(a.rank().corr(b.rank()))
    halves = [set(split_by_confidence(s.to_frame(metric).reset_index(), ratio=ratio, metric=metric)["confident"])
              for s in (a, b)]
    return {"n": len(a), "metric": metric, "spearman": spearman,
            "confident_overlap": len(halves[0] & halves[1]) / len(halves[0]),
            "chance_overlap": len(halves[1]) / len(a)}
