"""sftmix against the standard peer: TRL ``SFTTrainer`` with completion-only loss.

Same torch and transformers, same model weights (deep copies of one initialisation), the
same batch tensors; step times interleaved in one process (A B, B A, ...; median of the
paired ratios, as in ``_common.py``); peak memory from VmHWM in one child process per
variant (the method of ``bench_memory.py``).

Settings: (a) the tiny suite model (``build_tiny_model("llama", tokenizer=build_toy_tokenizer())``,
character vocabulary, a batch of 32 suite examples); (b) Llama d256, 2 layers, V = 32,000,
16 x <= 128 synthetic tokens; (c) the same with V = 128,000; (d) the real SmolLM2-135M-Instruct
(``smollm2-135m``: 30 layers, d576, tied head, V = 49,152), 8 ShareGPT first exchanges of
<= 128 ChatML tokens (``--only smollm2-135m``; needs the real-model artefacts); (e) the real
Gemma 3 270M base (``--only gemma3-270m``: 18 layers, d640, tied head, V = 262,144, the head
168M of its 268M parameters), 8 ShareGPT first exchanges of <= 128 tokens in sftmix's template
for a model without one, from ``gemma3-270m`` when sftmix knows that name, else from the GGUF
file ``--gemma`` (default ``/work/cache/gemma/gemma-3-270m-q4_k_m.gguf``). The smoke run has a
tiny tied-head Gemma whose head dominates (``tiny-gemma-V8000``) for the same code path.

Each setting also prints its FLOP floor and the goals of issue 26 with what is missing
(:func:`flop_floor`, :func:`goals`): the SFTMix / NTP step ratio against the ratio of their
FLOPs, ``6 * (non-head params + attention) * B * T + 6 * V * d * N`` for NTP plus
``6 * V * d * M`` for the M mixed positions; the sftmix / TRL step and memory ratios against 0.6.

A step is each trainer's own ``Trainer.training_step(model, batch, num_items_in_batch)``
(``compute_loss`` inside the trainer's context managers, then ``accelerator.backward``),
followed by ``model.zero_grad(set_to_none=True)``. The optimizer update is left out: it is
the same AdamW over the same parameters for every variant (its time is reported on its own
as ``adamw_step_ms``) and would only dilute the ratios.

What each variant computes per step (B x T padded batch, N response tokens, vocabulary V):

* ``sftmix_ntp`` (``SFTMixTrainer``, method="ntp"): one transformer forward that builds
  logits for one position only; the output head and cross-entropy on the N response
  tokens only, in chunks of ``ce_chunk_size`` tokens (the softmax in place in the chunk,
  the logits gradient formed in the forward and kept per chunk, so backward does no
  second head matmul); sum / N.
* ``sftmix_sftmix`` (method="sftmix"): the above plus the Mixup loss on the B/2 pairs
  (mixed last hidden states of the aligned response positions, M of them; one more
  chunked head pass over M tokens), weighted by mixup_weight = 0.2.
* ``trl_default`` (``trl.SFTTrainer``, ``completion_only_loss=True``, its own ``compute_loss``):
  the backbone forward, then TRL's fused LM head (``ChunkedLogProbFunction``) that returns
  per-token log-probs plus entropy and top-1 flags for the metrics ``entropy`` and
  ``mean_token_accuracy`` (gathered and ``.item()``-ed every step). Without Triton (CPU) the
  head scores every one of the B x (T-1) positions, prompt and padding included, and
  masks afterwards; its backward recomputes every logits tile. On CUDA with Triton it
  scores only the N response positions. bf16 and gradient checkpointing (TRL's defaults)
  are switched off here so that both trainers run the same fp32 model without recompute;
  ``gpu_check.py`` runs TRL with its defaults on a GPU.
* ``trl_lean``: the same trainer with its extra per-step metrics switched off. TRL has no
  option for that (``SFTTrainer.__init__`` hard-codes the fused head's outputs to
  ``("log_probs", "entropy", "is_top1")`` and ``compute_loss`` reads them), so a small
  subclass (``LeanSFTTrainer`` below) re-installs the fused head with
  ``outputs=("log_probs",)`` and computes only the loss, as TRL's own ``compute_loss`` does.

Checks recorded per setting: the losses of all variants against the model's own
``forward(labels=...)`` loss (all are the mean NLL over response tokens), the max abs
difference of every parameter gradient between sftmix NTP and both TRL variants, and that
TRL's own collator, fed the same rows, produces the same ``input_ids`` and ``labels``.

    python benchmarks/bench_peer.py                 # ~17 min on 1 thread (2-core, loaded machine)
    python benchmarks/bench_peer.py --smoke --out /tmp/peer.json
"""
from __future__ import annotations

