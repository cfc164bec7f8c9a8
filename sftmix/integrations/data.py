"""What another trainer trains, as sftmix data: example ids, and response labels from its masks.

sftmix keys everything (dynamics, split, Mixup pairs) by ``example_id``. Other trainers
carry no such column, and TRL's ``SFTTrainer`` prepares (tokenizes, truncates, drops
fully masked rows, may shuffle) the dataset it is given, so a row number of the prepared
data is not a row number of the user's data. :func:`with_example_ids` adds the ids to the
user's dataset *before* a trainer sees it; every other column rides through TRL's
preparation unchanged, so the ids do too.

:func:`trained_tokens` turns a tokenized training set into sftmix's scoring form
(``example_id``, ``input_ids``, ``labels`` with ``-100`` on untrained tokens), taking the
response mask from what the trainer trains: a ``labels`` column as it is (sftmix's own data,
TRL's prepared data), else TRL's ``completion_mask`` / ``assistant_masks`` (a token is
trained where every mask present is 1), else every token (plain language modelling).
"""

from __future__ import annotations

import datasets

from ..constants import IGNORE_INDEX
from ..errors import DataError

__all__ = ["ID_COLUMN", "MASK_COLUMNS", "trained_tokens", "with_example_ids"]

#: The column sftmix reads example ids from.
ID_COLUMN = "example_id"
#: TRL's per-token mask columns (1 = trained), in the order TRL applies them.
MASK_COLUMNS = ("completion_mask", "assistant_masks")


def with_example_ids(dataset: datasets.Dataset, source: str | None = None) -> datasets.Dataset:
    """``dataset`` with an ``example_id`` column (strings): its row numbers, or the ``source`` column's values.

    Call it on the data before a trainer prepares it, and use the same ids for the reference run
    and the SFTMix run: the split is keyed by them.
    """
    if source is None:
        ids = [str(i) for i in range(len(dataset))]
    else:
        if source not in dataset.column_names:
            raise DataError(f"the dataset has no {source!r} column to take example ids from (columns: "
                            f"{', '.join(dataset.column_names)})")
        ids = [str(v) for v in dataset[source]]
    _check_unique(ids, source or "row numbers")
    if ID_COLUMN in dataset.column_names:
        if source is None:
            raise DataError(f"the dataset already has an {ID_COLUMN!r} column: pass source={ID_COLUMN!r} to keep it, "
                            "or remove it first")
        dataset = dataset.remove_columns(ID_COLUMN)
    return dataset.add_column(ID_COLUMN, ids)


def _check_unique(ids: list[str], source: str) -> None:
    seen: set[str] = set()
    for row, e in enumerate(ids):
        if e in seen:
            raise DataError(f"row {row}: example id {e!r} (from {source}) repeats an earlier row; ids must be unique")
        seen.add(e)


def trained_tokens(dataset: datasets.Dataset, *, id_column: str | None = ID_COLUMN) -> datasets.Dataset:
    """The scoring form of a tokenized training set: ``example_id``, ``input_ids``, ``labels``.

    ``id_column=None`` numbers the rows of ``dataset`` ("0", "1", ...). Raises
    :class:`~sftmix.errors.DataError` (one line) when the ids are missing or repeat, or when an
    example has no trained token (its confidence would be undefined).
    """
    columns = dataset.column_names
    if "input_ids" not in columns:
        raise DataError("the training data has no input_ids column: pass the tokenized data the trainer trains on "
                        "(for TRL, trainer.train_dataset after the trainer is built)")
    if id_column is None:
        ids = [str(i) for i in range(len(dataset))]
    elif id_column not in columns:
        raise DataError(f"the training data has no {id_column!r} column: add ids before the trainer prepares the "
                        "data (sftmix.with_example_ids(dataset)), or pass id_column=None to number the rows "
                        "(remove_unused_columns=True strips the column from the dataloader's copy: pass the "
                        "trainer's train_dataset)")
    else:
        ids = [str(e) for e in dataset[id_column]]
    _check_unique(ids, id_column or "row numbers")
    masks = [c for c in MASK_COLUMNS if c in columns]
    keep = ["input_ids"] + (["labels"] if "labels" in columns else masks)
    data = dataset.select_columns(keep)
    if "labels" not in columns:
        def label(row):
            bits = [row[c] for c in masks]
            return {"labels": [t if all(b) else IGNORE_INDEX for t, *b in zip(row["input_ids"], *bits)]}
        data = data.map(label, remove_columns=masks)
    empty = [ids[i] for i, lab in enumerate(data["labels"]) if all(x == IGNORE_INDEX for x in lab[1:])]
    if empty:
        raise DataError(f"{len(empty)} training examples have no trained token after the first, e.g. example ids "
                        f"{empty[:3]}: they have no response to score")
    data = data.add_column(ID_COLUMN, ids)
    return data.add_column("length", [len(x) for x in data["input_ids"]])
