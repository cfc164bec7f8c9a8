"""The regime map: grid configs, paired comparison with Holm correction, the heatmap."""

import numpy as np
import pandas as pd
import pytest

from sftmix.pipeline.regime import RegimeGrid, regime_configs, summarize_regime
from sftmix.viz.plots.regime import plot_regime_map


def _table(effect: float, seeds=range(5)):
    """SFTMix beats NTP by ``effect`` exact match in the (150, 0.3, 8) cell only, with seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for n in (150, 600):
        for noise in (0.0, 0.3):
            for ep in (3, 8):
                for seed in seeds:
                    base = 0.5 + 0.01 * rng.standard_normal()
                    gain = effect if (n, noise, ep) == (150, 0.3, 8) else 0.0
                    for method, em in (("ntp", base), ("sftmix", base + gain + 0.002 * rng.standard_normal())):
                        rows.append({"n_train": n, "noise": noise, "epochs": ep, "method": method, "seed": seed,
                                     "exact_match": em, "nll": 1.0 - em, "ece": 0.05})
    return pd.DataFrame(rows)


def test_regime_configs_set_the_three_axes(tmp_path):
    base = {"name": "x", "seeds": [0, 1], "model": {"model_name_or_path": "tiny-llama"},
            "data": {"n_train": 10, "n_test": 5}, "training": {"num_train_epochs": 1}}
    configs = regime_configs(base, RegimeGrid(n_train=[20, 40], noise=[0.0, 0.1], epochs=[2]), runs_dir=str(tmp_path))
    assert [c for c, _ in configs] == [(20, 0.0, 2), (20, 0.1, 2), (40, 0.0, 2), (40, 0.1, 2)]
    cell = configs[1][1]
    assert cell.name == "regime-n20-noise0.1-ep2" and cell.data["noise"] == 0.1 and cell.data["n_train"] == 20
    assert cell.training["num_train_epochs"] == 2 and cell.reference_training["num_train_epochs"] == 2
    assert base["data"]["n_train"] == 10  # the base is not modified


def test_summary_finds_the_one_real_effect_after_holm():
    summary = summarize_regime(_table(0.05))
    assert len(summary) == 8 * 3  # 8 cells x 3 metrics: the Holm family
    em = summary[summary["metric"] == "exact_match"].set_index(["n_train", "noise", "epochs"])
    assert em.loc[(150, 0.3, 8), "verdict"] == "SFTMix better"
    assert em.loc[(150, 0.3, 8), "diff"] == pytest.approx(0.05, abs=0.005)
    assert (em.drop(index=(150, 0.3, 8))["verdict"] == "no clear difference").all()
    nll = summary[summary["metric"] == "nll"].set_index(["n_train", "noise", "epochs"])
    assert nll.loc[(150, 0.3, 8), "verdict"] == "SFTMix better"  # lower NLL is better
    assert (summary["p_holm"] >= summary["p"]).all()
    # ECE is identical for both methods: zero difference, p = 1, never a claim.
    assert (summary[summary["metric"] == "ece"]["verdict"] == "no clear difference").all()


def test_summary_makes_no_claim_from_one_seed():
    summary = summarize_regime(_table(0.05, seeds=[0]))
    assert (summary["verdict"] == "no clear difference").all() and summary["p"].isna().all()


def test_regime_heatmap(tmp_path):
    fig = plot_regime_map(summarize_regime(_table(0.05)))
    assert len([ax for ax in fig.axes if ax.get_title()]) == 3 * 2  # metrics x epochs
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("+0.05") and t.endswith("*") for t in texts)
    fig.savefig(tmp_path / "regime.png")


def _cell_colour(ax, row: int, col: int):
    mesh = ax.collections[0]
    n_cols = len(ax.get_xticks())
    return mesh.get_facecolors()[row * n_cols + col][:3] if len(mesh.get_facecolors()) > 1 else \
        mesh.to_rgba(mesh.get_array())[row * n_cols + col][:3]


def test_regime_colour_bar_reads_in_the_printed_numbers_and_blue_means_sftmix_better():
    summary = summarize_regime(_table(0.05))
    fig = plot_regime_map(summary, metrics=("exact_match", "nll"))
    panels = [ax for ax in fig.axes if ax.get_title()]
    em_ax = next(ax for ax in panels if ax.get_title() == "exact match (↑), 8 epochs")
    nll_ax = next(ax for ax in panels if ax.get_title() == "held-out NLL (↓), 8 epochs")
    for ax, metric in ((em_ax, "exact_match"), (nll_ax, "nll")):
        mesh = ax.collections[0]
        row = summary[(summary.metric == metric) & (summary.n_train == 150) & (summary.noise == 0.3)
                      & (summary.epochs == 8)].iloc[0]
        # rows: 600 then 150 (largest on top); columns: noise 0, 0.3
        printed = next(t for t in ax.texts if t.get_position() == (1.5, 1.5)).get_text()
        assert printed.startswith(f"{row['diff']:+.3f}")
        value = np.asarray(mesh.get_array()).reshape(2, 2)[1, 1]
        assert value == pytest.approx(row["diff"])  # the colour encodes the printed number itself
        rgb = mesh.to_rgba(np.array([value]))[0][:3]
        assert rgb[2] > rgb[0]  # SFTMix better in this cell (higher EM, lower NLL): blue in both panels
        vmin, vmax = mesh.norm.vmin, mesh.norm.vmax
        assert vmin == pytest.approx(-vmax) and vmin <= value <= vmax
    up_em = em_ax.collections[0].to_rgba(np.array([0.04]))[0]
    up_nll = nll_ax.collections[0].to_rgba(np.array([0.04]))[0]
    assert up_em[2] > up_em[0] and up_nll[0] > up_nll[2]  # +0.04: better exact match, worse NLL


def test_regime_rows_line_up_and_cells_not_run_are_marked():
    table = _table(0.05)
    table = table[~((table.epochs == 8) & (table.n_train == 600))]  # a cell that did not run
    summary = summarize_regime(table)
    fig = plot_regime_map(summary, metrics=("exact_match",), grid={"n_train": [150, 600, 2500], "noise": [0.0, 0.3],
                                                                    "epochs": [3, 8]})
    three, eight = [ax for ax in fig.axes if ax.get_title()]
    rows = [t.get_text() for t in three.get_yticklabels()]
    assert rows == ["2500", "600", "150"] == [t.get_text() for t in eight.get_yticklabels()]
    not_run = [t for t in eight.texts if t.get_text() == "not run"]
    assert len(not_run) == 2 * 2  # 2500 (never run) and 600 (dropped) at both noise levels
    assert len([t for t in three.texts if t.get_text() == "not run"]) == 2  # 2500 at 3 epochs
    assert "hatched: not run" in fig.get_suptitle()


def test_paper_claims_figure():
    from sftmix.analysis.paper import PAPER_RESULTS
    from sftmix.viz.plots.claims import PAPER_ROLE, PAPER_SPREAD_RATIO, plot_paper_claims

    role = pd.DataFrame([{"variant": v, "seed": s, "exact_match": m + 0.01 * s}
                         for v, m in (("NTP only", 0.5), ("Mixup only", 0.3)) for s in range(3)])
    spread = pd.DataFrame([{"method": m, "seed": s, "confidence_std": (0.4 if m == "ntp" else 0.36) + 0.01 * s,
                            "log_ppl_std": 0.2} for m in ("ntp", "sftmix") for s in range(3)])
    fig = plot_paper_claims(role, spread)
    ours, theirs, sp = fig.axes[:3]
    assert [t.get_text() for t in ours.get_yticklabels()] == ["NTP only", "Mixup only"]
    assert ours.get_xlim()[0] == 0  # bars start at zero: Mixup only is drawn at 60% of NTP, as it is
    bars = [p for p in ours.patches]
    assert [round(b.get_width(), 6) for b in bars] == [0.51, 0.31]
    assert len([c for c in ours.collections if "LineCollection" in type(c).__name__]) == 2  # one interval per bar
    paper = PAPER_RESULTS[PAPER_ROLE]
    widths = sorted(round(p.get_width(), 4) for p in theirs.patches)
    expected = sorted(round(v[m] / list(paper["rows"].values())[0][m], 4) for v in paper["rows"].values()
                      for m in range(len(paper["metrics"])))
    assert widths == expected and theirs.get_xlim()[0] == 0
    assert any(np.allclose(l.get_xdata(), PAPER_SPREAD_RATIO) for l in sp.lines)  # the paper's 7% drawn
    mean_marker = next(l for l in sp.lines if l.get_marker() == "D")
    assert mean_marker.get_xdata()[0] == pytest.approx(np.mean([0.36 / 0.4, 0.37 / 0.41, 0.38 / 0.42]))
    with pytest.raises(KeyError, match="confidence_std"):
        plot_paper_claims(role, spread.drop(columns="confidence_std"))


def test_grouped_histogram_keeps_the_metric_as_its_axis_label():
    """Regression: the group loop once overwrote the axis label with the last group's name."""
    from sftmix.viz.plots import plot_confidence_hist

    table = pd.DataFrame({"confidence": -np.linspace(1.1, 40, 40), "noisy": [False] * 30 + [True] * 10})
    ax = plot_confidence_hist(table, by="noisy", log=True).axes[0]
    assert "perplexity" in ax.get_xlabel() and "noisy" not in ax.get_xlabel()
    assert {t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()} == {"not noisy", "noisy"}
