"""The README's commands as a new user runs them (toy size): each problem found that way stays fixed.

A mistyped run directory, ``sftmix data`` counting what ``sftmix train`` trains on, an experiment
without held-out data, MedQA's own multiple-choice layout, a Hub name offline, processes
launched without a process group, and ``figures/paper_claims.py --from-csv --out DIR``.
"""

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from sftmix.analysis.evaluate import answer_index, read_multiple_choice
from sftmix.analysis.markdown import markdown_table
from sftmix.analysis.results import results_markdown
from sftmix.analysis.stats import paired_difference
from sftmix.data import DataError
from tests.test_cli_errors import ROOT, assert_one_line_error, sftmix


def _jsonl(path: Path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_figures_on_a_mistyped_run_directory_is_one_line_naming_the_close_one(tmp_path):
    (tmp_path / "demo").mkdir()
    line = assert_one_line_error(sftmix("figures", str(tmp_path / "dmeo")), "dmeo", "no such run directory")
    assert str(tmp_path / "demo") in line
    (tmp_path / "empty").mkdir()
    assert_one_line_error(sftmix("figures", str(tmp_path / "empty")), "empty", "no figures")


def test_data_reports_the_examples_train_trains_on(tmp_path):
    from sftmix.config import DataArguments
    from sftmix.data.prepare import prepare_train_eval

    data = _jsonl(tmp_path / "own.jsonl", [{"prompt": f"question {i}", "response": f"answer {i}"} for i in range(48)])
    options = ["--dataset", data, "--noise", "0.1", "--held_out_size", "8", "--train_size", "20"]
    proc = sftmix("data", *options, "--head", "0", "--out", str(tmp_path / "clean.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert "20 training examples, 8 held-out" in proc.stdout
    written = [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()]
    # `sftmix train` with the same options prepares its data with prepare_train_eval:
    train, held_out = prepare_train_eval(DataArguments(dataset=data, noise=0.1, held_out_size=8, train_size=20))
    assert len(written) == len(train) == 20 and len(held_out) == 8
    assert [r["example_id"] for r in written] == list(train["example_id"])


def test_results_without_held_out_data_say_so_instead_of_an_empty_table():
    results = {"name": "own", "seeds": [0], "summary": {}, "comparison": {}, "versions": {"sftmix": "x"}}
    text = results_markdown(results)
    assert "Nothing was evaluated" in text and "held_out_size" in text
    assert "|" not in text  # no table without rows


def test_results_tables_are_well_formed_markdown():
    stat = {"mean": 0.5, "std": 0.1}
    results = {"name": "run", "seeds": [0, 1], "versions": {},
               "summary": {m: {"exact_match": stat, "nll": stat, "by_task": {"add": stat}} for m in ("ntp", "sftmix")},
               "comparison": {"exact_match": paired_difference([0.4, 0.5], [0.5, 0.7])}}
    tables = [line for line in results_markdown(results).splitlines() if line.startswith("|")]
    header = tables[0]
    # the metric table: every row has the header's cells, also a metric without a comparison (nll)
    assert all(line.count("|") == header.count("|") for line in tables[:4])
    assert any(line.startswith("| held-out NLL") and "–" in line for line in tables)
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        markdown_table(["a", "b"], [["x"]])
    assert markdown_table(["a"], [["x|y"]])[-1] == "| x\\|y |"  # a pipe in a cell does not end it


def test_multiple_choice_reads_medqa_layout(tmp_path):
    # MedQA (Jin et al., 2021): `answer` is the right option's text, `answer_idx` its letter.
    rows = [{"question": "Which organ pumps blood?", "options": {"A": "liver", "B": "heart", "C": "lung"},
             "answer": "heart", "answer_idx": "B"},
            {"question": "Q2?", "options": {"A": "x", "B": "y"}, "answer": "x", "answer_idx": "A"}]
    items = read_multiple_choice(_jsonl(tmp_path / "medqa.jsonl", rows))
    assert [answer_index(item) for item in items] == [1, 0]
    # the README's command on MedQA's layout (a tiny random model: the accuracy is not the point)
    out = tmp_path / "mc.json"
    proc = sftmix("eval", "--model_name_or_path", "tiny-llama", "--tiny_hidden_size", "16", "--tiny_heads", "2",
                  "--multiple_choice", str(tmp_path / "medqa.jsonl"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["n_items"] == 2
    rows[1]["answer"] = "y"  # the text and the letter disagree: refused, naming the row and field
    with pytest.raises(DataError, match=r"row 1, field 'answer'.*not option 'A'"):
        read_multiple_choice(_jsonl(tmp_path / "bad.jsonl", rows))
    rows[1].update(answer="x", answer_idx="Z")
    with pytest.raises(DataError, match=r"row 1, field 'answer_idx'"):
        read_multiple_choice(_jsonl(tmp_path / "bad2.jsonl", rows))


def test_a_hub_name_offline_is_one_line(tmp_path):
    line = assert_one_line_error(sftmix("data", "--dataset", "tatsu-lab/alpaca", env={"HF_HUB_OFFLINE": "1"}),
                                 "tatsu-lab/alpaca", "HF_HUB_OFFLINE")
    assert "local file" in line
    # a paper config, as the README runs it, on a machine without network access
    assert_one_line_error(sftmix("experiment", "configs/paper/llama3.1-8b_alpaca52k.yaml", "--set",
                                 f"runs_dir={tmp_path}", env={"HF_HUB_OFFLINE": "1"}), "Hub")


def test_processes_launched_without_a_process_group_is_one_line(tmp_path):
    # `accelerate launch --multi_gpu` on a CPU machine without --use_cpu: each process would train alone.
    with mock.patch("sftmix.train.trainer.launched_processes", return_value=2):
        proc = sftmix("train", "--n_train", "8", "--n_test", "2", "--max_steps", "1", "--output_dir",
                      str(tmp_path / "run"), "--tiny_hidden_size", "16", "--tiny_heads", "2")
    assert_one_line_error(proc, "launched as 2 processes", "--use_cpu True")


def _paper_claims(*argv):
    return subprocess.run([sys.executable, "figures/paper_claims.py", *argv], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
                                         "PATH": "/usr/bin:/bin"}, timeout=300)


@pytest.mark.slow  # a fresh interpreter imports the pipeline and draws the figure (15 to 50 s)
def test_paper_claims_from_csv_reads_the_shipped_csvs_and_writes_to_out(tmp_path):
    proc = _paper_claims("--from-csv", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "paper_claims.md").read_text() == (ROOT / "figures" / "paper_claims.md").read_text()
    assert (tmp_path / "paper_claims.png").exists()
    proc = _paper_claims("--from-csv", str(tmp_path / "nothere"), "--out", str(tmp_path))
    assert proc.returncode == 2 and "nothere_role.csv: no such file" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------- every README command still parses
def readme_commands(text: str) -> list[list[str]]:
    """Every ``sftmix ...`` command of the README: lines of its code blocks (``\\`` continuations joined,
    ``# comments`` cut; ``accelerate launch ... -m sftmix.cli CMD`` read as ``sftmix CMD``) and inline code."""
    import re
    import shlex

    commands, block, lines = [], False, []
    for line in text.splitlines():
        if line.strip().startswith("```"):
            block = not block
            continue
        if block:
            lines.append(line)
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    candidates = [line.split(" #")[0].strip() for line in joined.splitlines()]
    candidates += re.findall(r"`(sftmix [a-z][^`]*)`", text)
    for line in candidates:
        if "-m sftmix.cli " in line:
            line = "sftmix " + line.split("-m sftmix.cli ", 1)[1]
        if line.startswith("sftmix ") and not line.startswith("sftmix/"):
            commands.append(shlex.split(line)[1:])
    return commands


def test_every_readme_command_names_a_command_and_its_options():
    from sftmix.cli import COMMANDS

    commands = readme_commands((ROOT / "README.md").read_text())
    assert len(commands) > 15
    helps = {}
    for argv in commands:
        name = argv[0]
        assert name in COMMANDS, f"README: `sftmix {' '.join(argv)}`: no command {name!r}"
        if name not in helps:
            proc = sftmix(name, "--help-all") if name in ("train", "eval", "data", "dynamics", "split") \
                else sftmix(name, "--help")
            assert proc.returncode == 0, proc.stderr
            helps[name] = proc.stdout
        for option in (a.split("=")[0] for a in argv[1:] if a.startswith("--")):
            assert option in helps[name], f"README: `sftmix {' '.join(argv)}`: {option} is not an option of {name}"


def test_the_readme_python_example_runs():
    import re

    code = re.search(r"From Python:\n\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    namespace = {}
    exec(code.replace("n_train=1000", "n_train=40"), namespace)  # toy size
    assert len(namespace["data"]) == 40 and "labels" in namespace["data"].column_names
