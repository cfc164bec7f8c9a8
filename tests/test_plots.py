"""Tests for sftmix.viz.plots on a synthetic dynamics table, logs and results."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from sftmix.viz import plots

TASKS = ["arithmetic", "copy", "reverse", "sort"]


def make_table(n: int = 300, checkpoints: int = 3, seed: int = 0) -> pd.DataFrame:
    """A dynamics table shaped like the real one: harder and noisy examples are learnt
    less well and more erratically."""
    rng = np.random.default_rng(seed)
    task = np.array(TASKS)[np.arange(n) % len(TASKS)]
    difficulty = rng.integers(1, 4, n)
    noisy = rng.random(n) < 0.1
    skill = 2.0 - 0.6 * difficulty - 2.0 * noisy + 0.3 * (np.arange(n) % 4) + rng.normal(0, 0.7, n)
    df = pd.DataFrame({"example_id": [f"ex{i:04d}" for i in range(n)], "task": task,
                       "difficulty": difficulty, "noisy": noisy})
    for c in range(checkpoints):
        logit = skill + c * rng.normal(0.8, 0.5, n)
        gprob = 1 / (1 + np.exp(-logit))
        df[f"ppl_{c}"] = 1 / gprob
        df[f"gprob_{c}"] = gprob
        df[f"prob_{c}"] = np.clip(gprob + rng.normal(0, 0.02, n), 0, 1)
        df[f"acc_{c}"] = np.clip(gprob + rng.normal(0, 0.1, n), 0, 1)
    ppl = df[[f"ppl_{c}" for c in range(checkpoints)]].to_numpy()
    prob = df[[f"gprob_{c}" for c in range(checkpoints)]].to_numpy()
    df["confidence"] = -ppl.mean(1)
    df["variability"] = ppl.std(1)
    df["confidence_prob"] = prob.mean(1)
    df["variability_prob"] = prob.std(1)
    df["correctness"] = df[[f"acc_{c}" for c in range(checkpoints)]].to_numpy().mean(1)
    return df


def make_split(table: pd.DataFrame, metric: str = "confidence") -> dict:
    threshold = float(table[metric].median())
    conf = table[metric] > threshold
    return {"confident": list(table.loc[conf, "example_id"]),
            "unconfident": list(table.loc[~conf, "example_id"]),
            "threshold": threshold, "metric": metric, "ratio": 0.5}


def make_histories(steps: int = 60) -> dict:
    rng = np.random.default_rng(1)
    out = {}
    for run, mixup in (("NTP", False), ("SFTMix", True)):
        log = []
        for s in range(1, steps + 1):
            ntp = 2.5 * np.exp(-s / 25) + 0.6 + rng.normal(0, 0.05)
            entry = {"step": s, "epoch": s / 20, "learning_rate": 2e-6, "loss": ntp}
            if mixup:
                mix = 3.0 * np.exp(-s / 30) + 1.0 + rng.normal(0, 0.05)
                entry.update(ntp_loss=ntp, mixup_loss=mix, loss=ntp + 0.2 * mix)
            log.append(entry)
            if s % 20 == 0:
                log.append({"step": s, "epoch": s / 20, "eval_loss": ntp + 0.1})
        log.append({"step": steps, "train_loss": 1.0, "train_runtime": 3.0})
        out[run] = log
    return out


def make_ablation() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for seed in range(3):
        for alpha in (0.1, 0.2, 0.5, 1.0, 2.0):
            rows.append({"param": "mixup_alpha", "value": alpha, "seed": seed,
                         "accuracy": 0.6 + 0.05 * np.exp(-(np.log(alpha / 0.5)) ** 2)
                         + rng.normal(0, 0.01), "nll": 1.0 + rng.normal(0, 0.02)})
        for strategy in ("random", "nearest", "same_task"):
            rows.append({"param": "pairing", "value": strategy, "seed": seed,
                         "accuracy": 0.62 + rng.normal(0, 0.01), "nll": 1.0})
    return pd.DataFrame(rows)


def make_per_task() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame([{"method": m, "seed": s, "task": t,
                          "accuracy": 0.5 + 0.1 * i + 0.04 * (m == "SFTMix") + rng.normal(0, 0.02)}
                         for m in ("NTP", "SFTMix") for s in range(3)
                         for i, t in enumerate(TASKS)])


def make_projection(table: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    centres = {t: rng.normal(0, 5, 2) for t in TASKS}
    xy = np.array([centres[t] for t in table["task"]]) + rng.normal(0, 1, (len(table), 2))
    xy[:, 0] += 2 * table["confidence_prob"].to_numpy()
    proj = pd.DataFrame({"example_id": table["example_id"], "x": xy[:, 0], "y": xy[:, 1]})
    return proj.merge(table[["example_id", "task", "noisy", "confidence", "correctness"]],
                      on="example_id")


@pytest.fixture(scope="module")
def table():
    return make_table()


@pytest.fixture(autouse=True)
def _no_global_changes():
    before = matplotlib.rcParams.copy()
    n_open = len(plt.get_fignums())
    yield
    after = matplotlib.rcParams.copy()
    # "backend" may be resolved lazily from its placeholder; that is not a style change.
    changed = [k for k in before if k != "backend" and before[k] != after[k]
               and not (isinstance(before[k], float) and np.isnan(before[k]))]
    assert not changed, f"rcParams changed: {changed}"
    assert len(plt.get_fignums()) == n_open, "a pyplot figure was left open"


def overlay(ax):
    """The corrupted-answer crosses drawn over a scatter (None if absent)."""
    found = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label().startswith("corrupted")]
    return found[0] if found else None


def scatter_groups(ax) -> list:
    """The scatters of the examples themselves (not the corrupted-answer overlay)."""
    return [c for c in ax.collections if isinstance(c, PathCollection) and c is not overlay(ax)]


def points(ax) -> int:
    return sum(len(c.get_offsets()) for c in scatter_groups(ax))


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


# ------------------------------------------------------------------ dynamics map
def test_dynamics_map_prob_scale(table):
    fig = plots.plot_dynamics_map(table)
    assert isinstance(fig, Figure)
    main = next(a for a in fig.axes if "variability" in a.get_xlabel())
    assert "token prob" in main.get_xlabel() and "confidence" in main.get_ylabel()
    assert points(main) == len(table)
    offsets = scatter_groups(main)[0].get_offsets()
    assert np.isclose(np.sort(offsets[:, 0]), np.sort(table["variability_prob"])).all()
    # colour bar for correctness, two marginal histograms
    assert any("correctness" in a.get_ylabel() for a in fig.axes)
    assert sum(len(a.patches) > 0 for a in fig.axes) == 2


def test_dynamics_map_region_labels_inside_axes(table):
    fig = plots.plot_dynamics_map(table, scale="perplexity")
    main = next(a for a in fig.axes if "variability" in a.get_xlabel())
    assert "perplexity" in main.get_xlabel()
    labels = {t.get_text(): t for t in main.texts}
    assert {"easy-to-learn", "hard-to-learn", "ambiguous"} <= set(labels)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = main.get_window_extent(renderer)
    for text in labels.values():
        assert text.get_transform() == main.transAxes
        ext = text.get_window_extent(renderer)
        assert box.x0 <= ext.x0 and ext.x1 <= box.x1 and box.y0 <= ext.y0 and ext.y1 <= box.y1


def test_dynamics_map_split_colours_every_point_by_its_half_in_random_order(table):
    split = make_split(table)
    fig = plots.plot_dynamics_map(table, split=split, color="split")
    main = next(a for a in fig.axes if "variability" in a.get_xlabel())
    (dots,) = scatter_groups(main)  # both halves in one collection: neither is painted over the other
    xy, colours = dots.get_offsets(), dots.get_facecolors()
    confident = table["example_id"].isin(split["confident"]).to_numpy()
    by_x = dict(zip(np.round(table["variability_prob"], 12), confident))
    drawn_confident = np.array([by_x[round(x, 12)] for x in xy[:, 0]])
    blue = matplotlib.colors.to_rgb(plots.SPLIT_COLORS["confident"])
    assert np.allclose(colours[drawn_confident, :3], blue) and not np.allclose(colours[~drawn_confident, :3], blue)
    # the last fifth drawn holds both halves (a group drawn last would cover the other)
    assert 0.2 < drawn_confident[-60:].mean() < 0.8
    legend = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert legend[:2] == ["confident (n=150)", "unconfident (n=150)"]


def test_dynamics_map_overlays_the_corrupted_answers(table):
    fig = plots.plot_dynamics_map(table)
    main = next(a for a in fig.axes if "variability" in a.get_xlabel())
    crosses = overlay(main)
    noisy = table[table["noisy"]]
    assert crosses is not None and len(crosses.get_offsets()) == len(noisy)
    assert np.allclose(np.sort(crosses.get_offsets()[:, 0]), np.sort(noisy["variability_prob"]))
    assert crosses.get_label() == f"corrupted answer (n={len(noisy)})"
    assert points(main) == len(table)  # every example is drawn once beneath the crosses
    assert overlay(next(a for a in plots.plot_dynamics_map(table, noisy=False).axes
                        if "variability" in a.get_xlabel())) is None


def test_dynamics_map_categorical_and_errors(table):
    fig = plots.plot_dynamics_map(table, color="task")
    main = next(a for a in fig.axes if "variability" in a.get_xlabel())
    legend = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert [t.split(" (")[0] for t in legend[: len(TASKS)]] == TASKS
    assert points(main) == len(table)
    fig = plots.plot_dynamics_map(table, color="noisy")
    main = next(a for a in fig.axes if "variability" in a.get_xlabel())
    assert overlay(main) is None  # colouring by the flag already shows it
    with pytest.raises(ValueError, match="split"):
        plots.plot_dynamics_map(table, color="split")
    with pytest.raises(ValueError, match="scale"):
        plots.plot_dynamics_map(table, scale="logit")


def test_dynamics_map_subsamples_and_says_so(table):
    fig = plots.plot_dynamics_map(table, max_points=100, seed=3)
    main = next(a for a in fig.axes if "variability" in a.get_xlabel())
    assert points(main) == 100
    assert "100 of 300" in fig.get_suptitle()
    again = plots.plot_dynamics_map(table, max_points=100, seed=3)
    main2 = next(a for a in again.axes if "variability" in a.get_xlabel())
    assert np.array_equal(np.sort(scatter_groups(main)[0].get_offsets()[:, 0]),
                          np.sort(scatter_groups(main2)[0].get_offsets()[:, 0]))


def test_dynamics_map_into_given_axes(table):
    fig = Figure()
    ax = fig.add_subplot()
    out = plots.plot_dynamics_map(table, ax=ax, color="task")
    assert out is fig
    assert points(ax) == len(table)
    assert len(fig.axes) == 1  # no marginals, legend beside the axes


# --------------------------------------------------------------------- histograms
def test_confidence_hist_threshold(table):
    split = make_split(table)
    fig = plots.plot_confidence_hist(table, split=split)
    ax = fig.axes[0]
    assert "confidence" in ax.get_xlabel() and ax.get_ylabel() == "examples"
    line = next(l for l in ax.lines if l.get_linestyle() == "--")
    assert np.allclose(line.get_xdata(), split["threshold"])
    label = f"{split['threshold']:.3g}".replace("-", "\u2212")
    assert any(label in t.get_text() for t in ax.texts)
    assert sum(p.get_height() for p in ax.patches) == len(table)


def test_confidence_hist_by_group(table):
    split = make_split(table)
    fig = plots.plot_confidence_hist(table, split=split, by="noisy")
    ax = fig.axes[0]
    assert len(ax.patches) == 2  # one step outline per group
    assert len(ax.get_legend().get_texts()) == 2
    fig = plots.plot_confidence_hist(table, split=split, by="task")
    panels = [a for a in fig.axes if a.patches]
    assert len(panels) == len(TASKS)
    assert all(any(l.get_linestyle() == "--" for l in a.lines) for a in panels)
    # a threshold made on another metric is not drawn on this axis
    fig = plots.plot_confidence_hist(table, split=split, metric="correctness")
    assert not fig.axes[0].lines


def test_confidence_by_task_sorted_by_median(table):
    fig = plots.plot_confidence_by_task(table)
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    medians = table.groupby("task")["confidence"].median()
    assert names == list(medians.sort_values(ascending=False).index)  # most confident on top
    assert points(ax) == (~table["noisy"]).sum() and len(overlay(ax).get_offsets()) == table["noisy"].sum()


def test_confidence_by_task_draws_the_threshold_and_each_tasks_share_of_the_confident_half(table):
    split = make_split(table)
    fig = plots.plot_confidence_by_task(table, split=split, log=True)
    ax = fig.axes[0]
    line = next(l for l in ax.lines if l.get_linestyle() == "--")
    assert np.allclose(line.get_xdata(), np.log10(-split["threshold"]))
    names = [t.get_text() for t in ax.get_yticklabels()]
    shares = table.assign(c=table.example_id.isin(split["confident"])).groupby("task")["c"].mean()
    printed = {t.get_text() for t in ax.texts}
    assert {f"{shares[n]:.0%}" for n in names} <= printed
    assert "perplexity" in ax.get_xlabel()


def test_hist_by_noise_as_shares_with_the_unconfident_count_per_group(table):
    split = make_split(table)
    fig = plots.plot_confidence_hist(table, by="noisy", split=split, log=True, stat="share",
                                     labels={False: "clean", True: "corrupted"})
    ax = fig.axes[0]
    for patch in ax.patches:  # each group's outline sums to 1: groups of different sizes compare
        heights = patch.get_path().vertices[:, 1]
        assert heights.max() <= 1.0
    noisy = table[table.noisy]
    k = noisy.example_id.isin(split["unconfident"]).sum()
    texts = legend_texts(ax)
    assert any(t.startswith(f"corrupted (n={len(noisy)}): {k} of {len(noisy)}") for t in texts)
    line = next(l for l in ax.lines if l.get_linestyle() == "--")
    assert np.allclose(line.get_xdata(), np.log10(-split["threshold"]))
    assert ax.get_ylabel() == "share of the group's examples"
    assert ax.get_title().endswith(": clean vs corrupted")   # the groups' words, as in the legend
    with pytest.raises(ValueError, match="stat"):
        plots.plot_confidence_hist(table, stat="density")


def test_hist_draws_a_long_tail_in_its_last_bar_and_says_so():
    values = np.r_[np.linspace(1.0, 2.0, 997), [50.0, 90.0, 150.0]]
    table = pd.DataFrame({"confidence": -values})
    ax = plots.plot_confidence_hist(table, log=False).axes[0]
    assert sum(p.get_height() for p in ax.patches) == len(table)  # nobody dropped
    assert ax.get_xlim()[1] < 40  # the tail does not stretch the axis
    assert "beyond it" in ax.get_xlabel()


# --------------------------------------------------------------------- projection
def test_umap_plot_continuous_split_task(table):
    proj = make_projection(table)
    fig = plots.plot_umap_confidence(proj)
    ax = fig.axes[0]
    assert points(ax) == len(table) and ax.get_xlabel() == "UMAP 1"
    assert any("confidence" in a.get_ylabel() for a in fig.axes[1:])  # colour bar
    fig = plots.plot_umap_confidence(proj, color="split", split=make_split(table))
    assert points(fig.axes[0]) == len(table)
    assert [t.split(" (")[0] for t in legend_texts(fig.axes[0])][:2] == ["confident", "unconfident"]
    fig = plots.plot_umap_confidence(proj, color="task")
    assert [t.split(" (")[0] for t in legend_texts(fig.axes[0])][: len(TASKS)] == TASKS
    proj.attrs["method"] = "PCA"
    assert plots.plot_umap_confidence(proj).axes[0].get_xlabel() == "PCA 1"
    assert plots.plot_umap_confidence(proj, method="t-SNE").axes[0].get_ylabel() == "t-SNE 2"
    with pytest.raises(KeyError, match="variability"):
        plots.plot_umap_confidence(proj, color="variability")


def test_umap_confidence_deciles_with_the_threshold_as_a_colour_bar_tick(table):
    proj = make_projection(table)
    split = make_split(table)
    fig = plots.plot_umap_confidence(proj, color="confidence", split=split)
    ax, cbar_ax = fig.axes
    ticks = [float(t.get_text().replace("\u2212", "-")) for t in cbar_ax.get_yticklabels()]
    assert any(np.isclose(t, split["threshold"], rtol=1e-2) for t in ticks)  # the bar is labelled in printed values
    edges = np.quantile(proj["confidence"], np.linspace(0, 1, 11))
    assert np.isclose(ticks[0], edges[0], rtol=1e-2) and np.isclose(ticks[-1], edges[-1], rtol=1e-2)
    (dots,) = scatter_groups(ax)
    values = np.asarray(dots.get_array())
    colours = dots.to_rgba(values)
    blue_side = colours[:, 2] > colours[:, 0]  # blue above the threshold, red below
    assert (blue_side == (values >= split["threshold"])).all()
    assert any(np.allclose(l.get_ydata(), split["threshold"]) for l in cbar_ax.lines)  # marked on the bar
    assert len(overlay(ax).get_offsets()) == table["noisy"].sum()


def test_umap_names_each_task_on_one_of_its_points(table):
    proj = make_projection(table)
    fig = plots.plot_umap_confidence(proj, color="task", label_groups="task")
    ax = fig.axes[0]
    named = {}
    for text in ax.texts:
        named.setdefault(text.get_text(), []).append(text.get_position())
    assert set(named) == set(TASKS)
    for task, positions in named.items():
        pts = proj.loc[proj.task == task, ["x", "y"]].to_numpy()
        for pos in positions:
            assert np.isclose(pts, pos).all(axis=1).any()
    with pytest.raises(KeyError, match="cluster"):
        plots.plot_umap_confidence(proj, label_groups="cluster")


# ----------------------------------------------------------------- training curves
def test_training_curves_parts_and_eval():
    fig = plots.plot_training_curves(make_histories())
    total, parts = fig.axes
    assert total.get_xlabel() == "training step" and total.get_ylabel() == "loss"
    labels = [l.get_label() for l in total.lines]
    assert labels == ["NTP train", "NTP eval", "SFTMix train", "SFTMix eval"]
    assert len(total.lines[1].get_xdata()) == 3  # eval markers
    assert [l.get_label() for l in parts.lines] == ["SFTMix \u00b7 NTP", "SFTMix \u00b7 Mixup"]
    smoothed = plots.plot_training_curves(make_histories(), smooth=0.8, parts=False)
    assert len(smoothed.axes) == 1
    assert len(smoothed.axes[0].lines) == 2 * 2 + 2  # raw + smoothed per run, eval per run


# ------------------------------------------------------------------------ ablation
def test_ablation_numeric_and_categorical():
    results = make_ablation()
    fig = plots.plot_ablation(results, param="mixup_alpha", metric="accuracy",
                              baseline={"mean": 0.6, "std": 0.01, "label": "NTP"})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "mixup_alpha" and ax.get_ylabel() == "accuracy"
    assert ax.get_xscale() == "log"
    assert points(ax) == 15  # every seed shown
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("std" in t and "n=3" in t for t in legend)
    assert any(t.startswith("NTP") for t in legend)
    means = results[results.param == "mixup_alpha"].groupby("value")["accuracy"].mean()
    line = next(l for l in ax.lines if len(l.get_xdata()) == 5)
    assert np.allclose(line.get_ydata(), means.to_numpy())
    assert line.get_linestyle() == "-"                          # numbers: the means are joined

    fig = plots.plot_ablation(results, param="pairing", metric="accuracy", error="ci95")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["random", "nearest", "same_task"]
    line = next(l for l in ax.lines if len(l.get_xdata()) == 3)
    assert line.get_linestyle() == "None"                       # choices: no trend line between them
    assert any("95% CI" in t.get_text() for t in ax.get_legend().get_texts())
    with pytest.raises(ValueError, match="mu"):
        plots.plot_ablation(results, param="mu", metric="accuracy")


# ------------------------------------------------------------------------- results
def test_results_bars():
    per_task = make_per_task()
    fig = plots.plot_results(per_task)
    ax = fig.axes[0]
    assert len(ax.patches) == (len(TASKS) + 1) * 2
    assert [t.get_text() for t in ax.get_xticklabels()] == TASKS + ["overall"]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_label() for b in bars] == ["NTP", "SFTMix"]
    heights = [p.get_height() for p in bars[1].patches]
    overall = per_task[per_task.method == "SFTMix"].groupby("seed")["accuracy"].mean().mean()
    assert np.isclose(heights[-1], overall)
    assert ax.get_ylabel() == "accuracy"


def test_lambda_distribution():
    fig = plots.plot_lambda_distribution(0.5)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_width() < 0.05]
    assert len(bars) == 50
    assert ax.get_ylim()[1] < 10  # the diverging density does not squash the histogram
    assert "Beta(0.5, 0.5)" in ax.get_title()
    draws = np.random.default_rng(0).beta(0.5, 0.5, size=20000)
    mid = ((draws > 0.1) & (draws < 0.9)).mean()
    assert 0.55 < mid < 0.65  # most draws are NOT near 0 or 1 at alpha = 0.5
    assert any(t == f"0.1 < \u03bb < 0.9: {mid:.0%} of draws" for t in legend_texts(ax))
    with pytest.raises(ValueError):
        plots.plot_lambda_distribution(0.0)


# ----------------------------------------------------------------- ax= and saving
def test_every_function_draws_into_given_axes(table):
    split = make_split(table)
    calls = [
        lambda ax: plots.plot_dynamics_map(table, ax=ax),
        lambda ax: plots.plot_confidence_hist(table, split=split, by="task", ax=ax),
        lambda ax: plots.plot_confidence_by_task(table, ax=ax),
        lambda ax: plots.plot_umap_confidence(make_projection(table), ax=ax),
        lambda ax: plots.plot_training_curves(make_histories(), ax=ax),
        lambda ax: plots.plot_ablation(make_ablation(), param="pairing", metric="nll", ax=ax),
        lambda ax: plots.plot_results(make_per_task(), ax=ax),
        lambda ax: plots.plot_lambda_distribution(1.0, ax=ax),
    ]
    for call in calls:
        fig = Figure()
        ax = fig.add_subplot()
        assert call(ax) is fig
        assert ax.has_data()


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig = plots.plot_lambda_distribution(0.5)
    written = plots.save_figure(fig, tmp_path / "sub" / "lambda.png")
    assert [p.name for p in written] == ["lambda.png", "lambda.pdf"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written[1].read_bytes()[:5] == b"%PDF-"
    assert plots.save_figure(fig, tmp_path / "lambda2")[1].name == "lambda2.pdf"


def all_figures(table) -> dict:
    split = make_split(table)
    split_prob = make_split(table, "confidence_prob")
    proj = make_projection(table)
    return {
        "dynamics_map_correctness": plots.plot_dynamics_map(table),
        "dynamics_map_split": plots.plot_dynamics_map(table, split=split_prob, color="split"),
        "dynamics_map_task_perplexity": plots.plot_dynamics_map(table, color="task",
                                                                scale="perplexity"),
        "dynamics_map_noisy_subsampled": plots.plot_dynamics_map(table, color="noisy",
                                                                 max_points=200),
        "confidence_hist": plots.plot_confidence_hist(table, split=split),
        "confidence_hist_by_noisy": plots.plot_confidence_hist(table, split=split, by="noisy"),
        "confidence_hist_by_task": plots.plot_confidence_hist(table, split=split, by="task"),
        "confidence_by_task": plots.plot_confidence_by_task(table),
        "umap_confidence": plots.plot_umap_confidence(proj),
        "umap_split": plots.plot_umap_confidence(proj, color="split", split=split),
        "umap_task": plots.plot_umap_confidence(proj, color="task"),
        "training_curves": plots.plot_training_curves(make_histories(), smooth=0.6),
        "ablation_alpha": plots.plot_ablation(make_ablation(), param="mixup_alpha",
                                              metric="accuracy",
                                              baseline=[0.6, 0.61, 0.59]),
        "ablation_pairing": plots.plot_ablation(make_ablation(), param="pairing",
                                                metric="accuracy", error="ci95"),
        "results": plots.plot_results(make_per_task()),
        "lambda_0.5": plots.plot_lambda_distribution(0.5),
    }


def test_every_figure_renders(table, tmp_path):
    for name, fig in all_figures(table).items():
        png, pdf = plots.save_figure(fig, tmp_path / name)
        assert png.stat().st_size > 5000 and pdf.exists(), name


def test_make_figures_draws_every_lesson_figure_from_a_run_directory(table, tmp_path):
    import json

    from sftmix.dynamics import save_dynamics, save_split
    from sftmix.viz.figures import make_figures, per_task_frame

    run = tmp_path / "run"
    suite = table.assign(example_id=[f"{t}-1-{i:08x}" for i, t in enumerate(table["task"])],
                         n_tokens=np.arange(len(table)) % 7 + 1)
    save_dynamics(suite, run / "dynamics.parquet", fingerprint="f", model_name="m",
                  checkpoints=[f"{run}/reference/checkpoint-{s}" for s in (10, 20, 30)])
    save_split(make_split(suite), run / "split.json")
    make_projection(suite).to_parquet(run / "projection.parquet")
    for method in ("ntp", "sftmix"):
        folder = run / method / "seed0"
        folder.mkdir(parents=True)
        (folder / "eval.json").write_text(json.dumps({"exact_match_by_task": {t: 0.5 for t in TASKS}}))
        (folder / "generations.json").write_text(json.dumps(
            [{"example_id": f"{t}-2-{i:04x}", "output": ""} for i, t in enumerate(TASKS * 20)]))
    names = {p.stem for p in make_figures(run, tmp_path / "figs") if p.suffix == ".png"}
    assert {"dynamics_map", "confidence_hist", "confidence_by_task", "confidence_by_noise", "trajectories",
            "mean_vs_last", "split_composition", "umap_confidence", "umap_split", "umap_task",
            "per_task_accuracy"} <= names
    assert per_task_frame(run).attrs["n_examples"] == {t: 20 for t in TASKS}
