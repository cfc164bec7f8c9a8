"""Per-example response statistics of a model: the one place the response NLL is computed.

:func:`score_rows` sums, per example, the NLL, gold-token probability and argmax
correctness over response tokens; :func:`score_model` does it for a whole dataset (one
checkpoint frame) and :func:`score_checkpoints` for the C checkpoints of a reference run
(the paper's stage 1; :func:`sftmix.train.run.train_reference` trains that run, and
:class:`sftmix.train.callbacks.DynamicsRecorder` records the same statistics online).
Evaluation (:mod:`sftmix.analysis.evaluate`) calls :func:`score_rows` too.

Every checkpoint is written as one parquet file (see :mod:`sftmix.dynamics.table`).
Scoring runs the transformer once per batch and the output head in token chunks
(:func:`sftmix.loss.ce.linear_cross_entropy`), so no full-vocabulary logits exist for a batch.
Under several processes (``accelerate launch`` / ``torchrun``) each process scores a
shard of the examples and the results are gathered on every process.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM

from ..constants import CONFIDENCE_TOKENS, IGNORE_INDEX
from ..data import PadCollator
from ..distributed import Processes
from ..loss.ce import response_cross_entropy
from ..loss.head import forward_hidden, output_head
from .sums import TokenSums, token_sums
from .table import checkpoint_frame, dataset_fingerprint, read_checkpoint_frame, write_checkpoint_frame

logger = logging.getLogger(__name__)


def response_sums(token_nll: torch.Tensor, token_correct: torch.Tensor, mask: torch.Tensor) -> TokenSums:
    """Per-example sums over response tokens, float64 arrays of shape (B,).

    Parameters
    ----------
    token_nll, token_correct : Tensor (M,), the NLL and ``argmax == gold`` of the M
        response tokens of a batch, in ``mask.nonzero()`` order.
    mask : BoolTensor (B, T), which (shifted) positions are response tokens.

    Returns
    -------
    TokenSums: one sum per :data:`sftmix.dynamics.sums.STATISTICS` entry (``nll_sum``, ``prob_sum``,
    ``correct_sum``) and ``n_tokens``.
    """
    return token_sums(token_nll, token_correct, mask.nonzero()[:, 0].cpu(), mask.shape[0],
                      mask.sum(1).cpu().double().numpy())


def token_set_sums(token_nll: torch.Tensor, token_correct: torch.Tensor, mask: torch.Tensor,
                   content: torch.Tensor | None = None, *, sets=CONFIDENCE_TOKENS) -> dict[str, TokenSums]:
    """Per-example sums over the token sets of :data:`sftmix.constants.CONFIDENCE_TOKENS`, shared by
    the scoring loop and the online recorder: ``"trained"`` (every target of ``mask``) and, given the
    (B, T-1) ``content`` mask, ``"content"`` (the content tokens among them). ``sets``: only these."""
    out = {"trained": response_sums(token_nll, token_correct, mask)} if "trained" in sets else {}
    if content is not None and "content" in sets:
        keep = content[mask]  # the content tokens among the trained ones, in mask order
        out["content"] = response_sums(token_nll[keep], token_correct[keep], content & mask)
    return out


def length_sorted_shard(tokenized, process_index: int, num_processes: int) -> np.ndarray:
    """This process's rows of ``tokenized``: an interleaved shard of the length-sorted order."""
    lengths = (np.asarray(tokenized["length"]) if "length" in tokenized.column_names
               else np.array([len(x) for x in tokenized["input_ids"]]))
    # Interleaving the length-sorted order gives every process a similar mix of lengths.
    return np.argsort(lengths, kind="stable")[process_index::num_processes]


def _check_tokens(tokens: str) -> None:
    if tokens not in CONFIDENCE_TOKENS:
        raise ValueError(f"tokens={tokens!r}; choose one of {', '.join(CONFIDENCE_TOKENS)}")


