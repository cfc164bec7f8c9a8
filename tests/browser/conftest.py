"""The browser test is opt-in: `make test-browser` (or SFTMIX_BROWSER=1 pytest tests/browser -m browser).

A plain `pytest` run does not even collect it: it needs JupyterLab, Chromium, chromedriver
and selenium, and takes minutes.
"""
import os

collect_ignore_glob = [] if os.environ.get("SFTMIX_BROWSER") == "1" else ["test_*.py"]


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs the notebooks in JupyterLab in headless Chromium")
