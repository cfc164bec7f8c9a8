"""What the notebooks rely on beyond the plots' basics: running the pipeline up to a stage,
one progress bar per call, and figures that stay readable at notebook width."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from sftmix.pipeline.experiment import STAGES, run_experiment
from sftmix.viz import plots
from sftmix.viz.plots._style import marker_cycle, palette
from tests.helpers import tiny_config


# ------------------------------------------------------------------ run_experiment(until=...)
@pytest.mark.slow
def test_until_split_runs_only_the_first_stages_and_the_full_run_reuses_them(tmp_path, capsys):
    config = tiny_config(tmp_path)
    out = run_experiment(config, until="split", progress="stages")
    run = config.run_dir
    assert out["stages"] == ["reference", "dynamics", "prune", "split"] and out["run_dir"] == run
    assert (run / "dynamics.parquet").exists() and (run / "split.json").exists()
    assert not (run / "ntp").exists() and not (run / "results.json").exists()
    assert not (run / "projection.parquet").exists()
    err = capsys.readouterr().err
    assert "Scoring" not in err and "stages" in err  # the stages' own bars stay off: one bar per call
    split_mtime = (run / "split.json").stat().st_mtime
    results = run_experiment(config, progress=False)
    assert (run / "split.json").stat().st_mtime == split_mtime  # up to date: not redone
    assert set(results["summary"]) == set(config.methods)


@pytest.mark.slow
def test_until_reference_keeps_every_checkpoint_for_the_scoring_that_follows(tmp_path):
    config = tiny_config(tmp_path, methods=["sftmix"], embeddings=False)
    out = run_experiment(config, until="reference", progress=False)
    assert out["stages"] == ["reference"] and not (config.run_dir / "dynamics.parquet").exists()
    stamp = (config.run_dir / "stages" / "reference.json").read_text()
    run_experiment(config, until="split", progress=False)
    assert (config.run_dir / "stages" / "reference.json").read_text() == stamp  # not trained again
    assert (config.run_dir / "split.json").exists()


def test_until_names_a_stage_and_progress_a_mode(tmp_path):
    assert STAGES.index("embeddings") < STAGES.index("train")  # embeddings need no trained model
    with pytest.raises(ValueError, match="until='bogus'"):
        run_experiment(tiny_config(tmp_path), until="bogus")
    with pytest.raises(ValueError, match="progress"):
        run_experiment(tiny_config(tmp_path), progress="loud")


# ------------------------------------------------------------------ figures
def _table(n=300, seed=0, tasks=15):
    rng = np.random.default_rng(seed)
    perplexity = np.exp(rng.gamma(1.0, 1.5, n))  # heavy-tailed like the paper's confidence
    return pd.DataFrame({"example_id": [f"e{i}" for i in range(n)], "task": [f"task{i % tasks:02d}" for i in range(n)],
                         "confidence": -perplexity, "confidence_prob": 1 / perplexity,
                         "x": rng.normal(size=n), "y": rng.normal(size=n)})


def test_heavy_tailed_confidence_as_log_perplexity():
    table = _table()
    split = {"metric": "confidence", "threshold": float(np.median(table.confidence)), "ratio": 0.5,
             "confident": [], "unconfident": []}
    ax = plots.plot_confidence_hist(table, split=split, log=True).axes[0]
    assert "log" in ax.get_xlabel() and "perplexity" in ax.get_xlabel()
    heights = [p.get_height() for p in ax.patches]
    assert max(heights) < 0.5 * len(table)  # no single bin holds half of the examples
    line = next(ln for ln in ax.lines if ln.get_linestyle() == "--")
    assert line.get_xdata()[0] == pytest.approx(np.log10(-split["threshold"]))
    linear = plots.plot_confidence_hist(table, split=split).axes[0]
    assert max(p.get_height() for p in linear.patches) > max(heights)


def test_fifteen_tasks_get_distinct_colour_and_marker_pairs():
    colours, markers = [to_hex(c) for c in palette(15)], marker_cycle(15)
    assert len(set(colours)) == 15
    assert len(set(zip(colours, markers))) == 15 and len(set(markers)) > 1
    ax = plots.plot_umap_confidence(_table(), color="task", method="PCA").axes[0]
    assert len({tuple(c.get_paths()[0].vertices.round(3).ravel()[:6]) for c in ax.collections}) > 1


def test_ablation_panel_does_not_magnify_noise_and_keeps_the_legend_off_the_points():
    rows = pd.DataFrame({"param": "mixup_alpha", "value": [0.5, 0.5, 2.0, 2.0],
                         "nll": [1.500, 1.502, 1.503, 1.499], "seed": [0, 1, 0, 1]})
    ax = plots.plot_ablation(rows, param="mixup_alpha", metric="nll").axes[0]
    low, high = ax.get_ylim()
    assert high - low >= 0.1 * 1.5 - 1e-9
    fig = ax.get_figure(root=True)
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y0 >= ax.get_window_extent().y1 - 1  # above the axes: it covers no point
    ax = plots.plot_ablation(rows, param="mixup_alpha", metric="nll", min_span=0).axes[0]
    assert ax.get_ylim()[1] - ax.get_ylim()[0] < 0.05


def test_many_tasks_become_horizontal_bars_and_short_runs_get_markers():
    per_task = pd.DataFrame([{"method": m, "seed": 0, "task": f"task{t:02d}", "accuracy": 0.1 * (t % 7)}
                             for m in ("NTP", "SFTMix") for t in range(15)])
    ax = plots.plot_results(per_task).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "overall"
    fig = plots.plot_training_curves({"NTP": [{"step": 4, "loss": 2.0}],
                                      "SFTMix": [{"step": 4, "train_loss": 2.1}]}, parts=False)
    lines = [ln for ln in fig.axes[0].lines if len(ln.get_xdata())]
    assert len(lines) == 2 and all(ln.get_marker() == "o" for ln in lines)
    assert any("mean over the run" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_lambda_explorer_image_has_a_fixed_width_and_one_token_responses_say_why_k_is_fixed(tokenizer):
    pytest.importorskip("ipywidgets")
    from sftmix.toy import build_tiny_model
    from sftmix.viz import widgets

    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    pair = [{"example_id": "a", "messages": [{"role": "user", "content": "Say yes."}], "response": "y"},
            {"example_id": "b", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "response": "4"}]
    ex = widgets.lambda_explorer(model, tokenizer, pair)
    width = ex.lambda_image.layout.max_width  # shown at its size (at most the output's width), not stretched
    assert width.endswith("px") and int(width[:-2]) < 600 and ex.lambda_image.layout.width == "100%"
    if ex.n_aligned == 1:
        assert ex.position_slider.disabled and "single token" in ex.position_note.value
    else:
        assert ex.position_note.value == ""
