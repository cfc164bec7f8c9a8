"""examples/trl_sftmix.py runs as written (on sftmix's offline tiny model) and leaves sftmix's run files."""

import os
import subprocess
import sys

import pytest

from .helpers import ROOT


@pytest.mark.slow
def test_example_script_runs_reference_then_sftmix(tmp_path):
    import sftmix

    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "trl_sftmix.py"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SFTMix: step 8" in done.stdout and "mixup_loss" in done.stdout
    run = sftmix.RunDir(out)
    table, split = sftmix.load_dynamics(run.dynamics), sftmix.load_split(run.split)
    assert table.attrs["checkpoints"] == ["epoch-1", "epoch-2"] and len(table) == 32
    assert sorted(split["confident"] + split["unconfident"], key=int) == [str(i) for i in range(32)]
    assert (out / "sftmix" / "model.safetensors").exists()
