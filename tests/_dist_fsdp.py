"""Helper for tests/test_fsdp.py: two CPU processes (gloo) sharded by FSDP2 as the shipped config says.

    accelerate launch --config_file configs/accelerate/fsdp-cpu.yaml tests/_dist_fsdp.py OUT_DIR

accelerate's FSDP plugin (``fsdp_version`` 2) comes from the YAML, through the environment the
launcher sets; on CPU processes :func:`sftmix.distributed.shard_cpu_processes` applies it. Each run
writes into ``OUT_DIR/<run>``; every process records the class of its trained parameters
(``<run>/param_type<k>.json``: ``DTensor`` when sharded).

* ``sftmix`` and ``ntp``: per-process batch :data:`BATCH`, log every step; ``sftmix`` also saves
  sharded checkpoints every :data:`SAVE_EVERY` steps. Every process records the rows of its
  micro-batches (``<run>/rank<k>_batches.json``); the main process saves the gathered weights.
* ``resume``: SFTMix from ``sftmix/checkpoint-<SAVE_EVERY>`` into a model built with another seed.
* ``accumulate``: SFTMix with half the batch and 2 micro-batches per optimizer step.
* ``reference``: the NTP run again as the pipeline's reference run (its checkpoints are scored,
  so they hold full weights besides the shards).
* ``dtensor_head``: SFTMix on a model the script shards itself with the root resharding after
  forward, so the output head is a ``DTensor`` when the chunked Mixup pass runs
  (``dtensor_head/head_type<k>.json`` records that it was).
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


def config(out: Path, method: str, batch: int, *, save: bool = False, fsdp_config: dict | None = None,
           accumulate: int = 1):
    """The run's arguments. Sharding comes from the launcher's environment (the YAML), or from
    ``fsdp_config``; the one-process reference in the test has neither."""
    from sftmix.config import SFTMixConfig

    extra = {} if fsdp_config is None else {"fsdp": True, "fsdp_config": {"fsdp_version": 2, **fsdp_config}}
    return SFTMixConfig(output_dir=str(out), method=method, per_device_train_batch_size=batch,
                        num_train_epochs=EPOCHS, learning_rate=LR, warmup_ratio=0.0, logging_steps=1,
                        gradient_accumulation_steps=accumulate, disable_tqdm=True, use_cpu=True, seed=0, report_to=[],
                        save_strategy="steps" if save else "no", save_steps=SAVE_EVERY, **extra)


def shard_with_resharded_root(model):
    """FSDP2 by hand: each decoder layer and the root reshard after forward (the head stays sharded)."""
    from torch.distributed.fsdp import fully_shard

    for layer in model.model.layers:
        fully_shard(layer, reshard_after_forward=True)
    return fully_shard(model, reshard_after_forward=True)


def main(out: Path) -> None:
    from accelerate import PartialState

    from sftmix.train.run import train_model, train_reference

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(1)
    rank = PartialState(cpu=True).process_index

    def record(run: str, trainer, name: str = "param_type") -> None:
        kind = type(next(trainer.model.parameters())).__name__
        (out / run / f"{name}{rank}.json").write_text(json.dumps(kind))

    tok, data, split = setup()
    for run, method in (("sftmix", "sftmix"), ("ntp", "ntp")):
        log = BatchLog()
        trainer = train_model(tiny_model(tok), tok, data, config(out / run, method, BATCH, save=run == "sftmix"),
                              split=split if method == "sftmix" else None, callbacks=[log])
        (out / run / f"rank{rank}_batches.json").write_text(json.dumps(log.batches))
        record(run, trainer)

    # Resume from the sharded checkpoint into a model with other initial weights.
    trainer = train_model(tiny_model(tok, seed=1), tok, data, config(out / "resume", "sftmix", BATCH), split=split,
                          resume=str(out / "sftmix" / f"checkpoint-{SAVE_EVERY}"))
    record("resume", trainer)

    # Half the batch, two micro-batches per step: the same 8 rows per step.
    trainer = train_model(tiny_model(tok), tok, data, config(out / "accumulate", "sftmix", BATCH // 2, accumulate=2),
                          split=split)
    record("accumulate", trainer)

    train_reference(tiny_model(tok), tok, data, config(out / "reference", "ntp", BATCH), n_checkpoints=2,
                    out_dir=out / "reference")

    model = shard_with_resharded_root(tiny_model(tok))
    with torch.no_grad():
        model(input_ids=torch.as_tensor([data[0]["input_ids"]]), logits_to_keep=1)
    (out / "dtensor_head").mkdir(exist_ok=True)
    (out / "dtensor_head" / f"head_type{rank}.json").write_text(
        json.dumps(type(model.lm_head.weight).__name__))  # after a forward, as compute_loss sees it
    # Already sharded: accelerate keeps it as it is (a size policy, as its layers' classes are FSDP ones now).
    own = {"auto_wrap_policy": "SIZE_BASED_WRAP", "min_num_params": 1, "state_dict_type": "SHARDED_STATE_DICT"}
    trainer = train_model(model, tok, data, config(out / "dtensor_head", "sftmix", BATCH, fsdp_config=own), split=split)
    record("dtensor_head", trainer)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    # Leave the process group before exiting: a rank that exits while gloo's threads still run can
    # abort ("terminate called without an active exception", seen once under load).
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
