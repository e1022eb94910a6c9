"""The central source of a cutout: detection, deblending, choice of the central label."""

import numpy as np
import pytest

from galwidgets.metrics import central_segmap


def blob(shape, x, y, flux, sigma=2.0):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return flux * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2))


@pytest.fixture
def noise():
    return np.random.default_rng(0).normal(0, 0.01, (64, 64))


def test_picks_the_central_galaxy_not_the_brighter_neighbour(noise):
    image = noise + blob(noise.shape, 31.5, 31.5, 1.0) + blob(noise.shape, 52, 10, 5.0)
    seg = central_segmap(image)
    assert seg.found and seg.segmap.max() == 2
    assert seg.central[31, 31] and not seg.central[10, 52]
    assert seg.others[10, 52] and not seg.touches_edge
    assert seg.sky_sigma == pytest.approx(0.01, rel=0.1)


def test_deblends_a_close_pair(noise):
    image = noise + blob(noise.shape, 27, 31.5, 1.0) + blob(noise.shape, 38, 31.5, 1.0)
    assert central_segmap(image, deblend=False).segmap.max() == 1
    seg = central_segmap(image)
    assert seg.segmap.max() == 2 and seg.central.sum() < (seg.segmap > 0).sum()


def test_offset_galaxy_is_the_nearest_segment(noise):
    image = noise + blob(noise.shape, 40, 40, 1.0) + blob(noise.shape, 5, 60, 1.0)
    seg = central_segmap(image)
    assert seg.central[40, 40] and not seg.central[60, 5]


def test_edge_touching_source_is_reported(noise):
    image = noise + blob(noise.shape, 31.5, 6, 1.0, sigma=4)
    assert central_segmap(image).touches_edge


@pytest.mark.parametrize("image", [np.zeros((64, 64)), np.full((64, 64), np.nan), -np.ones((64, 64)),
                                   np.random.default_rng(1).normal(0, 1, (64, 64))])
def test_nothing_to_detect_gives_label_zero(image):
    seg = central_segmap(image)
    assert seg.label == 0 and not seg.found and not seg.central.any()


def test_nan_pixels_are_never_detected(noise):
    image = noise + blob(noise.shape, 31.5, 31.5, 1.0)
    image[:, :8] = np.nan
    seg = central_segmap(image)
    assert seg.found and not (seg.segmap[:, :8] > 0).any()


def test_arguments_are_named():
    with pytest.raises(ValueError, match="image: expected one 2-D band"):
        central_segmap(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="n_sigma"):
        central_segmap(np.zeros((8, 8)), n_sigma=0)
