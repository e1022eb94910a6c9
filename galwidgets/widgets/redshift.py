"""RedshiftExplorer: galaxies drawn from a redshift-conditioned model; sizes, surface brightness, colours.

A redshift slider and a guidance-scale slider set the condition of the draws (classifier-free
guidance, Ho & Salimans 2022: ``ε̂ = ε(x, ∅) + w (ε(x, z) - ε(x, ∅))``). Every draw is measured and
added to a running table, plotted against redshift next to the mock survey it should imitate:
half-light radius (arcsec), mean surface brightness within it and a colour (bluest band minus the
measurement band: g - i for HSC, g - r for DESI). A model that has learned the redshift dependence
should follow the survey's trends (Li et al. 2024, arXiv:2407.07229): angular sizes shrink with the
angular diameter distance, surface brightness dims as ``(1 + z)^-4`` (Tolman dimming) and galaxies
redden as the 4000 Å break moves through the bands.

The default model is the shipped ``hsc-z-tiny`` (HSC g r i z y, 0.05 < z < 3, measured in i); the
redshift slider spans the range of conditions the checkpoint was trained on
(:func:`galwidgets.checkpoints.trained_condition_range`), and a redshift beyond it is flagged: a
note under the slider, and the :class:`~galwidgets.checkpoints.ExtrapolationWarning` of
:meth:`Checkpoint.sample` when drawn. The reference mock is drawn with the instrument of the
checkpoint's training recipe (``hsc-deep`` for ``hsc-z-tiny``, ``desi`` for ``desi-z-tiny``).

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
from ..checkpoints import Checkpoint, trained_condition_range
from ..data.noise import sky_noise
from ..data.surveys import Survey
from ..diffusion.samplers import SAMPLERS
from ..metrics.photometry import photometry
from ..pretrained import as_checkpoint
from ..viz import STRETCHES, band_scales, rgb_composite
from ._async import launch
from ._bokeh import holoviews_widget, load_bokeh, refresh_bokeh
from .gallery import _mosaic, _png

__all__ = ["DEFAULT_CHECKPOINT", "RedshiftExplorer", "RedshiftExplorerState", "RedshiftExplorerView",
           "measurement_band", "reference_survey", "size_and_surface_brightness"]

#: The shipped model the explorer opens by default.
DEFAULT_CHECKPOINT = "hsc-z-tiny"
#: Columns of :attr:`RedshiftExplorerState.history`.
HISTORY_COLUMNS = ("redshift", "guidance", "seed", "index", "r_half", "mag", "mu_e", "colour", "flag")


def measurement_band(bands: Any) -> str:
    """The band sizes, surface brightness and colours are measured in: i when present (HSC, the
    band of Li et al. 2024 and of the HSC PDR3 magnitude limit), else r (DESI Legacy Surveys),
    else the middle band."""
    bands = tuple(bands)
    if not bands:
        raise ValueError("bands: expected at least one band name, got none")
    return next((b for b in ("i", "r") if b in bands), bands[len(bands) // 2])


def reference_survey(checkpoint: Checkpoint, n: int = 96, seed: int = 0,
                     instrument: str | None = None) -> Survey:
    """A mock survey like the one ``checkpoint`` learnt from, to compare its draws with.

    ``instrument`` defaults to the instrument of the checkpoint's training recipe
    (``config["pretrained"]["recipe"]["survey"]``: ``hsc-deep`` for ``hsc-z-tiny``; ``desi``,
    the simulator's default, when the recipe names none), with the recipe's redshift range when it
    sets one; bands, pixel scale, zeropoint and stamp size are the checkpoint's.
    """
    from ..data.simulate import simulate_survey

    recipe = ((checkpoint.config.get("pretrained") or {}).get("recipe") or {}).get("survey") or {}
    instrument = instrument or recipe.get("instrument") or "desi"
    extra = {"redshift": tuple(recipe["redshift"])} if recipe.get("redshift") is not None else {}
    return simulate_survey(check_positive_int(n, "n_reference"), size=checkpoint.size, bands=checkpoint.bands,
                           pixel_scale=checkpoint.pixel_scale, zeropoint=checkpoint.zeropoint, seed=seed,
                           instrument=instrument, progress=False, **extra)


def display_scales(survey: Survey) -> np.ndarray:
    """Band scales of the RGB pictures of draws like ``survey``: the λ^1.5 weights of
    :func:`galwidgets.viz.band_scales` (colours as in survey viewers), all multiplied by the median
    ratio of the survey's sky noise to them, so the sky looks the same in every survey. DESI-like
    mocks keep about their scales (ratio ~1.1); deep HSC mocks, whose faint galaxies would be black
    at the flux scale of zeropoint 27, are shown ~10x brighter."""
    base = band_scales(survey.bands, zeropoint=survey.zeropoint)
    ratio = sky_noise(survey.images) / base
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    return (base * (float(np.median(ratio)) if ratio.size else 1.0)).astype(np.float32)


# -- measurement ---------------------------------------------------------------------------------
def size_and_surface_brightness(
    images: Any,
    bands: Any = None,
    zeropoint: float = 22.5,
    pixel_scale: float = 0.262,
    band: str | None = None,
    colour: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Half-light radius, mean surface brightness within it and a colour, per galaxy.

    All come from :func:`galwidgets.metrics.photometry` (``band``, default
    :func:`measurement_band`: i for HSC, r for DESI): the magnitude ``mag`` is the flux in the
    largest circle that fits the cutout (the same circle whose curve of growth defines ``r_half``),
    and ``mu_e = mag + 2.5 log10(2π r_half²)`` is the mean surface brightness inside the half-light
    radius, in mag/arcsec² (half the flux spread over ``π r_half²``; Graham & Driver 2005, PASA 22,
    118, with the cutout flux as the total). ``colour`` is the difference of the aperture
    magnitudes of two bands (default the bluest band minus ``band``: g - i for HSC, g - r for DESI).

    Parameters
    ----------
    images : Survey or array (N, C, H, W)
        Flux images; NaN pixels give NaN measurements and a flag, not an error.
    bands, zeropoint, pixel_scale
        Calibration; a Survey supplies its own.
    band : str, optional
        Band measured; default :func:`measurement_band` of the bands.
    colour : (str, str), optional
        Bands ``(blue, red)`` of the colour ``mag_blue - mag_red``; default ``(bands[0], band)``.

    Returns
    -------
    pandas.DataFrame
        ``r_half`` (arcsec), ``mag`` (AB), ``mu_e`` (mag/arcsec²), ``colour`` (mag) and ``flag``
        (photometry flags); ``attrs`` holds ``band`` and ``colour`` (the band pair).
    """
    if isinstance(images, Survey):
        bands, zeropoint, pixel_scale = images.bands, images.zeropoint, images.pixel_scale
    arr = as_images(images, "images", allow_nan=True)
    if band is None and bands is not None:
        band = measurement_band(bands)
    channel, names = band_index(band, bands, arr.shape[1])
    names = names or tuple(f"band{i}" for i in range(arr.shape[1]))
    colour = tuple(colour) if colour is not None else (names[0], names[channel])
    if len(colour) != 2 or not set(colour) <= set(names):
        raise ValueError(f"colour: expected two band names of {names}, got {colour!r}")
    radius = (min(arr.shape[-2:]) - 1) / 2
    table = photometry(arr, zeropoint=zeropoint, aperture_radius=radius, bands=names,
                       pixel_scale=pixel_scale, r_half_band=names[channel])
    r_half, mag = table["r_half"].to_numpy(), table[f"mag_{names[channel]}"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mu_e = mag + 2.5 * np.log10(2 * np.pi * r_half**2)
    blue, red = (table[f"mag_{b}"].to_numpy() for b in colour)
    out = pd.DataFrame({"r_half": r_half, "mag": mag, "mu_e": mu_e, "colour": blue - red,
                        "flag": table["flag"].to_numpy()})
    out.attrs.update(band=names[channel], colour=colour)
    return out


# -- state ---------------------------------------------------------------------------------------
class RedshiftExplorerState(T.HasTraits):
    """Everything the RedshiftExplorer shows: the model, the survey, the settings and the draws.

    Drive it from code exactly as the controls do: set ``redshift``, ``guidance``, ``n``, ...
    and call :meth:`draw`.
    """

    checkpoint = T.Instance(Checkpoint, help="redshift-conditioned checkpoint (cond_dim == 1)")
    reference = T.Instance(Survey, help="mock survey with a 'redshift' catalog column")
    reference_table = T.Instance(pd.DataFrame, help="measured reference: redshift, r_half, mu_e, ...")
    band = T.Unicode(help="band of the sizes, magnitudes and surface brightness (i for HSC, r for DESI)")
    colour_bands = T.Tuple(T.Unicode(), T.Unicode(), help="(blue, red) bands of the colour")
    redshift = T.Float(0.1, help="condition of the next draw")
    guidance = T.Float(1.0, help="classifier-free guidance scale w (1: plain conditional); initially "
                       "the checkpoint's default_guidance")
    n = T.Int(4, help="galaxies per draw (few: a draw of 4 takes seconds on 2 CPU cores)")
    steps = T.Int(None, allow_none=True, help="sampler steps per draw; None: the sampler's default")
    sampler = T.Unicode(None, allow_none=True, help="reverse-process sampler (a name of "
                        "gw.samplers.SAMPLERS); None: Checkpoint.sample's default")
    seed = T.Int(0, help="seed of the next draw (advances by one after each draw)")
    samples = T.Any(None, allow_none=True, help="flux images (n, C, H, W) of the current draw")
    history = T.Instance(pd.DataFrame, help="measured generated galaxies so far")
    busy = T.Bool(False, help="a draw is running")
    stretch = T.Enum(STRETCHES, default_value="lupton", help="display stretch")
    zoom = T.Int(3, help="screen pixels per image pixel")
    display_scales = T.Any(None, allow_none=True, help="flux per unit of each band in the RGB picture")

    def __init__(self, checkpoint: Checkpoint, reference: Survey, **kwargs: Any) -> None:
        if "redshift" not in reference.catalog.columns:
            raise ValueError(f"reference: expected a Survey with a 'redshift' catalog column, got "
                             f"columns {list(reference.catalog.columns)}")
        band = measurement_band(checkpoint.bands)
        colour = (checkpoint.bands[0], band)
        table = size_and_surface_brightness(reference, band=band, colour=colour)
        table.insert(0, "redshift", reference.catalog["redshift"].to_numpy(dtype=float))
        super().__init__(checkpoint=checkpoint, reference=reference, reference_table=table, band=band,
                         colour_bands=colour,
                         history=pd.DataFrame({c: pd.Series(dtype=float) for c in HISTORY_COLUMNS}),
                         **kwargs)
        if self.display_scales is None:
            self.display_scales = display_scales(reference)
        if "guidance" not in kwargs:  # the scale the model's recipe recorded (1 if none)
            self.guidance = checkpoint.default_guidance
        if "redshift" not in kwargs:  # the survey's median, inside the slider's range
            z = table["redshift"].to_numpy()
            lo, hi = self.redshift_range
            self.redshift = float(np.clip(np.nanmedian(z), lo, hi)) if np.isfinite(z).any() else lo

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

    @T.validate("sampler")
    def _check_sampler(self, proposal: dict) -> str | None:
        value = proposal["value"]
        if value is not None and value not in SAMPLERS:
            raise T.TraitError(f"sampler: expected None (the default) or one of "
                               f"{', '.join(map(repr, SAMPLERS))}, got {value!r}")
        return value

    @T.validate("n", "steps", "zoom")
    def _check_positive(self, proposal: dict) -> int | None:
        value, name = proposal["value"], proposal["trait"].name
        if value is None:  # steps only: the sampler's default
            return value
        if value < 1:
            raise T.TraitError(f"{name}: expected a positive integer, got {value}")
        if name == "steps" and self.checkpoint is not None and self.checkpoint.schedule is not None \
                and value > self.checkpoint.schedule.T:
            raise T.TraitError(f"steps: expected at most the schedule's T = {self.checkpoint.schedule.T}, "
                               f"got {value}")
        return value

    @property
    def trained_range(self) -> tuple[float, float] | None:
        """Redshifts the checkpoint's model was trained on (``config["cond"]["range"]``), if recorded."""
        ranges = trained_condition_range(self.checkpoint.config)
        return (ranges[0][0], ranges[0][1]) if ranges else None

    @property
    def redshift_range(self) -> tuple[float, float]:
        """The slider's range: the trained range of the checkpoint, or, for a checkpoint that does
        not record it (one written before training recorded it), the redshifts the reference spans."""
        if self.trained_range is not None:
            return self.trained_range
        z = self.reference_table["redshift"].to_numpy()
        z = z[np.isfinite(z)]
        return (float(z.min()), float(z.max())) if z.size else (0.0, 1.0)

    @property
    def extrapolating(self) -> bool:
        """Whether ``redshift`` lies outside the trained range (by more than 1 % of it)."""
        if self.trained_range is None:
            return False
        lo, hi = self.trained_range
        return not lo - 0.01 * (hi - lo) <= self.redshift <= hi + 0.01 * (hi - lo)

    @property
    def steps_per_draw(self) -> int:
        """Sampler steps a draw takes (``steps``, or the sampler's default; without a sampler the
        checkpoint's :attr:`~galwidgets.checkpoints.Checkpoint.default_sampler`; DDPM: all T)."""
        sampler, steps = self.checkpoint.resolve_sampler(self.sampler, self.steps)
        if sampler == "ddpm":
            return self.checkpoint.schedule.T if self.checkpoint.schedule is not None else 1
        return steps

    def _settings(self) -> dict:
        """A snapshot of the settings of a draw (taken before it runs in a thread)."""
        return {"redshift": self.redshift, "guidance": self.guidance, "n": self.n, "steps": self.steps,
                "sampler": self.sampler, "seed": self.seed}

    def _compute(self, settings: dict, callback: Callable[[dict], None] | None = None) -> tuple:
        """Draw and measure; touches no trait (safe in a worker thread). ``sampler`` and ``steps``
        reach :meth:`Checkpoint.sample` only when set, so its defaults apply otherwise; it warns
        (:class:`~galwidgets.checkpoints.ExtrapolationWarning`) beyond the trained range."""
        ckpt, n = self.checkpoint, settings["n"]
        chosen = {k: settings[k] for k in ("sampler", "steps") if settings[k] is not None}
        cond = np.full(n, settings["redshift"], dtype=np.float32)
        survey = ckpt.sample(n, seed=settings["seed"], cond=cond, guidance=settings["guidance"],
                             progress=False, callback=callback, **chosen)
        table = size_and_surface_brightness(survey, band=self.band, colour=self.colour_bands)
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
                            scales=self.display_scales)
        return _png(_mosaic(rgb, ncols, self.zoom))


# -- view ----------------------------------------------------------------------------------------
_DEFAULT = "default"  # what the sampler menu shows for None (Checkpoint.sample's default)


def _labels(state: RedshiftExplorerState) -> dict[str, str]:
    """Axis labels of the three plots, naming the measurement band."""
    blue, red = state.colour_bands
    return {"r_half": f"half-light radius in {state.band} (arcsec)",
            "mu_e": f"⟨μ⟩ₑ in {state.band} (mag/arcsec²)", "colour": f"{blue} − {red} (mag)"}


class RedshiftExplorerView(W.VBox):
    """ipywidgets view of a :class:`RedshiftExplorerState`: sliders, the current draw and three
    HoloViews scatter plots (size, surface brightness and colour against redshift) through Panel.

    The redshift slider spans :attr:`RedshiftExplorerState.redshift_range` (the checkpoint's trained
    range); ``steps`` 0 and sampler "default" leave :meth:`Checkpoint.sample` its defaults.
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
        self.sampler = W.Dropdown(options=(_DEFAULT, *SAMPLERS), description="sampler")
        self.steps = W.BoundedIntText(min=0, max=T_max, description="steps",
                                      tooltip="sampler steps per draw; 0: the sampler's default")
        self.seed = W.IntText(description="seed")
        state.observe(self._widen_slider, names=["redshift"])  # before the link: the slider must hold z
        self._links = [W.link((state, name), (getattr(self, name), "value"))
                       for name in ("redshift", "guidance", "n", "seed")]
        self._links += [W.link((state, "sampler"), (self.sampler, "value"),
                               transform=(lambda v: v or _DEFAULT, lambda v: None if v == _DEFAULT else v)),
                        W.link((state, "steps"), (self.steps, "value"),
                               transform=(lambda v: v or 0, lambda v: v or None))]
        self.draw_button = W.Button(description="draw", icon="play", button_style="primary")
        self.clear_button = W.Button(description="clear", icon="trash")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="sampling")
        self.status = W.HTML()
        self.range_note = W.HTML()
        self.image = W.Image(format="png")
        self.draw_button.on_click(lambda _: self.draw())
        self.clear_button.on_click(lambda _: state.clear())

        self._pipe = hv.streams.Pipe(data=self._generated())
        self._marker = hv.streams.Stream.define("Redshift", redshift=state.redshift)()
        self.size_pane, self.size_plot = holoviews_widget(self._plot("r_half"))
        self.brightness_pane, self.brightness_plot = holoviews_widget(self._plot("mu_e"))
        self.colour_pane, self.colour_plot = holoviews_widget(self._plot("colour"))

        controls = W.VBox([self.redshift, self.range_note, self.guidance, self.n, self.sampler, self.steps,
                           self.seed, W.HBox([self.draw_button, self.clear_button]), self.progress,
                           self.status])
        super().__init__([W.HBox([controls, W.VBox([W.HTML("<b>current draw</b>"), self.image])]),
                          W.HBox([self.size_plot, self.brightness_plot, self.colour_plot],
                                 layout=W.Layout(flex_flow="row wrap"))], **kwargs)
        state.observe(self._on_samples, names=["samples", "stretch", "zoom"])
        state.observe(self._on_history, names=["history"])
        state.observe(self._on_redshift, names=["redshift"])
        state.observe(self._on_busy, names=["busy", "sampler"])
        self._on_samples()
        self._on_redshift()
        self._on_busy()

    # plots
    def _generated(self) -> pd.DataFrame:
        return self.state.history.dropna(subset=["redshift", "r_half", "mu_e"])

    def _plot(self, column: str):
        import holoviews as hv

        ref = self.state.reference_table.dropna(subset=["redshift", column])
        y = hv.Dimension(column, label=_labels(self.state)[column])
        opts = {"width": 340, "height": 280, "size": 5, "tools": ["hover"], "show_grid": True,
                "invert_yaxis": column == "mu_e"}
        reference = hv.Scatter(ref, "redshift", [y, "mag"], label="mock survey (measured)").opts(
            color="#999999", alpha=0.6, **opts)
        # framewise: the axes take in each new draw (a poorly trained model's galaxies can lie far
        # outside the survey's range; fixed ranges would leave them off the plot)
        generated = hv.DynamicMap(
            lambda data: hv.Scatter(data.dropna(subset=[column]), "redshift", [y, "guidance", "seed"],
                                    label="generated"),
            streams=[self._pipe]).opts(color="#d62728", framewise=True, **opts)
        marker = hv.DynamicMap(lambda redshift: hv.VLine(redshift), streams=[self._marker]).opts(
            color="black", line_dash="dashed", line_width=1)
        return (reference * generated * marker).opts(legend_position="top_right")

    # observers
    def _on_samples(self, change: dict | None = None) -> None:
        self.image.value = self.state.samples_png()

    def _on_history(self, change: dict | None = None) -> None:
        self._pipe.send(self._generated())

    def _widen_slider(self, change: dict) -> None:
        """A redshift set from code beyond the slider (an extrapolation) widens it rather than
        being clipped by it."""
        z = change["new"]
        if z > self.redshift.max:
            self.redshift.max = z
        elif z < self.redshift.min:
            self.redshift.min = z

    def _on_redshift(self, change: dict | None = None) -> None:
        self._marker.event(redshift=self.state.redshift)
        if self.state.extrapolating:
            lo, hi = self.state.trained_range
            self.range_note.value = (f"<span style='color:#b35900'>z = {self.state.redshift:.3g} lies "
                                     f"outside the trained range {lo:.3g}–{hi:.3g}: the model "
                                     "extrapolates</span>")
        else:
            self.range_note.value = ""

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
        launch(state, lambda callback: state._compute(settings, callback),
               lambda result: state._apply(settings, result), self.progress, self.status,
               state.steps_per_draw, self.threaded)


# -- facade --------------------------------------------------------------------------------------
class RedshiftExplorer:
    """Galaxies drawn from a redshift-conditioned diffusion model, compared with a mock survey.

    Parameters
    ----------
    checkpoint : Checkpoint, path or str
        A redshift-conditioned model (``model.cond_dim == 1``, trained with ``cond="redshift"``),
        its checkpoint file, or a shipped model's name; default ``"hsc-z-tiny"`` (HSC g r i z y,
        0.05 < z < 3), or e.g. ``"desi-z-tiny"``.
    reference : Survey, optional
        Mock survey with a ``redshift`` catalog column; default :func:`reference_survey`: a mock of
        ``n_reference`` galaxies from the instrument of the checkpoint's training recipe (or
        ``instrument``). Its galaxies are measured from their pixels exactly like the generated ones.
    n_reference : int
        Galaxies of the default reference survey.
    seed : int
        Seed of the default reference survey and of the first draw.
    instrument : str, optional
        Instrument preset of the default reference survey (e.g. ``"hsc-deep"``, ``"desi"``);
        default the recipe's.
    threaded : bool
        Sample in a worker thread when run in a kernel (the interface stays responsive).
    **settings
        Initial :class:`RedshiftExplorerState` settings (``redshift``, ``guidance``, ``n``,
        ``steps``, ``sampler``, ``stretch``, ...); ``steps`` and ``sampler`` default to None, the
        checkpoint's own defaults, and ``guidance`` to its ``default_guidance``.

    Attributes
    ----------
    state : RedshiftExplorerState
    view : RedshiftExplorerView

    Examples
    --------
    >>> ex = gw.widgets.RedshiftExplorer()          # hsc-z-tiny; last line of a cell shows it
    >>> ex.state.redshift = 2.0; ex.state.draw(); ex.state.history.tail()
    """

    def __init__(self, checkpoint: Any = DEFAULT_CHECKPOINT, reference: Survey | None = None,
                 n_reference: int = 96, seed: int = 0, instrument: str | None = None, threaded: bool = True,
                 **settings: Any) -> None:
        ckpt = as_checkpoint(checkpoint)
        if reference is None:
            reference = reference_survey(ckpt, n_reference, seed, instrument)
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
