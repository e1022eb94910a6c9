"""Gallery: real and generated galaxies side by side as RGB composites, with a stretch control."""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as W
import numpy as np
import traitlets as T
from PIL import Image

from .._validation import as_bands, as_images
from ..viz import STRETCHES, rgb_composite

__all__ = ["Gallery", "GalleryState", "GalleryView"]


def _mosaic(rgb: np.ndarray, ncols: int, zoom: int, gap: int = 2) -> np.ndarray:
    """Tile ``(N, H, W, 3)`` uint8 images into one image, each zoomed by pixel replication.

    Rows are flipped so that pixel (0, 0) is at the bottom left, as in FITS viewers.
    """
    n, h, w, _ = rgb.shape
    rows = int(np.ceil(n / ncols))
    th, tw = h * zoom, w * zoom
    out = np.full((rows * (th + gap) - gap, ncols * (tw + gap) - gap, 3), 255, dtype=np.uint8)
    for i, img in enumerate(rgb):
        r, c = divmod(i, ncols)
        tile = np.repeat(np.repeat(img[::-1], zoom, axis=0), zoom, axis=1)
        out[r * (th + gap): r * (th + gap) + th, c * (tw + gap): c * (tw + gap) + tw] = tile
    return out


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


class GalleryState(T.HasTraits):
    """Everything the Gallery shows: the two image sets and the display settings.

    Drive it from code (tests, tutorials) exactly as the controls do; views only link to it.
    """

    real = T.Any(help="reference flux images (N, C, H, W)")
    generated = T.Any(help="generated flux images (N, C, H, W)")
    bands = T.Tuple(help="band names, bluest first")
    zeropoint = T.Float(22.5, help="AB zeropoint of the flux unit")
    stretch = T.Enum(STRETCHES, default_value="lupton", help="display stretch")
    Q = T.Float(8.0, help="Lupton softening")
    stretch_value = T.Float(50.0, help="Lupton linear range, in band-scale units")
    n_show = T.Int(16, help="galaxies shown per set")
    ncols = T.Int(4, help="columns per panel")
    zoom = T.Int(3, help="screen pixels per image pixel")

    @T.validate("real", "generated")
    def _check_images(self, proposal: dict) -> np.ndarray:
        name = proposal["trait"].name
        return as_images(proposal["value"], name, allow_nan=True)

    @T.validate("n_show", "ncols", "zoom")
    def _check_positive(self, proposal: dict) -> int:
        if proposal["value"] < 1:
            name, value = proposal["trait"].name, proposal["value"]
            raise T.TraitError(f"{name}: expected a positive integer, got {value}")
        return proposal["value"]

    def rgb(self, which: str) -> np.ndarray:
        """RGB composites ``(n_show, H, W, 3)`` of ``"real"`` or ``"generated"``."""
        if which not in ("real", "generated"):
            raise ValueError(f"which: expected 'real' or 'generated', got {which!r}")
        images = getattr(self, which)[: self.n_show]
        return rgb_composite(images, self.bands, stretch=self.stretch, Q=self.Q,
                             stretch_value=self.stretch_value, zeropoint=self.zeropoint)

    def panel_png(self, which: str) -> bytes:
        """The panel of ``which`` as PNG bytes (what the view displays)."""
        return _png(_mosaic(self.rgb(which), self.ncols, self.zoom))


class GalleryView(W.VBox):
    """ipywidgets view of a :class:`GalleryState`: controls linked to it and two image panels."""

    def __init__(self, state: GalleryState, **kwargs: Any) -> None:
        self.state = state
        self.stretch = W.Dropdown(options=STRETCHES, description="stretch")
        self.Q = W.FloatLogSlider(min=-1, max=2, step=0.05, description="Q")
        self.stretch_value = W.FloatLogSlider(min=0, max=3, step=0.05, description="range")
        self.n_show = W.IntSlider(min=1, max=max(1, min(len(state.real), len(state.generated), 64)),
                                  description="galaxies")
        self._links = [W.link((state, name), (getattr(self, name), "value"))
                       for name in ("stretch", "Q", "stretch_value", "n_show")]
        self.real_image = W.Image(format="png")
        self.generated_image = W.Image(format="png")
        panels = W.HBox([
            W.VBox([W.HTML("<b>real</b>"), self.real_image]),
            W.VBox([W.HTML("<b>generated</b>"), self.generated_image]),
        ])
        controls = W.HBox([self.stretch, self.Q, self.stretch_value, self.n_show])
        super().__init__([controls, panels], **kwargs)
        state.observe(self._redraw, names=["real", "generated", "bands", "zeropoint", "stretch", "Q",
                                           "stretch_value", "n_show", "ncols", "zoom"])
        self._redraw()

    def _redraw(self, change: dict | None = None) -> None:
        self.real_image.value = self.state.panel_png("real")
        self.generated_image.value = self.state.panel_png("generated")


class Gallery:
    """Real and generated galaxies side by side as RGB composites with a stretch control.

    Parameters
    ----------
    real, generated : Survey or array (N, C, H, W)
        Flux images of reference and generated galaxies.
    bands : sequence of str, optional
        Band names; default the Survey's.
    **settings
        Initial :class:`GalleryState` settings (``stretch``, ``Q``, ``n_show``, ...).

    Attributes
    ----------
    state : GalleryState
        The state every control links to.
    view : GalleryView
        The widget shown when the Gallery is the last expression of a cell.
    """

    def __init__(self, real: Any, generated: Any, bands: Any = None, **settings: Any) -> None:
        bands = bands or getattr(real, "bands", None) or getattr(generated, "bands", None)
        real_images = as_images(real, "real", allow_nan=True)
        generated_images = as_images(generated, "generated", allow_nan=True,
                                     channels=real_images.shape[1])
        bands = as_bands(bands or ("g", "r", "z")[: real_images.shape[1]], real_images.shape[1])
        settings.setdefault("zeropoint", getattr(real, "zeropoint", 22.5))
        self.state = GalleryState(real=real_images, generated=generated_images, bands=bands, **settings)
        self.view = GalleryView(self.state)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.view._repr_mimebundle_(**kwargs)
