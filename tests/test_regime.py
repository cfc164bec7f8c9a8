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


def test_paper_claims_figure():
    from sftmix.viz.plots.claims import plot_paper_claims

    role = pd.DataFrame([{"variant": v, "seed": s, "exact_match": 0.5 + 0.01 * s}
                         for v in ("NTP only", "Mixup only") for s in range(3)])
    spread = pd.DataFrame([{"method": m, "seed": s, "confidence_std": 0.4 + 0.01 * s}
                           for m in ("ntp", "sftmix") for s in range(3)])
    fig = plot_paper_claims(role, spread)
    left, right = fig.axes[:2]
    assert [t.get_text() for t in left.get_yticklabels()] == ["NTP only", "Mixup only"]
    assert len(right.lines) == 3  # one line per seed
    with pytest.raises(KeyError, match="confidence_std"):
        plot_paper_claims(role, spread.drop(columns="confidence_std"))


def test_grouped_histogram_keeps_the_metric_as_its_axis_label():
    """Regression: the group loop once overwrote the axis label with the last group's name."""
    from sftmix.viz.plots import plot_confidence_hist

    table = pd.DataFrame({"confidence": -np.linspace(1.1, 40, 40), "noisy": [False] * 30 + [True] * 10})
    ax = plot_confidence_hist(table, by="noisy", log=True).axes[0]
    assert "perplexity" in ax.get_xlabel() and "noisy" not in ax.get_xlabel()
    assert {t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()} == {"not noisy", "noisy"}
