"""RedshiftExplorer: galaxies drawn from a redshift-conditioned model, their sizes and surface brightness.

A redshift slider and a guidance-scale slider set the condition of the draws (classifier-free
guidance, Ho & Salimans 2022: ``ε̂ = ε(x, ∅) + w (ε(x, z) - ε(x, ∅))``). Every draw is measured and
added to a running table, plotted against redshift next to the mock survey it should imitate:
half-light radius (arcsec) and mean surface brightness within it. A model that has learned the
redshift dependence should follow the survey's trends: angular sizes shrink with the angular
diameter distance and surface brightness dims as ``(1 + z)^-4`` (Tolman dimming).

The survey's galaxies are **measured the same way** as the generated ones, from their pixels; the
truth columns of the simulation (``r_half_arcsec``, ``mag_r_true``) are intrinsic, before PSF
blurring and over the whole profile, so they would not be a like-for-like comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import traitlets as T

from .._validation import as_images, band_index, check_positive_int
from ..checkpoints import Checkpoint
from ..data.surveys import Survey
from ..metrics.photometry import photometry
from ..viz import STRETCHES, rgb_composite
from ._async import as_checkpoint, launch
from ._bokeh import holoviews_widget, load_bokeh, refresh_bokeh
from .gallery import _mosaic, _png

__all__ = ["RedshiftExplorer", "RedshiftExplorerState", "RedshiftExplorerView", "size_and_surface_brightness"]

#: Columns of :attr:`RedshiftExplorerState.history`.
HISTORY_COLUMNS = ("redshift", "guidance", "seed", "index", "r_half", "mag", "mu_e", "flag")


# -- measurement ---------------------------------------------------------------------------------
def size_and_surface_brightness(
    images: Any,
    bands: Any = None,
    zeropoint: float = 22.5,
    pixel_scale: float = 0.262,
    band: str | None = None,
) -> pd.DataFrame:
    """Half-light radius and mean surface brightness within it, per galaxy.

    Both come from :func:`galwidgets.metrics.photometry` in one band (``band``, default r): the
    magnitude ``mag`` is the flux in the largest circle that fits the cutout (the same circle whose
    curve of growth defines ``r_half``), and ``mu_e = mag + 2.5 log10(2π r_half²)`` is the mean
    surface brightness inside the half-light radius, in mag/arcsec² (half the flux spread over
    ``π r_half²``; Graham & Driver 2005, PASA 22, 118, with the cutout flux as the total).

    Parameters
    ----------
    images : Survey or array (N, C, H, W)
        Flux images; NaN pixels give NaN measurements and a flag, not an error.
    bands, zeropoint, pixel_scale
        Calibration; a Survey supplies its own.
    band : str, optional
        Band measured; default ``"r"`` if present, else the middle band.

    Returns
    -------
    pandas.DataFrame
        ``r_half`` (arcsec), ``mag`` (AB), ``mu_e`` (mag/arcsec²) and ``flag`` (photometry flags).
    """
    if isinstance(images, Survey):
        bands, zeropoint, pixel_scale = images.bands, images.zeropoint, images.pixel_scale
    arr = as_images(images, "images", allow_nan=True)
    channel, names = band_index(band, bands, arr.shape[1])
    names = names or tuple(f"band{i}" for i in range(arr.shape[1]))
    radius = (min(arr.shape[-2:]) - 1) / 2
    table = photometry(arr, zeropoint=zeropoint, aperture_radius=radius, bands=names,
                       pixel_scale=pixel_scale, r_half_band=names[channel])
    r_half, mag = table["r_half"].to_numpy(), table[f"mag_{names[channel]}"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mu_e = mag + 2.5 * np.log10(2 * np.pi * r_half**2)
    return pd.DataFrame({"r_half": r_half, "mag": mag, "mu_e": mu_e, "flag": table["flag"].to_numpy()})


# -- state ---------------------------------------------------------------------------------------
class RedshiftExplorerState(T.HasTraits):
    """Everything the RedshiftExplorer shows: the model, the survey, the settings and the draws.

    Drive it from code exactly as the controls do: set ``redshift``, ``guidance``, ``n``, ...
    and call :meth:`draw`.
    """

    checkpoint = T.Instance(Checkpoint, help="redshift-conditioned checkpoint (cond_dim == 1)")
    reference = T.Instance(Survey, help="mock survey with a 'redshift' catalog column")
    reference_table = T.Instance(pd.DataFrame, help="measured reference: redshift, r_half, mu_e, ...")
    redshift = T.Float(0.1, help="condition of the next draw")
    guidance = T.Float(1.0, help="classifier-free guidance scale w (1: plain conditional)")
    n = T.Int(8, help="galaxies per draw")
    steps = T.Int(20, help="DDIM steps per draw")
    sampler = T.Enum(("ddim", "ddpm"), default_value="ddim", help="reverse-process sampler")
    seed = T.Int(0, help="seed of the next draw (advances by one after each draw)")
    samples = T.Any(None, allow_none=True, help="flux images (n, C, H, W) of the current draw")
    history = T.Instance(pd.DataFrame, help="measured generated galaxies so far")
    busy = T.Bool(False, help="a draw is running")
    stretch = T.Enum(STRETCHES, default_value="lupton", help="display stretch")
    zoom = T.Int(3, help="screen pixels per image pixel")

    def __init__(self, checkpoint: Checkpoint, reference: Survey, **kwargs: Any) -> None:
        if "redshift" not in reference.catalog.columns:
            raise ValueError(f"reference: expected a Survey with a 'redshift' catalog column, got "
                             f"columns {list(reference.catalog.columns)}")
        table = size_and_surface_brightness(reference)
        table.insert(0, "redshift", reference.catalog["redshift"].to_numpy(dtype=float))
        z = table["redshift"].to_numpy()
        kwargs.setdefault("redshift", float(np.nanmedian(z)) if np.isfinite(z).any() else 0.1)
        super().__init__(checkpoint=checkpoint, reference=reference, reference_table=table,
                         history=pd.DataFrame({c: pd.Series(dtype=float) for c in HISTORY_COLUMNS}),
                         **kwargs)

    @T.validate("checkpoint")
    def _check_checkpoint(self, proposal: dict) -> Checkpoint:
        ckpt = proposal["value"]
        cond_dim = getattr(ckpt.model, "cond_dim", 0)
        if cond_dim != 1:
            raise T.TraitError(
                f"checkpoint: expected a redshift-conditioned model (model.cond_dim == 1, trained with "
                f"cond='redshift'), got {type(ckpt.model).__name__} with cond_dim={cond_dim}"
                + (" (unconditional)" if not cond_dim else ""))
        columns = (ckpt.config.get("cond") or {}).get("columns")
        if columns not in (None, ["redshift"]):
            raise T.TraitError(f"checkpoint: expected a model conditioned on 'redshift', got one "
                               f"conditioned on {columns}")
        return ckpt

    @T.validate("redshift", "guidance")
    def _check_non_negative(self, proposal: dict) -> float:
        value, name = proposal["value"], proposal["trait"].name
        if not np.isfinite(value) or value < 0:
            raise T.TraitError(f"{name}: expected a finite number >= 0, got {value!r}")
        return value

    @T.validate("n", "steps", "zoom")
    def _check_positive(self, proposal: dict) -> int:
        value, name = proposal["value"], proposal["trait"].name
        if value < 1:
            raise T.TraitError(f"{name}: expected a positive integer, got {value}")
        if name == "steps" and self.checkpoint is not None and self.checkpoint.schedule is not None \
                and value > self.checkpoint.schedule.T:
            raise T.TraitError(f"steps: expected at most the schedule's T = {self.checkpoint.schedule.T}, "
                               f"got {value}")
        return value

    @property
    def redshift_range(self) -> tuple[float, float]:
        """Redshifts spanned by the reference survey (the sensible slider range)."""
        z = self.reference_table["redshift"].to_numpy()
        z = z[np.isfinite(z)]
        return (float(z.min()), float(z.max())) if z.size else (0.0, 1.0)

    def _settings(self) -> dict:
        """A snapshot of the settings of a draw (taken before it runs in a thread)."""
        return {"redshift": self.redshift, "guidance": self.guidance, "n": self.n, "steps": self.steps,
                "sampler": self.sampler, "seed": self.seed}

    def _compute(self, settings: dict, callback: Callable[[dict], None] | None = None) -> tuple:
        """Draw and measure; touches no trait (safe in a worker thread)."""
        ckpt, n = self.checkpoint, settings["n"]
        survey = ckpt.sample(n, sampler=settings["sampler"], steps=settings["steps"], seed=settings["seed"],
                             cond=np.full(n, settings["redshift"], dtype=np.float32),
                             guidance=settings["guidance"], progress=False, callback=callback)
        table = size_and_surface_brightness(survey)
        for key in ("redshift", "guidance", "seed"):
            table[key] = settings[key]
        table["index"] = np.arange(n)
        return survey.images, table[list(HISTORY_COLUMNS)]

    def _apply(self, settings: dict, result: tuple) -> None:
        images, table = result
        self.samples = images
        frames = [df for df in (self.history, table) if len(df)]
        self.history = pd.concat(frames, ignore_index=True) if frames else table
        self.seed = settings["seed"] + 1

    def draw(self, callback: Callable[[dict], None] | None = None) -> np.ndarray:
        """Draw ``n`` galaxies at ``redshift`` with guidance ``guidance``, measure them and add them
        to ``history``; ``seed`` then advances by one so the next draw gives new galaxies.

        ``callback`` receives the sampler's per-step dicts (``i``, ``t``, ``x``, ``x0_pred``).
        Returns the flux images (also in ``samples``).
        """
        settings = self._settings()
        self.busy = True
        try:
            self._apply(settings, self._compute(settings, callback))
        finally:
            self.busy = False
        return self.samples

    def clear(self) -> None:
        """Forget the generated galaxies drawn so far."""
        self.history = self.history.iloc[:0]
        self.samples = None

    def samples_png(self, ncols: int = 4) -> bytes:
        """The current draw as an RGB mosaic (PNG bytes); a blank tile before the first draw."""
        if self.samples is None:
            size = self.checkpoint.size
            return _png(np.full((size * self.zoom, size * self.zoom, 3), 255, np.uint8))
        rgb = rgb_composite(self.samples, self.checkpoint.bands, stretch=self.stretch,
                            zeropoint=self.checkpoint.zeropoint)
        return _png(_mosaic(rgb, ncols, self.zoom))


# -- view ----------------------------------------------------------------------------------------
_LABELS = {"r_half": "half-light radius (arcsec)", "mu_e": "⟨μ⟩ₑ (mag/arcsec²)"}


class RedshiftExplorerView(W.VBox):
    """ipywidgets view of a :class:`RedshiftExplorerState`: sliders, the current draw and two
    HoloViews scatter plots (size and surface brightness against redshift) through Panel.

    ``threaded`` (default True): the draw button samples in a worker thread when a kernel event
    loop is running (see :func:`run_in_background`); otherwise synchronously.
    """

    def __init__(self, state: RedshiftExplorerState, threaded: bool = True, **kwargs: Any) -> None:
        import holoviews as hv

        load_bokeh()
        self.state, self.threaded = state, threaded
        lo, hi = state.redshift_range
        T_max = state.checkpoint.schedule.T if state.checkpoint.schedule is not None else 1000
        self.redshift = W.FloatSlider(min=min(lo, state.redshift), max=max(hi, state.redshift),
                                      step=max((hi - lo) / 200, 1e-4), readout_format=".3f",
                                      description="redshift", continuous_update=False)
        self.guidance = W.FloatSlider(min=0.0, max=max(8.0, state.guidance), step=0.1,
                                      description="guidance", continuous_update=False)
        self.n = W.IntSlider(min=1, max=max(64, state.n), description="galaxies")
        self.steps = W.IntSlider(min=1, max=T_max, description="DDIM steps")
        self.sampler = W.ToggleButtons(options=("ddim", "ddpm"), description="sampler")
        self.seed = W.IntText(description="seed")
        self._links = [W.link((state, name), (getattr(self, name), "value"))
                       for name in ("redshift", "guidance", "n", "steps", "sampler", "seed")]
        self.draw_button = W.Button(description="draw", icon="play", button_style="primary")
        self.clear_button = W.Button(description="clear", icon="trash")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="sampling")
        self.status = W.HTML()
        self.image = W.Image(format="png")
        self.draw_button.on_click(lambda _: self.draw())
        self.clear_button.on_click(lambda _: state.clear())

        self._pipe = hv.streams.Pipe(data=self._generated())
        self._marker = hv.streams.Stream.define("Redshift", redshift=state.redshift)()
        self.size_pane, self.size_plot = holoviews_widget(self._plot("r_half"))
        self.brightness_pane, self.brightness_plot = holoviews_widget(self._plot("mu_e"))

        controls = W.VBox([self.redshift, self.guidance, self.n, self.steps, self.sampler, self.seed,
                           W.HBox([self.draw_button, self.clear_button]), self.progress, self.status])
        super().__init__([W.HBox([controls, W.VBox([W.HTML("<b>current draw</b>"), self.image])]),
                          W.HBox([self.size_plot, self.brightness_plot])], **kwargs)
        state.observe(self._on_samples, names=["samples", "stretch", "zoom"])
        state.observe(self._on_history, names=["history"])
        state.observe(self._on_redshift, names=["redshift"])
        state.observe(self._on_busy, names=["busy", "sampler"])
        self._on_samples()
        self._on_busy()

    # plots
    def _generated(self) -> pd.DataFrame:
        return self.state.history.dropna(subset=["redshift", "r_half", "mu_e"])

    def _plot(self, column: str):
        import holoviews as hv

        ref = self.state.reference_table.dropna(subset=["redshift", column])
        y = hv.Dimension(column, label=_LABELS[column])
        opts = {"width": 380, "height": 300, "size": 5, "tools": ["hover"], "show_grid": True,
                "invert_yaxis": column == "mu_e"}
        reference = hv.Scatter(ref, "redshift", [y, "mag"], label="mock survey (measured)").opts(
            color="#999999", alpha=0.6, **opts)
        # framewise: the axes take in each new draw (a poorly trained model's galaxies can lie far
        # outside the survey's range; fixed ranges would leave them off the plot)
        generated = hv.DynamicMap(
            lambda data: hv.Scatter(data, "redshift", [y, "guidance", "seed"], label="generated"),
            streams=[self._pipe]).opts(color="#d62728", framewise=True, **opts)
        marker = hv.DynamicMap(lambda redshift: hv.VLine(redshift), streams=[self._marker]).opts(
            color="black", line_dash="dashed", line_width=1)
        return (reference * generated * marker).opts(legend_position="top_right")

    # observers
    def _on_samples(self, change: dict | None = None) -> None:
        self.image.value = self.state.samples_png()

    def _on_history(self, change: dict | None = None) -> None:
        self._pipe.send(self._generated())

    def _on_redshift(self, change: dict | None = None) -> None:
        self._marker.event(redshift=self.state.redshift)

    def _on_busy(self, change: dict | None = None) -> None:
        busy = self.state.busy
        self.draw_button.disabled = busy
        self.draw_button.description = "drawing…" if busy else "draw"
        self.steps.disabled = self.state.sampler == "ddpm"  # DDPM takes all T steps

    # action
    def draw(self) -> None:
        """What the draw button does: sample (in a thread in a kernel), then update the state."""
        state = self.state
        settings = state._settings()
        total = settings["steps"] if settings["sampler"] == "ddim" else state.checkpoint.schedule.T
        launch(state, lambda callback: state._compute(settings, callback),
               lambda result: state._apply(settings, result), self.progress, self.status, total,
               self.threaded)


# -- facade --------------------------------------------------------------------------------------
class RedshiftExplorer:
    """Galaxies drawn from a redshift-conditioned diffusion model, compared with a mock survey.

    Parameters
    ----------
    checkpoint : Checkpoint, path or str
        A redshift-conditioned model (``model.cond_dim == 1``, trained with ``cond="redshift"``),
        its checkpoint file, or a shipped model's name (e.g. ``"desi-z-tiny"``).
    reference : Survey, optional
        Mock survey with a ``redshift`` catalog column; default
        ``simulate_survey(n_reference, size=checkpoint.size, bands=checkpoint.bands, ...)``. Its
        galaxies are measured from their pixels exactly like the generated ones.
    n_reference : int
        Galaxies of the default reference survey.
    seed : int
        Seed of the default reference survey and of the first draw.
    threaded : bool
        Sample in a worker thread when run in a kernel (the interface stays responsive).
    **settings
        Initial :class:`RedshiftExplorerState` settings (``redshift``, ``guidance``, ``n``,
        ``steps``, ``sampler``, ``stretch``, ...).

    Attributes
    ----------
    state : RedshiftExplorerState
    view : RedshiftExplorerView

    Examples
    --------
    >>> ex = gw.widgets.RedshiftExplorer(ckpt)      # last line of a cell shows it
    >>> ex.state.redshift = 0.3; ex.state.draw(); ex.state.history.tail()
    """

    def __init__(self, checkpoint: Any, reference: Survey | None = None, n_reference: int = 96,
                 seed: int = 0, threaded: bool = True, **settings: Any) -> None:
        ckpt = as_checkpoint(checkpoint)
        if reference is None:
            from ..data.simulate import simulate_survey

            reference = simulate_survey(check_positive_int(n_reference, "n_reference"), size=ckpt.size,
                                        bands=ckpt.bands, pixel_scale=ckpt.pixel_scale,
                                        zeropoint=ckpt.zeropoint, seed=seed, progress=False)
        elif not isinstance(reference, Survey):
            raise TypeError(f"reference: expected a Survey with a 'redshift' catalog column, got "
                            f"{type(reference).__name__}")
        try:
            self.state = RedshiftExplorerState(ckpt, reference, **{"seed": seed, **settings})
        except T.TraitError as exc:  # the public error type for bad arguments
            raise ValueError(str(exc)) from None
        self.view = RedshiftExplorerView(self.state, threaded=threaded)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return refresh_bokeh(self.view)._repr_mimebundle_(**kwargs)
