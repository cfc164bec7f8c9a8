"""SFTMix inside TRL: SFTMixTRLTrainer equals SFTMixTrainer on a batch, keeps the ids through TRL's column
handling, trains NTP as plain SFTTrainer does, and refuses settings that would train something else."""

import copy

import pytest
import torch
import trl  # a dev dependency (pyproject.toml): CI runs these tests, no skip

from sftmix.errors import ConfigError, SplitError

from . import _integrations as T


def _half_split(data):
    ids = list(data["example_id"])
    return {"confident": ids[: len(ids) // 2], "unconfident": ids[len(ids) // 2:]}


def _trl_trainer(tmp_path, data, tok, model, *, split=None, **config):
    import sftmix

    args = sftmix.SFTMixTRLConfig(**T.trl_args(tmp_path / "trl", **config))
    return sftmix.SFTMixTRLTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                                   split=split if split is not None else _half_split(data))


def _step(trainer, model, batch):
    """One training step as the Trainer runs it; (loss, {name: grad})."""
    trainer.current_gradient_accumulation_steps = 1  # set by train()
    num_items = (batch["labels"][:, 1:] != -100).sum()
    model.zero_grad(set_to_none=True)
    loss = trainer.training_step(model, dict(batch), num_items)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return float(loss), grads


@pytest.mark.parametrize("mixup_weight", [0.2, 0.0])
def test_batch_loss_and_gradients_equal_sftmix_trainer(tmp_path, mixup_weight):
    import datasets

    import sftmix

    tok = T.tokenizer()
    base = T.model(tok)
    data = T.prompt_completion_dataset(16)
    ours = _trl_trainer(tmp_path, data, tok, copy.deepcopy(base), mixup_weight=mixup_weight, mixup_alpha=0.5)
    batch = next(iter(ours.get_train_dataloader()))  # a paired batch, as TRL collates it
    # The same prepared tokens under sftmix's own trainer and collator.
    prepared = ours.train_dataset
    plain = datasets.Dataset.from_dict({k: prepared[k] for k in ("example_id", "input_ids", "labels",
                                                                 "example_index")})
    config = sftmix.SFTMixConfig(output_dir=str(tmp_path / "sftmix"), method="sftmix", split_file="<in memory>",
                                 mixup_weight=mixup_weight, mixup_alpha=0.5, per_device_train_batch_size=8,
                                 use_cpu=True, report_to="none", seed=0, disable_tqdm=True)
    model = copy.deepcopy(base)
    reference = sftmix.SFTMixTrainer(model=model, args=config, train_dataset=plain, split=_half_split(data),
                                     data_collator=sftmix.PadCollator(tok.pad_token_id))
    reference_batch = reference.data_collator([plain[int(i)] for i in batch["example_index"]])
    for key in ("input_ids", "labels", "attention_mask", "example_index"):
        assert torch.equal(batch[key], reference_batch[key]), key
    loss, grads = _step(ours, ours.model, batch)
    ref_loss, ref_grads = _step(reference, model, reference_batch)
    assert loss == pytest.approx(ref_loss, abs=1e-5)
    assert grads.keys() == ref_grads.keys()
    assert max(float((grads[n] - ref_grads[n]).abs().max()) for n in grads) < 1e-5
    if mixup_weight == 0.0:  # mu = 0: the NTP loss of the batch, as the model's own forward computes it
        with torch.no_grad():
            own = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        assert loss == pytest.approx(float(own.loss), abs=1e-5)
    else:
        assert ours._parts["mixup_tokens"] > 0  # the Mixup term was part of the loss


@pytest.mark.parametrize("id_column", ["example_id", "uid"])
def test_example_ids_survive_trl_column_handling(tmp_path, id_column):
    tok = T.tokenizer(generation_markers=True)
    data = T.messages_dataset(24)
    split = _half_split(data)
    if id_column != "example_id":
        data = data.rename_column("example_id", id_column)
    trainer = _trl_trainer(tmp_path, data, tok, T.model(tok), split=split, id_column=id_column,
                           assistant_only_loss=True, shuffle_dataset=True, remove_unused_columns=True)
    prepared = trainer.train_dataset
    seen = set()
    for batch in trainer.get_train_dataloader():
        assert set(batch) == {"input_ids", "labels", "attention_mask", "example_index"}
        rows = batch["example_index"].tolist()
        ids = [prepared[i]["example_id"] for i in rows]
        for k, row in enumerate(rows):  # the index names the row the tokens came from
            n = len(prepared[row]["input_ids"])
            assert batch["input_ids"][k, :n].tolist() == prepared[row]["input_ids"]
        assert set(ids[:4]) <= set(split["confident"]) and set(ids[4:]) <= set(split["unconfident"])
        seen.update(ids)
    assert seen == set(split["confident"]) | set(split["unconfident"])


def test_ntp_run_equals_plain_sft_trainer(tmp_path):
    tok = T.tokenizer()
    data = T.prompt_completion_dataset(24)
    base = T.model(tok)
    ours = _trl_trainer(tmp_path / "a", data, tok, copy.deepcopy(base), method="ntp", num_train_epochs=2)
    plain = trl.SFTTrainer(model=copy.deepcopy(base), args=trl.SFTConfig(**T.trl_args(tmp_path / "b",
                                                                                          num_train_epochs=2)),
                           train_dataset=data, processing_class=tok)
    ours.train()
    plain.train()
    losses = [h["loss"] for h in ours.state.log_history if "loss" in h]
    plain_losses = [h["loss"] for h in plain.state.log_history if "loss" in h]
    assert len(losses) == len(plain_losses) == 6
    assert losses == pytest.approx(plain_losses, abs=1e-5)
    # The two losses agree to float32 rounding (~1e-7 per step); AdamW divides each gradient by its running
    # RMS, so on near-zero gradients such rounding moves a weight by up to ~1e-5 after 6 steps at lr 3e-3
    # (measured 1.2e-5, with losses 4.8e-7 apart; the weights moved by up to 1.0e-2).
    params = dict(plain.model.named_parameters())
    assert max(float((p - params[n]).detach().abs().max()) for n, p in ours.model.named_parameters()) < 5e-5
    assert any(not torch.equal(p, q) for p, q in zip(ours.model.parameters(), base.parameters()))  # it trained


@pytest.mark.parametrize("config, match", [
    (dict(packing=True), "packing=False"),
    (dict(padding_free=True), "padding_free=False"),
    (dict(loss_type="dft"), "loss_type='dft'"),
    (dict(use_liger_kernel=True, liger_kernel_config={"fused_linear_cross_entropy": True}), "no hidden states"),
    (dict(label_smoothing_factor=0.1), "label smoothing"),
    (dict(mixup_alpha=0.0), "mixup_alpha must be > 0"),
    (dict(pairing="nearest"), "pairing='nearest' is not valid"),
])
def test_settings_that_train_something_else_are_refused(tmp_path, config, match):
    import sftmix

    with pytest.raises(ConfigError, match=match) as err:
        sftmix.SFTMixTRLConfig(**T.trl_args(tmp_path, **config))
    assert "\n" not in str(err.value)


def test_splits_that_do_not_fit_the_data_are_one_line_errors(tmp_path):
    tok = T.tokenizer()
    data = T.prompt_completion_dataset(16)
    split = _half_split(data)
    cases = [
        (data.remove_columns("example_id"), split, "no 'example_id' column"),  # no ids the split knows
        (data, {"confident": split["confident"], "unconfident": split["unconfident"][:-2]}, "in neither half"),
        (data.select(range(12)), split, "not in the training data"),  # a split made for more examples
    ]
    for dataset, bad, match in cases:
        with pytest.raises(SplitError, match=match) as err:
            _trl_trainer(tmp_path, dataset, tok, T.model(tok), split=bad)
        assert "\n" not in str(err.value)


def test_messages_run_trains_with_mixup_and_evaluates(tmp_path):
    import sftmix

    tok = T.tokenizer(generation_markers=True)
    model = T.model(tok)
    before = [p.detach().clone() for p in model.parameters()]
    data = T.messages_dataset(32)
    args = sftmix.SFTMixTRLConfig(**T.trl_args(tmp_path, assistant_only_loss=True, num_train_epochs=1,
                                               eval_strategy="epoch"))
    train = data.select(range(24))
    trainer = sftmix.SFTMixTRLTrainer(model=model, args=args, train_dataset=train, split=_half_split(train),
                                      eval_dataset=data.select(range(24, 32)), processing_class=tok)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all(h["mixup_loss"] > 0 and h["ntp_loss"] > 0 for h in logged)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert any(h.get("eval_loss", 0) > 0 for h in trainer.state.log_history)  # held-out NTP loss


def test_config_parses_from_the_command_line_as_trl_configs_do():
    import sftmix

    (config,) = trl.TrlParser(sftmix.SFTMixTRLConfig).parse_args_into_dataclasses(
        ["--output_dir", "out", "--split", "split.json", "--mixup_weight", "0.1", "--pairing", "random",
         "--use_cpu", "True"])
    assert (config.split_file, config.mixup_weight, config.pairing, config.method) == ("split.json", 0.1, "random",
                                                                                        "sftmix")
    assert config.gradient_checkpointing and config.learning_rate == 2e-5  # TRL's own defaults are kept
    with pytest.raises(ConfigError, match="loss_variant='nope'"):
        trl.TrlParser(sftmix.SFTMixTRLConfig).parse_args_into_dataclasses(["--output_dir", "o", "--use_cpu", "True",
                                                                          "--loss_variant", "nope"])
