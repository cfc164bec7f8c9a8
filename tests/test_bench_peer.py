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
    assert [r["setting"] for r in doc["results"]] == ["tiny-suite", "d64-V2000", "tiny-gemma-V8000"]
    for r in doc["results"]:
        assert r["flops"]["sftmix_flops"] > r["flops"]["ntp_flops"] > 0 and r["flops"]["n_mixed"] > 0
        assert {g["goal"].split(" <=")[0] for g in r["goals"]} == {
            "SFTMix/NTP step", "sftmix_ntp step / TRL", "sftmix_sftmix step / TRL", "sftmix_ntp memory / TRL",
            "sftmix_sftmix memory / TRL", "sftmix_ntp memory above weights+grads / TRL's (information)",
            "sftmix_sftmix memory above weights+grads / TRL's (information)"}
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


def _bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_peer

    return bench_peer


def test_flop_floor_counts_backbone_head_and_mixed_positions():
    """A tied tiny Gemma (V = 1000, d = 16, 2 layers, 4 heads of 4): the head is the embedding, counted once."""
    from sftmix.toy import build_tiny_model

    model = build_tiny_model("gemma", vocab_size=1000, hidden_size=16, num_layers=2, num_heads=4)
    non_head = sum(p.numel() for p in model.parameters()) - 1000 * 16
    f = _bench().flop_floor(model, (2, 8), n_scored=5, n_mixed=3)
    backbone = (6 * non_head + 12 * 2 * 8 * 4 * 4) * 2 * 8
    assert f["non_head_params"] == non_head and f["head_params"] == 16000
    assert f["ntp_flops"] == backbone + 5 * 6 * 1000 * 16
    assert f["sftmix_flops"] == f["ntp_flops"] + 3 * 6 * 1000 * 16
    assert f["sftmix_over_ntp_floor"] == pytest.approx(1 + 3 * 96000 / (backbone + 5 * 96000))
    untied = build_tiny_model("llama", vocab_size=1000, hidden_size=16, num_layers=2, num_heads=4)
    g = _bench().flop_floor(untied, (2, 8), n_scored=5, n_mixed=3)  # the input embedding is a lookup: no FLOPs
    assert g["non_head_params"] == sum(p.numel() for p in untied.parameters()) - 2 * 16000


def test_goals_report_target_and_excess():
    res = {"flops": {"sftmix_over_ntp_floor": 1.2},
           "median_ms": {"sftmix_ntp": 100.0, "trl_default": 200.0},
           "time": {"sftmix_sftmix/sftmix_ntp": {"ratio_median_paired": 1.36},  # target 1.05 * 1.2 = 1.26
                    "sftmix_ntp/trl_default": {"ratio_median_paired": 0.5},
                    "sftmix_sftmix/trl_default": {"ratio_median_paired": 0.7}},
           "memory": {"variants": {"sftmix_ntp": {"train_mb": 500.0}, "sftmix_sftmix": {"train_mb": 700.0},
                                   "trl_default": {"train_mb": 1000.0}}}}
    by = {g["goal"].split(" <=")[0]: g for g in _bench().goals(res)}
    floor = by["SFTMix/NTP step"]
    assert floor["target"] == pytest.approx(1.26) and not floor["met"] and floor["excess"] == "10 ms/step over"
    assert by["sftmix_ntp step / TRL"]["met"] and by["sftmix_ntp step / TRL"]["excess"] == ""
    assert not by["sftmix_sftmix step / TRL"]["met"] and by["sftmix_sftmix step / TRL"]["excess"] == "20 ms/step over"
    assert by["sftmix_ntp memory / TRL"]["met"]
    assert by["sftmix_sftmix memory / TRL"]["excess"] == "100 MB over"
