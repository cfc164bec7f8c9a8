"""Atomic file writes, file checksums and the run-directory layout.

A reader never sees half a file, a crash never leaves one.

Every writer in sftmix goes through :func:`atomic_write` (temporary file in the target's
folder, then ``os.replace``). Temporary names all match ``TEMP_GLOB``, so a killed
process's leftovers can be found and removed. :class:`RunDir` names every path of a run
directory, so no other module spells one out.
"""

from __future__ import annotations

import dataclasses
import filecmp
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from .errors import ConfigError

__all__ = ["EVAL_FILE", "GENERATIONS_FILE", "LOG_HISTORY_FILE", "ONLINE_DIR", "TEMP_GLOB", "TRAIN_KEY_FILE",
           "WEIGHT_PATTERNS", "WEIGHTS_REMOVED_FILE", "RunDir", "atomic_copy", "atomic_write", "atomic_write_dir",
           "atomic_write_json", "atomic_write_text", "dir_size_mb", "link_or_copy", "link_same_files",
           "remove_temp_files", "require_weights", "sha256_of", "unlink_shared"]

TEMP_GLOB = ".*.tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path in ``path``'s folder, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_dir(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a temporary folder beside ``path``, then put it in ``path``'s place.

    A folder already at ``path`` is replaced; a failing ``write`` leaves it as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_copy(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy the file ``source`` to ``path`` (with its times and mode), atomically."""
    return atomic_write(path, lambda tmp: shutil.copy2(source, tmp))


def link_or_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put ``source`` at ``target`` as a hard link (no second copy on disk), or a copy across file systems."""
    target = Path(target)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        atomic_copy(source, target)


def link_same_files(folder: str | os.PathLike, source: str | os.PathLike) -> int:
    """Replace each file directly in ``folder`` whose bytes equal the file of the same name in ``source`` by a
    hard link to it (a tokenizer saved beside every model: 33 MB each for Gemma 3). Returns the bytes freed.

    Hard-linked files must never be written in place (a tokenizer's ``save_pretrained`` does):
    :func:`unlink_shared` a folder before anything saves into it again.
    """
    freed = 0
    for path in sorted(Path(folder).iterdir()):
        other = Path(source) / path.name
        if not (path.is_file() and other.is_file()) or path.samefile(other):
            continue
        if path.stat().st_size == other.stat().st_size and filecmp.cmp(path, other, shallow=False):
            size = path.stat().st_size
            try:
                os.link(other, path.with_name(f".{path.name}.{os.getpid()}.tmp"))
            except OSError:  # another file system: keep the copy
                continue
            os.replace(path.with_name(f".{path.name}.{os.getpid()}.tmp"), path)
            freed += size
    return freed


def unlink_shared(folder: str | os.PathLike) -> None:
    """Remove the files directly in ``folder`` that are hard links shared with another path, so that what is
    saved into ``folder`` next (in place, by some writers) cannot change the other copy."""
    for path in Path(folder).iterdir() if Path(folder).is_dir() else ():
        if path.is_file() and path.stat().st_nlink > 1:
            path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """JSON with dataclasses, numpy arrays/scalars and paths converted."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable))


def _jsonable(obj):
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


# Temporary names that earlier versions of sftmix used (".eval.json.tmp123", ".embeddings.tmp.npy").
_LEGACY_TEMP_GLOBS = (".*.tmp[0-9]*", ".*.tmp.*")


def remove_temp_files(folder: str | os.PathLike) -> None:
    """Delete the temporary files that killed writers left anywhere under ``folder`` (their writer is gone)."""
    for pattern in (TEMP_GLOB, *_LEGACY_TEMP_GLOBS):
        for p in Path(folder).rglob(pattern):
            if p.is_file():
                p.unlink(missing_ok=True)


class RunDir:
    """Every path of a run directory (``runs/<name>/``)::

        config.yaml          resolved configuration (also as config.json)
        data_report.json     what loading did to the data: records read, repairs by reason, kept
        resources.json       memory and time the run used (written by the GPU scripts, when they ran it)
        reference/           reference-run checkpoints (checkpoints.json, scores/, held_out_scores/, online/)
        dynamics.parquet     per-example table
        fit.csv              NLL on clean / corrupted training answers and held-out ones per checkpoint
        split.json           ids of each half
        <method>/seed<k>/    trained weights, log_history.json, eval.json, generations.json
                             (weights_removed.json instead of the weights with ``keep_weights: reference``)
        embeddings.npy  projection.parquet
        results.json  results.md
        figures/  stages/  cache/ (projections)
        ablation/<param>=<value>/seed<k>/  ablation/results.csv

    Files equal to the last reference checkpoint's (the tokenizer, the model config) are hard links
    to it, and so are all of the NTP run's when it is the reference run; what each file is kept for
    is listed in :mod:`sftmix.pipeline.experiment`.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def __fspath__(self) -> str:
        return str(self.root)

    config = property(lambda self: self.root / "config.yaml")
    config_json = property(lambda self: self.root / "config.json")
    data_report = property(lambda self: self.root / "data_report.json")
    resources = property(lambda self: self.root / "resources.json")
    reference = property(lambda self: self.root / "reference")
    checkpoints = property(lambda self: self.reference / "checkpoints.json")
    scores = property(lambda self: self.reference / "scores")
    online = property(lambda self: self.reference / ONLINE_DIR)
    held_out_scores = property(lambda self: self.reference / "held_out_scores")
    dynamics = property(lambda self: self.root / "dynamics.parquet")
    fit = property(lambda self: self.root / "fit.csv")
    split = property(lambda self: self.root / "split.json")
    embeddings = property(lambda self: self.root / "embeddings.npy")
    projection = property(lambda self: self.root / "projection.parquet")
    results_json = property(lambda self: self.root / "results.json")
    results_md = property(lambda self: self.root / "results.md")
    figures = property(lambda self: self.root / "figures")
    stages = property(lambda self: self.root / "stages")
    ablation = property(lambda self: self.root / "ablation")
    ablation_results = property(lambda self: self.ablation / "results.csv")
    cache = property(lambda self: self.root / "cache")

    def train(self, method: str, seed: int) -> Path:
        """The folder of one trained model: ``<method>/seed<k>/``."""
        return self.root / method / f"seed{seed}"

    def eval_file(self, method: str, seed: int) -> Path:
        return self.train(method, seed) / EVAL_FILE

    def ablation_cell(self, label: str, seed: int) -> Path:
        """The folder of one ablation cell: ``ablation/<label>/seed<k>/`` (label: ``<param>=<value>``)."""
        return self.ablation / label / f"seed{seed}"


#: Files inside a trained model's folder.
EVAL_FILE = "eval.json"
GENERATIONS_FILE = "generations.json"
LOG_HISTORY_FILE = "log_history.json"
WEIGHTS_REMOVED_FILE = "weights_removed.json"  # what ``keep_weights: reference`` removed, and why
#: Weight files of a model folder (a checkpoint or a trained run): full model, shards or LoRA adapter.
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def require_weights(folder: str | os.PathLike) -> None:
    """Raise a one-line :class:`~sftmix.errors.ConfigError` when the experiment setting ``keep_weights: reference``
    removed the weights of the trained model in ``folder`` (a step that loads them cannot run)."""
    folder = Path(folder)
    if (folder / WEIGHTS_REMOVED_FILE).exists() and not any(any(folder.glob(p)) for p in WEIGHT_PATTERNS):
        raise ConfigError(f"{folder}: its trained weights were removed after evaluation (experiment setting "
                          "keep_weights: reference); set keep_weights: all and rerun the experiment to retrain them")
TRAIN_KEY_FILE = "train_key.json"  # the configuration key its checkpoints were made with
#: Inside a reference run's folder: the online recorder's files.
ONLINE_DIR = "online"


def dir_size_mb(path: str | os.PathLike) -> float:
    """MiB of the files under ``path``, each hard-linked file counted once (the NTP run of seed 0
    links the reference's weights)."""
    seen, total = set(), 0
    for f in Path(path).rglob("*"):
        if f.is_file():
            st = f.stat()
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total / 2**20
