"""Write the companion notebooks (without outputs): ``python notebooks/make_notebooks.py``.

The notebooks are generated so that their cells stay short and reviewable as plain
text here; edit this file, run it, and commit both. Each notebook starts with a
``# parameters`` cell (tagged for papermill) whose ``FAST`` flag (``SFTMIX_FAST=1``)
shrinks every size so CI executes it in about a minute.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent
PARAMS_HEAD = '''# parameters
import os
FAST = os.environ.get("SFTMIX_FAST") == "1"
RUNS_DIR = os.environ.get("SFTMIX_RUNS_DIR", "../runs")'''


def md(text: str):
    return nbf.v4.new_markdown_cell(text.strip("\n"))


def code(text: str):
    return nbf.v4.new_code_cell(text.strip("\n"))


def params(text: str):
    cell = code(PARAMS_HEAD + "\n" + text.strip("\n"))
    cell.metadata["tags"] = ["parameters"]
    return cell


def write(name: str, cells: list) -> Path:
    nb = nbf.v4.new_notebook()
    stem = name.split("_")[0]
    for i, cell in enumerate(cells):
        cell.id = f"nb{stem}-{i:02d}"  # stable ids: regenerating gives no spurious diff
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path = HERE / name
    nbf.validate(nb)
    nbf.write(nb, path)
    return path


# ----------------------------------------------------------------------------- 01
NB01 = [
    md("""
# 01 · Quickstart: the task suite, the recipe in pictures, NTP vs SFTMix

SFTMix (Xiao et al., arXiv:2410.05248) adds a Mixup regulariser to instruction tuning:
it interpolates the last hidden states of a *confident* and an *unconfident* training
example and trains on the interpolated point with the interpolated label.
This notebook runs the whole recipe on the built-in task suite with a tiny model on a CPU.
Set `SFTMIX_FAST=1` to run it in seconds (that is how CI executes it)."""),
    params("""
N_TRAIN = 300 if FAST else 1000
EPOCHS = 1 if FAST else 5"""),
    code("""
import pandas as pd
import sftmix
from sftmix.viz.plots import plot_lambda_distribution
from sftmix.toy import list_tasks
pd.set_option("display.max_colwidth", 60)"""),
    md("""
## The built-in task suite
Fifteen families of instructions with exact answers, at three difficulty levels. Some are
easy for a tiny model (upper-casing), some hard (multiplication, number words): the
unevenness is what gives the confidence split something to find."""),
    code("""
tasks = list_tasks()
tasks[tasks.difficulty == 2][["name", "example_prompt", "example_response"]]"""),
    code("""
suite = sftmix.make_task_suite(n_train=N_TRAIN, n_test=120, seed=0, noise=0.1)
suite["train"].to_pandas().head(8)"""),
    md("""
## The recipe in pictures
Mixing coefficients come from Beta(α, α); with the paper's α = 0.5 most draws sit near 0 or 1,
so a mixed point usually stays close to one of its two parents."""),
    code("""plot_lambda_distribution(0.5)"""),
    md("""
## Run the experiment
`demo_config` is the configuration behind `sftmix demo`; here we shrink it for the notebook.
Each stage writes into the run directory and is skipped when it already finished."""),
    code("""
from sftmix.pipeline.experiment import demo_config
config = demo_config(quick=True, runs_dir=RUNS_DIR, name="nb01-fast" if FAST else "nb01")
config.data.update(n_train=N_TRAIN, noise=0.1)
config.training.update(num_train_epochs=EPOCHS)
config.embeddings = False
results = sftmix.run_experiment(config, progress=False)"""),
    md("""
## Training curves
The total loss of SFTMix includes 0.2 × the Mixup loss, so compare the NTP parts."""),
    code("""
import json
histories = {label: json.loads((config.run_dir / m / "seed0" / "log_history.json").read_text())
             for m, label in [("ntp", "NTP"), ("sftmix", "SFTMix")]}
sftmix.plot_training_curves(histories)"""),
    md("""
