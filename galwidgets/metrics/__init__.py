"""Metrics on flux images: photometry, distances, morphology, Fréchet distances, structure, trust.

Metrics take flux images (or a Survey), never model-space tensors, and return pandas tables or
dicts; a value that cannot be measured for one galaxy is NaN with a flag, never an exception.

Modules: :mod:`.photometry` (aperture magnitudes, colours, half-light radius), :mod:`.distances`
(Synthetic Galaxy Distance, Cohen's d, binned KL), :mod:`.segmentation` (the central source of a
stamp), :mod:`.morphology` (statmorph in a process pool), :mod:`.nonparametric` (fast batched
Gini/M20), :mod:`.shapes` (isophotal area, ellipticity, fit residuals), :mod:`.fid` (Fréchet
distances, FID, KID), :mod:`.structural` (SSIM, SSIM gain, nearest neighbours) and
:mod:`.hallucination` (posterior variance ratio), :mod:`.recovery` (inpainted flux) and
:mod:`.redshift` (the redshift loss), :mod:`.fluxscale` (the flux-scale check of Smith et al.).
"""

from __future__ import annotations

from .._lazy import attach

_NAMES = {
    "aperture_weights": ".photometry:aperture_weights",
    "background": ".photometry:background",
    "binned_kl": ".distances:binned_kl",
    "central_median_flux": ".fluxscale:central_median_flux",
    "central_segmap": ".segmentation:central_segmap",
    "CentralSegmentation": ".segmentation:CentralSegmentation",
    "cohens_d": ".distances:cohens_d",
    "colour_names": ".photometry:colour_names",
    "conditional_redshift_loss": "..models.redshift:conditional_redshift_loss",
    "CONVENTIONS": ".photometry:CONVENTIONS",
    "distances": ".distances",
    "fid": ".fid:fid",
    "FLAGS": ".photometry:FLAGS",
    "flux_scale": ".fluxscale:flux_scale",
    "fluxscale": ".fluxscale",
    "frechet_distance": ".fid:frechet_distance",
    "frechet_morphology_distance": ".fid:frechet_morphology_distance",
    "galaxy_fitting_loss": ".shapes:galaxy_fitting_loss",
    "galaxy_kl_loss": ".distances:galaxy_kl_loss",
    "gaussian_statistics": ".fid:gaussian_statistics",
    "gini": ".nonparametric:gini",
    "gini_m20": ".nonparametric:gini_m20",
    "hallucination": ".hallucination",
    "inception_features": ".fid:inception_features",
    "inpainting_recovery": ".recovery:inpainting_recovery",
    "isophotal_shapes": ".shapes:isophotal_shapes",
    "kid": ".fid:kid",
    "load_inception": ".fid:load_inception",
    "LOTZ_2008": ".nonparametric:LOTZ_2008",
    "m20": ".nonparametric:m20",
    "morphology": ".morphology:morphology",
    "MORPHOLOGY_COLUMNS": ".morphology:MORPHOLOGY_COLUMNS",
    "morphology_features": ".fid:morphology_features",
    "MORPHOLOGY_FLAGS": ".morphology:MORPHOLOGY_FLAGS",
    "nearest_neighbours": ".structural:nearest_neighbours",
    "NN_FLAGS": ".structural:NN_FLAGS",
    "nonparametric": ".nonparametric",
    "NONPARAMETRIC_FLAGS": ".nonparametric:NONPARAMETRIC_FLAGS",
    "photometry": ".photometry:photometry",
    "posterior_summary": ".hallucination:posterior_summary",
    "prior_driven_mask": ".hallucination:prior_driven_mask",
    "recovery": ".recovery",
    "redshift": ".redshift",
    "redshift_loss": ".redshift:redshift_loss",
    "segmentation": ".segmentation",
    "sgd_columns": ".distances:sgd_columns",
    "SHAPE_FLAGS": ".shapes:SHAPE_FLAGS",
    "shapes": ".shapes",
    "sky_statistics": ".segmentation:sky_statistics",
    "split_half_baseline": ".distances:split_half_baseline",
    "ssim": ".structural:ssim",
    "ssim_gain": ".structural:ssim_gain",
    "stamp_morphology": ".morphology:stamp_morphology",
    "STATMORPH_QUANTITIES": ".morphology:STATMORPH_QUANTITIES",
    "structural": ".structural",
    "synthetic_galaxy_distance": ".distances:synthetic_galaxy_distance",
    "training_nn_distances": ".structural:training_nn_distances",
    "variance_ratio": ".hallucination:variance_ratio",
    "variance_ratio_map": ".hallucination:variance_ratio_map",
    "whole_pixel_aperture": ".photometry:whole_pixel_aperture",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
