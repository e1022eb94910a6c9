"""Loaders: FITS cutouts (real HSC PDR3 data and synthetic files), HDF5 files and the XDF stamps."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from photutils.aperture import CircularAperture, aperture_photometry

import galwidgets as gw
from galwidgets.data import hubble_deep_field, load_fits_cutouts, load_hdf5, save_hdf5

HSC = Path(__file__).resolve().parents[2] / "shared" / "data" / "hsc_pdr3"
HSC_FOLDERS = ("test1", "test2", "test3")
APERTURE_ARCSEC = 3.4


# -- real HSC PDR3 cutouts -------------------------------------------------------------------------
def _hsc_galaxies() -> tuple[list[dict], pd.DataFrame]:
    """Per-band cutout files of the three HSC galaxies and their one-row CSVs as one catalog."""
    if not HSC.is_dir():
        pytest.skip(f"real HSC data not available at {HSC}")
    galaxies, rows = [], []
    for folder in HSC_FOLDERS:
        directory = HSC / folder
        galaxies.append({b.lower(): next(directory.glob(f"cutout-HSC-{b}-*.fits")) for b in "GRI"})
        with open(directory / f"{folder}.csv") as f:
            names = f.readline().lstrip("# ").strip().split(",")
        rows.append(pd.read_csv(directory / f"{folder}.csv", comment="#", names=names))
    return galaxies, pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def hsc():
    galaxies, catalog = _hsc_galaxies()
    return galaxies, catalog, load_fits_cutouts(galaxies, size=128, catalog=catalog, progress=False)


def test_hsc_cutouts_calibration_from_headers(hsc):
    galaxies, catalog, survey = hsc
    assert survey.images.shape == (3, 3, 128, 128) and survey.bands == ("g", "r", "i")
    assert survey.zeropoint == pytest.approx(27.0, abs=1e-6)  # FLUXMAG0 = 6.3096e10
    assert survey.pixel_scale == pytest.approx(0.168, abs=1e-3)  # TAN WCS, CD = 4.667e-5 deg
    assert list(survey.catalog.object_id) == list(catalog.object_id)
    assert list(survey.catalog.n_masked_pixels) == [0, 0, 0] and survey.meta["nan_pixels"] == [0, 0, 0]
    assert survey.meta["dropped"] == []
    # centre crop: pixel (H // 2, W // 2) of the 259x259 i-band file lands on (64, 64)
    original = fits.getdata(galaxies[0]["i"], 1).astype(np.float32)
    assert np.array_equal(survey.images[0, 2], original[65:193, 65:193])
    # a plain path is a one-galaxy file: image HDU 1 named by the primary header's FILTER
    single = load_fits_cutouts([galaxies[0]["i"]], progress=False)
    assert single.bands == ("i",) and np.array_equal(single.images[0, 0], original)


def _aperture_mags(survey, band: str) -> np.ndarray:
    radius = APERTURE_ARCSEC / survey.pixel_scale
    centre = ((survey.size - 1) / 2, (survey.size - 1) / 2)
    images = survey.images[:, survey.band_index(band)]
    fluxes = [aperture_photometry(im, CircularAperture(centre, r=radius))["aperture_sum"][0] for im in images]
    return survey.zeropoint - 2.5 * np.log10(np.array(fluxes, dtype=float))


def test_hsc_aperture_magnitudes_match_kron_magnitudes(hsc):
    _, catalog, survey = hsc
    mags = _aperture_mags(survey, "i")  # measured: 18.80, 18.84, 19.18 (Kron: 19.00, 18.74, 20.05)
    kron = catalog.i_kronflux_mag.to_numpy()
    assert np.abs(mags[:2] - kron[:2]).max() < 0.3  # test1, test2
    assert np.isfinite(mags[2]) and mags[2] < kron[2]  # test3: the bright neighbour adds flux


def test_hsc_zeropoint_conversion(hsc):
    galaxies, _, native = hsc
    converted = load_fits_cutouts(galaxies, size=128, zeropoint=22.5, progress=False)
    assert converted.zeropoint == 22.5 and converted.meta["native_zeropoint"] == pytest.approx(27.0)
    np.testing.assert_allclose(converted.images, native.images * 10 ** (0.4 * (22.5 - 27.0)),
                               rtol=1e-6, atol=1e-12)


def test_hsc_shapes_differ_without_size():
    galaxies, _ = _hsc_galaxies()
    with pytest.raises(ValueError, match=r"size: the cutouts differ in shape \[\(228, 239\), \(259, 259\)"):
        load_fits_cutouts(galaxies, progress=False)


# -- synthetic FITS files --------------------------------------------------------------------------
def _header(scale_arcsec: float = 0.2, **keywords) -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [8.0, 8.0]
    header = wcs.to_header()
    header.update(keywords)
    return header


def _write_band(path, data, header=None, primary_keywords=None):
    """A one-band file laid out like an HSC cutout: header-only HDU 0, image in HDU 1."""
    if primary_keywords is None:
        primary_keywords = {"FLUXMAG0": 10 ** (27 / 2.5)}
    image = fits.ImageHDU(np.asarray(data, np.float32), header=_header() if header is None else header)
    fits.HDUList([fits.PrimaryHDU(header=fits.Header(primary_keywords)), image]).writeto(path)
    return path


def _galaxy(tmp_path, name, shape=(16, 16), bands="gri", value=1.0):
    return {b: _write_band(tmp_path / f"{name}-{b}.fits", np.full(shape, value * (k + 1)))
            for k, b in enumerate(bands)}


def test_mapping_form_band_selection_and_order(tmp_path):
    galaxies = [_galaxy(tmp_path, "a"), _galaxy(tmp_path, "b", value=2.0)]
    survey = load_fits_cutouts(galaxies, bands=["i", "g"], progress=False)
    assert survey.bands == ("i", "g") and survey.images.shape == (2, 2, 16, 16)
    assert survey.images[:, :, 0, 0].tolist() == [[3.0, 1.0], [6.0, 2.0]]
    assert survey.pixel_scale == pytest.approx(0.2) and survey.zeropoint == pytest.approx(27.0)
    assert survey.meta["files"][0]["g"].endswith("a-g.fits[1]")


def test_multi_extension_files(tmp_path):
    path = tmp_path / "mef.fits"
    hdus = [fits.PrimaryHDU(header=fits.Header({"MAGZERO": 30.0})),
            fits.ImageHDU(np.full((8, 8), 1.0, np.float32), header=_header(0.5, FILTER="g")),
            fits.ImageHDU(np.full((8, 8), 2.0, np.float32), header=_header(0.5), name="R"),
            fits.ImageHDU(np.ones((8, 8), np.int32), name="MASK"),
            fits.ImageHDU(np.full((8, 8), 9.0, np.float32), header=_header(0.5), name="VARIANCE")]
    fits.HDUList(hdus).writeto(path)
    survey = load_fits_cutouts([path, path], zeropoint=22.5, progress=False)
    assert survey.bands == ("g", "R") and survey.pixel_scale == pytest.approx(0.5)
    np.testing.assert_allclose(survey.images[0, :, 0, 0], np.array([1.0, 2.0]) * 10 ** (0.4 * (22.5 - 30.0)),
                               rtol=1e-6)
    only_r = load_fits_cutouts([path], hdu=["R"], progress=False)
    assert only_r.bands == ("R",) and only_r.zeropoint == 30.0


def test_bunit_nanomaggy_and_explicit_pixel_scale(tmp_path):
    path = _write_band(tmp_path / "ls.fits", np.ones((8, 8)), header=fits.Header({"BUNIT": "nanomaggy"}),
                       primary_keywords={})
    survey = load_fits_cutouts([{"r": path}], pixel_scale=0.262, progress=False)
    assert survey.zeropoint == 22.5 and survey.pixel_scale == 0.262


def test_nonfinite_pixels_and_padding_are_masked(tmp_path):
    data = np.ones((10, 10))
    data[2, 3], data[4, 4] = np.nan, np.inf
    galaxy = {"r": _write_band(tmp_path / "nan.fits", data)}
    survey, mask = load_fits_cutouts([galaxy], size=14, return_mask=True, progress=False)
    assert np.isfinite(survey.images).all() and survey.images.shape == (1, 1, 14, 14)
    assert survey.meta["nan_pixels"] == [2]
    assert survey.catalog.n_masked_pixels.tolist() == [2 + 14 * 14 - 10 * 10]  # NaN/inf + padding
    assert mask.sum() == survey.catalog.n_masked_pixels[0]
    assert mask[0, 0, 4, 5] and mask[0, 0, 6, 6] and not mask[0, 0, 7, 7]  # offset (2, 2) by the padding
    assert survey.images[0, 0][mask[0, 0]].max() == 0 and survey.images[0, 0][~mask[0, 0]].min() == 1


def test_on_error_skip_records_dropped_galaxies(tmp_path):
    good = _galaxy(tmp_path, "good")
    missing = {**good, "i": tmp_path / "absent.fits"}
    catalog = pd.DataFrame({"name": ["a", "b", "c"]})
    with pytest.warns(UserWarning, match="skipped 1 of 3 galaxies"):
        survey = load_fits_cutouts([good, missing, good], catalog=catalog, on_error="skip", progress=False)
    assert len(survey) == 2 and survey.catalog.name.tolist() == ["a", "c"]
    assert survey.meta["dropped"][0]["index"] == 1 and "absent.fits" in survey.meta["dropped"][0]["reason"]


def test_fits_error_cases(tmp_path):
    header_only = tmp_path / "header_only.fits"
    fits.PrimaryHDU(header=fits.Header({"FLUXMAG0": 1e10})).writeto(header_only)
    good = _galaxy(tmp_path, "ok")
    with pytest.raises(ValueError, match=r"paths: .*header_only.fits holds no 2-D image data"):
        load_fits_cutouts([{"g": header_only}], progress=False)
    with pytest.raises(ValueError, match=r"paths: .*mef.fits holds no image data"):
        fits.PrimaryHDU(header=fits.Header({"FILTER": "g"})).writeto(tmp_path / "mef.fits")
        load_fits_cutouts([tmp_path / "mef.fits"], progress=False)
    with pytest.raises(FileNotFoundError, match=r"paths: no such FITS file .*nope.fits"):
        load_fits_cutouts([{"g": tmp_path / "nope.fits"}], progress=False)
    odd = {**good, "i": _write_band(tmp_path / "odd.fits", np.ones((12, 16)))}
    with pytest.raises(ValueError, match="paths: the bands of one galaxy differ in shape"):
        load_fits_cutouts([odd], progress=False)
    two_bands = {b: good[b] for b in "gr"}
    with pytest.raises(ValueError, match=r"paths: band\(s\) \['i'\] missing"):
        load_fits_cutouts([good, two_bands], progress=False)
    with pytest.raises(ValueError, match=r"paths: galaxy .* has bands \['g', 'r', 'i'\], the first"):
        load_fits_cutouts([two_bands, good], progress=False)
    with pytest.raises(ValueError, match=r"bands: band\(s\) \['z'\] missing .* which has \['g', 'r', 'i'\]"):
        load_fits_cutouts([good], bands=("g", "z"), progress=False)
    with pytest.raises(TypeError, match="paths: expected a sequence"):
        load_fits_cutouts(good["g"], progress=False)
    with pytest.raises(ValueError, match="on_error: expected one of"):
        load_fits_cutouts([good], on_error="ignore", progress=False)
    with pytest.raises(ValueError, match=r"catalog: expected one row per entry of paths \(1\), got 2"):
        load_fits_cutouts([good], catalog=pd.DataFrame({"a": [1, 2]}), progress=False)


def test_fits_calibration_errors(tmp_path):
    bare = _write_band(tmp_path / "bare.fits", np.ones((8, 8)), header=fits.Header(), primary_keywords={})
    with pytest.raises(ValueError, match=r"zeropoint: .*bare.fits\[1\] has no FLUXMAG0"):
        load_fits_cutouts([{"g": bare}], pixel_scale=0.2, progress=False)
    with pytest.raises(ValueError, match=r"pixel_scale: .*bare.fits\[1\] has no celestial WCS"):
        load_fits_cutouts([{"g": bare}], zeropoint=22.5, progress=False)
    other = _write_band(tmp_path / "zp30.fits", np.ones((8, 8)), primary_keywords={"MAGZP": 30.0})
    zp27 = _write_band(tmp_path / "zp27.fits", np.ones((8, 8)))
    with pytest.raises(ValueError, match=r"zeropoint: the files have different zeropoints \[27.0, 30.0\]"):
        load_fits_cutouts([{"g": zp27}, {"g": other}], progress=False)
    mixed = load_fits_cutouts([{"g": zp27}, {"g": other}], zeropoint=27.0, progress=False)
    assert mixed.images[:, 0, 0, 0] == pytest.approx([1.0, 10 ** (0.4 * (27.0 - 30.0))])
    coarse = _write_band(tmp_path / "coarse.fits", np.ones((8, 8)), header=_header(0.4))
    with pytest.raises(ValueError, match="pixel_scale: the files' WCS pixel scales differ"):
        load_fits_cutouts([{"g": zp27}, {"g": coarse}], progress=False)


# -- HDF5 ------------------------------------------------------------------------------------------
@pytest.fixture
def rich_survey(survey):
    """The session mock survey with string columns (one with a missing value) and metadata."""
    catalog = survey.catalog.copy()
    catalog["name"] = [f"gal-{i}" for i in range(len(catalog))]
    catalog["note"] = pd.Series(["ok"] * (len(catalog) - 1) + [None], dtype="string")
    return gw.data.Survey(survey.images, catalog, survey.bands, survey.pixel_scale, survey.zeropoint,
                          psf_fwhm=survey.psf_fwhm, meta={**survey.meta, "nested": {"a": [1, 2.5]}})


def test_hdf5_round_trip_is_exact(rich_survey, tmp_path):
    path = save_hdf5(rich_survey, tmp_path / "s.h5")
    back = load_hdf5(path)
    assert np.array_equal(back.images, rich_survey.images) and back.images.dtype == np.float32
    pd.testing.assert_frame_equal(back.catalog, rich_survey.catalog)
    assert back.bands == rich_survey.bands
    assert back.pixel_scale == rich_survey.pixel_scale and back.zeropoint == rich_survey.zeropoint
    assert back.psf_fwhm == rich_survey.psf_fwhm and back.meta == rich_survey.meta
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary file
    with h5py.File(path) as f:
        assert f["images"].shape == rich_survey.images.shape and "name" in f["catalog"]


def test_hdf5_band_column_and_row_selection(rich_survey, tmp_path):
    path = save_hdf5(rich_survey, tmp_path / "s.h5", compression=None)
    sub = load_hdf5(path, bands=["z", "g"], columns=["name", "redshift"], rows=slice(2, 6))
    assert sub.bands == ("z", "g") and list(sub.catalog.columns) == ["name", "redshift"]
    assert np.array_equal(sub.images, rich_survey.images[2:6][:, [2, 0]])
    assert sub.catalog.name.tolist() == ["gal-2", "gal-3", "gal-4", "gal-5"]
    assert sub.psf_fwhm == {b: rich_survey.psf_fwhm[b] for b in ("z", "g")}
    picked = load_hdf5(path, rows=[0, 5, 7], zeropoint=25.0)
    assert picked.zeropoint == 25.0 and picked.catalog.name.tolist() == ["gal-0", "gal-5", "gal-7"]
    np.testing.assert_allclose(picked.images, rich_survey.images[[0, 5, 7]] * 10 ** (0.4 * (25.0 - 22.5)),
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"bands: \['u'\] not in .* it holds bands \['g', 'r', 'z'\]"):
        load_hdf5(path, bands=["u"])
    with pytest.raises(ValueError, match=r"columns: \['nope'\] not in .* available catalog columns: \['id'"):
        load_hdf5(path, columns=["nope"])


def test_hdf5_channels_last_top_level_columns(tmp_path):
    """A hand-written file like public 5-band 64x64 spec-z sets: (N, H, W, C), no attributes."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(6, 64, 64, 5)).astype(np.float32)
    path = tmp_path / "specz.h5"
    with h5py.File(path, "w") as f:
        f["cube"] = images
        f["specz"] = np.linspace(0.05, 0.3, 6)
        f["objid"] = np.arange(6, dtype=np.int64) + 1000
        f["ebv"] = np.zeros(3)  # wrong length: not a catalog column
    kwargs = {"image_key": "cube", "channels_last": True}
    with pytest.raises(ValueError, match=r"bands: .* has no 'bands' attribute"):
        load_hdf5(path, **kwargs)
    with pytest.raises(ValueError, match=r"pixel_scale: .* has no 'pixel_scale' attribute"):
        load_hdf5(path, bands=tuple("ugriz"), **kwargs)
    with pytest.raises(ValueError, match=r"zeropoint: .* has no 'zeropoint' attribute"):
        load_hdf5(path, bands=tuple("ugriz"), pixel_scale=0.396, **kwargs)
    survey = load_hdf5(path, bands=tuple("ugriz"), pixel_scale=0.396, zeropoint=22.5, **kwargs)
    assert survey.images.shape == (6, 5, 64, 64) and survey.bands == tuple("ugriz")
    assert np.array_equal(survey.images, images.transpose(0, 3, 1, 2))
    assert list(survey.catalog.columns) == ["objid", "specz"]
    with pytest.raises(ValueError, match=r"image_key: .* has no dataset 'images'; top-level datasets"):
        load_hdf5(path)
    with pytest.raises(ValueError, match=r"bands: got 3 band names"):
        load_hdf5(path, bands=tuple("gri"), pixel_scale=0.396, zeropoint=22.5, **kwargs)


