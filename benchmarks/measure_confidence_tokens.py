"""Which tokens enter confidence: content only vs content + end-of-turn, on a real model.

SmolLM2-135M-Instruct (offline, ``smollm2-135m``) scores each example's response twice in one
pass: over the content tokens of the assistant turn, and over every trained token (content +
``<|im_end|>``). For each data set the script reports the share of trained tokens that are
template tokens, the Spearman correlation of the two confidence rankings (one checkpoint: the
model itself, ``confidence = -perplexity``), how many examples change half at a median split,
and how strongly each ranking follows the answer's length (Spearman with the number of content
tokens) -- the confound template tokens bring to short answers.

    python benchmarks/measure_confidence_tokens.py            # ~3 min on one thread
    python benchmarks/measure_confidence_tokens.py --smoke
"""
from __future__ import annotations

import _common as C


def measure(name: str, examples, model, tok, max_length: int) -> dict:
    import numpy as np
    from scipy.stats import spearmanr

    from sftmix.data import tokenize_examples
    from sftmix.dynamics.scoring import length_sorted_shard, score_rows

    data = tokenize_examples(examples, tok, max_length=max_length)
    rows = length_sorted_shard(data, 0, 1)
    sums = score_rows(model, data, rows, batch_size=8, progress=True, desc=f"Scoring {name}")
    conf = {k: -np.exp(sums[k].nll_sum / sums[k].n_tokens) for k in ("content", "trained")}
    n_content, n_trained = sums["content"].n_tokens, sums["trained"].n_tokens
    halves = {k: v >= np.median(v) for k, v in conf.items()}
    return {"dataset": name, "n_examples": len(data),
            "template_share_of_trained_tokens": float(1 - n_content.sum() / n_trained.sum()),
            "median_content_tokens": float(np.median(n_content)),
            "spearman_content_vs_trained": float(spearmanr(conf["content"], conf["trained"]).statistic),
            "changed_half_at_median_split": float((halves["content"] != halves["trained"]).mean()),
            "spearman_with_length_content": float(spearmanr(conf["content"], n_content).statistic),
            "spearman_with_length_trained": float(spearmanr(conf["trained"], n_content).statistic)}


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="smollm2-135m")
    args = ap.parse_args()
    load0 = C.load_avg()
    C.setup_torch(args.threads)
    from sftmix.config import ModelArguments
    from sftmix.data import load_examples
    from sftmix.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(ModelArguments(model_name_or_path=args.model))
    model.eval()
    n = 16 if args.smoke else 400
    sets = [("built-in suite", load_examples("builtin", n_train=n, n_test=1, noise=0.0), 96),
            ("ShareGPT first exchanges", C.sharegpt_first_exchanges(n // 2 if args.smoke else 200, tok, 256), 256)]
    results = [measure(name, ex, model, tok, max_length) for name, ex, max_length in sets]
    print(C.table(results, list(results[0])))
    C.write_result("measure_confidence_tokens", args, {"model": args.model, "results": results}, load0)


if __name__ == "__main__":
    main()
