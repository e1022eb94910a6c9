import numpy as np
import pytest

import galwidgets as gw
from galwidgets.widgets import Gallery


def test_rgb_composite_shapes_and_colour_order(survey):
    rgb = gw.viz.rgb_composite(survey.images[:4], survey.bands)
    assert rgb.shape == (4, 32, 32, 3) and rgb.dtype == np.uint8 and rgb.max() > 100
    red = np.zeros((1, 3, 8, 8), np.float32)
    red[:, 2] = 1.0  # flux only in z, the reddest band
    out = gw.viz.rgb_composite(red, ("g", "r", "z"), stretch="linear")
    assert out[..., 0].max() == 255 and out[..., 2].max() == 0
    with pytest.raises(ValueError, match="stretch"):
        gw.viz.rgb_composite(red, ("g", "r", "z"), stretch="pink")


def test_save_grid_writes_png(survey, tmp_path):
    path = gw.viz.save_grid(tmp_path / "g.png", survey.images[:6], survey.bands, ncols=3)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_gallery_state_drives_view_headless(survey):
    gallery = Gallery(survey[:8], survey[8:16], n_show=4)
    state, view = gallery.state, gallery.view
    before = view.real_image.value
    assert before[:4] == b"\x89PNG" and view.generated_image.value != before
    state.stretch = "log"  # code drives the state...
    assert view.stretch.value == "log" and view.real_image.value != before
    view.stretch.value = "sqrt"  # ...and the control drives the same state
    assert state.stretch == "sqrt"
    state.n_show = 2
    assert state.rgb("real").shape == (2, 32, 32, 3)
    assert "application/vnd.jupyter.widget-view+json" in gallery._repr_mimebundle_()


def test_gallery_rejects_bad_input(survey):
    with pytest.raises(ValueError, match="generated: expected 3 channels"):
        Gallery(survey, survey.images[:, :2])
    with pytest.raises(ValueError, match="real: expected a 4-D array"):
        Gallery(survey.images[0], survey)


def test_gini_m20_lines_follow_lotz_2008_and_meet_at_the_bulge_line_end():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    gw.viz.gini_m20_lines(ax)
    (merger, bulge) = ax.get_lines()
    m20, gini = merger.get_data()
    np.testing.assert_allclose(gini, -0.14 * np.asarray(m20) + 0.33)
    m20, gini = bulge.get_data()
    np.testing.assert_allclose(gini, 0.14 * np.asarray(m20) + 0.80)
    np.testing.assert_allclose(max(m20), -0.47 / 0.28)  # the bulge line stops where it meets the merger line
    assert ax.get_xlim() == (0.0, -3.0)  # M20 decreases to the right, as in Lotz et al.
    plt.close(fig)
