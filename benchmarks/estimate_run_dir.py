"""What a finished run directory written by an earlier sftmix would take today, with each ``keep_weights`` setting.

    python benchmarks/estimate_run_dir.py /tmp/gemma/runs/gemma32

Reads only (stat and byte comparisons; nothing is changed): the bytes stored now (a hard link once), the bytes of
files equal to the last reference checkpoint's that a run now stores as links to it (tokenizer, config), and the
trained runs' weights that ``keep_weights: reference`` removes (those not hard-linked to the reference). An
estimate for a run too large to repeat here (Gemma 3 270M), not a measurement of the new code.
"""
import filecmp
import json
import sys
from pathlib import Path

from sftmix.io import WEIGHT_PATTERNS, RunDir

rd = RunDir(sys.argv[1])
last = rd.reference / Path(json.loads(rd.checkpoints.read_text())[-1]).name
stored = {p.stat().st_ino: p.stat().st_size for p in rd.root.rglob("*") if p.is_file()}
trained = [f for f in rd.root.glob("*/seed*") if f.is_dir() and f.parent != rd.ablation]
weights = {p for f in [*trained, *rd.reference.glob("checkpoint-*")] for pattern in WEIGHT_PATTERNS
           for p in f.glob(pattern)}
linked = 0
for folder in [*trained, *(c for c in rd.reference.glob("checkpoint-*") if c != last)]:
    for p in folder.iterdir():
        same = last / p.name
        if (p.is_file() and p not in weights and same.is_file() and not p.samefile(same)
                and filecmp.cmp(p, same, shallow=False)):
            linked += p.stat().st_size
removed = sum(p.stat().st_size for f in trained for pattern in WEIGHT_PATTERNS for p in f.glob(pattern)
              if p.stat().st_nlink == 1)
today = sum(stored.values())
print(json.dumps({"run_dir": str(rd.root), "bytes_stored": today, "bytes_now_linked": linked,
                  "bytes_of_trained_weights_removed_by_keep_weights_reference": removed,
                  "estimate_keep_weights_all": today - linked,
                  "estimate_keep_weights_reference": today - linked - removed}, indent=1))