import copy
import ctypes
import math
import os
import sys
import tempfile

import _common as C

sys.path.insert(0, str(C.ROOT))  # measure the checkout this file lives in

VARIANTS = ("sftmix_ntp", "sftmix_sftmix", "trl_default", "trl_lean")
#: Batch keys only sftmix reads (TRL and the model's own forward get the rest).
SFTMIX_ONLY = ("example_index", "content_labels")
#: The Gemma 3 270M GGUF used when sftmix has no ``gemma3-270m`` name (``--gemma`` overrides it).
GEMMA_GGUF = "/work/cache/gemma/gemma-3-270m-q4_k_m.gguf"
#: Goals of issue 26 (the 262k-token head).
GOAL_SFTMIX_OVER_FLOOR, GOAL_OVER_TRL = 1.05, 0.6


def real_model(vocab) -> str | None:
    """What ``load_model`` gets for a real-model setting (None for synthetic ones)."""
    if vocab == "smollm2-135m":
        return vocab
    if vocab == "gemma3-270m":
        from sftmix.offline import MODELS

        return vocab if vocab in MODELS else os.environ.get("SFTMIX_BENCH_GEMMA", GEMMA_GGUF)
    return None


def settings(smoke: bool) -> dict:
    """name: dict(vocab (None: the suite's character vocabulary), hidden, batch, length, rounds, n_suite)."""
    if smoke:
        return {"tiny-suite": dict(vocab=None, hidden=64, batch=8, length=128, rounds=2, n_suite=64),
                "d64-V2000": dict(vocab=2000, hidden=64, batch=4, length=32, rounds=2),
                "tiny-gemma-V8000": dict(vocab=8000, hidden=64, batch=4, length=32, rounds=2, family="gemma")}
    return {"tiny-suite": dict(vocab=None, hidden=64, batch=32, length=128, rounds=20, n_suite=1000),
            "d256-V32000": dict(vocab=32000, hidden=256, batch=16, length=128, rounds=5),
            "d256-V128000": dict(vocab=128000, hidden=256, batch=16, length=128, rounds=3),
            "smollm2-135m": dict(vocab="smollm2-135m", hidden=576, batch=8, length=128, rounds=4),
            "gemma3-270m": dict(vocab="gemma3-270m", hidden=640, batch=8, length=128, rounds=2, warmup=0)}
REAL_SETTINGS = ("smollm2-135m", "gemma3-270m")  # not run by default: each has its own run


# ------------------------------------------------------------------ data and models
def build_data(spec: dict):
    """(tokenizer, tokenized dataset with input_ids / labels / example_index / example_id)."""
    import datasets

    import sftmix

    datasets.disable_progress_bars()
    if real_model(spec["vocab"]):  # a real model: its own tokenizer, real chats
        from sftmix.config import ModelArguments
        from sftmix.models import load_tokenizer

        tok = load_tokenizer(ModelArguments(model_name_or_path=real_model(spec["vocab"])))
        return tok, sftmix.tokenize_examples(C.sharegpt_first_exchanges(2 * spec["batch"], tok, spec["length"]),
                                             tok, max_length=spec["length"])
    tok = sftmix.build_toy_tokenizer()
    if spec["vocab"] is None:
        ex = sftmix.load_examples("builtin", split="train", n_train=spec["n_suite"], n_test=0, seed=0)
        return tok, sftmix.tokenize_examples(ex, tok, max_length=spec["length"])
    return tok, C.synthetic_tokenized(2 * spec["batch"], spec["vocab"], length=spec["length"])


