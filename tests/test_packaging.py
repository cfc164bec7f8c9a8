"""The install files agree with each other, and the command line answers."""

import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["notebooks"]
              + project["optional-dependencies"]["lora"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_name(r) for r in pip if not r.startswith("-")}
    assert listed == wanted
    assert "-c constraints.txt" in pip  # the versions of the README's demo numbers
    assert any(r.startswith("-e .[") and "notebooks" in r for r in pip)
    assert env["name"] == "sftmix"


def test_runs_directory_is_ignored():
    assert "runs/" in (ROOT / ".gitignore").read_text().split()


def test_cli_lists_commands_and_explains_options():
    out = subprocess.run([sys.executable, "-m", "sftmix.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "data", "train", "eval", "dynamics", "split", "experiment", "figures"):
        assert command in out.stdout
    train_help = subprocess.run([sys.executable, "-m", "sftmix.cli", "train", "--help"], capture_output=True,
                                text=True, check=True).stdout
    assert "--mixup_alpha" in train_help and "Beta(alpha, alpha)" in train_help
    bad = subprocess.run([sys.executable, "-m", "sftmix.cli", "fly"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_cli_data_validates_and_summarises(tmp_path):
    good = tmp_path / "d.jsonl"
    good.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n')
    out = subprocess.run([sys.executable, "-m", "sftmix.cli", "data", "--dataset", str(good)],
                         capture_output=True, text=True, check=True)
    assert "2 training examples" in out.stdout
    bad = tmp_path / "e.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c"}\n')
    out = subprocess.run([sys.executable, "-m", "sftmix.cli", "data", "--dataset", str(bad)],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "row 1, field 'completion': missing" in out.stderr


def test_the_public_api_holds_what_notebooks_import_and_every_name_resolves():
    import ast

    import sftmix

    design = {"SFTMixConfig", "SFTMixTrainer", "load_examples", "tokenize_examples", "make_task_suite",
              "build_tiny_model", "build_toy_tokenizer", "score_checkpoints", "DynamicsRecorder", "compute_dynamics",
              "load_dynamics", "split_by_confidence", "mixup_loss", "evaluate_model", "run_experiment",
              "embed_examples", "project_umap", "plot_dynamics_map", "plot_umap_confidence", "plot_ablation",
              "plot_training_curves"}  # DESIGN.md's stable names
    notebooks = {"demo_config", "RunDir", "load_split", "load_train_eval", "project_tsne"}
    assert design | notebooks <= set(sftmix.__all__)
    for name in sftmix.__all__:
        assert getattr(sftmix, name) is not None, name
    # The TYPE_CHECKING block (for editors) names exactly the lazily served names.
    tree = ast.parse((ROOT / "sftmix" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    typed = {a.asname or a.name for n in ast.walk(block) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert typed == set(sftmix.__all__)


def test_make_test_uses_every_core_and_ci_runs_the_readme_command():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest: $(STAMP)\n", 1)[1].split("\n\n", 1)[0]
    assert "pytest -n $(TEST_WORKERS) --dist loadfile" in recipe and "TEST_WORKERS ?= auto" in makefile
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert "pytest-xdist" in {_name(r) for r in dev}
    assert "make test   #" in (ROOT / "README.md").read_text()
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text()
