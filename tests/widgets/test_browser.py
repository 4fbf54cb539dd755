"""The widgets in a real browser: JupyterLab serves a parameterized copy of
20_explore_selection over the tiny A/B run, Debian's headless Chromium (driven by playwright;
never ``playwright install``) runs all cells, the widgets render, and clicking a thumbnail's
button in the SelectionExplorer opens that frame in the HeatmapViewer.

Screenshots go to the test's tmp folder, and are copied to ``$ALKIT_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import contextlib
import importlib.util
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
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from alkit.workflow.pipeline import NOTEBOOKS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOTEBOOK = "20_explore_selection"
#: Seconds: JupyterLab answering, the page loading, all cells running (2 shared CPU cores).
LAB_START_S, PAGE_LOAD_S, RUN_ALL_S, CLICK_S = 90, 90, 180, 60
#: JupyterLab user settings: no news or update checks (no network), every cell in the DOM.
#: (Not ``autoStartDefaultKernel``: starting the kernel as the page loads once lost the
#: widgets' models, "Error displaying widget: model not found", under load.)
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


#: True once every code cell's prompt shows it queued or run (``[*]`` or ``[n]``).
QUEUED_JS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .every(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""
#: True once the first code cell has run (``[n]``): the queued cells really execute.
STARTED_JS = """() => /\\[\\d+\\]/.test(
    document.querySelector('.jp-CodeCell .jp-InputPrompt').textContent)"""
#: True once every code cell has run (``[n]``).
DONE_JS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .every(p => /\\[\\d+\\]/.test(p.textContent))"""

#: Scrolls the notebook so that the cell holding the element is at the top.
SCROLL_TO_CELL_JS = "el => el.closest('.jp-Cell').scrollIntoView({block: 'start'})"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (Debian: apt-get install chromium; `make test` tries it)"
    if importlib.util.find_spec("playwright") is None:
        return "python package playwright not installed (pip install -e '.[dev]')"
    return None


MISSING = _missing()
#: CI (``CI=true``) installs chromium (``make test``): there a missing browser fails the tests
IN_CI = os.environ.get("CI") == "true"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        MISSING is not None and not IN_CI, reason=f"browser test skipped: {MISSING}"
    ),
]


@pytest.fixture(autouse=True)
def _browser_is_there():
    """Under ``CI=true`` a missing browser is a failure, not a skip."""
    if MISSING is not None:
        pytest.fail(f"CI=true and the browser test cannot run: {MISSING}")


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: the notebook's URL, the served folder and the server's log."""

    url: str
    root: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _write_settings(settings_dir: Path) -> None:
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _shutdown_kernels(base: str, token: str) -> None:
    """Ask the server to stop its kernels (they run in their own sessions)."""
    try:
        with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5) as r:
            kernels = json.load(r)
        for kernel in kernels:
            request = urllib.request.Request(
                f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE"
            )
            urllib.request.urlopen(request, timeout=10).close()
    except OSError:
        pass


@pytest.fixture
def lab(ab_run, tmp_path: Path):
    """JupyterLab on a free port serving a parameterized copy of the explore notebook;
    terminated (kernels first) at the end."""
    root = tmp_path / "lab"
    root.mkdir()
    params = {
        "ab_run_dir": str(ab_run.step("10_ab_test").out_dir),
        "out_dir": str(tmp_path / "explore"),
        "page_size": 8,  # two per method: four methods side by side fit a 1280 px window
    }
    nb = parameterize_notebook(load_notebook_node(str(NOTEBOOKS / f"{NOTEBOOK}.ipynb")), params)
    nbformat.write(nb, root / f"{NOTEBOOK}.ipynb")
    _write_settings(tmp_path / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
        f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
    ]  # fmt: skip
    if os.geteuid() == 0:  # containers and CI runners
        command.append("--allow-root")
    log = tmp_path / "lab.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            deadline = time.monotonic() + LAB_START_S
            while not _answers(f"{base}/api/status?token={token}"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield Lab(f"{base}/lab/tree/{NOTEBOOK}.ipynb?token={token}", root, log)
        finally:
            if proc.poll() is None:
                _shutdown_kernels(base, token)
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=30)


@pytest.fixture
def screenshots(tmp_path: Path):
    """A folder for screenshots, copied to ``$ALKIT_SCREENSHOTS`` afterwards when set."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    target = os.environ.get("ALKIT_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy2(png, Path(target) / png.name)


def _dismiss(dialog) -> None:
    """Accept a JupyterLab dialog; one that stays open (no accept button, or a click that
    landed while it was still building) is closed with Escape."""
    accept = dialog.locator(".jp-mod-accept")
    with contextlib.suppress(Exception):
        if accept.count():
            accept.first.click(timeout=5_000)
            dialog.wait_for(state="hidden", timeout=5_000)
            return
    with contextlib.suppress(Exception):
        dialog.page.keyboard.press("Escape")