@torch.inference_mode()
def score_rows(model, tokenized, rows: np.ndarray, *, batch_size: int, chunk_size: int = 4096,
               desc: str = "Scoring", progress: bool = True, token_confidence: bool = False) -> dict:
    """Per-example response statistics of ``rows`` of ``tokenized``: the one response-NLL loop.

    The transformer runs once per batch; the output head runs on the trained tokens (those
    with a label: content and end-of-turn, what the training loss covers), and the sums are
    taken over two token sets, named as :data:`sftmix.constants.CONFIDENCE_TOKENS`:
    ``"trained"`` (every trained token) and ``"content"`` (the assistant turns' content, the
    ``content_labels`` of :func:`sftmix.data.tokenize_examples`; present when the data has
    that column). See :mod:`sftmix.data.tokenize` for which tokens are which.

    Returns
    -------
    dict: ``"trained"`` (and ``"content"``) -> :class:`~sftmix.dynamics.sums.TokenSums` of
    len(rows) examples: sums over each example's tokens of the NLL, gold-token probability
    and argmax correctness, and the token count. With
    ``token_confidence`` also ``"max_prob"``, ``"correct"``: arrays over every trained token
    (in no particular order) of the largest softmax probability and whether it is the gold
    token, for calibration.
    """
    device = next(model.parameters()).device
    collate = PadCollator(getattr(model.config, "pad_token_id", None) or 0)  # padding is masked anyway
    head = output_head(model)
    has_content = "content_labels" in tokenized.column_names
    columns = tokenized.select_columns(["input_ids", "labels"] + (["content_labels"] if has_content else []))
    out = {name: TokenSums.full(len(rows)) for name in (("trained", "content") if has_content else ("trained",))}
    max_prob, correct = [], []
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, disable=not progress, leave=False):
        chunk = columns[[int(i) for i in rows[start:start + batch_size]]]
        batch = collate([dict(zip(chunk, values)) for values in zip(*chunk.values())])
        hidden = forward_hidden(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
        ce, mask = response_cross_entropy(hidden, batch["labels"].to(device), head, chunk_size=chunk_size,
                                          return_stats=True)
        content = batch["content_labels"][:, 1:].to(device) != IGNORE_INDEX if has_content else None
        done = slice(start, start + len(chunk["labels"]))
        for name, sums in token_set_sums(ce.token_nll, ce.token_correct, mask, content).items():
            out[name].put(done, sums)
        if token_confidence:
            max_prob.append(ce.token_max_prob.float().cpu().numpy())
            correct.append(ce.token_correct.cpu().numpy())
    if token_confidence:
        out["max_prob"] = np.concatenate(max_prob) if max_prob else np.zeros(0)
        out["correct"] = np.concatenate(correct) if correct else np.zeros(0, dtype=bool)
    return out


def score_model(model, tokenized, *, name: str = "model", step: int | None = None, batch_size: int = 64,
                chunk_size: int = 4096, progress: bool = True, accelerator=None, tokens: str = "content"):
    """Score every example of ``tokenized`` with one model; return a checkpoint frame.

    ``tokens``: which response tokens are scored (see :func:`score_rows`); the default is
    the confidence default, the content of the assistant turns. ``frame.attrs["tokens"]``
    records it.

    ``tokenized`` comes from :func:`sftmix.data.tokenize_examples` (``example_id``,
    ``input_ids``, ``labels``; ``length`` is used when present). Under several processes
    each scores an interleaved shard of the length-sorted examples and every process
    returns the whole gathered frame. ``frame.attrs["n_scored"]`` counts the rows scored
    over all processes (equal to ``len(frame)``: each example is scored once).
    """
    _check_tokens(tokens)
    if tokens == "content" and "content_labels" not in tokenized.column_names:
        raise ValueError("tokens='content' needs the content_labels column of sftmix.data.tokenize_examples; "
                         "re-tokenize the data, or score tokens='trained'")
    procs = Processes(accelerator)
    ids = [str(e) for e in tokenized["example_id"]]
    rows = length_sorted_shard(tokenized, procs.index, procs.count)
    was_training = model.training
    model.eval()
    try:
        sums = score_rows(model, tokenized, rows, batch_size=batch_size, chunk_size=chunk_size,
                          desc=f"Scoring {name}", progress=progress and procs.is_main)[tokens]
    finally:
        model.train(was_training)
    shards = procs.gather([(rows, sums)])
    full = TokenSums.full(len(ids), np.nan)
    seen = np.zeros(len(ids), dtype=bool)
    n_scored = 0
    for shard_rows, shard_sums in shards:
        n_scored += len(shard_rows)
        fresh = ~seen[shard_rows]  # de-duplicate by example (a padded shard would repeat some)
        full.put(shard_rows[fresh], shard_sums.take(fresh))
        seen[shard_rows] = True
    if not seen.all():
        raise RuntimeError(f"{int((~seen).sum())} examples were not scored by any process")
    frame = checkpoint_frame(ids, **full.as_dict(), name=name, step=step, fingerprint=dataset_fingerprint(ids),
                             source="scoring")
    frame.attrs["n_scored"] = n_scored
    frame.attrs["tokens"] = tokens
    return frame


def checkpoint_step(path) -> int | None:
    """The training step of a checkpoint folder (trainer_state.json, else ``checkpoint-<step>``)."""
    state = Path(path) / "trainer_state.json"
    if state.exists():
        return int(json.loads(state.read_text())["global_step"])
    match = re.search(r"checkpoint-(\d+)$", Path(path).name)
    return int(match.group(1)) if match else None


def _load_checkpoint(path, device):
    return AutoModelForCausalLM.from_pretrained(path, dtype="auto").to(device)


def _named(checkpoints) -> list[tuple[str, object]]:
    items = checkpoints.items() if isinstance(checkpoints, dict) else checkpoints
    named = []
    for item in items:
        if isinstance(item, tuple):
            named.append((str(item[0]), item[1]))
        elif isinstance(item, torch.nn.Module):
            raise TypeError("give an in-memory model a name: score_checkpoints([('final', model)], ...)")
        else:
            named.append((Path(item).name, item))
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"checkpoint names must be unique (they name the output files): {names}")
    return named


