"""Atomic file writes: a reader never sees half a file, a crash never leaves one.

Every writer in sftmix goes through :func:`atomic_write` (temporary file in the target's
folder, then ``os.replace``). Temporary names all match ``TEMP_GLOB``, so a killed
process's leftovers can be found and removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable

__all__ = ["TEMP_GLOB", "atomic_write", "atomic_write_json", "atomic_write_text"]

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
