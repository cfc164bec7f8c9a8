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
# # 07 · The paper's experiment in miniature: a base model learns to follow instructions
#
# The SFTMix paper instruction-tunes **base** models (Llama-3.1-8B, Mistral-7B) and splits their
# data with the training dynamics of a smaller model of **another family** (Gemma-2B). Notebook 06
# fine-tuned a model that was already instruction-tuned. Here the model is **Gemma 3 270M base**,
# which has never seen a chat, trained on 64 ShareGPT first exchanges in three ways, 3 seeds each:
#
# | cell | what splits the data into confident and unconfident halves |
# |---|---|
# | NTP | nothing: plain next-token prediction |
# | SFTMix, own reference | Gemma's own NTP run (seed 0), as in the paper |
# | SFTMix, cross-family reference | SmolLM2-135M-Instruct's NTP run: another family and tokenizer |
#
# The results below are the **committed results** of `python figures/real_gemma3.py`, read from
# `figures/real/gemma3-270m/`, so the notebook opens in seconds. At the end the same study runs on
# tiny models (fast mode) or, with `RUN_FULL = True` and the opt-in Gemma install, for one seed.

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
FIGURES = os.environ.get("SFTMIX_FIGURES_DIR", "../figures")  # the repository's figures/ folder
RESULTS = f"{FIGURES}/real/gemma3-270m"  # the committed results of figures/real_gemma3.py
RUN_FULL = False  # True: one seed of the real study here (Gemma 3 270M, `make install-gemma`; ~40 minutes)

# %%
import pandas as pd
from IPython.display import Markdown

import sftmix
from sftmix.pipeline import read_study_results, run_experiment, study_configs, write_study_report
from sftmix.viz import plot_cells, plot_confidence_agreement

pd.set_option("display.max_colwidth", 160)
pd.set_option("display.html.use_mathjax", False)  # answers quote dollar amounts, not maths

# %%
study = read_study_results(RESULTS)
info = study["study"]
assert len(info["seeds"]) >= 3 and set(study["cells"]["cell"]) == {"ntp", "sftmix", "sftmix_xref"}
Markdown(f"Model: **{info['model']}** (base); cross-family reference: **{info['reference_model']}**; "
         f"seeds {info['seeds']}; {study['summary']['n_train']} training chats, "
         f"{study['summary']['n_noisy']} with a swapped answer.")

# %% [markdown]
# ## 1 · Before and after: the same prompts
# MT-Bench questions (first turn) answered greedily by the untuned base model and by seed 0 of each
# cell, all under Gemma's own turn markers. Look at the base column first: a base model continues
# text; it does not answer.

# %%
answers = study["answers"]
first_turns = answers[answers["turn"] == 1]
first_turns[["category", "prompt", *[c for c in ("base", "ntp", "sftmix", "sftmix_xref") if c in answers]]].head(4)

# %% [markdown]
# ## 2 · Held-out fit of the three cells
# Held-out NLL per token (over trained tokens and over content tokens), token accuracy and
# calibration error, one dot per seed, joined across cells because the comparisons are paired by seed.

# %%
plot_cells(study["cells"], {"nll": "held-out NLL, trained tokens (↓)", "content_nll": "held-out NLL, content (↓)",
                            "token_accuracy": "token accuracy (↑)", "ece": "ECE (↓)"})

# %% [markdown]
# The paired differences with exact 95% t-intervals; p-values are Holm-adjusted over the four metrics
# of each table, and a verdict needs the adjusted value under 0.05. Every cell is shown, whichever
# way it goes.

# %%
columns = ["metric", "against_mean", "cell_mean", "interval", "p_holm", "verdict"]
pd.concat({name: pd.DataFrame(rows)[columns] for name, rows in info["comparisons"].items()})

# %% [markdown]
# ## 3 · Which examples the reference finds hard
# Confidence is minus the mean perplexity of an answer across the reference run's checkpoints.
# The dynamics map and the representation space (t-SNE, as the paper's Fig. 1, and UMAP) of
# Gemma's own reference run: 10% of the answers were swapped between conversations on purpose.

# %%
sftmix.plot_dynamics_map(study["dynamics"], split=study["split"])

# %%
sftmix.plot_umap_confidence(study["tsne"], color="confidence", split=study["split"], method="t-SNE")

# %% [markdown]
# ## 4 · Do two families agree on what is hard?
# The paper's weak-to-strong transfer needs another model's confidence to rank the examples much as
# the trained model's own would. Each dot is a training example: its confidence rank under Gemma's
# reference run against SmolLM2's.

# %%
plot_confidence_agreement(study["dynamics"], study["reference_dynamics"],
                          names=(info["model"], info["reference_model"]))

# %% [markdown]
# ## 5 · The spread of confidence after training
# The paper reports about 7% lower standard deviation of confidence after SFTMix training. Here: the
# std over the training examples under each trained model, and the change against NTP of the same seed.

# %%
pd.DataFrame(info["spread"] or [])

# %% [markdown]
# ## 6 · Verifiable instructions, passed and failed
# IFEval-style checks decide by program whether an answer followed an instruction ("no commas",
# "end with this phrase"). These measures did not separate a base from an instruct model at this size
# (`benchmarks/results/yardsticks/`), so they are for reading, not for verdicts. Read the answers
# that "passed": the untuned base often passes by echoing the prompt back, which is why a checker's
# accuracy alone says little here.

# %%
checks = study["checks"]
followed = [c for c in checks.columns if c.endswith("_followed")]
checks[["instructions", *followed]].head(8)

# %%
passed = checks[checks[followed].any(axis=1)] if followed else checks.head(0)
passed[["prompt", "instructions", *[c.replace("_followed", "_answer") for c in followed]]].head(3)

# %% [markdown]
# ## Run it yourself
# In fast mode (CI) the same study runs on tiny random models (tiny-gemma3 trained, tiny-llama as the
# other family's reference) on 16 chats: every stage, nothing to conclude. `RUN_FULL = True` runs one
# seed of the real study (`make install-gemma` first; the Gemma Terms of Use apply).

# %%
own, xref = study_configs(smoke=not RUN_FULL, runs_dir=RUNS_DIR)
ran = [run_experiment(c, progress="stages") for c in (own, xref)] if (FAST or RUN_FULL) else None

# %%
report = f"{RUNS_DIR}/{own.name}-report"
written = write_study_report(own.run_dir, xref.run_dir, report, made_by="notebook 07") if ran else []
assert ran is None or all(r["summary"]["sftmix"]["nll"]["mean"] > 0 for r in ran)
read_study_results(report)["cells"] if ran else "not run (set RUN_FULL = True, or SFTMIX_FAST=1 for the tiny study)"
