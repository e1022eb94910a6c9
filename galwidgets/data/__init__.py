"""Data layer: the mock survey simulator, the Survey container and normalizers."""

from .noise import sky_noise
from .simulate import BANDS, half_light_radius, simulate_survey
from .surveys import Survey
from .transforms import AsinhStretch, ClipMinMax, Normalizer, normalizer_from_config

__all__ = [
    "BANDS",
    "AsinhStretch",
    "ClipMinMax",
    "Normalizer",
    "Survey",
    "half_light_radius",
    "normalizer_from_config",
    "simulate_survey",
    "sky_noise",
]
