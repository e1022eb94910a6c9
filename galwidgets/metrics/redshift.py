"""The photometric-redshift loss of Nishizawa et al. (2020) and its use to score conditional generators.

Nishizawa et al. (2020; introduced for the HSC photo-z challenge by Tanaka et al. 2018) score a
redshift estimate with a bounded loss that neither ignores nor over-weights outliers,

.. math:: L(\\Delta z) = 1 - \\frac{1}{1 + (\\Delta z / \\gamma)^2},
   \\qquad \\Delta z = \\frac{z_\\mathrm{pred} - z_\\mathrm{true}}{1 + z_\\mathrm{true}},

with :math:`\\gamma = 0.15`: 0 for a perfect estimate, 1/2 at :math:`|\\Delta z| = \\gamma` and
towards 1 for catastrophic outliers. The redshift-conditioning study uses its mean over galaxies
to ask whether galaxies generated *at* a redshift look like galaxies *from* that redshift:
:func:`galwidgets.models.redshift.conditional_redshift_loss` predicts the redshift of generated
flux images with a trained :class:`~galwidgets.models.RedshiftEstimator` and scores it against
the conditioning redshifts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_real_array, check_positive

__all__ = ["redshift_loss"]


def _redshifts(z: Any, name: str) -> np.ndarray:
    arr = as_real_array(z, name).astype(np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one redshift, got none")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite redshifts, found {int((~np.isfinite(arr)).sum())} NaN/inf")
    return arr


def redshift_loss(z_pred: Any, z_true: Any, gamma: float = 0.15) -> float:
    """Mean redshift loss of Nishizawa et al. (2020): ``mean(1 - 1 / (1 + (Δz / γ)²))``.

    Parameters
    ----------
    z_pred : array_like
        Estimated redshifts, one per galaxy.
    z_true : array_like
        True (or conditioning) redshifts, same number; each > -1.
    gamma : float
        Scale of the loss: ``|Δz| = γ`` costs 1/2 (0.15 in Nishizawa et al. 2020).

    Returns
    -------
    float
        In ``[0, 1)``: 0 for perfect estimates.

    Examples
    --------
    >>> redshift_loss([0.1, 0.2], [0.1, 0.2])
    0.0
    >>> round(redshift_loss([1.3], [1.0]), 6)  # Δz = 0.3 / (1 + 1) = γ
    0.5
    """
    z_pred = _redshifts(z_pred, "z_pred")
    z_true = _redshifts(z_true, "z_true")
    gamma = check_positive(gamma, "gamma")
    if z_pred.shape != z_true.shape:
        raise ValueError(f"z_pred: expected one estimate per true redshift ({z_true.size}), "
                         f"got {z_pred.size}")
    if (z_true <= -1).any():
        raise ValueError(f"z_true: expected redshifts > -1, got a minimum of {z_true.min()}")
    dz = (z_pred - z_true) / (1 + z_true)
    return float(np.mean(1 - 1 / (1 + (dz / gamma) ** 2)))
