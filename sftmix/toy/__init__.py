"""The embedded default: built-in task suite, offline tokenizer, tiny model factory."""

from .model import FAMILIES, build_tiny_model
from .tasks import TASKS, list_tasks, make_task_suite
from .tokenizer import build_gemma_like_tokenizer, build_toy_tokenizer, tiny_tokenizer

__all__ = ["FAMILIES", "TASKS", "build_gemma_like_tokenizer", "build_tiny_model", "build_toy_tokenizer", "list_tasks",
           "make_task_suite", "tiny_tokenizer"]
