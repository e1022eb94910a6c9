"""Every widget renders in a real browser: JupyterLab + headless Chromium, offline.

One JupyterLab server (127.0.0.1, temporary token, free port, isolated config/runtime/settings dirs)
opens ``tests/browser/widgets.ipynb`` (a setup cell, then one cell per widget); Chromium runs all
cells through the "Run" menu, waits for the kernel to finish, and the tests check each widget cell:
one output that is a live ipywidgets view, no "Error displaying widget", Bokeh canvases for the
HoloViews-based widgets, and a control moved with the keyboard changes the picture. Requests to any
other host are aborted (the machine is offline; Bokeh and Panel resources must be inline) and
recorded. Screenshots (one per widget cell, before and after its interaction, and the whole
notebook) go to ``$GALWIDGETS_ARTIFACTS`` or ``test-artifacts/browser/``.

A second notebook in the same server, ``tests/browser/multi_widgets.ipynb``, shows three
``RedshiftExplorer``, two ``MorphologyExplorer`` and a ``DeconvolutionViewer`` (observation on
another pixel grid than the model's) together; its last cell prints the rows of every Bokeh
``ColumnDataSource`` the kernel holds. The test counts, per plot and glyph renderer, the glyphs
Bokeh draws in the page and the pixels they change (each renderer painted alone, through BokehJS's
views), and compares them with the kernel's rows: several Bokeh documents rendering together once
lost every glyph but the first plot's (shared WebGL canvas, see ``galwidgets/widgets/_bokeh.py``).

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
MULTI_NOTEBOOK = NOTEBOOK.with_name("multi_widgets.ipynb")
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


def _widget_names(notebook: Path = NOTEBOOK) -> list[str]:
    """Widget name of each code cell after the setup cell that has one (``widget`` cell metadata)."""
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    return [c["metadata"]["widget"] for c in cells[1:] if "widget" in c["metadata"]]


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
    for notebook in (NOTEBOOK, MULTI_NOTEBOOK):
        shutil.copy(notebook, root / notebook.name)
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
def browser(lab: Lab) -> Iterator[Any]:
    """Headless Chromium (through Playwright) for the notebooks of this module; the screenshots of
    an earlier run are removed first."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for pattern in ("[0-9][0-9]-*.png", "notebook*.png", "timeout-*.png", "multi-*.png"):
        for old in ARTIFACTS.glob(pattern):
            old.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def _open_and_run(browser: Any, lab: Lab, notebook: Path, fixture: str) -> Notebook:
    """A new page (offline: requests to other hosts aborted and recorded; console errors recorded)
    with ``notebook`` opened in JupyterLab and all its cells run; ``setup`` is its first code cell."""
    if fixture in _SETUP_ERRORS:
        pytest.fail(f"{fixture} setup failed before: {_SETUP_ERRORS[fixture]}", pytrace=False)
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
    with _remember_failure(fixture):
        # a workspace per notebook: JupyterLab would reopen the other notebook's tabs in this page
        page.goto(f"{lab.url}/lab/workspaces/{notebook.stem}/tree/{notebook.name}?token={lab.token}")
        _wait(page, KERNEL_READY_JS, 90, f"JupyterLab opened {notebook.name} and its python3 kernel is idle")
        result.seconds["open"] = time.monotonic() - start
        _run_all(page)
        result.seconds["run all"] = time.monotonic() - start - result.seconds["open"]
    code_cells = page.locator(".jp-Notebook .jp-CodeCell")
    result.setup = code_cells.nth(0)
    result.cells = {name: code_cells.nth(1 + i) for i, name in enumerate(_widget_names(notebook))}
    return result


@pytest.fixture(scope="module")
def notebook(lab: Lab, browser: Any) -> Iterator[Notebook]:
    """Open the notebook in headless Chromium, run all cells, screenshot each widget cell."""
    result = _open_and_run(browser, lab, NOTEBOOK, "notebook")
    page, start = result.page, time.monotonic()
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
    result.seconds["screenshots"] = time.monotonic() - start
    yield result
    page.screenshot(path=ARTIFACTS / "notebook-after-interactions.png", full_page=True)
    page.close()
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


