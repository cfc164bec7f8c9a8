"""Helper for tests/test_fsdp.py, run under ``torchrun --nproc-per-node 2`` on CPU (gloo).

    torchrun --standalone --nproc-per-node 2 tests/_dist_fsdp.py OUT_DIR

Trains a tiny model sharded with FSDP2 (accelerate's plugin, ``fsdp_version`` 2, on CPU via
:func:`sftmix.distributed.shard_cpu_processes`), each run into ``OUT_DIR/<run>``:

* ``sftmix`` and ``ntp``: per-process batch :data:`BATCH`, log every step; ``sftmix`` also saves
  sharded checkpoints every :data:`SAVE_EVERY` steps. Every process records the rows of its
  micro-batches (``<run>/rank<k>_batches.json``); the main process saves the gathered weights.
* ``resume``: SFTMix from ``sftmix/checkpoint-<SAVE_EVERY>`` into a model built with another seed.
* ``dtensor_head``: SFTMix on a model the script shards itself with the root resharding after
  forward, so the output head is a ``DTensor`` when the chunked Mixup pass runs
  (``dtensor_head/head_type.json`` records that it was).
"""
import json
import sys
from pathlib import Path

import datasets
import torch
import transformers
from transformers import TrainerCallback

N_TRAIN, BATCH, EPOCHS, SAVE_EVERY, LR = 32, 4, 2, 3, 3e-3


class BatchLog(TrainerCallback):
    """Records the rows of every training micro-batch (SFTMixTrainer calls ``observe_batch``)."""

    def __init__(self):
        self.batches = []

    def observe_batch(self, *, example_index, state=None, **_):
        self.batches.append({"step": state.global_step + 1, "rows": [int(i) for i in example_index.tolist()]})


def setup():
    """Tokenizer, tokenized data and the confident/unconfident split (first half / second half)."""
    from sftmix.data import load_examples, tokenize_examples
    from sftmix.toy import build_toy_tokenizer

    tok = build_toy_tokenizer()
    data = tokenize_examples(load_examples("builtin", n_train=N_TRAIN, n_test=1, seed=3), tok, max_length=96)
    ids = list(data["example_id"])
    return tok, data, {"confident": ids[: N_TRAIN // 2], "unconfident": ids[N_TRAIN // 2:]}


def tiny_model(tok, seed=0):
    from sftmix.toy import build_tiny_model

    return build_tiny_model("llama", tokenizer=tok, hidden_size=32, num_heads=2, seed=seed)


def config(out: Path, method: str, batch: int, *, sharded: bool, save: bool = False,
           wrap=("transformer_layer_cls_to_wrap", ["LlamaDecoderLayer"])):
    """The run's arguments; the one-process reference (in the test) uses ``sharded=False``."""
    from sftmix.config import SFTMixConfig

    extra = {}
    if sharded:
        extra = dict(fsdp="full_shard", ddp_backend="gloo",
                     fsdp_config={"fsdp_version": 2, "state_dict_type": "SHARDED_STATE_DICT", wrap[0]: wrap[1]})
    return SFTMixConfig(output_dir=str(out), method=method, per_device_train_batch_size=batch,
                        num_train_epochs=EPOCHS, learning_rate=LR, warmup_ratio=0.0, logging_steps=1,
                        disable_tqdm=True, use_cpu=True, seed=0, report_to=[],
                        save_strategy="steps" if save else "no", save_steps=SAVE_EVERY, **extra)


def shard_with_resharded_root(model):
    """FSDP2 by hand: each decoder layer and the root reshard after forward (the head stays sharded)."""
    from torch.distributed.fsdp import fully_shard

    for layer in model.model.layers:
        fully_shard(layer, reshard_after_forward=True)
    return fully_shard(model, reshard_after_forward=True)


def main(out: Path) -> None:
    from accelerate import PartialState

    from sftmix.train.run import train_model

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(1)
    rank = PartialState(cpu=True).process_index
    tok, data, split = setup()
    for run, method in (("sftmix", "sftmix"), ("ntp", "ntp")):
        log = BatchLog()
        train_model(tiny_model(tok), tok, data, config(out / run, method, BATCH, sharded=True, save=run == "sftmix"),
                    split=split if method == "sftmix" else None, callbacks=[log])
        (out / run / f"rank{rank}_batches.json").write_text(json.dumps(log.batches))

    # Resume from the sharded checkpoint into a model with other initial weights.
    train_model(tiny_model(tok, seed=1), tok, data, config(out / "resume", "sftmix", BATCH, sharded=True),
                split=split, resume=str(out / "sftmix" / f"checkpoint-{SAVE_EVERY}"))

    model = shard_with_resharded_root(tiny_model(tok))
    with torch.no_grad():
        model(input_ids=torch.as_tensor([data[0]["input_ids"]]), logits_to_keep=1)
    head_type = type(model.lm_head.weight).__name__  # after a forward, as compute_loss sees it
    # Already sharded: accelerate keeps it as it is (a size policy, as its layers' classes are FSDP ones now).
    train_model(model, tok, data, config(out / "dtensor_head", "sftmix", BATCH, sharded=True,
                                         wrap=("min_num_params", 1)), split=split)
    (out / "dtensor_head" / f"head_type{rank}.json").write_text(json.dumps(head_type))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
