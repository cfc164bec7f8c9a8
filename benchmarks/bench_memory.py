"""Peak memory of an SFTMix step over an NTP step, with the chunked CE and a naive one.

Each (setting, variant) runs in a fresh child process: build the model and batch, one
warm-up step, ``malloc_trim`` + reset of the kernel's high-water mark (VmHWM), then one
measured ``compute_loss`` + ``backward()`` step. Reported per variant:
  train_mb = VmHWM - RSS before the model was built (params + grads + activations +
             logits: what ``torch.cuda.max_memory_allocated`` would count on a GPU)
  step_mb  = VmHWM - RSS just before the measured step (params and batch excluded).
Variants swap ``linear_cross_entropy`` inside the trainer / ``mixup_loss`` for a naive
``F.cross_entropy(head.logits(h))`` that materialises the full (tokens x V) logits.
"""
from __future__ import annotations

import ctypes
import sys
import tempfile

import _common as C

VARIANTS = {  # name: (method, naive NTP CE, naive Mixup CE)
    "ntp_chunked": ("ntp", False, False), "sftmix_chunked": ("sftmix", False, False),
    "ntp_naive": ("ntp", True, False), "sftmix_naive": ("sftmix", True, True),
    "sftmix_naive_mixup_only": ("sftmix", False, True)}


def settings(smoke: bool) -> dict:  # name: (hidden, vocab or None for the suite, batch, max length)
    if smoke:
        return {"d64-V4000": (64, 4000, 4, 32)}
    return {"tiny-llama d64": (64, None, 32, 128), "d256-V32000": (256, 32000, 16, 128),
            "d256-V128000": (256, 128000, 16, 128)}


def naive_lce(hidden, head, target, *, weights=None, target_b=None, lam=None, chunk_size=None,
              return_stats=False):
    """Same maths as sftmix.loss.ce.linear_cross_entropy, with the full logits kept by autograd."""
    import torch.nn.functional as F

    from sftmix.loss.ce import CEOutput

    logits = head.logits(hidden)
    nll = F.cross_entropy(logits, target, reduction="none")
    w = 1.0 if weights is None else weights.detach().to(logits.dtype)
    if target_b is None:
        loss = (w * nll).sum()
    else:
        loss = (w * (lam * nll + (1 - lam) * F.cross_entropy(logits, target_b, reduction="none"))).sum()
    stats = (nll.detach(), logits.argmax(-1) == target) if return_stats else (None, None)
    return CEOutput(loss, *stats)


def child(setting: str, variant: str, smoke: bool) -> None:
    C.setup_torch(2)
    import sftmix.loss.mixup
    import sftmix.train.trainer
    from sftmix.toy import build_tiny_model

    d, v, bs, length = settings(smoke)[setting]
    method, naive_ntp, naive_mix = VARIANTS[variant]
    if v is None:
        tok, data = C.suite_tokenized(64 if smoke else 256, max_length=length)
    else:
        data = C.synthetic_tokenized(2 * bs, v, length=length)
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    rss0 = C.rss_mb()
    model = (build_tiny_model("llama", tokenizer=tok, hidden_size=d) if v is None else
             build_tiny_model("llama", vocab_size=v, hidden_size=d, num_heads=4)).train()
    if naive_ntp:
        sftmix.train.trainer.linear_cross_entropy = naive_lce
    if naive_mix:
        sftmix.loss.mixup.linear_cross_entropy = naive_lce
    trainer = C.make_trainer(model, data, method, batch_size=bs, out_dir=tempfile.mkdtemp(prefix="bench_mem_"))
    batch = C.paired_batch(data, bs)
    loss = C.loss_step(trainer, model, batch)  # warm-up
    libc.malloc_trim(0)
    rss1 = C.rss_mb()
    ok = C.reset_peak()
    loss = C.loss_step(trainer, model, batch)
    peak = C.peak_mb()
    C.emit({"setting": setting, "variant": variant, "rss_before_model_mb": rss0, "rss_before_step_mb": rss1,
            "peak_mb": peak, "train_mb": peak - rss0, "step_mb": peak - rss1, "loss": float(loss),
            "peak_reset": ok})


def ratios(by: dict) -> dict:
    def r(num, den):
        return {m: by[num][m] / by[den][m] for m in ("train_mb", "step_mb")}
    return {"chunked": r("sftmix_chunked", "ntp_chunked"), "naive": r("sftmix_naive", "ntp_naive"),
            "naive_mixup_only": r("sftmix_naive_mixup_only", "ntp_chunked")}


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--child", nargs=2, metavar=("SETTING", "VARIANT"), help="internal: measure one variant")
    ap.add_argument("--repeats", type=int, default=2, help="child runs per variant (median kept)")
    args = ap.parse_args()
    if args.child:
        return child(*args.child, args.smoke)
    load0 = C.load_avg()
    repeats = 1 if args.smoke else args.repeats
    rows, summaries = [], {}
    for setting in settings(args.smoke):
        runs = {}
        for _ in range(repeats):
            argvs = [[__file__, "--child", setting, v] + (["--smoke"] if args.smoke else []) for v in VARIANTS]
            for variant, res in zip(VARIANTS, C.run_children(argvs, parallel=args.smoke)):
                runs.setdefault(variant, []).append(res)
        by = {}
        for variant, rs in runs.items():
            rs.sort(key=lambda x: x["peak_mb"])
            by[variant] = {**rs[len(rs) // 2], "repeats_train_mb": [x["train_mb"] for x in rs]}
            rows.append(by[variant])
        summaries[setting] = {"ratios_sftmix_over_ntp": ratios(by), "losses_match_chunked_vs_naive": bool(
            abs(by["ntp_chunked"]["loss"] - by["ntp_naive"]["loss"]) < 1e-3
            and abs(by["sftmix_chunked"]["loss"] - by["sftmix_naive"]["loss"]) < 1e-3)}
        print(f"== {setting}: {summaries[setting]}", flush=True)
    print(C.table(rows, ["setting", "variant", "train_mb", "step_mb", "peak_mb", "loss"]))
    print(C.table([{"setting": s, "ce": k, "train ratio": v["train_mb"], "step ratio": v["step_mb"]}
                   for s, x in summaries.items() for k, v in x["ratios_sftmix_over_ntp"].items()],
                  ["setting", "ce", "train ratio", "step ratio"]))
    C.write_result("bench_memory", args, {"method": "VmHWM per child process", "results": rows,
                                          "summary": summaries}, load0)


if __name__ == "__main__":
    sys.exit(main())
