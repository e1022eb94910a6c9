"""The on-disk survey store: lazy reads, appends, interrupted and failing writes, writers that resume."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import galwidgets as gw
from galwidgets.data import load_fits_cutouts, open_store, render_to_store


@pytest.fixture(scope="module")
def mock() -> gw.data.Survey:
    """60 mock galaxies, 32x32, g r z, with a string column holding a missing value."""
    survey = gw.data.simulate_survey(60, size=32, seed=21, progress=False)
    survey.catalog["name"] = pd.Series([None if i == 5 else f"gal-{i}" for i in range(60)], dtype="string")
    return survey


def _render_settings(survey: gw.data.Survey) -> dict:
    return {"bands": survey.bands, "size": survey.size, "pixel_scale": survey.pixel_scale,
            "zeropoint": survey.zeropoint, "psf_profile": survey.meta["psf_profile"],
            "sky_sigma": [survey.meta["sky_sigma"][b] for b in survey.bands]}


# -- reading -----------------------------------------------------------------------------------------
def test_saved_survey_opens_as_a_lazy_store(mock, tmp_path):
    path = mock.save(tmp_path / "mock.h5")
    store = open_store(path)
    assert len(store) == 60 and store.bands == mock.bands and store.size == 32
    assert store.shape == (60, 3, 32, 32)
    assert store.pixel_scale == mock.pixel_scale and store.zeropoint == mock.zeropoint
    assert store.psf_fwhm == mock.psf_fwhm and store.meta["seed"] == mock.meta["seed"]
    pd.testing.assert_frame_equal(store.catalog, mock.catalog)
    part = store[10:20]
    assert isinstance(part, gw.data.Survey) and np.array_equal(part.images, mock.images[10:20])
    pd.testing.assert_frame_equal(part.catalog, mock.catalog.iloc[10:20].reset_index(drop=True))
    rows = [41, 3, 3, 59, 4, 5]  # any order, repeats, a run of consecutive rows
    picked = store[rows]
    assert np.array_equal(picked.images, mock.images[rows])
    assert picked.catalog["name"].tolist()[-1] is pd.NA
    assert picked.catalog["id"].tolist() == mock.catalog["id"][rows].tolist()
    assert np.array_equal(store[-1].images, mock.images[-1:])
    assert np.array_equal(store[::7].images, mock.images[::7])
    mask = np.zeros(60, bool)
    mask[[2, 30]] = True
    assert np.array_equal(store[mask].images, mock.images[mask])
    chunks = list(store.chunks(25))
    assert [len(c) for c in chunks] == [25, 25, 10]
    assert np.array_equal(np.concatenate([c.images for c in chunks]), mock.images)
    # the same file is still a plain HDF5 Survey file
    assert np.array_equal(gw.data.load_hdf5(path).images, mock.images)
    assert np.array_equal(gw.data.Survey.load(path).images, mock.images)
    again = pickle.loads(pickle.dumps(store))  # sent to workers by path
    assert len(again) == 60 and np.array_equal(again[7].images, mock.images[7:8])
    with pytest.raises(IndexError, match="index: 60 is out of range"):
        store[60]


def test_store_reopens_in_a_forked_child(mock, tmp_path):
    store = open_store(mock.save(tmp_path / "mock.h5"))
    store[0]  # opened in the parent before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            ok = np.array_equal(store.read_images([9, 1]), mock.images[[9, 1]])
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"


# -- appending ---------------------------------------------------------------------------------------
def test_append_grows_the_store_and_checks_what_it_appends(mock, tmp_path):
    path = tmp_path / "grow.h5"
    store = gw.data.SurveyStore.create(path, mock[:1])
    assert len(store) == 0
    for lo in range(0, 60, 16):
        store.append(mock[lo:lo + 16])
    assert len(store) == 60 and np.array_equal(store.read_images(slice(None)), mock.images)
    pd.testing.assert_frame_equal(store.catalog, mock.catalog)
    other = gw.data.Survey(mock.images[:2, :2], mock.catalog[:2], ("g", "r"), mock.pixel_scale)
    with pytest.raises(ValueError, match=r"survey: has bands \('g', 'r'\), the store grow.h5 \('g', 'r', 'z"):
        store.append(other)
    with pytest.raises(ValueError, match=r"survey.catalog: expected the store's catalog columns .*'name'"):
        store.append(mock[:2].with_images(mock.images[:2], mock.catalog[:2].drop(columns="name")))
    wrong_type = mock.catalog[:2].assign(name=[1.0, 2.0])
    with pytest.raises(ValueError, match="column 'name' holds strings in the store"):
        store.append(mock[:2].with_images(mock.images[:2], wrong_type))
    store.close()
    assert len(open_store(path)) == 60  # failed appends left nothing behind
    with pytest.raises(ValueError, match="open read-only"):
        open_store(path).append(mock[:1])
    with pytest.raises(FileExistsError, match=r"path: .* exists"):
        gw.data.SurveyStore.create(path, mock[:1])


def test_missing_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: no survey store at"):
        open_store(tmp_path / "absent.h5")
    (tmp_path / "junk.h5").write_bytes(b"not an HDF5 file at all" * 100)
    with pytest.raises(ValueError, match=r"path: .*junk.h5 is not a readable HDF5 survey store"):
        open_store(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("spectra", data=np.zeros((4, 10)))
    with pytest.raises(ValueError, match="is not a galwidgets survey store"):
        open_store(tmp_path / "other.h5")


def test_truncated_store_is_refused(mock, tmp_path):
    path = mock.save(tmp_path / "cut.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"not a readable HDF5 survey store .*truncated"):
        len(open_store(path)[0])


# -- interrupted writes ------------------------------------------------------------------------------
WRITER = textwrap.dedent('''
    import sys
    import numpy as np
    import galwidgets as gw

    path = sys.argv[1]
    images = np.random.default_rng(0).normal(size=(16, 3, 32, 32)).astype(np.float32)
    chunk = gw.data.Survey(images.copy(), None, ("g", "r", "z"), 0.262)
    store = gw.data.open_store(path, mode="a")
    k = len(store) // 16
    while True:  # every chunk k holds images + k, so a reader can check each galaxy
        chunk.images[:] = images + k
        chunk.catalog["k"] = np.full(16, k)
        store.append(chunk)
        k += 1
        print(k, flush=True)
''')


def test_store_killed_mid_write_keeps_complete_chunks_and_resumes(tmp_path):
    path = tmp_path / "killed.h5"
    images = np.random.default_rng(0).normal(size=(16, 3, 32, 32)).astype(np.float32)
    template = gw.data.Survey(images, pd.DataFrame({"k": np.zeros(16, np.int64)}), ("g", "r", "z"), 0.262)
    gw.data.SurveyStore.create(path, template).close()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for _ in range(3):  # kill -9 three times while chunks are being written, resuming in between
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True,
                                env=env)
        for _ in range(4):
            proc.stdout.readline()
        time.sleep(np.random.default_rng().uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = open_store(path)
        n = len(store)
        assert n % 16 == 0 and n >= 64
        catalog = store.catalog
        assert catalog["k"].tolist() == np.repeat(np.arange(n // 16), 16).tolist()
        data = store.read_images(slice(None))
        np.testing.assert_array_equal(data, np.concatenate([images + k for k in range(n // 16)]))
        store.close()
    with h5py.File(path, "r") as f:  # what the killed writer left uncommitted is never counted
        assert f.attrs["n_rows"] == n and f["images"].shape[0] >= n


def _committed(path: Path) -> int:
    """Galaxies committed to a store another process is writing (read without the HDF5 file lock)."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f.attrs.get("n_rows", 0))
    except (OSError, KeyError):
        return 0


