"""The staged SFTMix experiment over one run directory, resumable.

Stages (the README's "Architecture" section shows where each lives):

    reference  -> dynamics -> split -> embeddings -> train/<method>/seed<k> -> eval -> results

``run_experiment(config, until="split")`` stops after a stage (see :data:`STAGES`): a
notebook that needs only the dynamics table and the split (or the embeddings) runs the
same stages, with the same bookkeeping, as the full experiment.

Each stage records a key (a hash of the configuration it depends on, chained with the
keys of the stages it reads) in ``stages/<name>.json`` after its outputs are written
atomically. A stage is skipped when its outputs exist and its key matches, so an
interrupted run resumes where it stopped and a changed setting re-runs only the stages
that depend on it. Training stages checkpoint every epoch and resume from the newest
complete checkpoint, reproducing the uninterrupted run.

Under several processes (``accelerate launch`` / ``torchrun``) every process runs this
function. The stages that train or score (reference, dynamics, train) run on every
process; the others (split, eval, embeddings, results, figures) run on the main process
while the rest wait. Only the main process writes files, and it alone decides whether a
stage is up to date; its decision is broadcast so every process takes the same branch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
import transformers
import yaml

from ..analysis.results import build_results, write_results
from ..config import DataArguments, ModelArguments, SFTMixConfig
from ..constants import CONFIDENCE_TOKENS, METHODS
from ..data.prepare import prepare_train_eval
from ..distributed import Processes
from ..io import (
    EVAL_FILE,
    LOG_HISTORY_FILE,
    TRAIN_KEY_FILE,
    RunDir,
    atomic_write_json,
    atomic_write_text,
    remove_temp_files,
)
from ..models import load_tokenizer
from ..recipe import SPLIT_METRICS
from ..train import clean_checkpoints
from ..viz.figures import make_figures
from . import stages as st
from .config_files import load_yaml_config, packaged_config

logger = logging.getLogger(__name__)

#: The stages in the order they run; ``run_experiment(..., until=name)`` stops after ``name``.
#: The embeddings depend only on the reference run and the dynamics, so they come before training.
STAGES = ("reference", "dynamics", "split", "embeddings", "train", "eval", "results")


@dataclass
class ExperimentConfig:
    """One experiment: the model, data and training settings plus the recipe's stages."""

    name: str = "experiment"
    runs_dir: str = "runs"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    methods: list[str] = field(default_factory=lambda: ["ntp", "sftmix"])
    model: dict = field(default_factory=dict)             # ModelArguments fields
    data: dict = field(default_factory=dict)              # DataArguments fields
    training: dict = field(default_factory=dict)          # SFTMixConfig fields shared by all runs
    reference_model: dict | None = None                   # ModelArguments for the reference (default: model)
    reference_training: dict = field(default_factory=dict)  # overrides for the reference run
    n_checkpoints: int = 3
    dynamics_mode: str = "checkpoints"                    # "checkpoints" (paper) or "online"
    split_ratio: float = 0.5
    split_metric: str = "confidence"
    # Which response tokens enter confidence: "content" (default) or "trained" (content +
    # end-of-turn); see sftmix.data.tokenize. Training always uses content + end-of-turn.
    confidence_tokens: str = "content"
    # Which reference checkpoints keep their weights once the dynamics are scored: "last"
    # (default: the scores stay; a real model's checkpoint is its full weights) or "all".
    # With "last", re-scoring (e.g. after changing confidence_tokens) retrains the reference.
    reference_weights: str = "last"
    generate: bool = True
    # Greedy generation budget per held-out answer; null = longest reference answer + 16 tokens
    # (short-answer suites). Generations that reach it are counted in eval.json / results.
    max_new_tokens: int | None = 512
    # Score greedy exact match against the references (short-answer data such as the built-in
    # suite); false for open-ended chats, which are generated (side by side, judge exports) but
    # never match a reference word for word.
    exact_match: bool = True
    embeddings: bool = True
    projection: str = "umap"                              # "umap" or "pca"
    figures: bool = True
    # The paper's reference model is the model being trained, trained the same way: when
    # nothing sets the reference apart (no reference_model, no reference_training), the NTP
    # run of the first seed is the reference run and is not trained twice.
    ntp_from_reference: bool = True

    @property
    def reference_is_ntp_run(self) -> bool:
        """True when the NTP run of the first seed is taken from the reference run."""
        return (self.ntp_from_reference and self.reference_model is None and not self.reference_training
                and self.dynamics_mode == "checkpoints" and "ntp" in self.methods and "sftmix" in self.methods)

    def __post_init__(self):
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if not self.methods:
            raise ValueError("methods must name at least one method: 'ntp' and/or 'sftmix'")
        for method in self.methods:
            if method not in METHODS:
                raise ValueError(f"methods: unknown method {method!r}; use 'ntp' and/or 'sftmix'")
        # Checked here, not at the split stage: that comes after the reference run and scoring.
        if not 0.0 < float(self.split_ratio) < 1.0:
            raise ValueError(f"split_ratio must lie strictly between 0 and 1, got {self.split_ratio}")
        if self.confidence_tokens not in CONFIDENCE_TOKENS:
            raise ValueError(f"confidence_tokens={self.confidence_tokens!r}; choose one of "
                             f"{', '.join(CONFIDENCE_TOKENS)}")
        if self.reference_weights not in ("last", "all"):
            raise ValueError(f"reference_weights={self.reference_weights!r}; use 'last' or 'all'")
        if self.split_metric not in SPLIT_METRICS:
            raise ValueError(f"split_metric={self.split_metric!r}; choose one of {', '.join(SPLIT_METRICS)}")
        if self.dynamics_mode not in ("checkpoints", "online"):
            raise ValueError(f"dynamics_mode={self.dynamics_mode!r}; use 'checkpoints' or 'online'")
        if self.projection not in ("umap", "pca"):
            raise ValueError(f"projection={self.projection!r}; use 'umap' or 'pca'")
        if self.n_checkpoints < 1:
            raise ValueError("n_checkpoints must be >= 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1 (or null), got {self.max_new_tokens}")
        # Resolve the nested dataclasses now so a bad key fails before anything runs.
        self.model_args(), self.data_args(), self.training_args("ntp", self.seeds[0], Path("/tmp/x"))

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def model_args(self, reference: bool = False) -> ModelArguments:
        spec = self.reference_model if (reference and self.reference_model) else self.model
        return _build(ModelArguments, spec, "model")

    def data_args(self) -> DataArguments:
        return _build(DataArguments, self.data, "data")

    def training_args(self, method: str, seed: int, output_dir: Path, split_file: Path | None = None,
                      extra: dict | None = None) -> SFTMixConfig:
        spec = {"use_cpu": not torch.cuda.is_available(), **self.training, **(extra or {}),
                "method": method, "seed": seed, "output_dir": str(output_dir)}
        if method == "sftmix":
            spec["split_file"] = str(split_file) if split_file else "<split.json>"
        return _build(SFTMixConfig, spec, "training")

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> ExperimentConfig:
        """Read an experiment YAML (resolving its ``base:`` chain); ``overrides`` replace top-level keys."""
        data = load_yaml_config(path)
        data.update(overrides)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            flat = {f.name for c in (ModelArguments, DataArguments, SFTMixConfig) for f in dataclasses.fields(c)}
            if set(unknown) <= flat:
                raise ValueError(f"{path}: keys {unknown} are training options, not experiment keys: this is an "
                                 f"options file for `sftmix train` (run `sftmix train {path}`), or nest them under "
                                 f"model:, data: or training:")
            raise ValueError(f"{path}: unknown keys {unknown}; valid keys: {sorted(names)}")
        return cls(**data)


