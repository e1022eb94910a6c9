"""InpaintingDemo: occlude a galaxy with a satellite trail or a rectangle, inpaint it with a diffusion prior.

The experiment of Smith et al. (2022, MNRAS 511, 1808, Fig. 6): a straight trail of chosen angle,
width, brightness and dashes (:func:`galwidgets.data.satellite_trail`) crosses a galaxy; the
occluded pixels are filled by :func:`galwidgets.diffusion.inpaint_flux` (RePaint-style replacement,
Lugmayr et al. 2022), several draws at once. The widget shows the truth (the galaxy before the
trail), the observation, the masked image, the mean of the draws, their per-pixel spread and the
error of the mean against the truth, and scores the fill as the paper does: the fraction of
occluded pixels brighter than 3σ of the sky recovered to within 10 % of their true flux
(:func:`galwidgets.metrics.inpainting_recovery`, Smith et al. 2022's score).

Pixels that are NaN in the input galaxy are unknown too: they join the mask and are inpainted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W
import numpy as np
import traitlets as T

from .._validation import as_bands, as_images
from ..checkpoints import Checkpoint
from ..data.corruptions import satellite_trail
from ..data.noise import sky_noise
from ..data.surveys import Survey
from ..diffusion.inpainting import InpaintResult, inpaint_flux
from ..metrics.recovery import inpainting_recovery
from ..pretrained import as_checkpoint
from ..viz import STRETCHES, rgb_composite
from ._async import launch
from ._bokeh import holoviews_widget, load_bokeh, refresh_bokeh
from .gallery import _mosaic, _png

__all__ = ["InpaintingDemo", "InpaintingDemoState", "InpaintingDemoView"]

#: Traits that define the mask: changing one makes the last result obsolete.
MASK_TRAITS = ("galaxy", "mode", "angle", "width", "brightness", "offset", "dashed", "dash_period",
               "dash_duty", "x0", "y0", "x1", "y1")


class InpaintingDemoState(T.HasTraits):
    """Everything the InpaintingDemo shows; drive it from code exactly as the controls do.

    Pixel coordinates are ``(x, y) = (column, row)`` from the bottom-left corner as displayed;
    the rectangle covers columns ``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1``.
    """

    checkpoint = T.Instance(Checkpoint, help="trained diffusion model (the prior)")
    galaxies = T.Any(help="true flux images (N, C, H, W) before corruption; NaN pixels allowed")
    bands = T.Tuple(help="band names, bluest first")
    zeropoint = T.Float(22.5, help="AB zeropoint of the flux unit")
    sky_sigma = T.Any(help="sky noise per band (C,) of the galaxies")
    galaxy = T.Int(0, help="index of the galaxy inpainted")
    mode = T.Enum(("trail", "rectangle"), default_value="trail", help="what occludes the galaxy")
    angle = T.Float(30.0, help="trail direction, degrees counter-clockwise from +x")
    width = T.Float(3.0, help="trail FWHM in pixels")
    brightness = T.Float(1.0, help="trail peak flux per pixel, every band")
    offset = T.Float(0.0, help="trail distance from the cutout centre, pixels")
    dashed = T.Bool(False, help="dashed trail (a tumbling satellite's glints)")
    dash_period = T.Float(8.0, help="dash period along the trail, pixels")
    dash_duty = T.Float(0.5, help="lit fraction of each dash period")
    x0 = T.Int(0, help="rectangle: first column")
    y0 = T.Int(0, help="rectangle: first row")
    x1 = T.Int(0, help="rectangle: column after the last")
    y1 = T.Int(0, help="rectangle: row after the last")
    n_samples = T.Int(4, help="inpainted draws")
    sampler = T.Enum(("ddim", "ddpm"), default_value="ddim", help="reverse-process sampler")
    steps = T.Int(20, help="reverse steps")
    resample = T.Int(1, help="RePaint resampling U (1: none)")
    seed = T.Int(0, help="seed of the trail's dash phase and of the draws")
    band = T.Int(1, help="band of the spread and error maps")
    result = T.Instance(InpaintResult, allow_none=True, help="the last run, for the current mask")
    scores = T.Dict(help="recovered fractions of the last run (see gw.metrics.inpainting_recovery)")
    busy = T.Bool(False, help="inpainting is running")
    stretch = T.Enum(STRETCHES, default_value="lupton", help="display stretch")
    zoom = T.Int(4, help="screen pixels per image pixel")

    @T.validate("galaxies")
    def _check_galaxies(self, proposal: dict) -> np.ndarray:
        return as_images(proposal["value"], "galaxies", allow_nan=True)

    @T.validate("galaxy", "band", "x0", "x1", "y0", "y1", "n_samples", "steps", "resample", "zoom")
    def _check_range(self, proposal: dict) -> int:
        name, value = proposal["trait"].name, proposal["value"]
        n, c, h, w = self.galaxies.shape if self.galaxies is not None else (1, 1, 1, 1)
        T_max = self.checkpoint.schedule.T if self.checkpoint is not None else 1
        lo, hi = {"galaxy": (0, n - 1), "band": (0, c - 1), "x0": (0, w), "x1": (0, w), "y0": (0, h),
                  "y1": (0, h), "n_samples": (1, 256), "steps": (1, T_max), "resample": (1, 100),
                  "zoom": (1, 64)}[name]
        if not lo <= value <= hi:
            raise T.TraitError(f"{name}: expected an integer in {lo}..{hi}, got {value}")
        return value

    @T.validate("width", "brightness", "dash_period")
    def _check_positive(self, proposal: dict) -> float:
        name, value = proposal["trait"].name, proposal["value"]
        if not (np.isfinite(value) and value > 0):
            raise T.TraitError(f"{name}: expected a finite positive number, got {value!r}")
        return value

    @T.validate("dash_duty")
    def _check_duty(self, proposal: dict) -> float:
        if not 0 < proposal["value"] <= 1:
            raise T.TraitError(f"dash_duty: expected a number in (0, 1], got {proposal['value']!r}")
        return proposal["value"]

    @T.observe(*MASK_TRAITS)
    def _forget_result(self, change: dict) -> None:
        self.result, self.scores = None, {}

    # -- the corrupted galaxy --------------------------------------------------------------------
    def truth(self) -> np.ndarray:
        """The chosen galaxy before corruption, ``(C, H, W)``."""
        return self.galaxies[self.galaxy]

    def _mask_settings(self) -> dict:
        return {name: getattr(self, name) for name in (*MASK_TRAITS, "seed")}

    def observed_and_mask(self, settings: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The observation ``(C, H, W)`` and the occlusion mask ``(H, W)`` (True = to inpaint).

        Trail: the truth plus :func:`~galwidgets.data.satellite_trail` in every band, masked where
        the trail exceeds 1 % of its peak. Rectangle: the truth with the rectangle set to NaN.
        Either way, pixels that are NaN in the truth (any band) are masked too.
        """
        s = settings or self._mask_settings()
        truth = self.galaxies[s["galaxy"]]
        h, w = truth.shape[-2:]
        if s["mode"] == "trail":
            trail, mask = satellite_trail(
                (h, w), angle=s["angle"], width=s["width"], brightness=s["brightness"], offset=s["offset"],
                dash_period=s["dash_period"] if s["dashed"] else None, dash_duty=s["dash_duty"],
                seed=s["seed"])
            observed = truth + trail[None]
        else:
            mask = np.zeros((h, w), dtype=bool)
            mask[s["y0"]:s["y1"], s["x0"]:s["x1"]] = True
            observed = np.where(mask[None], np.float32(np.nan), truth)
        mask = mask | ~np.isfinite(truth).all(axis=0)
        return observed.astype(np.float32), mask

    def masked(self) -> np.ndarray:
        """The observation with the occluded pixels blanked (NaN), ``(C, H, W)``."""
        observed, mask = self.observed_and_mask()
        return np.where(mask[None], np.float32(np.nan), observed)

    # -- inpainting ------------------------------------------------------------------------------
    def _settings(self) -> dict:
        return {**self._mask_settings(), "n_samples": self.n_samples, "sampler": self.sampler,
                "steps": self.steps, "resample": self.resample}

    def _compute(self, settings: dict, callback: Callable[[dict], None] | None = None) -> tuple:
        """Inpaint and score; touches no trait (safe in a worker thread)."""
        observed, mask = self.observed_and_mask(settings)
        if not mask.any():
            raise ValueError("mask: nothing is occluded; make the trail brighter or wider, or the "
                             "rectangle non-empty (x0 < x1 and y0 < y1)")
        result = inpaint_flux(self.checkpoint, observed[None], mask[None, None],
                              n_samples=settings["n_samples"], sampler=settings["sampler"],
                              steps=settings["steps"], resample=settings["resample"], seed=settings["seed"],
                              progress=False, callback=callback)
        truth = self.galaxies[settings["galaxy"]]
        sigma = np.asarray(self.sky_sigma, dtype=np.float64)
        with np.errstate(invalid="ignore"):  # NaN truth pixels are never scored
            n_bright = int((mask & (truth > 3 * sigma[:, None, None])).sum())
        mean = inpainting_recovery(result.mean[:1], truth[None], mask, sigma)
        single = [inpainting_recovery(s[None], truth[None], mask, sigma) for s in result.samples[0]]
        scores = {"recovered_mean": mean, "recovered_samples": float(np.mean(single)),
                  "n_bright": n_bright, "n_occluded": int(mask.sum())}
        return result, scores

    def _apply(self, settings: dict, outcome: tuple) -> None:
        if any(settings[key] != value for key, value in self._mask_settings().items()):
            raise RuntimeError("the trail, rectangle or galaxy changed while inpainting; run again")
        with self.hold_trait_notifications():
            self.result, self.scores = outcome

    def run(self, callback: Callable[[dict], None] | None = None) -> InpaintResult:
        """Inpaint the occluded pixels ``n_samples`` times; set ``result`` and ``scores``.

        ``scores``: ``recovered_mean`` (the mean of the draws) and ``recovered_samples`` (single
        draws, averaged) from :func:`galwidgets.metrics.inpainting_recovery`, with ``n_bright``
        selected pixel-bands of ``n_occluded`` occluded pixels. ``callback`` receives the
        sampler's per-step dicts.
        Raises ``ValueError`` when nothing is occluded.
        """
        settings = self._settings()
        self.busy = True
        try:
            self._apply(settings, self._compute(settings, callback))
        finally:
            self.busy = False
        return self.result

    # -- pictures --------------------------------------------------------------------------------
    def rgb_png(self, images: np.ndarray) -> bytes:
        """Flux images ``(k, C, H, W)`` as one row of RGB composites (PNG); NaN pixels black."""
        with np.errstate(invalid="ignore", divide="ignore"):  # Lupton's colour ratio on blank pixels
            rgb = rgb_composite(images, self.bands, stretch=self.stretch, zeropoint=self.zeropoint)
        return _png(_mosaic(rgb, len(rgb), self.zoom))

    def maps(self) -> dict[str, np.ndarray] | None:
        """``spread`` (std of the draws) and ``error`` (mean - truth) in band ``band``, in sky σ."""
        if self.result is None:
            return None
        sigma = float(self.sky_sigma[self.band])
        with np.errstate(invalid="ignore"):
            error = (self.result.mean[0, self.band] - self.truth()[self.band]) / sigma
        return {"spread": self.result.std[0, self.band] / sigma, "error": error}


