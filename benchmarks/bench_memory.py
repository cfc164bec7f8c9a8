"""Peak memory of an SFTMix step over an NTP step, with the chunked CE and a naive one.

Each (setting, variant) runs in a fresh child process: build the model and batch, one
warm-up step, ``malloc_trim`` + reset of the kernel's high-water mark (VmHWM), then one
measured ``compute_loss`` + ``backward()`` step. Reported per variant:
  train_mb = VmHWM - RSS before the model was built (params + grads + activations +
             logits: what ``torch.cuda.max_memory_allocated`` would count on a GPU)
  step_mb  = VmHWM - RSS just before the measured step (params and batch excluded).
Variants swap ``linear_cross_entropy`` inside the trainer / ``mixup_loss`` for a naive
``F.cross_entropy(head.logits(h))`` that materialises the full (tokens x V) logits.

``--only gemma3-270m`` breaks down the peak of a full training step of the real Gemma 3 270M
base (V = 262,144, tied head; 8 x <= 128 ShareGPT tokens; one step after the AdamW state is
created by an update on zero gradients: forward + loss, backward and the trainer's fused AdamW
update, each phase's VmHWM reset before it) into weights, gradients,
AdamW state, activations (the tensors autograd saves in the forward, from
``saved_tensors_hooks``), head chunks, the head's gradient buffers and the tied embedding's
gradient, and compares it with the goal ``peak <= 1.2 x (weights + gradients + AdamW state +
activations)``; and measures scoring (``score_rows``) and greedy generation at this vocabulary.
``before`` variants restore the head of commit 68f1fdf (chunks of ``ce_chunk_size`` tokens
whatever V; the tied embedding's dense gradient), ``after`` the current one.
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


# ------------------------------------------------------------------ Gemma 3 270M: the 262k-token head
GEMMA_GGUF = "/work/cache/gemma/gemma-3-270m-q4_k_m.gguf"
GEMMA_VARIANTS = ("ntp_before", "ntp_after", "sftmix_before", "sftmix_after", "scoring_before", "scoring_after",
                  "generation")
#: glibc's mallopt parameter and value for the ``+mmap`` variants: every allocation of >= 1 MiB is its own
#: mapping, returned to the system when freed (glibc's default threshold adapts upwards to 32 MiB, so freed
#: activations stay resident and the peak RSS exceeds what is alive).
M_MMAP_THRESHOLD, MMAP_THRESHOLD = -3, 2**20
GOAL_PEAK_OVER_FLOOR = 1.2


def _mb(tensors) -> float:
    seen, total = set(), 0
    for t in tensors:
        st = t.untyped_storage()
        if st.data_ptr() not in seen:
            seen.add(st.data_ptr())
            total += st.nbytes()
    return total / 2**20


def use_head(version: str) -> None:
    """``before``: chunks of ce_chunk_size tokens whatever V, a (V, D) weight-gradient buffer per head call
    and the tied embedding's dense gradient."""
    if version != "before":
        return
    import functools

    import sftmix.dynamics.scoring
    import sftmix.loss.ce as ce
    import sftmix.loss.head as head
    import sftmix.loss.mixup
    import sftmix.train.trainer

    lce = functools.partial(ce.linear_cross_entropy, max_chunk_bytes=None)
    ce.linear_cross_entropy = sftmix.loss.mixup.linear_cross_entropy = lce  # response_cross_entropy reads ce's
    ce._pending_node = lambda weight: None  # no call adds into an earlier call's buffer
    fh = functools.partial(head.forward_hidden, sparse_embedding_grad=False)
    sftmix.train.trainer.forward_hidden = sftmix.dynamics.scoring.forward_hidden = fh


def gemma_setup(path: str | None, smoke: bool):
    """(model, tokenizer or None, tokenized data of 16 examples <= 128 tokens)."""
    if smoke:  # a tiny tied-head Gemma whose head dominates, random data: the code path only
        from sftmix.toy import build_tiny_model

        return build_tiny_model("gemma", vocab_size=8000, hidden_size=64).train(), None, \
            C.synthetic_tokenized(16, 8000, length=32)
    from sftmix.config import ModelArguments
    from sftmix.data import tokenize_examples
    from sftmix.models import load_model, load_tokenizer
    from sftmix.offline import MODELS

    margs = ModelArguments(model_name_or_path="gemma3-270m" if "gemma3-270m" in MODELS else (path or GEMMA_GGUF))
    tok = load_tokenizer(margs)
    data = tokenize_examples(C.sharegpt_first_exchanges(16, tok, 128), tok, max_length=128)
    return load_model(margs), tok, data