def _build(cls, spec: dict, section: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(spec) - names)
    if unknown:
        raise ValueError(f"{section}: unknown keys {unknown} for {cls.__name__}")
    return cls(**spec)


def _reference_key(config: ExperimentConfig, data_key: str) -> str:
    # The reference run trains with the first seed.
    return _hash(data_key, config.model_args(reference=True).__dict__, config.training, config.reference_training,
                 config.n_checkpoints, config.dynamics_mode, config.seeds[0])


def _hash(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


class Stages:
    """Bookkeeping of finished stages in ``<run>/stages/`` (read and written by the main process)."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _file(self, name: str) -> Path:
        return self.dir / (name.replace("/", "__") + ".json")

    def done(self, name: str, key: str, outputs: list[Path]) -> bool:
        f = self._file(name)
        return f.exists() and json.loads(f.read_text()).get("key") == key and all(p.exists() for p in outputs)

    def mark(self, name: str, key: str, seconds: float) -> None:
        atomic_write_json(self._file(name), {"key": key, "seconds": round(seconds, 2), "finished": time.time()})

    def seconds(self) -> dict[str, float]:
        return {f.stem.replace("__", "/"): json.loads(f.read_text()).get("seconds", 0.0)
                for f in sorted(self.dir.glob("*.json"))}


def run_experiment(config: ExperimentConfig | str | Path, *, progress: bool | str = True,
                   until: str | None = None) -> dict:
    """Run (or resume) every stage of an experiment and return the results dict.

    Launch it in one process, or in several with ``accelerate launch`` / ``torchrun``
    (see the module docstring); every process returns the same results.

    ``until`` names the last stage to run (one of :data:`STAGES`, e.g. ``"split"``); the
    stages after it are skipped and ``{"run_dir": ..., "stages": [...]}`` (the stages that
    ran or were up to date) is returned instead of the results.

    ``progress``: True prints a line per stage and the stages' own bars (scoring,
    generating); ``"stages"`` (for notebooks) shows a single bar that advances once per
    stage and names the stage running; False shows neither. Library bars (datasets
    reading and tokenizing, weight loading) are always off.
    """
    if progress not in (True, False, "stages"):
        raise ValueError(f'progress={progress!r}; use True, False or "stages"')
    if until is not None and until not in STAGES:
        raise ValueError(f"until={until!r}; choose one of {', '.join(STAGES)}")
    last = STAGES.index(until or "results")

    def wanted(name: str) -> bool:
        return STAGES.index(name) <= last

    if not isinstance(config, ExperimentConfig):
        config = ExperimentConfig.from_yaml(config)
    _quiet_libraries()
    procs = Processes()
    run = config.run_dir
    rd = RunDir(run)
    stages = Stages(rd.stages)

    def prepare():
        remove_temp_files(run)
        atomic_write_json(rd.config_json, dataclasses.asdict(config))
        atomic_write_text(rd.config, yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))

    procs.on_main(prepare, "writing the configuration")
    data_args = config.data_args()
    tokenizer = load_tokenizer(config.model_args()) if data_args.drop_overlong else None
    with procs.state.main_process_first():  # Hub datasets: one download, the others read the cache
        train_examples, held_out, data_report = prepare_train_eval(data_args, tokenizer, return_report=True)
    procs.on_main(lambda: _write_data_report(rd.data_report, data_report), "writing the data report")
    if progress and procs.is_main:
        for line in data_report.loading_lines() + data_report.lines():
            print(f"[data] {line}", flush=True)
        if "sftmix" in config.methods:
            print(f"[reference] {_reference_note(config)}", flush=True)
    data_key = _hash(dataclasses.asdict(data_args))
    bar = _stage_bar(config, until, held_out is not None) if progress == "stages" and procs.is_main else None
    if progress == "stages":
        progress = False  # the stages' own bars stay off: one bar for the whole call

    def stage(name, key, outputs, fn, *, everywhere: bool, before=None):
        """Run ``fn`` unless up to date; ``everywhere``: on every process, else on the main one."""
        if bar is not None:
            bar.set_postfix_str(name)
        if procs.broadcast(stages.done(name, key, outputs) if procs.is_main else None):
            logger.info("stage %s: up to date", name)
            if bar is not None:
                bar.update(1)
            return
        say(f"[{name}] running")
        start = time.time()
        if before is not None:
            procs.on_main(before, f"stage {name}")
        if everywhere:
            fn()
            procs.barrier()
        else:
            procs.on_main(fn, f"stage {name}")
        procs.on_main(lambda: stages.mark(name, key, time.time() - start), f"stage {name}")
        if bar is not None:
            bar.update(1)

    def say(msg):
        if progress and procs.is_main:
            print(msg, flush=True)

    split_path = rd.split
    split_key = None
    reached = []
    if "sftmix" in config.methods:
        ref_key = _reference_key(config, data_key)
        dyn_key = _hash(ref_key, "dynamics", config.confidence_tokens)
        fits = held_out is not None and config.dynamics_mode != "online"
        dyn_outputs = [rd.dynamics] + ([rd.fit] if fits else [])
        stage("reference", ref_key, _reference_outputs(rd, stages, dyn_key, dyn_outputs, wanted("dynamics")),
              lambda: st.reference_stage(config, train_examples, run, held_out), everywhere=True,
              before=lambda: _clear_reference_dir(rd))
        reached.append("reference")
        if wanted("dynamics"):
            stage("dynamics", dyn_key, dyn_outputs,
                  lambda: st.dynamics_stage(config, train_examples, run, progress=progress,
                                            held_out=held_out if fits else None), everywhere=True)
            reached.append("dynamics")
        split_key = _hash(dyn_key, config.split_ratio, config.split_metric)
        if wanted("split"):
            stage("split", split_key, [split_path], lambda: st.split_stage(config, run), everywhere=False)
            reached.append("split")
        if config.embeddings and wanted("embeddings"):
            emb_key = _hash(ref_key, config.projection)
            stage("embeddings", emb_key, [rd.embeddings, rd.projection],
                  lambda: st.embeddings_stage(config, train_examples, run, progress=progress), everywhere=False)
            reached.append("embeddings")

    for method in config.methods if wanted("train") else []:
        for seed in config.seeds:
            out = rd.train(method, seed)
            train_key = _hash(data_key, config.model, config.training, method, seed,
                              split_key if method == "sftmix" else None)
            if method == "ntp" and seed == config.seeds[0] and config.reference_is_ntp_run:
                train_key = _hash(train_key, ref_key, "from-reference")
                stage(f"train/{method}/seed{seed}", train_key, [out / LOG_HISTORY_FILE],
                      lambda: st.ntp_from_reference(config, run, out), everywhere=True,
                      before=lambda: _claim_train_dir(out, train_key))
            else:
                stage(f"train/{method}/seed{seed}", train_key, [out / LOG_HISTORY_FILE],
                      lambda: st.train_stage(config, method, seed, train_examples, out, split_path, held_out),
                      everywhere=True, before=lambda: _claim_train_dir(out, train_key))
            reached.append(f"train/{method}/seed{seed}")
            if held_out is not None and wanted("eval"):
                eval_key = _hash(train_key, config.generate, config.max_new_tokens, config.exact_match)
                stage(f"eval/{method}/seed{seed}", eval_key,
                      [out / EVAL_FILE],
                      lambda: st.eval_stage(config, out, held_out, progress=progress), everywhere=False)
                reached.append(f"eval/{method}/seed{seed}")

    if not wanted("results"):
        if bar is not None:
            bar.set_postfix_str("done")
            bar.close()
        return {"run_dir": run, "stages": reached}

    def finish():
        results = build_results(run, config, stage_seconds=stages.seconds())
        write_results(run, results)
        if config.figures:
            make_figures(run, rd.figures)
        return results

    if bar is not None:
        bar.set_postfix_str("results")
    results = procs.on_main(finish, "writing the results")
    if bar is not None:
        bar.update(1)
        bar.set_postfix_str("done")
        bar.close()
    say(f"results: {rd.results_md}")
    return results


def _stage_bar(config: ExperimentConfig, until: str | None, has_held_out: bool):
    """One progress bar over the stages this call will visit (run or find up to date)."""
    from tqdm.auto import tqdm

    last = STAGES.index(until or "results")
    n = 0
    if "sftmix" in config.methods:
        n += sum(STAGES.index(s) <= last for s in ("reference", "dynamics", "split"))
        n += int(config.embeddings and STAGES.index("embeddings") <= last)
    if STAGES.index("train") <= last:
        per_run = 1 + int(has_held_out and STAGES.index("eval") <= last)
        n += len(config.methods) * len(config.seeds) * per_run
    n += int(STAGES.index("results") <= last)
    return tqdm(total=n, desc=f"{config.name}: stages", unit="stage", leave=True)


def _write_data_report(path: Path, prepared) -> None:
    """``data_report.json``: what loading did per source ("train", "held_out") and what preparing did
    ("prepare"); rewritten only when it changed (a rerun leaves the run directory as it was)."""
    steps = {k: v for k, v in dataclasses.asdict(prepared).items() if k != "loading"}
    report = {**{k: r.to_dict() for k, r in prepared.loading.items()}, "prepare": steps}
    report = json.loads(json.dumps(report, default=str))
    if not path.exists() or json.loads(path.read_text()) != report:
        atomic_write_json(path, report)


def _clear_reference_dir(rd: RunDir) -> None:
    """Empty the reference folder before the reference run trains (again).

    Its checkpoints are named by step, and the dynamics stage reads a checkpoint's scores from
    ``scores/`` when they exist (an interrupted scoring resumes): scores or checkpoints left by a
    reference run of another configuration would be read as this one's.
    """
    if rd.reference.exists():
        shutil.rmtree(rd.reference)


def _claim_train_dir(out: Path, key: str) -> None:
    """Keep a training folder's checkpoints only if they were made with this configuration.

    A run killed mid-training leaves ``checkpoint-*`` folders to resume from; if the
    configuration changed since, they belong to another run and are removed.
    """
    marker = out / TRAIN_KEY_FILE
    if marker.exists() and json.loads(marker.read_text()).get("key") != key:
        clean_checkpoints(out)
    atomic_write_json(marker, {"key": key})


def _reference_note(config: ExperimentConfig) -> str:
    """Whether the NTP run of the first seed is the reference run, and why not when it is not."""
    if config.reference_is_ntp_run:
        return f"the NTP run of seed {config.seeds[0]} is the reference run (trained once, as in the paper)"
    why = [name for name, on in (("reference_model", config.reference_model is not None),
                                 ("reference_training", bool(config.reference_training)),
                                 ("dynamics_mode=online", config.dynamics_mode == "online"),
                                 ("ntp_from_reference=false", not config.ntp_from_reference)) if on]
    if "ntp" not in config.methods:
        why.append("no NTP method")
    return f"trained apart from NTP ({', '.join(why)} set it apart): NTP seed {config.seeds[0]} trains separately"


def _reference_outputs(rd: RunDir, stages: Stages, dyn_key: str, dyn_outputs: list[Path],
                       dynamics_wanted: bool) -> list[Path]:
    """What the reference stage must have left: its checkpoint list and last weights; and every
    checkpoint's weights while the dynamics still need scoring (they may have been pruned)."""
    outputs = [rd.checkpoints]
    if not rd.checkpoints.exists():
        return outputs
    checkpoints = [Path(c) for c in json.loads(rd.checkpoints.read_text())]
    needed = checkpoints if dynamics_wanted and not stages.done("dynamics", dyn_key, dyn_outputs) \
        else checkpoints[-1:]
    return outputs + [st.checkpoint_weights(c) for c in needed]