class InpaintingDemoView(W.VBox):
    """ipywidgets view of an :class:`InpaintingDemoState`: trail / rectangle controls, the images,
    and the spread and error maps (HoloViews through Panel)."""

    def __init__(self, state: InpaintingDemoState, threaded: bool = True, **kwargs: Any) -> None:
        import holoviews as hv

        load_bokeh()
        self.state, self.threaded = state, threaded
        n, _, h, w = state.galaxies.shape
        T_max = state.checkpoint.schedule.T
        slider = {"continuous_update": False}
        self.galaxy = W.IntSlider(min=0, max=n - 1, description="galaxy")
        self.mode = W.ToggleButtons(options=("trail", "rectangle"), description="occlusion")
        self.angle = W.FloatSlider(min=0, max=180, step=1, description="angle (°)", **slider)
        self.width = W.FloatSlider(min=0.5, max=max(10.0, state.width), step=0.1, description="width (px)",
                                   **slider)
        self.brightness = W.FloatLogSlider(min=-2, max=1.5, step=0.05, description="brightness", **slider)
        self.offset = W.FloatSlider(min=-h / 2, max=h / 2, step=0.5, description="offset (px)", **slider)
        self.dashed = W.Checkbox(description="dashed")
        self.dash_period = W.FloatSlider(min=2, max=max(w, 2), step=0.5, description="period (px)",
                                         **slider)
        self.dash_duty = W.FloatSlider(min=0.05, max=1.0, step=0.05, description="duty", **slider)
        self.x0 = W.IntSlider(min=0, max=w, description="x0", **slider)
        self.x1 = W.IntSlider(min=0, max=w, description="x1", **slider)
        self.y0 = W.IntSlider(min=0, max=h, description="y0", **slider)
        self.y1 = W.IntSlider(min=0, max=h, description="y1", **slider)
        self.n_samples = W.IntSlider(min=1, max=32, description="draws")
        self.sampler = W.ToggleButtons(options=("ddim", "ddpm"), description="sampler")
        self.steps = W.IntSlider(min=1, max=T_max, description="steps")
        self.resample = W.IntSlider(min=1, max=10, description="resample")
        self.seed = W.IntText(description="seed")
        self.band = W.Dropdown(options=[(b, i) for i, b in enumerate(state.bands)], description="map band")
        names = ("galaxy", "mode", "angle", "width", "brightness", "offset", "dashed", "dash_period",
                 "dash_duty", "x0", "x1", "y0", "y1", "n_samples", "sampler", "steps", "resample", "seed",
                 "band")
        self._links = [W.link((state, name), (getattr(self, name), "value")) for name in names]
        self.run_button = W.Button(description="inpaint", icon="paint-brush", button_style="primary")
        self.run_button.on_click(lambda _: self.run())
        self.progress = W.IntProgress(value=0, min=0, max=1, description="inpainting")
        self.status = W.HTML()
        self.scores = W.HTML()
        self.input_images = W.Image(format="png")
        self.mean_image = W.Image(format="png")
        self.samples_image = W.Image(format="png")

        blank = np.zeros((h, w))
        self._maps = hv.streams.Pipe(data={"spread": blank, "error": blank})
        opts = {"width": 300, "height": 260, "colorbar": True, "tools": ["hover"], "xlabel": "x (px)",
                "ylabel": "y (px)"}

        def image(which: str, label: str, cmap: str, symmetric: bool):
            def draw(data: dict):
                # hv.Image's first row is the top: flip so that row 0 is at the bottom, as displayed
                return hv.Image(np.flipud(data[which]), bounds=(0, 0, w, h), vdims=[label]).opts(
                    cmap=cmap, symmetric=symmetric, title=label, **opts)
            return hv.DynamicMap(draw, streams=[self._maps]).opts(framewise=True)

        self.maps_pane, self.maps_plot = holoviews_widget(
            image("spread", "spread of the draws (sky σ)", "viridis", False)
            + image("error", "mean − truth (sky σ)", "RdBu_r", True))

        self._trail_box = W.VBox([self.angle, self.width, self.brightness, self.offset,
                                  W.HBox([self.dashed, self.dash_period, self.dash_duty])])
        self._rectangle_box = W.VBox([W.HBox([self.x0, self.x1]), W.HBox([self.y0, self.y1])])
        controls = W.VBox([
            self.galaxy, self.mode, self._trail_box, self._rectangle_box,
            W.HBox([self.n_samples, self.steps]), W.HBox([self.sampler, self.resample]),
            W.HBox([self.seed, self.run_button, self.progress]), self.status,
        ])
        pictures = W.VBox([
            W.HTML("<b>truth | observed | masked</b>"), self.input_images,
            W.HTML("<b>inpainted mean</b>"), self.mean_image, self.scores,
            W.HTML("<b>draws</b>"), self.samples_image,
        ])
        super().__init__([W.HBox([controls, pictures]), W.HBox([self.band]), self.maps_plot], **kwargs)
        state.observe(self._on_input, names=[*MASK_TRAITS, "seed", "stretch", "zoom"])
        state.observe(self._on_result, names=["result", "scores", "band", "stretch", "zoom"])
        state.observe(self._on_controls, names=["busy", "mode", "dashed"])
        self._on_input()
        self._on_result()
        self._on_controls()

    def _on_input(self, change: dict | None = None) -> None:
        state = self.state
        self.input_images.value = state.rgb_png(np.stack([state.truth(), state.observed_and_mask()[0],
                                                          state.masked()]))

    def _on_result(self, change: dict | None = None) -> None:
        state, result = self.state, self.state.result
        h, w = state.galaxies.shape[-2:]
        if result is None:
            blank = _png(np.full((h * state.zoom, w * state.zoom, 3), 255, np.uint8))
            self.mean_image.value = self.samples_image.value = blank
            self.scores.value = "<i>not inpainted yet</i>"
            self._maps.send({"spread": np.zeros((h, w)), "error": np.zeros((h, w))})
            return
        self.mean_image.value = state.rgb_png(result.mean)
        self.samples_image.value = state.rgb_png(result.samples[0])
        s = state.scores
        self.scores.value = (
            f"recovered to within 10 %: <b>{s['recovered_mean']:.0%}</b> (mean), "
            f"{s['recovered_samples']:.0%} (single draws) of {s['n_bright']} occluded pixel-bands "
            f"brighter than 3σ of the sky; {s['n_occluded']} pixels occluded")
        self._maps.send(state.maps())

    def _on_controls(self, change: dict | None = None) -> None:
        state = self.state
        self.run_button.disabled = state.busy
        self.run_button.description = "inpainting…" if state.busy else "inpaint"
        self._trail_box.layout.display = None if state.mode == "trail" else "none"
        self._rectangle_box.layout.display = None if state.mode == "rectangle" else "none"
        self.dash_period.disabled = self.dash_duty.disabled = not state.dashed

    def run(self) -> None:
        """What the inpaint button does: inpaint (in a thread in a kernel), then show the result."""
        state = self.state
        settings = state._settings()
        launch(state, lambda callback: state._compute(settings, callback),
               lambda outcome: state._apply(settings, outcome), self.progress, self.status,
               settings["steps"] * settings["resample"], self.threaded)


