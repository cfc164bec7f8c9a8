"""NTP and SFTMix training on tiny models: losses, gradients, batching and errors."""

import copy

import pytest
import torch

from sftmix.config import SFTMixConfig
from sftmix.data import PadCollator, tokenize_examples
from sftmix.dynamics.split import SplitError, split_groups
from sftmix.errors import ConfigError
from sftmix.loss.head import forward_hidden, output_head, verify_output_head
from sftmix.loss.mixup import mixup_loss
from sftmix.toy import FAMILIES, build_tiny_model
from sftmix.train.sampler import PairedSampler
from sftmix.train.trainer import SFTMixTrainer


@pytest.fixture(scope="module")
def tokenized(suite_examples, tokenizer):
    return tokenize_examples(suite_examples[0].select(range(64)), tokenizer, max_length=128)


def half_split(ids):
    ids = list(ids)
    return {"confident": ids[: len(ids) // 2], "unconfident": ids[len(ids) // 2:]}


def make_trainer(model, tokenizer, data, tmp_path, split=None, **kw):
    defaults = dict(output_dir=str(tmp_path), per_device_train_batch_size=8, num_train_epochs=1, use_cpu=True,
                    disable_tqdm=True, logging_steps=1, learning_rate=3e-3, seed=0, warmup_ratio=0.0)
    if split is not None:
        defaults.update(method="sftmix")  # the split is passed in memory: no split_file
    cfg = SFTMixConfig(**{**defaults, **kw})
    return SFTMixTrainer(model=model, args=cfg, train_dataset=data, split=split,
                         data_collator=PadCollator(tokenizer.pad_token_id))


@pytest.mark.parametrize("family", FAMILIES)
def test_head_matches_model_and_lambda_one_is_ntp(family, tokenizer, tokenized):
    """lambda = 1 gives the model's own NTP loss on the 'a' examples (catches skipped soft-capping)."""
    model = build_tiny_model(family, tokenizer=tokenizer, hidden_size=32, num_heads=2).eval()
    batch = PadCollator(tokenizer.pad_token_id)([tokenized[i] for i in range(4)])
    verify_output_head(model, batch["input_ids"][:1])
    a, b = [0, 1], [2, 3]
    # Give the 'b' partners long responses so every response token of 'a' is aligned.
    labels_b = batch["labels"][b].clone()
    labels_b[:, 1:] = torch.where(batch["attention_mask"][b, 1:].bool(), batch["input_ids"][b, 1:], -100)
    with torch.no_grad():
        hidden = forward_hidden(model, batch["input_ids"], batch["attention_mask"])
        mix = mixup_loss(hidden[a], batch["labels"][a], hidden[b], labels_b, torch.ones(2), output_head(model))
        own = [model(input_ids=batch["input_ids"][i:i + 1], attention_mask=batch["attention_mask"][i:i + 1],
                     labels=batch["labels"][i:i + 1]).loss for i in a]
    n = [(batch["labels"][i, 1:] != -100).sum() for i in a]
    expected = sum(l * k for l, k in zip(own, n)) / sum(n)
    assert torch.allclose(mix.loss_sum / mix.num_positions, expected, atol=1e-4)


def test_unknown_logit_postprocessing_is_caught(tokenizer):
    model = build_tiny_model("gemma2", tokenizer=tokenizer, hidden_size=32, num_heads=2)
    model.config.final_logit_softcapping = 0.5  # a strong cap, so skipping it shows
    x = torch.randint(8, 90, (1, 10))
    verify_output_head(model, x)
    head_cls = type(output_head(model))
    import sftmix.loss.head as head_mod
    orig = head_mod.output_head
    try:  # simulate a head description that forgets the soft-cap
        head_mod.output_head = lambda m: head_cls(weight=m.get_output_embeddings().weight)
        with pytest.raises(ValueError, match="post-processing"):
            verify_output_head(model, x)
    finally:
        head_mod.output_head = orig


def test_trainer_checks_the_output_head_before_training(tokenizer, tokenized, tmp_path, monkeypatch):
    model = build_tiny_model("gemma2", tokenizer=tokenizer, hidden_size=32, num_heads=2)
    model.config.final_logit_softcapping = 0.5
    make_trainer(model, tokenizer, tokenized, tmp_path)  # the right head: no error
    import sftmix.loss.head as head_mod
    head_cls = type(output_head(model))
    # A head description that forgets the soft-cap fails when the trainer is built, not after training.
    monkeypatch.setattr(head_mod, "output_head", lambda m: head_cls(weight=m.get_output_embeddings().weight))
    with pytest.raises(ValueError, match="post-processing"):
        make_trainer(model, tokenizer, tokenized, tmp_path)


def test_ntp_training_logs_changes_params_and_lowers_nll(tokenizer, suite_examples, tmp_path):
    from sftmix.analysis.evaluate import evaluate_model

    train, test = suite_examples
    data = tokenize_examples(train, tokenizer, max_length=128)
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2)
    before = evaluate_model(model, tokenizer, test, generate=False, progress=False)["nll"]
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = make_trainer(model, tokenizer, data, tmp_path, num_train_epochs=3, logging_steps=5)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs and all("ntp_loss" in h for h in logs) and "mixup_loss" not in logs[0]
    assert logs[-1]["loss"] < logs[0]["loss"]
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, start[n])]
    assert not unchanged
    after = evaluate_model(model, tokenizer, test, generate=False, progress=False)["nll"]
    assert after < before - 0.3


