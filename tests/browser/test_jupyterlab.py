"""Every notebook, run in a real JupyterLab 4 in headless Chromium (fast mode).

For each notebook: open it, run all cells, fail on any error output or "Error displaying
widget", then move every enabled control of every widget and check that the widget's
output changed. Screenshots (the whole notebook, and each widget before and after) go to
``.browser-screenshots/`` (ignored by git).

Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install selenium``; run it with
``make test-browser``.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SHOTS = ROOT / ".browser-screenshots"
RUN_TIMEOUT = float(os.environ.get("SFTMIX_BROWSER_TIMEOUT", "420"))  # seconds per notebook
WIDTH = 1280


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of the notebooks (the committed files stay untouched)."""
    work = tmp_path_factory.mktemp("lab")
    for nb in NOTEBOOKS:
        shutil.copy(nb, work / nb.name)
    settings = work / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell (JupyterLab 4 only renders the visible ones by default).
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = work / ".settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))  # no pop-up
    port, token = _free_port(), secrets.token_hex(16)
    # The notebooks run from a copy, away from the repository: point them at its shipped figures/.
    env = {**os.environ, "SFTMIX_FAST": "1", "SFTMIX_RUNS_DIR": str(work / "runs"),
           "SFTMIX_FIGURES_DIR": str(ROOT / "figures"),
           "JUPYTERLAB_SETTINGS_DIR": str(work / ".settings"), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    log = open(work / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--allow-root"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        if server.poll() is not None:
            break
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail("JupyterLab did not start: " + (work / "jupyterlab.log").read_text()[-2000:])
    yield {"url": url, "token": token, "dir": work}
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WIDTH},1000"):
        options.add_argument(arg)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    driver_path = shutil.which("chromedriver")
    service = webdriver.ChromeService(executable_path=driver_path) if driver_path else None
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


_STATE = """
const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!nb || !nb.sessionContext || !nb.content) return null;
const kernel = nb.sessionContext.session && nb.sessionContext.session.kernel;
const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
  .map(p => p.textContent.trim());
return {kernel: kernel ? kernel.status : null, prompts: prompts};
"""

_ERRORS = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
return [...panel.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText)
  .filter(t => t.includes('Traceback (most recent call last)') || t.includes('Error displaying widget'))
  .map(t => t.slice(0, 1500));
"""


def _errors(driver) -> list[str]:
    return driver.execute_script(_ERRORS)


def _widget_outputs(driver):
    """The output areas that hold an explorer (a VBox of controls; not the stage progress bar)."""
    return driver.find_elements(
        By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output:has(.widget-vbox)")


def _screenshot_notebook(driver, name: str) -> None:
    """The notebook as a reader scrolls through it: one screenshot per screenful."""
    outer = driver.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer")
    height = int(driver.execute_script("return arguments[0].scrollHeight", outer))
    step = int(driver.execute_script("return arguments[0].clientHeight", outer)) - 60
    for k, top in enumerate(range(0, max(height, 1), max(step, 200))):
        driver.execute_script("arguments[0].scrollTop = arguments[1]", outer, top)
        time.sleep(0.4)
        driver.save_screenshot(str(SHOTS / f"{name}-{k:02d}.png"))


def _moves(driver, control):
    """Ways to move one control a step: ``[(move, undo), ...]``, callables returning a description.

    A dropdown offers each other option in turn (one may select the same examples as the
    current one: a filter that removes nothing); ``undo`` puts the control back, so each
    control is tried from the state the notebook left."""
    if control.tag_name == "select":
        select = Select(control)
        current = select.first_selected_option.get_attribute("value")
        others = [o.get_attribute("value") for o in select.options if o.get_attribute("value") != current]

        def pick(value, old):
            Select(control).select_by_value(value)
            return f"dropdown {old!r} -> {value!r}"

        return [(lambda v=v: pick(v, current), lambda v=v: pick(current, v)) for v in others[:4]]

    def press(key):
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", control)
        control.click()
        before = control.get_attribute("aria-valuenow")
        control.send_keys(key)
        return f"slider {before} -> {control.get_attribute('aria-valuenow')}"

    right, left = (lambda: press(Keys.ARROW_RIGHT)), (lambda: press(Keys.ARROW_LEFT))
    return [(right, left), (left, right)]


def _changed(output, before: str, timeout: float) -> bool:
    try:
        _wait(lambda: output.get_attribute("innerHTML") != before, timeout, "")
        return True
    except AssertionError:
        return False


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_notebook_in_jupyterlab(lab, browser, name):
    SHOTS.mkdir(exist_ok=True)
    stem = Path(name).stem
    start = time.time()
    browser.get(f"{lab['url']}/lab/tree/{name}?token={lab['token']}")
    _wait(lambda: (browser.execute_script(_STATE) or {}).get("kernel") == "idle", 120, "the kernel to start")
    browser.execute_script("window.jupyterapp.shell.collapseLeft()")  # the notebook at a reader's width
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    def finished():
        if _errors(browser):
            return True
        prompts = browser.execute_script(_STATE)["prompts"]
        return prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)

    try:
        _wait(finished, RUN_TIMEOUT, f"{name} to run", interval=1.0)
    finally:
        _screenshot_notebook(browser, f"{stem}-0-run")
    errors = _errors(browser)
    assert not errors, f"{name}: error output:\n" + "\n---\n".join(errors)
    ran = time.time() - start

    widgets = _widget_outputs(browser)
    expected = sum(c.source.strip().endswith(".widget")
                   for c in nbformat.read(lab["dir"] / name, as_version=4).cells if c.cell_type == "code")
    assert len(widgets) == expected, f"{name}: {expected} widget cells, {len(widgets)} rendered"
    moved = []
    for i, output in enumerate(widgets):
        driver_scroll = "arguments[0].scrollIntoView({block: 'start'})"
        browser.execute_script(driver_scroll, output)
        time.sleep(0.3)
        output.screenshot(str(SHOTS / f"{stem}-widget{i}-before.png"))
        controls = [c for c in output.find_elements(By.CSS_SELECTOR, ".noUi-handle, select")
                    if c.is_displayed() and c.get_attribute("disabled") is None
                    and c.get_attribute("aria-disabled") != "true"
                    and not c.find_elements(By.XPATH, "./ancestor::*[contains(@class, 'mod-disabled')]")]
        assert controls, f"{name}: widget {i} has no control to move"
        for control in controls:
            tried = []
            for move, undo in _moves(browser, control):
                before = output.get_attribute("innerHTML")
                tried.append(move())
                if _changed(output, before, 15):
                    moved.append(tried[-1])
                    time.sleep(0.5)
                    before = output.get_attribute("innerHTML")
                    undo()
                    _changed(output, before, 15)
                    time.sleep(0.5)
                    break
            else:
                pytest.fail(f"{name}: widget {i}'s output did not change after {tried}")
        browser.execute_script(driver_scroll, output)
        time.sleep(0.5)
        output.screenshot(str(SHOTS / f"{stem}-widget{i}-after.png"))
        assert not _errors(browser), f"{name}: moving widget {i} raised:\n" + "\n".join(_errors(browser))
    print(f"{name}: ran in {ran:.0f} s; {len(widgets)} widgets, moved {len(moved)} controls: {moved}")
    browser.execute_script("window.jupyterapp.commands.execute('docmanager:save')")
    time.sleep(1.0)
    saved = nbformat.read(lab["dir"] / name, as_version=4)
    errors = [o for c in saved.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{name}: saved notebook holds error outputs: {[e.get('ename') for e in errors]}"
    browser.execute_script("window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
