"""``sftmix data``'s report on literal data, and loss lines printed when tqdm is off."""

import json

import pytest

from sftmix.cli.data import exact_duplicates, head_table, length_summary, report_text, token_lengths
from sftmix.data import load_examples
from sftmix.viz.plots import plot_lengths


@pytest.fixture
def examples(tmp_path):
    rows = [{"id": "a", "prompt": "hi", "completion": "yo"},
            {"id": "b", "prompt": "hi", "completion": "yo"},
            {"id": "c", "prompt": "a longer prompt here", "completion": "and a longer answer"}]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_examples(str(path))


def test_lengths_truncation_and_drops(examples, tokenizer):
    lengths = token_lengths(examples, tokenizer)
    # <|user|>hi<|end|><|assistant|> = 5 prompt tokens; "yo<|end|>" = 3 response tokens.
    assert lengths[["prompt", "response", "first_response"]].values.tolist() == [[5, 3, 5], [5, 3, 5], [23, 20, 23]]
    summary = length_summary(lengths, max_length=8)
    assert summary["prompt"]["max"] == 23 and summary["response"]["p50"] == 3
    assert summary["truncated"] == 1 and summary["dropped"] == 1   # the long one: no response token in 8


def test_duplicates_head_and_report(examples, tokenizer):
    assert exact_duplicates(examples) == [["a", "b"]]
    table = head_table(examples, 2)
    assert table["example_id"].tolist() == ["a", "b"] and table["prompt"][0] == "user: hi"
    text = report_text(examples, token_lengths(examples, tokenizer), fmt="prompt_completion (detected)",
                       max_length=8, head=2)
    assert text.startswith("format: prompt_completion (detected); 3 training examples")
    assert "1 truncated, 1 dropped" in text and "1 groups, 1 extra rows; e.g. a, b" in text


def test_builtin_counts_per_task_and_noise(suite_examples, tokenizer):
    train = suite_examples[0]
    text = report_text(train, token_lengths(train, tokenizer), fmt="built-in", max_length=128, head=0)
    assert "examples per task:" in text and "noisy=False" in text and "reverse_word" in text


def test_plot_lengths_returns_a_figure(examples, tokenizer):
    fig = plot_lengths(token_lengths(examples, tokenizer), max_length=8)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "tokens per example" and len(ax.get_legend().get_texts()) == 3


def test_loss_lines_when_tqdm_is_off(tokenizer, suite_examples, tmp_path, capsys):
    from sftmix.config import SFTMixConfig
    from sftmix.data import tokenize_examples
    from sftmix.toy import build_tiny_model
    from sftmix.train import train_model

    tokenized = tokenize_examples(suite_examples[0].select(range(16)), tokenizer, max_length=64)
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    cfg = SFTMixConfig(output_dir=str(tmp_path), max_steps=4, logging_steps=2, per_device_train_batch_size=4,
                       disable_tqdm=True, report_to="none", save_strategy="no", use_cpu=True)
    train_model(model, tokenizer, tokenized, cfg, save=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0].split()[1] for line in lines[:2]] == ["2/4", "4/4"]
    assert all("loss " in line for line in lines[:2])
