"""Constants shared across sftmix: one place for every name and number a reader looks up."""

from __future__ import annotations

__version__ = "0.1.0"

#: Label of a token that is not a prediction target (prompt and padding), as in Hugging Face.
IGNORE_INDEX = -100

#: Training methods: plain next-token prediction and NTP + Mixup.
METHODS = ("ntp", "sftmix")
# The recipe's variation points (pairing, loss variant, alignment, dynamics summaries and the
# split metrics among them) are registries in sftmix.recipe.
#: Which response tokens enter an example's confidence: the content of the assistant turns
#: (default), or every trained token (content + end-of-turn). See sftmix.data.tokenize.
CONFIDENCE_TOKENS = ("content", "trained")

#: Accepted on-disk example formats, and the name of the built-in task suite.
FORMATS = ("alpaca", "chat", "sharegpt", "prompt_completion", "prompt_response")
BUILTIN = "builtin"