def gemma_prime() -> None:
    """One training step, one scoring pass and one generation at toy size (lazy imports happen here)."""
    import numpy as np
    import torch

    from sftmix.dynamics.scoring import score_rows
    from sftmix.toy import build_tiny_model

    data = C.synthetic_tokenized(4, 100, length=16)
    for method in ("ntp", "sftmix"):
        model = build_tiny_model("gemma", vocab_size=100, hidden_size=16).train()
        trainer = C.make_trainer(model, data, method, batch_size=4, out_dir=tempfile.mkdtemp(prefix="bench_mem_"))
        opt = trainer.create_optimizer()
        C.loss_step(trainer, model, C.paired_batch(data, 4))
        opt.step()
    model.eval()
    score_rows(model, data, np.arange(4), batch_size=4, progress=False)
    with torch.inference_mode():
        model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2, do_sample=False)


def gemma_child(variant: str, path: str | None, smoke: bool) -> dict:
    C.setup_torch(1)
    import time

    import torch

    from sftmix.loss.ce import effective_chunk_size
    from sftmix.loss.head import output_head

    kind, _, version = variant.partition("_")
    use_head(version)
    if version.endswith("+mmap"):
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    gemma_prime()  # every code path imported and run once, so rss0 holds the libraries
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    rss0 = C.rss_mb()
    model, tok, data = gemma_setup(path, smoke)
    libc.malloc_trim(0)
    rss_w = C.rss_mb()
    w = output_head(model).weight
    v, d = w.shape
    res = {"variant": variant, "vocab": v, "hidden": d, "rss_before_model_mb": rss0, "rss_weights_mb": rss_w,
           "weights_mb": _mb(model.parameters())}
    if kind in ("scoring", "generation"):
        model.eval()
        C.reset_peak()
        t0 = time.perf_counter()
        if kind == "scoring":
            import numpy as np

            from sftmix.dynamics.scoring import score_rows

            score_rows(model, data, np.arange(len(data)), batch_size=16, chunk_size=4096, progress=False)
            res["n_examples"] = len(data)
        else:
            prompts = [ids[: sum(1 for y in lab if y == -100)]  # the prompt: every token before the response
                       for ids, lab in zip(data["input_ids"][:8], data["labels"][:8])]
            with torch.inference_mode():
                for p in prompts:  # one prompt at a time: no padding question
                    model.generate(torch.tensor([p]), max_new_tokens=16, do_sample=False, min_new_tokens=16)
            res["new_tokens"] = 16 * len(prompts)
        res["seconds"] = time.perf_counter() - t0
        # Above the RSS before the model, less the weights (safetensors are mmapped: pages fault in on use).
        res["peak_above_weights_mb"] = C.peak_mb() - rss0 - res["weights_mb"]
        res["peak_rss_mb"] = C.peak_mb()
        return res

    trainer = C.make_trainer(model, data, kind, batch_size=8 if not smoke else 4,
                             out_dir=tempfile.mkdtemp(prefix="bench_mem_"))
    opt = trainer.create_optimizer()
    batch = C.paired_batch(data, 8 if not smoke else 4)
    num_items = (batch["labels"][:, 1:] != -100).sum()
    saved: list = []
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t):
        if t.untyped_storage().data_ptr() not in params:
            saved.append(t)
        return t

    for p in model.parameters():  # the AdamW state as a first update creates it, without a training step
        p.grad = torch.zeros_like(p)
    opt.step()
    model.zero_grad(set_to_none=True)
    phases = {}
    libc.malloc_trim(0)
    C.reset_peak()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items)
    phases["forward_and_loss"] = C.peak_mb() - rss0
    act = _mb(saved)
    saved.clear()
    C.reset_peak()
    t0 = time.perf_counter()
    loss.backward()
    phases["backward"] = C.peak_mb() - rss0
    emb_sparse = model.get_input_embeddings().sparse  # restored after the forward either way
    grads_mb = _mb(p.grad for p in model.parameters() if p.grad is not None)
    C.reset_peak()
    opt.step()
    model.zero_grad(set_to_none=True)
    phases["optimizer"] = C.peak_mb() - rss0
    res["backward_and_step_s"] = time.perf_counter() - t0
    adam = _mb(x for st in opt.state.values() for x in st.values() if torch.is_tensor(x))
    n = int(num_items)
    m = trainer._count_mixup(batch["labels"]) if kind == "sftmix" else 0
    chunk = effective_chunk_size(trainer.args.ce_chunk_size, v, torch.float32,
                                 None if version == "before" else C_CHUNK_BYTES())
    vd = v * d * 4 / 2**20
    floor = res["weights_mb"] + grads_mb + adam + act
    peak = max(phases.values())
    b, t = batch["input_ids"].shape
    res.update({
        "batch_shape": [b, t], "n_scored": n, "n_mixed": m, "loss": float(loss), "embedding_sparse_after": emb_sparse,
        "grads_mb": grads_mb, "adamw_state_mb": adam, "activations_mb": act,
        "head_chunk_tokens": chunk, "head_chunk_mb": min(chunk, n) * v * 4 / 2**20,
        "mixup_chunk_mb": min(chunk, m) * v * 4 / 2**20 if m else 0.0,
        "head_grad_buffers_mb": vd * (2 if m and (version == "before" or m >= d) else 1),
        "mixup_kept_dz_mb": m * v * 4 / 2**20 if m and version != "before" and m < d else 0.0,
        "tied_embedding_grad_transient_mb": vd if version == "before" else b * t * d * 4 / 2**20,
        "phase_peaks_mb": phases, "peak_mb": peak, "floor_mb": floor, "peak_over_floor": peak / floor,
        "goal": GOAL_PEAK_OVER_FLOOR, "met": peak <= GOAL_PEAK_OVER_FLOOR * floor,
        "excess_mb": max(0.0, peak - GOAL_PEAK_OVER_FLOOR * floor), "peak_rss_mb": rss0 + peak})
    return res


