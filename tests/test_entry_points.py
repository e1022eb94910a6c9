"""The process pool works from every way a user runs Python, with the results of one process.

A new user's first script has no ``if __name__ == "__main__":`` guard; ``spawn``/``forkserver``
pools re-run such a script in every worker and crash (``BrokenProcessPool``). Each entry point
below runs ``simulate_survey(1000)`` (rendered on 2 processes) and ``morphology`` (statmorph on 2
processes) in a fresh interpreter and prints a digest of the results; all digests must agree with
the one-process run inside a dask worker (a daemonic process, where the pool falls back to this
process with a warning).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

import galwidgets as gw

pytestmark = pytest.mark.slow

N_GALAXIES = 1000
N_MORPHOLOGY = 24

USER_CODE = f"""
import galwidgets as gw
s = gw.data.simulate_survey({N_GALAXIES}, seed=11, n_jobs=2, progress=False)
m = gw.metrics.morphology(s[:{N_MORPHOLOGY}], n_jobs=2, progress=False)
import hashlib, json
print("DIGEST", json.dumps({{"images": hashlib.sha256(s.images.tobytes()).hexdigest(),
                            "gini": [round(float(v), 10) for v in m["gini"]]}}))
"""


def _digest(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("DIGEST ")]
    assert lines, f"no digest in the output:\n{stdout[-2000:]}"
    return json.loads(lines[-1].removeprefix("DIGEST "))


def _run(args: list[str], tmp_path: Path, stdin: str | None = None) -> dict:
    done = subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "BrokenProcessPool" not in done.stderr
    return _digest(done.stdout)


def _one_process_reference() -> dict:
    """The same work in one process: inside a dask worker, which may not start children."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        survey = client.submit(gw.data.simulate_survey, N_GALAXIES, seed=11, n_jobs=2,
                               progress=False).result()
        table = client.submit(gw.metrics.morphology, survey[:N_MORPHOLOGY], n_jobs=2, progress=False).result()
    return {"images": hashlib.sha256(survey.images.tobytes()).hexdigest(),
            "gini": [round(float(v), 10) for v in table["gini"]]}


@pytest.fixture(scope="module")
def reference() -> dict:
    return _one_process_reference()


def test_guardless_script_file(tmp_path, reference):
    script = tmp_path / "first.py"
    script.write_text(USER_CODE)
    assert _run([str(script)], tmp_path) == reference


def test_code_on_standard_input(tmp_path, reference):
    assert _run(["-"], tmp_path, stdin=USER_CODE) == reference


def test_python_dash_c(tmp_path, reference):
    assert _run(["-c", USER_CODE], tmp_path) == reference


def test_notebook_kernel(tmp_path, reference):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(USER_CODE))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    stdout = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("name") == "stdout")
    assert _digest(stdout) == reference


def test_dask_worker_falls_back_to_one_process_with_a_warning():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:

        def render_in_worker() -> list[str]:
            import warnings

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gw.data.simulate_survey(600, size=32, pixel_scale=0.262, seed=3, n_jobs=2, progress=False)
            return [str(w.message) for w in caught]

        messages = client.submit(render_in_worker).result()
    assert any("daemonic process" in m and "scheduler=" in m for m in messages), messages


def test_pool_results_equal_one_process_in_this_interpreter():
    images = np.random.default_rng(0).normal(0, 0.01, (40, 1, 32, 32)).astype(np.float32)
    images[:, 0, 12:20, 12:20] += 1.0
    pooled = gw.metrics.isophotal_shapes(images, n_jobs=2, progress=False)
    single = gw.metrics.isophotal_shapes(images, n_jobs=1, progress=False)
    assert pooled.equals(single)
