"""Run every tutorial in JupyterLab as a student would, and photograph it.

Starts JupyterLab (of the environment of ``--python``, by default this one) on 127.0.0.1 serving a
tutorials folder, opens each tutorial in headless Chromium (Debian's ``/usr/bin/chromium`` through
Playwright), runs all cells from the Run menu, waits for the kernel, and records per tutorial: wall
time, error outputs (tracebacks, "Error displaying widget"), the number of figures (``<img>``
outputs), widget views and Bokeh canvases, and requests to hosts other than the server (aborted:
the check runs offline). Full-notebook screenshots go to ``--out``; a summary table is printed and
written to ``--out/summary.json``. Exits 1 when a tutorial has an error or shows no figure.

Not part of the test suite (the full-size tutorials take about 15 minutes together; the suite runs
them through papermill at test size). Used for the new-user check of the tutorials issue::

    python tests/browser/run_tutorials.py --python /path/to/fresh/venv/bin/python \\
        --tutorials /path/to/fresh/clone/tutorials --out test-artifacts/tutorials
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.test_browser import (  # noqa: E402
    CHROMIUM,
    ERROR_TEXTS,
    KERNEL_READY_JS,
    _run_all,
    _wait,
    running_lab,
    show_whole_notebook,
)

#: Output statistics of the open notebook: error outputs, figures (``<img>``), widget views.
CENSUS_JS = """() => {
    const outputs = [...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output')];
    const errors = outputs.filter(o => /Traceback|\\b\\w+Error: /.test(o.innerText)
        && (o.dataset.mimeType || '').includes('stderr')).map(o => o.innerText.slice(-600));
    const imgs = outputs.flatMap(o => [...o.querySelectorAll('img')]).filter(i => i.naturalWidth > 0);
    return {errors,
            figures: imgs.length,
            widgets: outputs.filter(o => o.querySelector(':scope > .jupyter-widgets')).length,
            text: document.querySelector('.jp-NotebookPanel .jp-Notebook').innerText};
}"""


def _shut_down_kernels(url: str, token: str) -> None:
    """Delete every session (and so its kernel): one tutorial's memory does not reach the next."""
    headers = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{url}/api/sessions", headers=headers)) as r:
        sessions = json.load(r)
    for session in sessions:
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/sessions/{session['id']}",
                                                      method="DELETE", headers=headers))


def run_tutorial(browser: Any, lab: Any, name: str, out: Path, timeout: float) -> dict[str, Any]:
    """Open ``name`` in a fresh workspace, run all cells, take the census and a screenshot."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    blocked: list[str] = []

    def offline(route: Any) -> None:
        if route.request.url.startswith(lab.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    console: list[str] = []
    page.on("console", lambda m: m.type == "error" and console.append(m.text))
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    workspace = re.sub(r"\W", "", Path(name).stem)
    start = time.monotonic()
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{name}?token={lab.token}")
    _wait(page, KERNEL_READY_JS, 120, f"{name}: JupyterLab opened the notebook and its kernel is idle")
    error = ""
    try:
        _run_all(page, timeout=timeout)
    except AssertionError as exc:
        error = str(exc)
    seconds = time.monotonic() - start
    page.wait_for_timeout(3000)  # Bokeh lays out asynchronously
    census = page.evaluate(CENSUS_JS)
    # Bokeh draws inside shadow roots, which querySelectorAll does not enter; Playwright's locators do
    census["bokeh_canvases"] = page.locator(".jp-NotebookPanel .bk-Canvas").count()
    show_whole_notebook(page, settle_ms=1500)
    shot = out / f"{Path(name).stem}.png"
    page.screenshot(path=shot, full_page=True)
    cells = out / Path(name).stem  # and each cell that shows a figure or a widget, at full size
    cells.mkdir(exist_ok=True)
    for old in cells.glob("*.png"):
        old.unlink()
    code_cells = page.locator(".jp-Notebook .jp-CodeCell")
    for i in range(code_cells.count()):
        cell = code_cells.nth(i)
        if cell.locator(".jp-OutputArea-output img, .jp-OutputArea-output .jupyter-widgets").count():
            cell.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)  # Bokeh repaints canvases that scrolled into view
            cell.screenshot(path=cells / f"cell{i:02d}.png")
    page.close()
    _shut_down_kernels(lab.url, lab.token)
    text = census.pop("text")
    errors = census.pop("errors") + [e for e in ERROR_TEXTS[:3] if e in text]
    if error:
        errors.append(error)
    return {"tutorial": name, "seconds": round(seconds, 1), **census, "errors": errors,
            "offline_requests_blocked": len(blocked), "console_errors": console, "screenshot": str(shot)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="python of the environment to test")
    parser.add_argument("--tutorials", type=Path, default=REPO / "tutorials", help="folder served")
    parser.add_argument("--out", type=Path, default=REPO / "test-artifacts" / "tutorials")
    parser.add_argument("--only", nargs="*", default=None, help="tutorial prefixes, e.g. 03 05")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per tutorial")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in args.tutorials.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        names = [n for n in names if n.startswith(tuple(args.only))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, running_lab(args.tutorials.resolve(), Path(tmp),
                                                           python=args.python) as lab:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=["--no-sandbox", "--disable-dev-shm-usage"])
            for name in names:
                row = run_tutorial(browser, lab, name, args.out, args.timeout)
                rows.append(row)
                status = "ok" if not row["errors"] and row["figures"] else "FAILED"
                print(f"{name:40s} {row['seconds']:6.0f} s  figures {row['figures']:3d}  "
                      f"widgets {row['widgets']:2d}  bokeh {row['bokeh_canvases']:3d}  {status}", flush=True)
                for e in row["errors"]:
                    print("   ", e.replace("\n", "\n    ")[-600:], flush=True)
            browser.close()
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1))
    total = sum(r["seconds"] for r in rows)
    print(f"{len(rows)} tutorials in {total / 60:.1f} min; screenshots in {args.out}")
    return 1 if any(r["errors"] or not r["figures"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
