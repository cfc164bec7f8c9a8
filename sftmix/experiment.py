"""The staged SFTMix experiment over one run directory, resumable.

Stages (see ../docs in the repository and DESIGN.md):

    reference  -> dynamics -> split -> train/<method>/seed<k> -> eval -> embeddings -> results

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

import yaml

from .config import SPLIT_METRICS, DataArguments, ModelArguments, SFTMixConfig
from .results import build_results, write_results
from .training import load_train_eval, write_json

logger = logging.getLogger(__name__)


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
    generate: bool = True
    embeddings: bool = True
    projection: str = "umap"                              # "umap" or "pca"
    figures: bool = True

    def __post_init__(self):
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        if not self.methods:
            raise ValueError("methods must name at least one method: 'ntp' and/or 'sftmix'")
        for method in self.methods:
            if method not in ("ntp", "sftmix"):
                raise ValueError(f"methods: unknown method {method!r}; use 'ntp' and/or 'sftmix'")
        # Checked here, not at the split stage: that comes after the reference run and scoring.
        if not 0.0 < float(self.split_ratio) < 1.0:
            raise ValueError(f"split_ratio must lie strictly between 0 and 1, got {self.split_ratio}")
        if self.split_metric not in SPLIT_METRICS:
            raise ValueError(f"split_metric={self.split_metric!r}; choose one of {', '.join(SPLIT_METRICS)}")
        if self.dynamics_mode not in ("checkpoints", "online"):
            raise ValueError(f"dynamics_mode={self.dynamics_mode!r}; use 'checkpoints' or 'online'")
        if self.projection not in ("umap", "pca"):
            raise ValueError(f"projection={self.projection!r}; use 'umap' or 'pca'")
        if self.n_checkpoints < 1:
            raise ValueError("n_checkpoints must be >= 1")
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
        import torch

        spec = {"use_cpu": not torch.cuda.is_available(), **self.training, **(extra or {}),
                "method": method, "seed": seed, "output_dir": str(output_dir)}
        if method == "sftmix":
            spec["split_file"] = str(split_file) if split_file else "<split.json>"
        return _build(SFTMixConfig, spec, "training")

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> ExperimentConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        data.update(overrides)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
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


class Processes:
    """The processes of this run: one, or several under ``accelerate launch`` / ``torchrun``.

    ``PartialState()`` is looked up afresh on every call: building ``TrainingArguments``
    resets accelerate's shared state (the process group itself survives) and sets it up
    again as training will use it.
    """

    @property
    def state(self):
        import torch
        from accelerate import PartialState

        if PartialState._shared_state:
            return PartialState()
        # Not set up yet: as TrainingArguments would with the default use_cpu (without
        # cpu=True, accelerate sees a CPU-only torchrun launch as a single process).
        return PartialState(cpu=not torch.cuda.is_available())

    @property
    def many(self) -> bool:
        return self.state.num_processes > 1

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    def broadcast(self, value):
        """The main process's ``value``, on every process."""
        if not self.many:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value if self.is_main else None])[0]

    def barrier(self) -> None:
        if self.many:
            self.state.wait_for_everyone()

    def on_main(self, fn, what: str):
        """Run ``fn`` on the main process only; the others wait and get its result.

        A failure on the main process is passed on, so the others raise instead of
        waiting at a barrier until the process-group timeout.
        """
        if not self.many:
            return fn()
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as exc:
                error = exc
        # The broadcast is also the barrier: the other processes wait here for the main one.
        failure, result = self.broadcast((None if error is None else f"{type(error).__name__}: {error}", result))
        if error is not None:
            raise error
        if failure is not None:
            raise RuntimeError(f"{what} failed on the main process: {failure}")
        return result


