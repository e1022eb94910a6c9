"""Deconvolution viewer: observation, posterior mean, samples, spread and the variance-ratio map.

Shows a :class:`galwidgets.diffusion.DeconvolutionResult` (Diffusion Posterior Sampling with a
diffusion prior, :func:`galwidgets.diffusion.deconvolve`) panel by panel with one shared stretch,
on one sky (every panel placed in arcsec about the stamp centre, so an observation on another
pixel grid than the model's covers the same field), the aperture of the variance-ratio metric
(Spagnoletti et al. 2024: the posterior-to-prior variance in a central aperture, ~0 data-driven,
~1 prior-driven) drawn as a circle, and a slider through the posterior samples.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import ipywidgets as W
import numpy as np
import traitlets as T

from .._validation import as_bands, as_real_array
from ._bokeh import refresh_bokeh
from .gallery import _checked

__all__ = ["DECONVOLUTION_PANELS", "DeconvolutionState", "DeconvolutionView", "DeconvolutionViewer"]

#: Panels in display order. Flux panels share one stretch: the posterior mean, sample and spread
#: the limits of the mean; the observation those of the re-convolved mean (same units and grid).
DECONVOLUTION_PANELS = ("observation", "posterior mean", "posterior sample", "posterior std",
                        "variance ratio", "residual")
_FLUX_PANELS = ("observation", "posterior mean", "posterior sample", "posterior std")
#: Single-band stretches (astropy.visualization) and the colour of masked (NaN) flux pixels.
BAND_STRETCHES = ("asinh", "log", "sqrt", "linear")
NAN_COLOUR = "#ff00ff"
UNDEFINED_COLOUR = "#9e9e9e"  # NaN in the variance-ratio map (prior variance 0) and the residual (not fitted)
#: Panels each setting affects (the other settings redraw every panel).
_AFFECTS = {"sample": ("posterior sample",), "ratio_max": ("variance ratio",),
            "radius": ("observation", "posterior mean", "posterior sample", "posterior std",
                       "variance ratio")}


def _stretch(name: str) -> Any:
    from astropy import visualization as apviz

    return {"asinh": apviz.AsinhStretch(0.05), "log": apviz.LogStretch(1000), "sqrt": apviz.SqrtStretch(),
            "linear": apviz.LinearStretch()}[name]


class DeconvolutionState(T.HasTraits):
    """Everything the viewer shows: the result, the observation and the display settings."""

    result = T.Any(help="a galwidgets.diffusion.DeconvolutionResult")
    observation = T.Any(None, allow_none=True, help="the observation y (C, H', W'), operator units")
    bands = T.Tuple(help="band names")
    band = T.Unicode(help="band shown")
    stretch = T.Enum(BAND_STRETCHES, default_value="asinh", help="stretch of the flux panels")
    percentile = T.Float(99.5, help="flux panels span 0 to this percentile of the reference image")
    sample = T.Int(0, help="posterior sample shown")
    radius = T.Float(8.0, help="aperture radius of the variance ratio (model pixels)")
    ratio_max = T.Float(1.0, help="top of the variance-ratio colour scale")
    variance_ratio = T.Float(np.nan, help="variance ratio in the aperture, mean over bands")
    variance_ratio_per_band = T.Tuple(help="variance ratio in the aperture, per band")
    message = T.Unicode("", help="status line")
    pixel_scale = T.Float(None, allow_none=True, help="arcsec per model pixel (at the galaxy's distance)")
    obs_pixel_scale = T.Float(None, allow_none=True, help="arcsec per observation pixel")

    @T.validate("result")
    def _check_result(self, proposal: dict) -> Any:
        r = proposal["value"]
        needed = ("samples", "prior", "mean", "std", "variance_ratio_map", "residual")
        if not all(hasattr(r, a) for a in needed):
            raise T.TraitError(f"result: expected a galwidgets DeconvolutionResult, got {type(r).__name__}")
        return r

    @T.validate("observation")
    def _check_observation(self, proposal: dict) -> np.ndarray | None:
        if proposal["value"] is None:
            return None
        y = as_real_array(proposal["value"], "y").astype(np.float64)
        y = y[0] if y.ndim == 4 and len(y) == 1 else y
        if y.ndim != 3 or y.shape != np.shape(self.result.residual):
            raise T.TraitError(f"y: expected the observation shaped like the result's residual "
                               f"{np.shape(self.result.residual)}, got {y.shape}")
        return y

    @T.validate("pixel_scale", "obs_pixel_scale")
    def _check_scale(self, proposal: dict) -> float | None:
        value = proposal["value"]
        return value if value is None else _checked(proposal, np.isfinite(value) and value > 0,
                                                    "a positive number of arcsec per pixel or None")

    @T.validate("band")
    def _check_band(self, proposal: dict) -> str:
        return _checked(proposal, proposal["value"] in self.bands, f"one of {self.bands}")

    @T.validate("percentile")
    def _check_percentile(self, proposal: dict) -> float:
        return _checked(proposal, 50 < proposal["value"] <= 100, "a value in (50, 100]")

    @T.validate("sample")
    def _check_sample(self, proposal: dict) -> int:
        n = len(self.result.samples)
        return _checked(proposal, 0 <= proposal["value"] < n, f"0 <= sample < {n}")

    @T.validate("radius")
    def _check_radius(self, proposal: dict) -> float:
        h, w = self.result.mean.shape[-2:]
        return _checked(proposal, 0 < proposal["value"] <= min(h, w) / 2,
                        f"0 < radius <= {min(h, w) / 2} px (inside the {h}x{w} image)")

    @T.observe("radius", "result")
    def _measure(self, change: dict | None = None) -> None:
        """Variance ratio in the aperture (:func:`galwidgets.metrics.variance_ratio`, the result's
        ``reference`` definition)."""
        from ..metrics.hallucination import variance_ratio

        try:
            per_band = variance_ratio(self.result.samples, self.result.prior, self.radius, per_band=True,
                                      reference=self.result.settings.get("reference", "flux"))
            self.message = ""
        except ValueError as exc:  # e.g. too few prior samples with positive flux to match
            per_band = np.full(len(self.bands), np.nan)
            self.message = f"variance ratio undefined: {exc}"
        with self.hold_trait_notifications():
            self.variance_ratio_per_band = tuple(float(v) for v in per_band)
            self.variance_ratio = float(np.nanmean(per_band)) if np.isfinite(per_band).any() else np.nan

    @property
    def channel(self) -> int:
        """Channel index of the band shown."""
        return self.bands.index(self.band)

    def reference(self, panel: str) -> np.ndarray:
        """The image whose percentiles set the limits of a flux panel (one band)."""
        if panel == "observation":
            return np.asarray(self.result.reconvolved)[self.channel]
        return np.asarray(self.result.mean)[self.channel]

    def limits(self, panel: str) -> tuple[float, float]:
        """(vmin, vmax) of a flux panel: 0 (the sky of background-subtracted images) to the
        ``percentile`` of its :meth:`reference`, the same for the posterior mean, sample and spread
        (so the spread reads against the galaxy), as :func:`galwidgets.viz.rgb_composite` does."""
        values = self.reference(panel)
        values = values[np.isfinite(values)]
        vmax = float(np.percentile(values, self.percentile)) if values.size else 1.0
        return 0.0, vmax if vmax > 0 else 1.0

    def raw(self, panel: str) -> np.ndarray:
        """The band shown of ``panel`` (one of :data:`DECONVOLUTION_PANELS`), in its own units."""
        r, c = self.result, self.channel
        images = {"observation": r.reconvolved if self.observation is None else self.observation,
                  "posterior mean": r.mean, "posterior sample": np.asarray(r.samples)[self.sample],
                  "posterior std": r.std, "variance ratio": r.variance_ratio_map, "residual": r.residual}
        if panel not in images:
            raise ValueError(f"panel: expected one of {DECONVOLUTION_PANELS}, got {panel!r}")
        return np.asarray(images[panel], dtype=np.float64)[c]

    def panel(self, panel: str) -> np.ndarray:
        """What a panel shows: flux panels stretched to [0, 1] with the shared stretch (NaN pixels
        stay NaN), the variance ratio and the residual in their own units. Row 0 is the bottom."""
        data = self.raw(panel)
        if panel not in _FLUX_PANELS:
            return data
        from astropy.visualization import ImageNormalize

        vmin, vmax = self.limits(panel)
        norm = ImageNormalize(vmin=vmin, vmax=vmax, stretch=_stretch(self.stretch), clip=True)
        out = np.asarray(norm(np.nan_to_num(data)).filled(0.0), dtype=np.float64)
        return np.where(np.isfinite(data), out, np.nan)

    @property
    def sky_unit(self) -> str:
        """Unit of :meth:`extent`: ``"arcsec"`` when a pixel scale is known, else ``"model px"``."""
        return "model px" if self.pixel_scale is None and self.obs_pixel_scale is None else "arcsec"

    def pixel_scales(self, panel: str) -> tuple[float, float]:
        """``(x, y)`` size of one pixel of ``panel`` on the sky, in :attr:`sky_unit`.

        Panels on the model grid use ``pixel_scale``; the observation and the residual, on the
        observation's grid, use ``obs_pixel_scale``. A scale not given follows from the other on
        the assumption that observation and model stamp cover the same field, as the default
        ``obs_shape`` of :class:`~galwidgets.diffusion.operators.PSFOperator` does; with neither
        given, lengths are in model pixels.
        """
        if panel not in DECONVOLUTION_PANELS:
            raise ValueError(f"panel: expected one of {DECONVOLUTION_PANELS}, got {panel!r}")
        model_hw = np.shape(self.result.mean)[-2:]
        obs_hw = np.shape(self.result.residual)[-2:]
        ratio = np.divide(model_hw, obs_hw)  # model pixels per observation pixel, (y, x)
        if self.pixel_scale is not None:
            model = np.full(2, self.pixel_scale)
        elif self.obs_pixel_scale is not None:
            model = self.obs_pixel_scale / ratio
        else:
            model = np.ones(2)
        if panel not in ("observation", "residual"):
            y, x = model
        elif self.obs_pixel_scale is not None:
            y = x = self.obs_pixel_scale
        else:
            y, x = model * ratio
        return float(x), float(y)

    def extent(self, panel: str) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of ``panel`` on the sky in :attr:`sky_unit`, about the
        stamp centre: panels on different pixel grids (observation and model) share one sky."""
        h, w = np.shape(self.raw(panel))
        sx, sy = self.pixel_scales(panel)
        return -w * sx / 2, -h * sy / 2, w * sx / 2, h * sy / 2

    def aperture(self) -> tuple[float, float, float]:
        """``(x, y, radius)`` of the variance-ratio aperture in model pixels (image centre)."""
        h, w = self.result.mean.shape[-2:]
        return (w - 1) / 2, (h - 1) / 2, self.radius

    def title(self, panel: str) -> str:
        """Panel title, with the numbers that go with it."""
        if panel == "observation":
            if self.observation is None:
                return "re-convolved mean (no y given)"
            return f"observation ({self.band})"
        if panel == "posterior sample":
            return f"posterior sample {self.sample + 1} of {len(self.result.samples)}"
        if panel == "variance ratio":
            c = self.channel
            return f"variance ratio: {self.variance_ratio_per_band[c]:.2f} in r < {self.radius:g} px"
        if panel == "residual":
            return f"residual (y - A mean) / σ; χ²ν = {self.result.chi2:.2f}"
        return panel

    def summary(self) -> str:
        """One status line: aperture variance ratio per band and overall, masked pixels."""
        ratios = ", ".join(f"{b} {v:.2f}" for b, v in zip(self.bands, self.variance_ratio_per_band))
        text = (f"variance ratio in the {self.radius:g} px aperture: {self.variance_ratio:.2f} "
                f"({ratios}; ~0 data-driven, ~1 prior-driven)")
        if self.observation is not None:
            masked = int((~np.isfinite(self.observation[self.channel])).sum())
            if masked:
                text += f"; {masked} masked (NaN) pixels shown in magenta"
        return text + (f"; {self.message}" if self.message else "")


