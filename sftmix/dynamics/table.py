"""Training dynamics: per-example metrics, the dynamics table and its on-disk format.

Stage 1 of SFTMix scores every training example at C checkpoints of a reference run
(:mod:`sftmix.dynamics.scoring` produces the per-checkpoint statistics by scoring saved
checkpoints, :class:`sftmix.train.callbacks.DynamicsRecorder` by recording them online
during training). This module turns those statistics into one row per example;
:mod:`sftmix.dynamics.split` splits the data into a confident and an unconfident half
(stage 2). Everything is keyed by ``example_id``, never by token
positions, so the reference model may differ from the model trained later.

On-disk formats (all written atomically: temporary file in the same folder, then
``os.replace``), each parquet file carrying a JSON document under the schema metadata
key ``b"sftmix"``:

* per-checkpoint statistics, one file per checkpoint: columns ``example_id``,
  ``n_tokens`` and one per :data:`~sftmix.dynamics.sums.CHECKPOINT_METRICS` entry: ``nll`` (mean
  response-token NLL), ``ppl`` (``exp(nll)``), ``prob`` (mean gold-token probability), ``gprob``
  (geometric-mean probability, ``1 / ppl``), ``acc`` (fraction of response tokens whose argmax is
  the gold token); metadata
  ``format_version``, ``name``, ``step``, ``fingerprint``, ``source`` (``"scoring"`` or
  ``"online"``). NaN rows: examples without statistics (not seen by an online window).
* ``dynamics.parquet``: the table of :func:`compute_dynamics`; metadata
  ``format_version``, ``fingerprint``, ``model_name``, ``checkpoints``, ``n_examples``.
  Version ``"2"`` has one column per summary of :data:`sftmix.recipe.SUMMARIES` (version
  ``"1"`` lacked ``confidence_last``; :func:`load_dynamics` reads it and computes the
  missing summaries from the per-checkpoint columns).
* ``split.json``: the dict of :func:`sftmix.dynamics.split.split_by_confidence`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DatasetMismatchError
from ..io import atomic_write
from ..recipe import SUMMARIES
from .sums import CHECKPOINT_METRICS, TokenSums, table_metrics

__all__ = ["FORMAT_VERSION", "META_KEY", "SUMMARY_COLUMNS", "TABLE_FORMAT_VERSION", "checkpoint_frame",
           "compute_dynamics", "dataset_fingerprint", "load_dynamics", "per_example_metrics", "read_checkpoint_frame",
           "read_checkpoint_frames", "save_dynamics", "summarize_checkpoints", "write_checkpoint_frame"]


#: Format version of the per-checkpoint files.
FORMAT_VERSION = "1"
#: Format version of ``dynamics.parquet``, and the older versions :func:`load_dynamics` reads.
TABLE_FORMAT_VERSION = "2"
_TABLE_VERSIONS = ("1", "2")
META_KEY = b"sftmix"
#: Summary columns of the table: one per entry of :data:`sftmix.recipe.SUMMARIES`.
SUMMARY_COLUMNS = tuple(SUMMARIES)
# Columns of canonical or tokenized examples that are text or tokens, not metadata.
_NOT_METADATA = {"messages", "prompt", "response", "completion", "instruction", "input", "output",
                 "answer", "input_ids", "labels", "attention_mask", "length", "example_index"}


# ------------------------------------------------------------------------ metrics
def dataset_fingerprint(example_ids: Iterable) -> str:
    """A short hash identifying a dataset by its examples: sha256 of the sorted ids.

    Order does not matter; adding, removing or renaming an example changes it. It says
    nothing about content: two datasets with the same ids but different responses (the
    built-in suite at two noise levels, for instance) have the same fingerprint.
    """
    ids = sorted(str(e) for e in example_ids)
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:16]


def per_example_metrics(*sums, **named) -> dict[str, np.ndarray]:
    """Per-example metrics at one checkpoint from sums over response tokens.

    Parameters
    ----------
    sums, named : the arrays of a :class:`~sftmix.dynamics.sums.TokenSums`, (N,) each, by name
        (``nll_sum=..., prob_sum=..., correct_sum=..., n_tokens=...``) or in its order; or one
        ``TokenSums``.

    Returns
    -------
    dict of float64 arrays (N,), one per :data:`~sftmix.dynamics.sums.CHECKPOINT_METRICS` entry:
    ``nll`` (mean NLL), ``ppl = exp(nll)``, ``prob`` (mean probability), ``gprob = exp(-nll) = 1 / ppl``
    and ``acc``. NaN where ``n_tokens == 0``.
    """
    token_sums = sums[0] if len(sums) == 1 and isinstance(sums[0], TokenSums) else TokenSums(*sums, **named)
    means = token_sums.means()
    return {name: np.asarray(CHECKPOINT_METRICS[name].compute(means), dtype=np.float64)
            for name in CHECKPOINT_METRICS}


def summarize_checkpoints(ppl, gprob, acc, **more) -> dict[str, np.ndarray]:
    """Summaries over checkpoints, ignoring NaN entries.

    Parameters
    ----------
    ppl, gprob, acc, more : array_like, shape (N, C)
        Perplexity, geometric-mean probability and token accuracy of N examples at C
        checkpoints, and any other per-checkpoint metric by name (``prob=...``).

    Returns
    -------
    dict of arrays (N,), one per summary of :data:`sftmix.recipe.SUMMARIES`:
    ``confidence = -mean_c ppl`` (the paper's definition, higher is more confident),
    ``confidence_prob = mean_c gprob``, ``variability = std_c ppl``,
    ``variability_prob = std_c gprob`` (population std, ddof=0, as in Dataset
    Cartography), ``correctness = mean_c acc`` and ``confidence_last = -ppl`` at the last
    checkpoint with a value. NaN for an example with no values.
    """
    metrics = {name: np.asarray(x, dtype=np.float64) for name, x in {"ppl": ppl, "gprob": gprob, "acc": acc,
                                                                      **more}.items()}
    shapes = {name: x.shape for name, x in metrics.items()}
    if metrics["ppl"].ndim != 2 or len(set(shapes.values())) != 1:
        raise ValueError(f"the per-checkpoint metrics must be (N, C) arrays of one shape; got {shapes}")
    with warnings.catch_warnings():  # all-NaN rows give NaN, which is the answer we want
        warnings.simplefilter("ignore", RuntimeWarning)
        return {name: SUMMARIES[name].compute(metrics) for name in SUMMARIES}


# --------------------------------------------------------------------- file IO
def _write_parquet(frame: pd.DataFrame, path, meta: dict, version: str = FORMAT_VERSION) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[META_KEY] = json.dumps({"format_version": version, **meta}).encode("utf-8")
    table = table.replace_schema_metadata(schema_meta)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def _read_parquet(path, versions: Sequence[str] = (FORMAT_VERSION,)) -> tuple[pd.DataFrame, dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError(f"{path}: not an sftmix file (no {META_KEY.decode()!r} schema metadata)")
    meta = json.loads(raw)
    if meta.get("format_version") not in versions:
        raise ValueError(f"{path}: format version {meta.get('format_version')!r}; this sftmix reads "
                         f"version {' or '.join(map(repr, versions))}")
    frame = table.to_pandas()
    frame.attrs.update(meta)
    return frame, meta


def checkpoint_frame(example_ids: Sequence, *sums, name: str, step: int | None, fingerprint: str, source: str,
                     **named) -> pd.DataFrame:
    """One checkpoint's per-example statistics (the per-checkpoint file format, see top).

    The sums are the (N,) arrays of a :class:`~sftmix.dynamics.sums.TokenSums` aligned with
    ``example_ids``, by name or in its order (see :func:`per_example_metrics`); metadata goes to ``attrs``.
    """
    token_sums = TokenSums(*sums, **named)
    metrics = per_example_metrics(token_sums)
    frame = pd.DataFrame({"example_id": [str(e) for e in example_ids],
                          "n_tokens": token_sums.n_tokens.astype(np.int64), **metrics})
    frame.attrs.update(name=str(name), step=None if step is None else int(step), fingerprint=fingerprint,
                       source=source)
    return frame


def write_checkpoint_frame(frame: pd.DataFrame, path) -> Path:
    """Write a :func:`checkpoint_frame` (with its ``attrs`` as metadata) atomically."""
    return _write_parquet(frame, path, {k: v for k, v in frame.attrs.items() if k != "format_version"})


def read_checkpoint_frame(path) -> pd.DataFrame:
    """Read a per-checkpoint file; its metadata is in ``frame.attrs``."""
    return _read_parquet(path)[0]


def read_checkpoint_frames(directory) -> list[pd.DataFrame]:
    """Every per-checkpoint file of a folder, ordered by training step (then name)."""
    frames = [read_checkpoint_frame(p) for p in sorted(Path(directory).glob("*.parquet"))]
    return sorted(frames, key=lambda f: (f.attrs.get("step") is None, f.attrs.get("step") or 0,
                                         f.attrs.get("name", "")))


# ------------------------------------------------------------------------ table
def _metadata_frame(examples) -> pd.DataFrame:
    columns = list(examples.columns if isinstance(examples, pd.DataFrame) else examples.column_names)
    if "example_id" not in columns:
        raise KeyError("examples need an example_id column")
    keep = [c for c in columns if c not in _NOT_METADATA]
    # Select before converting: token and message columns are the bulk of a dataset.
    if isinstance(examples, pd.DataFrame):
        frame = examples[keep].copy()
    else:
        frame = examples.select_columns(keep).to_pandas()
    frame["example_id"] = frame["example_id"].astype(str)
    return frame.drop_duplicates("example_id")


def compute_dynamics(per_checkpoint: list[pd.DataFrame], examples=None) -> pd.DataFrame:
    """One row per example: per-checkpoint metrics and their summaries.

    Parameters
    ----------
    per_checkpoint : list of C frames in checkpoint order, from
        :func:`sftmix.dynamics.scoring.score_checkpoints`, :class:`sftmix.train.callbacks.DynamicsRecorder`
        or :func:`read_checkpoint_frames`. Rows are matched by ``example_id``; an example
        missing from a checkpoint gets NaN there.
    examples : optional ``datasets.Dataset`` or DataFrame with ``example_id``; its
        metadata columns (task, difficulty, noisy, ...; not text or token columns) are
        carried into the table.

    Returns
    -------
    DataFrame (N rows, in order of first appearance) with ``example_id``, ``n_tokens``,
    ``<metric>_<c>`` for each table metric of :data:`~sftmix.dynamics.sums.CHECKPOINT_METRICS`
    (``ppl``, ``prob``, ``gprob``, ``acc``) and ``c = 0..C-1``, the
    summaries of :func:`summarize_checkpoints` and the metadata columns. ``attrs``
    holds ``checkpoints`` (names) and ``steps``.
    """
    if not per_checkpoint:
        raise ValueError("compute_dynamics needs at least one checkpoint's statistics")
    columns_of = table_metrics()
    for c, frame in enumerate(per_checkpoint):
        missing = {"example_id", "n_tokens", *columns_of} - set(frame.columns)
        if missing:
            raise KeyError(f"checkpoint {c} lacks columns {sorted(missing)}")
        if frame["example_id"].duplicated().any():
            raise ValueError(f"checkpoint {c} has duplicate example ids")
    ids = pd.Index(pd.unique(pd.concat([f["example_id"].astype(str) for f in per_checkpoint])))
    table = pd.DataFrame({"example_id": ids})
    stacked = {m: np.full((len(ids), len(per_checkpoint)), np.nan) for m in columns_of}
    n_tokens = np.zeros(len(ids), dtype=np.int64)
    for c, frame in enumerate(per_checkpoint):
        rows = ids.get_indexer(frame["example_id"].astype(str))
        n_tokens[rows] = np.maximum(n_tokens[rows], frame["n_tokens"].to_numpy())
        for m in columns_of:
            stacked[m][rows, c] = frame[m].to_numpy(dtype=np.float64)
    table["n_tokens"] = n_tokens
    columns = {f"{m}_{c}": stacked[m][:, c] for m in columns_of for c in range(len(per_checkpoint))}
    summaries = summarize_checkpoints(**stacked)
    table = pd.concat([table, pd.DataFrame(columns), pd.DataFrame(summaries)], axis=1)
    if examples is not None:
        meta = _metadata_frame(examples)
        meta = meta.drop(columns=[c for c in meta.columns if c in table.columns and c != "example_id"])
        table = table.merge(meta, on="example_id", how="left", validate="one_to_one")
    table.attrs.update(checkpoints=[f.attrs.get("name", str(c)) for c, f in enumerate(per_checkpoint)],
                       steps=[f.attrs.get("step") for f in per_checkpoint])
    return table


def save_dynamics(table: pd.DataFrame, path, *, fingerprint: str, model_name: str,
                  checkpoints: Sequence) -> Path:
    """Write the dynamics table as parquet, atomically, with its metadata (see top)."""
    meta = {"fingerprint": str(fingerprint), "model_name": str(model_name),
            "checkpoints": [c if isinstance(c, (int, type(None))) else str(c) for c in checkpoints],
            "n_examples": int(len(table))}
    return _write_parquet(table, path, meta, TABLE_FORMAT_VERSION)


def _fill_summaries(table: pd.DataFrame) -> pd.DataFrame:
    """Add the registered summaries a table lacks (an older format) from its per-checkpoint columns."""
    missing = [name for name in SUMMARIES if name not in table.columns]
    n_checkpoints = 0
    while f"ppl_{n_checkpoints}" in table.columns:
        n_checkpoints += 1
    if not missing or n_checkpoints == 0:
        return table
    stacked = {m: table[[f"{m}_{c}" for c in range(n_checkpoints)]].to_numpy(dtype=np.float64)
               for m in table_metrics() if f"{m}_0" in table.columns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = {name: SUMMARIES[name].compute(stacked) for name in missing}
    attrs = dict(table.attrs)
    table = pd.concat([table, pd.DataFrame(values, index=table.index)], axis=1)
    table.attrs.update(attrs)
    return table


def _ids_of(dataset) -> list:
    if isinstance(dataset, pd.DataFrame) or hasattr(dataset, "column_names"):
        return list(dataset["example_id"])
    return list(dataset)


def load_dynamics(path, dataset=None) -> pd.DataFrame:
    """Read a dynamics table; metadata in ``attrs``.

    With ``dataset`` (a Dataset/DataFrame with ``example_id``, or a list of ids), raise
    :class:`DatasetMismatchError` when the table was computed on other examples.
    """
    table, meta = _read_parquet(path, _TABLE_VERSIONS)
    table = _fill_summaries(table)
    if dataset is not None:
        ids = _ids_of(dataset)
        expected = dataset_fingerprint(ids)
        if meta.get("fingerprint") != expected:
            raise DatasetMismatchError(
                f"{Path(path).name} was computed on another dataset: fingerprint {meta.get('fingerprint')} "
                f"({meta.get('n_examples')} examples) but this dataset's is {expected} ({len(ids)} examples). "
                f"Recompute the dynamics for this dataset or point to the matching run ({path}).")
    return table
