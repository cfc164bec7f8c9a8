"""The ``sftmix`` command: one-line errors (exit 2), --debug tracebacks, short --help, loss lines.

Most cases call ``sftmix.cli.main`` in this process, as the console script does (a
subprocess per case spent most of its time importing torch); one case of each kind also
runs the real ``python -m sftmix.cli`` to check the exit status and stderr end to end.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

from sftmix.cli import main

ROOT = Path(__file__).resolve().parents[1]


def sftmix_process(*argv, env=None, timeout=300):
    """``python -m sftmix.cli ARGV`` in a child process."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               **(env or {})}
    environ.pop("SFTMIX_DEBUG", None) if not (env or {}).get("SFTMIX_DEBUG") else None
    return subprocess.run([sys.executable, "-m", "sftmix.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, env=environ, timeout=timeout)


def sftmix(*argv, env=None):
    """``sftmix ARGV`` in this process: ``main(argv)`` from the repository root, with the exit
    status the interpreter would give (an uncaught exception prints its traceback, status 1)."""
    out, err = io.StringIO(), io.StringIO()
    environ = {"SFTMIX_DEBUG": "", "HF_HUB_OFFLINE": "1", **(env or {})}
    with mock.patch.dict(os.environ, environ), contextlib.chdir(ROOT), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # noqa: BLE001 (what the interpreter does with an uncaught exception)
            traceback.print_exc()
            code = 1
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sftmix: error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rows = [{"id": f"r{i}", "prompt": f"say {i}", "completion": str(i)} for i in range(8)]
    return {
        "wizard": _jsonl(d / "wizard.jsonl", [{"messages": [{"role": "wizard", "content": "x"},
                                                           {"role": "assistant", "content": "y"}]}]),
        "dup": _jsonl(d / "dup.jsonl", [{"id": "a", "prompt": "p", "completion": "c"},
                                       {"id": "a", "prompt": "q", "completion": "d"}]),
        "good": _jsonl(d / "good.jsonl", rows),
        "split": str(d / "split.json"),
        "flat_bad": str(d / "flat.yaml"),
        "dir": d,
    }


def test_bad_inputs_print_one_line_and_exit_2(files):
    Path(files["split"]).write_text(json.dumps({"confident": ["x1", "x2"], "unconfident": ["x3", "x4"]}))
    Path(files["flat_bad"]).write_text("learning_rate: [unclosed\n")
    cases = [
        (["data", "--dataset", files["wizard"]], ("wizard.jsonl", "row 0", "messages[0].role", "'wizard'")),
        (["data", "--dataset", files["dup"]], ("dup.jsonl", "row 1", "duplicate id 'a'", "row 0")),
        (["data", "--dataset", str(files["dir"] / "missing.jsonl")], ("missing.jsonl", "no such file")),
        (["data", "--max_length", "1"], ("max_length must be >= 2",)),
        (["data", "--noise", "abc"], ("--noise",)),
        (["data", "--nope", "3"], ("unknown options: --nope",)),
        (["train", "configs/demo-quick.yaml"], ("experiment YAML", "sftmix experiment")),
        (["train", str(files["dir"] / "nothere.yaml")], ("nothere.yaml",)),
        (["train", files["flat_bad"]], ("flat.yaml", "not valid YAML")),
        (["eval", "--model_name_or_path", "tiny-nope", "--n_train", "4", "--n_test", "2"],
         ("cannot load model 'tiny-nope'", "tiny-llama")),
        (["train", "--dataset", files["good"], "--method", "sftmix", "--split_file", files["split"],
          "--output_dir", str(files["dir"] / "run"), "--max_steps", "1", "--per_device_train_batch_size", "2"],
         ("split.json", "not in the training data")),
        (["train", "--method", "sftmix", "--output_dir", str(files["dir"] / "run")], ("needs split_file",)),
        (["experiment", str(files["dir"] / "none.yaml")], ("none.yaml",)),
    ]
    for argv, needles in cases:
        assert_one_line_error(sftmix(*argv), *needles)
    assert_one_line_error(sftmix_process(*cases[0][0]), *cases[0][1])      # the real command, end to end


def test_debug_flag_and_env_show_the_traceback(files):
    for proc in (sftmix_process("--debug", "data", "--dataset", files["wizard"]),
                 sftmix("data", "--dataset", files["wizard"], "--debug"),
                 sftmix("data", "--dataset", files["wizard"], env={"SFTMIX_DEBUG": "1"})):
        assert proc.returncode != 0 and "Traceback" in proc.stderr and "DataError" in proc.stderr


def test_unexpected_errors_keep_their_traceback():
    code = ("import sftmix.cli as c\n"
            "def boom(args): raise RuntimeError('a bug')\n"
            "c.COMMANDS['figures'].run = boom\n"
            "c.main(['figures', 'runs/x'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "RuntimeError: a bug" in proc.stderr


def test_error_line_is_one_line():
    from sftmix.cli import error_line
    from sftmix.data import DataError

    assert error_line(DataError("f.jsonl, row 3:\n  bad")) == "sftmix: error: f.jsonl, row 3: bad"
    line = error_line(FileNotFoundError(2, "No such file or directory", "x.yaml"))
    assert line.startswith("sftmix: error: ") and "x.yaml" in line and "\n" not in line


@pytest.mark.parametrize("command, own", [("eval", "--export-alpaca-eval"), ("data", "--head"),
                                          ("train", "--mixup_weight"), ("dynamics", "--n_checkpoints")])
def test_help_shows_own_options_first_and_hides_training_arguments(command, own):
    proc = sftmix(command, "--help")
    out = proc.stdout
    assert proc.returncode == 0 and own in out
    first_group = out.split("\n\n")[2]
    assert first_group.startswith(f"options of sftmix {command}") or own in first_group
    assert "--dataset" in out and "--model_name_or_path" in out
    for hidden in ("--gradient_accumulation_steps", "--lr_scheduler_type", "--deepspeed", "--push_to_hub"):
        assert hidden not in out
    assert "--help-all" in out
    if command in ("eval", "data"):
        # Its own options and the model/data ones, not the ~900 lines of TrainingArguments (--help-all).
        assert "--mixup_weight" not in out and len(out.splitlines()) < 200


def test_help_all_lists_training_arguments():
    out = sftmix("eval", "--help-all").stdout
    assert out.index("--export-alpaca-eval") < out.index("--gradient_accumulation_steps")


def test_cli_sets_passive_openmp_waiting_unless_the_user_chose():
    """Spin-waiting OpenMP threads slow a loaded machine many times over; the CLI opts out."""
    code = ("import os, sys; import sftmix.cli; import torch; "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "PASSIVE", out.stderr[-500:]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "ACTIVE"
