"""Two of the paper's analysable claims, measured on a finished experiment.

1. *Role of Mixup* (the paper's ablation: NTP only / NTP + 0.2 Mixup / NTP and Mixup
   equally weighted / Mixup only) is a sweep of ``loss_variant`` around the experiment:
   :func:`role_of_mixup` runs it through :func:`sftmix.pipeline.ablation.run_ablation` and
   returns one row per (variant, seed).
2. *SFTMix lowers the spread of per-example confidence* (the paper reports about 7% lower
   standard deviation after training): :func:`confidence_spread` rescores every training
   example with each trained NTP and SFTMix model (the paper's confidence, -perplexity of
   the response) and returns the standard deviation over examples per model, so the two
   can be compared paired by seed.
"""

from __future__ import annotations

import pandas as pd

from ..data.prepare import prepare_train_eval
from ..dynamics.scoring import score_model
from ..errors import ConfigError
from ..io import RunDir, require_weights
from ..models import load_tokenizer
from .ablation import BASELINE, run_ablation
from .context import tokenize_for_training
from .experiment_config import ExperimentConfig
from .stages import load_trained
from .weights import checkpoint_weights

__all__ = ["ROLE_OF_MIXUP", "role_of_mixup", "confidence_spread"]

#: The paper's four rows, in its order: label -> (ablation param, value).
ROLE_OF_MIXUP = {
    "NTP only": (BASELINE, "ntp"),
    "NTP + 0.2 Mixup (SFTMix)": ("loss_variant", "ntp_plus_mixup"),
    "NTP + Mixup equally weighted": ("loss_variant", "equal"),
    "Mixup only": ("loss_variant", "mixup_only"),
}


def role_of_mixup(base: ExperimentConfig, *, progress: bool = True) -> pd.DataFrame:
    """Train the two extra loss variants for every seed of ``base``; one row per (variant, seed).

    The NTP and NTP + 0.2 Mixup rows are the experiment's own runs (not retrained).
    """
    results = run_ablation(base, {"loss_variant": ["equal", "mixup_only"]}, progress=progress)
    rows = []
    for label, (param, value) in ROLE_OF_MIXUP.items():
        part = results[(results["param"] == param) & (results["value"].astype(str) == value)]
        for r in part.itertuples():
            rows.append({"variant": label, "seed": r.seed, "exact_match": r.exact_match, "nll": r.nll,
                         "ece": r.ece})
    return pd.DataFrame(rows)


def confidence_spread(config: ExperimentConfig, *, methods=("ntp", "sftmix"), progress: bool = False
                      ) -> pd.DataFrame:
    """Std (and mean) over training examples of the confidence under each trained model.

    One row per method of ``methods`` that the experiment trains, and seed. A trained model whose weights are
    not in the run directory stops it with one line (never a row left out): not trained yet, or removed by
    ``keep_weights: reference``.
    """
    run = RunDir(config.run_dir)
    tokenizer = load_tokenizer(config.model_args())
    data_args = config.data_args()
    train, _ = prepare_train_eval(data_args, tokenizer if data_args.drop_overlong else None)  # as the runs chose
    tokenized = tokenize_for_training(train, tokenizer, config.data_args())  # as the runs trained
    rows = []
    for method in [m for m in methods if m in config.methods]:
        for seed in config.seeds:
            folder = run.train(method, seed)
            require_weights(folder)
            if not checkpoint_weights(folder).exists():
                raise ConfigError(f"{folder}: no trained weights; run the experiment first (confidence_spread "
                                  "rescores with every trained model)")
            frame = score_model(load_trained(folder), tokenized, name=f"{method}/seed{seed}", progress=progress)
            confidence = -frame["ppl"]
            rows.append({"method": method, "seed": seed, "confidence_std": float(confidence.std()),
                         "confidence_mean": float(confidence.mean()),
                         "log_ppl_std": float(frame["nll"].std())})
    return pd.DataFrame(rows)