def test_sftmix_trains_and_logs_both_parts(tokenizer, tokenized, tmp_path):
    model = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = make_trainer(model, tokenizer, tokenized, tmp_path, split=half_split(tokenized["example_id"]),
                           num_train_epochs=3)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert all("ntp_loss" in h and "mixup_loss" in h for h in logs)
    assert logs[-1]["loss"] < logs[0]["loss"]
    # total = NTP + 0.2 * Mixup (logged parts are token means over the logging window)
    assert all(abs(h["loss"] - (h["ntp_loss"] + 0.2 * h["mixup_loss"])) < 0.05 * h["loss"] for h in logs)
    assert all(not torch.equal(p, start[n]) for n, p in model.named_parameters())


def _grads(trainer, batch, num_items=None):
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=num_items)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in trainer.model.named_parameters()}


def test_mixup_weight_zero_equals_ntp(tokenizer, tokenized, tmp_path):
    base = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2)
    batch = PadCollator(tokenizer.pad_token_id)([tokenized[i] for i in range(8)])
    ntp = make_trainer(copy.deepcopy(base), tokenizer, tokenized, tmp_path / "a")
    mix = make_trainer(copy.deepcopy(base), tokenizer, tokenized, tmp_path / "b",
                       split=half_split(tokenized["example_id"]), mixup_weight=0.0)
    l1, g1 = _grads(ntp, batch)
    l2, g2 = _grads(mix, batch)
    assert torch.allclose(l1, l2)
    assert all(torch.allclose(g1[n], g2[n], atol=1e-7) for n in g1)
    hf = base(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}).loss
    assert torch.allclose(l1, hf, atol=1e-5)   # our fused NTP equals the model's own loss


@pytest.mark.parametrize("method", ["ntp", "sftmix"])
def test_gradient_accumulation_invariance(tokenizer, tokenized, tmp_path, method):
    """Two micro-batches of 4 accumulate to the same update as one batch of 8."""
    split = half_split(tokenized["example_id"]) if method == "sftmix" else None
    rows = [0, 1, 32, 33, 2, 3, 34, 35]  # two paired micro-batches: [c, c, u, u] each
    base = build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2)
    collate = PadCollator(tokenizer.pad_token_id)
    micro = [collate([tokenized[i] for i in rows[:4]]), collate([tokenized[i] for i in rows[4:]])]
    whole = collate([tokenized[i] for i in rows[:2] + rows[4:6] + rows[2:4] + rows[6:]])
    big = make_trainer(copy.deepcopy(base), tokenizer, tokenized, tmp_path / "big", split=split,
                       per_device_train_batch_size=8)
    small = make_trainer(copy.deepcopy(base), tokenizer, tokenized, tmp_path / "small", split=split,
                         per_device_train_batch_size=4, gradient_accumulation_steps=2)
    big.model.train(), small.model.train()
    _, num = big.get_batch_samples(iter([whole]), 1, "cpu")
    _, g_big = _grads(big, whole, num)
    _, num = small.get_batch_samples(iter(micro), 2, "cpu")
    small.model.zero_grad()
    for m in micro:
        small.compute_loss(small.model, dict(m), num_items_in_batch=num).backward()
    for n, p in small.model.named_parameters():
        assert torch.allclose(p.grad, g_big[n], atol=1e-6, rtol=1e-4), n


