"""Batches of notebook runs: grids, isolated runs with thread limits, failures, resume, dask, CLI.

The mechanics run a tiny notebook written here (a run costs a process and a kernel start, 2-4 s);
the evaluate notebook runs for real on a dask LocalCluster (worker processes) and through the
README's example.
"""

import json
import math
import re
import shlex
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

import galwidgets as gw
from galwidgets.cli import main
from galwidgets.notebooks import RUN_FILE, NotebookResult, expand_grid

README = Path(__file__).resolve().parents[1] / "README.md"

TINY_PARAMETERS = """\
output_dir = "out"  # str: folder for metrics.json
x = 1  # int: a number to double
needs = ""  # str: a file that must exist (empty: none)
use_torch = False  # bool: report torch's thread count
"""
TINY_BODY = """\
import json, os
from pathlib import Path

if needs and not Path(needs).exists():
    raise FileNotFoundError(f"needs {needs}")
metrics = {"x2": 2 * x, "pid": os.getpid(), "omp": os.environ.get("OMP_NUM_THREADS"), "nested": {"x": x}}
if use_torch:
    import torch

    metrics["torch_threads"] = torch.get_num_threads()
Path(output_dir, "metrics.json").write_text(json.dumps(metrics))
"""


def write_notebook(path: Path, parameters: str, body: str) -> Path:
    """A two-cell notebook: ``parameters`` (tagged for papermill), then ``body``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata.tags = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A parameterised notebook that doubles ``x`` and reports its process and threads."""
    return write_notebook(tmp_path_factory.mktemp("nb") / "tiny.ipynb", TINY_PARAMETERS, TINY_BODY)


@pytest.fixture(scope="module")
def survey_files(tmp_path_factory, survey):
    root = tmp_path_factory.mktemp("surveys")
    return str(survey[:12].save(root / "a.fits")), str(survey[12:].save(root / "b.fits"))


def test_grid_forms_expand_to_the_same_runs(tmp_path):
    runs = [{"steps": s, "seed": z, "checkpoint": "desi-tiny"} for s in (25, 50) for z in (0, 1)]
    grid = {"steps": [25, 50], "seed": [0, 1], "checkpoint": "desi-tiny"}
    assert expand_grid(grid) == runs  # Cartesian product, first key slowest, scalars shared
    assert expand_grid(runs) == runs and expand_grid(pd.DataFrame(runs)) == runs
    (tmp_path / "g.yaml").write_text("steps: [25, 50]\nseed: [0, 1]\ncheckpoint: desi-tiny\n")
    (tmp_path / "g.json").write_text(json.dumps(runs))
    assert expand_grid(tmp_path / "g.yaml") == runs and expand_grid(str(tmp_path / "g.json")) == runs
    assert expand_grid({"bands": [["g", "r"]], "seed": 3}) == [{"bands": ["g", "r"], "seed": 3}]
    assert expand_grid({"r": np.linspace(2, 3, 3), "seed": range(2)})[-2:] == [{"r": 3.0, "seed": 0},
                                                                               {"r": 3.0, "seed": 1}]

    (tmp_path / "g.txt").write_text("{}")
    for bad, error, match in [
        (42, TypeError, "grid: expected a dict of lists"),
        ([{"a": 1}, 2], TypeError, "grid: expected"),
        ({"seed": []}, ValueError, "grid: parameter 'seed' has an empty list"),
        ([], ValueError, "grid: expected at least one run"),
        ([{"seed": 1}, {"seed": 2}, {"seed": 1}], ValueError, r"grid: run 2 repeats run 0"),
        ({1: [2]}, TypeError, "grid: parameter names must be strings"),
        (tmp_path / "missing.yaml", FileNotFoundError, "grid: no such file"),
        (tmp_path / "g.txt", ValueError, r"grid: expected a \.yaml, \.yml or \.json file"),
    ]:
        with pytest.raises(error, match=match):
            expand_grid(bad)
    (tmp_path / "bad.yaml").write_text("steps: [25, 50\n")
    with pytest.raises(ValueError, match=r"grid: .* is not valid YAML"):
        expand_grid(tmp_path / "bad.yaml")


