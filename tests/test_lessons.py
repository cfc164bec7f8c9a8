"""The analysis behind the notebooks' lessons, on literal tables: trajectories, mean vs last,
checkpoint shares, the split's confounds, per-task noise AUROC, the per-half fit, Wilson
intervals, and the figures drawn from them (data-level checks)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from sftmix.analysis import confounds, halves, trajectories
from sftmix.analysis.noise import noise_auroc_by_task
from sftmix.analysis.stats import wilson_interval
from sftmix.dynamics import split_by_confidence
from sftmix.viz import plots


def literal_table() -> pd.DataFrame:
    """Six examples at three checkpoints (steps 10, 20, 30), perplexities chosen by hand.

    a: confident throughout; b: learnt late (10 -> 1); c: never learnt; d: corrupted;
    e, f: near the middle. Mean perplexities: a 1.0, b 4.0, c 8.0, d 5.0, e 1.5, f 2.0.
    """
    ppl = {"a": [1.0, 1.0, 1.0], "b": [10.0, 1.0, 1.0], "c": [8.0, 8.0, 8.0], "d": [6.0, 5.0, 4.0],
           "e": [2.0, 1.5, 1.0], "f": [3.0, 2.0, 1.0]}
    rows = []
    for eid, values in ppl.items():
        row = {"example_id": eid, "task": "x" if eid in "abc" else "y", "noisy": eid == "d",
               "n_tokens": {"a": 10, "b": 8, "c": 2, "d": 3, "e": 4, "f": 9}[eid]}
        for c, v in enumerate(values):
            row.update({f"ppl_{c}": v, f"gprob_{c}": 1 / v, f"prob_{c}": 1 / v, f"acc_{c}": 1 / v})
        row.update(confidence=-np.mean(values), confidence_prob=np.mean([1 / v for v in values]),
                   correctness=np.mean([1 / v for v in values]), variability_prob=np.std([1 / v for v in values]))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["checkpoints"] = [f"runs/r/reference/checkpoint-{s}" for s in (10, 20, 30)]
    return table


# ------------------------------------------------------------------ trajectories
def test_trajectories_long_format_in_checkpoint_order():
    table = literal_table()
    assert trajectories.checkpoint_steps(table) == [10, 20, 30]
    long = trajectories.trajectories(table, ["b", "a"])
    assert list(long["example_id"]) == ["b"] * 3 + ["a"] * 3  # the order asked for
    assert list(long["value"][:3]) == [10.0, 1.0, 1.0] and list(long["step"][:3]) == [10, 20, 30]
    with pytest.raises(KeyError, match="zz"):
        trajectories.trajectories(table, ["zz"])
    with pytest.raises(ValueError, match="unknown per-checkpoint metric"):
        trajectories.checkpoint_columns(table, "nll")


def test_mean_vs_last_finds_who_changes_side():
    table = literal_table()
    sides = trajectories.mean_vs_last(table, ratio=0.5).set_index("example_id")
    # by the mean: a, e, f confident (1.0, 1.5, 2.0); by the last checkpoint: a, b, e, f tie at 1.0,
    # ties broken by id -> a, b, e confident
    assert set(sides.index[sides.side_mean == "confident"]) == {"a", "e", "f"}
    assert set(sides.index[sides.side_last == "confident"]) == {"a", "b", "e"}
    assert set(sides.index[sides.changed]) == {"b", "f"}
    counts = trajectories.side_counts(sides.reset_index())
    assert counts["examples"].sum() == 6


def test_checkpoint_shares_weigh_early_checkpoints_more():
    shares = trajectories.checkpoint_shares(literal_table())
    assert shares["share"].sum() == pytest.approx(1.0)
    # example b: 10 of its 12 summed perplexity come from the first checkpoint
    expected_first = np.mean([1 / 3, 10 / 12, 1 / 3, 6 / 15, 2 / 4.5, 3 / 6])
    assert shares.loc[0, "share"] == pytest.approx(expected_first)
    assert shares["share"].is_monotonic_decreasing and list(shares["step"]) == [10, 20, 30]


def test_pick_examples_names_the_characteristic_ones():
    picked = trajectories.pick_examples(literal_table())
    assert picked["confident throughout"] == "a" and picked["never learnt"] == "c"
    assert picked["learnt late"] == "b" and picked["corrupted answer"] == "d"
    assert picked["changes side"] in {"b", "f"}


# ------------------------------------------------------------------- confounds
def test_split_composition_per_task_and_per_half():
    table = literal_table()
    split = split_by_confidence(table, ratio=0.5)  # a, e, f confident
    by_task = confounds.split_by_task(table, split)
    assert by_task.loc["x", "share_confident"] == pytest.approx(1 / 3)
    assert by_task.loc["y", "share_confident"] == pytest.approx(2 / 3)
    assert by_task.loc["y", "corrupted_unconfident"] == 1
    profile = confounds.half_profile(table, split)
    assert profile.loc["confident", "mean_tokens"] == pytest.approx((10 + 4 + 9) / 3)
    assert profile.loc["unconfident", "share_of_all_corrupted"] == 1.0
    pr = confounds.noise_precision_recall(table, split)
    assert pr == {"precision": pytest.approx(1 / 3), "recall": 1.0, "n_unconfident": 3, "n_corrupted": 1,
                  "n_caught": 1}


def test_side_changes_between_two_splits():
    table = literal_table()
    half, third = split_by_confidence(table, ratio=0.5), split_by_confidence(table, ratio=1 / 3)
    moved = confounds.side_changes(table, half, third)
    assert list(moved["example_id"]) == ["f"] and moved.loc[0, "from"] == "confident"
    assert confounds.side_changes(table, half, half).empty


def test_noise_auroc_by_task():
    table = pd.DataFrame({"task": ["p"] * 4 + ["q"] * 4, "confidence": [-1, -2, -3, -9, -1, -9, -2, -3],
                          "noisy": [False, False, False, True, True, False, False, False]})
    out = noise_auroc_by_task(table)
    assert out.loc["p", "auroc"] == 1.0 and out.loc["q", "auroc"] == 0.0  # q's corrupted answer is the most confident
    assert list(out.index) == ["p", "q"] and out.loc["p", "noisy"] == 1


# ------------------------------------------------------------------- per half
def _frame(ids, nll, n_tokens):
    return pd.DataFrame({"example_id": ids, "nll": nll, "n_tokens": n_tokens})


def test_half_fit_token_weighted_and_the_gap():
    table = literal_table()
    split = split_by_confidence(table, ratio=0.5)  # a, e, f confident
    ids = list(table.example_id)
    train = {"M": _frame(ids, [0.1, 1.0, 2.0, 3.0, 0.3, 0.2], [1, 1, 1, 1, 1, 3])}
    held_frames = [_frame(["h1", "h2"], [0, 0], [1, 1]).assign(ppl=[1.1, 9.0])]  # h1 confident, h2 not
    held_half = halves.held_out_halves(held_frames, split)
    assert dict(held_half) == {"h1": "confident", "h2": "unconfident"}
    held = {"M": _frame(["h1", "h2"], [0.5, 2.5], [2, 2])}
    fit = halves.half_fit(train, held, split=split, held_halves=held_half, table=table).set_index(["data", "half"])
    assert fit.loc[("training", "confident"), "nll"] == pytest.approx((0.1 + 0.3 + 3 * 0.2) / 5)
    assert fit.loc[("training", "unconfident"), "nll"] == pytest.approx((1.0 + 2.0) / 2)  # d (corrupted) left out
    assert fit.loc[("held-out", "confident"), "nll"] == 0.5
    gap = fit.attrs["gap"].set_index("half")["gap"]
    assert gap["confident"] == pytest.approx(0.5 - 0.2)
    with pytest.raises(ValueError, match="confidence"):
        halves.held_out_halves(held_frames, {**split, "metric": "correctness"})


def test_plot_half_fit_draws_each_gap():
    fit = pd.DataFrame([{"model": m, "data": d, "half": h, "nll": v, "examples": 1}
                        for m, off in (("NTP", 0.0), ("SFTMix", 0.05)) for h, base in (("confident", 0.1),
                                                                                  ("unconfident", 0.6))
                        for d, v in (("training", base + off), ("held-out", base + 0.2 + off))])
    ax = plots.plot_half_fit(fit).axes[0]
    gaps = sorted(t.get_text() for t in ax.texts if t.get_text().startswith("gap"))
    assert gaps == ["gap +0.200"] * 4
    segments = [l for l in ax.lines if len(l.get_ydata()) == 2]
    assert sorted(round(float(np.ptp(l.get_ydata())), 6) for l in segments) == [0.2] * 4


# ------------------------------------------------------------------- figures
def test_trajectory_and_mean_vs_last_figures_draw_the_data():
    table = literal_table()
    split = split_by_confidence(table, ratio=0.5)
    fig = plots.plot_trajectories(table, {"late": "b"}, split=split)
    ax, share_ax = fig.axes
    line = next(l for l in ax.lines if l.get_label().startswith("late"))
    assert list(line.get_ydata()) == [10.0, 1.0, 1.0] and list(line.get_xdata()) == [10, 20, 30]
    threshold = next(l for l in ax.lines if l.get_linestyle() == "--")
    assert np.allclose(threshold.get_ydata(), -split["threshold"])
    assert [round(p.get_height(), 6) for p in share_ax.patches] == \
        [round(v, 6) for v in trajectories.checkpoint_shares(table)["share"]]
    sides = trajectories.mean_vs_last(table)
    ax = plots.plot_mean_vs_last(sides).axes[0]
    changed = next(c for c in ax.collections if isinstance(c, PathCollection) and
                   c.get_label().startswith("changes side"))
    assert len(changed.get_offsets()) == 2 and "2 of 6" in ax.get_title()


def test_split_composition_figure():
    table = literal_table()
    split = split_by_confidence(table, ratio=0.5)
    tasks, lengths, noise = plots.plot_split_composition(table, split).axes
    widths = {t.get_text(): p.get_width() for t, p in zip(tasks.get_yticklabels(), tasks.patches)}
    assert widths == {"y": pytest.approx(2 / 3), "x": pytest.approx(1 / 3)}
    assert any(np.allclose(l.get_xdata(), 0.5) for l in tasks.lines)  # the split ratio
    assert "1 of 1 (100%)" in noise.get_title()
    assert any("mean 7.7 tokens" in t.get_text() for t in lengths.get_legend().get_texts())


def test_wilson_interval():
    lo, hi = wilson_interval(0.5, 20)
    assert lo == pytest.approx(0.2993, abs=1e-3) and hi == pytest.approx(0.7007, abs=1e-3)
    assert wilson_interval(1.0, 20)[1] == pytest.approx(1.0) and wilson_interval(1.0, 20)[0] < 1.0
    assert np.isnan(wilson_interval(0.5, 0)[0])


def test_per_task_results_one_seed_draws_wilson_intervals_and_says_so():
    per_task = pd.DataFrame([{"method": "NTP", "seed": 0, "task": t, "accuracy": a}
                             for t, a in (("p", 1.0), ("q", 0.5))])
    fig = plots.plot_results(per_task, n_examples={"p": 20, "q": 20})
    ax = fig.axes[0]
    assert "n = 20 held-out examples per task" in ax.get_title() and "one seed" in ax.get_title()
    caps = [c for c in ax.collections if "LineCollection" in type(c).__name__]
    assert caps, "intervals are drawn"
    segments = np.concatenate([c.get_segments() for c in caps])
    spans = sorted({round(float(np.abs(s[1] - s[0]).max()), 3) for s in segments})
    lo, hi = wilson_interval(0.5, 20)
    assert round(hi - lo, 3) in spans  # q's interval, drawn at its width
    assert "no interval" in plots.plot_results(per_task).axes[0].get_title()