def score_checkpoints(checkpoints, tokenized, *, out_dir, batch_size: int = 64, chunk_size: int = 4096,
                      progress: bool = True, accelerator=None, tokens: str = "content") -> list:
    """Score every example at every checkpoint; one parquet file per checkpoint.

    For each example and checkpoint, over response tokens only: perplexity
    ``exp(mean NLL)``, mean token probability, geometric-mean probability ``1 / ppl`` and
    token accuracy (see :func:`sftmix.dynamics.checkpoint_frame`).

    Parameters
    ----------
    checkpoints : list of checkpoint folders (loaded with
        ``AutoModelForCausalLM.from_pretrained``; the file is named after the folder), or
        ``(name, model)`` pairs / a ``{name: model_or_folder}`` dict.
    tokenized : examples from :func:`sftmix.data.tokenize_examples`.
    out_dir : folder for ``<name>.parquet``. A file already there with this dataset's
        fingerprint is read instead of recomputed, so an interrupted run resumes; a file
        from another dataset is recomputed. Files are keyed by name: delete them after
        retraining a checkpoint under the same name.
    batch_size, chunk_size : examples per forward pass (similar lengths together);
        tokens per output-head chunk.
    accelerator : ``Accelerator`` / ``PartialState``; default ``PartialState()``. Only
        the main process writes files. Scoring is data parallel: each process loads the
        whole model onto its device.
    tokens : the scored response tokens, ``"content"`` (default) or ``"trained"``
        (:func:`score_rows`); a cached file scored the other way is recomputed.

    Returns
    -------
    list of DataFrames, one per checkpoint, for :func:`sftmix.dynamics.compute_dynamics`.
    """
    procs = Processes(accelerator)
    out_dir = Path(out_dir)
    fingerprint = dataset_fingerprint(tokenized["example_id"])
    frames = []
    for name, source in _named(checkpoints):
        path = out_dir / f"{name}.parquet"
        cached = None
        if procs.is_main and path.exists():
            frame = read_checkpoint_frame(path)
            if frame.attrs.get("fingerprint") == fingerprint and len(frame) == len(tokenized) \
                    and frame.attrs.get("tokens", "trained") == tokens:
                cached = frame
            else:
                logger.info("%s was computed on another dataset; scoring %s again", path, name)
        cached = procs.broadcast(cached)  # every process must take the same branch
        if cached is not None:
            frames.append(cached)
            continue
        if isinstance(source, torch.nn.Module):
            model, step = source, None
        else:
            model, step = _load_checkpoint(source, procs.device), checkpoint_step(source)
        frame = score_model(model, tokenized, name=name, step=step, batch_size=batch_size,
                            chunk_size=chunk_size, progress=progress, accelerator=accelerator, tokens=tokens)
        if procs.is_main:
            write_checkpoint_frame(frame, path)
        frames.append(frame)
        del model
    procs.barrier()
    return frames