def _image(state: DeconvolutionState, panel: str) -> Any:
    """One HoloViews panel on the shared sky (:meth:`DeconvolutionState.extent`, pixel (0, 0) at
    the bottom left) with the aperture circle, except on the residual."""
    import holoviews as hv

    data = state.panel(panel)
    opts = {"flux": dict(cmap="gray", clim=(0.0, 1.0)),
            "variance ratio": dict(cmap="magma", clim=(0.0, state.ratio_max), colorbar=True),
            "residual": dict(cmap="RdBu_r", clim=(-4.0, 4.0), colorbar=True)}
    kind = "flux" if panel in _FLUX_PANELS else panel
    unit = state.sky_unit
    image = hv.Image(np.flipud(data), bounds=state.extent(panel),
                     kdims=[hv.Dimension("x", label=f"x ({unit})"), hv.Dimension("y", label=f"y ({unit})")],
                     vdims=[hv.Dimension("value", label="stretched flux" if kind == "flux" else panel)],
                     label=state.title(panel)).opts(
        **opts[kind], frame_width=210, data_aspect=1, tools=["hover"],
        clipping_colors={"NaN": NAN_COLOUR if kind == "flux" else UNDEFINED_COLOUR},
        xaxis=None, yaxis=None, fontsize={"title": 9})
    if panel == "residual":
        return image
    radius = state.radius * state.pixel_scales("posterior mean")[0]
    circle = hv.Ellipse(0.0, 0.0, 2 * radius).opts(color="#00e5ff", line_width=1.5)
    return hv.Overlay([image, circle], label=state.title(panel))


