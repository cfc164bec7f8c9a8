"""The embedded default: built-in task suite, offline tokenizer, tiny model factory."""
