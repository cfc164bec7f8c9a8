"""Every benchmark script runs in its --smoke mode and writes valid JSON (no timing checks)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = ["bench_step.py", "bench_memory.py", "bench_dynamics.py", "bench_scale.py", "bench_demo.py",
           "bench_throughput.py", "bench_grouping.py"]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke(script, tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(BENCH / script), "--smoke", "--out", str(out)],
                          cwd=BENCH.parent, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == script[:-3] and doc["smoke"] is True
    machine = doc["machine"]
    assert machine["cores"] >= 1 and machine["torch"] and machine["cpu"]
    assert len(doc["load_avg_start"]) == 3 and len(doc["load_avg_end"]) == 3
    results = doc["scoring"] + doc["recording"] if script == "bench_dynamics.py" else doc["results"]
    assert results, "no results recorded"
    if script == "bench_step.py":
        for r in results:
            assert r["floor"] >= 1 and r["ntp_median_s"] > 0 and r["sftmix_median_s"] > 0
    if script == "bench_memory.py":
        assert all(s["losses_match_chunked_vs_naive"] for s in doc["summary"].values())


def test_throughput_counts_padding_exactly():
    """Literal lengths: two batches of 2, lengths (3, 5) and (4, 4), responses of 1 and 2 tokens."""
    sys.path.insert(0, str(BENCH))
    from bench_throughput import batch_stats

    data = {"length": [3, 5, 4, 4], "labels": [[-100, -100, 7], [-100, -100, -100, 7, 7], [-100, -100, 7, 7],
                                               [-100, -100, -100, 7]]}
    stats = batch_stats(data, [[0, 1], [2, 3]])
    assert stats["padded_tokens"] == 2 * 5 + 2 * 4 and stats["real_tokens"] == 16
    assert stats["response_tokens"] == 1 + 2 + 2 + 1
    assert stats["padding_fraction"] == pytest.approx(2 / 18)


@pytest.mark.slow
def test_gemma_memory_breakdown_smoke(tmp_path):
    """The Gemma breakdown on a tiny tied-head Gemma: the current head gives the same losses as the
    previous one, with one head-gradient buffer per SFTMix step and no dense embedding gradient."""
    out = tmp_path / "gemma.json"
    proc = subprocess.run([sys.executable, str(BENCH / "bench_memory.py"), "--only", "gemma3-270m", "--smoke",
                           "--out", str(out)], cwd=BENCH.parent, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    by = {r["variant"]: r for r in json.loads(out.read_text())["results"]}
    assert set(by) == {"ntp_before", "ntp_after", "sftmix_before", "sftmix_after", "scoring_before",
                       "scoring_after", "generation"}
    for kind in ("ntp", "sftmix"):
        before, after = by[f"{kind}_before"], by[f"{kind}_after"]
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-5)
        assert after["tied_embedding_grad_transient_mb"] < before["tied_embedding_grad_transient_mb"]
        assert after["floor_mb"] == pytest.approx(after["weights_mb"] + after["grads_mb"] + after["adamw_state_mb"]
                                                  + after["activations_mb"])
        assert after["peak_mb"] > 0 and not after["embedding_sparse_after"]
    assert by["sftmix_after"]["head_grad_buffers_mb"] == pytest.approx(by["sftmix_before"]["head_grad_buffers_mb"] / 2)
    assert by["generation"]["new_tokens"] == 16 * 8 and by["scoring_after"]["n_examples"] == 16
