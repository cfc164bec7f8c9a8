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
# # 01 · Quickstart: the task suite, the recipe in pictures, NTP vs SFTMix
#
# SFTMix (Xiao et al., arXiv:2410.05248) adds a Mixup regulariser to instruction tuning:
# it interpolates the last hidden states of a *confident* and an *unconfident* training
# example and trains on the interpolated point with the interpolated label.
# This notebook runs the whole recipe on the built-in task suite, starting from the shipped
# pretrained base `tiny-base`, on a CPU. Set `SFTMIX_FAST=1` to run it in about a minute
# (that is how CI executes it).

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
SHRINK = 2 if FAST else 1  # fast mode: 1/2 of the quick demo's examples, so CI runs it in about a minute

# %%

import pandas as pd
from IPython.display import Markdown

import sftmix
from sftmix import RunDir
from sftmix.analysis import results_markdown
from sftmix.data import load_train_eval
from sftmix.pipeline import demo_config
from sftmix.toy import list_tasks
from sftmix.viz import load_histories, plot_lambda_distribution

pd.set_option("display.max_colwidth", 60)

# %% [markdown]
# ## The built-in task suite
# Fifteen families of instructions with exact answers, at three difficulty levels. Some are
# easy for a tiny model (upper-casing), some hard (multiplication, number words): the
# unevenness is what gives the confidence split something to find.

# %%
tasks = list_tasks()
tasks[tasks.difficulty == 2][["name", "example_prompt", "example_response"]]

# %% [markdown]
# ## The experiment
# `demo_config` is the configuration behind `sftmix demo` (`sftmix demo --quick` in fast
# mode); every size below comes from it. The training examples it describes:

