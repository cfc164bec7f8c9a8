"""Lazy public names of a package: ``from sftmix.analysis import knn_agreement`` imports only the module
that defines ``knn_agreement``, when it is first asked for.

A subpackage whose modules are slow to import (torch, transformers, matplotlib) lists its public
names by module and hands :func:`lazy_exports` its module globals; ``__all__`` is the sorted names,
and ``__getattr__`` imports a name's module on first use. Type checkers see nothing of this; the
public API is what ``__all__`` says, and ``tests/test_layering.py`` checks that every name resolves.
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(namespace: dict, exports: Mapping[str, Sequence[str]]) -> tuple[list[str], Callable, Callable]:
    """``(__all__, __getattr__, __dir__)`` for the package whose globals are ``namespace``.

    ``exports`` maps a module of the package (relative, e.g. ``"projection"`` or ``"plots"``) to the
    names it provides.
    """
    package = namespace["__name__"]
    owner = {name: module for module, names in exports.items() for name in names}
    if len(owner) != sum(len(names) for names in exports.values()):
        raise ValueError(f"{package}: a public name is exported by two modules")

    def __getattr__(name: str):
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{owner[name]}", package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(owner))

    return sorted(owner), __getattr__, __dir__