## Results
Mean ± spread over seeds; the verdict column only claims a difference when the paired
95% interval excludes zero (one seed in fast mode: no claim is possible)."""),
    code("""print((config.run_dir / "results.md").read_text())"""),
    md("""
## What Mixup does to one pair
Take one confident and one unconfident training example (drawn at random from the two halves
of the split), run the trained SFTMix model on each, and mix their last hidden states at the
first response position. Move **λ** to see the next-token distribution slide from the
unconfident example's (λ = 0) to the confident one's (λ = 1); the Mixup loss asks the mixed
state to put λ of its mass on the confident example's next token and 1 − λ on the other's.
Move **α** to see how often training draws a λ far from 0 and 1."""),
    code("""
from transformers import AutoModelForCausalLM
from sftmix.dynamics import load_split
from sftmix.models import load_tokenizer
from sftmix.data import load_train_eval
from sftmix.viz.widgets import lambda_explorer, pick_pair
train, _ = load_train_eval(config.data_args())
pair = pick_pair(train, load_split(config.run_dir / "split.json"), seed=0)
model = AutoModelForCausalLM.from_pretrained(config.run_dir / "sftmix" / "seed0")
explorer = lambda_explorer(model, load_tokenizer(config.model_args()), pair)
explorer.widget"""),
    code("""
# checks that the notebook produced what it describes
assert set(results["summary"]) == {"ntp", "sftmix"}
assert all(0.0 <= results["summary"][m]["exact_match"]["mean"] <= 1.0 for m in results["summary"])
assert any("mixup_loss" in h for h in histories["SFTMix"])
explorer.set_lambda(1.0)
assert explorer.top["mix"] == explorer.top["confident"]  # lambda = 1 is the confident example itself"""),
]

