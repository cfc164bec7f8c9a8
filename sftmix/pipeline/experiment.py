"""The staged SFTMix experiment over one run directory, resumable.

Stages (the README's "Architecture" section shows where each lives):

    reference -> dynamics -> prune -> split -> embeddings -> train/<method>/seed<k> -> eval -> instruct -> tidy
    -> results

``run_experiment(config, until="split")`` stops after a stage (see :data:`STAGES`): a
notebook that needs only the dynamics table and the split (or the embeddings) runs the
same stages, with the same bookkeeping, as the full experiment.

The experiment is a list of :class:`~sftmix.pipeline.runner.Stage` objects
(:func:`experiment_stages`: each stage's name, the stages it reads, the settings it depends on,
its outputs, its function and which processes run it), run by
:func:`sftmix.pipeline.runner.run_stages` over one :class:`~sftmix.pipeline.context.RunContext`
(the data, tokenizers and tokens loaded once per run). Each stage records a key in
``stages/<name>.json`` after its outputs are written atomically: a hash of the *resolved*
settings it depends on (the typed arguments, defaults included, so a changed default re-runs it),
chained with the keys of the stages it reads. A stage is skipped when its outputs exist and its
key matches, so an interrupted run resumes where it stopped and a changed setting re-runs only
the stages that depend on it. Training stages checkpoint every epoch and resume from the newest
complete checkpoint, reproducing the uninterrupted run.

What a run keeps, and who reads it (``keep_weights: all``, the default; a Gemma 3 270M model is 1.07 GB)::

    reference/checkpoint-<last>/ weights   embeddings (again when they re-run), the NTP run of seed 0 (hard link)
    reference/checkpoint-*/ the rest       trainer_state.json (the step scored); earlier weights pruned once scored
    reference/scores/, dynamics.parquet    split, figures, results; a rerun scores nothing again
    <method>/seed<k>/ weights              eval, instruct, confidence_spread, notebooks (all via load_trained)
    <method>/seed<k>/ tokenizer, config    `sftmix eval` / generation (the chat template it was trained with)
    <method>/seed<k>/log_history.json      training curves, results; it marks the run as trained (no retraining)
    <method>/seed<k>/train_config.json     its resolved training settings and chat template
    <method>/seed<k>/eval.json, generations.json   results, real-model report, ablation centre
    <method>/seed<k>/checkpoint-*          only while training: a killed run resumes from it; removed when done
    stages/*.json                          which stage is up to date under which key

No optimizer state survives a finished run, and files equal to the last reference checkpoint's
(tokenizer, config) are hard links to it. With ``keep_weights: reference`` a ``tidy/<method>/seed<k>``
stage deletes a training run's weights once its eval and instruct stages have run
(``weights_removed.json`` says so); the reference's stay. A rerun trains nothing again; a step that
needs the removed weights stops with one line naming the setting, and ``keep_weights: all`` retrains them.

With ``recipe.reference_weights="last"`` the prune stage deletes the weights of the reference
checkpoints before the last once they are scored; the reference run then serves that one scoring
only, so its key includes the scoring settings (changing them retrains the reference).

Under several processes (``accelerate launch`` / ``torchrun``) every process runs this
function. The stages that train or score (reference, dynamics, train) run on every
process; the others (prune, split, eval, embeddings, results, figures) run on the main process
while the rest wait. Only the main process writes files, and it alone decides whether a
stage is up to date; its decision is broadcast so every process takes the same branch.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from ..analysis.results import build_results, write_results
from ..distributed import Processes
from ..errors import ConfigError
from ..io import EVAL_FILE, LOG_HISTORY_FILE, WEIGHTS_REMOVED_FILE, RunDir
from ..viz.figures import make_figures
from . import stages as st
from .config_files import packaged_config
from .context import RunContext, open_run
from .experiment_config import ExperimentConfig
from .instruct_stage import instruct_output, instruct_results, instruct_stage
from .runner import Stage, run_stages
from .weights import checkpoint_weights, remove_trained_weights

__all__ = ["STAGES", "demo_config", "experiment_stages", "reaches", "run_demo", "run_experiment", "settings_key",
           "study_configs"]

#: The stages in the order they run; ``run_experiment(..., until=name)`` stops after ``name``.
#: The embeddings depend only on the reference run and the dynamics, so they come before training.
STAGES = ("reference", "dynamics", "prune", "split", "embeddings", "train", "eval", "instruct", "tidy", "results")
#: Resolved training arguments that do not change what a run computes: where it writes, the split
#: file's path (its content is keyed through the split stage) and what it shows (``disable_tqdm``
#: follows the logging level, which the pipeline itself lowers).
_NOT_KEYED = ("output_dir", "logging_dir", "split_file", "local_rank", "disable_tqdm", "log_level",
              "log_level_replica", "report_to", "run_name")


def settings_key(args) -> dict:
    """The resolved values of a settings dataclass, as a stage key hashes them (defaults included)."""
    values = args.to_dict() if hasattr(args, "to_dict") else dataclasses.asdict(args)
    return {k: v for k, v in values.items() if k not in _NOT_KEYED}


def experiment_stages(ctx: RunContext) -> list[Stage]:
    """The experiment as a list of :class:`~sftmix.pipeline.runner.Stage`: reference, dynamics,
    prune, split, embeddings (when the config has SFTMix), then train and eval per method and
    seed, and the results. :func:`reaches` says which stages a call with ``until`` runs."""
    stages = _reference_stages(ctx)
    stages += [s for method in ctx.config.methods for seed in ctx.config.seeds
               for s in _with_tidy(ctx, method, seed, _run_stages(ctx, method, seed))]
    stages.append(Stage("results", lambda: _finish(ctx), key=(ctx.config.figures,), cached=False))
    return stages


def reaches(name: str, until: str | None) -> bool:
    """Whether a call with ``until`` runs the stage ``name`` (``train/ntp/seed0`` is a ``train`` stage)."""
    if until is not None and until not in STAGES:
        raise ValueError(f"until={until!r}; choose one of {', '.join(STAGES)}")
    return STAGES.index(name.split("/")[0]) <= STAGES.index(until or "results")


def _data_part(config: ExperimentConfig) -> tuple:
    return ("data", settings_key(config.data_args()))


def _reference_stages(ctx: RunContext) -> list[Stage]:
    config, rd = ctx.config, ctx.rd
    if "sftmix" not in config.methods:
        return []
    recipe = config.recipe_args()
    dyn_outputs = [rd.dynamics] + ([rd.fit] if st.scores_held_out(ctx) else [])
    dynamics_key = (recipe.confidence_tokens,)
    # Online recording happens during the reference run; pruned checkpoints serve one scoring only.
    scoring = dynamics_key if recipe.dynamics_mode == "online" or recipe.reference_weights == "last" else ()
    reference_key = (_data_part(config), settings_key(config.model_args(reference=True)),
                     settings_key(config.reference_args()), recipe.n_checkpoints, recipe.dynamics_mode,
                     recipe.reference_weights, scoring, ctx.held_out is not None and config.reference_is_ntp_run,
                     recipe.reference_max_length)
    stages = [
        Stage("reference", lambda: st.reference_stage(ctx), key=reference_key, everywhere=True,
              before=lambda key: st.clear_reference_dir(rd), outputs=lambda keys: _reference_outputs(ctx)),
        Stage("dynamics", lambda: st.dynamics_stage(ctx), key=dynamics_key, deps=("reference",),
              outputs=dyn_outputs, everywhere=True),
        Stage("prune", lambda: st.prune_stage(ctx), key=(recipe.reference_weights,), deps=("dynamics",)),
        Stage("split", lambda: st.split_stage(ctx), key=(recipe.split_ratio, recipe.split_metric),
              deps=("dynamics",), outputs=[rd.split]),
    ]
    if config.embeddings:
        stages.append(Stage("embeddings", lambda: st.embeddings_stage(ctx), key=(config.projection,),
                            deps=("reference",), outputs=[rd.embeddings, rd.projection]))
    return stages


def train_key(ctx: RunContext, method: str, seed: int, out: Path) -> tuple:
    """What one training run depends on: the data, the model and its resolved training arguments."""
    config = ctx.config
    args = st.run_training_args(config, method, seed, out, None, evaluating=ctx.held_out is not None)
    return (_data_part(config), settings_key(config.model_args()), settings_key(args), method, seed)


def eval_key(config: ExperimentConfig) -> tuple:
    """What an evaluation depends on beyond the model it evaluates."""
    return (config.generate, config.max_new_tokens, config.exact_match)


def _from_reference(config: ExperimentConfig, method: str, seed: int) -> bool:
    """Whether this (method, seed) is the reference run itself (the NTP run of the first seed)."""
    return method == "ntp" and seed == config.seeds[0] and config.reference_is_ntp_run


def _run_stages(ctx: RunContext, method: str, seed: int) -> list[Stage]:
    """Training (or taking the reference run as the NTP run) and evaluation of one (method, seed)."""
    config, out = ctx.config, ctx.rd.train(method, seed)
    name = f"train/{method}/seed{seed}"
    claim = lambda key: st.claim_train_dir(out, key)  # noqa: E731
    if _from_reference(config, method, seed):
        train = Stage(name, lambda: st.ntp_from_reference(ctx, out), key=("from-reference",),
                      deps=("reference",), outputs=[out / LOG_HISTORY_FILE], everywhere=True, before=claim)
    else:
        train = Stage(name, lambda: st.train_stage(ctx, method, seed, out, ctx.rd.split),
                      key=train_key(ctx, method, seed, out),
                      deps=("split",) if method == "sftmix" else (), outputs=_train_outputs(config, out),
                      everywhere=True, before=claim)
    if ctx.held_out is None:
        return [train]
    evaluate = Stage(f"eval/{method}/seed{seed}", lambda: st.eval_stage(ctx, out), key=eval_key(config),
                     deps=(name,), outputs=[out / EVAL_FILE])
    if not config.instruct or (config.instruct.get("seeds") is not None and seed not in config.instruct["seeds"]):
        return [train, evaluate]
    instruct = Stage(f"instruct/{method}/seed{seed}", lambda: instruct_stage(config, ctx.rd.root, method, seed, out,
                                                                             progress=ctx.bars),
                     key=(config.instruct,), deps=(name,), outputs=[instruct_output(ctx.rd.root, method, seed)])
    return [train, evaluate, instruct]


def _train_outputs(config: ExperimentConfig, out: Path):
    """A training run's outputs: its log; with ``keep_weights: all`` also its weights when an earlier run with
    ``keep_weights: reference`` removed them (so the rerun trains them again)."""
    if config.keep_weights == "reference":
        return [out / LOG_HISTORY_FILE]
    return lambda keys: [out / LOG_HISTORY_FILE] + ([checkpoint_weights(out)]
                                                    if (out / WEIGHTS_REMOVED_FILE).exists() else [])


def _with_tidy(ctx: RunContext, method: str, seed: int, run: list[Stage]) -> list[Stage]:
    """With ``keep_weights: reference``, ``run`` (one (method, seed)'s stages) and a last stage deleting its
    trained weights once every stage reading them has run; never the NTP run taken from the reference
    (its weights are the reference's, hard-linked)."""
    config, out = ctx.config, ctx.rd.train(method, seed)
    if config.keep_weights != "reference" or _from_reference(config, method, seed):
        return run
    return run + [Stage(f"tidy/{method}/seed{seed}", lambda: remove_trained_weights(out), key=("reference",),
                        deps=tuple(s.name for s in run), outputs=[out / WEIGHTS_REMOVED_FILE])]


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
    stages = experiment_stages(ctx)
    returned = run_stages(stages, ctx.book, progress=progress, desc=f"{config.name}: stages",
                          select=lambda stage: reaches(stage.name, until))
    if until not in (None, "results"):
        return {"run_dir": config.run_dir, "stages": [s.name for s in stages if reaches(s.name, until)]}
    if progress and Processes().is_main:
        print(f"results: {ctx.rd.results_md}", flush=True)
    return returned["results"]


def _reference_outputs(ctx: RunContext) -> list[Path]:
    """What the reference stage leaves: its checkpoint list and the weights the run reads later (every
    checkpoint's with ``recipe.reference_weights="all"``; else the last one's, the others are pruned once
    scored)."""
    rd = ctx.rd
    if not rd.checkpoints.exists():
        return [rd.checkpoints]
    checkpoints = [Path(c) for c in json.loads(rd.checkpoints.read_text())]
    kept = checkpoints if ctx.config.recipe_args().reference_weights == "all" else checkpoints[-1:]
    return [rd.checkpoints] + [st.checkpoint_weights(c) for c in kept]


#: ``real`` choices of :func:`demo_config` -> the package's YAML stem.
REAL_DEMOS = {"smollm2": "real", "gemma3": "real_gemma3"}


def demo_config(quick: bool | str = False, runs_dir: str = "runs", name: str | None = None, *,
                real: bool | str = False) -> ExperimentConfig:
    """The demo on the built-in suite: minutes on 2 CPU cores (``quick``: under a minute).

    ``real``: a real LLM on real ShareGPT chats instead (needs the real-model artefacts):
    ``True`` or ``"smollm2"``, SmolLM2-135M-Instruct (~13 minutes, ``quick``: ~5,
    ``quick="smoke"``: every stage at the smallest size, ~2 minutes, for CI); ``"gemma3"``,
    Gemma 3 270M base (the opt-in Gemma install; ~20 minutes, no quick size). The settings are
    the package's ``pipeline/configs/demo.yaml`` (``demo_quick.yaml``, ``real.yaml``,
    ``real_quick.yaml``, ``real_smoke.yaml``, ``real_gemma3.yaml``).
    """
    real = "smollm2" if real is True else real
    if real and real not in REAL_DEMOS:
        raise ValueError(f"real={real!r}: choose one of {sorted(REAL_DEMOS)}")
    if quick == "smoke" and not real:
        raise ValueError('quick="smoke" is the real-model pipeline at CI size: pass real=True')
    if quick is True and real == "gemma3":
        raise ConfigError("the Gemma demo has one size (about 20 minutes): drop --quick")
    size = {False: "", True: "_quick", "smoke": "_smoke"}[quick]
    file = (REAL_DEMOS[real] if real else "demo") + size + ".yaml"
    config = ExperimentConfig.from_yaml(packaged_config(file), runs_dir=runs_dir)
    return config.override({"name": name}) if name else config


def study_configs(smoke: bool = False, runs_dir: str = "runs", seeds: list[int] | None = None
                  ) -> tuple[ExperimentConfig, ExperimentConfig]:
    """The two experiments of the base-model study (:mod:`sftmix.pipeline.study_report`) on the same examples:
    Gemma 3 270M with NTP and SFTMix split by its own NTP run, and SFTMix split by SmolLM2-135M-Instruct
    (another family and tokenizer). ``smoke``: the same on tiny models in seconds (tiny-gemma3 trained,
    tiny-llama's split). The committed 3-seed study adds instruction following
    (``configs/real/sharegpt-gemma3*.yaml``, ``figures/real_gemma3.py``)."""
    own = demo_config("smoke" if smoke else False, runs_dir, real="gemma3")
    if seeds:
        own = own.override({"seeds": list(seeds)})
    # SmolLM2's tokenizer needs ~25% more tokens than Gemma's for the same chats (one in 64 would lose its
    # whole answer at Gemma's 128); tiny-llama's and tiny-gemma3's both have one token per character.
    reference, budget = (({"model_name_or_path": "tiny-llama", "tiny_hidden_size": 16, "tiny_heads": 2},
                          own.data_args().max_length) if smoke else ({"model_name_or_path": "smollm2-135m"}, 192))
    xref = own.override({"name": f"{own.name}-xref", "methods": ["sftmix"], "reference_model": reference,
                         "recipe.reference_max_length": budget, "embeddings": False})
    return own, xref


def run_demo(quick: bool = False, runs_dir: str = "runs", name: str | None = None, *, real: bool | str = False
             ) -> dict:
    start = time.time()
    config = demo_config(quick, runs_dir, name, real=real)
    results = run_experiment(config)
    print(RunDir(config.run_dir).results_md.read_text())
    print(f"demo finished in {time.time() - start:.0f} s; everything is in {config.run_dir}/")
    return results