# %%
config = demo_config(quick=FAST, runs_dir=RUNS_DIR, name="nb01-fast" if FAST else None)
config = config.override({f"data.{key}": config.data[key] // SHRINK for key in ("n_train", "n_test")})
train, held_out = load_train_eval(config.data_args())
Markdown(f"model `{config.model['model_name_or_path']}` · {len(train)} training and {len(held_out)} "
         f"held-out examples · seeds {config.seeds} · methods {config.methods}")

# %%
train.to_pandas().head(8)

# %% [markdown]
# ## The recipe in pictures
# SFTMix borrows Mixup (Zhang et al., *mixup: Beyond Empirical Risk Minimization*, ICLR 2018):
# train on convex combinations of pairs of examples and of their labels. Like Manifold Mixup
# (Verma et al., *Manifold Mixup*, ICML 2019) it mixes hidden states rather than inputs: the
# last-layer states of a confident and an unconfident example, `λ·Z_c + (1 − λ)·Z_u`, with the
# target `λ·y_c + (1 − λ)·y_u`. The mixing weights come from Beta(α, α). At the paper's α = 0.5
# the *density* is U-shaped — highest near 0 and 1 — but it is not concentrated there: the share
# of draws that mix substantially, 0.1 < λ < 0.9, is printed below the plot.

# %%
plot_lambda_distribution(0.5)

# %%
import numpy as np

draws = np.random.default_rng(0).beta(0.5, 0.5, size=100_000)
mid = float(((draws > 0.1) & (draws < 0.9)).mean())
Markdown(f"Beta(0.5, 0.5): **{mid:.0%}** of draws fall in 0.1 < λ < 0.9, {1 - mid:.0%} within 0.1 of 0 or 1.")

# %% [markdown]
# ## Run it
# Each stage writes into the run directory and is skipped when it already finished; the bar
# advances once per stage.

# %%
results = sftmix.run_experiment(config, progress="stages")
run = RunDir(config.run_dir)

# %% [markdown]
# ## Training curves
# The total loss of SFTMix includes μ × the Mixup loss, so compare the NTP parts.

# %%
histories = load_histories(run)
sftmix.plot_training_curves(histories)

# %% [markdown]
# ## Is there something to regularise?
# The reference run (the NTP run of the first seed) scored at each of its checkpoints on its own
# training answers and on the held-out set, per response token. Two signs of overfitting to look
# for: the clean training NLL falls faster than the held-out NLL (the ratio in the title grows),
# and the NLL of the *corrupted* training answers falls too: the model is memorising answers that
# are wrong. Those are what a regulariser such as Mixup is meant to hold back.

# %%
fit = pd.read_csv(run.fit)
sftmix.plot_fit(fit)

# %% [markdown]
# ## Results
# Mean ± spread over seeds; the verdict column only claims a difference when the paired
# 95% interval excludes zero (with one seed, in fast mode, there is no interval and no claim).

# %%
Markdown(results_markdown(results))

# %% [markdown]
# ## Why it should work: how well each half is fit
# The paper's argument (Xiao et al., Sec. 1): confident examples invite *overfitting* (they are
# fit on the training set better than the model generalises from them), unconfident ones are
# *hard to generalise from* (fit poorly even on the training set); interpolating between the two
# halves should regularise both. Measured here: each trained model's NLL per response token on the
# confident and the unconfident half of its training answers (corrupted ones left out), and on
# held-out examples put in a half the same way — by the reference run's confidence on them against
# the split's threshold. The gap is held-out minus training.

# %%
from sftmix import load_tokenizer
from sftmix.analysis import held_out_halves, score_half_fit
from sftmix.data import tokenize_examples
from sftmix.dynamics import load_dynamics, load_split, read_checkpoint_frames
from sftmix.pipeline import load_trained
from sftmix.viz import plot_half_fit

# %%
split, table = load_split(run.split), load_dynamics(run.dynamics)
tokenizer = load_tokenizer(config.model_args())
max_length = config.data_args().max_length
tokenized = {name: tokenize_examples(data, tokenizer, max_length=max_length)
             for name, data in (("train", train), ("held_out", held_out))}
models = {label: load_trained(run.train(method, config.seeds[0])) for label, method in
          (("NTP", "ntp"), ("SFTMix", "sftmix"))}
halves = held_out_halves(read_checkpoint_frames(run.held_out_scores), split)

# %%
fit_by_half = score_half_fit(models, tokenized["train"], tokenized["held_out"], split=split,
                             held_halves=halves, table=table)
plot_half_fit(fit_by_half)

# %%
fit_by_half.attrs["gap"].round(3)

# %% [markdown]
# One seed and one run: read the picture as *where* the gaps are, not as a verdict on SFTMix
# (the regime map in `figures/regime_map.md` compares the methods over 5 seeds).

# %% [markdown]
# ## What Mixup does to one pair
# Take one confident and one unconfident training example (drawn at random from the two halves
# of the split; the two dropdowns choose another pair), run the trained models on each, and mix
# their last hidden states at the aligned response positions — with the training code's own
# alignment, mixing and loss (`sftmix.loss.mixup`). Move **λ** to see the next-token
# distribution slide from the unconfident example's (λ = 0) to the confident one's (λ = 1); the
# Mixup loss asks the mixed state to put λ of its mass on the confident example's next token and
# 1 − λ on the other's. The lower figure draws both probabilities along λ for the NTP and the
# SFTMix model: the grey lines are what Mixup asks for. Move **α** to see how often training draws
# a λ far from 0 and 1.

# %%
from sftmix.viz import lambda_explorer

# %%
explorer = lambda_explorer(models, tokenizer, examples=train, split=split, seed=0)
explorer.widget

# %%
# checks that the notebook produced what it describes
assert set(results["summary"]) == set(config.methods)
assert all(0.0 <= s["exact_match"]["mean"] <= 1.0 for s in results["summary"].values())
assert any("mixup_loss" in h for h in histories["SFTMix"])
assert len(fit) == config.recipe_args().n_checkpoints and (fit["held_out"] > 0).all()
assert float((explorer.probs["confident"] - explorer.probs["unconfident"]).abs().max()) > 0.0
assert set(fit_by_half["half"]) == {"confident", "unconfident"} and fit_by_half["nll"].notna().all()
assert 0.5 < mid < 0.7  # most Beta(0.5, 0.5) draws are NOT near 0 or 1

# %%
# lambda = 1 is the confident example itself; then back to the lambda the reader was shown
shown = explorer.lam
explorer.set_lambda(1.0)
assert explorer.top["mix"] == explorer.top["confident"]
explorer.set_lambda(shown)
