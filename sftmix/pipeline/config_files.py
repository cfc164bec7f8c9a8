"""Experiment YAML files as differences: a ``base:`` key names the file they build on.

``base:`` is a path relative to the YAML file that holds it (or a list of such paths,
merged left to right). The file's own keys are deep-merged over its base: mappings
merge key by key, anything else (lists, numbers, strings) replaces. Bases may have bases
of their own; a loop is an error that names the files in it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

__all__ = ["deep_merge", "load_yaml_config", "packaged_config"]


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` merged into a copy of ``base``: nested mappings key by key, other values replace."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml_config(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """The mapping of a YAML file with its ``base:`` chain resolved (the ``base`` key removed)."""
    path = Path(path).resolve()
    if path in _chain:
        loop = " -> ".join(str(p) for p in (*_chain, path))
        raise ValueError(f"{path}: the base: chain loops back to this file ({loop})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of keys to values")
    bases = data.pop("base", None)
    if bases is None:
        return data
    merged: dict = {}
    for base in [bases] if isinstance(bases, (str, Path)) else bases:
        base_path = path.parent / base
        if not base_path.exists():
            raise FileNotFoundError(f"{path}: base {str(base)!r} not found (looked for {base_path})")
        merged = deep_merge(merged, load_yaml_config(base_path, (*_chain, path)))
    return deep_merge(merged, data)


def packaged_config(name: str) -> Path:
    """The path of an experiment YAML shipped inside the package (``sftmix/pipeline/configs/<name>``)."""
    return Path(str(resources.files(__package__).joinpath("configs", name)))
