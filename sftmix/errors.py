"""The base class of the errors a user can fix: bad data, bad options, files that do not match.

The ``sftmix`` command prints these as one line, ``sftmix: error: ...``, and exits with
code 2 (``--debug`` or ``SFTMIX_DEBUG=1`` shows the traceback). Anything else is a bug and
keeps its traceback. Subclasses also derive from the built-in class callers used to catch
(``DataError`` and ``SplitError`` are ``ValueError``\\ s).
"""

from __future__ import annotations

__all__ = ["ConfigError", "SFTMixUserError"]


class SFTMixUserError(Exception):
    """An error in what the user passed; the message says what, where and what to do."""


class ConfigError(SFTMixUserError, ValueError):
    """A bad option value, option file or model name."""
