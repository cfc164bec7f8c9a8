"""sftmix: instruction tuning of causal LMs with the SFTMix recipe.

SFTMix (Xiao et al., arXiv:2410.05248) measures each training example's confidence from
the training dynamics of a reference run, splits the data into a confident and an
unconfident half, and adds a Mixup loss on interpolated last-layer hidden states of
confident/unconfident pairs to the usual next-token-prediction loss.

The public names below are imported lazily, so ``import sftmix`` stays fast. The
package's layers and what each subpackage holds are described in the README
("Architecture").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .constants import __version__

_EXPORTS = {
    "SFTMixConfig": "config", "ModelArguments": "config", "DataArguments": "config",
    "SFTMixTrainer": "train.trainer",
    "load_examples": "data", "load_train_eval": "data", "tokenize_examples": "data", "PadCollator": "data",
    "make_task_suite": "toy", "build_tiny_model": "toy", "build_toy_tokenizer": "toy",
    "score_checkpoints": "dynamics.scoring", "DynamicsRecorder": "train.callbacks", "train_reference": "train.run",
    "compute_dynamics": "dynamics.table", "load_dynamics": "dynamics.table", "save_dynamics": "dynamics.table",
    "split_by_confidence": "dynamics.split", "load_split": "dynamics.split",
    "mixup_loss": "loss.mixup", "linear_cross_entropy": "loss.ce",
    "evaluate_model": "analysis.evaluate",
    "run_experiment": "pipeline.experiment", "ExperimentConfig": "pipeline.experiment_config",
    "demo_config": "pipeline.experiment", "RunDir": "io", "load_tokenizer": "models",
    "embed_examples": "analysis.embed", "project_umap": "analysis.projection", "project_pca": "analysis.projection",
    "project_tsne": "analysis.projection",
    "plot_dynamics_map": "viz.plots", "plot_confidence_hist": "viz.plots", "plot_umap_confidence": "viz.plots",
    "plot_ablation": "viz.plots", "plot_training_curves": "viz.plots", "plot_results": "viz.plots",
    "plot_fit": "viz.plots", "save_figure": "viz.plots",
    "DynamicsCallback": "integrations", "SFTMixTRLConfig": "integrations", "SFTMixTRLTrainer": "integrations",
    "with_example_ids": "integrations",
}

if TYPE_CHECKING:  # the same names, for editors and type checkers
    from .analysis.embed import embed_examples
    from .analysis.evaluate import evaluate_model
    from .analysis.projection import project_pca, project_tsne, project_umap
    from .config import DataArguments, ModelArguments, SFTMixConfig
    from .data import PadCollator, load_examples, load_train_eval, tokenize_examples
    from .dynamics.scoring import score_checkpoints
    from .dynamics.split import load_split, split_by_confidence
    from .dynamics.table import compute_dynamics, load_dynamics, save_dynamics
    from .integrations import DynamicsCallback, SFTMixTRLConfig, SFTMixTRLTrainer, with_example_ids
    from .io import RunDir
    from .loss.ce import linear_cross_entropy
    from .loss.mixup import mixup_loss
    from .models import load_tokenizer
    from .pipeline.experiment import demo_config, run_experiment
    from .pipeline.experiment_config import ExperimentConfig
    from .toy import build_tiny_model, build_toy_tokenizer, make_task_suite
    from .train.callbacks import DynamicsRecorder
    from .train.run import train_reference
    from .train.trainer import SFTMixTrainer
    from .viz.plots import (
        plot_ablation,
        plot_confidence_hist,
        plot_dynamics_map,
        plot_fit,
        plot_results,
        plot_training_curves,
        plot_umap_confidence,
        save_figure,
    )

__all__ = sorted(_EXPORTS)
_SUBMODULES = {"analysis", "cli", "config", "constants", "data", "distributed", "dynamics", "errors", "exports",
               "integrations", "io", "loss", "models", "convert", "offline", "pipeline", "recipe", "toy", "train",
               "viz"}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # `sftmix.viz.plots.plot_x` works without importing sftmix.viz first
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'sftmix' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
