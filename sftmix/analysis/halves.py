"""Why SFTMix should work, as a measurement: how well each half of the split is fit.

The paper's argument (Xiao et al., arXiv:2410.05248, Sec. 1 and 3): confident examples
invite overfitting (the model fits them on the training set better than it generalises from
them) and unconfident ones are hard to generalise from (the model fits them poorly even on
the training set); Mixup between the two halves should narrow both gaps. Measured per half:

* training fit: each trained model's NLL per response token on the training answers of the
  confident and of the unconfident half;
* held-out fit: the same on held-out examples, assigned to a half the way a training
  example would be: by the reference run's confidence on them (scored at the same
  checkpoints, :attr:`sftmix.io.RunDir.held_out_scores`) against the split's threshold.

:func:`half_fit` turns per-model score frames into that table; :func:`score_half_fit`
scores the models first. Corrupted training answers are left out of the training fit by
default (a model "fits" them by memorising wrong answers, which is not what either half's
gap is about).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .confounds import HALVES, half_of
from .fit import token_nll

__all__ = ["held_out_confidence", "held_out_halves", "half_fit", "score_half_fit"]


def held_out_confidence(frames) -> pd.Series:
    """The paper's confidence (−mean perplexity over checkpoints) of each held-out example,
    from per-checkpoint frames (``example_id``, ``ppl``); a Series indexed by example id."""
    frames = list(frames)
    if not frames:
        raise ValueError("held_out_confidence needs the held-out frames of at least one checkpoint")
    ppl = pd.concat([f.set_index(f["example_id"].astype(str))["ppl"] for f in frames], axis=1)
    return (-ppl.mean(axis=1)).rename("confidence")


def held_out_halves(frames, split: Mapping) -> pd.Series:
    """``"confident"`` / ``"unconfident"`` per held-out example id: its confidence (from the
    reference checkpoints) at or above the split's threshold is confident."""
    if split.get("metric", "confidence") != "confidence":
        raise ValueError(f"held-out halves need a split on 'confidence', got {split.get('metric')!r}")
    conf = held_out_confidence(frames)
    return pd.Series(np.where(conf >= float(split["threshold"]), "confident", "unconfident"), index=conf.index,
                     name="half")


def half_fit(train_scores: Mapping[str, pd.DataFrame], held_scores: Mapping[str, pd.DataFrame], *,
             split: Mapping, held_halves: pd.Series, table: pd.DataFrame | None = None,
             drop_noisy: bool = True) -> pd.DataFrame:
    """Token-weighted NLL per (model, data, half).

    Parameters
    ----------
    train_scores, held_scores : ``{model label: frame}`` with ``example_id``, ``nll``,
        ``n_tokens`` (as :func:`sftmix.dynamics.scoring.score_model` returns) on the training
        and the held-out examples.
    split : the split of the training examples.
    held_halves : the half of each held-out example (:func:`held_out_halves`).
    table : the dynamics table, for the ``noisy`` flag of the training examples.
    drop_noisy : leave corrupted training answers out of the training fit.

    Returns
    -------
    Long DataFrame: ``model``, ``data`` (``"training"`` / ``"held-out"``), ``half``, ``nll``,
    ``examples``; and a wide one in ``attrs["gap"]``: held-out − training NLL per (model, half).
    """
    noisy = set()
    if drop_noisy and table is not None and "noisy" in table:
        noisy = set(table.loc[table["noisy"].astype(bool), "example_id"].astype(str))
    rows = []
    for model in train_scores:
        for data, frame, halves in (("training", train_scores[model], None), ("held-out", held_scores[model],
                                                                             held_halves)):
            frame = frame.assign(example_id=frame["example_id"].astype(str))
            if halves is None:
                half = half_of(frame, split).to_numpy()
                keep = ~frame["example_id"].isin(noisy).to_numpy()
            else:
                half = frame["example_id"].map(halves).to_numpy()
                keep = np.ones(len(frame), dtype=bool)
            for name in HALVES:
                mask = keep & (half == name)
                rows.append({"model": model, "data": data, "half": name, "nll": token_nll(frame, mask),
                             "examples": int(mask.sum())})
    out = pd.DataFrame(rows)
    wide = out.pivot_table(index=["model", "half"], columns="data", values="nll", sort=False)
    out.attrs["gap"] = (wide["held-out"] - wide["training"]).rename("gap").reset_index()
    return out


def score_half_fit(models: Mapping, train_tokenized, held_tokenized, *, split: Mapping, held_halves: pd.Series,
                   table: pd.DataFrame | None = None, progress: bool = False, drop_noisy: bool = True
                   ) -> pd.DataFrame:
    """Score every model of ``{label: model}`` on the training and held-out examples, then :func:`half_fit`."""
    from ..dynamics.scoring import score_model

    train, held = {}, {}
    for label, model in models.items():
        train[label] = score_model(model, train_tokenized, name=f"{label} (training)", progress=progress)
        held[label] = score_model(model, held_tokenized, name=f"{label} (held-out)", progress=progress)
    return half_fit(train, held, split=split, held_halves=held_halves, table=table, drop_noisy=drop_noisy)
