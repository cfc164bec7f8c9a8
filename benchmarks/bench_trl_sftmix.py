"""SFTMix inside TRL: ``SFTMixTRLTrainer``'s step time over plain ``trl.SFTTrainer``'s on the same batches.

Both trainers get the same model (one instance, see ``measure``) and the same
prepared data (TRL's own preparation of a conversational prompt-completion dataset, completion-only
loss). The batch is the first paired batch of ``SFTMixTRLTrainer``'s sampler (half confident,
half unconfident examples of a split that pairs the first half of the data with the second);
plain ``SFTTrainer`` collates the same rows with its own collator (checked: same ``input_ids``
and ``labels``). Step times are interleaved in one process (A B C, C B A, ...; median of the
paired ratios, see ``_common.py``).

A step is each trainer's own ``training_step(model, batch, num_items_in_batch)`` (forward,
loss, backward) then ``zero_grad``; the optimizer update (the same AdamW for all) is left out, as
in ``bench_peer.py``. bf16 and gradient checkpointing (TRL's GPU defaults) are off: fp32 on CPU.

Variants: ``trl`` (plain ``SFTTrainer``, its fused LM head and per-step metrics), ``trl_sftmix``
(``SFTMixTRLTrainer``, method="sftmix": NTP + 0.2 x Mixup), ``trl_ntp`` (``SFTMixTRLTrainer``,
method="ntp": sftmix's NTP loss alone, which isolates the Mixup cost from the two NTP heads).
Also recorded: the NTP loss and gradients of ``trl_ntp`` against plain ``SFTTrainer`` on the batch.

Settings: ``tiny`` (sftmix's tiny Llama, d64, character vocabulary, 32 suite examples, batch 16) and
``smollm2-135m`` (SmolLM2-135M-Instruct, ChatML, 16 ShareGPT first exchanges of <= 128 tokens, batch 8;
needs the real-model artefacts; run it under ``flock /tmp/heavy.lock``).

    python benchmarks/bench_trl_sftmix.py                      # both settings, ~4 min on 1 thread
    python benchmarks/bench_trl_sftmix.py --only tiny --smoke --out /tmp/trl.json
"""
from __future__ import annotations

import sys
import tempfile

import _common as C

sys.path.insert(0, str(C.ROOT))  # measure the checkout this file lives in

VARIANTS = ("trl", "trl_sftmix", "trl_ntp")


def settings(smoke: bool) -> dict:
    if smoke:
        return {"tiny": dict(model="tiny", hidden=32, n=16, batch=8, length=128, rounds=2)}
    return {"tiny": dict(model="tiny", hidden=64, n=32, batch=16, length=128, rounds=20),
            "smollm2-135m": dict(model="smollm2-135m", n=16, batch=8, length=128, rounds=4)}


def build(spec: dict):
    """(tokenizer, base model, TRL prompt-completion dataset with example ids)."""
    import datasets

    import sftmix

    datasets.disable_progress_bars()
    if spec["model"] == "smollm2-135m":
        from sftmix.config import ModelArguments
        from sftmix.models import load_model, load_tokenizer

        args = ModelArguments(model_name_or_path="smollm2-135m")
        tok, model = load_tokenizer(args), load_model(args)
        examples = C.sharegpt_first_exchanges(spec["n"], tok, spec["length"])
    else:
        tok = sftmix.build_toy_tokenizer()
        model = sftmix.build_tiny_model("llama", tokenizer=tok, hidden_size=spec["hidden"])
        examples = sftmix.load_examples("builtin", split="train", n_train=spec["n"], n_test=0, seed=0)
    data = datasets.Dataset.from_dict({
        "prompt": examples["messages"],
        "completion": [[{"role": "assistant", "content": r}] for r in examples["response"]],
        "example_id": [str(e) for e in examples["example_id"]]})
    return tok, model.train(), data


