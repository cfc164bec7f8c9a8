"""benchmarks/bench_trl_sftmix.py runs with --smoke and writes sane JSON: the same batch as TRL's collator,
sftmix's NTP gradients equal to TRL's, a finite ratio for every timed pair."""

import json
import math
import os
import subprocess
import sys

import pytest

from .helpers import ROOT


@pytest.mark.slow
def test_bench_trl_sftmix_smoke(tmp_path):
    out = tmp_path / "trl.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_trl_sftmix.py"), "--smoke", "--out",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "bench_trl_sftmix" and doc["smoke"] is True and doc["versions"]["trl"]
    (r,) = doc["results"]
    assert r["same_batch_as_trl_collator"]
    assert r["loss_abs_diff_ntp_vs_trl"] < 1e-5 and r["grad_max_abs_diff_ntp_vs_trl"] < 1e-5
    for pair, t in r["time"].items():
        assert math.isfinite(t["ratio_median_paired"]) and t["ratio_median_paired"] > 0, pair
