"""The ``instruct`` section of an experiment YAML: its keys, defaults and checks (see
:mod:`sftmix.pipeline.instruct_stage`, which runs it). Kept apart so the configuration can check it
without importing the stages."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

__all__ = ["check_instruct"]

_DEFAULTS = {"mt_bench": True, "per_category": None, "ifeval": "build", "ifeval_seed": 0, "max_new_tokens": 256,
             "batch_size": 16, "seeds": None}


def check_instruct(section: dict) -> dict:
    """The ``instruct`` section with its defaults; a ConfigError names a bad key or value."""
    if not section:
        return {}
    unknown = sorted(set(section) - set(_DEFAULTS))
    if unknown:
        raise ConfigError(f"instruct: unknown keys {unknown}; known: {sorted(_DEFAULTS)}")
    opts = {**_DEFAULTS, **section}
    for key in ("max_new_tokens", "batch_size") + (("per_category",) if opts["per_category"] is not None else ()):
        if not isinstance(opts[key], int) or opts[key] < 1:
            raise ConfigError(f"instruct.{key} must be an integer >= 1, got {opts[key]!r}")
    if opts["seeds"] is not None and (not isinstance(opts["seeds"], list) or not opts["seeds"]
                                      or not all(isinstance(s, int) for s in opts["seeds"])):
        raise ConfigError(f"instruct.seeds must be a non-empty list of training seeds or null (all), "
                          f"got {opts['seeds']!r}")
    if opts["ifeval"] not in (None, "build"):
        if not Path(opts["ifeval"]).is_file():
            raise ConfigError(f"instruct.ifeval: {opts['ifeval']!r} is neither 'build', null nor an existing file")
        from ..analysis.ifeval import read_instruction_set  # the checkers load only when a file is named

        read_instruction_set(opts["ifeval"])   # a bad row stops the experiment before anything trains
    if not opts["mt_bench"] and opts["ifeval"] is None:
        raise ConfigError("instruct: turns on neither mt_bench nor ifeval; remove the section instead")
    return opts


