"""Gallery: real and generated galaxies side by side, the "real or fake?" game, nearest neighbours.

Tiles are RGB composites (Lupton et al. 2004 or an astropy stretch, :func:`galwidgets.viz.rgb_composite`)
or one band in grey. In ``"real_or_fake"`` mode both sets are shuffled into one grid, as in Figure 2
of Smith et al. (2022, MNRAS 511, 1808), the player marks the tiles they think are generated and
``reveal`` shows the answer key as coloured frames. Clicking a generated galaxy shows its nearest
neighbours in the training set (pixel-space L2, :func:`galwidgets.metrics.nearest_neighbours`), the
check for memorised training images.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import traitlets as T
from PIL import Image

from .._validation import as_bands, as_images
from ..viz import STRETCHES, rgb_composite

__all__ = ["GALLERY_MODES", "Gallery", "GalleryState", "GalleryView"]

#: ``"compare"``: two panels, real and generated; ``"real_or_fake"``: one shuffled grid (the game).
GALLERY_MODES = ("compare", "real_or_fake")
#: Frame colours (Okabe & Ito colour-blind safe palette): real, generated, a player's guess, a selection.
REAL_COLOUR = (0, 114, 178)
GENERATED_COLOUR = (230, 159, 0)
GUESS_COLOUR = (255, 255, 255)
SELECTED_COLOUR = (213, 94, 0)


def _mosaic(rgb: np.ndarray, ncols: int, zoom: int, gap: int = 2,
            frames: Sequence[tuple[int, int, int] | None] | None = None, frame_width: int = 2) -> np.ndarray:
    """Tile ``(N, H, W, 3)`` uint8 images into one image, each zoomed by pixel replication.

    Rows are flipped so that pixel (0, 0) is at the bottom left, as in FITS viewers. ``frames``
    gives an RGB colour (or None) per tile, painted ``frame_width`` screen pixels wide inside it.
    """
    n, h, w, _ = rgb.shape
    rows = int(np.ceil(n / ncols))
    th, tw = h * zoom, w * zoom
    out = np.full((rows * (th + gap) - gap, ncols * (tw + gap) - gap, 3), 255, dtype=np.uint8)
    for i, img in enumerate(rgb):
        r, c = divmod(i, ncols)
        tile = np.repeat(np.repeat(img[::-1], zoom, axis=0), zoom, axis=1)
        if frames is not None and frames[i] is not None:
            k = max(1, min(frame_width, th // 4, tw // 4))
            tile[:k], tile[-k:], tile[:, :k], tile[:, -k:] = (frames[i],) * 4
        out[r * (th + gap): r * (th + gap) + th, c * (tw + gap): c * (tw + gap) + tw] = tile
    return out


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _composite(images: np.ndarray, bands: Sequence[str], band: str, **stretch: Any) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 tiles: RGB composites (``band="rgb"``) or one band in grey.

    One call stretches all ``images`` together, so the percentile stretches share their limits.
    A single band goes through :func:`~galwidgets.viz.rgb_composite` as a one-band image, whose
    red, green and blue channels are then the same band (grey, same stretches and scales).
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # blank (all-zero or all-NaN) stamps
        if band == "rgb":
            return rgb_composite(images, bands, **stretch)
        c = list(bands).index(band)
        return rgb_composite(images[:, c:c + 1], (band,), **stretch)


def _checked(proposal: dict, ok: bool, expected: str) -> Any:
    """A traitlets validator's answer: the proposed value, or a ``TraitError`` naming the trait,
    what was expected and what came."""
    if not ok:
        raise T.TraitError(f"{proposal['trait'].name}: expected {expected}, got {proposal['value']!r}")
    return proposal["value"]


def _padded(rgb: np.ndarray, n: int) -> np.ndarray:
    """``rgb`` cut or padded with white tiles to exactly ``n`` tiles (fixed-size montages)."""
    out = np.full((n, *rgb.shape[1:]), 255, dtype=np.uint8)
    out[: min(n, len(rgb))] = rgb[:n]
    return out


class GalleryState(T.HasTraits):
    """Everything the Gallery shows: the image sets, the display settings and the game.

    Drive it from code (tests, tutorials) exactly as the controls do; views only link to it.
    """

    real = T.Any(help="reference flux images (N, C, H, W)")
    generated = T.Any(help="generated flux images (N, C, H, W)")
    training = T.Any(None, allow_none=True, help="training flux images (M, C, H, W) for nearest neighbours")
    bands = T.Tuple(help="band names, bluest first")
    zeropoint = T.Float(22.5, help="AB zeropoint of the flux unit")
    band = T.Unicode("rgb", help='"rgb" for colour composites, or one band name shown in grey')
    stretch = T.Enum(STRETCHES, default_value="lupton", help="display stretch")
    Q = T.Float(8.0, help="Lupton softening")
    stretch_value = T.Float(50.0, help="Lupton linear range, in band-scale units")
    percentile = T.Float(99.5, help="upper limit (percentile of all shown pixels) of the other stretches")
    n_show = T.Int(16, help="galaxies shown per set")
    ncols = T.Int(4, help="columns per panel")
    zoom = T.Int(3, help="screen pixels per image pixel")
    mode = T.Enum(GALLERY_MODES, default_value="compare", help="side by side, or the real-or-fake game")
    seed = T.Int(0, help="seed of the real-or-fake draw and shuffle")
    tiles = T.Tuple(help="(set, index) of each real-or-fake tile, in grid order")
    answer_key = T.Tuple(help='"real" or "generated" for each real-or-fake tile')
    guesses = T.Tuple(help="real-or-fake tiles the player marked as generated")
    revealed = T.Bool(False, help="show the answer key")
    selected = T.Int(-1, help="generated galaxy whose training neighbours are shown (-1: none)")
    n_neighbours = T.Int(4, help="training neighbours shown for a selected galaxy")
    normalise = T.Enum((None, "l2"), default_value=None, allow_none=True,
                       help="distance of nearest_neighbours: flux as is, or unit-L2-norm stamps")
    neighbours = T.Any(None, allow_none=True,
                       help="DataFrame of the selected galaxy's neighbours: index, distance, ratio")
    message = T.Unicode("", help="status line")
    _reference: float | None = None  # median training-to-training NN distance (cached per training set)

    @T.validate("real", "generated")
    def _check_images(self, proposal: dict) -> np.ndarray:
        name = proposal["trait"].name
        return as_images(proposal["value"], name, allow_nan=True)

    @T.validate("training")
    def _check_training(self, proposal: dict) -> np.ndarray | None:
        if proposal["value"] is None:
            return None
        training = as_images(proposal["value"], "training")
        if self.generated is not None and training.shape[1:] != self.generated.shape[1:]:
            raise T.TraitError(f"training: expected stamps shaped like generated {self.generated.shape[1:]}, "
                               f"got {training.shape[1:]}")
        return training

    @T.validate("n_show", "ncols", "zoom", "n_neighbours")
    def _check_positive(self, proposal: dict) -> int:
        return _checked(proposal, proposal["value"] >= 1, "a positive integer")

    @T.validate("percentile")
    def _check_percentile(self, proposal: dict) -> float:
        return _checked(proposal, 0 < proposal["value"] <= 100, "a value in (0, 100]")

    @T.validate("band")
    def _check_band(self, proposal: dict) -> str:
        ok = proposal["value"] == "rgb" or proposal["value"] in self.bands
        return _checked(proposal, ok, f"'rgb' or one of {self.bands}")

    @T.validate("selected")
    def _check_selected(self, proposal: dict) -> int:
        n = 0 if self.generated is None else len(self.generated)
        return _checked(proposal, -1 <= proposal["value"] < n, f"-1 or a generated galaxy index below {n}")

    # -- display ------------------------------------------------------------------------------

    def _stretch(self) -> dict:
        return {"stretch": self.stretch, "Q": self.Q, "stretch_value": self.stretch_value,
                "percentile": self.percentile, "zeropoint": self.zeropoint}

    def composite(self, images: np.ndarray) -> np.ndarray:
        """Tiles ``(N, H, W, 3)`` of ``images`` with the current band and stretch settings."""
        return _composite(images, self.bands, self.band, **self._stretch())

    def rgb(self, which: str) -> np.ndarray:
        """Tiles ``(n, H, W, 3)`` of ``"real"``, ``"generated"`` (first ``n_show`` of each) or
        ``"real_or_fake"`` (the shuffled grid), stretched together so they share the limits."""
        if which not in ("real", "generated", "real_or_fake"):
            raise ValueError(f"which: expected 'real', 'generated' or 'real_or_fake', got {which!r}")
        real, generated = self.real[: self.n_show], self.generated[: self.n_show]
        if which == "real_or_fake":
            return self.composite(np.stack([getattr(self, s)[i] for s, i in self.tiles]))
        both = self.composite(np.concatenate([real, generated]))
        return both[: len(real)] if which == "real" else both[len(real):]

    def frames(self, which: str) -> list[tuple[int, int, int] | None]:
        """Frame colour per tile of a panel: the selected galaxy; guesses, or the answer key."""
        if which == "real_or_fake":
            if self.revealed:
                return [REAL_COLOUR if a == "real" else GENERATED_COLOUR for a in self.answer_key]
            return [GUESS_COLOUR if t in self.guesses else None for t in range(len(self.tiles))]
        n = min(self.n_show, len(getattr(self, which)))
        return [SELECTED_COLOUR if which == "generated" and i == self.selected else None for i in range(n)]

    def panel_png(self, which: str) -> bytes:
        """The panel ``which`` (see :meth:`rgb`) as PNG bytes (what the view displays)."""
        return _png(_mosaic(self.rgb(which), self.ncols, self.zoom, frames=self.frames(which)))

    # -- real or fake -------------------------------------------------------------------------

    @T.observe("real", "generated", "n_show", "seed")
    def _deal(self, change: dict | None = None) -> None:
        """Draw up to ``n_show`` galaxies of each set (seeded) and shuffle them into one grid."""
        if self.real is None or self.generated is None:
            return
        rng = np.random.default_rng(self.seed)
        picks = [(s, int(i)) for s in ("real", "generated")
                 for i in np.sort(rng.choice(len(getattr(self, s)), min(self.n_show, len(getattr(self, s))),
                                             replace=False))]
        tiles = tuple(picks[j] for j in rng.permutation(len(picks)))
        with self.hold_trait_notifications():
            self.guesses, self.revealed, self.message = (), False, ""
            self.tiles, self.answer_key = tiles, tuple(s for s, _ in tiles)

    def shuffle(self, seed: int | None = None) -> None:
        """Deal a new real-or-fake grid (next seed by default); hides the answers, clears guesses."""
        self.seed = self.seed + 1 if seed is None else seed

    def reveal(self) -> None:
        """Show the answer key (coloured frames) and the player's score."""
        self.revealed = True

    def toggle_guess(self, tile: int) -> None:
        """Mark (or unmark) real-or-fake tile ``tile`` as generated."""
        if not 0 <= tile < len(self.tiles):
            raise ValueError(f"tile: expected 0 <= tile < {len(self.tiles)}, got {tile}")
        guesses = set(self.guesses) ^ {tile}
        self.guesses = tuple(sorted(guesses))

    def score(self) -> dict[str, int]:
        """Tiles judged right (marked if and only if generated), out of all tiles."""
        right = sum((t in self.guesses) == (a == "generated") for t, a in enumerate(self.answer_key))
        return {"correct": int(right), "total": len(self.answer_key)}

    @T.observe("revealed", "guesses")
    def _report_score(self, change: dict) -> None:
        if self.revealed:
            s = self.score()
            self.message = (f"{s['correct']} of {s['total']} tiles right (marked if generated); "
                            "blue frames: real, orange: generated")

    def click(self, which: str, tile: int) -> None:
        """What a click on tile ``tile`` of panel ``which`` does: select a generated galaxy, or in the
        game mark the tile as generated (before the reveal) / select it (after)."""
        if which == "generated":
            self.selected = tile
        elif which == "real_or_fake":
            if not self.revealed:
                self.toggle_guess(tile)
            elif self.answer_key[tile] == "generated":
                self.selected = self.tiles[tile][1]
            else:
                self.message = "that one is real; click a generated (orange) galaxy for its neighbours"

    # -- nearest neighbours -------------------------------------------------------------------

    @T.observe("selected", "training", "n_neighbours", "normalise")
    def _find_neighbours(self, change: dict | None = None) -> None:
        if change is not None and change["name"] in ("training", "normalise"):
            self._reference = None
        if self.selected < 0:
            self.neighbours = None
            return
        if self.training is None:
            self.neighbours = None
            self.message = "pass training=... to see the nearest training galaxies"
            return
        from ..metrics.structural import nearest_neighbours, training_nn_distances

        k = min(self.n_neighbours, len(self.training))
        nn = nearest_neighbours(self.generated[self.selected: self.selected + 1], self.training, k=k,
                                normalise=self.normalise, reference=None, progress=False)
        if nn["index_1"].iloc[0] < 0:
            self.neighbours = pd.DataFrame({"index": [], "distance": [], "ratio": []})
            self.message = f"generated galaxy {self.selected} has NaN pixels: no neighbours"
            return
        if self._reference is None:  # the scale of "near": training galaxies among themselves
            self._reference = np.nan if len(self.training) < 2 else float(training_nn_distances(
                self.training, n=100, normalise=self.normalise, progress=False)["distance"].median())
        distance = np.array([nn[f"distance_{j + 1}"].iloc[0] for j in range(k)])
        self.neighbours = pd.DataFrame({
            "index": [int(nn[f"index_{j + 1}"].iloc[0]) for j in range(k)],
            "distance": distance,
            "ratio": distance / self._reference,
        })
        self.message = (f"generated galaxy {self.selected}: nearest training galaxy at "
                        f"{self.neighbours['ratio'].iloc[0]:.2f} x the typical training-to-training distance")

    def neighbours_png(self) -> bytes | None:
        """The selected galaxy (framed) followed by its training neighbours, as PNG; None if none."""
        if self.neighbours is None:
            return None
        images = np.concatenate([self.generated[self.selected: self.selected + 1],
                                 self.training[self.neighbours["index"].to_numpy(int)]])
        frames = [GENERATED_COLOUR] + [None] * len(self.neighbours)
        return _png(_mosaic(self.composite(images), len(images), self.zoom, frames=frames))


