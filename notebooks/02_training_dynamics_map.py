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
# # 02 · Training dynamics: which examples is the model sure about, and how does that change?
#
# Stage 1 of SFTMix (Xiao et al., arXiv:2410.05248) trains a *reference* model with plain
# next-token prediction and scores every training example at C checkpoints by its response
# perplexity. Stage 2 splits the data at the median of the paper's confidence,
# `−mean_c Perp_c(y|x)`, into a confident and an unconfident half. This notebook looks at
# those numbers as *dynamics* (each example across the checkpoints), in the style of Dataset
# Cartography (Swayamdipta et al., EMNLP 2020):
#
# * **confidence** — the paper's `−mean_c Perp_c(y|x)`; on the map we use its bounded
#   cousin `confidence_prob`, the mean over checkpoints of the geometric-mean token probability;
# * **variability** — the spread of that probability across checkpoints;
# * **correctness** — the share of response tokens the model predicts exactly (argmax).
#
# To check that confidence means something, the suite corrupts a share of the training
# answers (`noisy`): a plausible but wrong response. A useful confidence should put those
# examples in the unconfident half. We also look at what else the split sorts by: tasks and
# answer lengths.

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
NOISE = 0.3  # share of training answers replaced by a wrong one (the demo's own setting may be lower)

# %%

import pandas as pd
from IPython.display import Markdown

import sftmix
from sftmix import RunDir, analysis, viz
from sftmix.analysis import noise_auroc, noise_auroc_by_task
from sftmix.data import load_train_eval
from sftmix.dynamics import load_dynamics, load_split, split_by_confidence
from sftmix.pipeline import demo_config

pd.set_option("display.max_colwidth", 50)

# %% [markdown]
# ## The reference run and the dynamics table
# The demo's configuration (its quick version in fast mode) with more label noise; only the
# stages up to the split are needed here. Every row of the table is one training example.

# %%
config = demo_config(quick=FAST, runs_dir=RUNS_DIR, name="nb02-fast" if FAST else "nb02")
config = config.override({"methods": ["sftmix"], "data.noise": NOISE})
ran = sftmix.run_experiment(config, until="split", progress="stages")

# %%
run = RunDir(config.run_dir)
train, _ = load_train_eval(config.data_args())
table, split = load_dynamics(run.dynamics, train), load_split(run.split)
table[["example_id", "task", "noisy", "n_tokens", "confidence", "confidence_prob", "correctness"]].head()

# %% [markdown]
# ## The map
# One dot per training example: how sure the reference model was on average (y) against how
# much that changed across checkpoints (x). Top left: *easy-to-learn* (sure from the start);
# bottom: *hard-to-learn* (never sure); right: *ambiguous* (the model changed its mind).
# The colour is correctness; black crosses are the corrupted answers.

# %%
sftmix.plot_dynamics_map(table, color="correctness")

# %% [markdown]
# The same map coloured by the split SFTMix uses. The split is made on the paper's
# perplexity-based confidence, so the boundary on this probability-scale map is close to,
# but not exactly, a horizontal line.

# %%
sftmix.plot_dynamics_map(table, split=split, color="split")

# %% [markdown]
# The paper's confidence is heavy-tailed (a few examples have a huge perplexity): on a linear
# axis one bar would hold almost every example. So its histogram is drawn as log₁₀ of the
# mean perplexity — confident examples on the *left* — with the threshold at the median.

# %%
sftmix.plot_confidence_hist(table, split=split, log=True)

# %%
Markdown(f"Split at `{split['metric']}` ≥ {split['threshold']:.3f} (mean perplexity "
         f"{-split['threshold']:.3f}; ratio {split['ratio']}): **{len(split['confident'])}** confident, "
         f"**{len(split['unconfident'])}** unconfident of {split['n']} examples.")

# %% [markdown]
# ## Dynamics as dynamics: examples across the checkpoints
# The confidence is a *mean over checkpoints*. Here are a few characteristic examples picked
# by `analysis.pick_examples`, at every checkpoint, over the spread of all examples (grey).
# The right panel is a consequence of averaging perplexities: perplexity falls as training goes
# on, so the *early* checkpoints contribute most of an example's mean, and their ranking decides
# most of the split (the Spearman correlation of each checkpoint with the mean's ranking).

# %%
picked = analysis.pick_examples(table, split=split)
viz.plot_trajectories(table, picked, split=split)

# %%
analysis.checkpoint_shares(table).round(3)

# %% [markdown]
# **Mean over checkpoints vs the last checkpoint.** A split made on the last checkpoint alone
# would be the confidence of the *trained* model. The two disagree for the examples the model
# learnt (or forgot) during the run; black dots change side.

# %%
sides = analysis.mean_vs_last(table, ratio=split["ratio"])
viz.plot_mean_vs_last(sides)

# %%
moved = sides[sides["changed"]]
Markdown(f"**{len(moved)} of {len(sides)}** examples ({len(moved) / len(sides):.0%}) are on another side of "
         f"the split by the last checkpoint; most of them by task: "
         + ", ".join(f"{t} {n}" for t, n in moved["task"].value_counts().head(4).items()) + ".")

