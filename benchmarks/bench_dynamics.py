"""Training-dynamics costs: checkpoint-scoring throughput and online-recording overhead.

1. ``score_model`` (what ``score_checkpoints`` runs per checkpoint: collation from the
   dataset, one forward, chunked head + CE over response tokens, per-example sums) vs a
   bare ``torch.inference_mode()`` forward ``model(input_ids, attention_mask)`` over the
   same length-sorted batches, collated beforehand (the model alone). Target >= 0.9x.
   Also shown: the bare forward with the batches fetched and padded inside the loop.
2. A training step (``compute_loss`` + ``backward``, NTP as in the reference run) with a
   ``DynamicsRecorder`` attached vs without. Target <= 3 % more time. The step excludes
   the optimizer update, so the overhead is a conservative (upper) estimate.

``--real`` measures (1) on the real SmolLM2-135M-Instruct (``smollm2-135m``, V = 49,152, tied
head) over 64 ShareGPT first exchanges of <= 128 tokens, and writes ``bench_dynamics_smollm2``.
Its bare forward computes the logits of every position (as ``model(...)`` does); scoring
computes them only for the response tokens.
"""
from __future__ import annotations

import tempfile
import time

import _common as C


def bare_batches(tokenized, batch_size: int):
    from sftmix.data import PadCollator
    from sftmix.dynamics.scoring import length_sorted_shard

    rows = length_sorted_shard(tokenized, 0, 1)
    columns, collate, out = tokenized.select_columns(["input_ids", "labels"]), PadCollator(0), []
    for s in range(0, len(rows), batch_size):
        chunk = columns[[int(i) for i in rows[s:s + batch_size]]]  # one batched read, as score_model does
        out.append(collate([{"input_ids": a, "labels": b} for a, b in zip(chunk["input_ids"], chunk["labels"])]))
    return out


def scoring(name, model, data, batch_size: int, rounds: int) -> dict:
    import torch

    from sftmix.dynamics.scoring import score_model

    model.eval()
    batches = bare_batches(data, batch_size)

    def bare():
        with torch.inference_mode():
            for b in batches:
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])

    def bare_collating():  # the same, but fetching and padding the batches from the dataset as well
        with torch.inference_mode():
            for b in bare_batches(data, batch_size):
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])

    def score():
        score_model(model, data, batch_size=batch_size, progress=False)

    times = C.interleave({"bare_forward": bare, "score_model": score, "bare_collating": bare_collating},
                         repeats=rounds, warmup=1)
    s = C.summarize(times, "bare_forward", "score_model")
    s2 = C.summarize(times, "bare_collating", "score_model")
    n = len(data)
    return {"setting": name, "examples": n, "batch_size": batch_size,
            "bare_examples_per_s": n / s["bare_forward_median_s"],
            "score_examples_per_s": n / s["score_model_median_s"],
            "throughput_ratio": 1 / s["ratio_median_paired"], **s,
            "bare_collating_examples_per_s": n / s2["bare_collating_median_s"],
            "throughput_ratio_vs_bare_collating": 1 / s2["ratio_median_paired"]}


