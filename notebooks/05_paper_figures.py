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
# # 05 · The paper's figures and tables, regenerated from a run directory
#
# Point `RUN_DIR` at any run directory (a GPU run of a `configs/paper/` YAML, or `runs/demo`
# after `make demo`); by default the notebook uses the demo's run (`RUNS_DIR/demo`; in fast
# mode the quick demo), running the stages that are not finished yet.
# Everything below is read from that directory by library functions: `sftmix figures RUN_DIR`
# writes the same files.

# %% tags=["parameters"]
import os

FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")
SHRINK = 2 if FAST else 1  # fast mode: 1/2 of the quick demo's examples, so CI runs it in about a minute
RUN_DIR = None  # e.g. "../runs/paper-llama3-alpaca"; None: the demo's run

# %%
import dataclasses
import json

import pandas as pd
from IPython.display import Image, Markdown, display

import sftmix
from sftmix.analysis.results import results_markdown
from sftmix.io import RunDir
from sftmix.pipeline.ablation import PAPER_CITATION, paper_table, paper_vs_ours
from sftmix.pipeline.experiment import demo_config
from sftmix.viz.figures import make_figures

# %%
if RUN_DIR is None:
    config = demo_config(quick=FAST, runs_dir=RUNS_DIR, name="nb05-fast" if FAST else None)
    sizes = {key: config.data[key] // SHRINK for key in ("n_train", "n_test")}
    config = dataclasses.replace(config, data={**config.data, **sizes})
    sftmix.run_experiment(config, progress="stages")
    RUN_DIR = config.run_dir
run = RunDir(RUN_DIR)
Markdown(f"`{run.root}`: " + ", ".join(f"`{p.name}`" for p in sorted(run.root.iterdir())))

# %% [markdown]
# ## Figures
# In order: the training-dynamics map coloured by correctness and by split (Dataset
# Cartography style; the paper reports confidence only), the confidence histogram with the
# split threshold, confidence by task and by label noise, the projection of the representation
# space coloured by confidence and by split (the paper's t-SNE figure), the training curves
# (total loss; NTP and Mixup parts), and exact match per task. Each is shown at its own size
# (at most the notebook's width).

# %%
written = make_figures(run, run.figures)
pngs = [p for p in written if p.suffix == ".png"]
for png in pngs:
    display(Markdown(f"**{png.stem}** — `{png}`"), Image(filename=str(png), unconfined=False, width=720))

# %% [markdown]
# ## Our results table
# Mean ± standard deviation over seeds; the paired SFTMix − NTP difference with its 95% interval;
# "no clear difference" whenever the interval covers zero.

# %%
results = json.loads(run.results_json.read_text())
Markdown(results_markdown(results))

# %% [markdown]
# ## The paper's reported numbers
# From Xiao et al., *SFTMix: Elevating Language Model Instruction Tuning with Mixup Recipe*,
# arXiv:2410.05248: instruction tuning on Alpaca-52K judged by MT-Bench and AlpacaEval-2 (win
# rate, length-controlled win rate), and on MedAlpaca-263K judged by medical multiple-choice
# benchmarks (accuracy, %). **These are theirs, not ours.**

# %%
paper_table("Alpaca-52K")

# %%
paper_table("MedAlpaca-263K")

# %% [markdown]
# ## Theirs beside ours
# One row per (setting, metric), **ours first**; the `source` column says whose number it is.
# **Paper**: 7–14B models, real instruction data, benchmark judges, single runs.
# **Ours**: a tiny model (the shipped pretrained base) on the built-in toy suite, held-out
# NLL / exact match / calibration over a few seeds. The values are **not comparable**; only the
# direction is (did SFTMix move the metric the good way?), and ours counts only when its
# verdict is not "no clear difference".

# %%
table = paper_vs_ours(results)
ours = table.source.str.startswith("ours")
tidy = pd.concat([table[ours], table[~ours]]).set_index(["source", "setting", "metric"])
Markdown(PAPER_CITATION)

# %%
tidy.round(3)

# %%
# checks: figures written; the paper's direction is SFTMix > NTP on every reported metric
assert any(p.name == "dynamics_map.png" for p in pngs) and run.results_md.exists()
assert (table[~ours].direction == "better").all()
assert set(table.source) == {"paper (Xiao et al.)", "ours (this run)"}
assert tidy.index.get_level_values("source")[0] == "ours (this run)"
