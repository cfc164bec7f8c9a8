"""Stages as data, and the one runner that keys, skips, runs and counts them.

A :class:`Stage` says what one step of a run needs and makes: its name, the stages whose
results it reads (``deps``), the configuration it depends on (``key``), the files it
leaves (``outputs``), the function that makes them, and whether it runs on every process
(training, scoring) or on the main one while the others wait. :func:`run_stages` derives
each stage's key (a hash of its own key parts and its dependencies' keys, so a changed
setting re-runs exactly the stages downstream of it), skips a stage whose outputs exist
under a matching key in :class:`StageBook`, and shows one progress bar for the whole list.

The experiment (:mod:`sftmix.pipeline.experiment`) and the ablation cells
(:mod:`sftmix.pipeline.ablation`) are lists of stages run by it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..distributed import Processes
from ..io import atomic_write_json

__all__ = ["Stage", "StageBook", "run_stages", "stage_key"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    ``outputs`` is a list of paths, or a function of the derived keys (``{name: key}``) returning
    one, for a stage whose needs depend on another stage's state. ``before(key)`` runs on the main
    process just before ``fn`` (tidying what an interrupted or differently configured run left).
    ``cached=False``: always run (the results tables, which read every finished stage).
    """

    name: str
    fn: Callable[[], Any]
    key: tuple = ()
    deps: tuple[str, ...] = ()
    outputs: Sequence[Path] | Callable[[dict[str, str]], Sequence[Path]] = ()
    everywhere: bool = False
    before: Callable[[str], None] | None = None
    cached: bool = True


def stage_key(*parts) -> str:
    """A short stable hash of JSON-able parts (paths and other objects by their ``str``)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


class StageBook:
    """Bookkeeping of finished stages in a folder (read and written by the main process):
    ``<name>.json`` (``/`` as ``__``) holds the key the outputs were made under and the seconds."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _file(self, name: str) -> Path:
        return self.dir / (name.replace("/", "__") + ".json")

    def done(self, name: str, key: str, outputs: Sequence[Path]) -> bool:
        f = self._file(name)
        return f.exists() and json.loads(f.read_text()).get("key") == key and all(Path(p).exists() for p in outputs)

    def mark(self, name: str, key: str, seconds: float) -> None:
        atomic_write_json(self._file(name), {"key": key, "seconds": round(seconds, 2), "finished": time.time()})

    def seconds(self) -> dict[str, float]:
        return {f.stem.replace("__", "/"): json.loads(f.read_text()).get("seconds", 0.0)
                for f in sorted(self.dir.glob("*.json"))}


def derive_keys(stages: Sequence[Stage]) -> dict[str, str]:
    """Each stage's key: its own parts chained with the keys of its dependencies (which come first)."""
    keys: dict[str, str] = {}
    for stage in stages:
        missing = [d for d in stage.deps if d not in keys]
        if missing:
            raise ValueError(f"stage {stage.name!r} depends on {missing}, which do not come before it")
        if stage.name in keys:
            raise ValueError(f"stage {stage.name!r} appears twice")
        keys[stage.name] = stage_key(stage.key, [keys[d] for d in stage.deps])
    return keys


@dataclass
class _Progress:
    """A line per stage that runs (``verbose``), or one bar over every stage (``bar``)."""

    total: int
    desc: str
    verbose: bool
    bar: bool
    _bar: Any = field(default=None, repr=False)

    def __post_init__(self):
        if self.bar:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=self.total, desc=self.desc, unit="stage", leave=True)

    def start(self, name: str, running: bool) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(name)
        elif running and self.verbose:
            print(f"[{name}] running", flush=True)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str("done")
            self._bar.close()


def run_stages(stages: Sequence[Stage], book: StageBook, *, procs: Processes | None = None,
               progress: bool | str = True, desc: str = "stages",
               select: Callable[[Stage], bool] | None = None) -> dict[str, Any]:
    """Run the stages in order, skipping those up to date; return ``{name: fn's return}`` of those run.

    ``select``: run only the stages it accepts (e.g. those up to some stage); the keys are still
    derived over the whole list, so a stage's key does not depend on which stages a call runs.

    Under several processes every process calls this with the same list. The main process
    alone decides whether a stage is up to date and broadcasts it, so all take the same
    branch; ``everywhere`` stages run on all processes (then meet at a barrier), the others on
    the main one while the rest wait (their return value reaches every process).
    ``progress``: True prints a line per stage that runs, ``"stages"`` shows one bar over the
    list (naming the stage running), False neither.
    """
    procs = procs or Processes()
    keys = derive_keys(stages)
    stages = [s for s in stages if select is None or select(s)]
    shown = _Progress(len(stages), desc, verbose=bool(progress) and procs.is_main,
                      bar=progress == "stages" and procs.is_main)
    returned: dict[str, Any] = {}
    for stage in stages:
        key = keys[stage.name]
        outputs = stage.outputs(keys) if callable(stage.outputs) else stage.outputs
        up_to_date = stage.cached and procs.broadcast(book.done(stage.name, key, outputs) if procs.is_main else None)
        shown.start(stage.name, not up_to_date)
        if up_to_date:
            logger.info("stage %s: up to date", stage.name)
        else:
            returned[stage.name] = _run_one(stage, key, book, procs)
        shown.step()
    shown.close()
    return returned


def _run_one(stage: Stage, key: str, book: StageBook, procs: Processes):
    start = time.time()
    if stage.before is not None:
        procs.on_main(lambda: stage.before(key), f"stage {stage.name}")
    if stage.everywhere:
        value = stage.fn()
        procs.barrier()
    else:
        value = procs.on_main(stage.fn, f"stage {stage.name}")
    if stage.cached:
        procs.on_main(lambda: book.mark(stage.name, key, time.time() - start), f"stage {stage.name}")
    return value