def test_hdf5_nonfinite_pixels_are_masked(tmp_path):
    images = np.ones((2, 1, 4, 4), np.float32)
    images[1, 0, 1, 1] = np.nan
    path = tmp_path / "nan.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images
        f.attrs.update({"bands": "r", "pixel_scale": 0.2, "zeropoint": 22.5})
    with pytest.warns(UserWarning, match="set 1 non-finite pixels in 1 galaxies"):
        survey = load_hdf5(path)
    assert survey.images[1, 0, 1, 1] == 0 and survey.catalog.n_masked_pixels.tolist() == [0, 1]
    assert survey.meta["nan_pixels"] == [0, 1]


def test_hdf5_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: no HDF5 file"):
        load_hdf5(tmp_path / "nope.h5")
    bad = pd.DataFrame({"when": pd.to_datetime(["2024-01-01"])})
    survey = gw.data.Survey(np.zeros((1, 1, 4, 4)), bad, ("r",), 0.2)
    with pytest.raises(TypeError, match=r"survey.catalog: column 'when' has dtype datetime64"):
        save_hdf5(survey, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


# -- Hubble eXtreme Deep Field ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def xdf():
    return hubble_deep_field(size=64)


def test_hubble_deep_field_stamps(xdf):
    n, c = len(xdf), 64 // 2
    assert n >= 20 and xdf.images.shape[1:] == (3, 64, 64)  # 700 stamps of sources >= 50 px
    assert xdf.bands == ("B", "G", "R") and "arbitrary" in xdf.meta["units"]
    assert xdf.meta["dropped"][0]["count"] > 0  # sources too close to the edge, counted not hidden
    # centred: the catalog centroid falls on the stamp's centre pixel ...
    assert (np.abs(xdf.catalog.x - xdf.catalog.x0 - c) <= 0.5).all()
    assert (np.abs(xdf.catalog.y - xdf.catalog.y0 - c) <= 0.5).all()
    # ... and the flux-weighted centroid of each stamp's central 5-px disc lies within 1 px of it
    light = xdf.images.sum(axis=1)
    light = np.clip(light - np.median(light, axis=(1, 2), keepdims=True), 0, None)
    yy, xx = np.indices((64, 64))
    disc = np.hypot(xx - c, yy - c) <= 5
    weights = light * disc
    offset = np.hypot((weights * xx).sum((1, 2)) / weights.sum((1, 2)) - c,
                      (weights * yy).sum((1, 2)) / weights.sum((1, 2)) - c)
    assert np.median(offset) < 0.5 and np.mean(offset <= 1) > 0.95
    # sources: the centre is brighter than the stamp edge, and they are sorted by flux
    centre = xdf.images[:, :, c - 4:c + 4, c - 4:c + 4].mean(axis=(1, 2, 3))
    edge = np.concatenate([xdf.images[:, :, :4], xdf.images[:, :, -4:]], axis=2).mean(axis=(1, 2, 3))
    assert centre.mean() > 5 * edge.mean() and np.mean(centre > edge) > 0.9
    total = xdf.catalog[["flux_B", "flux_G", "flux_R"]].sum(axis=1)
    assert total.is_monotonic_decreasing and (xdf.catalog.area >= 50).all()


def test_hubble_deep_field_is_deterministic(xdf):
    brightest = hubble_deep_field(size=64, n=10)
    assert np.array_equal(brightest.images, xdf.images[:10])
    pd.testing.assert_frame_equal(brightest.catalog, xdf.catalog.iloc[:10])
