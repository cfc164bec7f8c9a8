"""benchmarks/gpu_check.py runs its --smoke mode on CPU: the same code paths at tiny size."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_smoke(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    skip = [] if importlib.util.find_spec("trl") else ["--skip", "peer"]  # the peer part needs TRL
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--out", str(out),
                           *skip], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "gpu_check" and doc["smoke"] is True and doc["device"] == "cpu"
    res = doc["results"]
    failed = {k: v.get("error") for k, v in res.items() if not v["ok"]}
    assert not failed, failed
    assert res["train"]["finite"] and res["train"]["steps"] == doc["sizes"]["train_steps"]
    assert all(x is not None for x in res["train"]["mixup_losses"])  # SFTMix really ran
    step = res["step"]
    assert step["floor"] >= 1 and step["M"] > 0 and step["N"] >= step["M"]
    assert math.isfinite(step["ratio_median_paired"]) and step["ratio_median_paired"] > 0
    assert res["fsdp"]["finite"] and res["fsdp"]["steps"] == doc["sizes"]["fsdp_steps"]
    assert res["scoring"]["throughput_ratio_score_over_bare"] > 0
    if "peer" in res:
        for row in res["peer"]["fp32"]:
            assert row["loss_max_abs_diff"] < 1e-4 and row["sftmix_ntp/trl_default"] > 0
