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
# # 02 · The training-dynamics map: which examples is the model sure about?
#
# Stage 1 of SFTMix trains a *reference* model with plain next-token prediction and scores
# every training example at C checkpoints by its response perplexity. Stage 2 splits the data
# at the median of the paper's confidence, `−mean perplexity`, into a confident and an
# unconfident half. This notebook draws what those numbers look like, in the style of
# Dataset Cartography (Swayamdipta et al., 2020):
#
# * **confidence** — the paper's `−mean_c Perp_c(y|x)`; on the map we use its bounded
#   cousin `confidence_prob`, the mean over checkpoints of the geometric-mean token probability;
# * **variability** — the spread of that probability across checkpoints;
# * **correctness** — the share of response tokens the model predicts exactly (argmax).
#
# To check that confidence means something, the suite corrupts a share of the training
# answers (`noisy`): a plausible but wrong response. A useful confidence should put those
# examples in the unconfident half.

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
NOISE = 0.3  # share of training answers replaced by a wrong one (the demo's own setting may be lower)

# %%
import dataclasses

import pandas as pd
from IPython.display import Markdown

import sftmix
from sftmix.data import load_train_eval
from sftmix.dynamics import load_dynamics, load_split, split_by_confidence
from sftmix.io import RunDir
from sftmix.pipeline.experiment import demo_config
from sftmix.viz import widgets
from sftmix.viz.plots import plot_confidence_by_task

pd.set_option("display.max_colwidth", 50)

# %% [markdown]
# ## The reference run and the dynamics table
# The demo's configuration (its quick version in fast mode) with more label noise; only the
# stages up to the split are needed here. Every row of the table is one training example.

# %%
config = demo_config(quick=FAST, runs_dir=RUNS_DIR, name="nb02-fast" if FAST else "nb02")
config = dataclasses.replace(config, methods=["sftmix"], data={**config.data, "noise": NOISE})
ran = sftmix.run_experiment(config, until="split", progress="stages")

# %%
run = RunDir(config.run_dir)
train, _ = load_train_eval(config.data_args())
table, split = load_dynamics(run.dynamics, train), load_split(run.split)
table[["example_id", "task", "noisy", "confidence", "confidence_prob", "variability_prob", "correctness"]].head()

# %% [markdown]
# ## The map
# One dot per training example: how sure the reference model was on average (y) against how
# much that changed across checkpoints (x). Top left: *easy-to-learn* (sure from the start);
# bottom: *hard-to-learn* (never sure); right: *ambiguous* (the model changed its mind).
# The colour is correctness: confident examples are mostly the ones the model gets right.

# %%
sftmix.plot_dynamics_map(table, color="correctness")

# %% [markdown]
# The same map coloured by the split SFTMix uses. The split is made on the paper's
# perplexity-based confidence, so the boundary on this probability-scale map is close to,
# but not exactly, a horizontal line.

# %%
sftmix.plot_dynamics_map(table, split=split, color="split")

# %% [markdown]
# The paper's confidence is heavy-tailed (a few examples have a huge perplexity), so its
# histogram is drawn as log₁₀ of the mean perplexity: confident examples on the left.

# %%
sftmix.plot_confidence_hist(table, split=split, log=True)

# %%
Markdown(f"Split at `{split['metric']}` ≥ {split['threshold']:.3f} (ratio {split['ratio']}): "
         f"**{len(split['confident'])}** confident, **{len(split['unconfident'])}** unconfident "
         f"of {split['n']} examples.")

# %% [markdown]
# ## What the regions hold
# A region is a top or bottom third along one axis (the rule of `sftmix.viz.widgets.region_mask`):
# easy-to-learn = highest third of `confidence_prob`, hard-to-learn = lowest third,
# ambiguous = highest third of `variability_prob` (it may overlap the other two).
# The `answer` column shows the correct answer where the trained response was corrupted.

# %%
masks = {r: widgets.region_mask(table, r) for r in widgets.REGIONS}
regions = pd.DataFrame.from_dict({r: {"examples": m.sum(), "share noisy": table.noisy[m].mean(),
                                      "mean correctness": table.correctness[m].mean()}
                                  for r, m in masks.items()}, orient="index")
regions.round(3)

# %%
widgets.select_examples(table, train, region="easy-to-learn", n=4)

# %%
widgets.select_examples(table, train, region="hard-to-learn", n=4)

# %%
widgets.select_examples(table, train, region="ambiguous", n=4)

# %% [markdown]
# Browse any region, task or noise flag interactively:

# %%
inspector = widgets.example_inspector(table, train, region="hard-to-learn")
inspector.widget

# %% [markdown]
# ## Confidence by task
# Confidence is uneven across task families: this is the unevenness SFTMix exploits.
# The split therefore also splits tasks unevenly.

# %%
plot_confidence_by_task(table, metric="confidence_prob")

# %% [markdown]
# ## Confidence and label noise
# Noisy examples have a wrong answer the model cannot have learned from the other examples,
# so it should be less sure of them. We compare medians: the perplexity-based confidence has
# a long tail, which makes means unreliable.

# %%
sftmix.plot_confidence_hist(table, by="noisy", split=split, log=True)

# %%
by_noise = table.groupby("noisy")[["confidence", "confidence_prob", "correctness"]].median()
by_noise.index = by_noise.index.map({False: "clean", True: "noisy"})
by_noise.round(3)

# %%
halves = widgets.split_summary(table, split)
halves

# %% [markdown]
# Per task, the difference in median confidence between noisy and clean examples, beside the
# token correctness of the clean ones. Noise shows up where the reference model has learned to
# *compute* the answer from the instruction. Where it has learned only the answer's *format*
# (a yes/no, a word said n times) a wrong answer is no more surprising than a right one, even
# when token correctness looks high: a limit worth knowing before trusting a split to find bad data.

# %%
medians = table.groupby(["task", "noisy"])[["confidence_prob", "correctness"]].median().unstack()
per_task = pd.DataFrame({"clean correctness": medians["correctness"][False],
                         "noisy − clean confidence_prob": medians["confidence_prob"][True]
                         - medians["confidence_prob"][False]})
per_task.sort_values("clean correctness", ascending=False).round(3)

# %%
# checks: noisy examples are less confident and over-represented in the unconfident half
assert by_noise.loc["noisy", "confidence"] < by_noise.loc["clean", "confidence"]
assert by_noise.loc["noisy", "confidence_prob"] < by_noise.loc["clean", "confidence_prob"]
assert halves.loc["unconfident", "share noisy"] > halves.loc["confident", "share noisy"]
assert len(split["confident"]) + len(split["unconfident"]) == len(table) == config.data["n_train"]
assert ran["stages"] == ["reference", "dynamics", "split"]  # nothing was trained beyond the split

# %% [markdown]
# ## Split explorer
# Move the ratio: the threshold, the sizes of the halves, the share of noisy examples in each
# and the colours of the map follow. The paper splits at the median (ratio 0.5).

# %%
explorer = widgets.split_explorer(table, ratio=0.5, log=True)
explorer.widget

# %%
# checks on a copy (the explorer keeps the ratio the reader set): the explorer's median split
# is the pipeline's, and a ratio of 0.25 puts a quarter of the examples in the confident half
assert explorer.split["threshold"] == split["threshold"]
quarter = split_by_confidence(table, ratio=0.25)
assert len(quarter["confident"]) == round(0.25 * len(table))
