"""Diffusion processes: noise schedules, samplers, guided samplers and the flux-space workflows.

Floors (see ``docs/architecture.md``): :mod:`.schedules` (noise schedules) sits below the models;
:mod:`.samplers` (DDPM, DDIM and the other reverse-process integrators) above them; the guided
samplers :mod:`.repaint` (``inpaint``), :mod:`.editing` (``sdedit``) and :mod:`.posterior`
(``dps``) and the
forward models of observations :mod:`.operators` above those; the flux-space workflows that take a
:class:`~galwidgets.checkpoints.Checkpoint` — :mod:`.inpainting` (``inpaint_flux``),
:mod:`.transfer` (``domain_transfer``) and :mod:`.deconvolution` (``deconvolve``) — above the
checkpoints.

This ``__init__`` only names what the package offers; names are imported on first use.
"""

from __future__ import annotations

from .._lazy import attach

_NAMES = {
    "deconvolution": ".deconvolution",
    "inpainting": ".inpainting",
    "operators": ".operators",
    "posterior": ".posterior",
    "repaint": ".repaint",
    "samplers": ".samplers",
    "schedules": ".schedules",
    "editing": ".editing",
    "transfer": ".transfer",
    "DeconvolutionResult": ".deconvolution:DeconvolutionResult",
    "InpaintResult": ".inpainting:InpaintResult",
    "NoiseSchedule": ".schedules:NoiseSchedule",
    "ddim": ".samplers:ddim",
    "ddpm": ".samplers:ddpm",
    "deconvolve": ".deconvolution:deconvolve",
    "domain_transfer": ".transfer:domain_transfer",
    "dps": ".posterior:dps",
    "inpaint": ".repaint:inpaint",
    "inpaint_flux": ".inpainting:inpaint_flux",
    "sdedit": ".editing:sdedit",
    "transfer_figure": ".transfer:transfer_figure",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
