"""Every widget renders in a real browser: JupyterLab + headless Chromium, offline.

One JupyterLab server (127.0.0.1, temporary token, free port, isolated config/runtime/settings dirs)
opens ``tests/browser/widgets.ipynb`` (a setup cell, then one cell per widget); Chromium runs all
cells through the "Run" menu, waits for the kernel to finish, and the tests check each widget cell:
one output that is a live ipywidgets view, no "Error displaying widget", Bokeh canvases for the
HoloViews-based widgets, and a control moved with the keyboard changes the picture. Requests to any
other host are aborted (the machine is offline; Bokeh and Panel resources must be inline) and
recorded. Screenshots (one per widget cell, before and after its interaction, and the whole
notebook) go to ``$GALWIDGETS_ARTIFACTS`` or ``test-artifacts/browser/``.

Skipped when Playwright, JupyterLab or Chromium (``$GALWIDGETS_CHROMIUM``, default
``/usr/bin/chromium``) is missing, unless ``GALWIDGETS_REQUIRE_BROWSER=1`` (set by ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = Path(__file__).with_name("browser") / "widgets.ipynb"
CHROMIUM = Path(os.environ.get("GALWIDGETS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("GALWIDGETS_ARTIFACTS", REPO / "test-artifacts" / "browser"))
#: Widgets whose view holds HoloViews/Bokeh plots (jupyter_bokeh ``BokehModel`` widgets).
BOKEH_WIDGETS = ("MorphologyExplorer", "DeconvolutionViewer", "RedshiftExplorer", "DiffusionStepper",
                 "InpaintingDemo")
#: A control per widget and what it must change: an ``<img>`` (PNG panels) or a Bokeh plot.
INTERACTIONS = {
    "Gallery": ("slider", "Q", "img"),
    "DiffusionStepper": ("slider", "t", "img"),
    "InpaintingDemo": ("slider", "angle (°)", "img"),
    "DeconvolutionViewer": ("slider", "sample", "bokeh"),
    "RedshiftExplorer": ("slider", "redshift", "bokeh"),
    "MorphologyExplorer": ("dropdown", "plane", "bokeh"),
}
#: Run buttons: sampling in a worker thread of the kernel, then the images update.
RUN_BUTTONS = {"RedshiftExplorer": "draw", "DiffusionStepper": "run reverse process",
               "InpaintingDemo": "inpaint"}
#: An error reported in a widget's status line (``ValueError: ...``).
STATUS_ERROR = re.compile(r"\b[A-Z]\w*(Error|Exception): ")
ERROR_TEXTS = ("Error displaying widget", "Error rendering", "Failed to display", "Traceback")
#: JupyterLab front ends the widgets need: ipywidgets 8 (jupyterlab_widgets), jupyter_bokeh, pyviz_comms.
LAB_EXTENSIONS = ("@jupyter-widgets/jupyterlab-manager", "@bokeh/jupyter_bokeh", "@pyviz/jupyterlab_pyviz")
#: Hosts of the Bokeh and Panel CDNs (nothing may load from them: the widgets work offline).
CDN_HOSTS = ("cdn.bokeh.org", "cdn.holoviz.org", "unpkg.com", "cdn.jsdelivr.net")
KERNEL_READY_JS = """() => {
    const name = document.querySelector('.jp-NotebookPanel .jp-Toolbar-kernelName');
    const status = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
    return !!name && /Python/.test(name.textContent) && status?.dataset.status === 'idle';
}"""
PROMPTS_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map(e => e.textContent.trim())"""


def _require(what: str, available: bool) -> None:
    """Skip when ``what`` is missing, or fail under ``GALWIDGETS_REQUIRE_BROWSER=1`` (CI)."""
    if available:
        return
    message = f"browser test needs {what}"
    if os.environ.get("GALWIDGETS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{message} (GALWIDGETS_REQUIRE_BROWSER=1)")
    pytest.skip(message)


#: Errors of the module fixtures: pytest sets up a failed fixture again for every test, which would
#: repeat minutes of waiting; later tests fail at once with the first error instead.
_SETUP_ERRORS: dict[str, str] = {}