def test_bad_inputs_name_the_argument(tmp_path, capsys):
    grid = {"steps": [2]}
    with pytest.raises(ValueError, match=r"name: unknown notebook 'evaluat'"):
        gw.run_batch("evaluat", grid, tmp_path)
    with pytest.raises(ValueError, match=r"grid: notebook 'evaluate' has no parameter\(s\) \['nope'\]"):
        gw.run_batch("evaluate", {"nope": [1, 2]}, tmp_path)
    with pytest.raises(ValueError, match="grid: output_dir is set per run"):
        gw.run_batch("evaluate", {"output_dir": ["a"]}, tmp_path)
    with pytest.raises(ValueError, match=r"scheduler: expected 'local', a dask.* got 'threads!'"):
        gw.run_batch("evaluate", grid, tmp_path, scheduler="threads!")
    with pytest.raises(TypeError, match="scheduler: expected"):
        gw.run_batch("evaluate", grid, tmp_path, scheduler=42)
    with pytest.raises(ValueError, match="max_workers: expected a positive integer"):
        gw.run_batch("evaluate", grid, tmp_path, max_workers=0)
    with pytest.raises(TypeError, match="threads: expected a positive integer"):
        gw.run_batch("evaluate", grid, tmp_path, threads="2")
    with pytest.raises(ValueError, match="timeout: expected a finite positive number"):
        gw.run_batch("evaluate", grid, tmp_path, timeout=-1)
    with pytest.raises(ValueError, match=r"grid: expected .*omit it only with only_failed"):
        gw.run_batch("evaluate", None, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"output_root: .* holds no batch"):
        gw.run_batch("evaluate", None, tmp_path, only_failed=True)
    with pytest.raises(ValueError, match=r"only_failed: .* needs resume=True"):
        gw.run_batch("evaluate", grid, tmp_path, only_failed=True, resume=False)
    with pytest.raises(TypeError, match="parameters: expected a dict"):
        gw.run_notebook("evaluate", [("steps", 2)], tmp_path)
    (tmp_path / "batch.json").write_text(json.dumps({"notebook": "train", "runs": []}))
    with pytest.raises(ValueError, match=r"output_root: .* batch of notebook 'train', not 'evaluate'"):
        gw.run_batch("evaluate", grid, tmp_path)
    assert not list(tmp_path.glob("*/"))  # nothing ran

    assert main(["batch", "evaluate", "-o", str(tmp_path / "x")]) == 2
    assert "--grid: expected a YAML or JSON grid file" in capsys.readouterr().err
    (tmp_path / "g.yaml").write_text("steps: [2]\n")
    assert main(["batch", "evaluate", "--grid", str(tmp_path / "g.yaml"), "--scheduler", "nowhere"]) == 2
    assert "scheduler: expected 'local'" in capsys.readouterr().err


