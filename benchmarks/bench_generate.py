"""Greedy generation: batched (left-padded, length-sorted) against one prompt at a time, and MT-Bench's cost.

For each model (the shipped ``tiny-base`` and SmolLM2-135M-Instruct, ``smollm2-135m``), on the first
``--prompts`` prompts rendered with the model's chat template (MT-Bench's first turns; for ``tiny-*``
models the built-in suite's test prompts, the short questions they were built for: MT-Bench's
questions run to ~1,000 of the toy tokenizer's tokens, far past what the tiny base was trained on):

* generated tokens per second with :func:`sftmix.analysis.generate.generate_texts` at batch 1 (one
  ``generate`` call per prompt, the reference), 4, 16 and 64, alternating the order between rounds;
  the speed-up is batched tokens/s over batch-1 tokens/s within the same round;
* the share of answers that differ from batch 1's (greedy decoding; padding changes float32 sums,
  which can flip a near-tie); with ``--unbatched_prompts N`` batch 1 answers only N prompts spread
  evenly over the list (its tokens/s is a rate; the comparison is over those N answers);
* the wall time of answering all 160 MT-Bench turns (80 questions x 2, the second after the model's own
  first answer) at batch 16 and ``--max_new_tokens``.

    python benchmarks/bench_generate.py [--models tiny-base,smollm2-135m] [--threads 1] [--max_new_tokens 32]
"""
from __future__ import annotations

import time

import _common as C


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--models", default="tiny-base,smollm2-135m")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch_sizes", default="1,4,16,64")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max_new_tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--unbatched_prompts", type=int, default=None,
                    help="batch 1 answers only N prompts spread evenly over the list (its tokens/s is a rate; "
                         "default all)")
    ap.add_argument("--mt_bench_max_new_tokens", type=int, default=64)
    ap.add_argument("--mt_bench_models", default=None, help="models timed on the 160 turns (default all)")
    args = ap.parse_args()
    if args.smoke:
        args.models, args.prompts, args.max_new_tokens, args.rounds = "tiny-base", 8, 4, 1
        args.batch_sizes, args.mt_bench_max_new_tokens = "1,4", 4
    load_start = C.load_avg()
    C.setup_torch(args.threads)
    import datasets
    import transformers

    from sftmix.analysis import mtbench
    from sftmix.analysis.generate import generate_chat_turns, generate_texts
    from sftmix.config import ModelArguments
    from sftmix.data import load_examples
    from sftmix.data.tokenize import render_conversation
    from sftmix.models import load_model_and_tokenizer

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    questions = mtbench.read_questions()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    results = {}
    for name in args.models.split(","):
        model, tok = load_model_and_tokenizer(ModelArguments(model_name_or_path=name, torch_dtype="float32"))
        model.eval()
        if name.startswith("tiny-"):
            suite = load_examples("builtin", split="test", n_train=1, n_test=args.prompts, seed=0)
            prompts = [render_conversation(tok, m, add_generation_prompt=True) for m in suite["messages"]]
        else:
            prompts = [render_conversation(tok, [{"role": "user", "content": q["turns"][0]}],
                                           add_generation_prompt=True) for q in questions[:args.prompts]]
        generate_texts(model, tok, prompts[:2], batch_size=2, max_new_tokens=2, progress=False)  # warm-up
        n1 = min(args.unbatched_prompts or len(prompts), len(prompts))
        spread = [round(k * len(prompts) / n1) for k in range(n1)]   # batch 1's prompts: every (len/n1)-th
        rounds = []
        for r in range(args.rounds):
            row = {}
            for b in (sizes if r % 2 == 0 else sizes[::-1]):
                t0 = time.perf_counter()
                gens = generate_texts(model, tok, [prompts[i] for i in spread] if b == 1 else prompts,
                                      batch_size=b, max_new_tokens=args.max_new_tokens, progress=False)
                seconds = time.perf_counter() - t0
                tokens = sum(gens.n_tokens)
                row[b] = {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds, "texts": gens.texts}
            rounds.append(row)
        per_size = {}
        for b in sizes:
            speedups = [rd[b]["tokens_per_s"] / rd[1]["tokens_per_s"] for rd in rounds]
            differ = [0.0 if b == 1 else sum(rd[b]["texts"][i] != y for i, y in zip(spread, rd[1]["texts"])) / n1
                      for rd in rounds]   # over batch 1's prompts
            per_size[str(b)] = {"tokens_per_s": [rd[b]["tokens_per_s"] for rd in rounds],
                                "seconds": [rd[b]["seconds"] for rd in rounds],
                                "tokens": [rd[b]["tokens"] for rd in rounds],
                                "speedup_vs_batch1": speedups, "share_answers_differ_from_batch1": differ}
        results[name] = {"n_prompts": len(prompts), "n_prompts_batch1": len(rounds[0][1]["texts"]),
                         "max_new_tokens": args.max_new_tokens, "batch_sizes": per_size}
        if args.mt_bench_models is None or name in args.mt_bench_models.split(","):
            t0 = time.perf_counter()
            turns = generate_chat_turns(model, tok, [q["turns"] for q in questions], batch_size=16,
                                        max_new_tokens=args.mt_bench_max_new_tokens, progress=False)
            results[name]["mt_bench_160_turns"] = {"seconds": time.perf_counter() - t0, "batch_size": 16,
                                                   "max_new_tokens": args.mt_bench_max_new_tokens,
                                                   "tokens": sum(sum(t.n_tokens) for t in turns),
                                                   "share_cut": sum(sum(t.cut) for t in turns) / 160}
        del model
    rows = [{"model": m, "batch": b, "tok/s": sum(r["tokens_per_s"]) / len(r["tokens_per_s"]),
             "speed-up": min(r["speedup_vs_batch1"]), "differ": max(r["share_answers_differ_from_batch1"])}
            for m, res in results.items() for b, r in res["batch_sizes"].items()]
    print(C.table(rows, list(rows[0])))
    for m, res in results.items():
        if "mt_bench_160_turns" not in res:
            continue
        print(f"{m}: 160 MT-Bench turns at batch 16, max_new_tokens {res['mt_bench_160_turns']['max_new_tokens']}: "
              f"{res['mt_bench_160_turns']['seconds']:.0f} s")
    C.write_result("bench_generate", args, {"threads": args.threads, "results": results}, load_start)


if __name__ == "__main__":
    main()