def test_paired_sampler_balance_and_coverage():
    conf, unconf = list(range(0, 10)), list(range(10, 16))      # unequal halves: 10 vs 6
    sampler = PairedSampler(conf, unconf, batch_size=4, seed=0)
    epochs = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert len(order) == len(sampler) == 16
        for k in range(0, len(order), 4):
            assert set(order[k:k + 2]) <= set(conf) and set(order[k + 2:k + 4]) <= set(unconf)
        assert set(unconf) <= set(order)            # every example of the smaller half, each epoch
        epochs.append(order)
    assert epochs[0] != epochs[1]                   # re-paired each epoch
    sampler.set_epoch(0)
    assert list(sampler) == epochs[0]               # deterministic per epoch


def test_length_grouped_paired_sampler_keeps_halves_and_cuts_padding():
    gen = torch.Generator().manual_seed(1)
    lengths = torch.randint(5, 120, (400,), generator=gen).tolist()
    conf, unconf = list(range(0, 200)), list(range(200, 400))
    plain = PairedSampler(conf, unconf, batch_size=8, seed=3)
    grouped = PairedSampler(conf, unconf, batch_size=8, seed=3, lengths=lengths, window=10)

    def padded(order):
        return sum(8 * max(lengths[i] for i in order[k:k + 8]) for k in range(0, len(order), 8))

    for epoch in range(2):
        plain.set_epoch(epoch)
        grouped.set_epoch(epoch)
        a, b = list(plain), list(grouped)
        assert sorted(a) == sorted(b)               # the same examples, only regrouped
        for k in range(0, len(b), 8):               # each batch is still [confident | unconfident]
            assert set(b[k:k + 4]) <= set(conf) and set(b[k + 4:k + 8]) <= set(unconf)
        assert padded(b) < 0.8 * padded(a)          # uniform lengths 5..120: much less padding
    grouped.set_epoch(1)
    assert list(grouped) == b                       # deterministic per epoch
    with pytest.raises(ValueError, match="window"):
        PairedSampler(conf, unconf, batch_size=8, lengths=lengths, window=0)


def test_length_window_sampler_covers_every_row_once_with_less_padding():
    from sftmix.train.sampler import LengthWindowSampler

    lengths = torch.randint(5, 120, (203,), generator=torch.Generator().manual_seed(2)).tolist()
    sampler = LengthWindowSampler(lengths, batch_size=8, window=4, seed=1)
    orders = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert sorted(order) == list(range(203)) and len(sampler) == 203
        orders.append(order)
    assert orders[0] != orders[1]
    # Batches are consecutive runs of 8 in the order; each is cut from one sorted window.
    padded = sum(len(order[k:k + 8]) * max(lengths[i] for i in order[k:k + 8]) for k in range(0, 203, 8))
    random_padded = sum(8 * max(lengths[i] for i in range(k, min(k + 8, 203))) for k in range(0, 203, 8))
    assert padded < 0.85 * random_padded


def test_group_by_length_reaches_the_paired_batches(tokenizer, tokenized, tmp_path):
    split = half_split(tokenized["example_id"])
    trainer = make_trainer(build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2),
                           tokenizer, tokenized, tmp_path, split=split, train_sampling_strategy="group_by_length")
    sampler = trainer._get_train_sampler()
    assert sampler.lengths == list(tokenized["length"]) and sampler.window == 8
    conf = set(range(32))
    for batch in trainer.get_train_dataloader():
        idx = batch["example_index"].tolist()
        assert all(i in conf for i in idx[:4]) and not any(i in conf for i in idx[4:])
    ntp = make_trainer(trainer.model, tokenizer, tokenized, tmp_path, train_sampling_strategy="group_by_length",
                       length_window=2)
    assert type(ntp._get_train_sampler()).__name__ == "LengthWindowSampler"
    as_list = [tokenized[i] for i in range(len(tokenized))]      # a plain sequence of rows: lengths from input_ids
    assert ntp._get_train_sampler(as_list).lengths == list(tokenized["length"])
    assert sorted(i for b in ntp.get_train_dataloader() for i in b["example_index"].tolist()) == list(range(64))
    with pytest.raises(ValueError, match="train_sampling_strategy"):
        SFTMixConfig(output_dir=str(tmp_path), method="sftmix", split_file="s.json",
                     train_sampling_strategy="batch_rebalance")
    with pytest.raises(ValueError, match="length_window"):
        SFTMixConfig(output_dir=str(tmp_path), length_window=0)