def make_trainer(variant: str, model, data, tok, batch_size: int):
    import trl

    import sftmix

    common = dict(output_dir=tempfile.mkdtemp(prefix="bench_trl_sftmix_"), per_device_train_batch_size=batch_size,
                  use_cpu=True, disable_tqdm=True, report_to="none", seed=0, save_strategy="no", bf16=False,
                  gradient_checkpointing=False, logging_strategy="no", max_length=None)
    if variant == "trl":
        trainer = trl.SFTTrainer(model=model, args=trl.SFTConfig(**common), train_dataset=data, processing_class=tok)
    else:
        ids = list(data["example_id"])
        split = {"confident": ids[: len(ids) // 2], "unconfident": ids[len(ids) // 2:]}
        config = sftmix.SFTMixTRLConfig(**common, method="sftmix" if variant == "trl_sftmix" else "ntp")
        trainer = sftmix.SFTMixTRLTrainer(model=model, args=config, train_dataset=data, processing_class=tok,
                                          split=split)
    trainer.current_gradient_accumulation_steps = 1  # set by train(); training_step reads it
    return trainer


def step_fn(trainer, model, batch: dict, num_items):
    def step():
        loss = trainer.training_step(model, dict(batch), num_items)
        model.zero_grad(set_to_none=True)
        return loss
    return step


def loss_and_grads(trainer, model, batch, num_items):
    model.zero_grad(set_to_none=True)
    loss = float(trainer.training_step(model, dict(batch), num_items))
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return loss, grads


def measure(name: str, spec: dict) -> dict:
    import torch

    tok, base, data = build(spec)
    # One model for the three trainers (as bench_peer.py shares one between sftmix's): the weights never change
    # (no optimizer update) and each step drops its gradients. Each trainer's TRL __init__ wraps model.forward
    # again; without fused_lm_head=True every wrapper falls through to the model's own forward.
    models = dict.fromkeys(VARIANTS, base)
    trainers = {v: make_trainer(v, models[v], data, tok, spec["batch"]) for v in VARIANTS}
    paired = next(iter(trainers["trl_sftmix"].get_train_dataloader()))  # rows: confident half, unconfident half
    rows = paired["example_index"].tolist()
    plain = trainers["trl"]
    batch = plain.data_collator([plain.train_dataset[i] for i in rows])
    same = all(torch.equal(batch[k], paired[k]) for k in ("input_ids", "labels", "attention_mask"))
    num_items = (batch["labels"][:, 1:] != -100).sum()
    inputs = {"trl": batch, "trl_sftmix": paired, "trl_ntp": paired}
    b, t = batch["input_ids"].shape
    info = {"setting": name, **spec, "batch_shape": [b, t], "n_response_tokens": int(num_items),
            "n_params": sum(p.numel() for p in base.parameters()), "same_batch_as_trl_collator": same}
    loss_trl, g_trl = loss_and_grads(plain, models["trl"], batch, num_items)
    loss_ntp, g_ntp = loss_and_grads(trainers["trl_ntp"], models["trl_ntp"], paired, num_items)
    info.update(loss_trl=loss_trl, loss_trl_ntp=loss_ntp, loss_abs_diff_ntp_vs_trl=abs(loss_trl - loss_ntp),
                grad_max_abs_diff_ntp_vs_trl=max(float((g_trl[n] - g_ntp[n]).abs().max()) for n in g_trl),
                grad_max_abs=max(float(g.abs().max()) for g in g_trl.values()))
    print(f"   {name}: batch {b}x{t}, {int(num_items)} response tokens; NTP loss {loss_ntp:.6f} vs TRL "
          f"{loss_trl:.6f}, max |grad diff| {info['grad_max_abs_diff_ntp_vs_trl']:.2e}", flush=True)
    fns = {v: step_fn(trainers[v], models[v], inputs[v], num_items) for v in VARIANTS}
    times = C.interleave(fns, repeats=spec["rounds"], warmup=1)
    info["time"] = {"trl_sftmix/trl": C.summarize(times, "trl", "trl_sftmix"),
                    "trl_ntp/trl": C.summarize(times, "trl", "trl_ntp"),
                    "trl_sftmix/trl_ntp": C.summarize(times, "trl_ntp", "trl_sftmix")}
    info["median_ms"] = {v: 1e3 * sorted(ts)[len(ts) // 2] for v, ts in times.items()}
    info["times_s"] = times
    return info


def main(argv=None) -> int:
    ap = C.parser(__doc__)
    ap.add_argument("--only", default=None, help="comma-separated settings (tiny, smollm2-135m)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch = C.setup_torch(args.threads)
    import transformers
    import trl

    load0 = C.load_avg()
    chosen = settings(args.smoke)
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    rows = []
    for name, spec in chosen.items():
        print(f"== {name}", flush=True)
        rows.append(measure(name, spec))
    cols = ["setting", "batch", "sftmix/trl", "IQR", "ntp/trl", "sftmix/ntp", "ms trl", "ms sftmix", "grad diff"]
    table = [{"setting": r["setting"], "batch": f"{r['batch_shape'][0]}x{r['batch_shape'][1]}",
              "sftmix/trl": r["time"]["trl_sftmix/trl"]["ratio_median_paired"],
              "IQR": f"{r['time']['trl_sftmix/trl']['ratio_q1']:.3f}-{r['time']['trl_sftmix/trl']['ratio_q3']:.3f}",
              "ntp/trl": r["time"]["trl_ntp/trl"]["ratio_median_paired"],
              "sftmix/ntp": r["time"]["trl_sftmix/trl_ntp"]["ratio_median_paired"],
              "ms trl": r["median_ms"]["trl"], "ms sftmix": r["median_ms"]["trl_sftmix"],
              "grad diff": f"{r['grad_max_abs_diff_ntp_vs_trl']:.1e}"} for r in rows]
    print(C.table(table, cols))
    C.write_result("bench_trl_sftmix", args, {
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "step": "Trainer.training_step(model, batch, num_items_in_batch) + zero_grad; no optimizer update",
        "results": rows}, load0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