def _quiet_libraries() -> None:
    """Keep the stage log readable: our own progress bars stay, library chatter goes."""
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def demo_config(quick: bool | str = False, runs_dir: str = "runs", name: str | None = None, *,
                real: bool = False) -> ExperimentConfig:
    """The demo on the built-in suite: minutes on 2 CPU cores (``quick``: under a minute).

    ``real``: SmolLM2-135M on real ShareGPT chats instead (needs the real-model artefacts;
    ~13 minutes, ``quick``: ~5, ``quick="smoke"``: every stage at the smallest size, ~2
    minutes, for CI). The settings are the package's ``pipeline/configs/demo.yaml``
    (``demo_quick.yaml``, ``real.yaml``, ``real_quick.yaml``, ``real_smoke.yaml``).
    """
    if quick == "smoke" and not real:
        raise ValueError('quick="smoke" is the real-model pipeline at CI size: pass real=True')
    size = {False: "", True: "_quick", "smoke": "_smoke"}[quick]
    file = ("real" if real else "demo") + size + ".yaml"
    config = ExperimentConfig.from_yaml(packaged_config(file), runs_dir=runs_dir)
    return dataclasses.replace(config, name=name) if name else config


def run_demo(quick: bool = False, runs_dir: str = "runs", name: str | None = None, *, real: bool = False) -> dict:
    start = time.time()
    config = demo_config(quick, runs_dir, name, real=real)
    results = run_experiment(config)
    print(RunDir(config.run_dir).results_md.read_text())
    print(f"demo finished in {time.time() - start:.0f} s; everything is in {config.run_dir}/")
    return results
