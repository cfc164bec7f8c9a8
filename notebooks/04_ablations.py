# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Ablations: α, μ, the split ratio and the pairing
#
# The paper fixes α = 0.5 (λ ~ Beta(α, α)), μ = 0.2 (loss = NTP + μ·Mixup), a median split and
# confident × unconfident pairs, and reports a role-of-Mixup ablation (below). Here we vary
# each setting **one at a time around that recipe**, over several seeds, with
# `sftmix.pipeline.ablation.run_ablation` (the same as `sftmix ablate CONFIG.yaml`).
#
# All cells share one reference run and dynamics table (the dynamics do not depend on these
# settings; a different split ratio re-cuts the same table); the centre of every sweep is the
# base experiment's own SFTMix run, and its NTP run is the baseline band. Finished cells are
# cached in `<run>/ablation/<param>=<value>/seed<k>/` and skipped on a re-run.

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
SHRINK = 4 if FAST else 1  # fast mode: 1/4 of the quick demo's examples, so CI runs it in about a minute
# Values besides the centre (alpha 0.5, mu 0.2, ratio 0.5, confident_unconfident), which is always added.
SWEEP = {"mixup_alpha": [2.0] if FAST else [0.1, 2.0], "mixup_weight": [1.0] if FAST else [0.05, 1.0],
         "split_ratio": [0.3] if FAST else [0.3, 0.7],
         "pairing": ["random"] if FAST else ["random", "confident_confident", "unconfident_unconfident"]}

# %%
import dataclasses

import pandas as pd

from sftmix.analysis.results import paired_difference
from sftmix.pipeline.ablation import paper_table, plot_sweep, run_ablation, summarize_ablation
from sftmix.pipeline.experiment import demo_config

# %% [markdown]
# ## The centre recipe
# The demo's configuration (its quick version in fast mode) with the paper's Mixup settings;
# only the name changes, and the embeddings and figures (not needed here) are off.

# %%
base = demo_config(quick=FAST, runs_dir=RUNS_DIR, name="nb04-fast" if FAST else "nb04")
sizes = {key: base.data[key] // SHRINK for key in ("n_train", "n_test")}
base = dataclasses.replace(base, data={**base.data, **sizes}, embeddings=False, figures=False)
SEEDS = base.seeds
recipe = base.training_args("sftmix", SEEDS[0], base.run_dir)
mixup = {k: getattr(recipe, k) for k in ("mixup_alpha", "mixup_weight", "pairing")}
{"seeds": SEEDS, "split_ratio": base.split_ratio} | mixup

# %%
results = run_ablation(base, SWEEP, SEEDS, progress=False)
results.head(8)

# %% [markdown]
# ## Each knob against the NTP baseline
# Dots are single seeds, the line is the mean ± std over seeds, the grey band is the NTP
# baseline's mean ± std. Held-out NLL (lower is better) is the most sensitive metric at this size.
# Each panel's y range is at least 10% of the NLL's level: differences smaller than that, and
# inside the spread over seeds, are not trends (the panel says when it widened its range).

# %%
plot_sweep(results, "nll")

# %% [markdown]
# Exact match needs a whole answer right; it moves only once the model has learned the tasks.

# %%
plot_sweep(results, "exact_match")

# %% [markdown]
# ## What is a finding and what is not
# Each cell is compared with the centre recipe **per seed** (same seed, same initial weights),
# and a difference counts only when its 95% interval over seeds excludes zero. With a tiny
# model and a few seeds, most differences are within the spread: those are **not findings**,
# whichever way the mean points. With one seed (fast mode) no claim is possible at all.

# %%
summarize_ablation(results, "nll").round(4)

# %%
summarize_ablation(results, "exact_match").round(4)

# %% [markdown]
# And the centre recipe itself against the NTP baseline, paired by seed, on held-out NLL
# (the same test as the results table of `sftmix demo`):

# %%
centre = results[results.centre & (results.param == "mixup_alpha")].set_index("seed").nll
ntp = results[results.param == "ntp_baseline"].set_index("seed").nll
diff = paired_difference(ntp.loc[SEEDS], centre.loc[SEEDS], higher_is_better=False)
pd.Series(diff, name="SFTMix − NTP, held-out NLL").to_frame()

# %% [markdown]
# ## The paper's role-of-Mixup ablation, for context
# Llama-3.1-8B on Alpaca-52K, as reported by Xiao et al. (arXiv:2410.05248); single runs on
# MT-Bench and AlpacaEval-2 (length-controlled win rate). Our sweep of μ is the closest analogue
# (`loss_variant` in `SFTMixConfig` reproduces the "equally weighted" and "Mixup only" rows).

# %%
paper_table("role of Mixup (Llama-3.1-8B, Alpaca-52K)")

# %%
# checks: every cell ran for every seed; the centre is the base run's SFTMix; re-running is free
assert len(results) == len(SEEDS) * (1 + sum(len(v) + 1 for v in SWEEP.values()))
assert (base.run_dir / "ablation" / "results.csv").exists()
assert results[results.centre].groupby("seed").nll.nunique().eq(1).all()
pd.testing.assert_frame_equal(run_ablation(base, SWEEP, SEEDS, progress=False), results)
