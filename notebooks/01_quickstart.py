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
import dataclasses

import pandas as pd
from IPython.display import Markdown

import sftmix
from sftmix.analysis.results import results_markdown
from sftmix.data import load_train_eval
from sftmix.io import RunDir
from sftmix.pipeline.experiment import demo_config
from sftmix.toy import list_tasks
from sftmix.viz.figures import load_histories
from sftmix.viz.plots import plot_lambda_distribution

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
sizes = {key: config.data[key] // SHRINK for key in ("n_train", "n_test")}
config = dataclasses.replace(config, data={**config.data, **sizes})
train, held_out = load_train_eval(config.data_args())
Markdown(f"model `{config.model['model_name_or_path']}` · {len(train)} training and {len(held_out)} "
         f"held-out examples · seeds {config.seeds} · methods {config.methods}")

# %%
train.to_pandas().head(8)

# %% [markdown]
# ## The recipe in pictures
# Mixing coefficients come from Beta(α, α); with the paper's α = 0.5 most draws sit near 0 or 1,
# so a mixed point usually stays close to one of its two parents.

# %%
plot_lambda_distribution(0.5)

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
# ## What Mixup does to one pair
# Take one confident and one unconfident training example (drawn at random from the two halves
# of the split), run the trained SFTMix model on each, and mix their last hidden states at an
# aligned response position. Move **λ** to see the next-token distribution slide from the
# unconfident example's (λ = 0) to the confident one's (λ = 1); the Mixup loss asks the mixed
# state to put λ of its mass on the confident example's next token and 1 − λ on the other's.
# Move **α** to see how often training draws a λ far from 0 and 1.

# %%
from transformers import AutoModelForCausalLM

from sftmix.dynamics import load_split
from sftmix.models import load_tokenizer
from sftmix.viz.widgets import lambda_explorer, pick_pair

# %%
pair = pick_pair(train, load_split(run.split), seed=0)
model = AutoModelForCausalLM.from_pretrained(run.train("sftmix", config.seeds[0]))
explorer = lambda_explorer(model, load_tokenizer(config.model_args()), pair)
explorer.widget

# %%
# checks that the notebook produced what it describes
assert set(results["summary"]) == set(config.methods)
assert all(0.0 <= s["exact_match"]["mean"] <= 1.0 for s in results["summary"].values())
assert any("mixup_loss" in h for h in histories["SFTMix"])
assert len(fit) == config.n_checkpoints and (fit["held_out"] > 0).all()
assert float((explorer.probs["confident"] - explorer.probs["unconfident"]).abs().max()) > 0.0

# %%
# lambda = 1 is the confident example itself; then back to the lambda the reader was shown
shown = explorer.lam
explorer.set_lambda(1.0)
assert explorer.top["mix"] == explorer.top["confident"]
explorer.set_lambda(shown)
