"""The notebook explorers, driven without a browser: set a control, check what changed."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("ipywidgets")

from sftmix.dynamics import split_by_confidence  # noqa: E402
from sftmix.viz import widgets  # noqa: E402

TASKS = ["copy", "add", "sort"]


def make_table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """A small dynamics table: noisy and 'add' examples are learnt less well."""
    rng = np.random.default_rng(seed)
    task = np.array(TASKS)[np.arange(n) % len(TASKS)]
    noisy = rng.random(n) < 0.2
    prob = np.clip(0.6 - 0.3 * (task == "add") - 0.25 * noisy + rng.normal(0, 0.08, n), 0.01, 0.99)
    return pd.DataFrame({
        "example_id": [f"ex{i:03d}" for i in range(n)], "task": task, "noisy": noisy,
        "confidence": -1 / prob, "confidence_prob": prob, "variability": rng.uniform(0, 2, n),
        "variability_prob": rng.uniform(0, 0.2, n), "correctness": np.clip(prob + rng.normal(0, 0.05, n), 0, 1),
    })


def make_examples(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "example_id": table["example_id"],
        "messages": [[{"role": "user", "content": f"Question <{i}> about {t}?"}]
                     for i, t in enumerate(table["task"])],
        "response": [f"answer {i}" for i in range(len(table))],
        "answer": [f"answer {i}" if not z else f"right {i}" for i, z in enumerate(table["noisy"])],
    })


# ------------------------------------------------------------------ lambda explorer
@pytest.fixture(scope="module")
def tiny_model(tokenizer):
    from sftmix.toy import build_tiny_model

    return build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)


PAIR = [{"example_id": "a", "messages": [{"role": "user", "content": "Uppercase 'cat'."}], "response": "CAT"},
        {"example_id": "b", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "response": "4"}]


def test_lambda_explorer_alpha_slider_redraws_the_distribution(tiny_model, tokenizer):
    ex = widgets.lambda_explorer(tiny_model, tokenizer, PAIR, alpha=0.5)
    before, mid_before = ex.lambda_image.value, ex.mid_mass
    assert before[:4] == b"\x89PNG"
    ex.alpha_slider.value = 4.0
    assert ex.lambda_image.value != before
    assert ex.lambda_figure.axes[0].get_title() == "\u03bb ~ Beta(4, 4)"
    assert ex.mid_mass > mid_before  # a larger alpha puts more draws away from 0 and 1


def test_lambda_explorer_mix_interpolates_between_the_pair(tiny_model, tokenizer):
    from sftmix.analysis.mixing import mixed_probs

    ex = widgets.lambda_explorer(tiny_model, tokenizer, PAIR, lam=0.5, top_k=3)
    html_half = ex.table.value
    ex.lambda_slider.value = 1.0
    assert ex.table.value != html_half
    torch.testing.assert_close(ex.probs["mix"], ex.probs["confident"])
    states = ex.states["model"]
    p_c = mixed_probs(states, 1.0)[torch.arange(states.n_aligned), states.aligned.target_a]
    assert ex.mixup_loss["model"] == pytest.approx(float(-torch.log(p_c).mean()), rel=1e-5)
    ex.set_lambda(0.0)
    assert ex.lambda_slider.value == 0.0
    torch.testing.assert_close(ex.probs["mix"], ex.probs["unconfident"])
    p_u = mixed_probs(states, 0.0)[torch.arange(states.n_aligned), states.aligned.target_b]
    assert ex.mixup_loss["model"] == pytest.approx(float(-torch.log(p_u).mean()), rel=1e-5)
    assert len(ex.top["mix"]) == 3


def test_lambda_explorer_loss_is_the_training_loss(tiny_model, tokenizer):
    """The explorer's Mixup loss equals sftmix.loss.mixup.mixup_loss on the model's own hidden states."""
    import datasets

    from sftmix.data import tokenize_examples
    from sftmix.loss.head import forward_hidden, output_head
    from sftmix.loss.mixup import mixup_loss

    ex = widgets.lambda_explorer(tiny_model, tokenizer, PAIR, lam=0.3)
    rows = tokenize_examples(datasets.Dataset.from_list(PAIR), tokenizer, max_length=64)
    tiny_model.eval()
    with torch.no_grad():
        h = [forward_hidden(tiny_model, torch.tensor([r["input_ids"]])) for r in rows]
        out = mixup_loss(h[0], torch.tensor([rows[0]["labels"]]), h[1], torch.tensor([rows[1]["labels"]]),
                         torch.tensor([0.3]), output_head(tiny_model))
    assert ex.mixup_loss["model"] == pytest.approx(float(out.loss_sum) / int(out.num_positions), rel=1e-5)
    curve = ex.curves["model"].set_index("lam")
    assert curve.loc[0.0, "p_confident"] < 1.0 and list(curve.columns) == ["p_confident", "p_unconfident",
                                                                          "mixup_loss"]


def test_lambda_explorer_compares_models_and_picks_pairs(tiny_model, tokenizer):
    from sftmix.toy import build_tiny_model

    other = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=1)
    table = make_table(30)
    examples = make_examples(table)
    split = split_by_confidence(table)
    ex = widgets.lambda_explorer({"NTP": tiny_model, "SFTMix": other}, tokenizer, examples=examples, split=split)
    assert set(ex.curves) == {"NTP", "SFTMix"} and set(ex.mixup_loss) == {"NTP", "SFTMix"}
    assert ex.pair[0] in split["confident"] and ex.pair[1] in split["unconfident"]
    assert not ex.curves["NTP"].equals(ex.curves["SFTMix"])  # two models, two sets of curves
    image = ex.curves_image.value
    new_id = next(v for _, v in ex.confident_dropdown.options if v != ex.pair[0])
    ex.confident_dropdown.value = new_id
    assert ex.pair[0] == new_id and ex.curves_image.value != image
    assert ex.texts[0][1] == examples.set_index("example_id").loc[new_id, "response"]
    with pytest.raises(ValueError, match="pair"):
        widgets.lambda_explorer(tiny_model, tokenizer)


def test_lambda_explorer_uses_the_first_response_position(tiny_model, tokenizer):
    import datasets

    from sftmix.data import tokenize_examples

    tokenized = tokenize_examples(datasets.Dataset.from_list(PAIR), tokenizer, max_length=64)
    ex = widgets.lambda_explorer(tiny_model, tokenizer, [tokenized[0], tokenized[1]])
    for row, t, y in zip(tokenized, ex.positions, ex.targets):
        labels = row["labels"]
        assert labels[t] == -100 and labels[t + 1] != -100 and y == labels[t + 1]
    assert tokenizer.decode([ex.targets[0]]) == "C"
    # k walks along the aligned responses, up to the shorter one ("4" + end of sequence)
    assert ex.n_aligned == 2
    first = list(ex.positions)
    ex.position_slider.value = 1
    assert ex.k == 1 and ex.positions == [t + 1 for t in first]
    assert tokenizer.decode([ex.targets[0]]) == "A" and ex.targets[1] == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="shorter response"):
        ex.set_position(2)


def test_lambda_explorer_rejects_a_non_pair(tiny_model, tokenizer):
    with pytest.raises(ValueError, match="two examples"):
        widgets.lambda_explorer(tiny_model, tokenizer, PAIR[:1])


def test_pick_pair_takes_one_example_from_each_half():
    table = make_table()
    split = split_by_confidence(table)
    a, b = widgets.pick_pair(make_examples(table), split, seed=3)
    assert a["example_id"] in split["confident"] and b["example_id"] in split["unconfident"]
    assert widgets.pick_pair(make_examples(table), split, seed=3)[0] == a


# ------------------------------------------------------------------- split explorer
def test_split_explorer_recomputes_the_split_when_the_ratio_moves():
    table = make_table()
    ex = widgets.split_explorer(table)
    assert len(ex.split["confident"]) == 60
    image, info = ex.image.value, ex.info.value
    ex.ratio_slider.value = 0.25
    assert len(ex.split["confident"]) == 30 and len(ex.split["unconfident"]) == 90
    assert ex.image.value != image and ex.info.value != info
    assert f"{ex.split['threshold']:.4g}" in ex.info.value
    assert ex.summary.loc["confident", "n"] == 30
    # The threshold line on the histogram sits at the new threshold.
    lines = [ln for ln in ex.figure.axes[0].get_lines() if ln.get_linestyle() == "--"]
    assert lines and lines[0].get_xdata()[0] == pytest.approx(ex.split["threshold"])


def test_split_explorer_metric_and_projection():
    table = make_table()
    proj = pd.DataFrame({"example_id": table["example_id"], "x": np.arange(len(table)), "y": 0.0})
    ex = widgets.split_explorer(table, proj, method="PCA")
    assert len(ex.figure.axes) == 3  # histogram, map, projection
    assert ex.figure.axes[2].get_xlabel() == "PCA 1"
    split = ex.update(ratio=0.4, metric="correctness")
    assert split["metric"] == "correctness" and ex.metric_dropdown.value == "correctness"
    assert split == split_by_confidence(table, ratio=0.4, metric="correctness")


def test_split_summary_counts_noise_per_half():
    table = make_table()
    summary = widgets.split_summary(table, split_by_confidence(table))
    assert summary["n"].sum() == len(table)
    assert summary.loc["unconfident", "share noisy"] > summary.loc["confident", "share noisy"]


def test_split_explorer_lists_who_changes_side_per_task_composition_and_noise_recall():
    table = make_table()
    ex = widgets.split_explorer(table)
    assert ex.changes.empty and "<b>0</b> examples changed side" in ex.info.value
    ex.ratio_slider.value = 0.25
    median = split_by_confidence(table, ratio=0.5)
    moved = set(median["confident"]) - set(ex.split["confident"])
    assert set(ex.changes["example_id"]) == moved and len(moved) == 30
    assert (ex.changes["from"] == "confident").all() and (ex.changes["to"] == "unconfident").all()
    assert f"<b>{len(moved)}</b> examples changed side" in ex.info.value
    shares = table.assign(c=table.example_id.isin(ex.split["confident"])).groupby("task")["c"].mean()
    assert np.allclose(ex.by_task["confident share now"].sort_index(), shares.sort_index())
    noisy = set(table.loc[table.noisy, "example_id"])
    caught = len(noisy & set(ex.split["unconfident"]))
    assert ex.noise["recall"] == pytest.approx(caught / len(noisy))
    assert ex.noise["precision"] == pytest.approx(caught / 90)
    assert f"{caught} of {len(noisy)}" in ex.info.value
    assert ex.changes.iloc[0]["example_id"] in ex.details.value


def with_checkpoints(table: pd.DataFrame, checkpoints: int = 3) -> pd.DataFrame:
    """Per-checkpoint columns whose mean matches the table's confidence."""
    out = table.copy()
    rng = np.random.default_rng(1)
    for c in range(checkpoints):
        ppl = (-table["confidence"]) * (1 + 0.3 * (1 - c) + rng.normal(0, 0.02, len(table)))
        out[f"ppl_{c}"], out[f"gprob_{c}"] = ppl, 1 / ppl
        out[f"prob_{c}"], out[f"acc_{c}"] = 1 / ppl, np.clip(out["correctness"] + 0.1 * (c - 1), 0, 1)
    out.attrs["checkpoints"] = [f"runs/x/reference/checkpoint-{10 * (c + 1)}" for c in range(checkpoints)]
    return out


