"""Diffusion processes: noise schedules, reverse-process samplers, forward models of observations.

Guided samplers (``inpaint``, ``sdedit``, ``dps``) are in :mod:`.samplers` like the plain ones;
flux-space workflows built on them (``inpaint_flux``, ``domain_transfer``, ``transfer_figure``,
``deconvolve``) are here too.
"""

from . import operators, samplers
from .deconvolution import DeconvolutionResult, deconvolve
from .inpainting import InpaintResult, inpaint_flux
from .samplers import ddim, ddpm, dps, inpaint, sdedit
from .schedules import NoiseSchedule
from .transfer import domain_transfer, transfer_figure

__all__ = [
    "DeconvolutionResult", "InpaintResult", "NoiseSchedule", "ddim", "ddpm", "deconvolve",
    "domain_transfer", "dps", "inpaint", "inpaint_flux", "operators", "samplers", "sdedit",
    "transfer_figure",
]