# ----------------------------------------------------------------------------- 02
NB02 = [
    md("""
# 02 · The training-dynamics map: which examples is the model sure about?

Stage 1 of SFTMix trains a *reference* model with plain next-token prediction and scores
every training example at C checkpoints by its response perplexity. Stage 2 splits the data
at the median of the paper's confidence, `−mean perplexity`, into a confident and an
unconfident half. This notebook draws what those numbers look like, in the style of
Dataset Cartography (Swayamdipta et al., 2020):

* **confidence** — the paper's `−mean_c Perp_c(y|x)`; on the map we use its bounded
  cousin `confidence_prob`, the mean over checkpoints of the geometric-mean token probability;
* **variability** — the spread of that probability across checkpoints;
* **correctness** — the share of response tokens the model predicts exactly (argmax).

To check that confidence means something, the suite corrupts a share of the training
answers (`noisy`): a plausible but wrong response. A useful confidence should put those
examples in the unconfident half."""),
    params("""
N_TRAIN = 300 if FAST else 1000
NOISE = 0.3                       # share of training answers replaced by a wrong one
REF_EPOCHS = 3 if FAST else 4     # reference run; one checkpoint is scored per epoch-ish
N_CHECKPOINTS = 3
HIDDEN = 48 if FAST else 64
TASKS = "uppercase,repeat_word,is_even,vowel_count,count_letter"  # learnable families; see "label noise"
"""),
    code("""
import pandas as pd
import sftmix
from sftmix.pipeline import stages
from sftmix.viz import widgets
from sftmix.dynamics import load_dynamics, load_split
from sftmix.pipeline.experiment import ExperimentConfig
from sftmix.viz.plots import plot_confidence_by_task
from sftmix.data import load_train_eval
pd.set_option("display.max_colwidth", 50)"""),
    md("""
## The reference run and the dynamics table
Only the first three stages of the experiment are needed here (reference run, scoring,
split); we call them directly. Every row of the table is one training example."""),
    code("""
config = ExperimentConfig(
    name="nb02-fast" if FAST else "nb02", runs_dir=RUNS_DIR, seeds=[0], methods=["sftmix"],
    model={"model_name_or_path": "tiny-llama", "tiny_hidden_size": HIDDEN},
    data={"n_train": N_TRAIN, "n_test": 0, "noise": NOISE, "tasks": TASKS},
    training={"per_device_train_batch_size": 32, "learning_rate": 5e-3, "logging_steps": 20},
    reference_training={"num_train_epochs": REF_EPOCHS}, n_checkpoints=N_CHECKPOINTS)
train, _ = load_train_eval(config.data_args())
run = config.run_dir"""),
    code("""
stages.reference_stage(config, train, run)
stages.dynamics_stage(config, train, run, progress=False)
stages.split_stage(config, run)
table, split = load_dynamics(run / "dynamics.parquet", train), load_split(run / "split.json")
table[["example_id", "task", "noisy", "confidence", "confidence_prob", "variability_prob", "correctness"]].head()"""),
    md("""
## The map
One dot per training example: how sure the reference model was on average (y) against how
much that changed across checkpoints (x). Top left: *easy-to-learn* (sure from the start);
bottom: *hard-to-learn* (never sure); right: *ambiguous* (the model changed its mind).
The colour is correctness: confident examples are mostly the ones the model gets right."""),
    code("""sftmix.plot_dynamics_map(table, color="correctness")"""),
    md("""
The same map coloured by the split SFTMix uses. The split is made on the paper's
perplexity-based confidence, so the boundary on this probability-scale map is close to,
but not exactly, a horizontal line."""),
    code("""sftmix.plot_dynamics_map(table, split=split, color="split")"""),
    code("""sftmix.plot_confidence_hist(table, split=split)"""),
    code("""
print(f"split at {split['metric']} >= {split['threshold']:.3f} (ratio {split['ratio']}): "
      f"{len(split['confident'])} confident, {len(split['unconfident'])} unconfident of {split['n']}")"""),
    md("""
## What the regions hold
A region is a top or bottom third along one axis (the rule of `sftmix.viz.widgets.region_mask`):
easy-to-learn = highest third of `confidence_prob`, hard-to-learn = lowest third,
ambiguous = highest third of `variability_prob` (it may overlap the other two).
The `answer` column shows the correct answer where the trained response was corrupted."""),
    code("""
masks = {r: widgets.region_mask(table, r) for r in widgets.REGIONS}
regions = pd.DataFrame.from_dict({r: {"examples": m.sum(), "share noisy": table.noisy[m].mean(),
                                      "mean correctness": table.correctness[m].mean()}
                                  for r, m in masks.items()}, orient="index")
regions"""),
    code("""widgets.select_examples(table, train, region="easy-to-learn", n=4)"""),
    code("""widgets.select_examples(table, train, region="hard-to-learn", n=4)"""),
    code("""widgets.select_examples(table, train, region="ambiguous", n=4)"""),
    md("""Browse any region, task or noise flag interactively:"""),
    code("""
inspector = widgets.example_inspector(table, train, region="hard-to-learn")
inspector.widget"""),
    md("""
## Confidence by task
Confidence is uneven across task families: this is the unevenness SFTMix exploits.
The split therefore also splits tasks unevenly (see the table under the split explorer)."""),
    code("""plot_confidence_by_task(table)"""),
    md("""
## Confidence and label noise
Noisy examples have a wrong answer the model cannot have learned from the other examples,
so it should be less sure of them. We compare medians: the paper's perplexity-based
confidence has a long tail (a few examples with huge perplexity), which makes means
unreliable."""),
    code("""sftmix.plot_confidence_hist(table, by="noisy", split=split)"""),
    code("""
by_noise = table.groupby("noisy")[["confidence", "confidence_prob", "correctness"]].median()
by_noise.index = by_noise.index.map({False: "clean", True: "noisy"})
by_noise"""),
    code("""
halves = widgets.split_summary(table, split)
halves"""),
    md("""
Per task, the difference in median confidence between noisy and clean examples, beside the
token correctness of the clean ones. Noise shows up only in families where the reference
model has learned to *compute* the answer from the instruction (counting, here). Where it has
learned only the answer's *format* — a yes/no, a word said n times — a wrong answer is no more
surprising than a right one, even when token correctness looks high (after `n`, the `o` of
`no` is easy whatever the parity). On the full suite (`TASKS = None`) most families are of
that second kind for a tiny model, and confidence does not separate noisy from clean
examples there: a limit worth knowing before trusting a split to find bad data."""),
    code("""
medians = table.groupby(["task", "noisy"])[["confidence_prob", "correctness"]].median().unstack()
per_task = pd.DataFrame({"clean correctness": medians["correctness"][False],
                         "noisy − clean confidence_prob": medians["confidence_prob"][True] - medians["confidence_prob"][False]})
per_task.sort_values("clean correctness", ascending=False)"""),
    code("""
# checks: noisy examples are less confident and over-represented in the unconfident half
assert by_noise.loc["noisy", "confidence"] < by_noise.loc["clean", "confidence"]
assert by_noise.loc["noisy", "confidence_prob"] < by_noise.loc["clean", "confidence_prob"]
assert halves.loc["unconfident", "share noisy"] > halves.loc["confident", "share noisy"]
assert len(split["confident"]) + len(split["unconfident"]) == len(table) == N_TRAIN"""),
    md("""
## Split explorer
Move the ratio: the threshold, the sizes of the halves, the share of noisy examples in each
and the colours of the map follow. The paper splits at the median (ratio 0.5)."""),
    code("""
explorer = widgets.split_explorer(table, ratio=0.5)
explorer.widget"""),
    code("""
explorer.update(ratio=0.25)
assert len(explorer.split["confident"]) == round(0.25 * len(table))"""),
]

