"""Helper for tests/test_distributed_train.py, run under ``torchrun --nproc_per_node 2`` on CPU (gloo).

    torchrun --standalone --nproc_per_node 2 tests/_dist_train.py OUT_DIR

1. SFTMix training of a tiny model: every process records the ``example_index`` of each
   micro-batch it trains on (``rank<k>_batches.json``); the main process saves the run
   (log history, weights) under ``OUT_DIR/train``.
2. A tiny ``run_experiment`` under ``OUT_DIR/runs``: every process records which stage
   functions it ran (``rank<k>_stages.json``).
"""
import json
import sys
from pathlib import Path

import datasets
import torch
import transformers
from transformers import TrainerCallback

from tests.helpers import BATCH, N_TRAIN, experiment_config


class BatchLog(TrainerCallback):
    """Records the rows of every training micro-batch (SFTMixTrainer calls ``observe_batch``)."""

    def __init__(self):
        self.batches = []

    def observe_batch(self, *, example_index, state=None, **_):
        self.batches.append({"step": state.global_step + 1, "epoch": int(state.epoch or 0),
                             "rows": [int(i) for i in example_index.tolist()]})


def train_sftmix(out: Path, rank: int) -> None:
    from sftmix.config import SFTMixConfig
    from sftmix.data import load_examples, tokenize_examples
    from sftmix.toy import build_tiny_model, build_toy_tokenizer
    from sftmix.train.run import train_model

    tok = build_toy_tokenizer()
    data = tokenize_examples(load_examples("builtin", n_train=N_TRAIN, n_test=1, seed=3), tok, max_length=96)
    ids = list(data["example_id"])
    split = {"confident": ids[: N_TRAIN // 2], "unconfident": ids[N_TRAIN // 2:]}
    model = build_tiny_model("llama", tokenizer=tok, hidden_size=32, num_heads=2, seed=0)
    config = SFTMixConfig(output_dir=str(out / "train"), method="sftmix",
                          per_device_train_batch_size=BATCH, num_train_epochs=4, learning_rate=3e-3,
                          warmup_ratio=0.0, logging_steps=2, disable_tqdm=True, use_cpu=True, seed=0,
                          ddp_backend="gloo", report_to=[])
    log = BatchLog()
    train_model(model, tok, data, config, split=split, callbacks=[log])
    (out / f"rank{rank}_batches.json").write_text(json.dumps(log.batches))


def run_pipeline(out: Path, rank: int, world: int) -> None:
    from sftmix.pipeline import stages
    from sftmix.pipeline.experiment import run_experiment

    ran = []
    for name in ("reference_stage", "dynamics_stage", "prune_stage", "split_stage", "train_stage", "eval_stage",
                 "embeddings_stage"):
        def counted(*args, _fn=getattr(stages, name), _name=name, **kwargs):
            ran.append(_name)
            return _fn(*args, **kwargs)
        setattr(stages, name, counted)
    results = run_experiment(experiment_config(out / "runs", 16), progress=False)
    # A main-only step that fails: every process must raise (none left waiting at a barrier).
    from sftmix.distributed import Processes

    try:
        Processes().on_main(lambda: 1 / 0, "a failing step")
        failure = None
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
    (out / f"rank{rank}_stages.json").write_text(json.dumps({
        "ran": ran, "world": world, "results_name": results["name"],
        "per_seed": results["per_seed"], "failure": failure}))


def main(out: Path) -> None:
    from accelerate import PartialState

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(1)
    state = PartialState(cpu=True)  # without cpu=True, a CPU-only launch looks like one process
    rank, world = state.process_index, state.num_processes
    assert world == 2, world
    train_sftmix(out, rank)
    run_pipeline(out, rank, world)
    misuse(out, rank)


def misuse(out: Path, rank: int) -> None:
    """CPU processes without use_cpu=True do not join the process group: the trainer must refuse."""
    from sftmix.config import SFTMixConfig
    from sftmix.toy import build_tiny_model, build_toy_tokenizer
    from sftmix.train.trainer import SFTMixTrainer

    tok = build_toy_tokenizer()
    config = SFTMixConfig(output_dir=str(out / "misuse"), use_cpu=False, report_to=[])
    try:
        SFTMixTrainer(model=build_tiny_model("llama", tokenizer=tok, hidden_size=16, num_heads=2), args=config)
        error = None
    except RuntimeError as exc:
        error = str(exc)
    (out / f"rank{rank}_misuse.json").write_text(json.dumps({"error": error}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