def _overlay(image: W.Image, n: int, ncols: int, tile: tuple[int, int], gap: int,
             on_click: Callable[[int], None], tip: str) -> tuple[W.GridBox, list[W.Button]]:
    """``image`` (a mosaic) under a grid of transparent buttons, one over each tile.

    Clicking a galaxy clicks its button (an ``ipywidgets.Image`` itself has no click event). The
    CSS grid has the mosaic's geometry: columns and rows of the tile size, ``gap`` apart.
    """
    th, tw = tile
    rows = int(np.ceil(n / ncols))
    width, height = ncols * (tw + gap) - gap, rows * (th + gap) - gap
    # grid_area only: ipywidgets applies layout keys in order, and an unset grid_area after
    # grid_row/grid_column removes both in the browser (the tiles then stack in one column)
    image.layout = W.Layout(grid_area=f"1 / 1 / {rows + 1} / {ncols + 1}",
                            width=f"{width}px", height=f"{height}px", margin="0")
    buttons = []
    for i in range(n):
        r, c = divmod(i, ncols)
        button = W.Button(tooltip=f"{tip} {i}", layout=W.Layout(
            grid_area=f"{r + 1} / {c + 1} / {r + 2} / {c + 2}", width=f"{tw}px", height=f"{th}px",
            margin="0", padding="0"))
        button.style.button_color = "transparent"
        button.on_click(lambda _, i=i: on_click(i))
        buttons.append(button)
    grid = W.GridBox([image, *buttons], layout=W.Layout(
        grid_template_columns=f"repeat({ncols}, {tw}px)", grid_template_rows=f"repeat({rows}, {th}px)",
        grid_gap=f"{gap}px", width=f"{width}px"))
    return grid, buttons