def recording(name, model, data, batch_size: int, rounds: int) -> dict:
    from sftmix.dynamics.scoring import response_sums
    from sftmix.train.callbacks import DynamicsRecorder

    model.train()
    tmp = tempfile.mkdtemp(prefix="bench_dyn_")
    rec = DynamicsRecorder(None, example_ids=data["example_id"])
    plain = C.make_trainer(model, data, "ntp", batch_size=batch_size, out_dir=tmp)
    recorded = C.make_trainer(model, data, "ntp", batch_size=batch_size, out_dir=tmp, callbacks=[rec])
    rec.on_train_begin(recorded.args, recorded.state, recorded.control)
    batches = [C.paired_batch(data.select(range(k, len(data))), batch_size) for k in (0, 1, 2)]
    it = {"plain": 0, "recorded": 0}

    def step(key, trainer):
        def run():
            C.loss_step(trainer, model, batches[it[key] % 3])
            it[key] += 1
        return run

    times = C.interleave({"plain": step("plain", plain), "recorded": step("recorded", recorded)},
                         repeats=rounds, warmup=2)
    s = C.summarize(times, "plain", "recorded")
    # The recorder's own host-side work, timed alone.
    import torch
    mask = batches[0]["labels"][:, 1:] != -100
    n = int(mask.sum())
    nll, correct = torch.rand(n), torch.rand(n) > 0.5
    idx = batches[0]["example_index"]

    def host():
        sums = response_sums(nll, correct, mask)
        rec.observe_batch(example_index=idx, **sums.as_dict())
    host()
    t0 = time.perf_counter()
    for _ in range(50):
        host()
    return {"setting": name, "batch_size": batch_size, **s, "overhead_pct": 100 * (s["ratio_median_paired"] - 1),
            "host_side_ms": 1e3 * (time.perf_counter() - t0) / 50,
            "recorded_examples": int((rec._sums.n_tokens > 0).sum())}


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--real", action="store_true", help="scoring on smollm2-135m only (needs the artefacts)")
    args = ap.parse_args()
    load0 = C.load_avg()
    C.setup_torch(args.threads)
    from sftmix.toy import build_tiny_model

    if args.real:
        from sftmix.config import ModelArguments
        from sftmix.data import tokenize_examples
        from sftmix.models import load_model_and_tokenizer

        model, tok = load_model_and_tokenizer(ModelArguments(model_name_or_path="smollm2-135m"))
        data = tokenize_examples(C.sharegpt_first_exchanges(8 if args.smoke else 64, tok, 128), tok, max_length=128)
        row = scoring("smollm2-135m, ShareGPT <= 128 tokens", model, data, 8, 1 if args.smoke else 3)
        print(C.table([{"setting": row["setting"], "bare ex/s": row["bare_examples_per_s"],
                        "score_model ex/s": row["score_examples_per_s"], "ratio": row["throughput_ratio"],
                        "target>=0.9": "met" if row["throughput_ratio"] >= 0.9 else "MISSED"}],
                      ["setting", "bare ex/s", "score_model ex/s", "ratio", "target>=0.9"]))
        C.write_result("bench_dynamics_smollm2", args, {"threads": args.threads, "scoring": [row]}, load0)
        return

    smoke = args.smoke
    tok, suite = C.suite_tokenized(96 if smoke else 2000)
    big = C.synthetic_tokenized(32 if smoke else 256, 4000 if smoke else 32000, length=32 if smoke else 128)
    tiny = build_tiny_model("llama", tokenizer=tok, hidden_size=64)
    large = build_tiny_model("llama", vocab_size=4000 if smoke else 32000, hidden_size=64 if smoke else 256,
                             num_heads=4)
    score_rows = [scoring("tiny-llama d64, suite", tiny, suite, 64, 2 if smoke else 15),
                  scoring("llama d256 V32000, synthetic" if not smoke else "d64 V4000", large, big, 16,
                          2 if smoke else 5)]
    rec_rows = [recording("tiny-llama d64, suite bs32", tiny, suite, 8 if smoke else 32, 4 if smoke else 40),
                recording("llama d256 V32000 bs16" if not smoke else "d64 V4000", large, big,
                          4 if smoke else 16, 4 if smoke else 20)]
    print(C.table([{"setting": r["setting"], "bare ex/s": r["bare_examples_per_s"],
                    "score_model ex/s": r["score_examples_per_s"], "ratio": r["throughput_ratio"],
                    "IQR": f"{1 / r['ratio_q3']:.3f}-{1 / r['ratio_q1']:.3f}",
                    "target>=0.9": "met" if r["throughput_ratio"] >= 0.9 else "MISSED",
                    "bare+collate ex/s": r["bare_collating_examples_per_s"],
                    "ratio vs bare+collate": r["throughput_ratio_vs_bare_collating"]} for r in score_rows],
                  ["setting", "bare ex/s", "score_model ex/s", "ratio", "IQR", "target>=0.9", "bare+collate ex/s",
                   "ratio vs bare+collate"]))
    print(C.table([{"setting": r["setting"], "plain ms": 1e3 * r["plain_median_s"],
                    "recorded ms": 1e3 * r["recorded_median_s"], "overhead %": r["overhead_pct"],
                    "IQR %": f"{100 * (r['ratio_q1'] - 1):.1f}..{100 * (r['ratio_q3'] - 1):.1f}",
                    "host ms": r["host_side_ms"], "target<=3%": "met" if r["overhead_pct"] <= 3 else "MISSED"}
                   for r in rec_rows],
                  ["setting", "plain ms", "recorded ms", "overhead %", "IQR %", "host ms", "target<=3%"]))
    C.write_result("bench_dynamics", args, {"threads": args.threads, "scoring": score_rows,
                                            "recording": rec_rows}, load0)


if __name__ == "__main__":
    main()
