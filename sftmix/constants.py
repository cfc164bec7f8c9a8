"""Constants shared across sftmix: one place for every name and number a reader looks up."""

from __future__ import annotations

__version__ = "0.1.0"

#: Label of a token that is not a prediction target (prompt and padding), as in Hugging Face.
IGNORE_INDEX = -100

#: Training methods: plain next-token prediction and NTP + Mixup.
METHODS = ("ntp", "sftmix")
#: How confident/unconfident examples are paired for Mixup (the paper's is the first).
PAIRINGS = ("confident_unconfident", "random", "confident_confident", "unconfident_unconfident")
#: How the NTP and Mixup losses are combined.
LOSS_VARIANTS = ("ntp_plus_mixup", "equal", "mixup_only")
#: How the positions of a Mixup pair are aligned.
ALIGNMENTS = ("response", "sequence")
#: Which response tokens enter an example's confidence: the content of the assistant turns
#: (default), or every trained token (content + end-of-turn). See sftmix.data.tokenize.
CONFIDENCE_TOKENS = ("content", "trained")
#: Columns of the dynamics table a split may rank by.
SPLIT_METRICS = ("confidence", "confidence_prob", "correctness")

#: Accepted on-disk example formats, and the name of the built-in task suite.
FORMATS = ("alpaca", "chat", "sharegpt", "prompt_completion", "prompt_response")
BUILTIN = "builtin"
