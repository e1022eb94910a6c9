"""Data layer: the mock survey, real-survey loaders, the Survey container, normalizers, corruptions.

>>> import galwidgets as gw
>>> mock = gw.data.simulate_survey(256, instrument="desi", seed=1)      # g, r, z with truth
>>> hsc = gw.data.load_fits_cutouts([{"g": "g.fits", "r": "r.fits", "i": "i.fits"}], size=128)
>>> real = gw.data.hubble_deep_field(size=64)                            # no download
>>> big = gw.data.simulate_survey(200_000, out="mock.h5")                 # rendered into a store
>>> store = gw.data.open_store("mock.h5")                                 # on disk, read lazily
>>> trailed, mask = gw.data.corruptions.add_satellite_trails(mock, seed=0)

Names are imported on first use (rendering workers import only what they need).
"""

from __future__ import annotations

from .._lazy import attach

_NAMES = {
    "cartoons": ".drawings:cartoons",
    "corruptions": ".corruptions",
    "add_satellite_trails": ".corruptions:add_satellite_trails",
    "observe": ".corruptions:observe",
    "psf_kernel": ".corruptions:psf_kernel",
    "satellite_trail": ".corruptions:satellite_trail",
    "BAND_WAVELENGTHS": ".instruments:BAND_WAVELENGTHS",
    "INSTRUMENTS": ".instruments:INSTRUMENTS",
    "Instrument": ".instruments:Instrument",
    "get_instrument": ".instruments:get_instrument",
    "HSCCutout": ".hsc:HSCCutout",
    "hubble_deep_field": ".hubble:hubble_deep_field",
    "load_hsc_pdr3": ".hsc:load_hsc_pdr3",
    "load_fits_cutouts": ".fits_cutouts:load_fits_cutouts",
    "load_hdf5": ".surveys:load_hdf5",
    "open_store": ".store:open_store",
    "render_to_store": ".store:render_to_store",
    "SurveyStore": ".store:SurveyStore",
    "streaming": ".streaming",
    "save_hdf5": ".surveys:save_hdf5",
    "sky_noise": ".noise:sky_noise",
    "draw_population": ".population:draw_population",
    "draw_evolving_population": ".evolving:draw_evolving_population",
    "add_morphology": ".morphotypes:add_morphology",
    "kcorrection": ".sed:kcorrection",
    "band_flux_ratio": ".sed:band_flux_ratio",
    "half_light_radius": ".population:half_light_radius",
    "render_catalog": ".render:render_catalog",
    "simulate_survey": ".simulate:simulate_survey",
    "Survey": ".surveys:Survey",
    "AsinhStretch": ".transforms:AsinhStretch",
    "ClipMinMax": ".transforms:ClipMinMax",
    "Normalizer": ".transforms:Normalizer",
    "normalizer_from_config": ".transforms:normalizer_from_config",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)

