"""The live training view as a reader running the notebooks sees it.

This starts the JupyterLab that `make lab` opens (on 127.0.0.1, with a
token, in a temporary folder), opens a small notebook in headless
Chromium, runs a short training with `LiveView`, and checks that the
dashboard moves while training (its progress text changes at least twice)
and leaves the final static figure when training ends. It stops the server
it started, by its process id. Run with `make labcheck`.

The training data are random images of MNIST's shape, so that this test
needs no download; what it checks is the view, not the learning.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu",
                 "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TOKEN = "nnlib-labcheck"
TRAINING_CELL = """\
import numpy as np
from nnlib import models
from nnlib.live import LiveView
from nnlib.losses import CrossEntropyLoss
from nnlib.optim import SGD
from nnlib.train import Callback, fit

rng = np.random.default_rng(0)
X = rng.standard_normal((3000, 784)).astype(np.float32)
y = rng.integers(0, 10, 3000)
model = models.mlp(rng=rng)
view = LiveView("labcheck", every_seconds=0.3)
# A pause in each step stretches the run to a few seconds, so that the
# dashboard has time to redraw while the test watches it.
class Slow(Callback):
    def on_batch_end(self, state):
        __import__("time").sleep(0.03)
history = fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.01),
              (X, y), num_epochs=3, batch_size=64, rng=rng,
              callbacks=[view, Slow()])
print("finished", history.stop_reason)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"jupyter lab did not answer {url} in {timeout} s")


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1, serving tmp_path; its URL."""
    settings = tmp_path / "settings"
    # Headless, JupyterLab only renders the cells in view unless windowing
    # is off; a test reads outputs anywhere on the page.
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(TRAINING_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name":
                                 "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, work / "live.ipynb")
    port = free_port()
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={work}"]
        # CI runs as root, which JupyterLab refuses unless told.
        + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_server(f"{url}/api/status?token={TOKEN}", process)
        yield url
    finally:
        # Stop the server we started, and its kernels, by process group.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_live_view_moves_while_training_and_leaves_its_figure(lab):
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        shots = ROOT / "_build" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        try:
            run_and_watch(page, lab)
        finally:
            page.screenshot(path=str(shots / "jupyterlab-live-view.png"))
            browser.close()


def run_and_watch(page, lab):
    """Run the training cell; watch the dashboard move, then the figure."""
    page.goto(f"{lab}/lab/workspaces/labcheck/tree/live.ipynb"
              f"?token={TOKEN}&reset")
    cell = page.locator(".jp-Notebook .jp-CodeCell").first
    cell.wait_for(timeout=60_000)
    # Wait until the kernel has started and is idle (the status bar says
    # so), or the keypress below may reach a notebook with no kernel yet.
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")

    progress = cell.locator(".jp-OutputArea-output pre").first
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if progress.count():
            text = progress.inner_text(timeout=1000).strip()
            if text and (not seen or text != seen[-1]):
                seen.append(text)
        if cell.get_by_text("finished completed").count():
            break
        time.sleep(0.1)
    assert cell.get_by_text("finished completed").count(), (
        "the training cell did not finish within 60 s; progress seen: "
        f"{seen}")
    moving = [t for t in seen if "step" in t]
    assert len(moving) >= 3, (
        f"the dashboard's progress text changed fewer than twice during "
        f"training: {moving}")
    image = cell.locator(".jp-OutputArea-output img").last
    image.wait_for(timeout=10_000)
    width = image.evaluate("img => img.naturalWidth")
    assert width > 100, "the final figure is missing or empty"
    assert cell.locator(".jp-OutputArea-output .widget-hprogress, "
                        ".jp-OutputArea-output progress").count() == 0, (
        "the live dashboard was not replaced by the final figure")