def _wait_visible_accepting_dialogs(page, locator, seconds: float) -> None:
    """Wait until ``locator`` is visible, accepting any JupyterLab dialog in the way."""
    deadline = time.monotonic() + seconds
    while not locator.first.is_visible():
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            _dismiss(dialog.first)
        assert time.monotonic() < deadline, f"{locator} did not become visible in {seconds} s"
        page.wait_for_timeout(500)


def _run_all_cells(page) -> None:
    """Close the file browser, wait for an idle kernel (accepting a kernel-selection dialog
    if one shows), then Run > Run All Cells until the cells are queued (at most 3 tries)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click(
        timeout=CLICK_S * 1000
    )
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    deadline = time.monotonic() + PAGE_LOAD_S
    while not idle.count():
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            _dismiss(dialog.first)
        assert time.monotonic() < deadline, "the kernel did not become idle"
        page.wait_for_timeout(500)
    run_menu = page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$"))
    run_all = page.locator(".lm-Menu-item[data-command='runmenu:run-all']")
    for _ in range(3):
        # a busy machine may take long to make them actionable: wait for that, not a time;
        # a late "Select Kernel" dialog (seen after the first cell ran) hides the menu bar
        # until it is accepted, and waiting is no action, so no locator handler fires
        _wait_visible_accepting_dialogs(page, run_menu, PAGE_LOAD_S)
        run_menu.click(timeout=CLICK_S * 1000)
        run_all.wait_for(state="visible", timeout=CLICK_S * 1000)
        run_all.click(timeout=CLICK_S * 1000)
        try:
            page.wait_for_function(QUEUED_JS, timeout=10_000)
            # a kernel chosen in a late dialog drops the queue: retry unless cells really run
            page.wait_for_function(STARTED_JS, timeout=CLICK_S * 1000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError("Run All Cells queued no cell")


def test_clicking_a_thumbnail_opens_the_frame_in_the_viewer(lab: Lab, screenshots: Path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1200})
        page.set_default_timeout(30_000)
        # JupyterLab may open a dialog at any moment while it starts (a "Select Kernel" was
        # seen after the kernel already showed idle): dismiss it whenever it blocks an action;
        # no_wait_after lets the handler run again if one click did not close it (seen in CI)
        page.add_locator_handler(page.locator(".jp-Dialog"), _dismiss, no_wait_after=True)
        try:
            page.goto(lab.url, wait_until="domcontentloaded", timeout=PAGE_LOAD_S * 1000)
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=PAGE_LOAD_S * 1000)
            _run_all_cells(page)
            page.wait_for_function(DONE_JS, timeout=RUN_ALL_S * 1000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type*='error']")
            assert not errors.count(), errors.first.inner_text()

            # the widgets rendered: thumbnails with their buttons, the viewer's image, the table
            outputs = page.locator(".jp-OutputArea-output")
            explorer = outputs.filter(has_text="sort by")
            viewer = outputs.filter(has_text="opacity")
            abtable = outputs.filter(has_text="test set")
            thumbnails = explorer.locator("img.widget-image")
            buttons = explorer.locator("button", has_text=re.compile(r"^open \d+$"))
            image, caption = viewer.locator("img.widget-image"), viewer.locator(".widget-html")
            expect(buttons.first).to_be_visible(timeout=CLICK_S * 1000)
            assert thumbnails.count() == buttons.count() >= 2
            expect(image).to_have_attribute("src", re.compile(r"^blob:"), timeout=CLICK_S * 1000)
            expect(caption.first).to_contain_text(re.compile(r"frame \d+ · session"))
            expect(abtable.locator("table").first).to_contain_text("wMAP")
            shown = int(re.search(r"frame (\d+)", caption.first.inner_text()).group(1))
            explorer.evaluate(SCROLL_TO_CELL_JS)
            page.screenshot(path=screenshots / "browser_explorer.png")

            # a click on another frame's button opens it in the viewer: new caption, new image
            labels = [b.inner_text() for b in buttons.all()]
            target = next(int(t.split()[1]) for t in labels if int(t.split()[1]) != shown)
            before = image.get_attribute("src")
            # under load the kernel may still be drawing and the button still moving: wait for
            # the states the click needs (idle kernel, button enabled in view), then click
            button = buttons.filter(has_text=re.compile(rf"^open {target}$")).first
            idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            idle.first.wait_for(timeout=RUN_ALL_S * 1000)
            button.scroll_into_view_if_needed(timeout=CLICK_S * 1000)
            expect(button).to_be_enabled(timeout=CLICK_S * 1000)
            button.click(timeout=CLICK_S * 1000)
            expect(caption.first).to_contain_text(f"frame {target} ·", timeout=CLICK_S * 1000)
            expect(image).not_to_have_attribute("src", before, timeout=CLICK_S * 1000)
            explorer.evaluate(SCROLL_TO_CELL_JS)
            page.screenshot(path=screenshots / "browser_after_click.png")
        except Exception:
            with contextlib.suppress(Exception):
                page.screenshot(path=screenshots / "failure.png")
                (screenshots / "failure.html").write_text(page.content())
            print(f"JupyterLab log ({lab.log}):\n{lab.log.read_text()[-4000:]}")
            raise
        finally:
            browser.close()
