"""Data: sources -> canonical examples (formats) -> tokens with response-only labels -> padded batches.

1. :func:`load_examples` (:mod:`.formats`) reads a source and returns canonical examples.
2. :func:`tokenize_examples` (:mod:`.tokenize`) builds response-only labels.
3. :class:`PadCollator` (:mod:`.collator`) only pads.
"""

from ..constants import BUILTIN, FORMATS
from .collator import PadCollator
from .formats import (
                      ID_COLUMNS,
                      ROLES,
                      DataError,
                      canonicalize,
                      detect_format,
                      example_id_for,
                      load_examples,
                      load_train_eval,
                      read_records,
)
from .tokenize import FALLBACK_TEMPLATE, TokenizeReport, assistant_spans, render, render_conversation, tokenize_examples

__all__ = ["BUILTIN", "FALLBACK_TEMPLATE", "FORMATS", "ID_COLUMNS", "ROLES", "DataError", "PadCollator",
           "TokenizeReport", "assistant_spans", "canonicalize", "detect_format", "example_id_for", "load_examples",
           "load_train_eval", "read_records", "render", "render_conversation", "tokenize_examples"]
