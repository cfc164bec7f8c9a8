"""The errors a user can fix: bad data, bad options, files that do not match. All of them live here.

The ``sftmix`` command prints these as one line, ``sftmix: error: ...``, and exits with
code 2 (``--debug`` or ``SFTMIX_DEBUG=1`` shows the traceback). Anything else is a bug and
keeps its traceback. Subclasses also derive from the built-in class callers used to catch
(all of them are ``ValueError``\\ s). The modules that raise them also export them
(``sftmix.data.DataError``, ``sftmix.dynamics.SplitError``, ...).
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "DatasetMismatchError", "SFTMixUserError", "SplitError"]


class SFTMixUserError(Exception):
    """An error in what the user passed; the message says what, where and what to do."""


class ConfigError(SFTMixUserError, ValueError):
    """A bad option value, option file or model name."""


class DataError(SFTMixUserError, ValueError):
    """Bad input data; the message names the file, row and field."""


class SplitError(SFTMixUserError, ValueError):
    """A split that is malformed or does not match the training data."""


class DatasetMismatchError(SFTMixUserError, ValueError):
    """A stored table was computed on a different dataset than the one given."""
