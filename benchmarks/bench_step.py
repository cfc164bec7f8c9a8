"""Training-step overhead of SFTMix over NTP, against the analytic FLOP floor.

Both steps run ``SFTMixTrainer.compute_loss`` + ``backward()`` on the same model and the
same paired batch (confident half, then unconfident half), interleaved NTP/SFTMix.

FLOP model (fwd + bwd; multiply-add = 2 FLOPs), B x T padded batch, N response tokens,
M aligned Mixup positions (sum over pairs of min(N_a, N_b)):
  body     6 * P_body * B*T + 12 * L * D * T^2 * B   (P_body: decoder matrices, no embeddings;
                                                       attention scores + values, full T^2)
  lm_head  2 * D * V * B                              (the model's own 1-position logits, fwd only)
  NTP head N * (6 * D * V + 5 * V)                    (logits fwd 2DV, grads of h and W 4DV,
                                                       ~5 elementwise ops per logit for softmax/CE)
  Mixup    M * (6 * D * V + 5 * V + 6 * D)            (head again on the mixed states + the mix)
floor = (NTP step + Mixup) / NTP step.
"""
from __future__ import annotations

import statistics
import tempfile
import time

import _common as C


def body_params(model) -> int:
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in skip)


def flops(model, batch, n_mix: int) -> dict:
    cfg = model.config
    b, t = batch["input_ids"].shape
    d, v, layers = cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers
    d_attn = cfg.num_attention_heads * getattr(cfg, "head_dim", d // cfg.num_attention_heads)
    n = int((batch["labels"][:, 1:] != -100).sum())
    body = 6 * body_params(model) * b * t + 12 * layers * d_attn * t * t * b + 2 * d * v * b
    ntp_head = n * (6 * d * v + 5 * v)
    mix = n_mix * (6 * d * v + 5 * v + 6 * d)
    return {"body": body, "ntp_head": ntp_head, "mixup": mix, "ntp_step": body + ntp_head,
            "n_response_tokens": n, "n_mixup_positions": n_mix, "batch_shape": [b, t],
            "floor": (body + ntp_head + mix) / (body + ntp_head)}


def median_ms(fn, reps: int) -> float:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def measure(name: str, model, data, batch_size: int, repeats: int, warmup: int) -> dict:
    import torch

    from sftmix.loss.head import forward_hidden, output_head
    from sftmix.loss.mixup import count_mixup_positions, mixup_loss
    from sftmix.train.sampler import pair_rows

    model.train()
    batch = C.paired_batch(data, batch_size)
    tmp = tempfile.mkdtemp(prefix="bench_step_")
    ntp = C.make_trainer(model, data, "ntp", batch_size=batch_size, out_dir=tmp)
    mix = C.make_trainer(model, data, "sftmix", batch_size=batch_size, out_dir=tmp)
    a, b = pair_rows(batch_size, "confident_unconfident")
    n_mix = int(count_mixup_positions(batch["labels"][a], batch["labels"][b]))
    fl = flops(model, batch, n_mix)
    times = C.interleave({"ntp": lambda: C.loss_step(ntp, model, batch),
                          "sftmix": lambda: C.loss_step(mix, model, batch)}, repeats=repeats, warmup=warmup)
    res = {"setting": name, **C.summarize(times, "ntp", "sftmix"), **fl}
    res["measured_over_floor"] = res["ratio_median_paired"] / fl["floor"]

    # Where the extra time goes: its parts, each timed alone (median).
    with torch.no_grad():
        hidden = forward_hidden(model, batch["input_ids"], batch["attention_mask"]).detach()
    head, labels, index = output_head(model), batch["labels"], batch["example_index"]
    reps = max(3, repeats // 2)

    def mix_fwd_bwd():
        h = hidden.clone().requires_grad_(True)
        out = mixup_loss(h[a], labels[a], h[b], labels[b], torch.full((len(a),), 0.3), head)
        out.loss_sum.backward()
        model.zero_grad(set_to_none=True)

    res["parts_ms"] = {"lambdas (trainer.mixup_lambdas)": median_ms(lambda: mix.mixup_lambdas(index, a, b), reps),
                       "mixup_loss fwd+bwd (align, mix, head CE)": median_ms(mix_fwd_bwd, reps)}
    return res


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-128k", action="store_true", help="leave out the 128k-vocabulary model")
    args = ap.parse_args()
    load0 = C.load_avg()
    C.setup_torch(args.threads)
    from sftmix.toy import build_tiny_model

    smoke = args.smoke
    tok, suite = C.suite_tokenized(64 if smoke else 1000)
    settings = [("tiny-llama d64 V%d bs%d" % (len(tok), 8 if smoke else 32),
                 lambda: build_tiny_model("llama", tokenizer=tok, hidden_size=64), suite, 8 if smoke else 32,
                 2 if smoke else 40)]
    sizes = [(64, 2000)] if smoke else [(256, 32000)] + ([] if args.skip_128k else [(256, 128000)])
    for d, v in sizes:
        bs = 4 if smoke else 16
        data = C.synthetic_tokenized(2 * bs, v, length=32 if smoke else 128)
        settings.append((f"llama d{d} V{v} T<=128 bs{bs}",
                         lambda d=d, v=v: build_tiny_model("llama", vocab_size=v, hidden_size=d, num_heads=4),
                         data, bs, 2 if smoke else (12 if v <= 32000 else 6)))
    rows = []
    for name, build, data, bs, repeats in settings:
        print(f"== {name}", flush=True)
        rows.append(measure(name, build(), data, bs, repeats, warmup=1 if smoke else 2))
        r = rows[-1]
        print(f"   ntp {1e3 * r['ntp_median_s']:.1f} ms  sftmix {1e3 * r['sftmix_median_s']:.1f} ms  "
              f"ratio {r['ratio_median_paired']:.3f} (IQR {r['ratio_q1']:.3f}-{r['ratio_q3']:.3f})  "
              f"floor {r['floor']:.3f}  parts {r['parts_ms']}", flush=True)
    cols = ["setting", "ntp_ms", "sftmix_ms", "ratio", "IQR", "floor", "ratio/floor", "target<=1.1"]
    print(C.table([{"setting": r["setting"], "ntp_ms": 1e3 * r["ntp_median_s"], "sftmix_ms": 1e3 * r["sftmix_median_s"],
                    "ratio": r["ratio_median_paired"], "IQR": f"{r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}",
                    "floor": r["floor"], "ratio/floor": r["measured_over_floor"],
                    "target<=1.1": "met" if r["measured_over_floor"] <= 1.1 else "MISSED"} for r in rows], cols))
    C.write_result("bench_step", args, {"threads": args.threads, "results": rows}, load0)


if __name__ == "__main__":
    main()
