"""Diffusion processes: noise schedules, reverse-process samplers, forward models of observations."""

from . import operators, samplers
from .samplers import ddim, ddpm, dps, inpaint, sdedit
from .schedules import NoiseSchedule

__all__ = ["NoiseSchedule", "ddim", "ddpm", "dps", "inpaint", "operators", "samplers", "sdedit"]