def build_model(spec: dict, tok):
    import sftmix

    if real_model(spec["vocab"]):
        from sftmix.config import ModelArguments
        from sftmix.models import load_model

        return load_model(ModelArguments(model_name_or_path=real_model(spec["vocab"])))
    if spec["vocab"] is None:
        return sftmix.build_tiny_model("llama", tokenizer=tok, hidden_size=spec["hidden"])
    return sftmix.build_tiny_model(spec.get("family", "llama"), vocab_size=spec["vocab"], hidden_size=spec["hidden"],
                                   num_heads=4)


def batch_rows(data, batch_size: int) -> list[int]:
    """Rows of a batch laid out as sftmix's PairedSampler lays it out: [first half_1..h, second half_1..h]."""
    n, h = len(data), batch_size // 2
    return list(range(h)) + list(range(n // 2, n // 2 + h))


def sftmix_batch(data, rows, pad_id: int) -> dict:
    import sftmix

    return sftmix.PadCollator(pad_id)([data[i] for i in rows])


def trl_dataset(data):
    """The same token ids in TRL's processed form: input_ids + completion_mask (1 on response tokens)."""
    import datasets

    return datasets.Dataset.from_dict({
        "input_ids": list(data["input_ids"]),
        "completion_mask": [[int(x != -100) for x in lab] for lab in data["labels"]]})


# ------------------------------------------------------------------ trainers
def lean_trainer_class():
    import torch
    from trl import SFTTrainer
    from trl.trainer.utils import add_fused_lm_head

    class LeanSFTTrainer(SFTTrainer):
        """``SFTTrainer`` without its per-step metrics: log-probs only, no entropy / top-1 / gathers."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            model = self.model
            if "forward" in vars(model):  # undo SFTTrainer's patch, then patch with log-probs only
                del model.forward
            add_fused_lm_head(model, outputs=("log_probs",))

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # TRL's compute_loss, default branch (nll, no label smoothing, no aux loss), minus the metrics.
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            num_tokens = outputs.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = -outputs.log_probs.sum() / torch.as_tensor(num_tokens).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return LeanSFTTrainer


def make_trainer(variant: str, model, data, tok, batch_size: int, *, bf16: bool = False,
                 gradient_checkpointing: bool = False, use_cpu: bool = True):
    out = tempfile.mkdtemp(prefix="bench_peer_")
    common = dict(output_dir=out, per_device_train_batch_size=batch_size, use_cpu=use_cpu, disable_tqdm=True,
                  report_to="none", seed=0, save_strategy="no")
    if variant.startswith("sftmix"):
        import sftmix

        method = variant.split("_", 1)[1]
        split = None
        kw = dict(common, method=method)
        if method == "sftmix":
            ids = [str(i) for i in data["example_id"]]
            split = {"confident": ids[: len(ids) // 2], "unconfident": ids[len(ids) // 2:]}
            kw["split_file"] = "<in memory>"
        kw.update(bf16=bf16, gradient_checkpointing=gradient_checkpointing)
        return sftmix.SFTMixTrainer(model=model, args=sftmix.SFTMixConfig(**kw), train_dataset=data, split=split,
                                    data_collator=sftmix.PadCollator(tok.pad_token_id))
    from trl import SFTConfig, SFTTrainer

    cls = SFTTrainer if variant == "trl_default" else lean_trainer_class()
    args = SFTConfig(**common, completion_only_loss=True, max_length=None, bf16=bf16,
                     gradient_checkpointing=gradient_checkpointing, logging_strategy="no")
    trainer = cls(model=model, args=args, train_dataset=trl_dataset(data), processing_class=tok)
    if gradient_checkpointing:  # Trainer enables it in train(), which the benchmark does not call
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
    return trainer


def amp(batch: dict, bf16: bool):
    """bf16 autocast as ``Trainer.train()`` sets it up through accelerate (``training_step`` alone does not)."""
    import contextlib

    import torch

    return torch.autocast(batch["input_ids"].device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def step_fn(variant: str, trainer, model, batch: dict, num_items, bf16: bool = False):
    """One training step through the trainer's own ``training_step`` (grads dropped after)."""
    import torch

    inputs = {k: v for k, v in batch.items() if variant.startswith("sftmix") or k not in SFTMIX_ONLY}
    cuda = batch["input_ids"].is_cuda

    def step():
        with amp(batch, bf16):
            loss = trainer.training_step(model, dict(inputs), num_items)
        model.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return loss
    return step


def prepare(trainer):
    trainer.current_gradient_accumulation_steps = 1  # set by train(); training_step reads it
    return trainer


# ------------------------------------------------------------------ checks
def agreement(trainers: dict, models: dict, batch: dict, num_items, bf16: bool = False) -> dict:
    """Losses vs the model's own forward loss; max abs grad difference, sftmix NTP vs TRL."""
    import torch

    ref_model = models["sftmix_ntp"]
    with torch.no_grad(), amp(batch, bf16):
        plain = {k: v for k, v in batch.items() if k not in SFTMIX_ONLY}
        ref = float(ref_model(**plain, use_cache=False).loss)
    losses, ref_grads, diffs = {}, None, {}
    for v in ("sftmix_ntp", "trl_default", "trl_lean"):
        model = models[v]
        model.zero_grad(set_to_none=True)
        inputs = {k: t for k, t in batch.items() if v.startswith("sftmix") or k not in SFTMIX_ONLY}
        with amp(batch, bf16):
            losses[v] = float(trainers[v].training_step(model, dict(inputs), num_items))
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        if ref_grads is None:  # sftmix NTP: kept (cloned) as the reference
            ref_grads = {n: g.detach().clone() for n, g in grads.items()}
        else:  # compared at once, so no more than two models' gradients exist (1 GB each on Gemma)
            assert grads.keys() == ref_grads.keys(), "different parameter sets"
            diffs[v] = max(float((ref_grads[n] - grads[n]).abs().max()) for n in grads)
        model.zero_grad(set_to_none=True)

    gmax = max(float(g.abs().max()) for g in ref_grads.values())
    return {"loss_model_forward": ref, **{f"loss_{v}": x for v, x in losses.items()},
            "loss_max_abs_diff": max(abs(x - ref) for x in losses.values()),
            "grad_max_abs_diff_trl_default": diffs["trl_default"],
            "grad_max_abs_diff_trl_lean": diffs["trl_lean"],
            "grad_max_abs": gmax}


def collator_matches(trainer, rows, batch) -> bool:
    """TRL's own data path (its prepared dataset, which builds labels from completion_mask, and its collator)
    gives the same input_ids and labels for the same rows as the batch that is timed."""
    import torch

    ds = trainer.train_dataset
    try:
        ours = trainer.data_collator([ds[i] for i in rows])
        return bool(torch.equal(ours["input_ids"].cpu(), batch["input_ids"].cpu())
                    and torch.equal(ours["labels"].cpu(), batch["labels"].cpu()))
    except Exception as exc:  # record, do not fail the benchmark
        print(f"   TRL collator check failed: {exc!r}", flush=True)
        return False


# ------------------------------------------------------------------ FLOP floor and goals
def flop_floor(model, batch_shape, n_scored: int, n_mixed: int) -> dict:
    """FLOPs of an NTP and an SFTMix step (forward + backward, 2 + 4 FLOPs per multiply-add).

    Per position of the padded B x T batch: 6 x the parameters that do matmuls outside the
    output head (the input embedding is a lookup; a tied one is the head) plus the attention
    scores and their use (12 * layers * T * heads * head_dim); per scored token 6 * V * d for
    the head; per mixed position another 6 * V * d (the Mixup head pass). Norms, activations and
    the softmax are left out (a few % of the total).
    """
    from sftmix.loss.head import output_head, unwrap_causal_lm

    lm = unwrap_causal_lm(model)
    w = output_head(model).weight
    v, d = w.shape
    emb = lm.get_input_embeddings().weight
    total = sum(p.numel() for p in lm.parameters())
    non_head = total - w.numel() - (0 if emb is w else emb.numel())
    cfg = lm.config.get_text_config() if hasattr(lm.config, "get_text_config") else lm.config
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    b, t = batch_shape
    attention = 12 * cfg.num_hidden_layers * t * heads * head_dim
    backbone = (6 * non_head + attention) * b * t
    head_token = 6 * v * d
    ntp = backbone + head_token * n_scored
    sftmix = ntp + head_token * n_mixed
    return {"vocab": v, "hidden": d, "non_head_params": non_head, "head_params": v * d,
            "n_scored": n_scored, "n_mixed": n_mixed, "backbone_flops": backbone, "head_flops_per_token": head_token,
            "ntp_flops": ntp, "sftmix_flops": sftmix, "sftmix_over_ntp_floor": sftmix / ntp,
            "head_share_ntp": head_token * n_scored / ntp}


def goals(res: dict) -> list[dict]:
    """The issue's goals for one setting: measured, target, met, and what is missing where not."""
    tm, floor, ms = res["time"], res["flops"], res["median_ms"]
    out = []

    def add(name, measured, target, excess):
        met = measured <= target
        out.append({"goal": name, "measured": measured, "target": target, "met": met,
                    "excess": "" if met else excess})

    r = tm["sftmix_sftmix/sftmix_ntp"]["ratio_median_paired"]
    target = GOAL_SFTMIX_OVER_FLOOR * floor["sftmix_over_ntp_floor"]
    add(f"SFTMix/NTP step <= {GOAL_SFTMIX_OVER_FLOOR} x FLOP floor {floor['sftmix_over_ntp_floor']:.3f}", r, target,
        f"{(r - target) * ms['sftmix_ntp']:.0f} ms/step over")
    for v in ("sftmix_ntp", "sftmix_sftmix"):
        if f"{v}/trl_default" not in tm:  # --time-variants without TRL
            continue
        r = tm[f"{v}/trl_default"]["ratio_median_paired"]
        add(f"{v} step / TRL <= {GOAL_OVER_TRL}", r, GOAL_OVER_TRL,
            f"{(r - GOAL_OVER_TRL) * ms['trl_default']:.0f} ms/step over")
    mem = res.get("memory")
    if mem:
        by = mem["variants"]
        for v in ("sftmix_ntp", "sftmix_sftmix"):
            r = by[v]["train_mb"] / by["trl_default"]["train_mb"]
            add(f"{v} memory / TRL <= {GOAL_OVER_TRL}", r, GOAL_OVER_TRL,
                f"{by[v]['train_mb'] - GOAL_OVER_TRL * by['trl_default']['train_mb']:.0f} MB over")
            if "train_above_weights_grads_mb" in by[v]:  # what the trainer controls: all but weights + gradients
                ours, trl = by[v]["train_above_weights_grads_mb"], by["trl_default"]["train_above_weights_grads_mb"]
                add(f"{v} memory above weights+grads / TRL's (information) <= {GOAL_OVER_TRL}", ours / trl,
                    GOAL_OVER_TRL, f"{ours - GOAL_OVER_TRL * trl:.0f} MB over")
    return out


# ------------------------------------------------------------------ timing
def measure(name: str, spec: dict, smoke: bool, device: str = "cpu", bf16: bool = False,
            trl_gc: bool = False, timed=VARIANTS) -> dict:
    import time

    import torch

    tok, data = build_data(spec)
    base = build_model(spec, tok).train()
    models = {"sftmix_ntp": base, "trl_default": copy.deepcopy(base), "trl_lean": copy.deepcopy(base)}
    models["sftmix_sftmix"] = base  # one model for both sftmix trainers, as in bench_step.py
    trainers = {v: prepare(make_trainer(v, models[v], data, tok, spec["batch"], use_cpu=device == "cpu", bf16=bf16,
                                        gradient_checkpointing=trl_gc and v.startswith("trl")))
                for v in VARIANTS}
    rows = batch_rows(data, spec["batch"])
    batch = {k: t.to(device) for k, t in sftmix_batch(data, rows, tok.pad_token_id).items()}
    num_items = (batch["labels"][:, 1:] != -100).sum()
    b, t = batch["input_ids"].shape
    info = {"setting": name, **spec, "batch_shape": [b, t], "n_response_tokens": int(num_items),
            "n_scored_positions_trl_cpu": b * (t - 1),
            "n_real_tokens": int(batch["attention_mask"].sum()),
            "n_params": sum(p.numel() for p in base.parameters()),
            "trl_gradient_checkpointing_on": bool(getattr(models["trl_default"], "is_gradient_checkpointing", False)),
            "trl_collator_matches": collator_matches(trainers["trl_default"], rows, batch)}
    n_mixed = trainers["sftmix_sftmix"]._count_mixup(batch["labels"])
    info["flops"] = flop_floor(base, (b, t), int(num_items), int(n_mixed))
    info.update(agreement(trainers, models, batch, num_items, bf16))
    print(f"   losses {info['loss_sftmix_ntp']:.6f} / {info['loss_trl_default']:.6f} / {info['loss_trl_lean']:.6f} "
          f"(model forward {info['loss_model_forward']:.6f}); max |grad diff| "
          f"{info['grad_max_abs_diff_trl_default']:.2e} / {info['grad_max_abs_diff_trl_lean']:.2e}", flush=True)

    fns = {v: step_fn(v, trainers[v], models[v], batch, num_items, bf16) for v in timed}
    # warmup=0 (real models, ~1 min a step here): the agreement check above already ran each trainer once.
    times = C.interleave(fns, repeats=spec["rounds"], warmup=spec.get("warmup", 1))
    pairs = {"sftmix_ntp/trl_default": ("trl_default", "sftmix_ntp"),
             "sftmix_sftmix/trl_default": ("trl_default", "sftmix_sftmix"),
             "sftmix_ntp/trl_lean": ("trl_lean", "sftmix_ntp"),
             "sftmix_sftmix/trl_lean": ("trl_lean", "sftmix_sftmix"),
             "trl_lean/trl_default": ("trl_default", "trl_lean"),
             "sftmix_sftmix/sftmix_ntp": ("sftmix_ntp", "sftmix_sftmix")}
    info["time"] = {k: C.summarize(times, a, o) for k, (a, o) in pairs.items() if a in times and o in times}
    info["median_ms"] = {v: 1e3 * sorted(ts)[len(ts) // 2] for v, ts in times.items()}
    info["gflop_per_s"] = {v: info["flops"]["sftmix_flops" if v == "sftmix_sftmix" else "ntp_flops"] / ms / 1e6
                           for v, ms in info["median_ms"].items()}
    info["times_s"] = times
    if device != "cpu":  # GPU: peak allocated during one step above what was allocated before it
        info["cuda_step_peak_mb"] = {}
        for v, fn in fns.items():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            fn()
            info["cuda_step_peak_mb"][v] = (torch.cuda.max_memory_allocated() - before) / 2**20
        info["cuda_step_peak_ratio_sftmix_ntp/trl_default"] = (info["cuda_step_peak_mb"]["sftmix_ntp"]
                                                              / info["cuda_step_peak_mb"]["trl_default"])

    opt = torch.optim.AdamW(base.parameters(), lr=1e-5)
    for p in base.parameters():
        p.grad = torch.zeros_like(p)
    ts = []
    for _ in range(3):
        t0 = time.perf_counter()
        opt.step()
        ts.append(time.perf_counter() - t0)
    base.zero_grad(set_to_none=True)
    info["adamw_step_ms"] = 1e3 * sorted(ts)[1]
    return info


# ------------------------------------------------------------------ memory (child processes)
def prime(threads: int) -> None:
    """Import and run every code path once at toy size, so a forked child starts with it all loaded."""
    C.setup_torch(threads)
    spec = dict(vocab=300, hidden=16, batch=4, length=16)
    tok, data = build_data(spec)
    for v in VARIANTS:
        model = build_model(spec, tok).train()
        trainer = prepare(make_trainer(v, model, data, tok, spec["batch"]))
        batch = sftmix_batch(data, batch_rows(data, spec["batch"]), tok.pad_token_id)
        step_fn(v, trainer, model, batch, (batch["labels"][:, 1:] != -100).sum())()


def child(setting: str, variant: str, smoke: bool, threads: int) -> dict:
    C.setup_torch(threads)
    spec = settings(smoke)[setting]
    tok, data = build_data(spec)
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    rss0 = C.rss_mb()
    model = build_model(spec, tok).train()
    trainer = prepare(make_trainer(variant, model, data, tok, spec["batch"]))
    batch = sftmix_batch(data, batch_rows(data, spec["batch"]), tok.pad_token_id)
    num_items = (batch["labels"][:, 1:] != -100).sum()
    step = step_fn(variant, trainer, model, batch, num_items)
    if spec.get("warmup", 1):
        step()  # warm-up (real models: none; train_mb is read from the first step, step_mb then includes its set-up)
    libc.malloc_trim(0)
    rss1 = C.rss_mb()
    ok = C.reset_peak()
    loss = step()
    peak = C.peak_mb()
    weights_grads = sum(p.numel() * p.element_size() * (1 + p.requires_grad) for p in model.parameters()) / 2**20
    return {"setting": setting, "variant": variant, "rss_before_model_mb": rss0, "rss_before_step_mb": rss1,
            "peak_mb": peak, "train_mb": peak - rss0, "step_mb": peak - rss1, "loss": float(loss), "peak_reset": ok,
            "weights_grads_mb": weights_grads, "train_above_weights_grads_mb": peak - rss0 - weights_grads}


def _forked(conn, args):
    try:
        conn.send(child(*args))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        conn.send({"error": repr(exc)})
    finally:
        conn.close()


def run_forked(args: tuple, timeout: float = 1800) -> dict:
    """``child(*args)`` in a process forked from this one (imports already done); its result dict."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_forked, args=(conn, args))
    proc.start()
    conn.close()
    if not parent.poll(timeout):
        proc.kill()
        raise TimeoutError(f"memory child {args} took more than {timeout} s")
    res = parent.recv()
    proc.join()
    if "error" in res:
        raise RuntimeError(f"memory child {args} failed: {res['error']}")
    return res


def memory(setting: str, smoke: bool, threads: int, spawn: bool) -> dict:
    if spawn:  # a fresh interpreter per variant, exactly as bench_memory.py does (slower: ~15 s of imports each)
        argv = lambda v: [__file__, "--child", setting, v, "--threads", str(threads)] + (["--smoke"] if smoke else [])
        by = dict(zip(VARIANTS, C.run_children([argv(v) for v in VARIANTS])))
    else:
        by = {v: run_forked((setting, v, smoke, threads)) for v in VARIANTS}
    ratio = lambda num, den: {m: by[num][m] / by[den][m] for m in ("train_mb", "step_mb")}
    return {"variants": by, "ratios": {"sftmix_ntp/trl_default": ratio("sftmix_ntp", "trl_default"),
                                       "sftmix_sftmix/trl_default": ratio("sftmix_sftmix", "trl_default"),
                                       "sftmix_ntp/trl_lean": ratio("sftmix_ntp", "trl_lean"),
                                       "trl_lean/trl_default": ratio("trl_lean", "trl_default")}}


def main():
    ap = C.parser(__doc__)
    ap.add_argument("--child", nargs=2, metavar=("SETTING", "VARIANT"), help="internal: memory of one variant")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--only", nargs="+", default=None,
                    help=f"settings to run (default all but the real models {', '.join(REAL_SETTINGS)}: each has its "
                         "own run)")
    ap.add_argument("--gemma", default=None, help=f"Gemma 3 270M GGUF file or folder when sftmix has no "
                                                  f"gemma3-270m name (default {GEMMA_GGUF})")
    ap.add_argument("--skip-memory", action="store_true", help="timing and checks only")
    ap.add_argument("--rounds", type=int, default=None, help="timing rounds of every setting (default: its own)")
    ap.add_argument("--time-variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                    help="variants timed (default all; e.g. sftmix_ntp sftmix_sftmix for the SFTMix/NTP ratio alone)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda; on cuda memory is max_memory_allocated")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for every trainer (TRL's default)")
    ap.add_argument("--trl-gc", action="store_true", help="gradient checkpointing for TRL (its default)")
    ap.add_argument("--spawn", action="store_true",
                    help="memory children as fresh interpreters (default: forked after imports)")
    args = ap.parse_args()
    if args.gemma:
        os.environ["SFTMIX_BENCH_GEMMA"] = args.gemma  # children (forked or spawned) inherit it
    if args.child:
        prime(args.threads)  # as the forked children: lazy imports are not counted as training memory
        return C.emit(child(*args.child, args.smoke, args.threads))
    load0 = C.load_avg()
    C.setup_torch(args.threads)
    import torch
    import transformers
    import trl

    names = [n for n in settings(args.smoke) if (n in args.only if args.only else n not in REAL_SETTINGS)]
    mem = {}
    if args.device != "cpu":
        args.skip_memory = True  # VmHWM measures host memory; the GPU peak is recorded by measure()
    if not args.skip_memory:  # first, while this process has run nothing big (the children fork from it)
        prime(args.threads)
        for name in names:
            mem[name] = memory(name, args.smoke, args.threads, args.spawn)
            print(f"== {name} memory train_mb " + "  ".join(
                f"{v} {x['train_mb']:.0f}" for v, x in mem[name]["variants"].items()), flush=True)
    rows = []
    for name in names:
        print(f"== {name}", flush=True)
        spec = settings(args.smoke)[name]
        if args.rounds:
            spec["rounds"] = args.rounds
        res = measure(name, spec, args.smoke, args.device, args.bf16, args.trl_gc, tuple(args.time_variants))
        if name in mem:
            res["memory"] = mem[name]
        res["goals"] = goals(res)
        rows.append(res)
        tm, fl = res["time"], res["flops"]
        print("   step ms " + "  ".join(f"{v} {ms:.1f}" for v, ms in res["median_ms"].items())
              + "  | " + "  ".join(f"{k} {x['ratio_median_paired']:.3f}" for k, x in tm.items()), flush=True)
        print(f"   FLOP floor: NTP {fl['ntp_flops'] / 1e9:.1f} GFLOP (head {fl['head_share_ntp']:.0%}), SFTMix "
              f"{fl['sftmix_flops'] / 1e9:.1f} GFLOP ({fl['n_mixed']} mixed positions x 6Vd); SFTMix/NTP floor "
              f"{fl['sftmix_over_ntp_floor']:.3f}; GFLOP/s " + "  ".join(
                  f"{v} {x:.1f}" for v, x in res["gflop_per_s"].items()), flush=True)
        print(C.table(res["goals"], ["goal", "measured", "target", "met", "excess"]), flush=True)
    cols = ["setting", "B x T", "N / scored", "ntp/trl", "IQR", "sftmix/trl", "ntp/trl_lean", "sftmix/trl_lean",
            "mem ntp/trl", "mem ntp/trl_lean", "loss diff", "grad diff"]
    table = []
    for r in rows:
        tm, mem = r["time"], r.get("memory", {}).get("ratios", {})
        nan = {"ratio_median_paired": float("nan"), "ratio_q1": float("nan"), "ratio_q3": float("nan")}
        tm = {k: tm.get(k, nan) for k in ("sftmix_ntp/trl_default", "sftmix_sftmix/trl_default",
                                           "sftmix_ntp/trl_lean", "sftmix_sftmix/trl_lean")}
        x = tm["sftmix_ntp/trl_default"]
        table.append({"setting": r["setting"], "B x T": "%d x %d" % tuple(r["batch_shape"]),
                      "N / scored": f"{r['n_response_tokens']} / {r['n_scored_positions_trl_cpu']}",
                      "ntp/trl": x["ratio_median_paired"], "IQR": f"{x['ratio_q1']:.3f}-{x['ratio_q3']:.3f}",
                      "sftmix/trl": tm["sftmix_sftmix/trl_default"]["ratio_median_paired"],
                      "ntp/trl_lean": tm["sftmix_ntp/trl_lean"]["ratio_median_paired"],
                      "sftmix/trl_lean": tm["sftmix_sftmix/trl_lean"]["ratio_median_paired"],
                      "mem ntp/trl": mem.get("sftmix_ntp/trl_default", {}).get("train_mb", float("nan")),
                      "mem ntp/trl_lean": mem.get("sftmix_ntp/trl_lean", {}).get("train_mb", float("nan")),
                      "loss diff": f"{r['loss_max_abs_diff']:.1e}",
                      "grad diff": f"{max(r['grad_max_abs_diff_trl_default'], r['grad_max_abs_diff_trl_lean']):.1e}"})
    print(C.table(table, cols))
    ok = all(math.isfinite(r["loss_max_abs_diff"]) for r in rows)
    C.write_result("bench_peer", args, {
        "threads": args.threads, "device": args.device, "bf16": args.bf16, "trl_gradient_checkpointing": args.trl_gc,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                              "trl": trl.__version__},
        "step": "Trainer.training_step(model, batch, num_items_in_batch) + zero_grad; no optimizer update",
        "memory_method": ("VmHWM per child process, " + ("fresh interpreter" if args.spawn else "forked after imports")
                          + " (train_mb: above RSS before the model was built)"),
        "results": rows, "finite": ok}, load0)


if __name__ == "__main__":
    sys.exit(main())
