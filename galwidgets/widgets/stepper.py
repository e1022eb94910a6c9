"""DiffusionStepper: the forward and the reverse diffusion process of one galaxy, step by step, for teaching.

Forward process (Ho et al. 2020, eq. 4): ``x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε`` with one fixed draw of
``ε``, so moving the ``t`` slider shows the *same* noise swallowing the galaxy; beside it the
schedule's ``ᾱ_t`` and signal-to-noise ratio ``SNR(t) = ᾱ_t / (1 - ᾱ_t)`` (Kingma et al. 2021,
log scale), with a marker at ``t``.

Reverse process: a trained model draws a galaxy with any sampler of ``gw.samplers.SAMPLERS`` —
DDPM (Ho et al. 2020, Algorithm 2, all T steps), DDIM (Song et al. 2021, eq. 12), DPM-Solver++
(Lu et al. 2022; its third-order SDE form is the default,
:data:`~galwidgets.diffusion.samplers.DEFAULT_SAMPLER`), Euler, Heun
or ancestral Euler (Karras et al. 2022) — in a chosen number of steps; the sampler's per-step
callback records ``x_t`` and the network's estimate ``x̂_0`` of the clean image at every step, and
a player steps through them, so switching sampler shows how each one walks from noise to galaxy.
With only a :class:`NoiseSchedule` (no model) the forward part works and the reverse part is
disabled.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd
import torch
import traitlets as T

from .._validation import as_bands, as_images
from ..checkpoints import Checkpoint
from ..data.surveys import Survey
from ..data.transforms import AsinhStretch, Normalizer
from ..diffusion import samplers
from ..diffusion.schedules import NoiseSchedule
from ..pretrained import as_checkpoint
from ..viz import STRETCHES, rgb_composite
from ._async import launch
from ._bokeh import holoviews_widget, load_bokeh, refresh_bokeh
from .gallery import _mosaic, _png

__all__ = ["DiffusionStepper", "DiffusionStepperState", "DiffusionStepperView"]

def _sampler_eta(name: str) -> float:
    """The default η of sampler ``name`` (0 for those without one)."""
    eta = inspect.signature(samplers.SAMPLERS[name]).parameters.get("eta")
    return 0.0 if eta is None else float(eta.default)


_NO_MODEL = ("checkpoint: the reverse process needs a trained model: this stepper was given only a "
             "NoiseSchedule; pass a Checkpoint (e.g. gw.pretrained.load('desi-tiny')) to run it")


class DiffusionStepperState(T.HasTraits):
    """Everything the DiffusionStepper shows; drive it from code exactly as the controls do.

    Model-space images (``x_t``, the recorded frames) are ``(C, H, W)`` float32 numpy arrays.
    """

    schedule = T.Instance(NoiseSchedule, help="noise schedule of the forward process")
    checkpoint = T.Instance(Checkpoint, allow_none=True, help="trained model for the reverse process")
    normalizer = T.Instance(Normalizer, help="flux <-> model space")
    galaxies = T.Any(help="flux images (N, C, H, W) to diffuse; NaN pixels allowed")
    bands = T.Tuple(help="band names, bluest first")
    zeropoint = T.Float(22.5, help="AB zeropoint of the flux unit")
    galaxy = T.Int(0, help="index of the galaxy diffused forward")
    t = T.Int(0, help="forward-process timestep, 0 .. T-1")
    noise_seed = T.Int(0, help="seed of the fixed forward-process noise ε")
    display = T.Enum(("rgb", "band"), default_value="rgb",
                     help="'rgb': colour composite of the flux; 'band': one band in model space")
    band = T.Int(1, help="channel shown when display == 'band'")
    stretch = T.Enum(STRETCHES, default_value="lupton", help="stretch of the colour composites")
    zoom = T.Int(4, help="screen pixels per image pixel")
    sampler = T.Enum(tuple(samplers.SAMPLERS), default_value=samplers.DEFAULT_SAMPLER,
                     help="reverse-process sampler, a name of gw.samplers.SAMPLERS")
    steps = T.Int(samplers.DEFAULT_STEPS, help="sampler steps (DDPM always takes all T; Heun evaluates "
                                               "the network 2 steps - 1 times)")
    eta = T.Float(help="η of the samplers that take it (DDIM, DPM-Solver++ and its SDE, ancestral Euler): "
                       "0 deterministic, 1 the DDPM-like noise; the others ignore it. Choosing a sampler "
                       "sets it to that sampler's own default")
    seed = T.Int(0, help="seed of the reverse process")
    frames = T.List(help="recorded reverse steps: dicts with i, t (fractional for the σ-space samplers), "
                         "sigma, x, x0_pred")
    frame = T.Int(0, help="frame shown by the player")
    busy = T.Bool(False, help="the reverse process is running")

    @T.validate("galaxies")
    def _check_galaxies(self, proposal: dict) -> np.ndarray:
        return as_images(proposal["value"], "galaxies", allow_nan=True)

    @T.validate("galaxy", "t", "band", "frame", "steps", "zoom")
    def _check_range(self, proposal: dict) -> int:
        name, value = proposal["trait"].name, proposal["value"]
        lo, hi = {"galaxy": (0, len(self.galaxies) - 1 if self.galaxies is not None else 0),
                  "t": (0, self.T - 1), "band": (0, len(self.bands) - 1 if self.bands else 0),
                  "frame": (0, max(len(self.frames) - 1, 0)), "steps": (1, self.T),
                  "zoom": (1, 64)}[name]
        if not lo <= value <= hi:
            raise T.TraitError(f"{name}: expected an integer in {lo}..{hi}, got {value}")
        return value

    @T.validate("eta")
    def _check_eta(self, proposal: dict) -> float:
        if not proposal["value"] >= 0:
            raise T.TraitError(f"eta: expected eta >= 0, got {proposal['value']!r}")
        return proposal["value"]

    @T.observe("frames")
    def _reset_frame(self, change: dict) -> None:
        self.frame = 0

    @T.default("eta")
    def _default_eta(self) -> float:
        return _sampler_eta(self.sampler)

    @T.observe("sampler")
    def _eta_follows_sampler(self, change: dict) -> None:
        self.eta = _sampler_eta(change["new"])

    # -- the schedule ----------------------------------------------------------------------------
    @property
    def T(self) -> int:
        """Number of diffusion steps of the schedule."""
        return self.schedule.T if self.schedule is not None else 1

    @property
    def can_reverse(self) -> bool:
        """Whether there is a model to run the reverse process."""
        return self.checkpoint is not None

    def schedule_table(self) -> pd.DataFrame:
        """``t``, ``alpha_bar`` (ᾱ_t) and ``snr`` (ᾱ_t / (1 - ᾱ_t)) for every timestep."""
        return pd.DataFrame({"t": np.arange(self.T), "alpha_bar": self.schedule.alphas_cumprod.numpy(),
                             "snr": self.schedule.snr.numpy()})

    @property
    def alpha_bar_t(self) -> float:
        """ᾱ at the forward slider's ``t``."""
        return float(self.schedule.alphas_cumprod[self.t])

    @property
    def snr_t(self) -> float:
        """Signal-to-noise ratio ᾱ_t / (1 - ᾱ_t) at ``t``."""
        return float(self.schedule.snr[self.t])

    # -- forward process -------------------------------------------------------------------------
    def x0(self) -> np.ndarray:
        """The chosen galaxy in model space, ``(C, H, W)`` (NaN where its flux is NaN)."""
        flux = self.galaxies[self.galaxy]
        return np.asarray(self.normalizer.forward(flux[None]), dtype=np.float32)[0]

    def noise(self) -> np.ndarray:
        """The fixed forward-process noise ε (``noise_seed``), ``(C, H, W)``."""
        generator = torch.Generator().manual_seed(self.noise_seed)
        return torch.randn(self.galaxies.shape[1:], generator=generator).numpy()

    def x_t(self) -> np.ndarray:
        """``q_sample(x_0, t, ε)``: the chosen galaxy diffused to ``t`` with the fixed noise."""
        x0, noise = torch.from_numpy(self.x0())[None], torch.from_numpy(self.noise())[None]
        return self.schedule.q_sample(x0, torch.tensor([self.t]), noise)[0].numpy()

    # -- reverse process -------------------------------------------------------------------------
    def _settings(self) -> dict:
        return {"sampler": self.sampler, "steps": self.steps, "eta": self.eta, "seed": self.seed}

    @property
    def uses_steps(self) -> bool:
        """Whether the chosen sampler takes ``steps`` (all but DDPM)."""
        return self.sampler != "ddpm"

    @property
    def uses_eta(self) -> bool:
        """Whether the chosen sampler takes ``eta`` (DDIM, DPM-Solver++, ancestral Euler)."""
        return "eta" in inspect.signature(samplers.SAMPLERS[self.sampler]).parameters

    def steps_to_record(self, sampler: str | None = None, steps: int | None = None) -> int:
        """Frames a reverse run records: ``steps`` (one per step, also for Heun), DDPM all T."""
        sampler = self.sampler if sampler is None else sampler
        return self.T if sampler == "ddpm" else (self.steps if steps is None else steps)

    def _compute(self, settings: dict, callback: Callable[[dict], None] | None = None) -> list[dict]:
        """Run the sampler on one galaxy and return its frames; touches no trait (thread-safe)."""
        if self.checkpoint is None:
            raise ValueError(_NO_MODEL)
        ckpt, frames = self.checkpoint, []

        def record(info: dict) -> None:
            t = float(info["t"])
            sigma = info.get("sigma", float(self.schedule.sigmas[round(t)]))
            frames.append({"i": int(info["i"]), "t": int(t) if t == int(t) else t, "sigma": float(sigma),
                           "x": info["x"][0].float().cpu().numpy().copy(),
                           "x0_pred": info["x0_pred"][0].float().cpu().numpy().copy()})
            if callback is not None:
                callback(info)

        shape = (1, *self.galaxies.shape[1:])
        generator = torch.Generator().manual_seed(settings["seed"])
        fn = samplers.SAMPLERS[settings["sampler"]]
        options = inspect.signature(fn).parameters
        kwargs = {key: settings[key] for key in ("steps", "eta") if key in options}
        fn(ckpt.model, self.schedule, shape, callback=record, generator=generator, progress=False, **kwargs)
        return frames

    def run_reverse(self, callback: Callable[[dict], None] | None = None) -> list[dict]:
        """Draw one galaxy with ``sampler`` and record every step into ``frames``.

        Every sampler but DDPM takes ``steps`` steps (those with an ``eta`` take it too), DDPM all
        T; ``seed`` fixes the draw. Each frame holds the step's ``x_t`` (the VP sample the network
        sees), the network's ``x̂_0``, the timestep ``t`` (fractional for the σ-space samplers) and
        the noise level ``sigma``.
        ``callback`` also receives the sampler's per-step dicts. Raises ``ValueError`` without a
        model.
        """
        settings = self._settings()
        self.busy = True
        try:
            self.frames = self._compute(settings, callback)
        finally:
            self.busy = False
        return self.frames

    @property
    def frame_t(self) -> int | None:
        """Timestep of the frame shown, rounded to an integer, or None before a reverse run."""
        return round(self.frames[self.frame]["t"]) if self.frames else None

    # -- pictures --------------------------------------------------------------------------------
    def picture(self, x: np.ndarray) -> np.ndarray:
        """A model-space image ``(C, H, W)`` as ``(H, W, 3)`` uint8 for display.

        ``display == "rgb"``: colour composite of ``normalizer.inverse(x)`` (model space clipped to
        [-1, 1] first, so pure noise shows as saturated speckle). ``"band"``: channel ``band`` in
        model space, [-1, 1] mapped linearly to black..white. NaN pixels show black.
        """
        x = np.asarray(x, dtype=np.float32)
        if self.display == "band":
            grey = np.nan_to_num((np.clip(x[self.band], -1, 1) + 1) * 127.5, nan=0.0)
            return np.repeat(grey.round().astype(np.uint8)[..., None], 3, axis=-1)
        flux = np.asarray(self.normalizer.inverse(x[None]), dtype=np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):  # Lupton's colour ratio on blank pixels
            return rgb_composite(flux, self.bands, stretch=self.stretch, zeropoint=self.zeropoint)[0]

    def png(self, x: np.ndarray) -> bytes:
        """:meth:`picture` of ``x`` zoomed, as PNG bytes (origin at the bottom left)."""
        return _png(_mosaic(self.picture(x)[None], 1, self.zoom))

    def forward_png(self) -> bytes:
        """The chosen galaxy diffused to ``t``, as PNG bytes."""
        return self.png(self.x_t())

    def frame_png(self, which: str = "x") -> bytes:
        """``"x"`` (x_t) or ``"x0_pred"`` (x̂_0) of the frame shown, as PNG bytes (blank before a run)."""
        if which not in ("x", "x0_pred"):
            raise ValueError(f"which: expected 'x' or 'x0_pred', got {which!r}")
        if not self.frames:
            h, w = self.galaxies.shape[-2:]
            return _png(np.full((h * self.zoom, w * self.zoom, 3), 255, np.uint8))
        return self.png(self.frames[self.frame][which])