def C_CHUNK_BYTES():
    from sftmix.loss.ce import CHUNK_LOGITS_BYTES

    return CHUNK_LOGITS_BYTES


def gemma_main(args) -> int:
    load0 = C.load_avg()
    extra = (["--smoke"] if args.smoke else []) + (["--gemma", args.gemma] if args.gemma else [])
    rows = C.run_children([[__file__, "--gemma-child", v, *extra] for v in args.variants or GEMMA_VARIANTS])
    train = [r for r in rows if "phase_peaks_mb" in r]
    for r in train:
        r.update({f"phase_{k}_mb": x for k, x in r["phase_peaks_mb"].items()})
    cols = ["variant", "weights_mb", "grads_mb", "adamw_state_mb", "activations_mb", "head_chunk_mb",
            "mixup_chunk_mb", "head_grad_buffers_mb", "mixup_kept_dz_mb", "tied_embedding_grad_transient_mb",
            "floor_mb",
            "phase_forward_and_loss_mb", "phase_backward_mb", "phase_optimizer_mb", "peak_mb", "peak_over_floor",
            "met", "excess_mb", "backward_and_step_s"]
    print(C.table(train, cols))
    print(f"goal: peak (VmHWM above the RSS before the model) <= {GOAL_PEAK_OVER_FLOOR} x (weights + gradients + "
          "AdamW state + activations without logits)")
    other = [r for r in rows if "phase_peaks_mb" not in r]
    print(C.table(other, ["variant", "seconds", "peak_above_weights_mb", "n_examples", "new_tokens"]))
    C.write_result("bench_memory_gemma", args, {"method": "VmHWM per child process and phase", "results": rows},
                   load0)
    return 0


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--only", choices=["gemma3-270m"], default=None, help="the Gemma 3 270M breakdown instead")
    ap.add_argument("--gemma", default=None, help="Gemma GGUF file/folder when sftmix has no gemma3-270m name")
    ap.add_argument("--gemma-child", default=None, help="internal: one Gemma variant")
    ap.add_argument("--variants", nargs="+", default=None,
                    help=f"Gemma variants (default {' '.join(GEMMA_VARIANTS)}; '+mmap' appended: glibc mmap threshold "
                         "fixed at 1 MiB)")
    ap.add_argument("--child", nargs=2, metavar=("SETTING", "VARIANT"), help="internal: measure one variant")
    ap.add_argument("--repeats", type=int, default=2, help="child runs per variant (median kept)")
    args = ap.parse_args()
    if args.child:
        return child(*args.child, args.smoke)
    if args.gemma_child:
        return C.emit(gemma_child(args.gemma_child, args.gemma, args.smoke))
    if args.only:
        return gemma_main(args)
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