class DeconvolutionView(W.VBox):
    """ipywidgets view of a :class:`DeconvolutionState`: band, stretch, percentile, sample and
    aperture controls over a live HoloViews/Bokeh layout of :data:`DECONVOLUTION_PANELS`.

    Each panel is a ``DynamicMap`` with its own redraw stream (``streams[panel]``), triggered only
    when a setting it depends on changes, so zooming is kept and a slider move is cheap.
    """

    def __init__(self, state: DeconvolutionState, **kwargs: Any) -> None:
        from ._bokeh import holoviews_widget, load_bokeh

        load_bokeh()
        import holoviews as hv

        self.state = state
        h, w = state.result.mean.shape[-2:]
        self.band = W.Dropdown(options=state.bands, description="band")
        self.stretch = W.Dropdown(options=BAND_STRETCHES, description="stretch")
        self.percentile = W.FloatSlider(min=90, max=100, step=0.1, description="percentile")
        self.sample = W.IntSlider(min=0, max=len(state.result.samples) - 1, description="sample")
        self.radius = W.FloatSlider(min=1, max=min(h, w) / 2, step=0.5, description="aperture r")
        self._links = [W.link((state, n), (getattr(self, n), "value"))
                       for n in ("band", "stretch", "percentile", "sample", "radius")]
        redraw = hv.streams.Stream.define("Redraw", version=0)
        self.streams = {p: redraw() for p in DECONVOLUTION_PANELS}
        self.panels = {p: hv.DynamicMap(lambda version, p=p: _image(self.state, p), streams=[self.streams[p]])
                       for p in DECONVOLUTION_PANELS}
        self.pane, self.plot = holoviews_widget(hv.Layout(list(self.panels.values())).cols(3))
        self.status = W.HTML()
        controls = W.VBox([W.HBox([self.band, self.stretch, self.percentile]),
                           W.HBox([self.sample, self.radius])])
        super().__init__([controls, self.plot, self.status], **kwargs)
        state.observe(self._redraw, names=["band", "stretch", "percentile", "sample", "radius", "ratio_max",
                                           "observation", "result", "pixel_scale", "obs_pixel_scale"])
        state.observe(self._show_status, names=["variance_ratio", "variance_ratio_per_band", "message",
                                                "band"])
        self._show_status()

    def _redraw(self, change: dict) -> None:
        for panel in _AFFECTS.get(change["name"], DECONVOLUTION_PANELS):
            stream = self.streams[panel]
            stream.event(version=stream.version + 1)

    def _show_status(self, change: dict | None = None) -> None:
        self.status.value = self.state.summary()