# ----------------------------------------------------------------------------- 03
NB03 = [
    md("""
# 03 · Confidence across the representation space

The paper motivates SFTMix with a picture: in a t-SNE projection of the model's
representations of its training data, confident and unconfident examples sit in
*different regions* (Xiao et al., arXiv:2410.05248). If confidence were spread evenly,
mixing a confident with an unconfident example would just be noise; because it is not,
interpolating between the two regions regularises the space in between.

Here we embed every training example with the reference model (its last hidden states,
averaged over the response tokens — the states SFTMix mixes), project them to 2-D and
colour them. A picture can mislead, so we also measure it: `knn_agreement` compares each
example's confidence with its neighbours' and with what shuffled confidences give."""),
    params("""
N_TRAIN = 300 if FAST else 1000
REF_EPOCHS = 2 if FAST else 4
HIDDEN = 48 if FAST else 64
PROJECTION = "pca" if FAST else "umap"   # UMAP compiles with numba on first use (~1 min); CI uses PCA
K = 10                                   # neighbours in knn_agreement"""),
    code("""
import numpy as np
import pandas as pd
import sftmix
from sftmix.pipeline import stages
from sftmix.dynamics import load_split
from sftmix.pipeline.experiment import ExperimentConfig
from sftmix.analysis.projection import knn_agreement, pca_reduce
from sftmix.data import load_train_eval"""),
    md("""
## Reference run, dynamics, split, embeddings
The embeddings come from the final reference checkpoint; the projection is PCA in fast mode
and UMAP (after a 50-dimensional PCA) otherwise."""),
    code("""
config = ExperimentConfig(
    name="nb03-fast" if FAST else "nb03", runs_dir=RUNS_DIR, seeds=[0], methods=["sftmix"],
    model={"model_name_or_path": "tiny-llama", "tiny_hidden_size": HIDDEN},
    data={"n_train": N_TRAIN, "n_test": 0, "noise": 0.1},
    training={"per_device_train_batch_size": 32, "learning_rate": 5e-3, "logging_steps": 20},
    reference_training={"num_train_epochs": REF_EPOCHS}, n_checkpoints=3, projection=PROJECTION)
train, _ = load_train_eval(config.data_args())
run = config.run_dir"""),
    code("""
stages.reference_stage(config, train, run)
stages.dynamics_stage(config, train, run, progress=False)
stages.split_stage(config, run)
stages.embeddings_stage(config, train, run)"""),
    code("""
proj, split = pd.read_parquet(run / "projection.parquet"), load_split(run / "split.json")
embeddings = np.load(run / "embeddings.npy")
METHOD = PROJECTION.upper()
print(f"{embeddings.shape[0]} examples, {embeddings.shape[1]}-dimensional states, projected with {METHOD}")"""),
    md("""
## Coloured by confidence, by split, by task
Confidence is the paper's `−mean perplexity` (the colour scale is clipped to its 2nd–98th
percentiles; the arrows on the colour bar say so)."""),
    code("""sftmix.plot_umap_confidence(proj, color="confidence", method=METHOD)"""),
    code("""sftmix.plot_umap_confidence(proj, color="split", split=split, method=METHOD)"""),
    md("""
Much of the structure is the task: each family occupies its own region, and families
differ in confidence. The last check below asks whether confidence is uneven *within* tasks too."""),
    code("""sftmix.plot_umap_confidence(proj, color="task", method=METHOD)"""),
    md("""
## How uneven? A number for the picture
For each example, `knn_agreement` takes the absolute difference between its value and the mean
of its k nearest neighbours, averaged over examples, and divides by the same statistic with
the values shuffled over the points. **ratio ≈ 1: no spatial structure; ratio well below 1:
neighbours share their confidence.** `z_score` counts shuffle standard deviations.
We measure it in the 2-D projection and in the 50-dimensional PCA of the full states
(projections can invent or hide neighbourhoods), for the confidence, for the split, and for
confidence with each task's mean removed."""),
    code("""
is_confident = proj["example_id"].isin(split["confident"]).to_numpy(dtype=float)
within_task = proj["confidence_prob"] - proj.groupby("task")["confidence_prob"].transform("mean")
spaces = {f"{METHOD} 2-D": proj[["x", "y"]].to_numpy(), "PCA-50 of the states": pca_reduce(embeddings, 50)}
values = {"confidence_prob": proj["confidence_prob"], "confident half (0/1)": is_confident,
          "confidence_prob − task mean": within_task}
agreement = pd.DataFrame([{"space": s, "value": v, **knn_agreement(xy, vals, k=K)}
                          for s, xy in spaces.items() for v, vals in values.items()])
agreement[["space", "value", "observed", "shuffled_mean", "ratio", "z_score", "neighbour_corr"]].round(3)"""),
    md("""
## The paper's observation beside ours
* **Paper** (Llama-3.1-8B on Alpaca-52K, t-SNE): the confident and unconfident halves occupy
  visibly different regions of the representation space.
* **Ours** (a tiny model on the toy suite): the table above. A ratio below 1 with a large
  negative z-score for the split and for confidence says the same thing in numbers. The
  "− task mean" rows say how much of it remains once the task is accounted for — on a suite
  of very different tasks, most of the unevenness is *between* tasks."""),
    code("""
key = agreement.set_index(["space", "value"])
assert key.loc[(f"{METHOD} 2-D", "confidence_prob"), "ratio"] < 1.0
assert key.loc[("PCA-50 of the states", "confident half (0/1)"), "z_score"] < -3
assert len(proj) == len(embeddings) == N_TRAIN"""),
]