def test_trainer_batches_are_balanced(tokenizer, tokenized, tmp_path):
    split = half_split(tokenized["example_id"])
    trainer = make_trainer(build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2),
                           tokenizer, tokenized, tmp_path, split=split)
    conf = set(range(32))
    for batch in trainer.get_train_dataloader():
        idx = batch["example_index"].tolist()
        assert all(i in conf for i in idx[:4]) and not any(i in conf for i in idx[4:])


def test_bad_settings_raise_clear_errors(tokenizer, tokenized, tmp_path):
    with pytest.raises(ValueError, match="mixup_alpha must be > 0"):
        SFTMixConfig(output_dir=str(tmp_path), mixup_alpha=0)
    with pytest.raises(ValueError, match="mixup_weight must be >= 0"):
        SFTMixConfig(output_dir=str(tmp_path), mixup_weight=-1)
    with pytest.raises(ConfigError, match="needs a split"):  # neither split_file nor an in-memory split
        make_trainer(build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2), tokenizer,
                     tokenized, tmp_path, method="sftmix")
    with pytest.raises(ValueError, match="must be even"):
        SFTMixConfig(output_dir=str(tmp_path), method="sftmix", split_file="s.json", per_device_train_batch_size=3)
    with pytest.raises(ValueError, match="pairing="):
        SFTMixConfig(output_dir=str(tmp_path), pairing="sideways")
    ids = list(tokenized["example_id"])
    with pytest.raises(SplitError, match="in neither half"):
        split_groups({"confident": ids[:10], "unconfident": ids[10:20]}, ids)
    with pytest.raises(SplitError, match="not in the training data"):
        split_groups({"confident": ids[:32] + ["ghost"], "unconfident": ids[32:]}, ids)


@pytest.mark.parametrize("pairing", ["random", "confident_confident", "unconfident_unconfident", "length_matched"])
def test_pairing_ablations_train(tokenizer, tokenized, tmp_path, pairing):
    trainer = make_trainer(build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2),
                           tokenizer, tokenized, tmp_path, split=half_split(tokenized["example_id"]),
                           pairing=pairing, max_steps=3)
    trainer.train()
    assert any("mixup_loss" in h for h in trainer.state.log_history)


@pytest.mark.parametrize("variant", ["equal", "mixup_only"])
def test_loss_variants(tokenizer, tokenized, tmp_path, variant):
    trainer = make_trainer(build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2),
                           tokenizer, tokenized, tmp_path, split=half_split(tokenized["example_id"]),
                           loss_variant=variant, max_steps=2)
    trainer.train()
    h = [h for h in trainer.state.log_history if "loss" in h][0]
    expected = 0.5 * h["ntp_loss"] + 0.5 * h["mixup_loss"] if variant == "equal" else h["mixup_loss"]
    assert abs(h["loss"] - expected) < 1e-3 * max(1.0, h["loss"])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_trains_with_sftmix(family, tokenizer, tokenized, tmp_path):
    model = build_tiny_model(family, tokenizer=tokenizer, hidden_size=32, num_heads=2)
    trainer = make_trainer(model, tokenizer, tokenized, tmp_path, split=half_split(tokenized["example_id"]),
                           max_steps=4, learning_rate=1e-2)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in logs) and logs[-1]["loss"] < logs[0]["loss"]


def test_gradient_checkpointing_and_lora(tokenizer, tokenized, tmp_path):
    from sftmix.config import ModelArguments
    from sftmix.models import add_lora

    model = add_lora(build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2),
                     ModelArguments(lora_r=4))
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainer = make_trainer(model, tokenizer, tokenized, tmp_path, split=half_split(tokenized["example_id"]),
                           max_steps=3, gradient_checkpointing=True)
    trainer.train()
    params = dict(model.named_parameters())
    assert lora and all("lora" in n for n in lora)
    assert any(not torch.equal(params[n], v) for n, v in lora.items() if "lora_B" in n)
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