def _operator_scales(operator: Any, obs_shape: tuple[int, ...]) -> dict[str, float]:
    """``pixel_scale`` and ``obs_pixel_scale`` of a forward operator (none without pixel scales)."""
    if operator is None:
        return {}
    if not all(hasattr(operator, a) for a in ("effective_pixel_scale", "obs_pixel_scale")):
        raise TypeError(f"operator: expected the PSFOperator of the deconvolution (with "
                        f"effective_pixel_scale and obs_pixel_scale), got {type(operator).__name__}")
    shape = getattr(operator, "obs_shape", None)
    if shape is not None and tuple(shape) != tuple(obs_shape):
        raise ValueError(f"operator: expected the operator of this result, whose observation is "
                         f"{tuple(obs_shape)} pixels, got one with obs_shape {tuple(shape)}")
    if operator.effective_pixel_scale is None:
        return {}
    return {"pixel_scale": float(operator.effective_pixel_scale),
            "obs_pixel_scale": float(operator.obs_pixel_scale)}


class DeconvolutionViewer:
    """Observation, posterior mean, a posterior sample, spread, variance-ratio map and residual of
    a deconvolution, side by side on one sky with one shared stretch and the variance-ratio
    aperture drawn.

    An observation on another pixel grid than the model's (e.g. HSC's 0.168″ pixels against a
    model's) is drawn over the same field as the model panels: each panel spans its pixels times
    its pixel scale, centred on the stamp centre (:meth:`DeconvolutionState.extent`).

    Parameters
    ----------
    result : DeconvolutionResult
        From :func:`galwidgets.diffusion.deconvolve`.
    y : array (C, H', W'), optional
        The observation that was deconvolved (operator units); without it the first panel shows
        the re-convolved posterior mean. NaN pixels (masked) are shown in magenta.
    bands : sequence of str, optional
        Band names; default ``("g", "r", "z")`` for 3 bands, else ``b0, b1, ...``.
    operator : PSFOperator, optional
        The forward operator of the deconvolution: its ``effective_pixel_scale`` and
        ``obs_pixel_scale`` (arcsec per model and observation pixel) place the panels on the sky.
        Without it (or without pixel scales) the observation is taken to cover the model stamp's
        field, as with the operator's default ``obs_shape``.
    **settings
        Initial :class:`DeconvolutionState` settings (``band``, ``stretch``, ``percentile``,
        ``sample``, ``radius`` (default the result's), ``ratio_max``, ``pixel_scale``,
        ``obs_pixel_scale`` (default the operator's)).

    Attributes
    ----------
    state : DeconvolutionState
        Settings and derived numbers (``panel(name)``, ``limits``, ``variance_ratio``, ...).
    view : DeconvolutionView
        The widget shown when the viewer is the last expression of a cell, built on first use.
    """

    def __init__(self, result: Any, y: Any = None, bands: Any = None, *, operator: Any = None,
                 **settings: Any) -> None:
        from ..diffusion.deconvolution import DeconvolutionResult

        if not isinstance(result, DeconvolutionResult):
            raise TypeError(f"result: expected a DeconvolutionResult (gw.diffusion.deconvolve), "
                            f"got {type(result).__name__}")
        n_bands = len(result.mean)
        default = ("g", "r", "z") if n_bands == 3 else tuple(f"b{i}" for i in range(n_bands))
        bands = as_bands(bands or default, n_bands)
        state = DeconvolutionState(result=result, bands=bands)
        settings.setdefault("radius", float(result.settings.get("radius", 8.0)))
        settings.setdefault("band", "r" if "r" in bands else bands[len(bands) // 2])
        for name, value in _operator_scales(operator, np.shape(result.residual)[-2:]).items():
            settings.setdefault(name, value)
        if y is not None:
            state.observation = y
        for name, value in settings.items():
            if not state.has_trait(name):
                raise TypeError(f"{name}: not a DeconvolutionViewer setting")
            setattr(state, name, value)
        state._measure()
        self.state = state

    @cached_property
    def view(self) -> DeconvolutionView:
        """The widget (built on first use: when shown, or asked for)."""
        return DeconvolutionView(self.state)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return refresh_bokeh(self.view)._repr_mimebundle_(**kwargs)