def test_example_explorer_shows_one_examples_checkpoints_by_id_or_region():
    table = with_checkpoints(make_table())
    examples = make_examples(table)
    ex = widgets.example_explorer(table, examples, split=split_by_confidence(table), region="hard-to-learn")
    hardest = table.loc[table.confidence_prob.idxmin(), "example_id"]
    assert ex.example_id == hardest  # the region's most typical example comes first
    ex.id_text.value = "ex007"
    assert ex.example_id == "ex007"
    row = table.set_index("example_id").loc["ex007"]
    assert list(ex.scores.index) == [10, 20, 30]  # the checkpoints' steps
    assert np.allclose(ex.scores["perplexity"], row[["ppl_0", "ppl_1", "ppl_2"]].astype(float))
    assert "answer 7" in ex.html.value and "half" in ex.html.value
    before = ex.image.value
    ex.region_dropdown.value = "easy-to-learn"
    assert ex.example_id == table.loc[table.confidence_prob.idxmax(), "example_id"] and ex.image.value != before
    with pytest.raises(KeyError, match="not in the dynamics table"):
        ex.show("nope")


# ---------------------------------------------------------------- example inspector
def test_region_mask_follows_the_documented_quantile_rule():
    table = make_table(300)
    easy = widgets.region_mask(table, "easy-to-learn")
    hard = widgets.region_mask(table, "hard-to-learn")
    amb = widgets.region_mask(table, "ambiguous", fraction=0.2)
    assert not (easy & hard).any()
    assert easy.sum() == pytest.approx(100, abs=1) and hard.sum() == pytest.approx(100, abs=1)
    assert amb.sum() == pytest.approx(60, abs=1)
    assert table.confidence_prob[easy].min() >= table.confidence_prob[~easy].max()
    assert table.variability_prob[amb].min() >= table.variability_prob[~amb].max()
    assert widgets.region_mask(table, "all").all()
    with pytest.raises(ValueError, match="unknown region"):
        widgets.region_mask(table, "middle")


