"""The experiment's instruction-following stage: every trained model answered, results per seed and paired."""

import json

import pytest

from sftmix.errors import ConfigError, DataError
from sftmix.pipeline.experiment import run_experiment
from tests.helpers import tiny_config


@pytest.mark.slow
def test_experiment_lists_instruction_following_for_every_model(tmp_path):
    config = tiny_config(tmp_path, seeds=[0, 1, 2], embeddings=False,
                         instruct={"per_category": 1, "max_new_tokens": 4, "batch_size": 8, "seeds": [0, 2]})
    results = run_experiment(config, progress=False)
    run = tmp_path / "tiny"
    folder = run / "mt_bench"
    answers = sorted(p.name for p in (folder / "model_answer").iterdir())
    assert answers == ["ntp-seed0.jsonl", "ntp-seed2.jsonl", "sftmix-seed0.jsonl", "sftmix-seed2.jsonl"]  # seeds [0, 2]
    first = json.loads((folder / "model_answer" / "sftmix-seed2.jsonl").read_text().splitlines()[0])
    assert first["question_id"] == 81 and first["model_id"] == "sftmix-seed2"
    assert len(first["choices"][0]["turns"]) == 2
    assert (folder / "ifeval_set.jsonl").exists()
    instruct = results["instruct"]
    assert set(instruct["per_seed"]) == {"ntp", "sftmix"} and set(instruct["per_seed"]["ntp"]) == {"0", "2"}
    c = instruct["comparison"]["ifeval_prompt_strict"]
    assert c["n"] == 2 and c["per_seed"] == [instruct["per_seed"]["sftmix"][s]["ifeval_prompt_strict"]
                                             - instruct["per_seed"]["ntp"][s]["ifeval_prompt_strict"]
                                             for s in ("0", "2")]
    assert c["verdict"].startswith("not calibrated")  # no yardstick separated base from instruct: no verdict
    md = (run / "results.md").read_text()
    assert "Instruction following without a judge" in md and "mt_bench_turn2_words_writing" in md
    csv = (run / "instruct_results.csv").read_text().splitlines()
    assert csv[0] == "method,seed,measure,value" and len(csv) > 4 * 10


def test_bad_instruct_section_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="instruct: unknown keys"):
        tiny_config(tmp_path, instruct={"mtbench": True})
    with pytest.raises(ConfigError, match="instruct.max_new_tokens"):
        tiny_config(tmp_path, instruct={"max_new_tokens": 0})
    with pytest.raises(ConfigError, match="instruct.ifeval"):
        tiny_config(tmp_path, instruct={"ifeval": str(tmp_path / "missing.jsonl")})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"key": 1, "prompt": "Hi.", "instruction_id_list": ["no:such"], "kwargs": [{}]}) + "\n")
    with pytest.raises(DataError, match="bad.jsonl, row 0, field 'instruction_id_list"):
        tiny_config(tmp_path, instruct={"ifeval": str(bad)})


def _instruct_file(path, strict):
    share = {"accuracy": strict}
    path.write_text(json.dumps({"ifeval": {"prompt_strict": share, "prompt_loose": share, "instruction_strict": share,
                                           "instruction_loose": share}}))


def test_only_calibrated_measures_get_a_verdict(tmp_path, monkeypatch):
    from sftmix.pipeline import instruct_stage

    config = tiny_config(tmp_path, seeds=[0, 1, 2])
    folder = tmp_path / "tiny" / "mt_bench"
    folder.mkdir(parents=True)
    for seed in (0, 1, 2):   # SFTMix follows 0.3 more instructions on every seed
        _instruct_file(folder / f"ntp-seed{seed}.instruct.json", 0.2 + 0.01 * seed)
        _instruct_file(folder / f"sftmix-seed{seed}.instruct.json", 0.5 + 0.02 * seed)
    comparison = instruct_stage.instruct_results(tmp_path / "tiny", config)["comparison"]
    assert comparison["ifeval_prompt_strict"]["mean"] == pytest.approx(0.31)
    assert comparison["ifeval_prompt_strict"]["verdict"] == instruct_stage.NOT_CALIBRATED
    monkeypatch.setattr(instruct_stage, "CALIBRATED", frozenset({"ifeval_prompt_strict"}))
    comparison = instruct_stage.instruct_results(tmp_path / "tiny", config)["comparison"]
    assert comparison["ifeval_prompt_strict"]["verdict"] == "SFTMix better"
    assert comparison["ifeval_prompt_loose"]["verdict"] == instruct_stage.NOT_CALIBRATED


def test_instruct_seeds_must_be_training_seeds(tmp_path):
    with pytest.raises(ConfigError, match=r"instruct.seeds: \[3\] are not training seeds"):
        tiny_config(tmp_path, seeds=[0, 1], instruct={"seeds": [1, 3]})
    with pytest.raises(ConfigError, match="instruct.seeds must be a non-empty list"):
        tiny_config(tmp_path, instruct={"seeds": 0})
