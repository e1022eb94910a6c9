"""Metrics on flux images: photometry and the distances built on it.

Metrics take flux images (or a Survey), never model-space tensors, and return pandas tables or
dicts; a value that cannot be measured for one galaxy is NaN with a flag, never an exception.
"""

from .distances import cohens_d, sgd_columns, split_half_baseline, synthetic_galaxy_distance
from .photometry import FLAGS, aperture_weights, background, colour_names, photometry

__all__ = [
    "FLAGS",
    "aperture_weights",
    "background",
    "cohens_d",
    "colour_names",
    "photometry",
    "sgd_columns",
    "split_half_baseline",
    "synthetic_galaxy_distance",
]
