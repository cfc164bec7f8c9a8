"""Every notebook runs headless in fast mode, is thin and is committed without outputs
(the pairing with its jupytext source is checked in test_notebook_sync.py)."""

import statistics
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_thin(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} has outputs"
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        assert len(lines) <= 12, f"{path.name}: a code cell has {len(lines)} lines; move logic into sftmix/"
        assert not any(line.lstrip().startswith(("def ", "class ", "lambda")) for line in lines), \
            f"{path.name}: define functions in the library, not in notebooks"
    lengths = [len([ln for ln in c.source.splitlines() if ln.strip()]) for c in code]
    assert 2 <= statistics.median(lengths) <= 6, f"{path.name}: median code cell of {statistics.median(lengths)} lines"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_and_checks(path):
    """A papermill `parameters` cell with the fast-mode flag, and assert cells that check key facts."""
    nb = nbformat.read(path, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{path.name}: one cell tagged 'parameters'"
    assert 'FAST = os.environ.get("SFTMIX_FAST") == "1"' in params[0].source
    assert any(line.startswith("assert ") for c in nb.cells if c.cell_type == "code"
               for line in c.source.splitlines()), f"{path.name} checks nothing"
    # every number comes from the library: no model sizes or demo numbers of its own
    assert "tiny_hidden_size" not in "".join(c.source for c in nb.cells)
    source = "".join(c.source for c in nb.cells)
    # the demo's configuration, directly or through the ablation lesson's or the study's (built from it)
    assert "demo_config(" in source or "lesson_config(" in source or "study_configs(" in source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_in_fast_mode(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("SFTMIX_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SFTMIX_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
