"""sftmix: instruction tuning of causal LMs with the SFTMix recipe.

SFTMix (Xiao et al., arXiv:2410.05248) measures each training example's confidence from
the training dynamics of a reference run, splits the data into a confident and an
unconfident half, and adds a Mixup loss on interpolated last-layer hidden states of
confident/unconfident pairs to the usual next-token-prediction loss.

The public names below are imported lazily, so ``import sftmix`` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "SFTMixConfig": "config", "ModelArguments": "config", "DataArguments": "config",
    "SFTMixTrainer": "trainer",
    "load_examples": "data", "tokenize_examples": "data", "PadCollator": "data",
    "make_task_suite": "toy", "build_tiny_model": "toy", "build_toy_tokenizer": "toy",
    "score_checkpoints": "scoring", "DynamicsRecorder": "scoring", "train_reference": "scoring",
    "compute_dynamics": "dynamics", "load_dynamics": "dynamics", "save_dynamics": "dynamics",
    "split_by_confidence": "dynamics",
    "mixup_loss": "mixup", "linear_cross_entropy": "ce",
    "evaluate_model": "evaluate",
    "run_experiment": "experiment", "ExperimentConfig": "experiment",
    "embed_examples": "embed", "project_umap": "projection", "project_pca": "projection",
    "plot_dynamics_map": "plots", "plot_confidence_hist": "plots", "plot_umap_confidence": "plots",
    "plot_ablation": "plots", "plot_training_curves": "plots", "plot_results": "plots",
    "save_figure": "plots",
}

__all__ = sorted(_EXPORTS)
_SUBMODULES = {"ablation", "ce", "cli", "config", "data", "dynamics", "embed", "evaluate", "experiment", "export",
               "figures", "head", "mixup", "models", "paper", "plots", "projection", "results", "scoring",
               "selection", "stages", "toy", "trainer", "training", "widgets"}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # `sftmix.plots.plot_x` works without importing sftmix.plots first
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'sftmix' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