class Stages:
    """Bookkeeping of finished stages in ``<run>/stages/`` (read and written by the main process)."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir / "stages"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _file(self, name: str) -> Path:
        return self.dir / (name.replace("/", "__") + ".json")

    def done(self, name: str, key: str, outputs: list[Path]) -> bool:
        f = self._file(name)
        return f.exists() and json.loads(f.read_text()).get("key") == key and all(p.exists() for p in outputs)

    def mark(self, name: str, key: str, seconds: float) -> None:
        write_json(self._file(name), {"key": key, "seconds": round(seconds, 2), "finished": time.time()})

    def seconds(self) -> dict[str, float]:
        return {f.stem.replace("__", "/"): json.loads(f.read_text()).get("seconds", 0.0)
                for f in sorted(self.dir.glob("*.json"))}


def run_experiment(config: ExperimentConfig | str | Path, *, progress: bool = True) -> dict:
    """Run (or resume) every stage of an experiment and return the results dict.

    Launch it in one process, or in several with ``accelerate launch`` / ``torchrun``
    (see the module docstring); every process returns the same results.
    """
    from . import stages as st

    if not isinstance(config, ExperimentConfig):
        config = ExperimentConfig.from_yaml(config)
    _quiet_libraries()
    procs = Processes()
    run = config.run_dir
    stages = Stages(run)

    def prepare():
        _remove_stale_temp_files(run)
        write_json(run / "config.json", dataclasses.asdict(config))
        (run / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))

    procs.on_main(prepare, "writing the configuration")
    data_args = config.data_args()
    with procs.state.main_process_first():  # Hub datasets: one download, the others read the cache
        train_examples, held_out = load_train_eval(data_args)
    data_key = _hash(dataclasses.asdict(data_args))

    def stage(name, key, outputs, fn, *, everywhere: bool, before=None):
        """Run ``fn`` unless up to date; ``everywhere``: on every process, else on the main one."""
        if procs.broadcast(stages.done(name, key, outputs) if procs.is_main else None):
            logger.info("stage %s: up to date", name)
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

    def say(msg):
        if progress and procs.is_main:
            print(msg, flush=True)

    split_path = run / "split.json"
    split_key = None
    if "sftmix" in config.methods:
        ref_key = _reference_key(config, data_key)
        stage("reference", ref_key, [run / "reference" / "checkpoints.json"],
              lambda: st.reference_stage(config, train_examples, run), everywhere=True)
        dyn_key = _hash(ref_key, "dynamics")
        stage("dynamics", dyn_key, [run / "dynamics.parquet"],
              lambda: st.dynamics_stage(config, train_examples, run, progress=progress), everywhere=True)
        split_key = _hash(dyn_key, config.split_ratio, config.split_metric)
        stage("split", split_key, [split_path], lambda: st.split_stage(config, run), everywhere=False)

    for method in config.methods:
        for seed in config.seeds:
            out = run / method / f"seed{seed}"
            train_key = _hash(data_key, config.model, config.training, method, seed,
                              split_key if method == "sftmix" else None)
            stage(f"train/{method}/seed{seed}", train_key, [out / "log_history.json"],
                  lambda: st.train_stage(config, method, seed, train_examples, out, split_path),
                  everywhere=True, before=lambda: _claim_train_dir(out, train_key))
            if held_out is not None:
                stage(f"eval/{method}/seed{seed}", _hash(train_key, config.generate), [out / "eval.json"],
                      lambda: st.eval_stage(config, out, held_out, progress=progress), everywhere=False)

    if config.embeddings and "sftmix" in config.methods:
        emb_key = _hash(_reference_key(config, data_key), config.projection)
        stage("embeddings", emb_key, [run / "embeddings.npy", run / "projection.parquet"],
              lambda: st.embeddings_stage(config, train_examples, run), everywhere=False)

    def finish():
        results = build_results(run, config, stage_seconds=stages.seconds())
        write_results(run, results)
        if config.figures:
            from .figures import make_figures

            make_figures(run, run / "figures")
        return results

    results = procs.on_main(finish, "writing the results")
    say(f"results: {run / 'results.md'}")
    return results


def _claim_train_dir(out: Path, key: str) -> None:
    """Keep a training folder's checkpoints only if they were made with this configuration.

    A run killed mid-training leaves ``checkpoint-*`` folders to resume from; if the
    configuration changed since, they belong to another run and are removed.
    """
    marker = out / "train_key.json"
    if marker.exists() and json.loads(marker.read_text()).get("key") != key:
        clean_checkpoints(out)
    write_json(marker, {"key": key})


# The temporary names of this package's atomic writers (training.write_json,
# dynamics.atomic_write, the stages' np.save / parquet / results.md).
_TEMP_PATTERNS = (".*.tmp", ".*.tmp[0-9]*", ".*.tmp.*")


def _remove_stale_temp_files(run: Path) -> None:
    """Delete temporary files a killed process left behind (their writer is gone)."""
    for pattern in _TEMP_PATTERNS:
        for p in run.rglob(pattern):
            if p.is_file():
                p.unlink(missing_ok=True)


def _quiet_libraries() -> None:
    """Keep the stage log readable: our own progress bars stay, library chatter goes."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def demo_config(quick: bool = False, runs_dir: str = "runs", name: str | None = None) -> ExperimentConfig:
    """The demo on the built-in suite: minutes on 2 CPU cores (``quick``: under a minute)."""
    if quick:
        return ExperimentConfig(
            name=name or "demo-quick", runs_dir=runs_dir, seeds=[0], methods=["ntp", "sftmix"],
            model={"model_name_or_path": "tiny-llama", "tiny_hidden_size": 48},
            data={"n_train": 400, "n_test": 120, "max_length": 128},
            training={"num_train_epochs": 2, "per_device_train_batch_size": 32, "learning_rate": 3e-3,
                      "logging_steps": 5},
            reference_training={"num_train_epochs": 2}, n_checkpoints=2, embeddings=True, projection="pca")
    return ExperimentConfig(
        name=name or "demo", runs_dir=runs_dir, seeds=[0, 1, 2], methods=["ntp", "sftmix"],
        model={"model_name_or_path": "tiny-llama", "tiny_hidden_size": 64},
        data={"n_train": 1000, "n_test": 300, "max_length": 128, "noise": 0.1},
        training={"num_train_epochs": 5, "per_device_train_batch_size": 32, "learning_rate": 3e-3,
                  "logging_steps": 10},
        reference_training={"num_train_epochs": 3}, n_checkpoints=3, embeddings=True, projection="umap")


def run_demo(quick: bool = False, runs_dir: str = "runs", name: str | None = None) -> dict:
    start = time.time()
    config = demo_config(quick, runs_dir, name)
    results = run_experiment(config)
    print((config.run_dir / "results.md").read_text())
    print(f"demo finished in {time.time() - start:.0f} s; everything is in {config.run_dir}/")
    return results


def clean_checkpoints(out: Path) -> None:
    """Drop intermediate Trainer checkpoints once a run has finished and saved its weights."""
    for ckpt in out.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)