def test_run_is_its_own_process_with_the_threads_asked_for(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the run's own setting must win over ours
    assert main(["run", str(tiny), "-p", "x", "4", "-p", "use_torch", "true", "--threads", "1",
                 "-o", str(tmp_path), "-q"]) == 0
    assert '"x2": 8' in capsys.readouterr().out
    result = NotebookResult.load(tmp_path)
    assert result.status == "ok" and result.ok and result.parameters == {"x": 4, "use_torch": True}
    assert result.metrics["omp"] == "1" and result.metrics["torch_threads"] == 1
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert record["threads"] == 1 and record["seconds"] > 0 and record["finished"] >= record["started"]
    assert (tmp_path / "tiny.ipynb").is_file() and (tmp_path / "run.log").is_file()


@pytest.mark.slow
def test_batch_survives_failures_resumes_and_reruns_only_failed(tiny, tmp_path):
    fixed = tmp_path / "fixed.txt"  # run 1 fails until this file exists
    grid = [{"x": 1}, {"x": 2, "needs": str(fixed)}, {"x": 3}]
    root = tmp_path / "batch"

    table = gw.run_batch(tiny, grid, root, max_workers=2, progress=False)
    assert table.run.tolist() == [0, 1, 2] and table.status.tolist() == ["ok", "failed", "ok"]
    assert "FileNotFoundError: needs" in table.error[1] and table.x2.tolist()[::2] == [2, 6]
    assert table["nested.x"].tolist()[::2] == [1, 3] and not table.reused.any()
    assert (table.omp.dropna() == "1").all()  # one thread per run by default
    failed_dir = Path(table.output_dir[1])
    partial = nbformat.read(failed_dir / "tiny.ipynb", as_version=4)  # the partial notebook is kept
    assert any(o.get("ename") == "FileNotFoundError" for c in partial.cells for o in c.get("outputs", []))
    for saved in (pd.read_parquet(root / "results.parquet"), pd.read_csv(root / "results.csv")):
        assert saved.status.tolist() == ["ok", "failed", "ok"] and saved["x2"].notna().sum() == 2
    pids = table.pid.tolist()

    # an interrupted run leaves run.json saying "running": the rerun does it and the failed run
    # again, and reuses the finished run 2
    run0 = Path(table.output_dir[0]) / RUN_FILE
    run0.write_text(run0.read_text().replace('"status": "ok"', '"status": "running"'))
    again = gw.run_batch(tiny, grid, root, progress=False)
    assert again.reused.tolist() == [False, False, True] and again.pid[2] == pids[2]
    assert again.pid[0] != pids[0] and again.status.tolist() == ["ok", "failed", "ok"]

    # fix the cause, lose run 0's record, rerun only the failed one (the grid comes from the folder)
    fixed.write_text("ok")
    run0.unlink()
    retry = gw.run_batch(tiny, None, root, only_failed=True, progress=False)
    assert retry.status.tolist() == ["not run", "ok", "ok"] and retry.reused.tolist() == [False, False, True]
    assert not run0.exists() and retry.x2[1] == 4 and Path(retry.output_dir[1]) == failed_dir
    final = gw.run_batch(tiny, grid, root, progress=False)  # and the plain rerun completes the batch
    assert final.status.tolist() == ["ok"] * 3 and final.reused.tolist() == [False, True, True]
    assert pd.read_parquet(root / "results.parquet").status.tolist() == ["ok"] * 3
    plan = gw.run_batch(tiny, {"x": [3, 4]}, root, dry_run=True)
    assert plan.status.tolist() == ["ok", "pending"] and plan.reused.tolist() == [True, False]
    assert len(pd.read_csv(root / "results.csv")) == 3  # a dry run writes nothing


@pytest.mark.slow
def test_evaluate_batch_on_a_dask_cluster(survey_files, tmp_path):
    distributed = pytest.importorskip("distributed")
    generated, reference = survey_files
    tiny_eval = {"generated": generated, "reference": reference, "bootstrap": 0, "n_show": 2,
                 "n_generated": 4}
    grid = [{**tiny_eval, "aperture_radius": r} for r in (4.0, 5.0, 6.0)]
    grid.insert(2, {**tiny_eval, "generated": str(tmp_path / "missing.fits")})
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as tasks:
            table = gw.run_batch("evaluate", grid, tmp_path / "batch", scheduler=client, progress=False)
    assert len(tasks.data) == 4  # every run was a dask task
    assert len(table) == 4 and table.status.tolist() == ["ok", "ok", "failed", "ok"]
    assert "FileNotFoundError" in table.error[2] and table.aperture_radius.tolist()[:2] == [4.0, 5.0]
    ok = table[table.status == "ok"]
    assert all(math.isfinite(v) and v > 0 for v in ok["sgd.total"]) and (ok["n_generated"] == 4).all()
    assert (ok["metrics.n_generated"] == 12).all()  # the metric named like a parameter keeps both
    assert len(pd.read_parquet(tmp_path / "batch" / "results.parquet")) == 4


def _readme_batch_example() -> tuple[str, list[str]]:
    section = README.read_text().split("## Batches", 1)[1]
    yaml_text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    command = re.search(r"```bash\n(galwidgets batch .*?)\n```", section, re.S).group(1)
    return yaml_text, shlex.split(command)[1:]


@pytest.mark.slow
def test_readme_batch_example_works_as_written(survey_files, tmp_path, capsys):
    yaml_text, argv = _readme_batch_example()
    assert argv[:4] == ["batch", "evaluate", "--grid", "grid.yaml"] and "-o" in argv
    argv[3] = str(tmp_path / "grid.yaml")
    argv[argv.index("-o") + 1] = str(tmp_path / "batch-steps")
    (tmp_path / "grid.yaml").write_text(yaml_text)
    assert main([*argv, "--dry-run"]) == 0  # the example as written: names valid, 2 runs planned
    assert "2 of 2 runs would execute" in capsys.readouterr().out

    generated, reference = survey_files  # now for real, with tiny data instead of sampling
    tiny = f"generated: {generated}\nreference: {reference}\nbootstrap: 0\nn_show: 2\n"
    (tmp_path / "grid.yaml").write_text(yaml_text + tiny)
    assert main([*argv, "-q"]) == 0
    assert "2 ok of 2 runs" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "batch-steps" / "results.csv")
    assert table.steps.tolist() == [25, 50] and (table.status == "ok").all()
    assert table["sgd.total"].gt(0).all() and table.seconds.gt(0).all()
    assert all(json.loads((Path(d) / RUN_FILE).read_text())["threads"] == 1 for d in table.output_dir)
    assert main([*argv, "-q"]) == 0  # rerun: everything reused
    assert pd.read_csv(tmp_path / "batch-steps" / "results.csv").reused.all()


