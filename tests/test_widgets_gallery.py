"""Gallery widget, headless: single bands and stretches, the real-or-fake game, nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets as T

import galwidgets as gw
from galwidgets.widgets import Gallery
from galwidgets.widgets.gallery import GENERATED_COLOUR, GUESS_COLOUR, REAL_COLOUR

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def gallery(survey):
    """Real: galaxies 0-7; generated: 8-15; training: all 24 (holds exact copies of the generated)."""
    return Gallery(survey[:8], survey[8:16], training=survey, n_show=4)


def test_single_band_is_grey_and_differs_from_rgb(gallery):
    state = gallery.state
    rgb = state.rgb("real")
    state.band = "z"
    z = state.rgb("real")
    assert z.shape == rgb.shape == (4, 32, 32, 3)
    assert (z[..., 0] == z[..., 1]).all() and (z[..., 1] == z[..., 2]).all()
    assert not (rgb[..., 0] == rgb[..., 2]).all() and z.max() > 100
    state.band = "g"
    assert not np.array_equal(state.rgb("real"), z)  # another band, another picture
    assert gallery.view.band.value == "g"
    with pytest.raises(T.TraitError, match="band"):
        state.band = "K"


def test_percentile_drives_the_astropy_stretches(gallery):
    state = gallery.state
    state.stretch = "asinh"
    before = state.rgb("generated")
    gallery.view.percentile.value = 90.0
    assert state.percentile == 90.0
    after = state.rgb("generated")
    assert after.mean() > before.mean()  # a lower upper limit brightens the stretch
    with pytest.raises(T.TraitError, match="percentile"):
        state.percentile = 0.0


def test_game_deals_a_seeded_shuffled_grid(gallery):
    state, view = gallery.state, gallery.view
    view.mode.value = "real_or_fake"
    assert state.mode == "real_or_fake" and view.game_panel.layout.display == ""
    assert view.compare_panels.layout.display == "none"
    tiles, key = state.tiles, state.answer_key
    assert len(tiles) == 8 and key.count("real") == key.count("generated") == 4
    assert [s for s, _ in tiles] == list(key)
    assert len(view.game_buttons) == 8
    assert key[:4] != ("real",) * 4 or key[4:] != ("generated",) * 4  # shuffled, not stacked
    state.shuffle(seed=5)
    dealt = state.tiles
    state.shuffle(seed=0)
    assert state.tiles == tiles  # the seed fixes the deal
    state.shuffle()
    assert state.seed == 1 and state.tiles != tiles
    state.seed = 5
    assert state.tiles == dealt


def test_game_hides_then_reveals_and_scores(gallery):
    state, view = gallery.state, gallery.view
    state.mode = "real_or_fake"
    hidden = view.game_image.value
    assert state.frames("real_or_fake") == [None] * 8 and not state.revealed
    fakes = [t for t, a in enumerate(state.answer_key) if a == "generated"]
    for t in fakes[:3]:
        view.game_buttons[t].click()  # a click marks a tile as generated
    real = state.answer_key.index("real")
    view.game_buttons[real].click()
    assert set(state.guesses) == {*fakes[:3], real}
    assert state.frames("real_or_fake")[real] == GUESS_COLOUR
    assert view.game_image.value != hidden  # the guesses are drawn
    view.reveal_button.click()
    assert state.revealed
    assert state.frames("real_or_fake") == [REAL_COLOUR if a == "real" else GENERATED_COLOUR
                                            for a in state.answer_key]
    assert state.score() == {"correct": 6, "total": 8}  # one fake missed, one real marked
    assert "6 of 8" in view.status.value
    state.shuffle()
    assert not state.revealed and state.guesses == ()


def test_game_tiles_share_one_stretch(survey):
    """A galaxy in both sets looks the same in the game, whatever set it came from and whatever
    else is in that set (the percentile stretch is one for the whole grid)."""
    generated = np.concatenate([survey.images[:3], 4 * survey.images[10:13]])
    g = Gallery(survey[:6], generated, n_show=6, mode="real_or_fake", stretch="asinh", seed=3)
    tiles, rgb = g.state.tiles, g.state.rgb("real_or_fake")
    for i in range(3):
        a, b = tiles.index(("real", i)), tiles.index(("generated", i))
        np.testing.assert_array_equal(rgb[a], rgb[b])
    assert rgb.max() == 255


def test_click_a_generated_galaxy_for_its_training_neighbours(gallery, survey):
    state, view = gallery.state, gallery.view
    assert state.neighbours is None and view.neighbours_panel.layout.display == "none"
    view.generated_buttons[2].click()
    assert state.selected == 2
    nn = state.neighbours
    assert list(nn.columns) == ["index", "distance", "ratio"] and len(nn) == state.n_neighbours
    assert nn["index"].iloc[0] == 10 and nn["distance"].iloc[0] == 0.0  # generated 2 is training 10
    assert (np.diff(nn["distance"]) >= 0).all() and nn["ratio"].iloc[1] > 0.1
    assert view.neighbours_panel.layout.display == "" and view.neighbours_image.value[:4] == b"\x89PNG"
    assert "<table" in view.neighbours_table.value
    state.n_neighbours = 2
    assert len(state.neighbours) == 2
    for normalise in (None, "l2"):  # l2: shapes, not brightness (distances 0 to 2), its own scale
        state.normalise = normalise
        scale = gw.metrics.training_nn_distances(survey, n=100, normalise=normalise, progress=False)
        nn = state.neighbours
        assert nn["distance"].iloc[0] == 0
        assert nn["ratio"].iloc[1] == pytest.approx(nn["distance"].iloc[1] / scale["distance"].median())
    assert nn["distance"].iloc[1] < 2
    state.selected = -1
    assert state.neighbours is None and view.neighbours_panel.layout.display == "none"


def test_after_the_reveal_a_click_selects_a_generated_tile(gallery):
    state = gallery.state
    state.mode = "real_or_fake"
    state.reveal()
    tile = state.answer_key.index("generated")
    state.click("real_or_fake", tile)
    assert state.selected == state.tiles[tile][1] and state.guesses == ()
    state.click("real_or_fake", state.answer_key.index("real"))
    assert "real" in state.message


def test_nan_pixels_and_no_training(survey):
    generated = survey.images[8:12].copy()
    generated[1, :, :5] = np.nan
    generated[2] = np.nan
    g = Gallery(survey[:4], generated, training=survey)
    assert g.view.generated_image.value[:4] == b"\x89PNG"
    assert np.isfinite(g.state.rgb("generated")).all()
    g.state.selected = 1  # NaN pixels: no neighbour, no crash
    assert len(g.state.neighbours) == 0 and "NaN" in g.state.message
    plain = Gallery(survey[:4], survey[4:8])
    plain.view.generated_buttons[0].click()
    assert plain.state.neighbours is None and "training" in plain.state.message


def test_view_layout_follows_the_state(gallery):
    view = gallery.view
    assert WIDGET_MIME in gallery._repr_mimebundle_()
    assert len(view.generated_buttons) == 4
    gallery.state.n_show = 3
    assert len(view.generated_buttons) == 3 and len(view.game_buttons) == 6
    tile = f"{32 * gallery.state.zoom}px"
    assert view.generated_buttons[0].layout.width == tile
    assert view.generated_grid.layout.grid_template_columns == f"repeat(4, {tile})"


def test_default_zoom_keeps_both_panels_on_a_notebook_page(survey):
    """Tiles of at most 160 screen pixels: 32-pixel stamps at zoom 3, 64 at 2, 128 at 1; an
    explicit zoom wins. Side by side, two 4-column panels then fit ~1300 pixels."""
    stamps = {size: np.zeros((4, 3, size, size), dtype=np.float32) for size in (32, 64, 128)}
    assert [Gallery(s, s).state.zoom for s in stamps.values()] == [3, 2, 1]
    assert Gallery(stamps[64], stamps[64], zoom=3).state.zoom == 3
    view = Gallery(stamps[64], stamps[64]).view
    assert view.generated_grid.layout.width == f"{4 * 130 - 2}px"
    assert view.compare_panels.layout.flex_flow == "row wrap"  # a narrow page stacks the panels


def test_errors(survey):
    with pytest.raises(ValueError, match="training: expected stamps shaped like generated"):
        Gallery(survey[:4], survey[4:8], training=survey.images[:, :, :16, :16])
    with pytest.raises(ValueError, match="training: expected finite"):
        bad = survey.images.copy()
        bad[0, 0, 0, 0] = np.nan
        Gallery(survey[:4], survey[4:8], training=bad)
    with pytest.raises(ValueError, match="generated: expected stamps of"):
        Gallery(survey[:4], survey.images[:4, :, :16, :16])
    with pytest.raises(TypeError, match="colour: not a Gallery setting"):
        Gallery(survey[:4], survey[4:8], colour="red")
    g = Gallery(survey[:4], survey[4:8])
    with pytest.raises(T.TraitError, match="selected"):
        g.state.selected = 4
    with pytest.raises(ValueError, match="tile"):
        g.state.toggle_guess(99)
