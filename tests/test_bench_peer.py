"""benchmarks/bench_peer.py (sftmix vs TRL SFTTrainer) runs with --smoke and writes sane JSON."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_peer_smoke(tmp_path):
    out = tmp_path / "peer.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_peer.py"), "--smoke", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "bench_peer" and doc["smoke"] is True
    assert doc["machine"]["cores"] >= 1 and doc["versions"]["trl"]
    assert len(doc["results"]) == 2
    for r in doc["results"]:
        for pair, t in r["time"].items():
            assert math.isfinite(t["ratio_median_paired"]) and t["ratio_median_paired"] > 0, pair
        for pair, m in r["memory"]["ratios"].items():
            assert math.isfinite(m["train_mb"]) and m["train_mb"] > 0, pair
        # Same loss definition (mean NLL over response tokens) and the same gradients.
        assert r["loss_max_abs_diff"] < 1e-4
        assert r["grad_max_abs_diff_trl_default"] < 1e-4 and r["grad_max_abs_diff_trl_lean"] < 1e-4
        assert r["trl_collator_matches"]
        for v in ("sftmix_ntp", "trl_default", "trl_lean"):
            assert abs(r[f"loss_{v}"] - r["loss_model_forward"]) < 1e-4