def _panel(label: W.Widget, image: W.Image) -> W.VBox:
    """A label over an image shown at its own size: not stretched to a long label's width, not
    shrunk beside the schedule plots."""
    return W.VBox([label, image], layout=W.Layout(align_items="flex-start", flex="0 0 auto"))


class DiffusionStepperView(W.VBox):
    """ipywidgets view of a :class:`DiffusionStepperState`: the forward slider with its images and
    the ᾱ_t / SNR plots (HoloViews through Panel), and the reverse-process player."""

    def __init__(self, state: DiffusionStepperState, threaded: bool = True, **kwargs: Any) -> None:
        import holoviews as hv

        load_bokeh()
        self.state, self.threaded = state, threaded
        # forward process
        self.t = W.IntSlider(min=0, max=state.T - 1, description="t")
        self.t_play = W.Play(min=0, max=state.T - 1, step=max(1, state.T // 50), interval=100)
        self.galaxy = W.IntSlider(min=0, max=len(state.galaxies) - 1, description="galaxy")
        self.noise_seed = W.IntText(description="noise seed")
        self.display = W.ToggleButtons(options=("rgb", "band"), description="display")
        self.band = W.Dropdown(options=[(b, i) for i, b in enumerate(state.bands)], description="band")
        self.clean_image = W.Image(format="png")
        self.forward_image = W.Image(format="png")
        self.forward_label = W.HTML()
        # reverse process
        self.sampler = W.Dropdown(options=tuple(samplers.SAMPLERS), description="sampler")
        self.steps = W.IntSlider(min=1, max=state.T, description="steps")
        self.eta = W.FloatSlider(min=0.0, max=1.0, step=0.05, description="η")
        self.seed = W.IntText(description="seed")
        self.run_button = W.Button(description="run reverse process", icon="play", button_style="primary")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="sampling")
        self.status = W.HTML()
        self.frame = W.IntSlider(min=0, max=0, description="step")
        self.play = W.Play(min=0, max=0, interval=150)
        self.x_image = W.Image(format="png")
        self.x0_image = W.Image(format="png")
        self.frame_label = W.HTML()
        names = ("t", "galaxy", "noise_seed", "display", "band", "sampler", "steps", "eta", "seed", "frame")
        self._links = [W.link((state, name), (getattr(self, name), "value")) for name in names]
        # the slider is the source: a jslink copies source to target when the view is created,
        # so a Play widget as source would reset t (e.g. DiffusionStepper(..., t=250)) to 0
        self._jslinks = [W.jslink((self.t, "value"), (self.t_play, "value")),
                         W.jslink((self.frame, "value"), (self.play, "value"))]
        self.run_button.on_click(lambda _: self.run())

        # ᾱ_t and SNR with markers at t (black) and at the reverse frame's t (red)
        table = state.schedule_table()
        self._t_stream = hv.streams.Stream.define("Forward", t=state.t)()
        self._frame_stream = hv.streams.Stream.define("Frame", frame_t=-1)()
        opts = {"width": 320, "height": 240, "show_grid": True, "tools": ["hover"]}

        def plot(column: str, label: str, logy: bool):
            y = hv.Dimension(column, label=label)
            curve = hv.Curve(table, "t", y).opts(logy=logy, **opts)
            values = table[column].to_numpy()

            def marker(t: int):
                return hv.Points([(t, values[t])], ["t", y]).opts(color="black", size=9)

            def frame_marker(frame_t: int):
                points = [(frame_t, values[frame_t])] if frame_t >= 0 else []
                return hv.Points(points, ["t", y]).opts(color="#d62728", size=9, marker="triangle")

            return (curve * hv.DynamicMap(marker, streams=[self._t_stream])
                    * hv.DynamicMap(frame_marker, streams=[self._frame_stream]))

        self.schedule_pane, self.schedule_plot = holoviews_widget(
            plot("alpha_bar", "ᾱ_t", False) + plot("snr", "SNR = ᾱ_t / (1 − ᾱ_t)", True))

        forward = W.VBox([
            W.HTML("<b>forward process</b> q(x_t | x_0): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, fixed ε"),
            W.HBox([self.t_play, self.t]), W.HBox([self.galaxy, self.noise_seed]),
            W.HBox([self.display, self.band]),
            W.HBox([_panel(W.HTML("x_0"), self.clean_image),
                    _panel(self.forward_label, self.forward_image), self.schedule_plot]),
        ])
        reverse_note = W.HTML("" if state.can_reverse else f"<i>{_NO_MODEL}</i>")
        reverse = W.VBox([
            W.HTML("<b>reverse process</b> p(x_{t−1} | x_t): the sampler's x_t and its estimate x̂_0"),
            reverse_note, W.HBox([self.sampler, self.steps, self.eta]),
            W.HBox([self.seed, self.run_button, self.progress]), self.status,
            W.HBox([self.play, self.frame, self.frame_label]),
            W.HBox([_panel(W.HTML("x_t"), self.x_image), _panel(W.HTML("x̂_0"), self.x0_image)]),
        ])
        super().__init__([forward, reverse], **kwargs)
        state.observe(self._on_forward, names=["t", "galaxy", "noise_seed", "display", "band", "stretch",
                                               "zoom", "galaxies", "normalizer"])
        state.observe(self._on_frames, names=["frames"])
        state.observe(self._on_frame, names=["frame", "display", "band", "stretch", "zoom"])
        state.observe(self._on_controls, names=["busy", "sampler"])
        self._on_forward()
        self._on_frames()
        self._on_controls()

    def _on_forward(self, change: dict | None = None) -> None:
        state = self.state
        self.clean_image.value = state.png(state.x0())
        self.forward_image.value = state.forward_png()
        self.forward_label.value = (f"x_t at t = {state.t}: ᾱ_t = {state.alpha_bar_t:.4f}, "
                                    f"SNR = {state.snr_t:.3g}")
        self._t_stream.event(t=state.t)

    def _on_frames(self, change: dict | None = None) -> None:
        last = max(len(self.state.frames) - 1, 0)
        self.play.max = self.frame.max = last
        self._on_frame()

    def _on_frame(self, change: dict | None = None) -> None:
        state = self.state
        self.x_image.value = state.frame_png("x")
        self.x0_image.value = state.frame_png("x0_pred")
        if state.frames:
            info = state.frames[state.frame]
            t = info["t"] if isinstance(info["t"], int) else f"{info['t']:.1f}"
            self.frame_label.value = (f"step {info['i'] + 1} of {len(state.frames)}, t = {t}, "
                                      f"σ = {info['sigma']:.3g}")
        else:
            self.frame_label.value = "no reverse run yet"
        self._frame_stream.event(frame_t=-1 if state.frame_t is None else state.frame_t)

    def _on_controls(self, change: dict | None = None) -> None:
        state = self.state
        off = state.busy or not state.can_reverse
        for control in (self.run_button, self.sampler, self.seed):
            control.disabled = off
        self.steps.disabled = off or not state.uses_steps
        self.eta.disabled = off or not state.uses_eta
        self.run_button.description = "running…" if state.busy else "run reverse process"

    def run(self) -> None:
        """What the run button does: the reverse process (in a thread in a kernel), then the frames."""
        state = self.state
        settings = state._settings()
        total = state.steps_to_record(settings["sampler"], settings["steps"])
        launch(state, lambda callback: state._compute(settings, callback),
               lambda frames: setattr(state, "frames", frames), self.progress, self.status, total,
               self.threaded)


class DiffusionStepper:
    """The forward and the reverse diffusion process of one galaxy, step by step (for teaching).

    Parameters
    ----------
    checkpoint : Checkpoint, NoiseSchedule, path or str
        A trained model (file, shipped name or Checkpoint: forward and reverse process) or only a
        :class:`~galwidgets.diffusion.NoiseSchedule` (forward process only).
    galaxies : Survey or array (N, C, H, W), optional
        Galaxies to diffuse forward (NaN pixels allowed); default 4 mock galaxies
        ``simulate_survey(4, size=checkpoint.size, seed=seed)``.
    bands : sequence of str, optional
        Band names; default the Survey's or the checkpoint's, else g, r, z.
    size : int
        Cutout size of the default galaxies when there is no checkpoint.
    seed : int
        Seed of the default galaxies.
    threaded : bool
        Run the reverse process in a worker thread when in a kernel.
    **settings
        Initial :class:`DiffusionStepperState` settings (``t``, ``sampler``, ``steps``, ...).

    Attributes
    ----------
    state : DiffusionStepperState
    view : DiffusionStepperView

    Examples
    --------
    >>> st = gw.widgets.DiffusionStepper(gw.pretrained.load("desi-tiny"))
    >>> st.state.t = 300; st.state.run_reverse(); len(st.state.frames)  # DEFAULT_STEPS frames
    15
    >>> st.state.sampler = "ddim"; st.state.steps = 50; len(st.state.run_reverse())
    50
    """

    def __init__(self, checkpoint: Any, galaxies: Any = None, bands: Any = None, size: int = 64,
                 seed: int = 0, threaded: bool = True, **settings: Any) -> None:
        if isinstance(checkpoint, NoiseSchedule):
            ckpt, schedule = None, checkpoint
        else:
            ckpt = as_checkpoint(checkpoint)
            if ckpt.schedule is None:
                raise ValueError(f"checkpoint: expected a diffusion model with a noise schedule, got "
                                 f"{type(ckpt.model).__name__} (schedule None)")
            schedule, size = ckpt.schedule, ckpt.size
        if galaxies is None:
            from ..data.simulate import simulate_survey

            galaxies = simulate_survey(4, size=size, bands=ckpt.bands if ckpt else None,
                                       seed=seed, progress=False)
        flux = as_images(galaxies, "galaxies", allow_nan=True,
                         channels=len(ckpt.bands) if ckpt is not None else None)
        names = bands or (galaxies.bands if isinstance(galaxies, Survey) else None) or (
            ckpt.bands if ckpt is not None else ("g", "r", "z")[: flux.shape[1]])
        names = as_bands(names, flux.shape[1])
        if ckpt is not None:
            normalizer = ckpt.normalizer
        else:  # fitted to the galaxies shown (NaN pixels ignored)
            normalizer = AsinhStretch.fit(np.where(np.isfinite(flux), flux, 0))
        zeropoint = galaxies.zeropoint if isinstance(galaxies, Survey) else (
            ckpt.zeropoint if ckpt is not None else 22.5)
        settings.setdefault("band", names.index("r") if "r" in names else len(names) // 2)
        sampler, steps = ckpt.default_sampler if ckpt is not None else (samplers.DEFAULT_SAMPLER,
                                                                        samplers.DEFAULT_STEPS)
        settings.setdefault("sampler", sampler)
        settings.setdefault("steps", min(steps or schedule.T, schedule.T))
        eta = settings.pop("eta", None)  # set after the sampler, whose choice resets η to its own default
        try:
            self.state = DiffusionStepperState(schedule=schedule, checkpoint=ckpt, normalizer=normalizer,
                                               galaxies=flux, bands=names, zeropoint=zeropoint, **settings)
            if eta is not None:
                self.state.eta = eta
        except T.TraitError as exc:  # the public error type for bad arguments
            raise ValueError(str(exc)) from None
        self.view = DiffusionStepperView(self.state, threaded=threaded)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return refresh_bokeh(self.view)._repr_mimebundle_(**kwargs)
