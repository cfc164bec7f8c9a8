"""From a TRL script to an SFTMix script: a reference run writes the data map, then SFTMix trains on it.

    python examples/trl_sftmix.py --model HuggingFaceTB/SmolLM2-135M --dataset trl-lib/Capybara --out runs/capybara
    python examples/trl_sftmix.py --tiny --out /tmp/trl_sftmix     # offline, seconds on a CPU (CI runs this)

Both runs start from the same base weights. ``<out>/dynamics.parquet`` and ``<out>/split.json`` are sftmix's
own files: ``sftmix figures <out> --out <out>/figures`` draws the data map, and the notebooks open it.
"""

import argparse

from trl import SFTConfig, SFTTrainer

import sftmix


def main(argv=None):
    args = parse(argv)
    load_model, tokenizer, data = (tiny if args.tiny else hub)(args)  # your model, tokenizer, dataset
    data = sftmix.with_example_ids(data)  # row numbers as example ids: they ride through TRL's preparation
    common = dict(num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size, report_to="none",
                  **(CPU if args.tiny else {}))

    # 1. The reference run: plain SFTTrainer; the callback scores every example at each epoch end.
    reference = SFTTrainer(model=load_model(), args=SFTConfig(f"{args.out}/reference", **common),
                           train_dataset=data, processing_class=tokenizer)
    reference.add_callback(sftmix.DynamicsCallback(args.out, reference.train_dataset))
    reference.train()

    # 2. SFTMix from the same base: confident/unconfident pairs mixed on the last hidden states.
    config = sftmix.SFTMixTRLConfig(f"{args.out}/sftmix", split_file=f"{args.out}/split.json",
                                    mixup_alpha=0.5, mixup_weight=0.2, **common)
    trainer = sftmix.SFTMixTRLTrainer(model=load_model(), args=config, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    trainer.save_model()
    last = [h for h in trainer.state.log_history if "mixup_loss" in h][-1]
    print(f"SFTMix: step {last['step']}, ntp_loss {last['ntp_loss']:.4f}, mixup_loss {last['mixup_loss']:.4f}; "
          f"data map in {args.out}")


# ---------------------------------------------------------------- where model and data come from
#: A CPU run: float32 and no gradient checkpointing (TRL's defaults, bf16 and checkpointing, are for GPUs).
CPU = dict(bf16=False, gradient_checkpointing=False, use_cpu=True, learning_rate=3e-3, logging_steps=1)


def hub(args):
    """A Hub model and dataset (any TRL dataset form: messages, prompt-completion, text)."""
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = datasets.load_dataset(args.dataset, split="train")
    if args.max_examples:
        data = data.select(range(min(args.max_examples, len(data))))
    return lambda: AutoModelForCausalLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model), data


def tiny(args):
    """sftmix's offline tiny model and character tokenizer on its built-in tasks, as TRL prompt-completion chats."""
    import datasets

    from sftmix.data import load_examples
    from sftmix.toy import build_tiny_model, build_toy_tokenizer

    tokenizer = build_toy_tokenizer()
    suite = load_examples("builtin", split="train", n_train=args.max_examples or 32, n_test=0, seed=0)
    data = datasets.Dataset.from_dict({
        "prompt": suite["messages"], "completion": [[{"role": "assistant", "content": r}] for r in suite["response"]],
        "task": suite["task"]})
    return lambda: build_tiny_model("llama", tokenizer=tokenizer, hidden_size=32, num_heads=2), tokenizer, data


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M")
    ap.add_argument("--dataset", default="trl-lib/Capybara")
    ap.add_argument("--tiny", action="store_true", help="sftmix's offline tiny model and built-in tasks")
    ap.add_argument("--out", default="runs/trl_sftmix")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--batch-size", type=int, default=8, help="even: each batch is half confident, half not")
    ap.add_argument("--max-examples", type=int, default=None)
    return ap.parse_args(argv)


if __name__ == "__main__":
    main()
