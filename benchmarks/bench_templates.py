"""Which chat template a base model trains best with: held-out NLL after a short NTP run, per template.

One seed, the same data and settings for every template; only ``chat_template`` changes. The
held-out NLL is compared on the answers' *content* tokens (the same text under every template;
the end-of-turn token differs: eos for alpaca, ``<end_of_turn>`` for gemma), before and after
training. Writes ``benchmarks/results/templates_<model>.json``.

    flock /tmp/heavy.lock python benchmarks/bench_templates.py --model gemma3-270m \\
        --templates alpaca gemma --train_size 64 --held_out_size 32

A template may also be a Jinja file (``--templates alpaca my.jinja``). Instruction-following
yardsticks (MT-Bench answers, IFEval checks) are not measured here.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from sftmix.analysis.evaluate import evaluate_model
from sftmix.config import DataArguments, ModelArguments, SFTMixConfig
from sftmix.data import tokenize_examples
from sftmix.data.prepare import prepare_train_eval
from sftmix.models import load_model_and_tokenizer, load_tokenizer
from sftmix.train import train_model

RESULTS = Path(__file__).resolve().parent / "results"


def select_data(args):
    """The same examples for every template: first exchanges of <= max_length tokens under alpaca."""
    tokenizer = load_tokenizer(ModelArguments(model_name_or_path=args.model, chat_template="alpaca"))
    data = DataArguments(dataset=args.dataset, max_exchanges=1, max_length=args.max_length, drop_duplicates=True,
                         drop_overlong=True, held_out_size=args.held_out_size, train_size=args.train_size)
    return prepare_train_eval(data, tokenizer)


def measure(template: str, train, held_out, args) -> dict:
    start = time.time()
    model, tokenizer = load_model_and_tokenizer(ModelArguments(model_name_or_path=args.model, chat_template=template))
    room = 2 * args.max_length  # no answer is cut under a template with longer markers
    tokenized, report = tokenize_examples(train, tokenizer, max_length=room, return_report=True)
    assert report.truncated == 0 and len(tokenized) == len(train), report
    keys = ("nll", "content_nll", "n_tokens")
    before = evaluate_model(model, tokenizer, held_out, max_length=room, generate=False,
                            exact_match=False, progress=False, batch_size=8)
    with tempfile.TemporaryDirectory() as out:
        config = SFTMixConfig(output_dir=out, method="ntp", num_train_epochs=args.epochs, seed=0,
                              per_device_train_batch_size=8, learning_rate=args.learning_rate, logging_steps=4,
                              use_cpu=True, report_to=[], disable_tqdm=True)
        trainer = train_model(model, tokenizer, tokenized, config, save=False)
    after = evaluate_model(model, tokenizer, held_out, max_length=room, generate=False,
                           exact_match=False, progress=False, batch_size=8)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"template": template, "n_train": len(tokenized), "n_held_out": len(held_out),
            "train_tokens": int(sum(sum(1 for x in row if x != -100) for row in tokenized["labels"])),
            "before": {k: before[k] for k in keys}, "after": {k: after[k] for k in keys},
            "train_loss_first_last": [losses[0], losses[-1]] if losses else None,
            "seconds": round(time.time() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--templates", nargs="+", default=["alpaca", "gemma"])
    parser.add_argument("--dataset", default="sharegpt")
    parser.add_argument("--train_size", type=int, default=64)
    parser.add_argument("--held_out_size", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    train, held_out = select_data(args)
    out = Path(args.out) if args.out else RESULTS / f"templates_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    for template in args.templates:  # the file is rewritten after each template: a cut run keeps its rows
        rows.append(measure(template, train, held_out, args))
        print(json.dumps(rows[-1]), flush=True)
        result = {"model": args.model, "settings": vars(args), "runs": rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "note": "one seed; content_nll = mean NLL of the answers' content tokens (same text under every "
                          "template); nll adds the end-of-turn token"}
        out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
