"""The notebooks' source is the jupytext percent file (`notebooks/NN_name.py`); the paired
`.ipynb` is what users open. Every pair must hold the same cells, and the committed
notebooks carry no outputs (run `jupytext --sync notebooks/*.py` after editing either)."""

from pathlib import Path

import nbformat
import pytest

jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_every_notebook_has_a_percent_source_and_no_generator():
    assert NOTEBOOKS, "no notebooks found"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SOURCES]
    assert not (ROOT / "notebooks" / "make_notebooks.py").exists()


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pair_in_sync(path):
    ipynb = nbformat.read(path, as_version=4)
    source = jupytext.read(path.with_suffix(".py"))
    assert ipynb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", \
        f"{path.name}: not paired (jupytext formats metadata)"
    assert "percent" in source.metadata["jupytext"]["text_representation"]["format_name"]
    assert _cells(ipynb) == _cells(source), \
        f"{path.name} differs from {path.with_suffix('.py').name}: run `jupytext --sync notebooks/*.py`"
    tags = [c.metadata.get("tags", []) for c in ipynb.cells]
    assert tags == [c.metadata.get("tags", []) for c in source.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_or_execution_counts(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} has outputs"
            assert cell.execution_count is None, f"{path.name} has execution counts"


def test_sync_check_catches_an_edit(tmp_path):
    """The check above is not vacuous: an edit to one side of a pair is seen."""
    path = NOTEBOOKS[0]
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].source += "\n1 + 1"
    assert _cells(nb) != _cells(jupytext.read(path.with_suffix(".py")))