# -- several Bokeh widgets in one notebook ----------------------------------------------------------
#: Glyph renderers of the Bokeh documents shown in ``cell``: ``{model id: rows of its data}``.
GLYPH_ROWS_JS = """(cell) => {
    const {ViewQuery} = Bokeh.require("core/view_manager");
    const rows = {};
    for (const root of Bokeh.index.roots) {
        if (!root.el?.isConnected || !cell.contains(root.el)) continue;
        for (const view of new ViewQuery(root).all_views()) {
            if (view.model.type === "GlyphRenderer") rows[view.model.id] = view.glyph.data_size;
        }
    }
    return rows;
}"""
#: Per Bokeh plot in ``cell``: its frame (canvas px) and, per glyph renderer painted alone (every
#: other renderer of the plot, also axes, grids and legends, hidden through its view's ``displayed``;
#: the models are untouched), the glyphs Bokeh paints (``painted``: indices handed to its glyph
#: views), the pixels of the frame that change against a paint without it (``changed``, and their
#: ``bbox``), and for markers the points whose centre pixel changes (``centres``).
GLYPHS_DRAWN_JS = """(cell) => {
    const {ViewQuery} = Bokeh.require("core/view_manager");
    const plots = [];
    for (const root of Bokeh.index.roots) {
        if (!root.el?.isConnected || !cell.contains(root.el)) continue;
        for (const view of new ViewQuery(root).all_views()) {
            if (view.frame !== undefined && view.computed_renderer_views !== undefined
                && !plots.includes(view)) plots.push(view);
        }
    }
    const GLYPHS = ["glyph", "selection_glyph", "nonselection_glyph", "decimated_glyph", "muted_glyph",
                    "hover_glyph"];
    const hide = (view) => Object.defineProperty(view, "displayed", {get: () => false, configurable: true});
    const paint = (plot) => {
        plot.invalidate_painters();
        plot.paint();
        const canvas = plot.canvas_view.primary.canvas;
        return canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    };
    return plots.map(plot => {
        const all = plot.computed_renderer_views;
        all.forEach(hide);
        const blank = paint(plot);
        const ratio = plot.canvas_view.pixel_ratio;
        const frame = plot.frame.bbox;
        const [fx0, fy0] = [Math.ceil(frame.x * ratio), Math.ceil(frame.y * ratio)];
        const [fx1, fy1] = [Math.floor(frame.x1 * ratio), Math.floor(frame.y1 * ratio)];
        const measured = all.filter(v => v.model.type === "GlyphRenderer").map(view => {
            delete view.displayed;
            let painted = 0;
            const glyphs = [...new Set(GLYPHS.map(g => view[g]).filter(g => g != null))];
            for (const glyph of glyphs) {
                glyph.paint = function (ctx, indices, data) {
                    painted += indices.length;
                    return Object.getPrototypeOf(this).paint.call(this, ctx, indices, data);
                };
            }
            const shown = paint(plot);
            glyphs.forEach(glyph => delete glyph.paint);
            hide(view);
            const {width} = shown;
            const differs = (x, y) => [0, 1, 2, 3].some(
                c => shown.data[4 * (y * width + x) + c] !== blank.data[4 * (y * width + x) + c]);
            let changed = 0, x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
            for (let y = fy0; y < fy1; y++) {
                for (let x = fx0; x < fx1; x++) {
                    if (!differs(x, y)) continue;
                    changed++;
                    x0 = Math.min(x0, x); y0 = Math.min(y0, y);
                    x1 = Math.max(x1, x + 1); y1 = Math.max(y1, y + 1);
                }
            }
            let centres = null;
            if (view.model.glyph.type === "Scatter") {
                const {sx, sy} = view.glyph;
                centres = 0;
                for (let i = 0; i < sx.length; i++) {
                    const x = Math.floor(sx[i] * ratio), y = Math.floor(sy[i] * ratio);
                    if (x >= fx0 && y >= fy0 && x < fx1 && y < fy1 && differs(x, y)) centres++;
                }
            }
            return {id: view.model.id, glyph: view.model.glyph.type, rows: view.glyph.data_size, painted,
                    changed, centres, bbox: changed ? [x0, y0, x1, y1].map(p => p / ratio) : null};
        });
        all.forEach(view => delete view.displayed);
        paint(plot);
        return {id: plot.model.id, frame: [frame.x0, frame.y0, frame.x1, frame.y1], renderers: measured};
    });
}"""


@dataclass
class MultiNotebook:
    """The multi-widget notebook after "Run All": the kernel's rows per glyph renderer (per widget
    cell) and what the page drew (per cell, per plot: see ``GLYPHS_DRAWN_JS``)."""

    notebook: Notebook
    kernel: dict[str, dict[str, int]]
    drawn: dict[str, list[dict[str, Any]]]


def _kernel_census(notebook: Notebook) -> dict[str, dict[str, int]]:
    """The JSON line ``GLYPH CENSUS {...}`` printed by the notebook's last cell."""
    text = notebook.page.locator(".jp-Notebook .jp-CodeCell").last.locator(".jp-OutputArea").inner_text()
    match = re.search(r"GLYPH CENSUS (\{.*\})", text)
    assert match, f"{MULTI_NOTEBOOK.name}: no glyph census in the last cell's output:\n{text[-2000:]}"
    return json.loads(match[1])


