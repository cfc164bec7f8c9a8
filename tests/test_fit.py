"""The reference run's fit per checkpoint: token-weighted NLL on clean, corrupted and held-out answers."""

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from sftmix.analysis.fit import FIT_COLUMNS, fit_table, token_nll
from sftmix.viz.plots import plot_fit


def frame(ids, nll, n_tokens, step):
    f = pd.DataFrame({"example_id": ids, "nll": nll, "n_tokens": n_tokens})
    f.attrs.update(name=f"checkpoint-{step}", step=step)
    return f


def test_token_nll_weights_by_tokens_and_skips_empty_rows():
    f = frame(["a", "b", "c"], [1.0, 4.0, float("nan")], [3, 1, 0], 1)
    assert token_nll(f) == pytest.approx((1.0 * 3 + 4.0 * 1) / 4)
    assert token_nll(f, [False, True, True]) == pytest.approx(4.0)
    assert math.isnan(token_nll(f, [False, False, True]))


def test_fit_table_literal():
    train = [frame(["a", "b", "n"], [1.0, 2.0, 3.0], [1, 1, 2], 10),
             frame(["a", "b", "n"], [0.5, 0.5, 1.0], [1, 1, 2], 20)]
    held = [frame(["h1", "h2"], [2.0, 1.0], [1, 3], 10), frame(["h1", "h2"], [1.0, 1.0], [2, 2], 20)]
    fit = fit_table(train, held, noisy_ids=["n"])
    assert list(fit.columns) == FIT_COLUMNS
    assert fit["step"].tolist() == [10, 20]
    assert fit["train_clean"].tolist() == pytest.approx([1.5, 0.5])
    assert fit["train_noisy"].tolist() == pytest.approx([3.0, 1.0])
    assert fit["held_out"].tolist() == pytest.approx([1.25, 1.0])
    assert fit["gap"].tolist() == pytest.approx([-0.25, 0.5])
    assert fit["ratio"].tolist() == pytest.approx([1.25 / 1.5, 2.0])
    clean_only = fit_table(train, held)                      # no noise flag: every training row is clean
    assert clean_only["train_clean"].tolist() == pytest.approx([2.25, 0.75])
    assert clean_only["train_noisy"].isna().all()


def test_fit_table_rejects_mismatched_checkpoints():
    train = [frame(["a"], [1.0], [1], 10)]
    with pytest.raises(ValueError, match="score the same checkpoints"):
        fit_table(train, [])
    with pytest.raises(ValueError, match="step 10.*step 11"):
        fit_table(train, [frame(["h"], [1.0], [1], 11)])


def test_plot_fit_draws_each_curve_and_the_gap():
    fit = pd.DataFrame({"checkpoint": ["c1", "c2"], "step": [10, 20], "train_clean": [0.4, 0.1],
                        "train_noisy": [0.9, 0.5], "held_out": [0.5, 0.3], "gap": [0.1, 0.2], "ratio": [1.25, 3.0]})
    fig = plot_fit(fit)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["training, clean answers", "training, corrupted answers", "held-out"]
    assert "1.2× at step 10, 3.0× at step 20" in ax.get_title()
    assert len(ax.collections) == 1                           # the shaded gap
    no_noise = plot_fit(fit.assign(train_noisy=float("nan")))
    assert "training, corrupted answers" not in [line.get_label() for line in no_noise.axes[0].get_lines()]
    with pytest.raises(KeyError, match="held_out"):
        plot_fit(fit.drop(columns="held_out"))
    plt.close("all")
