"""DynamicsCallback: a data map of a TRL SFTTrainer run (messages and prompt-completion data) or any Trainer."""

import numpy as np
import pytest
import trl  # a dev dependency (pyproject.toml): CI runs these tests, no skip

from sftmix.errors import DataError

from . import _integrations as T


def _train(tmp_path, data, tok, *, interval=None, epochs=2, **config):
    """A tiny SFTTrainer run with the callback; checkpoints saved at the same points the callback scores."""
    import sftmix

    save = dict(save_strategy="steps", save_steps=interval) if interval else dict(save_strategy="epoch")
    args = trl.SFTConfig(**{**T.trl_args(tmp_path / "trl", num_train_epochs=epochs, **config), **save})
    trainer = trl.SFTTrainer(model=T.model(tok), args=args, train_dataset=data, processing_class=tok)
    callback = sftmix.DynamicsCallback(tmp_path / "run", trainer.train_dataset, interval=interval, batch_size=8)
    trainer.add_callback(callback)
    trainer.train()
    return trainer, callback


def _checkpoints(tmp_path):
    return sorted((tmp_path / "trl").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


def test_messages_run_scores_equal_score_checkpoints_and_open_as_a_run(tmp_path):
    import sftmix
    from sftmix.dynamics import read_checkpoint_frames
    from sftmix.viz.figures import make_figures

    tok = T.tokenizer(generation_markers=True)
    trainer, callback = _train(tmp_path, T.messages_dataset(), tok, assistant_only_loss=True)
    # What the callback scores is what TRL trains: labels only on the assistant turns.
    labels = callback.data["labels"][0]
    prompt = tok.apply_chat_template(T.messages_dataset()[0]["messages"][:-1], add_generation_prompt=True,
                                     tokenize=False)
    prompt_tokens = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert all(x == -100 for x in labels[:prompt_tokens]) and labels[prompt_tokens] != -100
    ckpts = _checkpoints(tmp_path)
    assert len(ckpts) == len(callback.frames) == 2
    ours = sftmix.score_checkpoints(ckpts, callback.data, out_dir=tmp_path / "scores", batch_size=8,
                                    tokens="trained", progress=False)
    for frame, theirs in zip(callback.frames, ours):
        assert frame.attrs["step"] == theirs.attrs["step"]
        assert list(frame["example_id"]) == list(theirs["example_id"])
        for column in ("nll", "ppl", "prob", "acc", "n_tokens"):
            np.testing.assert_allclose(frame[column], theirs[column], rtol=0, atol=1e-5)
    assert not np.allclose(ours[0]["nll"], ours[1]["nll"])  # the model trained between the two points
    # The run directory is sftmix's own: the table, the split and the figures read it unchanged.
    run = sftmix.RunDir(tmp_path / "run")
    table = sftmix.load_dynamics(run.dynamics, T.messages_dataset())
    split = sftmix.load_split(run.split)
    assert len(table) == 24 and set(split["confident"]) | set(split["unconfident"]) == set(table["example_id"])
    assert table.attrs["checkpoints"] == ["epoch-1", "epoch-2"] and "task" in table
    assert len(read_checkpoint_frames(run.scores)) == 2
    written = make_figures(run.root, tmp_path / "figures")
    assert any(p.name == "dynamics_map.png" for p in written)


def test_prompt_completion_run_every_n_steps(tmp_path):
    import sftmix

    tok = T.tokenizer()
    trainer, callback = _train(tmp_path, T.prompt_completion_dataset(), tok, interval=2, epochs=2)
    # 24 examples / 8 = 3 steps an epoch, 6 in all: scored at steps 2, 4, 6.
    assert [f.attrs["name"] for f in callback.frames] == ["step-2", "step-4", "step-6"]
    data = trainer.train_dataset
    expected = [sum(1 for x in lab[1:] if x != -100) for lab in data["labels"]]  # TRL's completion-only labels
    assert callback.frames[0]["n_tokens"].tolist() == expected
    ours = sftmix.score_checkpoints(_checkpoints(tmp_path), callback.data, out_dir=tmp_path / "scores", batch_size=8,
                                    tokens="trained", progress=False)
    for frame, theirs in zip(callback.frames, ours):
        np.testing.assert_allclose(frame["ppl"], theirs["ppl"], rtol=1e-5, atol=0)
        np.testing.assert_allclose(frame["acc"], theirs["acc"], rtol=0, atol=1e-5)


def test_plain_trainer_with_sftmix_labels_and_row_numbers(tmp_path):
    """Any Trainer: sftmix's tokenized data (labels) and no id column (the rows are numbered)."""
    from transformers import Trainer, TrainingArguments

    import sftmix

    tok = T.tokenizer()
    data = sftmix.tokenize_examples(T.suite(16), tok, max_length=96).remove_columns(["example_id", "example_index"])
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_train_epochs=1,
                             use_cpu=True, report_to="none", remove_unused_columns=False, save_strategy="no",
                             disable_tqdm=True)
    callback = sftmix.DynamicsCallback(tmp_path / "run", id_column=None, batch_size=8)
    Trainer(model=T.model(tok), args=args, train_dataset=data.select_columns(["input_ids", "labels"]),
            data_collator=sftmix.PadCollator(tok.pad_token_id), callbacks=[callback]).train()
    table = sftmix.load_dynamics(sftmix.RunDir(tmp_path / "run").dynamics)
    assert table["example_id"].tolist() == [str(i) for i in range(16)]
    assert (table["n_tokens"].to_numpy() == [sum(1 for x in lab[1:] if x != -100) for lab in data["labels"]]).all()
    assert np.isfinite(table["confidence"]).all()