class InpaintingDemo:
    """Occlude a galaxy with a satellite trail or a rectangle and inpaint it with a diffusion prior.

    Parameters
    ----------
    checkpoint : Checkpoint, path or str
        A trained diffusion model (file, shipped name such as ``"desi-tiny"``, or Checkpoint).
    galaxies : Survey or array (N, C, H, W), optional
        True galaxies (before corruption) in the checkpoint's bands and size; NaN pixels allowed
        (they are inpainted too). Default ``simulate_survey(4, size=checkpoint.size, seed=seed)``.
    seed : int
        Seed of the default galaxies and the initial seed of the draws.
    threaded : bool
        Inpaint in a worker thread when in a kernel.
    **settings
        Initial :class:`InpaintingDemoState` settings (``angle``, ``width``, ``brightness``,
        ``mode``, ``n_samples``, ``steps``, ...). The rectangle defaults to the central quarter.

    Attributes
    ----------
    state : InpaintingDemoState
    view : InpaintingDemoView

    Examples
    --------
    >>> demo = gw.widgets.InpaintingDemo("desi-tiny")
    >>> demo.state.angle = 60; demo.state.run(); demo.state.scores["recovered_mean"]
    """

    def __init__(self, checkpoint: Any, galaxies: Any = None, seed: int = 0, threaded: bool = True,
                 **settings: Any) -> None:
        ckpt = as_checkpoint(checkpoint)
        if ckpt.schedule is None:
            raise ValueError(f"checkpoint: expected a diffusion model with a noise schedule, got "
                             f"{type(ckpt.model).__name__} (schedule None)")
        if galaxies is None:
            from ..data.simulate import simulate_survey

            galaxies = simulate_survey(4, size=ckpt.size, bands=ckpt.bands, pixel_scale=ckpt.pixel_scale,
                                       zeropoint=ckpt.zeropoint, seed=seed, progress=False)
        flux = as_images(galaxies, "galaxies", allow_nan=True, channels=len(ckpt.bands))
        if flux.shape[-2:] != (ckpt.size, ckpt.size):
            raise ValueError(f"galaxies: expected {ckpt.size}x{ckpt.size} cutouts (the checkpoint's size), "
                             f"got {flux.shape[-2]}x{flux.shape[-1]}")
        if isinstance(galaxies, Survey):
            bands = as_bands(galaxies.bands, flux.shape[1])
            if bands != ckpt.bands:
                raise ValueError(f"galaxies: expected bands {ckpt.bands} (the checkpoint's), got {bands}")
        h, w = flux.shape[-2:]
        for name, value in (("x0", w // 4), ("x1", w - w // 4), ("y0", h // 4), ("y1", h - h // 4),
                            ("band", ckpt.bands.index("r") if "r" in ckpt.bands else len(ckpt.bands) // 2),
                            ("steps", min(20, ckpt.schedule.T)), ("seed", seed)):
            settings.setdefault(name, value)
        try:
            self.state = InpaintingDemoState(
                checkpoint=ckpt, galaxies=flux, bands=ckpt.bands, zeropoint=ckpt.zeropoint,
                sky_sigma=sky_noise(flux).astype(np.float32), **settings)
        except T.TraitError as exc:  # the public error type for bad arguments
            raise ValueError(str(exc)) from None
        self.view = InpaintingDemoView(self.state, threaded=threaded)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return refresh_bokeh(self.view)._repr_mimebundle_(**kwargs)
