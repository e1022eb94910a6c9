"""Diffusion processes: noise schedules and reverse-process samplers."""

from . import samplers
from .samplers import ddim, ddpm
from .schedules import NoiseSchedule

__all__ = ["NoiseSchedule", "ddim", "ddpm", "samplers"]
