"""Morphology explorer, headless: Gini–M20 plane, selections and their montage, other planes, NaN."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import traitlets as T

import galwidgets as gw
from galwidgets.widgets import MorphologyExplorer
from galwidgets.widgets.gallery import GENERATED_COLOUR, REAL_COLOUR
from galwidgets.widgets.morphology import (
    LOTZ_2008,
    LOTZ_2008_CLASSES,
    concentration_asymmetry,
    lotz_2008_class,
)

needs_bokeh = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("holoviews", "panel", "jupyter_bokeh")),
    reason="the view needs the [all] extras: holoviews, panel, jupyter_bokeh")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def explorer(survey):
    """12 real and 12 generated galaxies, the last generated one all NaN."""
    generated = survey.images[12:].copy()
    generated[-1] = np.nan
    return MorphologyExplorer(survey[:12], generated)


def test_gini_m20_points_and_dropped_nans(explorer):
    state = explorer.state
    table = state.table
    assert list(table["set"]) == ["real"] * 12 + ["generated"] * 12
    expected = gw.metrics.gini_m20(explorer.state.real, progress=False)
    np.testing.assert_allclose(table["gini"][:12], expected["gini"], equal_nan=True)
    points = state.points()
    assert np.isfinite(points[["m20", "gini"]].to_numpy()).all()
    nan_rows = table[["m20", "gini"]].isna().any(axis=1)
    assert 23 in set(np.flatnonzero(nan_rows)) and len(points) == 24 - nan_rows.sum()
    dropped = state.dropped()
    assert dropped == {"real": int(nan_rows[:12].sum()), "generated": int(nan_rows[12:].sum())}
    assert f"{dropped['generated']} generated" in state.message


@needs_bokeh
def test_the_lotz_lines_are_published_ones(explorer):
    assert LOTZ_2008 == {"merger": (-0.14, 0.33), "bulge": (0.14, 0.80)}
    main = explorer.view.pane.object.main
    merger, bulge = (el for el in main if type(el).__name__ == "Curve")
    m20, gini = merger.dimension_values(0), merger.dimension_values(1)
    np.testing.assert_allclose(gini, -0.14 * m20 + 0.33)
    m20, gini = bulge.dimension_values(0), bulge.dimension_values(1)
    np.testing.assert_allclose(gini, 0.14 * m20 + 0.80)
    assert m20.max() == pytest.approx(-1.679, abs=1e-3)  # ends where it meets the merger line


def test_lotz_2008_regions_on_either_side_of_the_lines():
    """Lotz et al. (2008) eqs. 4-6: mergers above G = -0.14 M20 + 0.33; below it, E/S0/Sa above
    G = 0.14 M20 + 0.80 and Sb-Ir below; at M20 = -1 the bulge line lies above the merger line."""
    m20 = np.array([-2.0, -2.0, -2.0, -2.0, -2.0, -1.0, -1.0, -1.0, np.nan])
    eps = 1e-6
    gini = np.array([0.61 + eps, 0.61 - eps, 0.52 + eps, 0.52 - eps, 0.3, 0.47 + eps, 0.47 - eps, 0.7, 0.5])
    assert list(lotz_2008_class(gini, m20)) == ["merger", "E/S0/Sa", "E/S0/Sa", "Sb–Ir", "Sb–Ir", "merger",
                                                "Sb–Ir", "merger", ""]
    assert LOTZ_2008_CLASSES == ("merger", "E/S0/Sa", "Sb–Ir")


def test_region_counts_and_status(explorer):
    state = explorer.state
    points = state.points()
    counts = state.region_counts()
    assert list(counts.index) == ["real", "generated"] and list(counts.columns) == list(LOTZ_2008_CLASSES)
    for s in ("real", "generated"):
        mine = points[points["set"] == s]
        classes = lotz_2008_class(mine["gini"], mine["m20"])
        expected = [int((classes == c).sum()) for c in LOTZ_2008_CLASSES]
        assert [counts.loc[s, c] for c in LOTZ_2008_CLASSES] == expected
    assert counts.to_numpy().sum() == len(points)
    assert "Lotz+08 regions (real / generated): merger " in state.message
    assert f"Sb–Ir {counts.loc['real', 'Sb–Ir']} / {counts.loc['generated', 'Sb–Ir']}" in state.message


@needs_bokeh
def test_the_lotz_regions_are_labelled_in_the_figure(explorer):
    main = explorer.view.pane.object.main
    (labels,) = [el for el in main if type(el).__name__ == "Labels"]
    m20, gini = labels.dimension_values(0), labels.dimension_values(1)
    names = list(labels.dimension_values(2))
    assert sorted(names) == sorted(LOTZ_2008_CLASSES)
    assert list(lotz_2008_class(gini, m20)) == names  # each label sits inside its own region
    assert explorer.view.pane.object.main.opts.get().kwargs.get("invert_xaxis") is True


@pytest.mark.parametrize("m20_range", [(-3.0, 0.0), (-3.0, -0.5)])
def test_matplotlib_gini_m20_lines_label_each_region_inside_it(m20_range):
    """gw.viz.gini_m20_lines (evaluate.ipynb, tutorial 09) names the three Lotz et al. (2008) regions,
    each label inside its region and inside the M20 range drawn."""
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    gw.viz.gini_m20_lines(ax, m20_range=m20_range)
    texts = {t.get_text(): t.get_position() for t in ax.texts}
    assert set(texts) == {"mergers", "E/S0/Sa", "Sb–Ir"}
    for name, (m20, gini) in texts.items():
        assert m20_range[0] < m20 < m20_range[1]
        assert lotz_2008_class(gini, m20)[()] == {"mergers": "merger"}.get(name, name)
    ax = Figure().subplots()
    gw.viz.gini_m20_lines(ax, regions=False)
    assert not ax.texts


@pytest.mark.parametrize("instrument, band", [("desi", "r"), ("hsc-deep", "i")])
def test_default_populations_fall_on_both_sides_of_the_lines(instrument, band):
    """The default mock populations (items 1-2 of issue 18) populate every Lotz et al. (2008) region
    in the explorer: mergers above the merger line, galaxies on both sides of the bulge/disc line."""
    survey = gw.data.simulate_survey(200, instrument=instrument, seed=3, progress=False, n_jobs=1)
    ex = MorphologyExplorer(survey[:100], survey[100:], band)
    counts = ex.state.region_counts().sum()
    assert ex.state.band == band
    assert (counts > 0).all(), counts.to_dict()
    assert counts["merger"] < 0.2 * counts.sum()  # mergers are the exception


@needs_bokeh
def test_selection_stream_fills_a_fixed_size_montage(explorer):
    state, view = explorer.state, explorer.view
    blank = state.montage()
    assert (blank == 255).all()  # nothing selected: white tiles, no error
    points = state.points()
    pick = [0, len(points) - 1]
    view.selection_stream.event(index=pick)
    assert state.selection == points["row"].iloc[pick].tolist()
    montage = state.montage()
    assert montage.shape == blank.shape and not (montage == 255).all()
    # first tile is real (blue frame), second generated (orange), the rest blank
    assert tuple(montage[0, 0]) == REAL_COLOUR
    tile = 32 * state.zoom + 2
    assert tuple(montage[0, tile]) == GENERATED_COLOUR
    assert (montage[:, 2 * tile:] == 255).all()
    assert "2 selected (1 real, 1 generated)" in view.status.value
    assert view.montage_image.value == state.montage_png()
    view.selection_stream.event(index=list(range(len(points))))
    assert state.montage().shape == blank.shape and len(state.selection) == len(points)
    state.montage_size = 4
    assert "montage shows the first 4" in state.message
    assert not (state.montage() == 255).all()
    state.montage_size = 16
    view.selection_stream.event(index=[])
    assert state.selection == [] and (state.montage() == 255).all()


def test_single_band_montage_and_selection_errors(explorer):
    state = explorer.state
    state.selection = [0]
    state.display_band = "z"
    tile = state.montage()[2:62, 2:62]
    assert (tile[..., 0] == tile[..., 2]).all()
    state.display_band = "rgb"
    with pytest.raises(ValueError, match="index"):
        state.select_points([999])
    with pytest.raises(T.TraitError, match="selection"):
        state.selection = [-1]
    state.selection = []


@needs_bokeh
def test_other_planes_from_a_precomputed_table(survey, monkeypatch):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"set": ["real"] * 6 + ["generated"] * 6, "gini": rng.uniform(0.4, 0.6, 12),
                          "m20": rng.uniform(-2.5, -1.0, 12), "concentration": rng.uniform(2, 4, 12),
                          "asymmetry": rng.uniform(0, 0.5, 12)})
    table.loc[3, "asymmetry"] = np.nan
    table.loc[8, "concentration"] = np.nan

    def no_measurement(*args, **kwargs):
        raise AssertionError("measured although the table has the columns")

    monkeypatch.setattr("galwidgets.metrics.gini_m20", no_measurement)
    monkeypatch.setattr("galwidgets.widgets.morphology.concentration_asymmetry", no_measurement)
    ex = MorphologyExplorer(survey[:6], survey[6:12], table=table, plane="concentration_asymmetry")
    state = ex.state
    assert state.columns() == ("asymmetry", "concentration")
    assert state.dropped() == {"real": 1, "generated": 1}
    assert len(ex.view.selection_stream.source) == 10
    ex.view.selection_stream.event(index=[3])  # fourth plotted point: row 4 (row 3 has no A)
    assert state.selection == [4]
    first_stream = ex.view.selection_stream
    ex.view.plane.value = "gini_m20"  # measured: switches at once, new plot, selection cleared
    assert state.plane == "gini_m20" and state.selection == []
    assert ex.view.selection_stream is not first_stream
    monkeypatch.undo()
    ex.view.plane.value = "size_magnitude"  # not measured: photometry in a thread
    ex.view._thread.join(timeout=60)
    assert state.plane == "size_magnitude" and not state.busy
    phot = gw.metrics.photometry(survey[6:12])
    np.testing.assert_allclose(state.table["r_half"][6:], phot["r_half"])
    assert set(ex.view.selection_stream.source.dimension_values("set")) <= {"real", "generated"}
    assert WIDGET_MIME in ex._repr_mimebundle_()


def _gaussian(size: int = 32, blob: float = 0.0, seed: int = 0, noise: float = 1e-3) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    image = np.exp(-(x**2 + y**2) / (2 * 2.5**2)) + blob * np.exp(-((x - 5) ** 2 + (y - 2) ** 2) / 2.0)
    sky = np.random.default_rng(seed).normal(0, noise, (size, size))
    return np.broadcast_to(image + sky, (3, size, size)).astype(np.float32)


def test_fast_concentration_asymmetry_on_analytic_galaxies():
    blank = np.full((3, 32, 32), np.nan, np.float32)
    images = np.stack([_gaussian(seed=1), _gaussian(blob=0.6, seed=2), blank])
    table = concentration_asymmetry(images, deblend=False)
    # a circular Gaussian: r80 / r20 = sqrt(ln 5 / ln 1.25), C = 2.14 (less a little for the aperture)
    gaussian_c = 5 * np.log10(np.sqrt(np.log(5) / np.log(1.25)))
    assert table["concentration"][0] == pytest.approx(gaussian_c, abs=0.1)
    assert abs(table["asymmetry"][0]) < 0.03 and table["asymmetry"][1] > 0.15
    assert table.iloc[2].isna().all()  # no source: NaN, no exception
    # sky noise alone makes I and I180 differ: the background term removes it (Conselice et al. 2000)
    noisy = np.stack([_gaussian(seed=s, noise=0.05) for s in range(4)])
    noisy = concentration_asymmetry(noisy, deblend=False)
    assert abs(noisy["asymmetry"].mean()) < 0.05
    deblended = concentration_asymmetry(images, deblend=True)
    np.testing.assert_allclose(deblended["concentration"][:2], table["concentration"][:2], atol=0.05)


def test_errors(survey):
    with pytest.raises(ValueError, match="generated: expected stamps of"):
        MorphologyExplorer(survey[:4], survey.images[:4, :, :16, :16])
    with pytest.raises(ValueError, match="table: expected 'set' values"):
        MorphologyExplorer(survey[:4], survey[4:8], table=pd.DataFrame({"set": ["fake"], "gini": [0.5]}))
    with pytest.raises(ValueError, match="table: 'index' out of range"):
        MorphologyExplorer(survey[:4], survey[4:8],
                           table=pd.DataFrame({"set": ["real"], "index": [7], "gini": [0.5]}))
    with pytest.raises(ValueError, match="table: expected"):
        MorphologyExplorer(survey[:4], survey[4:8], table={"real": pd.DataFrame({"gini": [0.5]})})
