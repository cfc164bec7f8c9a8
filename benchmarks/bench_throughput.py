"""CPU training throughput of the default demo: tokens per second and how much of a batch is padding.

For the demo's training set (``demo_config()``: the shipped tiny-base, the built-in suite)
this measures, over one epoch of the batches the trainer really draws,

* padding: real tokens / padded tokens and response tokens / padded tokens, for NTP's
  random batches and for SFTMix's paired batches (half confident, half unconfident; the
  split here is the demo's median split when a run directory is given, else a random one);
* speed: ``SFTMixTrainer`` steps (forward, backward, AdamW) per second for NTP and SFTMix,
  reported as padded tokens/s, real tokens/s and response tokens/s, and the time of one
  epoch (steps x seconds per step);

each with random batches (``train_sampling_strategy="random"``) and length-aware batches
(``"group_by_length"``: Trainer's LengthGroupedSampler for NTP, the paired sampler's
length windows for SFTMix), one after the other in one process on the same weights.

    python benchmarks/bench_throughput.py [--threads 2] [--steps 20] [--run runs/demo]
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import _common as C


def batch_stats(data, batches) -> dict:
    lengths = data["length"]
    response = [sum(1 for t in labels[1:] if t != -100) for labels in data["labels"]]
    padded = real = resp = 0
    for rows in batches:
        padded += len(rows) * max(lengths[i] for i in rows)
        real += sum(lengths[i] for i in rows)
        resp += sum(response[i] for i in rows)
    return {"batches": len(batches), "padded_tokens": padded, "real_tokens": real, "response_tokens": resp,
            "real_fraction": real / padded, "response_fraction": resp / padded, "padding_fraction": 1 - real / padded}


def epoch_batches(trainer, batch_size: int) -> list[list[int]]:
    sampler = trainer._get_train_sampler(trainer.train_dataset)  # noqa: SLF001 (the trainer's own order)
    order = list(iter(sampler))
    return [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def time_steps(trainer, batches, steps: int) -> float:
    import torch

    collate = trainer.data_collator
    model = trainer.model
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = trainer.train_dataset
    model.train()
    start = None
    for k, rows in enumerate(batches[: steps + 2]):
        if k == 2:
            start = time.perf_counter()  # two warm-up steps
        batch = collate([data[i] for i in rows])
        num_items = (batch["labels"][:, 1:] != -100).sum()
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items)
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / max(1, min(steps, len(batches) - 2))


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--run", default=None, help="a finished demo run directory: use its split.json")
    args = ap.parse_args()
    load_start = C.load_avg()
    torch = C.setup_torch(args.threads)
    import datasets
    import transformers

    from sftmix.config import ModelArguments, SFTMixConfig
    from sftmix.data import PadCollator, load_train_eval, tokenize_examples
    from sftmix.models import load_model_and_tokenizer
    from sftmix.pipeline.experiment import demo_config
    from sftmix.train.trainer import SFTMixTrainer

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    config = demo_config()
    data_args = config.data_args()
    if args.smoke:
        data_args.n_train, args.steps = 128, 2
    train, _ = load_train_eval(data_args)
    model, tok = load_model_and_tokenizer(ModelArguments(model_name_or_path="tiny-base"))
    data = tokenize_examples(train, tok, max_length=data_args.max_length)
    bs = config.training.get("per_device_train_batch_size", 32)
    if args.run and (Path(args.run) / "split.json").exists():
        split = json.loads((Path(args.run) / "split.json").read_text())
        split_source = str(Path(args.run) / "split.json")
    else:
        ids = data["example_id"]
        split = {"confident": ids[::2], "unconfident": ids[1::2]}
        split_source = "alternate rows (no run given)"
    results = {}
    with tempfile.TemporaryDirectory() as out:
        for method, sampling in [(m, s) for m in ("ntp", "sftmix") for s in ("random", "group_by_length")]:
            kw = dict(split_file="<in memory>") if method == "sftmix" else {}
            targs = SFTMixConfig(output_dir=out, per_device_train_batch_size=bs, use_cpu=True, disable_tqdm=True,
                                 report_to="none", seed=0, method=method, train_sampling_strategy=sampling, **kw)
            trainer = SFTMixTrainer(model=model, args=targs, train_dataset=data,
                                    data_collator=PadCollator(tok.pad_token_id),
                                    split=split if method == "sftmix" else None)
            batches = epoch_batches(trainer, bs)
            stats = batch_stats(data, batches)
            seconds = time_steps(trainer, batches, args.steps)
            per_batch = {k: stats[k] / stats["batches"] for k in ("padded_tokens", "real_tokens", "response_tokens")}
            speeds = {f"{k.replace('_tokens', '')}_tokens_per_s": v / seconds for k, v in per_batch.items()}
            results[f"{method}/{sampling}"] = {**stats, "seconds_per_step": seconds, **speeds,
                                              "epoch_seconds": seconds * stats["batches"]}
    rows = [{"method/batches": m, "padding": f"{r['padding_fraction']:.1%}",
             "response/padded": f"{r['response_fraction']:.1%}",
             "s/step": f"{r['seconds_per_step']:.3f}", "padded tok/s": f"{r['padded_tokens_per_s']:.0f}",
             "real tok/s": f"{r['real_tokens_per_s']:.0f}", "response tok/s": f"{r['response_tokens_per_s']:.0f}",
             "epoch s": f"{r['epoch_seconds']:.0f}"}
            for m, r in results.items()]
    print(C.table(rows, list(rows[0])))
    C.write_result("bench_throughput", args, {"threads": args.threads, "batch_size": bs, "split": split_source,
                                              "n_train": len(data), "results": results,
                                              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}, load_start)
    del torch


if __name__ == "__main__":
    main()
