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
# # 03 · Confidence across the representation space
#
# The paper motivates SFTMix with a picture: in a t-SNE projection of the model's
# representations of its training data, confident and unconfident examples sit in
# *different regions* (Xiao et al., arXiv:2410.05248). If confidence were spread evenly,
# mixing a confident with an unconfident example would just be noise; because it is not,
# interpolating between the two regions regularises the space in between.
#
# Here we embed every training example with the reference model (its last hidden states,
# averaged over the response tokens — the states SFTMix mixes), project them to 2-D and
# colour them. A picture can mislead, so we also measure it: `knn_agreement` compares each
# example's confidence with its neighbours' and with what shuffled confidences give.

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
K = 10  # neighbours in knn_agreement

# %%

import numpy as np
import pandas as pd
from IPython.display import Markdown

import sftmix
from sftmix import RunDir
from sftmix.analysis import knn_agreement, pca_reduce
from sftmix.dynamics import load_split
from sftmix.pipeline import demo_config

# %% [markdown]
# ## Reference run, dynamics, split, embeddings
# The demo's configuration (its quick version in fast mode), run up to the embeddings stage.
# The embeddings come from the final reference checkpoint; the projection is the demo's:
# PCA in fast mode, UMAP (after a 50-dimensional PCA) otherwise.

# %%
config = demo_config(quick=FAST, runs_dir=RUNS_DIR, name="nb03-fast" if FAST else "nb03")
config = config.override({"methods": ["sftmix"], "embeddings": True})
ran = sftmix.run_experiment(config, until="embeddings", progress="stages")

# %%
run = RunDir(config.run_dir)
proj, split = pd.read_parquet(run.projection), load_split(run.split)
embeddings = np.load(run.embeddings)
METHOD = config.projection.upper()
Markdown(f"{embeddings.shape[0]} examples, {embeddings.shape[1]}-dimensional states, projected with {METHOD}")

# %% [markdown]
# ## Coloured by confidence, by split, by task
# Confidence is the paper's `−mean perplexity`, coloured in *deciles* (each colour holds a tenth
# of the examples; the colour bar's ticks are the decile edges): red below the split threshold,
# blue above it, the threshold marked on the bar. A linear colour scale would paint most points
# alike, because a few examples have huge perplexities. Black crosses are the corrupted answers;
# each cluster is named by its task.

# %%
sftmix.plot_umap_confidence(proj, color="confidence", split=split, method=METHOD, label_groups="task")

# %%
sftmix.plot_umap_confidence(proj, color="split", split=split, method=METHOD, label_groups="task")

# %% [markdown]
# Much of the structure is the task: each family occupies its own region, and families
# differ in confidence. Each task has its own colour *and* marker shape (fifteen colours alone
# cannot all be told apart), and its name sits on its densest spot. The last check below asks
# whether confidence is uneven *within* tasks too.

# %%
sftmix.plot_umap_confidence(proj, color="task", method=METHOD, label_groups="task")

# %% [markdown]
# ## How uneven? A number for the picture
# For each example, `knn_agreement` takes the absolute difference between its value and the mean
# of its k nearest neighbours, averaged over examples (`observed`), and compares it with the same
# statistic with the values shuffled over the points (`shuffled_mean`).
#
# * **`ratio`** = observed / shuffled_mean: ≈ 1 means no spatial structure; well below 1 means
#   neighbours share their value.
# * **`z_score`** counts shuffle standard deviations (negative: clustered).
# * **`neighbour_corr`** is the Pearson correlation between each example's value and the mean
#   value of its k neighbours: 0 for no structure, towards 1 when neighbours predict the value.
#
# We measure it in the 2-D projection and in a PCA of the full states (projections can invent
# or hide neighbourhoods), for the confidence, for the split, and for confidence with each
# task's mean removed.

# %%
reduced = pca_reduce(embeddings, 50)
PCA_SPACE = f"PCA-{reduced.shape[1]} of the {embeddings.shape[1]}-D states"
spaces = {f"{METHOD} 2-D": proj[["x", "y"]].to_numpy(), PCA_SPACE: reduced}
is_confident = proj["example_id"].isin(split["confident"]).to_numpy(dtype=float)
within_task = proj["confidence_prob"] - proj.groupby("task")["confidence_prob"].transform("mean")
values = {"confidence_prob": proj["confidence_prob"], "confident half (0/1)": is_confident,
          "confidence_prob − task mean": within_task}

# %%
agreement = pd.DataFrame([{"space": s, "value": v, **knn_agreement(xy, vals, k=K)}
                          for s, xy in spaces.items() for v, vals in values.items()])
agreement[["space", "value", "observed", "shuffled_mean", "ratio", "z_score", "neighbour_corr"]].round(3)

# %% [markdown]
# ## The paper's observation beside ours
# * **Paper** (Llama-3.1-8B on Alpaca-52K, t-SNE): the confident and unconfident halves occupy
#   visibly different regions of the representation space.
# * **Ours** (a tiny model on the toy suite): the table above. A ratio below 1 with a large
#   negative z-score for the split and for confidence says the same thing in numbers. The
#   "− task mean" rows say how much of it remains once the task is accounted for — on a suite
#   of very different tasks, most of the unevenness is *between* tasks.

# %%
key = agreement.set_index(["space", "value"])
assert key.loc[(f"{METHOD} 2-D", "confidence_prob"), "ratio"] < 1.0
assert key.loc[(PCA_SPACE, "confident half (0/1)"), "z_score"] < -3
assert len(proj) == len(embeddings) == config.data["n_train"]
assert ran["stages"][-1] == "embeddings"  # no model was trained for this notebook
