"""The README's demo tables are what the demo prints: a drift (a new transformers, a changed default)
fails here instead of surprising a reader.

The README's tables are parsed (no copy of their numbers here) and compared with a ``results.json``:
the committed copies of the demo's and the quick demo's (``figures/demo_results.json``,
``figures/demo_quick_results.json``) in ``make test``, and fresh runs in CI: ``.ci/run`` runs ``make
demo`` and ``make demo-quick`` (about 4 min and 1 min on 2 cores, outside ``make test``'s wall time)
and names their run directories in ``SFTMIX_DEMO_RUN`` and ``SFTMIX_QUICK_DEMO_RUN``.
The demo is deterministic on CPU for a given set of versions (``constraints.txt`` pins them).
"""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The line above each table in the README.
FULL, QUICK = "What it printed here", "What `sftmix demo --quick` printed here"


def readme_table(marker: str, text: str | None = None) -> dict[str, list[str]]:
    """The first Markdown table after the line containing ``marker``: ``{row label: cells}``, the label cut
    at its first " (" (``"held-out exact match (300 examples)"`` -> ``"held-out exact match"``)."""
    lines = (README.read_text() if text is None else text).splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line)
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    rows = {}
    for line in lines[first + 2:]:  # after the header and its rule
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0].split(" (")[0]] = cells[1:]
    return rows


def demo_rows(results: dict) -> dict[str, list[str]]:
    """The README's rows from a run's ``results.json``, at the precision the README prints."""
    summary = results["summary"]
    methods = ("ntp", "sftmix")

    def stat(method, metric, digits=3):
        return f"{summary[method][metric]['mean']:.{digits}f}"

    rows = {"held-out exact match": [stat(m, "exact_match") for m in methods],
            "task families with exact match < 0.5": [
                ", ".join(f"{t} {v['mean']:.2f}" for t, v in sorted(summary[m]["by_task"].items())
                          if v["mean"] < 0.5) or "none" for m in methods],
            "held-out NLL": [stat(m, "nll") for m in methods],
            "token accuracy / ECE": [f"{stat(m, 'token_accuracy')} / {stat(m, 'ece')}" for m in methods]}
    auroc = results.get("dynamics", {}).get("noise_auroc")
    if auroc is not None:
        rows["label noise flagged by the reference run's confidence"] = [f"AUROC {auroc:.2f}", ""]
    return rows


def assert_matches(table: dict, results: dict) -> None:
    expected = demo_rows(results)
    for label, cells in table.items():
        assert label in expected, f"README row {label!r} is not one the demo prints"
        assert cells == expected[label], f"README row {label!r}: {cells} but the demo printed {expected[label]}"


def test_the_parser_reads_the_readme_tables():
    text = "\n".join(["x", FULL + " (a note):", "", "| | NTP | SFTMix |", "|---|---|---|",
                      "| held-out exact match (300 examples) | 0.680 | 0.700 |", "| held-out NLL | 1 | 2 |", "", "|x|"])
    assert readme_table(FULL, text) == {"held-out exact match": ["0.680", "0.700"], "held-out NLL": ["1", "2"]}
    full, quick = readme_table(FULL), readme_table(QUICK)
    assert {"held-out exact match", "held-out NLL", "token accuracy / ECE"} <= set(full) & set(quick)


def test_readme_demo_table_is_the_committed_demo_results():
    results = json.loads((ROOT / "figures" / "demo_results.json").read_text())
    assert_matches(readme_table(FULL), results)
    # the committed Markdown copy is the same run
    assert (ROOT / "figures" / "demo_results.md").read_text().splitlines()[6].startswith(
        f"| exact match (↑) | {results['summary']['ntp']['exact_match']['mean']:.3f}")


def test_readme_quick_demo_table_is_the_committed_quick_demo_results():
    assert_matches(readme_table(QUICK), json.loads((ROOT / "figures" / "demo_quick_results.json").read_text()))


@pytest.mark.parametrize("marker, variable", [(FULL, "SFTMIX_DEMO_RUN"), (QUICK, "SFTMIX_QUICK_DEMO_RUN")],
                         ids=["demo", "demo-quick"])
def test_readme_demo_tables_are_what_the_demo_printed(marker, variable):
    """CI (``.ci/run``) runs ``make demo`` and ``make demo-quick`` and names their run directories."""
    if not os.environ.get(variable):
        pytest.skip(f"set {variable} to the run directory of the demo (.ci/run does)")
    results = json.loads((Path(os.environ[variable]) / "results.json").read_text())
    assert_matches(readme_table(marker), results)


def test_the_install_pins_the_versions_the_demo_numbers_come_from():
    import re

    versions = json.loads((ROOT / "figures" / "demo_results.json").read_text())["versions"]
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile and "constraints.txt" in makefile.split("$(STAMP):", 1)[1].split("\n")[0]
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins["transformers"] == versions["transformers"]
    torch_spec = re.search(r"TORCH_SPEC \?= torch==(\S+)", makefile).group(1)
    assert versions["torch"].split("+")[0] == torch_spec