class GalleryView(W.VBox):
    """ipywidgets view of a :class:`GalleryState`: controls linked to it and the image panels.

    Clicking a tile clicks a transparent button laid over it (``generated_buttons``,
    ``game_buttons``).
    """

    def __init__(self, state: GalleryState, **kwargs: Any) -> None:
        self.state = state
        self.mode = W.ToggleButtons(options=[("real | generated", "compare"),
                                             ("real or fake?", "real_or_fake")], description="mode")
        self.band = W.Dropdown(options=("rgb", *state.bands), description="band")
        self.stretch = W.Dropdown(options=STRETCHES, description="stretch")
        self.Q = W.FloatLogSlider(min=-1, max=2, step=0.05, description="Q")
        self.stretch_value = W.FloatLogSlider(min=0, max=3, step=0.05, description="range")
        self.percentile = W.FloatSlider(min=90, max=100, step=0.1, description="percentile")
        self.n_show = W.IntSlider(min=1, max=max(1, min(len(state.real), len(state.generated), 64)),
                                  description="galaxies")
        self._links = [W.link((state, name), (getattr(self, name), "value"))
                       for name in ("mode", "band", "stretch", "Q", "stretch_value", "percentile", "n_show")]
        self.shuffle_button = W.Button(description="shuffle", icon="random")
        self.reveal_button = W.Button(description="reveal", icon="eye", button_style="warning")
        self.shuffle_button.on_click(lambda _: state.shuffle())
        self.reveal_button.on_click(lambda _: state.reveal())
        self.real_image = W.Image(format="png")
        self.generated_image = W.Image(format="png")
        self.game_image = W.Image(format="png")
        self.neighbours_image = W.Image(format="png")
        self.neighbours_table = W.HTML()
        self.status = W.HTML()
        self.compare_panels = W.HBox(layout=W.Layout(flex_flow="row wrap"))  # narrow screens: stacked
        self.game_panel = W.VBox()
        self.neighbours_panel = W.VBox([W.HTML("<b>selected generated galaxy and its nearest training "
                                               "galaxies</b>"), self.neighbours_image,
                                       self.neighbours_table])
        controls = W.VBox([W.HBox([self.mode, self.band, self.stretch]),
                           W.HBox([self.Q, self.stretch_value, self.percentile, self.n_show])])
        super().__init__([controls, self.compare_panels, self.game_panel, self.status,
                          self.neighbours_panel], **kwargs)
        state.observe(self._redraw, names=["real", "generated", "bands", "zeropoint", "band", "stretch", "Q",
                                           "stretch_value", "percentile", "guesses", "revealed", "selected"])
        state.observe(self._relayout, names=["n_show", "ncols", "zoom", "mode", "tiles"])
        state.observe(self._show_neighbours, names=["neighbours"])
        state.observe(self._show_message, names=["message"])
        self._relayout()
        self._show_neighbours()

    def _tile(self) -> tuple[int, int]:
        h, w = self.state.real.shape[-2:]
        return h * self.state.zoom, w * self.state.zoom

    def _relayout(self, change: dict | None = None) -> None:
        """Rebuild the panels (the number of tiles and their size changed)."""
        s = self.state
        gap, tile = 2, self._tile()
        n_gen = min(s.n_show, len(s.generated))
        self.generated_grid, self.generated_buttons = _overlay(
            self.generated_image, n_gen, s.ncols, tile, gap, lambda i: s.click("generated", i),
            "nearest training galaxies of generated galaxy")
        self.real_image.layout = W.Layout()
        self.compare_panels.children = [W.VBox([W.HTML("<b>real</b>"), self.real_image]),
                                        W.VBox([W.HTML("<b>generated</b> (click one for its nearest training "
                                                       "galaxies)"), self.generated_grid])]
        self.game_grid, self.game_buttons = _overlay(
            self.game_image, len(s.tiles), 2 * s.ncols, tile, gap, lambda i: s.click("real_or_fake", i),
            "mark as generated: tile")
        self.game_panel.children = [
            W.HTML("<b>Real or fake?</b> Click the galaxies you think are generated, then reveal."),
            W.HBox([self.shuffle_button, self.reveal_button]), self.game_grid]
        game = s.mode == "real_or_fake"
        self.compare_panels.layout.display = "none" if game else ""
        self.game_panel.layout.display = "" if game else "none"
        self._redraw()

    def _redraw(self, change: dict | None = None) -> None:
        if self.state.mode == "real_or_fake":
            self.game_image.value = _png(_mosaic(self.state.rgb("real_or_fake"), 2 * self.state.ncols,
                                                 self.state.zoom, frames=self.state.frames("real_or_fake")))
        else:
            self.real_image.value = self.state.panel_png("real")
            self.generated_image.value = self.state.panel_png("generated")
        self._show_neighbours()

    def _show_neighbours(self, change: dict | None = None) -> None:
        png = self.state.neighbours_png()
        self.neighbours_panel.layout.display = "none" if png is None else ""
        if png is not None:
            self.neighbours_image.value = png
            self.neighbours_table.value = self.state.neighbours.to_html(index=False,
                                                                        float_format="{:.3g}".format)

    def _show_message(self, change: dict | None = None) -> None:
        self.status.value = self.state.message


