"""From loaded examples to the training and held-out sets of an experiment, for any data source.

:func:`prepare_train_eval` calls :func:`~sftmix.data.formats.load_train_eval_with_report` and then, for
data files and named datasets (the built-in suite has its own sizes, split and noise), in
this order and only when asked for:

0. ``drop_duplicates``: leave out exact repeats (same prompt and answer) of an earlier example
   (real chat dumps have them: 742 among ShareGPT's kept conversations), so no answer is in
   both the training and the held-out set;
1. ``drop_overlong``: leave out examples whose rendered conversation has more than
   ``max_length`` tokens, instead of cutting their tail (a cut answer is a wrong answer to
   train on and to generate against); needs the tokenizer;
2. ``held_out_size``: without an ``eval_dataset``, hold out a seeded random sample of
   this many examples;
3. ``train_size``: train on a seeded random sample of this many of the rest;
4. ``noise``: swap the final answers of that fraction of the training examples among
   themselves (:func:`~sftmix.data.noise.swap_responses`).

Sampling and swapping use ``selection_seed``. The returned :class:`PrepareReport` counts what each
step did, for the data report, and keeps what loading did (``loading``: the
:class:`~sftmix.data.report.DataReport` of each source; without ``return_report`` their summaries
are logged as warnings whenever loading changed the data).
"""

from __future__ import annotations

import logging
import json
import random
from dataclasses import dataclass, field

import datasets

from ..constants import BUILTIN
from .formats import load_train_eval_with_report
from .noise import swap_responses
from .report import DataReport
from .tokenize import render_conversation

__all__ = ["PrepareReport", "prepare_train_eval", "rendered_lengths"]

logger = logging.getLogger(__name__)


@dataclass
class PrepareReport:
    """What :func:`prepare_train_eval` did, step by step (counts of examples)."""

    loaded: int = 0
    dropped_duplicates: int = 0
    dropped_overlong: int = 0
    held_out: int = 0
    train: int = 0
    noisy: int = 0
    steps: list[str] = field(default_factory=list)
    loading: dict[str, DataReport] = field(default_factory=dict)   # "train", "held_out": what loading did

    def lines(self) -> list[str]:
        return self.steps

    def loading_lines(self) -> list[str]:
        """One summary line per data file or named dataset loaded (records read, repairs by reason, kept)."""
        return [f"{name.replace('_', '-')}: {r.summary()}" for name, r in self.loading.items()
                if not r.source.startswith(f"{BUILTIN}[")]


def rendered_lengths(examples: datasets.Dataset, tokenizer) -> list[int]:
    """Tokens of each example's whole rendered conversation (prompt, earlier turns and answer)."""
    def count(batch):
        texts = [render_conversation(tokenizer, m + [{"role": "assistant", "content": r}])
                 for m, r in zip(batch["messages"], batch["response"])]
        return {"n": [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]}

    return examples.map(count, batched=True, remove_columns=examples.column_names,
                        desc="Measuring lengths")["n"]


def _drop_duplicates(examples: datasets.Dataset) -> tuple[datasets.Dataset, int]:
    """The examples without exact repeats (same prompt messages and answer), first one kept."""
    seen, keep = set(), []
    for i, (messages, response) in enumerate(zip(examples["messages"], examples["response"])):
        key = json.dumps([messages, response], sort_keys=True, ensure_ascii=False)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return examples.select(keep), len(examples) - len(keep)


def _sample(n: int, k: int, rng: random.Random) -> list[int]:
    return sorted(rng.sample(range(n), k))


def prepare_train_eval(data_args, tokenizer=None, *, return_report: bool = False):
    """Training and held-out examples for ``data_args`` (see the module docstring)."""
    train, held_out, loading = load_train_eval_with_report(data_args)
    report = PrepareReport(loaded=len(train), loading=loading)
    if not return_report:
        for source_report in loading.values():
            if source_report.changed:
                logger.warning("%s", source_report.summary())
    if data_args.dataset == BUILTIN:
        report.train = len(train)
        return (train, held_out, report) if return_report else (train, held_out)
    rng = random.Random(f"sftmix-data:{data_args.selection_seed}")
    if data_args.drop_duplicates:
        train, dropped = _drop_duplicates(train)
        report.dropped_duplicates = dropped
        report.steps.append(f"drop_duplicates: {dropped} examples repeat an earlier one's prompt and answer exactly "
                            f"and were left out; {len(train)} kept")
    if data_args.drop_overlong:
        if tokenizer is None:
            raise ValueError("drop_overlong needs the tokenizer (to count tokens)")
        keep = [i for i, n in enumerate(rendered_lengths(train, tokenizer)) if n <= data_args.max_length]
        before = len(train)
        report.dropped_overlong = before - len(keep)
        train = train.select(keep)
        report.steps.append(f"drop_overlong: {report.dropped_overlong} of {before} examples are longer than "
                            f"max_length={data_args.max_length} tokens and were left out; {len(train)} kept")
        if held_out is not None:
            held_keep = [i for i, n in enumerate(rendered_lengths(held_out, tokenizer)) if n <= data_args.max_length]
            if len(held_keep) < len(held_out):
                report.steps.append(f"drop_overlong: {len(held_out) - len(held_keep)} held-out examples left out")
            held_out = held_out.select(held_keep)
    if data_args.held_out_size and held_out is None:
        if data_args.held_out_size >= len(train):
            raise ValueError(f"held_out_size={data_args.held_out_size} leaves no training examples "
                             f"({len(train)} available)")
        chosen = set(_sample(len(train), data_args.held_out_size, rng))
        held_out = train.select(sorted(chosen))
        train = train.select([i for i in range(len(train)) if i not in chosen])
        report.held_out = len(held_out)
        report.steps.append(f"held_out_size: {len(held_out)} examples held out at random (selection_seed="
                            f"{data_args.selection_seed})")
    if data_args.train_size is not None and data_args.train_size < len(train):
        available = len(train)
        train = train.select(_sample(available, data_args.train_size, rng))
        report.steps.append(f"train_size: a random {len(train)} of {available} examples train")
    if data_args.noise > 0:
        train = swap_responses(train, data_args.noise, seed=data_args.selection_seed)
        report.noisy = int(sum(train["noisy"]))
        report.steps.append(f"noise: {report.noisy} training answers swapped between conversations")
    report.train = len(train)
    return (train, held_out, report) if return_report else (train, held_out)