def test_masks_become_labels_and_missing_ids_are_one_line_errors():
    import datasets

    from sftmix.integrations import trained_tokens, with_example_ids

    data = datasets.Dataset.from_dict({"input_ids": [[5, 6, 7, 8], [5, 6, 7]],
                                       "completion_mask": [[0, 0, 1, 1], [0, 1, 1]],
                                       "assistant_masks": [[0, 1, 1, 0], [1, 1, 1]]})
    scored = trained_tokens(with_example_ids(data))
    assert scored["labels"] == [[-100, -100, 7, -100], [-100, 6, 7]]  # trained where every mask is 1
    assert scored["example_id"] == ["0", "1"]
    with pytest.raises(DataError, match="no 'example_id' column"):
        trained_tokens(data)
    with pytest.raises(DataError, match="no trained token"):
        trained_tokens(data.select([0]).map(lambda r: {"completion_mask": [0, 0, 0, 1]}), id_column=None)
    with pytest.raises(DataError, match="row 1: example id 'a'"):
        with_example_ids(data.add_column("id", ["a", "a"]), source="id")


def test_a_resumed_run_keeps_the_points_before_its_checkpoint(tmp_path):
    import sftmix

    tok = T.tokenizer()
    data = T.prompt_completion_dataset(16)
    _train(tmp_path, data, tok, epochs=1)  # scores epoch-1, saves checkpoint-2
    args = trl.SFTConfig(**T.trl_args(tmp_path / "trl", num_train_epochs=2))
    trainer = trl.SFTTrainer(model=T.model(tok), args=args, train_dataset=data, processing_class=tok)
    callback = sftmix.DynamicsCallback(tmp_path / "run", trainer.train_dataset, batch_size=8)
    trainer.add_callback(callback)
    trainer.train(resume_from_checkpoint=str(_checkpoints(tmp_path)[-1]))
    assert [(f.attrs["name"], f.attrs["step"]) for f in callback.frames] == [("epoch-1", 2), ("epoch-2", 4)]
    assert sftmix.load_dynamics(sftmix.RunDir(tmp_path / "run").dynamics).attrs["checkpoints"] == ["epoch-1",
                                                                                                   "epoch-2"]
