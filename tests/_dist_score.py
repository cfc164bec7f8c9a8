"""Helper for tests/test_distributed.py, run under ``torchrun --nproc_per_node 2`` on CPU (gloo).

    torchrun --standalone --nproc_per_node 2 tests/_dist_score.py OUT_DIR N_EXAMPLES

Trains a frozen (lr=0) reference run with online recording for one epoch, then scores its
checkpoint. Every process writes ``rank<k>.json`` with the rows it scored; the main
process's files (checkpoint, online and score parquet files) go under OUT_DIR.
"""
import json
import sys
from pathlib import Path

import datasets
import transformers

import sftmix.dynamics.scoring as scoring
from sftmix.config import SFTMixConfig
from sftmix.data import load_examples, tokenize_examples
from sftmix.toy import build_tiny_model, build_toy_tokenizer
from sftmix.train.run import train_reference


def main(out: Path, n: int) -> None:
    from accelerate import PartialState

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    state = PartialState()
    tok = build_toy_tokenizer()
    data = tokenize_examples(load_examples("builtin", n_train=n, n_test=1, seed=3), tok, max_length=96)
    model = build_tiny_model("llama", tokenizer=tok, hidden_size=32, seed=0)
    config = SFTMixConfig(output_dir=str(out / "reference"), num_train_epochs=1, per_device_train_batch_size=8,
                          learning_rate=0.0, disable_tqdm=True, use_cpu=True, logging_steps=1000,
                          ddp_backend="gloo")
    dirs = train_reference(model, tok, data, config, n_checkpoints=1, out_dir=out / "reference",
                                   record_online=True)

    scored_rows = []
    original = scoring.score_rows

    def counting(model, tokenized, rows, **kw):
        scored_rows.extend(int(r) for r in rows)
        return original(model, tokenized, rows, **kw)

    scoring.score_rows = counting
    frames = scoring.score_checkpoints(dirs, data, out_dir=out / "scores", progress=False)
    (out / f"rank{state.process_index}.json").write_text(json.dumps({
        "rows": scored_rows, "n_scored": frames[0].attrs["n_scored"], "n_processes": state.num_processes,
        "checkpoints": [str(d) for d in dirs]}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
