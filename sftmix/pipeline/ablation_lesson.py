"""The ablation lesson (notebook 04, ``figures/ablation.py``): which settings it sweeps, around
which centre, over which seeds, and what each knob should change.

The centre is the demo's experiment (the cell of the regime map where the model has learned:
2,500 examples at 10% label noise, 3 epochs) with three seeds; each knob of
:data:`sftmix.pipeline.ablation.SWEEPABLE` takes the values of :data:`LESSON_SWEEP` besides the
centre's, one at a time, through :func:`sftmix.pipeline.ablation.run_ablation`. The lesson sweeps
the paper's knobs (those of :data:`sftmix.pipeline.ablation.DEFAULT_SWEEP`), and
:data:`EXTENSION_SWEEP` adds the two registered choices that are not in the paper (the
``length_matched`` pairing and the ``confidence_last`` split metric) on the same cell.
"""

from __future__ import annotations

from pathlib import Path

from .experiment import demo_config

__all__ = ["EXPECTATIONS", "EXTENSION_SWEEP", "LESSON_SEEDS", "LESSON_SWEEP", "lesson_config", "shipped_sweep"]

#: The shipped ablation lesson (``figures/ablation.py``, notebook 04): values besides the centre.
LESSON_SWEEP = {"mixup_alpha": [0.1, 2.0], "mixup_weight": [0.05, 1.0], "split_ratio": [0.3, 0.7],
                "pairing": ["random", "confident_confident", "unconfident_unconfident"],
                "loss_variant": ["equal", "mixup_only"]}
#: The registered choices beyond the paper, swept on the same cell (``figures/ablation.py`` runs both).
EXTENSION_SWEEP = {"pairing": ["length_matched"], "split_metric": ["confidence_last"]}
LESSON_SEEDS = (0, 1, 2)
#: What each knob should change, in the recipe's own terms (for reports and notebook 04).
EXPECTATIONS = {
    "mixup_alpha": "lambda ~ Beta(alpha, alpha): a small alpha keeps mixed points near one parent (weak "
                   "regulariser); a large alpha mixes near 50/50 (strong regulariser, blurrier targets)",
    "mixup_weight": "mu, the weight of the Mixup loss beside NTP: 0 is plain NTP; a large mu trades fitting "
                    "the data for smoothness between the halves",
    "split_ratio": "the share of examples called confident: moves which examples get paired, not how strongly",
    "pairing": "the paper pairs across the halves (confident x unconfident); random or within-half pairs test "
               "whether the confidence split matters at all",
    "loss_variant": "the paper's role-of-Mixup ablation: NTP + mu Mixup, NTP and Mixup equally weighted, "
                    "Mixup alone (no plain NTP term)",
    "split_metric": "which summary of the training dynamics ranks the examples (the paper: minus the mean "
                    "perplexity over checkpoints): moves which examples are called confident, not the mixing",
}


def lesson_config(runs_dir: str | Path = "runs"):
    """The centre of the shipped ablation lesson: the demo's experiment (the cell where the model
    learns) with seeds :data:`LESSON_SEEDS`, no embeddings or figures."""
    config = demo_config(runs_dir=str(runs_dir), name="ablation-demo-cell")
    return config.override({"seeds": list(LESSON_SEEDS), "embeddings": False, "figures": False})


def shipped_sweep() -> dict[str, list]:
    """What ``figures/ablation.py`` sweeps: :data:`LESSON_SWEEP` with :data:`EXTENSION_SWEEP` added."""
    sweep = {k: list(v) for k, v in LESSON_SWEEP.items()}
    for param, values in EXTENSION_SWEEP.items():
        sweep[param] = sweep.get(param, []) + [v for v in values if v not in sweep.get(param, [])]
    return sweep