def _kill_after(proc: subprocess.Popen, path: Path, n: int, timeout: float = 120) -> None:
    """``kill -9`` the writer ``proc`` once ``path`` has at least ``n`` committed galaxies."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and (not path.exists() or _committed(path) < n):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


RENDERER = textwrap.dedent('''
    import sys
    import pandas as pd
    import galwidgets as gw

    settings = eval(sys.argv[3])
    gw.data.render_to_store(pd.read_parquet(sys.argv[1]), sys.argv[2], chunk_size=4, commit_size=4,
                            n_jobs=1, progress=False, **settings)
''')


def test_render_to_store_survives_kill_and_equals_the_in_memory_survey(mock, tmp_path):
    catalog_file = tmp_path / "catalog.parquet"
    catalog = mock.catalog.drop(columns="name")
    catalog.to_parquet(catalog_file)
    settings = _render_settings(mock)
    out = tmp_path / "rendered.h5"
    script = tmp_path / "render.py"
    script.write_text(RENDERER)
    proc = subprocess.Popen([sys.executable, str(script), str(catalog_file), str(out), repr(settings)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    _kill_after(proc, out, 8)
    partial = len(open_store(out))
    assert 8 <= partial < 60 and partial % 4 == 0
    store = render_to_store(catalog, out, chunk_size=4, commit_size=8, n_jobs=1, progress=False, **settings)
    assert len(store) == 60
    np.testing.assert_array_equal(store.read_images(slice(None)), mock.images)
    pd.testing.assert_frame_equal(store.catalog, catalog)
    again = render_to_store(catalog, out, chunk_size=4, progress=False, **settings)  # complete: no work
    assert len(again) == 60
    with pytest.raises(ValueError, match=r"out: .* holds another survey"):
        render_to_store(catalog.iloc[:10], out, progress=False, **settings)


SIMULATOR = textwrap.dedent('''
    import sys
    from functools import partial
    import galwidgets as gw
    import galwidgets.data.store as store_module

    # small commits, so that the writer is killed between (and during) several of them
    store_module.render_to_store = partial(store_module.render_to_store, chunk_size=4, commit_size=4)
    gw.data.simulate_survey(60, size=32, seed=21, n_jobs=1, progress=False, out=sys.argv[1])
''')


def _small_commits(monkeypatch) -> None:
    """``simulate_survey(out=)`` commits every 4 galaxies (it takes render_to_store's defaults)."""
    import galwidgets.data.store as store_module

    real = store_module.render_to_store
    monkeypatch.setattr(store_module, "render_to_store",
                        lambda *a, **k: real(*a, **{**k, "chunk_size": 4, "commit_size": 4}))


def test_simulate_survey_into_a_store_survives_kill_and_equals_the_in_memory_survey(mock, tmp_path,
                                                                                  monkeypatch):
    out = tmp_path / "mock.h5"
    script = tmp_path / "simulate.py"
    script.write_text(SIMULATOR)
    proc = subprocess.Popen([sys.executable, str(script), str(out)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    _kill_after(proc, out, 8)  # kill -9 once 8 galaxies are committed
    killed = open_store(out)
    partial = len(killed)
    assert 8 <= partial < 60 and partial % 4 == 0  # whole commits only
    np.testing.assert_array_equal(killed.read_images(slice(None)), mock.images[:partial])
    assert len(killed.catalog) == partial
    killed.close()
    _small_commits(monkeypatch)
    store = gw.data.simulate_survey(60, size=32, seed=21, progress=False, out=out)  # resumes
    assert isinstance(store, gw.data.SurveyStore) and len(store) == 60
    np.testing.assert_array_equal(store.read_images(slice(None)), mock.images)
    pd.testing.assert_frame_equal(store.catalog, mock.catalog.drop(columns="name"))
    assert store.psf_fwhm == mock.psf_fwhm and store.meta["seed"] == 21
    assert store.meta["n_planned"] == 60 and store.meta["instrument"] == mock.meta["instrument"]
    store.close()
    with pytest.raises(ValueError, match=r"out: .*mock.h5 exists and holds another survey .*overwrite=True"):
        gw.data.simulate_survey(60, size=32, seed=22, progress=False, out=out)
    assert len(open_store(out)) == 60  # untouched
    with pytest.raises(TypeError, match="out: expected a path"):
        gw.data.simulate_survey(10, size=32, progress=False, out=42)
    other = gw.data.simulate_survey(12, size=32, seed=22, progress=False, out=out, overwrite=True)
    assert len(other) == 12


def test_a_full_disk_while_simulating_into_a_store_keeps_the_complete_chunks(mock, tmp_path, monkeypatch):
    """The disk fills up during the third commit (the write raises ENOSPC after HDF5 has grown the
    datasets): a clear OSError, the first two commits intact, and the same call resumes."""
    import errno

    import galwidgets.data.store as store_module

    real_append = store_module.append_hdf5_rows
    calls = []

    def filling_up(f, images, catalog, argument="catalog"):
        calls.append(len(images))
        if len(calls) == 3:
            n = int(f.attrs["n_rows"])
            f["images"].resize(n + len(images), axis=0)  # half-written: grown, never committed
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(f, images, catalog, argument)

    _small_commits(monkeypatch)
    monkeypatch.setattr(store_module, "append_hdf5_rows", filling_up)
    out = tmp_path / "full.h5"
    with pytest.raises(OSError, match=r"out: the disk is full .* keeps its first 8 complete galaxies"):
        gw.data.simulate_survey(60, size=32, seed=21, n_jobs=1, progress=False, out=out)
    kept = open_store(out)
    assert len(kept) == 8 and len(kept.catalog) == 8
    np.testing.assert_array_equal(kept.read_images(slice(None)), mock.images[:8])
    kept.close()
    monkeypatch.setattr(store_module, "append_hdf5_rows", real_append)  # room again
    store = gw.data.simulate_survey(60, size=32, seed=21, n_jobs=1, progress=False, out=out)
    np.testing.assert_array_equal(store.read_images(slice(None)), mock.images)


# -- full disks --------------------------------------------------------------------------------------
FILLER = textwrap.dedent('''
    import resource, signal, sys
    import numpy as np
    import galwidgets as gw

    path, limit = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    rng = np.random.default_rng(1)
    store = gw.data.open_store(path, mode="a")
    try:
        for k in range(1000):
            images = rng.normal(size=(16, 3, 32, 32)).astype(np.float32)
            store.append(gw.data.Survey(images, None, ("g", "r", "z"), 0.262))
    except OSError as exc:
        print("ERROR", exc)
        print("KEPT", len(store))
''')


def test_a_full_disk_raises_and_keeps_the_complete_chunks(tmp_path):
    path = tmp_path / "full.h5"
    template = gw.data.Survey(np.zeros((1, 3, 32, 32), np.float32), None, ("g", "r", "z"), 0.262)
    gw.data.SurveyStore.create(path, template).close()
    script = tmp_path / "fill.py"
    script.write_text(FILLER)
    run = subprocess.run([sys.executable, str(script), str(path), str(4_000_000)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert "ERROR out: the disk is full" in run.stdout, run.stdout + run.stderr
    assert "the store keeps its first" in run.stdout and "run the same command again to resume" in run.stdout
    kept = int(run.stdout.split("KEPT")[1])
    store = open_store(path)
    assert len(store) == kept and kept > 0 and kept % 16 == 0
    expected = np.random.default_rng(1).normal(size=(kept // 16, 16, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(store.read_images(slice(None)), expected.reshape(kept, 3, 32, 32))
    store.close()
    more = open_store(path, mode="a")  # with room again, appending goes on
    more.append(gw.data.Survey(np.ones((2, 3, 32, 32), np.float32), None, ("g", "r", "z"), 0.262))
    assert len(more) == kept + 2


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    path = tmp_path / "small.h5"
    template = gw.data.Survey(np.zeros((1, 3, 32, 32), np.float32), None, ("g", "r", "z"), 0.262)
    store = gw.data.SurveyStore.create(path, template)
    store.append(template)
    real = os.statvfs(tmp_path)
    monkeypatch.setattr(os, "statvfs", lambda _: SimpleNamespace(f_bavail=100, f_frsize=real.f_frsize))
    with pytest.raises(OSError, match=r"out: the disk is full: .* MB free.* keeps its first 1 complete"):
        store.append(template)
    monkeypatch.undo()
    assert len(store) == 1
    store.append(template)
    assert len(store) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                    reason="needs root to mount a tmpfs")
def test_a_tiny_tmpfs_fills_up_cleanly(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        template = gw.data.Survey(np.zeros((1, 3, 32, 32), np.float32), None, ("g", "r", "z"), 0.262)
        store = gw.data.SurveyStore.create(mount / "s.h5", template)
        rng = np.random.default_rng(2)
        with pytest.raises(OSError, match=r"out: the disk .* keeps its first"):
            for _ in range(100):
                store.append(gw.data.Survey(rng.normal(size=(16, 3, 32, 32)).astype(np.float32), None,
                                            ("g", "r", "z"), 0.262))
        kept = len(store)
        store.close()
        assert kept > 0 and len(open_store(mount / "s.h5")) == kept
    finally:
        subprocess.run(["umount", str(mount)])


# -- FITS cutouts into a store -----------------------------------------------------------------------
def _header(scale_arcsec: float = 0.2) -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [8.0, 8.0]
    return wcs.to_header()


def _cutouts(folder: Path, n: int, bad: tuple[int, ...] = ()) -> list[dict]:
    """``n`` galaxies of one file per band (HSC layout); galaxy ``i`` has pixels ``i + band index``."""
    folder.mkdir(exist_ok=True)
    galaxies = []
    for i in range(n):
        files = {}
        for k, band in enumerate("gri"):
            path = folder / f"{i:04d}-{band}.fits"
            if i not in bad:
                data = np.full((16, 16), i + k, np.float32)
                data[0, 0] = np.nan if i % 7 == 0 else data[0, 0]
                primary = fits.PrimaryHDU(header=fits.Header({"FLUXMAG0": 10 ** (27 / 2.5)}))
                fits.HDUList([primary, fits.ImageHDU(data, header=_header())]).writeto(path)
            files[band] = path
        galaxies.append(files)
    return galaxies


def test_fits_cutouts_into_a_store_equal_the_in_memory_survey(tmp_path):
    galaxies = _cutouts(tmp_path / "cutouts", 30, bad=(4, 17))
    catalog = pd.DataFrame({"name": [f"g{i}" for i in range(30)], "z": np.linspace(0, 1, 30)})
    with pytest.warns(UserWarning, match="skipped 2 of 30"):
        memory = load_fits_cutouts(galaxies, catalog=catalog, on_error="skip", progress=False)
    with pytest.warns(UserWarning, match="skipped 2 of 30"):
        store = load_fits_cutouts(galaxies, catalog=catalog, on_error="skip", progress=False,
                                  out=tmp_path / "real.h5", chunk_size=8)
    assert isinstance(store, gw.data.SurveyStore) and len(store) == 28
    assert store.bands == memory.bands and store.zeropoint == pytest.approx(27.0)
    assert store.pixel_scale == pytest.approx(memory.pixel_scale)
    np.testing.assert_array_equal(store.read_images(slice(None)), memory.images)
    assert store.catalog["name"].tolist() == memory.catalog["name"].tolist()
    assert store.catalog["n_masked_pixels"].tolist() == memory.catalog["n_masked_pixels"].tolist()
    assert store.catalog["source_index"].tolist() == [i for i in range(30) if i not in (4, 17)]
    assert store.catalog["source_files"][0].count("0000-g.fits")
    dropped = store.dropped
    assert dropped["index"].tolist() == [4, 17] and "no such FITS file" in dropped["reason"][0]
    assert len(load_fits_cutouts(galaxies, catalog=catalog, on_error="skip", progress=False,
                                 out=tmp_path / "real.h5")) == 28  # complete: reopened, nothing read
    with pytest.raises(ValueError, match=r"out: .* holds another conversion"):
        load_fits_cutouts(galaxies[:5], progress=False, out=tmp_path / "real.h5")
    with pytest.raises(ValueError, match="return_mask: not available with out="):
        load_fits_cutouts(galaxies, return_mask=True, out=tmp_path / "x.h5", progress=False)


CONVERTER = textwrap.dedent('''
    import json, sys
    from galwidgets.data import load_fits_cutouts
    galaxies = json.loads(open(sys.argv[1]).read())
    load_fits_cutouts(galaxies, out=sys.argv[2], chunk_size=5, n_jobs=1, on_error="skip", progress=False)
''')


def test_fits_conversion_resumes_after_kill(tmp_path):
    galaxies = _cutouts(tmp_path / "cutouts", 300, bad=(3, 150))
    listing = tmp_path / "galaxies.json"
    listing.write_text(json.dumps([{b: str(p) for b, p in g.items()} for g in galaxies]))
    out = tmp_path / "real.h5"
    script = tmp_path / "convert.py"
    script.write_text(CONVERTER)
    proc = subprocess.Popen([sys.executable, str(script), str(listing), str(out)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    _kill_after(proc, out, 20)
    partial = len(open_store(out))
    assert 20 <= partial < 298
    entries = json.loads(listing.read_text())
    with pytest.warns(UserWarning, match="skipped 2 of 300"):
        store = load_fits_cutouts(entries, out=out, chunk_size=5, on_error="skip", progress=False)
    assert len(store) == 298
    assert store.catalog["source_index"].tolist() == [i for i in range(300) if i not in (3, 150)]
    assert store.dropped["index"].tolist() == [3, 150]
    first = store.read_images(slice(None))[:, :, 5, 5]
    expected = np.array([[i, i + 1, i + 2] for i in range(300) if i not in (3, 150)], np.float32)
    np.testing.assert_array_equal(first, expected)



def test_a_store_being_written_by_another_process_is_refused_clearly(mock, tmp_path):
    path = mock.save(tmp_path / "busy.h5")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f'''
        import sys, time
        import galwidgets as gw
        store = gw.data.open_store({str(path)!r}, mode="a")
        print("open", flush=True)
        time.sleep(60)
    ''')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(OSError, match=r"path: .*busy.h5 is open for writing in another process"):
            open_store(path)
    finally:
        holder.kill()
        holder.wait()
    assert len(open_store(path)) == 60
