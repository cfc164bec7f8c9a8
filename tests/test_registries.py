"""What used to be string switches, now registries: per-token statistics (sftmix.dynamics.sums), the
summaries' plot metadata and the projections (sftmix.recipe). Adding an entry is all it takes."""

import numpy as np
import pandas as pd
import pytest
import torch

from sftmix.analysis.projection import PROJECTORS, project, project_pca
from sftmix.analysis.trajectories import checkpoint_columns
from sftmix.dynamics import (
    CHECKPOINT_METRICS,
    STATISTICS,
    CheckpointMetric,
    Statistic,
    TokenSums,
    compute_dynamics,
    dataset_fingerprint,
    response_sums,
)
from sftmix.dynamics.table import checkpoint_frame
from sftmix.errors import ConfigError
from sftmix.recipe import PROJECTIONS, SUMMARIES
from sftmix.viz.plots import plot_confidence_hist, plot_umap_confidence


@pytest.fixture
def squared_nll(monkeypatch):
    """A new per-token statistic (the squared NLL) and its per-checkpoint metric, registered for one test."""
    monkeypatch.setitem(STATISTICS._entries, "sq_nll_sum",
                        Statistic("sq_nll_sum", "squared gold-token NLL", lambda nll, correct: nll ** 2))
    monkeypatch.setitem(CHECKPOINT_METRICS._entries, "nll_sq",
                        CheckpointMetric("nll_sq", "mean squared token NLL", lambda m: m["sq_nll_sum"]))


def test_a_new_token_statistic_flows_from_scoring_to_the_table(squared_nll):
    # two examples: tokens with NLL 1 and 3 (example 0), 2 (example 1)
    mask = torch.tensor([[True, True, False], [False, True, False]])
    sums = response_sums(torch.tensor([1.0, 3.0, 2.0]), torch.tensor([1, 0, 1]), mask)
    assert sums.sq_nll_sum.tolist() == [10.0, 4.0] and sums.nll_sum.tolist() == [4.0, 2.0]
    assert "sq_nll_sum" in TokenSums.full(2).as_dict()
    frames = [checkpoint_frame(["a", "b"], **sums.as_dict(), name=f"c{c}", step=c,
                               fingerprint=dataset_fingerprint(["a", "b"]), source="scoring") for c in range(2)]
    assert frames[0]["nll_sq"].tolist() == [5.0, 4.0]  # mean over each example's tokens
    table = compute_dynamics(frames)
    assert table["nll_sq_1"].tolist() == [5.0, 4.0]
    assert checkpoint_columns(table, "nll_sq") == ["nll_sq_0", "nll_sq_1"]


def test_token_sums_refuse_missing_or_unknown_statistics():
    with pytest.raises(TypeError, match="needs exactly nll_sum, prob_sum, correct_sum, n_tokens"):
        TokenSums(nll_sum=[1.0], n_tokens=[1.0])
    with pytest.raises(AttributeError, match="no statistic 'top_sum'"):
        TokenSums.full(1).top_sum  # noqa: B018


def test_every_projection_has_its_function_and_label():
    assert list(PROJECTIONS) == list(PROJECTORS) == ["umap", "pca", "tsne"]
    X = np.random.default_rng(0).normal(size=(30, 8))
    tsne = project("tsne", X, ids=range(30), seed=0)
    assert tsne.attrs["method"] == "t-SNE" and list(tsne.columns) == ["example_id", "x", "y"]
    pca = project("pca", X, ids=range(30))
    np.testing.assert_allclose(pca[["x", "y"]], project_pca(X, ids=range(30))[["x", "y"]])
    with pytest.raises(ConfigError, match="projection='mds' is not valid; choose one of umap, pca, tsne"):
        project("mds", X)


def test_tsne_is_an_experiment_setting():
    from sftmix.pipeline.experiment import demo_config

    assert demo_config(quick=True).override({"projection": "tsne"}).projection == "tsne"
    with pytest.raises(ConfigError, match="projection"):
        demo_config(quick=True).override({"projection": "mds"})


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    ppl = np.exp(rng.gamma(2.0, 0.5, size=n)) + 1.0
    return pd.DataFrame({"example_id": [f"e{i}" for i in range(n)], "confidence": -ppl, "confidence_last": -ppl * 0.9,
                         "correctness": rng.uniform(size=n), "confidence_prob": 1 / ppl,
                         "x": rng.normal(size=n), "y": rng.normal(size=n)})


def test_plots_read_labels_and_log_views_from_the_summaries():
    table = _table()
    for name in ("confidence", "confidence_last"):  # both are minus a perplexity: log view
        ax = plot_confidence_hist(table, metric=name, log=True).axes[0]
        assert ax.get_xlabel() == SUMMARIES[name].log_label
        assert SUMMARIES[name].perplexity in ax.get_title()
    ax = plot_confidence_hist(table, metric="correctness").axes[0]
    assert ax.get_xlabel() == SUMMARIES["correctness"].label
    with pytest.raises(ValueError, match="log=True needs positive confidence_prob"):
        plot_confidence_hist(table.assign(confidence_prob=-1.0), metric="confidence_prob", log=True)


def test_projection_colour_scale_comes_from_the_summary():
    table = _table()
    for name in ("confidence", "correctness"):
        fig = plot_umap_confidence(table, color=name)
        bar = fig.axes[-1].get_ylabel()
        assert bar.startswith(SUMMARIES[name].label)
        assert bar.endswith("(deciles)") == (SUMMARIES[name].colour_scale == "quantile")


def test_linear_colour_limits_come_from_the_summary():
    table = _table()
    fig = plot_umap_confidence(table, color="correctness", scale="linear")
    assert fig.axes[0].collections[0].get_clim() == SUMMARIES["correctness"].colour_range == (0.0, 1.0)
    fig = plot_umap_confidence(table, color="confidence", scale="linear")  # no fixed range: 2nd-98th percentile
    assert fig.axes[0].collections[0].get_clim() == pytest.approx(tuple(np.percentile(table["confidence"], [2, 98])))