# %% [markdown]
# Follow any example: pick one from a map region (its most typical examples first) or type an
# id; the table gives its scores at every checkpoint and the map circles it.

# %%
explorer = viz.example_explorer(table, train, split=split, region="ambiguous")
explorer.widget

# %% [markdown]
# ## What the regions hold
# A region is a top or bottom third along one axis (the rule of `sftmix.viz.region_mask`):
# easy-to-learn = highest third of `confidence_prob`, hard-to-learn = lowest third,
# ambiguous = highest third of `variability_prob` (it may overlap the other two).
# The `answer` column shows the correct answer where the trained response was corrupted.

# %%
masks = {r: viz.region_mask(table, r) for r in viz.REGIONS}
regions = pd.DataFrame.from_dict({r: {"examples": m.sum(), "share noisy": table.noisy[m].mean(),
                                      "mean correctness": table.correctness[m].mean()}
                                  for r, m in masks.items()}, orient="index")
regions.round(3)

# %%
viz.select_examples(table, train, region="hard-to-learn", n=4)

# %%
inspector = viz.example_inspector(table, train, region="hard-to-learn")
inspector.widget

# %% [markdown]
# ## Confidence and label noise
# Corrupted answers are wrong in a way the model cannot have learnt from the other examples,
# so it should be less sure of them. Each group is drawn as a share of its own size (250
# corrupted answers would be a flat line under 2,000 clean ones on a count axis); the legend
# says how many of each fall in the unconfident half.

# %%
viz.plot_confidence_hist(table, by="noisy", split=split, log=True, stat="share",
                           labels={False: "clean answers", True: "corrupted answers"})

# %% [markdown]
# **Per task**, the AUROC of −confidence for the corrupted flag, computed from this run
# (0.5 = chance, 1 = every corrupted answer less confident than every clean one). Where the
# model has learnt to *compute* the answer from the instruction, a wrong answer is surprising;
# where it has learnt little, a wrong answer is no more surprising than a right one.

# %%
by_task_auroc = noise_auroc_by_task(table)
by_task_auroc.round(3)

# %%
best, worst = by_task_auroc["auroc"].idxmax(), by_task_auroc["auroc"].idxmin()
Markdown(f"Overall AUROC **{noise_auroc(table):.3f}**. Highest: `{best}` "
         f"({by_task_auroc.loc[best, 'auroc']:.3f}); lowest: `{worst}` ({by_task_auroc.loc[worst, 'auroc']:.3f}).")

# %% [markdown]
# ## What the split also splits: the confounds
# On a suite of very different tasks, ranking by confidence also ranks *tasks* (a family the
# model computes well lands almost entirely in the confident half) and *answer lengths*, and it
# collects the corrupted answers. Mixup then pairs across all of these at once: keep it in mind
# before reading a difference between the halves as a difference in "confidence" alone.

# %%
viz.plot_split_composition(table, split)

# %%
analysis.half_profile(table, split).round(3)

# %%
analysis.split_by_task(table, split).round(3)

# %% [markdown]
# ## Confidence by task
# The same scale as the histogram (log₁₀ mean perplexity, the threshold dashed); crosses are the
# corrupted answers, and the right margin gives each task's share of the confident half.

# %%
viz.plot_confidence_by_task(table, split=split, log=True)

# %%
# checks: noisy examples are less confident and over-represented in the unconfident half
by_noise = table.groupby("noisy")["confidence"].median()
halves = analysis.half_profile(table, split)
assert by_noise[True] < by_noise[False]
assert halves.loc["unconfident", "share_corrupted"] > halves.loc["confident", "share_corrupted"]
assert len(split["confident"]) + len(split["unconfident"]) == len(table) == config.data["n_train"]
assert ran["stages"] == ["reference", "dynamics", "split"]  # nothing was trained beyond the split
assert sides["changed"].sum() == (sides["side_mean"] != sides["side_last"]).sum()
assert set(picked.values()) <= set(table["example_id"])
assert explorer.scores.shape[0] == config.recipe_args().n_checkpoints

# %% [markdown]
# ## Split explorer
# Move the ratio: the threshold, the sizes of the halves, who changes side against the median
# split, each task's share of the confident half and how many corrupted answers the
# unconfident half catches (recall) follow. The paper splits at the median (ratio 0.5).

# %%
split_view = viz.split_explorer(table, ratio=0.5, log=True)
split_view.widget

# %%
# checks on a copy (the explorer keeps the ratio the reader set): the explorer's median split
# is the pipeline's, and a ratio of 0.25 puts a quarter of the examples in the confident half
assert split_view.reference["threshold"] == split["threshold"]
quarter = split_by_confidence(table, ratio=0.25)
assert len(quarter["confident"]) == round(0.25 * len(table))
assert len(analysis.side_changes(table, split, quarter)) == len(split["confident"]) - len(quarter["confident"])
