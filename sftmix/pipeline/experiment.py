"""The staged SFTMix experiment over one run directory, resumable.

Stages (the README's "Architecture" section shows where each lives):

    reference  -> dynamics -> split -> embeddings -> train/<method>/seed<k> -> eval -> results

``run_experiment(config, until="split")`` stops after a stage (see :data:`STAGES`): a
notebook that needs only the dynamics table and the split (or the embeddings) runs the
same stages, with the same bookkeeping, as the full experiment.

The experiment is a list of :class:`~sftmix.pipeline.runner.Stage` objects
(:func:`experiment_stages`: each stage's name, the stages it reads, the settings it depends on,
its outputs, its function and which processes run it), run by
:func:`sftmix.pipeline.runner.run_stages`. Each stage records a key (a hash of the
configuration it depends on, chained with the keys of the stages it reads) in
``stages/<name>.json`` after its outputs are written atomically. A stage is skipped when
its outputs exist and its key matches, so an interrupted run resumes where it stopped and a
changed setting re-runs only the stages that depend on it. Training stages checkpoint every
epoch and resume from the newest complete checkpoint, reproducing the uninterrupted run.

Under several processes (``accelerate launch`` / ``torchrun``) every process runs this
function. The stages that train or score (reference, dynamics, train) run on every
process; the others (split, eval, embeddings, results, figures) run on the main process
while the rest wait. Only the main process writes files, and it alone decides whether a
stage is up to date; its decision is broadcast so every process takes the same branch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import transformers
import yaml

from ..analysis.results import build_results, write_results
from ..data.prepare import prepare_train_eval
from ..distributed import Processes
from ..io import EVAL_FILE, LOG_HISTORY_FILE, RunDir, atomic_write_json, atomic_write_text, remove_temp_files
from ..models import load_tokenizer
from ..viz.figures import make_figures
from . import stages as st
from .config_files import packaged_config
from .experiment_config import ExperimentConfig
from .instruct_stage import instruct_output, instruct_results, instruct_stage
from .runner import Stage, StageBook, run_stages

logger = logging.getLogger(__name__)

#: The stages in the order they run; ``run_experiment(..., until=name)`` stops after ``name``.
#: The embeddings depend only on the reference run and the dynamics, so they come before training.
STAGES = ("reference", "dynamics", "split", "embeddings", "train", "eval", "instruct", "results")


@dataclass
class RunContext:
    """What the stages of one call share: the configuration, the run directory and its stage book,
    the prepared data, and whether the stages show their own progress bars."""

    config: ExperimentConfig
    rd: RunDir
    book: StageBook
    train_examples: datasets.Dataset
    held_out: datasets.Dataset | None
    bars: bool = True


def open_run(config: ExperimentConfig, *, progress: bool | str = True) -> RunContext:
    """Write the configuration, prepare the data (printing the data report) and open the stage book."""
    _quiet_libraries()
    procs = Processes()
    rd = RunDir(config.run_dir)

    def prepare():
        remove_temp_files(rd.root)
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
    return RunContext(config, rd, StageBook(rd.stages), train_examples, held_out, bars=progress is True)


def experiment_stages(ctx: RunContext, *, until: str | None = None) -> list[Stage]:
    """The experiment as a list of :class:`~sftmix.pipeline.runner.Stage`: reference, dynamics,
    split, embeddings (when the config has SFTMix), then train and eval per method and seed, and
    the results. Every stage is listed (the keys chain through all of them); ``until`` (see
    :data:`STAGES`) only tells the reference stage whether the dynamics will be scored in this
    call. :func:`reaches` says which stages a call with ``until`` runs."""
    stages = _reference_stages(ctx, dynamics_wanted=reaches("dynamics", until))
    stages += [s for method in ctx.config.methods for seed in ctx.config.seeds
               for s in _run_stages(ctx, method, seed)]
    stages.append(Stage("results", lambda: _finish(ctx), cached=False))
    return stages


def reaches(name: str, until: str | None) -> bool:
    """Whether a call with ``until`` runs the stage ``name`` (``train/ntp/seed0`` is a ``train`` stage)."""
    if until is not None and until not in STAGES:
        raise ValueError(f"until={until!r}; choose one of {', '.join(STAGES)}")
    return STAGES.index(name.split("/")[0]) <= STAGES.index(until or "results")


def _data_part(config: ExperimentConfig) -> tuple:
    return ("data", dataclasses.asdict(config.data_args()))


def _reference_stages(ctx: RunContext, *, dynamics_wanted: bool) -> list[Stage]:
    config, rd = ctx.config, ctx.rd
    if "sftmix" not in config.methods:
        return []
    fits = ctx.held_out is not None and config.dynamics_mode != "online"
    dyn_outputs = [rd.dynamics] + ([rd.fit] if fits else [])
    # The reference run trains with the first seed.
    reference_key = (_data_part(config), config.model_args(reference=True).__dict__, config.training,
                     config.reference_training, config.n_checkpoints, config.dynamics_mode, config.seeds[0])
    stages = [
        Stage("reference", lambda: st.reference_stage(config, ctx.train_examples, rd.root, ctx.held_out),
              key=reference_key, everywhere=True, before=lambda key: st.clear_reference_dir(rd),
              outputs=lambda keys: _reference_outputs(ctx, keys["dynamics"], dyn_outputs, dynamics_wanted)),
        Stage("dynamics", lambda: st.dynamics_stage(config, ctx.train_examples, rd.root, progress=ctx.bars,
                                                    held_out=ctx.held_out if fits else None),
              key=(config.confidence_tokens,), deps=("reference",), outputs=dyn_outputs, everywhere=True),
        Stage("split", lambda: st.split_stage(config, rd.root), key=(config.split_ratio, config.split_metric),
              deps=("dynamics",), outputs=[rd.split]),
    ]
    if config.embeddings:
        stages.append(Stage("embeddings", lambda: st.embeddings_stage(config, ctx.train_examples, rd.root,
                                                                      progress=ctx.bars),
                            key=(config.projection,), deps=("reference",), outputs=[rd.embeddings, rd.projection]))
    return stages


def _run_stages(ctx: RunContext, method: str, seed: int) -> list[Stage]:
    """Training (or taking the reference run as the NTP run) and evaluation of one (method, seed)."""
    config, out = ctx.config, ctx.rd.train(method, seed)
    name = f"train/{method}/seed{seed}"
    claim = lambda key: st.claim_train_dir(out, key)  # noqa: E731
    if method == "ntp" and seed == config.seeds[0] and config.reference_is_ntp_run:
        train = Stage(name, lambda: st.ntp_from_reference(config, ctx.rd.root, out), key=("from-reference",),
                      deps=("reference",), outputs=[out / LOG_HISTORY_FILE], everywhere=True, before=claim)
    else:
        train = Stage(name, lambda: st.train_stage(config, method, seed, ctx.train_examples, out, ctx.rd.split,
                                                   ctx.held_out),
                      key=(_data_part(config), config.model, config.training, method, seed),
                      deps=("split",) if method == "sftmix" else (), outputs=[out / LOG_HISTORY_FILE],
                      everywhere=True, before=claim)
    if ctx.held_out is None:
        return [train]
    evaluate = Stage(f"eval/{method}/seed{seed}", lambda: st.eval_stage(config, out, ctx.held_out,
                                                                        progress=ctx.bars),
                     key=(config.generate, config.max_new_tokens, config.exact_match), deps=(name,),
                     outputs=[out / EVAL_FILE])
    if not config.instruct:
        return [train, evaluate]
    instruct = Stage(f"instruct/{method}/seed{seed}", lambda: instruct_stage(config, ctx.rd.root, method, seed, out,
                                                                             progress=ctx.bars),
                     key=(config.instruct,), deps=(name,), outputs=[instruct_output(ctx.rd.root, method, seed)])
    return [train, evaluate, instruct]


def _finish(ctx: RunContext) -> dict:
    results = build_results(ctx.rd.root, ctx.config, stage_seconds=ctx.book.seconds())
    if ctx.config.instruct:
        results["instruct"] = instruct_results(ctx.rd.root, ctx.config)
    write_results(ctx.rd.root, results)
    if ctx.config.figures:
        make_figures(ctx.rd.root, ctx.rd.figures)
    return results


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
    if not isinstance(config, ExperimentConfig):
        config = ExperimentConfig.from_yaml(config)
    ctx = open_run(config, progress=progress)
    stages = experiment_stages(ctx, until=until)
    returned = run_stages(stages, ctx.book, progress=progress, desc=f"{config.name}: stages",
                          select=lambda stage: reaches(stage.name, until))
    if until not in (None, "results"):
        return {"run_dir": config.run_dir, "stages": [s.name for s in stages if reaches(s.name, until)]}
    if progress and Processes().is_main:
        print(f"results: {ctx.rd.results_md}", flush=True)
    return returned["results"]


def _write_data_report(path: Path, prepared) -> None:
    """``data_report.json``: what loading did per source ("train", "held_out") and what preparing did
    ("prepare"); rewritten only when it changed (a rerun leaves the run directory as it was)."""
    steps = {k: v for k, v in dataclasses.asdict(prepared).items() if k != "loading"}
    report = {**{k: r.to_dict() for k, r in prepared.loading.items()}, "prepare": steps}
    report = json.loads(json.dumps(report, default=str))
    if not path.exists() or json.loads(path.read_text()) != report:
        atomic_write_json(path, report)


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


def _reference_outputs(ctx: RunContext, dynamics_key: str, dynamics_outputs: list[Path],
                       dynamics_wanted: bool) -> list[Path]:
    """What the reference stage must have left: its checkpoint list and last weights; and every
    checkpoint's weights while the dynamics still need scoring (they may have been pruned)."""
    rd = ctx.rd
    outputs = [rd.checkpoints]
    if not rd.checkpoints.exists():
        return outputs
    checkpoints = [Path(c) for c in json.loads(rd.checkpoints.read_text())]
    scored = ctx.book.done("dynamics", dynamics_key, dynamics_outputs)
    needed = checkpoints if dynamics_wanted and not scored else checkpoints[-1:]
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
    return config.override({"name": name}) if name else config


def run_demo(quick: bool = False, runs_dir: str = "runs", name: str | None = None, *, real: bool = False) -> dict:
    start = time.time()
    config = demo_config(quick, runs_dir, name, real=real)
    results = run_experiment(config)
    print(RunDir(config.run_dir).results_md.read_text())
    print(f"demo finished in {time.time() - start:.0f} s; everything is in {config.run_dir}/")
    return results