@contextlib.contextmanager
def _remember_failure(fixture: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        _SETUP_ERRORS[fixture] = f"{type(exc).__name__}: {exc}"
        raise
    except pytest.fail.Exception as exc:
        _SETUP_ERRORS[fixture] = str(exc)
        raise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _widget_names() -> list[str]:
    """Widget name of each code cell after the setup cell (the ``widget`` cell metadata)."""
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    return [c["metadata"]["widget"] for c in cells[1:]]


@dataclass
class Lab:
    url: str
    token: str
    log: Path

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def _wait_for_server(server: subprocess.Popen, lab: Lab, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{lab.tail()}")
        with contextlib.suppress(OSError):
            request = urllib.request.Request(f"{lab.url}/api/status",
                                             headers={"Authorization": f"token {lab.token}"})
            urllib.request.urlopen(request, timeout=2)
            return
        if time.monotonic() > deadline:
            pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{lab.tail()}")
        time.sleep(0.3)


@contextlib.contextmanager
def running_lab(root: Path, tmp: Path, python: str = sys.executable) -> Iterator[Lab]:
    """JupyterLab of the environment of ``python`` on 127.0.0.1 (free port, temporary token,
    config/runtime/settings under ``tmp``), serving ``root``; shut down afterwards. Every cell is
    kept in the DOM (no virtual scrolling) and a notebook's kernel starts without asking."""
    settings = tmp / "settings"
    for plugin, values in {
        "notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True,
                                       "scrollPastEnd": False},
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "JUPYTER_DATA_DIR")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTER_DATA_DIR=str(tmp / "data"), IPYTHONDIR=str(tmp / "ipython"), PYTHONUNBUFFERED="1")
    port, token = _free_port(), secrets.token_hex(16)
    log = tmp / "jupyterlab.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [python, "-m", "jupyterlab", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.extension_manager=readonly"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, log)
    try:
        _wait_for_server(server, lab)
        yield lab
    finally:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(urllib.request.Request(
                f"{lab.url}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}),
                timeout=10)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the server's own process group (it and its kernel)
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebook; shut down afterwards."""
    _require("playwright (pip install playwright)", importlib.util.find_spec("playwright") is not None)
    _require("jupyterlab", importlib.util.find_spec("jupyterlab") is not None)
    _require(f"Chromium at {CHROMIUM} (apt-get install chromium)", CHROMIUM.exists())
    if "lab" in _SETUP_ERRORS:
        pytest.fail(f"lab setup failed before: {_SETUP_ERRORS['lab']}", pytrace=False)
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    with _remember_failure("lab"), running_lab(root, tmp) as lab:
        yield lab


@dataclass
class Notebook:
    """The notebook after "Run All Cells": the page, one cell locator per widget, what was seen."""

    page: Any
    setup: Any
    cells: dict[str, Any]
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _wait(page: Any, predicate: str, timeout: float, what: str, arg: Any = None) -> None:
    try:
        page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=500)
    except Exception as exc:  # playwright's TimeoutError: say what we waited for
        shot = ARTIFACTS / f"timeout-{re.sub(r'[^a-z]+', '-', what.lower())}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=shot)
        raise AssertionError(f"browser: {what} within {timeout:.0f} s (screenshot {shot})") from exc


def _run_all(page: Any, timeout: float = 240) -> None:
    """Run all cells through the Run menu; wait until the run started, no cell is queued or
    running any more and the kernel is idle. (Widget cells are tagged ``raises-exception``, so an
    error in one does not stop the others; an error in the setup cell does.)"""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator("li[data-command='runmenu:run-all']").click()
    _wait(page, f"() => ({PROMPTS_JS})().some(p => p !== '[ ]:')", 30, "the first cell started")
    _wait(page, f"() => !({PROMPTS_JS})().includes('[*]:') && document.querySelector("
          f"'.jp-NotebookPanel .jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'", timeout,
          "all cells ran and the kernel went idle")


def show_whole_notebook(page: Any, settle_ms: int = 1000) -> None:
    """Hide the file browser and make the viewport as tall as the notebook (at most 16000 px),
    scrolled to its top: every cell on screen for a full-page screenshot."""
    page.keyboard.press("Control+b")
    height = page.evaluate("""() => {
        const outer = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
        outer.scrollTop = 0;
        return outer.scrollHeight;
    }""")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 150, 16000)})
    page.wait_for_timeout(settle_ms)


@pytest.fixture(scope="module")
def notebook(lab: Lab) -> Iterator[Notebook]:
    """Open the notebook in headless Chromium, run all cells, screenshot each widget cell."""
    from playwright.sync_api import sync_playwright

    if "notebook" in _SETUP_ERRORS:
        pytest.fail(f"notebook setup failed before: {_SETUP_ERRORS['notebook']}", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for pattern in ("[0-9][0-9]-*.png", "notebook*.png", "timeout-*.png"):
        for old in ARTIFACTS.glob(pattern):
            old.unlink()
    names = _widget_names()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        result = Notebook(page=page, setup=None, cells={})

        def offline(route: Any) -> None:
            if route.request.url.startswith(lab.url):
                route.continue_()
            else:
                result.blocked.append(route.request.url)
                route.abort()

        page.route("**/*", offline)
        page.on("console", lambda m: m.type == "error" and result.console_errors.append(m.text))
        page.on("pageerror", lambda e: result.console_errors.append(f"page error: {e}"))
        start = time.monotonic()
        with _remember_failure("notebook"):
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
            _wait(page, KERNEL_READY_JS, 90, "JupyterLab opened the notebook and its python3 kernel is idle")
            result.seconds["open"] = time.monotonic() - start
            _run_all(page)
            result.seconds["run all"] = time.monotonic() - start - result.seconds["open"]
        code_cells = page.locator(".jp-Notebook .jp-CodeCell")
        result.setup = code_cells.nth(0)
        result.cells = {name: code_cells.nth(1 + i) for i, name in enumerate(names)}
        # let the widget views finish rendering (Bokeh lays out asynchronously): 20 s for all
        deadline = time.monotonic() + 20
        for name in BOKEH_WIDGETS:
            if name in result.cells:
                with contextlib.suppress(Exception):
                    result.cells[name].locator(".bk-Canvas").first.wait_for(
                        timeout=max(0.1, deadline - time.monotonic()) * 1000)
        page.wait_for_timeout(1000)
        show_whole_notebook(page)
        page.screenshot(path=ARTIFACTS / "notebook.png", full_page=True)
        for i, (name, cell) in enumerate(result.cells.items(), start=1):
            cell.screenshot(path=ARTIFACTS / f"{i:02d}-{name}.png")
        result.seconds["screenshots"] = time.monotonic() - start - sum(result.seconds.values())
        yield result
        page.screenshot(path=ARTIFACTS / "notebook-after-interactions.png", full_page=True)
        browser.close()
    print(f"\nbrowser test: {result.seconds}; screenshots in {ARTIFACTS}")


def _outputs(cell: Any) -> list[dict[str, str]]:
    """Kind of each output of ``cell``: a widget view, or the MIME type it was rendered from."""
    return cell.locator(".jp-OutputArea-output").evaluate_all(
        """els => els.map(e => ({
            kind: e.querySelector(':scope > .jupyter-widgets') ? 'widget'
                : (e.dataset.mimeType || e.firstElementChild?.dataset.mimeType || e.className),
            text: e.innerText.slice(-1500)}))""")  # the end: a traceback ends with the error


def test_lab_has_the_widget_extensions(notebook: Notebook) -> None:
    """JupyterLab loaded the front ends of ipywidgets 8, jupyter_bokeh and pyviz_comms."""
    loaded = notebook.page.evaluate("""() => JSON.parse(document.getElementById('jupyter-config-data')
        .textContent).federated_extensions.map(e => e.name)""")
    for extension in LAB_EXTENSIONS:
        assert extension in loaded, f"JupyterLab extension {extension} missing; loaded: {loaded}"


def test_kernel_is_this_environment(notebook: Notebook) -> None:
    """The notebook ran in the ``python3`` kernel of the test's own environment."""
    text = notebook.setup.locator(".jp-OutputArea").inner_text()
    assert f"kernel prefix: {sys.prefix}" in text, text
    assert "setup done" in text, text


@pytest.mark.parametrize("name", _widget_names())
def test_widget_renders(notebook: Notebook, name: str) -> None:
    """One output, a live ipywidgets view without errors; Bokeh canvases for the plot widgets;
    ``<img>`` panels shown at their own size (not squeezed by the layout)."""
    cell = notebook.cells[name]
    prompt = cell.locator(".jp-InputArea-prompt").inner_text().strip()
    assert prompt != "[ ]:", f"{name}: the cell did not run (the setup cell failed?)"
    outputs = _outputs(cell)
    assert [o["kind"] for o in outputs] == ["widget"], f"{name}: expected one widget output, got {outputs}"
    text = cell.locator(".jp-OutputArea").inner_text()
    for error in ERROR_TEXTS:
        assert error not in text, f"{name}: {error!r} in the output:\n{text[:2000]}"
    assert cell.locator(".jp-OutputArea-output .jupyter-widgets").count() > 0, f"{name}: no widget view"
    if name in BOKEH_WIDGETS:
        canvases = cell.locator(".jp-OutputArea-output .bk-Canvas")
        assert canvases.count() > 0, f"{name}: no Bokeh canvas (.bk-Canvas) in the output"
        box = canvases.first.bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 50, f"{name}: Bokeh canvas {box}"
    squeezed = cell.locator(".jp-OutputArea-output img").evaluate_all(
        """imgs => imgs.filter(i => i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)
            .map(i => [i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width,
                       i.getBoundingClientRect().height])
            .filter(([w, h, rw, rh]) => Math.abs(rw / rh - w / h) > 0.05 * (w / h))""")
    assert not squeezed, (f"{name}: images drawn distorted ([natural w, h, shown w, h]): {squeezed}; "
                          "see the screenshot")


def test_initial_settings_survive_rendering(notebook: Notebook) -> None:
    """Settings given to the constructor are what the browser shows: the DiffusionStepper built
    with ``t=50`` still shows t = 50 after its view (with its Play/slider links) rendered."""
    cell = notebook.cells["DiffusionStepper"]
    text = cell.locator(".jp-OutputArea-output").first.inner_text()
    assert "x_t at t = 50:" in text, f"DiffusionStepper: t reset in the browser; shows {text[:300]!r}"


def test_no_error_in_page(notebook: Notebook) -> None:
    """Nowhere in the notebook an ipywidgets/JupyterLab rendering error; no JavaScript exception."""
    text = notebook.page.locator(".jp-Notebook").inner_text()
    for error in ERROR_TEXTS:
        assert error not in text, f"{error!r} in the notebook"
    exceptions = [e for e in notebook.console_errors if e.startswith("page error")]
    assert not exceptions, exceptions


def _control(cell: Any, kind: str, label: str) -> Any:
    """The ipywidgets slider or dropdown of ``cell`` whose description is ``label``."""
    cls = {"slider": ".widget-slider", "dropdown": ".widget-dropdown"}[kind]
    controls = cell.locator(f".jp-OutputArea-output {cls}").filter(
        has=cell.page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$")))
    assert controls.count() == 1, f"expected one {kind} labelled {label!r}, found {controls.count()}"
    return controls


def _bokeh_root(cell: Any, index: int = 0) -> Any:
    """The outermost Bokeh element of the ``index``-th Bokeh plot in ``cell``."""
    marked = cell.locator(".jp-OutputArea-output").first.evaluate(
        """(out, i) => {
            const roots = [...out.querySelectorAll('*')].filter(e => e.shadowRoot
                && [...e.classList].some(c => c.startsWith('bk-'))
                && !e.parentElement.closest('[data-browser-test-bokeh]'));
            roots.forEach((e, k) => e.setAttribute('data-browser-test-bokeh', String(k)));
            return roots.length;
        }""", index)
    assert marked > index, f"no Bokeh plot {index} in the output"
    return cell.locator(f"[data-browser-test-bokeh='{index}']")


@pytest.mark.parametrize("name", list(INTERACTIONS))
def test_control_changes_the_picture(notebook: Notebook, name: str) -> None:
    """Moving a slider with the keyboard (or choosing another dropdown entry) redraws the widget:
    an ``<img>`` panel gets a new image, or a Bokeh plot is drawn differently."""
    if name not in notebook.cells:
        pytest.skip(f"{name} is not in {NOTEBOOK.name}")
    cell = notebook.cells[name]
    kind, label, target = INTERACTIONS[name]
    control = _control(cell, kind, label)
    images = cell.locator(".jp-OutputArea-output img")
    before = images.evaluate_all("imgs => imgs.map(i => i.src)") if target == "img" else \
        _bokeh_root(cell).screenshot()
    if kind == "slider":
        handle = control.locator(".noUi-handle")
        handle.focus()
        for _ in range(3):
            handle.press("ArrowRight")
    else:
        select = control.locator("select")
        options = select.locator("option").evaluate_all("os => os.map(o => o.value)")
        select.select_option(next(v for v in options if v != select.input_value()))
    if target == "img":
        _wait(notebook.page, "([imgs, before]) => imgs.some((i, k) => i.src !== before[k])", 30,
              f"{name}: an image changed after moving {label!r}", arg=[images.element_handles(), before])
    else:
        deadline = time.monotonic() + 30
        while _bokeh_root(cell).screenshot() == before:
            assert time.monotonic() < deadline, f"{name}: the Bokeh plot did not change after {label!r}"
            notebook.page.wait_for_timeout(500)
    notebook.page.wait_for_timeout(500)
    cell.screenshot(path=ARTIFACTS / f"{list(notebook.cells).index(name) + 1:02d}-{name}-after-{kind}.png")


@pytest.mark.parametrize("name", list(RUN_BUTTONS))
def test_run_button_samples_in_the_background(notebook: Notebook, name: str) -> None:
    """Clicking the run button samples (in a worker thread of the kernel), the button comes back
    and an image panel shows the result; no error in the status line."""
    if name not in notebook.cells:
        pytest.skip(f"{name} is not in {NOTEBOOK.name}")
    cell, label = notebook.cells[name], RUN_BUTTONS[name]
    output = cell.locator(".jp-OutputArea-output").first
    button = output.locator("button", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    assert button.count() == 1, f"{name}: expected one button {label!r}, found {button.count()}"
    images = output.locator("img")
    before = images.evaluate_all("imgs => imgs.map(i => i.src)")
    button.click()
    _wait(notebook.page, """([imgs, before, button, label]) => imgs.some((i, k) => i.src !== before[k])
            && !button.disabled && button.textContent.trim() === label""", 60,
          f"{name}: {label!r} finished and an image changed",
          arg=[images.element_handles(), before, button.element_handle(), label])
    notebook.page.wait_for_timeout(500)
    text = output.inner_text()
    assert not STATUS_ERROR.search(text), f"{name}: error after {label!r}: {STATUS_ERROR.search(text)[0]}..."
    cell.screenshot(path=ARTIFACTS / f"{list(notebook.cells).index(name) + 1:02d}-{name}-after-run.png")


def test_gallery_click_selects_the_galaxy_under_the_pointer(notebook: Notebook) -> None:
    """A click on a generated galaxy hits the transparent button over that tile (CSS-grid overlay):
    its nearest training galaxies appear."""
    cell = notebook.cells["Gallery"]
    tile, gap, ncols, pick = 32 * 3, 2, 4, 5  # 32 px stamps, zoom 3, 4 columns: tile 5 is row 1, column 1
    grid = cell.locator(".jp-OutputArea-output .widget-gridbox").first
    box = grid.bounding_box()
    assert box is not None, "Gallery: no grid of generated galaxies"
    row, col = divmod(pick, ncols)
    x, y = box["x"] + col * (tile + gap) + tile / 2, box["y"] + row * (tile + gap) + tile / 2
    notebook.page.mouse.click(x, y)
    _wait(notebook.page, "([cell, text]) => cell.innerText.includes(text)", 15,
          f"Gallery: the status line names generated galaxy {pick} after clicking its tile",
          arg=[cell.element_handle(), f"generated galaxy {pick}:"])
    cell.screenshot(path=ARTIFACTS / "01-Gallery-after-click.png")


def test_box_select_in_the_morphology_plot_reaches_python(notebook: Notebook) -> None:
    """Dragging a box over the Gini–M20 points (box select is the active tool) sends the selection
    through the HoloViews stream to the kernel: the status line counts the selected galaxies."""
    if "MorphologyExplorer" not in notebook.cells:
        pytest.skip(f"MorphologyExplorer is not in {NOTEBOOK.name}")
    cell = notebook.cells["MorphologyExplorer"]
    boxes = [b for b in (c.bounding_box() for c in cell.locator(".bk-Canvas").all()) if b]
    assert boxes, "MorphologyExplorer: no Bokeh canvas"
    main = max(boxes, key=lambda b: b["width"] * b["height"])  # the scatter plot, not the marginals
    mouse = notebook.page.mouse
    mouse.move(main["x"] + 0.12 * main["width"], main["y"] + 0.05 * main["height"])
    mouse.down()
    mouse.move(main["x"] + 0.98 * main["width"], main["y"] + 0.9 * main["height"], steps=10)
    mouse.up()
    _wait(notebook.page, "(cell) => /\\b[1-9]\\d* selected \\(/.test(cell.innerText)", 15,
          "MorphologyExplorer: the status line counts the box-selected galaxies", arg=cell.element_handle())
    notebook.page.wait_for_timeout(500)
    cell.screenshot(path=ARTIFACTS / f"{list(notebook.cells).index('MorphologyExplorer') + 1:02d}-"
                    "MorphologyExplorer-after-box-select.png")


def test_bokeh_loads_offline(notebook: Notebook) -> None:
    """No request for a CDN, also after the interactions above: BokehJS, Panel's JavaScript and CSS
    are all inline (the canvases of ``test_widget_renders`` rendered while every request to another
    host was aborted)."""
    cdn = sorted({url.split("?")[0] for url in notebook.blocked if any(h in url for h in CDN_HOSTS)})
    assert not cdn, f"the page asked a CDN for {len(cdn)} resources (aborted): {cdn}"
    assert not notebook.blocked, f"requests to other hosts (aborted): {sorted(set(notebook.blocked))}"
