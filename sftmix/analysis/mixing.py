"""What Mixup does to one (confident, unconfident) pair under a trained model.

SFTMix mixes the last hidden states of a confident example ``c`` and an unconfident example
``u`` at aligned response positions, ``Z~ = lam * Z_c + (1 - lam) * Z_u``, and asks the
output head to put ``lam`` of its mass on ``c``'s next token and ``1 - lam`` on ``u``'s.
This module runs a model once on each example of a pair (:func:`pair_states`) and then,
for any ``lam``, gives what the head makes of the mixed states: the probability of each
example's gold token (:func:`mixed_probs`, :func:`lambda_curves`) and the pair's Mixup loss
(:func:`pair_mixup_loss`).

Alignment, mixing and loss are the training code's own (:func:`sftmix.loss.mixup.align_pairs`,
:func:`~sftmix.loss.mixup.mix_hidden`, :func:`~sftmix.loss.mixup.mixup_loss`), so what a
notebook shows is what training computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..constants import IGNORE_INDEX
from ..data import tokenize_examples
from ..loss.ce import OutputHead
from ..loss.head import forward_hidden, output_head
from ..loss.mixup import AlignedPositions, align_pairs, mix_hidden, mixup_loss
from .selection import instruction_text

__all__ = ["PairStates", "pair_states", "mixed_probs", "pair_mixup_loss", "lambda_curves", "tokenize_pair"]


@dataclass
class PairStates:
    """One pair's last hidden states and labels under one model, and their aligned positions.

    ``hidden_c`` / ``hidden_u`` : (1, T, D) float32 on the CPU; ``labels_c`` / ``labels_u`` : (1, T)
    long, unshifted (-100 off the response); ``aligned`` : the pair's M aligned positions
    (``target_a`` is the confident example's gold next token, ``target_b`` the unconfident
    one's); ``head`` : the model's output head (on the CPU, float32); ``texts`` : the
    (instruction, response) of each example.
    """

    hidden_c: torch.Tensor
    labels_c: torch.Tensor
    hidden_u: torch.Tensor
    labels_u: torch.Tensor
    aligned: AlignedPositions
    head: OutputHead
    texts: list
    alignment: str = "response"

    @property
    def n_aligned(self) -> int:
        return int(self.aligned.pair.shape[0])


def tokenize_pair(pair, tokenizer, max_length: int = 512):
    """Two tokenized rows (``input_ids``, ``labels``) and their (instruction, response) texts.

    ``pair``: two canonical examples (with ``messages`` and ``response``) or two tokenized
    ones (with ``input_ids`` and ``labels``), confident first.
    """
    import datasets

    rows = pair.to_list() if hasattr(pair, "to_list") else \
        pair.to_dict("records") if isinstance(pair, pd.DataFrame) else list(pair)
    if len(rows) != 2:
        raise ValueError(f"a pair has two examples (confident, unconfident), got {len(rows)}")
    if all("input_ids" in r and "labels" in r for r in rows):
        texts = [(tokenizer.decode([t for t, y in zip(r["input_ids"], r["labels"]) if y == IGNORE_INDEX]),
                  tokenizer.decode([t for t in r["labels"] if t != IGNORE_INDEX])) for r in rows]
        return rows, texts
    for r in rows:
        if "messages" not in r or "response" not in r:
            raise ValueError("pass canonical examples (with 'messages' and 'response') or tokenized ones "
                             "(with 'input_ids' and 'labels')")
    data = datasets.Dataset.from_list([{"example_id": str(r.get("example_id", i)), "messages": r["messages"],
                                        "response": r["response"]} for i, r in enumerate(rows)])
    tokenized = tokenize_examples(data, tokenizer, max_length=max_length)
    if len(tokenized) != 2:
        raise ValueError("an example of the pair lost its response to truncation; raise max_length")
    return [tokenized[0], tokenized[1]], [(instruction_text(r["messages"]), r["response"]) for r in rows]


@torch.no_grad()
def pair_states(model, tokenizer, pair, *, max_length: int = 512, alignment: str = "response") -> PairStates:
    """Run ``model`` once on each example of ``pair`` (confident first) and align the two.

    Raises ``ValueError`` when the pair has no aligned position (an example without a
    response token left).
    """
    rows, texts = tokenize_pair(pair, tokenizer, max_length)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        hidden, labels = [], []
        for row in rows:
            lab = torch.as_tensor(row["labels"], dtype=torch.long)
            if not bool((lab[1:] != IGNORE_INDEX).any()):
                raise ValueError("an example of the pair has no response token left")
            ids = torch.as_tensor(row["input_ids"])[None].to(device)
            hidden.append(forward_hidden(model, ids).float().cpu())
            labels.append(lab[None])
        head = output_head(model)
        head = OutputHead(weight=head.weight.detach().float().cpu(),
                          bias=None if head.bias is None else head.bias.detach().float().cpu(),
                          softcap=head.softcap, scale=head.scale)
    finally:
        model.train(was_training)
    aligned = align_pairs(labels[0], labels[1], alignment)
    if aligned.pair.shape[0] == 0:
        raise ValueError("the pair has no aligned position to mix")
    return PairStates(hidden[0], labels[0], hidden[1], labels[1], aligned, head, texts, alignment)


def _lam(lam: float) -> torch.Tensor:
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    return torch.tensor([lam], dtype=torch.float32)


@torch.no_grad()
def mixed_probs(states: PairStates, lam: float) -> torch.Tensor:
    """(M, V) next-token distributions of the mixed states at every aligned position."""
    mixed = mix_hidden(states.hidden_c, states.hidden_u, states.aligned, _lam(lam))
    return torch.softmax(states.head.logits(mixed).float(), dim=-1)


@torch.no_grad()
def pair_mixup_loss(states: PairStates, lam: float) -> float:
    """The pair's Mixup loss at ``lam``, averaged over its aligned positions (as training normalises it)."""
    out = mixup_loss(states.hidden_c, states.labels_c, states.hidden_u, states.labels_u, _lam(lam), states.head,
                     alignment=states.alignment)
    return float(out.loss_sum) / max(int(out.num_positions), 1)


def lambda_curves(states: PairStates, lams=None, *, position: int | None = None) -> pd.DataFrame:
    """p(y_c) and p(y_u) of the mixed states along ``lam``, and the pair's Mixup loss.

    Parameters
    ----------
    states : from :func:`pair_states`.
    lams : values of lambda (default 21 points from 0 to 1).
    position : an aligned position k (0 = the first response token); None averages the
        probabilities over every aligned position.

    Returns
    -------
    DataFrame with ``lam``, ``p_confident`` (probability of the confident example's gold
    token), ``p_unconfident`` and ``mixup_loss`` (the pair's mean over its aligned positions).
    """
    lams = np.linspace(0.0, 1.0, 21) if lams is None else np.asarray(lams, dtype=float)
    if position is not None and not 0 <= position < states.n_aligned:
        raise ValueError(f"position must lie in [0, {states.n_aligned - 1}], got {position}")
    idx = torch.arange(states.n_aligned) if position is None else torch.tensor([position])
    t_c, t_u = states.aligned.target_a[idx], states.aligned.target_b[idx]
    out = []
    for lam in lams:
        probs = mixed_probs(states, lam)[idx]
        out.append({"lam": float(lam),
                    "p_confident": float(probs[torch.arange(len(idx)), t_c].mean()),
                    "p_unconfident": float(probs[torch.arange(len(idx)), t_u].mean()),
                    "mixup_loss": pair_mixup_loss(states, lam)})
    return pd.DataFrame(out)