# ----------------------------------------------------------------------------- 04
NB04 = [
    md("""
# 04 · Ablations: α, μ, the split ratio and the pairing

The paper fixes α = 0.5 (λ ~ Beta(α, α)), μ = 0.2 (loss = NTP + μ·Mixup), a median split and
confident × unconfident pairs, and reports a role-of-Mixup ablation (below). Here we vary
each setting **one at a time around that recipe**, over several seeds, with
`sftmix.pipeline.ablation.run_ablation` (the same as `sftmix ablate CONFIG.yaml`).

All cells share one reference run and dynamics table (the dynamics do not depend on these
settings; a different split ratio re-cuts the same table); the centre of every sweep is the
base experiment's own SFTMix run, and its NTP run is the baseline band. Finished cells are
cached in `<run>/ablation/<param>=<value>/seed<k>/` and skipped on a re-run."""),
    params("""
SEEDS = [0] if FAST else [0, 1, 2]
N_TRAIN, N_TEST = (160, 48) if FAST else (600, 150)
EPOCHS = 1 if FAST else 3
# Values besides the centre (alpha 0.5, mu 0.2, ratio 0.5, confident_unconfident), which is always added.
SWEEP = {"mixup_alpha": [2.0] if FAST else [0.1, 2.0], "mixup_weight": [1.0] if FAST else [0.05, 1.0],
         "split_ratio": [0.3] if FAST else [0.3, 0.7],
         "pairing": ["random"] if FAST else ["random", "confident_confident", "unconfident_unconfident"]}"""),
    code("""
import pandas as pd
from sftmix.pipeline.ablation import paper_table, plot_sweep, run_ablation, summarize_ablation
from sftmix.pipeline.experiment import ExperimentConfig"""),
    md("""
## The centre recipe
The same YAML that `sftmix ablate` reads; the notebook only shrinks it."""),
    code("""
base = ExperimentConfig.from_yaml("../configs/ablation-demo.yaml", runs_dir=RUNS_DIR,
                                  name="nb04-fast" if FAST else "nb04", seeds=SEEDS)
base.data.update(n_train=N_TRAIN, n_test=N_TEST)
base.training.update(num_train_epochs=EPOCHS)
{k: base.training[k] for k in ("mixup_alpha", "mixup_weight", "pairing")} | {"split_ratio": base.split_ratio}"""),
    code("""
results = run_ablation(base, SWEEP, SEEDS, progress=False)
results.head(8)"""),
    md("""
## Each knob against the NTP baseline
Dots are single seeds, the line is the mean ± std over seeds, the grey band is the NTP
baseline's mean ± std. Held-out NLL (lower is better) is the most sensitive metric at this size."""),
    code("""plot_sweep(results, "nll")"""),
    md("""
Exact match needs a whole answer right. A tiny model trained for a minute gets only a few
answers right whatever the setting (its floor), so flat exact-match curves here say nothing
about the knobs; they become informative at the sizes of `configs/ablation-demo.yaml` and up."""),
    code("""plot_sweep(results, "exact_match")"""),
    md("""
## What is a finding and what is not
Each cell is compared with the centre recipe **per seed** (same seed, same initial weights),
and a difference counts only when its 95% interval over seeds excludes zero. With a tiny
model and a few seeds, most differences are within the spread: those are **not findings**,
whichever way the mean points. With one seed (fast mode) no claim is possible at all."""),
    code("""summarize_ablation(results, "nll").round(4)"""),
    code("""summarize_ablation(results, "exact_match").round(4)"""),
    md("""
And the centre recipe itself against the NTP baseline, paired by seed, on held-out NLL
(the same test as the results table of `sftmix demo`):"""),
    code("""
from sftmix.analysis.results import paired_difference
centre = results[results.centre & (results.param == "mixup_alpha")].set_index("seed").nll
ntp = results[results.param == "ntp_baseline"].set_index("seed").nll
paired_difference(ntp.loc[SEEDS], centre.loc[SEEDS], higher_is_better=False)"""),
    md("""
## The paper's role-of-Mixup ablation, for context
Llama-3.1-8B on Alpaca-52K, as reported by Xiao et al. (arXiv:2410.05248); single runs on
MT-Bench and AlpacaEval-2 (length-controlled win rate). Our sweep of μ is the closest analogue
(`loss_variant` in `SFTMixConfig` reproduces the "equally weighted" and "Mixup only" rows)."""),
    code("""paper_table("role of Mixup (Llama-3.1-8B, Alpaca-52K)")"""),
    code("""
# checks: every cell ran for every seed; the centre is the base run's SFTMix; re-running is free
assert len(results) == len(SEEDS) * (1 + sum(len(v) + 1 for v in SWEEP.values()))
assert (base.run_dir / "ablation" / "results.csv").exists()
assert results[results.centre].groupby("seed").nll.nunique().eq(1).all()
pd.testing.assert_frame_equal(run_ablation(base, SWEEP, SEEDS, progress=False), results)"""),
]

