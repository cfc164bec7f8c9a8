"""Helper for tests/test_trl_distributed.py, run under ``torchrun --nproc_per_node 2`` on CPU (gloo).

    torchrun --standalone --nproc_per_node 2 tests/_dist_trl.py OUT_DIR

Trains SFTMixTRLTrainer (TRL prompt-completion data) with a DynamicsCallback for 2 epochs on two
processes, saving a checkpoint at each epoch end, then scores those checkpoints with score_checkpoints.
The main process writes ``result.json``: the callback's and score_checkpoints' largest difference,
the logged losses and the ids each process trained on.
"""
import json
import sys
from pathlib import Path

import datasets
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sftmix  # noqa: E402
from sftmix.distributed import Processes  # noqa: E402
from tests import _integrations as T  # noqa: E402


def main(out: Path) -> None:
    from accelerate import PartialState

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    state = PartialState()
    tok = T.tokenizer()
    data = T.prompt_completion_dataset(16)
    ids = list(data["example_id"])
    args = sftmix.SFTMixTRLConfig(**{**T.trl_args(out / "trl", num_train_epochs=2, per_device_train_batch_size=4),
                                     "save_strategy": "epoch", "ddp_backend": "gloo"})
    trainer = sftmix.SFTMixTRLTrainer(model=T.model(tok), args=args, train_dataset=data, processing_class=tok,
                                      split={"confident": ids[:8], "unconfident": ids[8:]})
    callback = sftmix.DynamicsCallback(out / "run", trainer.train_dataset, batch_size=4)
    trainer.add_callback(callback)
    trained = []
    original = trainer.compute_loss

    def spy(model, inputs, *a, **k):
        trained.extend(int(i) for i in inputs["example_index"])
        return original(model, inputs, *a, **k)
    trainer.compute_loss = spy
    trainer.train()
    ckpts = sorted((out / "trl").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    frames = sftmix.score_checkpoints(ckpts, callback.data, out_dir=out / "scores", batch_size=4, tokens="trained",
                                      progress=False)
    diff = max(float((a[c] - b[c]).abs().max()) for a, b in zip(callback.frames, frames)
               for c in ("nll", "ppl", "prob", "acc"))
    everyone = Processes().gather([trained])
    if state.is_main_process:
        (out / "result.json").write_text(json.dumps({
            "max_abs_diff": diff, "n_frames": len(callback.frames), "n_checkpoints": len(ckpts),
            "losses": [h for h in trainer.state.log_history if "mixup_loss" in h], "trained": everyone,
            "world_size": state.num_processes}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