class Gallery:
    """Real and generated galaxies side by side, a "real or fake?" game and nearest neighbours.

    Parameters
    ----------
    real, generated : Survey or array (N, C, H, W)
        Flux images of reference and generated galaxies (NaN pixels are shown as zero flux).
    bands : sequence of str, optional
        Band names; default the Survey's.
    training : Survey or array (M, C, H, W), optional
        Training images: clicking a generated galaxy then shows its nearest training galaxies in
        pixel space (:func:`galwidgets.metrics.nearest_neighbours`) and their distance in units
        of the median training-to-training nearest-neighbour distance (100 training galaxies).
    **settings
        Initial :class:`GalleryState` settings (``stretch``, ``band``, ``percentile``, ``Q``,
        ``n_show``, ``mode="real_or_fake"``, ``seed``, ``n_neighbours``, ``normalise``, ...).
        ``zoom`` (screen pixels per image pixel) defaults to the largest of 1, 2, 3 that keeps a
        tile within 160 screen pixels: 3 for 32-pixel stamps, 2 for 64, 1 for 128.

    Attributes
    ----------
    state : GalleryState
        The state every control links to (``mode``, ``tiles``, ``answer_key``, ``guesses``,
        ``revealed``, ``selected``, ``neighbours``; actions ``shuffle``, ``reveal``, ``click``).
    view : GalleryView
        The widget shown when the Gallery is the last expression of a cell.

    Examples
    --------
    >>> g = gw.widgets.Gallery(real, generated, training=train, mode="real_or_fake", seed=1)
    >>> g.state.toggle_guess(3); g.state.reveal(); g.state.score()
    """

    def __init__(self, real: Any, generated: Any, bands: Any = None, training: Any = None,
                 **settings: Any) -> None:
        bands = bands or getattr(real, "bands", None) or getattr(generated, "bands", None)
        real_images = as_images(real, "real", allow_nan=True)
        generated_images = as_images(generated, "generated", allow_nan=True,
                                     channels=real_images.shape[1])
        if generated_images.shape[2:] != real_images.shape[2:]:
            raise ValueError(f"generated: expected stamps of {real_images.shape[2:]} pixels like real, "
                             f"got {generated_images.shape[2:]}")
        bands = as_bands(bands or ("g", "r", "z")[: real_images.shape[1]], real_images.shape[1])
        settings.setdefault("zeropoint", getattr(real, "zeropoint", 22.5))
        # tiles of at most 160 screen pixels, so that both 4-column panels fit a notebook side by side
        settings.setdefault("zoom", max(1, min(3, 160 // real_images.shape[-1])))
        self.state = GalleryState(real=real_images, generated=generated_images, bands=bands)
        if training is not None:
            training = as_images(training, "training")
            if training.shape[1:] != generated_images.shape[1:]:
                raise ValueError(f"training: expected stamps shaped like generated "
                                 f"{generated_images.shape[1:]}, got {training.shape[1:]}")
            self.state.training = training
        for name, value in settings.items():  # after the images: validators see them
            if not self.state.has_trait(name):
                raise TypeError(f"{name}: not a Gallery setting; expected one of "
                                f"{sorted(self.state.trait_names())}")
            setattr(self.state, name, value)
        self.view = GalleryView(self.state)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.view._repr_mimebundle_(**kwargs)
