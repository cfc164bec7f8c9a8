"""How well the reference run fits its data as it trains: the generalisation gap.

At every reference checkpoint the training examples and the held-out examples are scored
the same way (:func:`sftmix.dynamics.score_checkpoints`, response tokens only). From those
per-checkpoint frames :func:`fit_table` gives the token-weighted mean NLL of

* the clean training answers,
* the corrupted training answers (the built-in suite's ``noisy`` flag), and
* the held-out answers,

one row per checkpoint. A model that starts to overfit keeps lowering the first two (it
memorises the corrupted answers too) while the held-out NLL stops falling or rises: the
gap ``held_out - train_clean`` and the ratio ``held_out / train_clean`` widen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FIT_COLUMNS", "fit_table", "token_nll"]

#: The columns of :func:`fit_table`, in order.
FIT_COLUMNS = ["checkpoint", "step", "train_clean", "train_noisy", "held_out", "gap", "ratio"]


def token_nll(frame: pd.DataFrame, keep=None) -> float:
    """Mean NLL per response token over the rows of a checkpoint frame (``nll``, ``n_tokens``).

    ``keep`` is an optional boolean mask of rows. Rows without response tokens are
    skipped; NaN when no token is left.
    """
    nll = frame["nll"].to_numpy(dtype=float)
    n = frame["n_tokens"].to_numpy(dtype=float)
    mask = (n > 0) & np.isfinite(nll)
    if keep is not None:
        mask &= np.asarray(keep, dtype=bool)
    return float((nll[mask] * n[mask]).sum() / n[mask].sum()) if n[mask].sum() > 0 else float("nan")


def fit_table(train_frames, held_out_frames, noisy_ids=()) -> pd.DataFrame:
    """One row per checkpoint: token-weighted NLL on clean / corrupted training answers and held-out ones.

    Parameters
    ----------
    train_frames, held_out_frames : lists of per-checkpoint frames (one per checkpoint, the
        same checkpoints in the same order), as returned by ``score_checkpoints``.
    noisy_ids : example ids of the corrupted training answers (may be empty: then
        ``train_noisy`` is NaN and ``train_clean`` covers every training example).
    """
    if len(train_frames) != len(held_out_frames):
        raise ValueError(f"{len(train_frames)} training frames but {len(held_out_frames)} held-out frames: "
                         "score the same checkpoints on both")
    noisy = {str(e) for e in noisy_ids}
    rows = []
    for train, held in zip(train_frames, held_out_frames):
        step_a, step_b = train.attrs.get("step"), held.attrs.get("step")
        if step_a != step_b:
            raise ValueError(f"checkpoint mismatch: training frame at step {step_a}, held-out frame at step {step_b}")
        is_noisy = train["example_id"].astype(str).isin(noisy).to_numpy()
        clean, held_nll = token_nll(train, ~is_noisy), token_nll(held)
        rows.append({"checkpoint": train.attrs.get("name"), "step": step_a, "train_clean": clean,
                     "train_noisy": token_nll(train, is_noisy), "held_out": held_nll,
                     "gap": held_nll - clean, "ratio": held_nll / clean if clean > 0 else float("nan")})
    return pd.DataFrame(rows, columns=FIT_COLUMNS)