WARM_PARAMETERS = 'output_dir = "out"  # str: folder for metrics.json\n'
WARM_BODY = """\
import json, os, sys
from pathlib import Path

ip = get_ipython()
Path(output_dir, "metrics.json").write_text(json.dumps({
    "preloaded": "wave" in sys.modules, "leftover": sorted(k for k in ip.user_ns if k.startswith("_gw")),
    "cwd": os.getcwd(), "count": ip.execution_count, "omp": os.environ.get("OMP_NUM_THREADS")}))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    """A notebook that reports what its kernel had imported, its namespace and working directory."""
    return write_notebook(tmp_path_factory.mktemp("nb") / "probe.ipynb", WARM_PARAMETERS, WARM_BODY)


def test_warm_kernel_runs_the_notebook_as_a_fresh_kernel_would(probe, tmp_path):
    cold = gw.run_notebook(probe, output_dir=tmp_path / "cold", threads=1, progress=False)
    kernel = gw.notebooks.warm_kernel(tmp_path / "warm", threads=1, imports=["wave", "no_such_module_x"])
    assert "ready" in repr(kernel)
    warm = gw.run_notebook(probe, kernel=kernel, progress=False)
    assert kernel.used and "used" in repr(kernel)
    assert not cold.metrics["preloaded"] and warm.metrics["preloaded"]  # the run used the warm kernel
    assert warm.output_dir == (tmp_path / "warm").resolve() and warm.ok
    for result in (cold, warm):  # same namespace, history, working directory and threads
        assert result.metrics["leftover"] == [] and result.metrics["omp"] == "1"
        assert result.metrics["cwd"] == str(result.output_dir)
    assert warm.metrics["count"] == cold.metrics["count"]
    assert json.loads((tmp_path / "warm" / RUN_FILE).read_text())["status"] == "ok"
    with pytest.raises(ValueError, match="kernel: this WarmKernel was already used"):
        gw.run_notebook(probe, kernel=kernel)


def test_warm_kernel_misuse_and_close_leave_no_process(probe, tmp_path):
    import psutil

    with pytest.raises(TypeError, match="imports: expected a list of module names"):
        gw.notebooks.warm_kernel(tmp_path, imports="numpy")
    with pytest.raises(TypeError, match="kernel: expected a WarmKernel"):
        gw.run_notebook(probe, kernel="python3")
    with gw.notebooks.warm_kernel(tmp_path / "a", threads=1) as kernel:
        process = psutil.Process(kernel.pid)
        with pytest.raises(ValueError, match=r"kernel: started in .*, not in output_dir"):
            gw.run_notebook(probe, output_dir=tmp_path / "b", kernel=kernel)
        with pytest.raises(ValueError, match="kernel: started with threads=1, not threads=2"):
            gw.run_notebook(probe, threads=2, kernel=kernel)
        assert not kernel.used  # a refused run leaves the kernel for a good one
        deadline = time.time() + 60
        while not process.children() and time.time() < deadline:  # the kernel is starting
            time.sleep(0.1)
        family = [process, *process.children(recursive=True)]
        assert len(family) >= 2
    assert kernel.used
    kernel.close()  # twice is fine

    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    # gone when close() returns, not some time later
    assert not [p for p in family if running(p)]