# ----------------------------------------------------------------------------- 05
NB05 = [
    md("""
# 05 · The paper's figures and tables, regenerated from a run directory

Point `RUN_DIR` at any run directory (a GPU run of a `configs/paper/` YAML, or `runs/demo`
after `make demo`); by default the notebook reuses `RUNS_DIR/demo` when it exists and
otherwise creates the built-in run (the demo; in fast mode a smaller version).
Everything below is read from that directory by library functions: `sftmix figures RUN_DIR`
writes the same files."""),
    params("""
RUN_DIR = None   # e.g. "../runs/paper-llama3-alpaca"; None: the built-in run"""),
    code("""
import json
from pathlib import Path
from IPython.display import Image, Markdown, display
import pandas as pd
import sftmix
from sftmix.pipeline.ablation import PAPER_CITATION, paper_table, paper_vs_ours
from sftmix.pipeline.experiment import demo_config
from sftmix.viz.figures import make_figures"""),
    code("""
if RUN_DIR is None:
    config = demo_config(quick=FAST, runs_dir=RUNS_DIR, name="nb05-fast" if FAST else "demo")
    if FAST:
        config.data.update(n_train=240, n_test=60)
        config.training.update(num_train_epochs=1)
    sftmix.run_experiment(config, progress=False)
    RUN_DIR = config.run_dir
run = Path(RUN_DIR)
print(run, sorted(p.name for p in run.iterdir()))"""),
    md("""
## Figures
In order: the training-dynamics map coloured by correctness and by split (Dataset
Cartography style; the paper reports confidence only), the confidence histogram with the
split threshold, confidence by task and by label noise, the projection of the representation
space coloured by confidence and by split (the paper's t-SNE figure), the training curves
(total loss; NTP and Mixup parts), and exact match per task."""),
    code("""
written = make_figures(run, run / "figures")
pngs = [p for p in written if p.suffix == ".png"]
for png in pngs:
    display(Markdown(f"**{png.stem}** — `{png}`"), Image(filename=str(png), width=640))"""),
    md("""
## Our results table
Mean ± standard deviation over seeds; the paired SFTMix − NTP difference with its 95% interval;
"no clear difference" whenever the interval covers zero."""),
    code("""
results = json.loads((run / "results.json").read_text())
display(Markdown((run / "results.md").read_text()))"""),
    md("""
## The paper's reported numbers
From Xiao et al., *SFTMix: Elevating Language Model Instruction Tuning with Mixup Recipe*,
arXiv:2410.05248 (ACL 2026): instruction tuning on Alpaca-52K judged by MT-Bench and
AlpacaEval-2 (win rate, length-controlled win rate), and on MedAlpaca-263K judged by medical
multiple-choice benchmarks (accuracy, %). **These are theirs, not ours.**"""),
    code("""paper_table("Alpaca-52K")"""),
    code("""paper_table("MedAlpaca-263K")"""),
    md("""
## Theirs beside ours
One row per (setting, metric): the `source` column says whose number it is.
**Paper**: 7–14B models, real instruction data, benchmark judges, single runs.
**Ours**: a tiny randomly initialised model on the built-in toy suite, held-out NLL / exact
match / calibration over a few seeds. The values are **not comparable**; only the direction
is (did SFTMix move the metric the good way?), and ours counts only when its verdict is not
"no clear difference"."""),
    code("""
table = paper_vs_ours(results)
print(PAPER_CITATION)
table"""),
    code("""
# checks: figures written; the paper's direction is SFTMix > NTP on every reported metric
assert any(p.name == "dynamics_map.png" for p in pngs) and (run / "results.md").exists()
assert (table[table.source.str.startswith("paper")].direction == "better").all()
assert set(table.source) == {"paper (Xiao et al.)", "ours (this run)"}"""),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": NB01,
    "02_training_dynamics_map.ipynb": NB02,
    "03_umap_confidence.ipynb": NB03,
    "04_ablations.ipynb": NB04,
    "05_paper_figures.ipynb": NB05,
}

if __name__ == "__main__":
    names = sys.argv[1:] or list(NOTEBOOKS)
    for name in names:
        print(write(name, NOTEBOOKS[name]))