def test_select_examples_sorts_filters_and_adds_texts():
    table = make_table()
    hard = widgets.select_examples(table, make_examples(table), region="hard-to-learn", n=5)
    assert len(hard) == 5 and hard.confidence_prob.is_monotonic_increasing
    assert hard.confidence_prob.iloc[0] == table.confidence_prob.min()
    assert {"instruction", "response", "answer"} <= set(hard.columns)
    only = widgets.select_examples(table, None, task="add", noisy=True, n=50)
    assert (only.task == "add").all() and only.noisy.all()
    assert len(only) == int(((table.task == "add") & table.noisy).sum())


def test_example_inspector_updates_its_table():
    table = make_table()
    ex = widgets.example_inspector(table, make_examples(table), region="hard-to-learn", n=4)
    first = ex.html.value
    assert "<table" in first and len(ex.selection) == 4
    ex.region_dropdown.value = "easy-to-learn"
    assert ex.html.value != first
    assert ex.selection.confidence_prob.min() >= table.confidence_prob.quantile(2 / 3)
    ex.update(task="copy", noisy="clean", n=3)
    assert (ex.selection.task == "copy").all() and not ex.selection.noisy.any() and len(ex.selection) == 3
    assert ex.task_dropdown.value == "copy"


def test_examples_html_escapes_text():
    table = make_table(6)
    html = widgets.examples_html(widgets.select_examples(table, make_examples(table), n=6))
    assert "&lt;0&gt;" in html and "<0>" not in html
    assert widgets.examples_html(pd.DataFrame()).startswith("<p>")


def test_missing_ipywidgets_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match="pip install ipywidgets"):
        widgets.split_explorer(make_table())