@pytest.fixture(scope="module")
def multi_notebook(lab: Lab, browser: Any) -> Iterator[MultiNotebook]:
    """Open the multi-widget notebook next to the first one, run all, wait until the page's Bokeh
    views hold the kernel's rows, measure what is drawn, screenshot."""
    result = _open_and_run(browser, lab, MULTI_NOTEBOOK, "multi_notebook")
    page, start = result.page, time.monotonic()
    with _remember_failure("multi_notebook"):
        kernel = _kernel_census(result)
        cells = [result.cells[name].element_handle() for name in kernel]
        _wait(page, f"""([cells, kernel]) => cells.every((cell, k) => {{
                const rows = ({GLYPH_ROWS_JS})(cell);
                return Object.entries(kernel[k]).every(([id, n]) => rows[id] === n);
            }})""", 30, "the Bokeh views of every widget hold the kernel's data",
              arg=[cells, list(kernel.values())])
        show_whole_notebook(page)
        drawn = {name: result.cells[name].evaluate(GLYPHS_DRAWN_JS) for name in kernel}
    page.screenshot(path=ARTIFACTS / "multi-notebook.png", full_page=True)
    for i, (name, cell) in enumerate(result.cells.items(), start=1):
        cell.screenshot(path=ARTIFACTS / f"multi-{i:02d}-{name}.png")
    counts = {name: [[(r["glyph"], r["rows"], r["painted"], r["centres"]) for r in plot["renderers"]]
                     for plot in plots] for name, plots in drawn.items()}
    (ARTIFACTS / "multi-glyphs.json").write_text(json.dumps({"kernel": kernel, "drawn": drawn}, indent=1))
    result.seconds["measure"] = time.monotonic() - start
    yield MultiNotebook(result, kernel, drawn)
    page.close()
    print(f"\nmulti-widget notebook: {result.seconds}; (glyph, rows, painted, centres drawn) per plot: "
          f"{counts}")


@pytest.mark.parametrize("name", _widget_names(MULTI_NOTEBOOK))
def test_every_plot_draws_its_data(multi_notebook: MultiNotebook, name: str) -> None:
    """With several widgets in one notebook, every Bokeh plot of every widget draws all its data:
    per glyph renderer, the rows the page holds and the glyphs Bokeh paints equal the rows of the
    kernel's ColumnDataSource, painting it changes pixels of the canvas, and every point of a
    scatter plot changes its centre pixel. Every plot holds data."""
    kernel, plots = multi_notebook.kernel[name], multi_notebook.drawn[name]
    drawn = {r["id"]: r for plot in plots for r in plot["renderers"]}
    assert plots and set(drawn) == set(kernel), (
        f"{name}: glyph renderers in the kernel {sorted(kernel)} but in the page {sorted(drawn)}")
    empty = [plot["id"] for plot in plots if not any(kernel[r["id"]] for r in plot["renderers"])]
    assert not empty, f"{name}: plots without data in the kernel: {empty}"
    wrong = {rid: {k: drawn[rid][k] for k in ("glyph", "rows", "painted", "changed", "centres")}
             for rid, rows in kernel.items()
             if not (drawn[rid]["rows"] == drawn[rid]["painted"] == rows
                     and (drawn[rid]["changed"] > 0) == (rows > 0)
                     and drawn[rid]["centres"] in (None, rows))}
    assert not wrong, f"{name}: glyph renderers not drawn as the kernel holds them ({kernel}): {wrong}"


def test_deconvolution_viewer_draws_one_sky(multi_notebook: MultiNotebook) -> None:
    """The observation (0.168" pixels, 50 x 50) and the model panels (0.262", 32 x 32) of the
    DeconvolutionViewer each fill their panel's frame: one field of the sky, not the finer grid
    drawn over a larger area than the coarser one."""
    plots = multi_notebook.drawn["DeconvolutionViewer"]
    images = [(plot["frame"], r["bbox"]) for plot in plots for r in plot["renderers"]
              if r["glyph"] == "Image"]
    assert len(images) == 6, f"expected six image panels, got {len(images)}"
    for frame, bbox in images:
        assert bbox is not None and all(abs(a - b) <= 2 for a, b in zip(bbox, frame)), (
            f"DeconvolutionViewer: an image covers {bbox} of its frame {frame} (canvas px)")


def test_multi_widget_page_is_offline_and_without_errors(multi_notebook: MultiNotebook) -> None:
    """No request left the machine and no JavaScript exception with several widgets on the page."""
    page = multi_notebook.notebook
    assert not page.blocked, f"requests to other hosts (aborted): {sorted(set(page.blocked))}"
    exceptions = [e for e in page.console_errors if e.startswith("page error")]
    assert not exceptions, exceptions
    text = page.page.locator(".jp-Notebook").inner_text()
    for error in ERROR_TEXTS:
        assert error not in text, f"{error!r} in {MULTI_NOTEBOOK.name}"
