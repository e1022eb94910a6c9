import numpy as np
import pandas as pd
import pytest

import galwidgets as gw


def test_save_load_round_trip(survey, tmp_path):
    path = survey.save(tmp_path / "s.fits")
    back = gw.data.Survey.load(path)
    assert np.array_equal(back.images, survey.images)
    pd.testing.assert_frame_equal(back.catalog, survey.catalog)
    assert back.bands == survey.bands
    assert back.pixel_scale == survey.pixel_scale and back.zeropoint == survey.zeropoint
    assert back.psf_fwhm == survey.psf_fwhm and back.meta == survey.meta
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left no temporary file


def test_indexing_and_split(survey):
    sub = survey[2:5]
    assert len(sub) == 3 and np.array_equal(sub.images, survey.images[2:5])
    assert list(sub.catalog.id) == [2, 3, 4]
    a, b = survey.split(0.5, seed=1)
    assert len(a) + len(b) == len(survey)
    assert set(a.catalog.id).isdisjoint(b.catalog.id)
    first, second = survey.split_indices(0.5, seed=1)  # the same parts, as galaxy numbers
    assert list(a.catalog.id) == list(survey.catalog.id[first])
    assert list(b.catalog.id) == list(survey.catalog.id[second])
    with pytest.raises(ValueError, match="fraction"):
        survey.split_indices(1.0)


def test_load_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: no Survey file"):
        gw.data.Survey.load(tmp_path / "nope.fits")


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((3, 32, 32), np.float32), "images: expected a 4-D array"),
        (np.full((1, 3, 8, 8), np.nan, np.float32), "images: expected finite pixel values"),
        (np.zeros((1, 2, 8, 8), np.float32), "bands: got 3 band names"),
    ],
)
def test_bad_images_rejected_with_argument_name(images, match):
    with pytest.raises(ValueError, match=match):
        gw.data.Survey(images=images, catalog=None, bands=("g", "r", "z"), pixel_scale=0.262)


def test_catalog_length_must_match():
    with pytest.raises(ValueError, match="catalog: expected one row per image"):
        gw.data.Survey(np.zeros((2, 1, 8, 8)), pd.DataFrame({"a": [1]}), ("r",), 0.262)
