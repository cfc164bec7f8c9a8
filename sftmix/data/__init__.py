"""Data: sources -> canonical examples (formats) -> tokens with response-only labels -> padded batches.

1. :func:`load_examples` (:mod:`.formats`) reads a source and returns canonical examples;
   local files are read by :mod:`.files` (incremental JSON, errors at line and column),
   ShareGPT conversations are repaired by :mod:`.sharegpt`, and
   :func:`load_examples_with_report` says what was repaired (:mod:`.report`).
2. :func:`tokenize_examples` (:mod:`.tokenize`) builds response-only labels.
3. :class:`PadCollator` (:mod:`.collator`) only pads.
"""

from ..constants import BUILTIN, FORMATS
from .canonical import ID_COLUMNS, ROLES, DataError, cut_exchanges, example_id_for
from .collator import PadCollator
from .files import RecordReader, Truncation, read_records
from .formats import (
                      canonicalize,
                      detect_format,
                      load_examples,
                      load_examples_with_report,
                      load_train_eval,
                      load_train_eval_with_report,
)
from .report import DataReport
from .sharegpt import DROPS as SHAREGPT_DROPS
from .sharegpt import ROLE_MAP as SHAREGPT_ROLES
from .sharegpt import TRIMS as SHAREGPT_TRIMS
from .templates import ALPACA, TEMPLATES, apply_chat_template
from .tokenize import TokenizeReport, assistant_spans, render, render_conversation, tokenize_examples

__all__ = ["ALPACA", "BUILTIN", "FORMATS", "ID_COLUMNS", "ROLES", "SHAREGPT_DROPS", "SHAREGPT_ROLES",
           "SHAREGPT_TRIMS", "TEMPLATES", "DataError", "DataReport", "PadCollator", "RecordReader", "TokenizeReport",
           "Truncation", "apply_chat_template", "assistant_spans", "canonicalize", "cut_exchanges", "detect_format",
           "example_id_for", "load_examples", "load_examples_with_report", "load_train_eval",
           "load_train_eval_with_report", "read_records", "render", "render_conversation", "tokenize_examples"]
