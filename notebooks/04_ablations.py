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
# # 04 · Ablations: α, μ, the split ratio, the pairing and the loss variant
#
# The paper (Xiao et al., arXiv:2410.05248) fixes α = 0.5 (λ ~ Beta(α, α)), μ = 0.2
# (loss = NTP + μ·Mixup), a median split and confident × unconfident pairs, and reports one
# ablation: the role of Mixup (NTP only, NTP + 0.2 Mixup, both equally weighted, Mixup only).
# Here each setting is varied **one at a time around that recipe**, over 3 seeds, on the demo's
# cell (2,500 examples, 10% label noise, 3 epochs: the regime where the model has learnt, NTP
# about 0.7 held-out exact match; where it is under-trained SFTMix is simply behind, see the
# regime map). Every cell is compared with the recipe **paired by seed** (same base weights,
# same data order) with an exact 95% t-interval.
#
# The results ship with the repository (`figures/ablation.csv`, made by
# `python figures/ablation.py`), so this notebook opens in seconds. Set `RERUN = True` to train
# every cell again; the measured runtime is printed below.

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
FIGURES = os.environ.get("SFTMIX_FIGURES_DIR", "../figures")  # the repository's figures/ folder
SHIPPED = os.path.join(FIGURES, "ablation.csv")  # the shipped results (one row per cell and seed)
RERUN = False  # True: run (or resume) the whole sweep into RUNS_DIR (about an hour on one CPU core)

# %%
import json
from pathlib import Path

from IPython.display import Markdown

from sftmix import pipeline
from sftmix.analysis import paired_difference, paper_table
from sftmix.viz import plot_ablation_effects

# %% [markdown]
# ## What each knob should change
# Before looking at any number: what the recipe says each setting does.

# %%
Markdown("\n".join(f"- **{knob}**: {text}." for knob, text in pipeline.EXPECTATIONS.items()))

# %% [markdown]
# ## The results
# One row per (setting, value, seed), plus the NTP baseline (no Mixup at all); `centre` marks
# the recipe's own rows, shared by every setting.

# %%
config = pipeline.lesson_config(RUNS_DIR)
results = pipeline.run_ablation(config, pipeline.LESSON_SWEEP, pipeline.LESSON_SEEDS) if RERUN \
    else pipeline.load_ablation(SHIPPED)
results.head(8)

# %%
meta = json.loads(Path(SHIPPED).with_name("ablation_meta.json").read_text())
Markdown(f"Shipped sweep: {results.param.nunique() - 1} settings, seeds {meta['seeds']}, "
         f"{len(results)} rows; measured runtime **{meta['seconds'] / 60:.0f} min** ({meta['how']}).")

# %% [markdown]
# ## Each setting against the recipe
# The dot is the mean difference (cell − recipe) over seeds, the bar its 95% t-interval. Grey:
# the interval covers zero, **not a finding**, whichever way the dot points. Coloured: the
# interval excludes zero (blue: the variant is better, vermilion: worse). With 3 seeds an interval
# is wide; a grey row says "not distinguishable at this sample size", not "no effect".

# %%
effects = {metric: pipeline.effects_table(results, metric) for metric in ("exact_match", "nll")}
plot_ablation_effects(effects["exact_match"], metric="exact_match", higher_is_better=True)

# %%
plot_ablation_effects(effects["nll"], metric="held-out NLL", higher_is_better=False)

# %% [markdown]
# ## What each knob did
# Per setting and value: the mean over seeds, the paired difference to the recipe with its
# interval, and a verdict that is a word only when the interval excludes zero.

# %%
effects["exact_match"].round(4)

# %%
effects["nll"].round(4)

# %%
clear = {m: e[e.verdict.isin(["better", "worse"])] for m, e in effects.items()}
Markdown("\n".join(f"- {m}: " + (", ".join(f"`{r.param} = {r.value}` {r.verdict} ({r.diff:+.3f} "
                                            f"[{r.ci95_low:+.3f}, {r.ci95_high:+.3f}])"
                                            for r in c.itertuples()) or "no interval excludes zero")
                   for m, c in clear.items()))

# %% [markdown]
# Two rows are the same experiment twice. `loss_variant = equal` trains on `0.5·NTP + 0.5·Mixup`,
# which is `mixup_weight = 1` (`NTP + 1·Mixup`) halved; AdamW's steps barely depend on the scale
# of the loss (only gradient clipping and epsilon see it), so the two cells should agree to within
# a hair, seed by seed — a check on the sweep itself:

# %%
same = results[results.param.isin(["mixup_weight", "loss_variant"]) & results.value.isin([1.0, "equal"])]
same.pivot_table(index="seed", columns="param", values=["exact_match", "nll"]).round(4)

# %% [markdown]
# ## The metric against each knob
# The same cells on the metric's own scale: seeds as dots, the mean with its 95% t-interval, and
# the NTP baseline as the dashed line with its band (mean ± std).

# %%
pipeline.plot_sweep(results, "exact_match", error="ci95")

# %% [markdown]
# ## The paper's role-of-Mixup ablation, for context
# Llama-3.1-8B on Alpaca-52K, as reported by Xiao et al.; single runs on MT-Bench and
# AlpacaEval-2 (length-controlled win rate). Our `loss_variant` rows are the same four variants:
# `ntp_plus_mixup` is the recipe, `equal` weighs NTP and Mixup alike, `mixup_only` drops the NTP
# term. Note the two benchmarks order the variants differently (Mixup only is second on
# MT-Bench, last on AlpacaEval-2 LC WR).

# %%
paper_table("role of Mixup (Llama-3.1-8B, Alpaca-52K)")

# %%
# checks: every setting of the lesson ran for every seed; the verdicts follow the intervals
seeds_per_cell = results[results.param != pipeline.BASELINE].groupby(["param", "value"]).seed.nunique()
assert (seeds_per_cell >= 3).all() and set(results.param) >= set(pipeline.LESSON_SWEEP)
row = effects["exact_match"].set_index(["param", "value"]).loc[("loss_variant", "mixup_only")]
recipe = results[results.centre & (results.param == "loss_variant")].set_index("seed").exact_match
cell = results[(results.param == "loss_variant") & (results.value == "mixup_only")].set_index("seed").exact_match
assert abs(paired_difference(recipe, cell.loc[recipe.index])["mean"] - row["diff"]) < 1e-12
assert set(effects["exact_match"].verdict) <= {"centre", "within noise", "better", "worse"}  # 3 seeds: no 1-seed rows
assert (same.groupby("seed").exact_match.agg(lambda v: v.max() - v.min()) <= 0.02).all()
