"""Peak and final size of a run directory: a tiny experiment (32 chats, 2 epochs, the NTP run of seed 0 as the
reference), measured right after every checkpoint and model save, in bytes and in multiples of the weights file.

    PYTHONPATH=<checkout> python benchmarks/bench_run_dir.py /tmp/runs tiny-gemma [all|reference]

The third argument is the experiment setting ``keep_weights`` (default all). Run from two checkouts to compare
code versions, or with both settings (README, "What a run directory keeps"). Sizes are ``du -sb``: a hard-linked
file counts once.
"""
import json
import subprocess
import sys
from pathlib import Path

import transformers

from sftmix.pipeline.experiment import run_experiment
from tests.helpers import tiny_config

runs = Path(sys.argv[1])
subprocess.run(["rm", "-rf", str(runs)])
keep = sys.argv[3] if len(sys.argv) > 3 else "all"
config = tiny_config(runs, name="lean", model={"model_name_or_path": sys.argv[2]}, reference_training={},
                     embeddings=False, data={"n_train": 32, "n_test": 8, "max_length": 192}, keep_weights=keep)
root = runs / "lean"
du = lambda: int(subprocess.run(["du", "-sb", str(root)], capture_output=True, text=True).stdout.split()[0])
peak = {"bytes": 0}
for name in ("_save_checkpoint", "save_model"):
    real = getattr(transformers.Trainer, name)
    def spy(self, *a, _real=real, **k):
        out = _real(self, *a, **k)
        size = du()
        if size > peak["bytes"]:
            found = subprocess.run(f"cd {root} && find . -name '*.safetensors' -o -name 'optimizer.pt'",
                                   shell=True, capture_output=True, text=True).stdout.split()
            peak.update(bytes=size, files=found)
        return out
    setattr(transformers.Trainer, name, spy)
run_experiment(config, progress=False)
weights = next(root.rglob("model.safetensors")).stat().st_size
final = du()
print(json.dumps({"keep_weights": keep, "weights_bytes": weights, "peak_bytes": peak["bytes"],
                  "peak_in_weights": round(peak["bytes"] / weights, 2), "final_bytes": final,
                  "final_in_weights": round(final / weights, 2), "peak_files": sorted(peak["files"])}, indent=1))
