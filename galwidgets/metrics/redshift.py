"""The photometric-redshift loss of Nishizawa et al. (2020) and its use to score conditional generators.

Nishizawa et al. (2020; introduced for the HSC photo-z challenge by Tanaka et al. 2018) score a
redshift estimate with a bounded loss that neither ignores nor over-weights outliers,

.. math:: L(\\Delta z) = 1 - \\frac{1}{1 + (\\Delta z / \\gamma)^2},
   \\qquad \\Delta z = \\frac{z_\\mathrm{pred} - z_\\mathrm{true}}{1 + z_\\mathrm{true}},

with :math:`\\gamma = 0.15`: 0 for a perfect estimate, 1/2 at :math:`|\\Delta z| = \\gamma` and
towards 1 for catastrophic outliers. The redshift-conditioning study uses its mean over galaxies
to ask whether galaxies generated *at* a redshift look like galaxies *from* that redshift:
:func:`conditional_redshift_loss` predicts the redshift of generated flux images with a trained
:class:`~galwidgets.models.RedshiftEstimator` and scores it against the conditioning redshifts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_real_array, check_positive

__all__ = ["conditional_redshift_loss", "redshift_loss"]


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


def _catalog_redshifts(images: Any) -> np.ndarray | None:
    """Conditioning redshifts stored with a Survey (``redshift`` or ``cond_0`` of Checkpoint.sample)."""
    catalog = getattr(images, "catalog", None)
    if catalog is None:
        return None
    for column in ("redshift", "cond_0"):
        if column in catalog.columns:
            return catalog[column].to_numpy()
    return None


def conditional_redshift_loss(
    images: Any,
    cond_redshift: Any,
    estimator: Any,
    *,
    gamma: float = 0.15,
    normalizer: Any = None,
    batch_size: int = 256,
) -> float:
    """Redshift loss of (generated) flux images against the redshifts they were conditioned on.

    A conditional generator that has learned how galaxies change with redshift produces images
    whose *estimated* redshift matches the requested one; a low loss says it has (as far as the
    estimator can tell: compare with the estimator's own loss on real galaxies).

    Parameters
    ----------
    images : Survey or array
        Flux images ``(N, C, H, W)``, e.g. ``checkpoint.sample(n, cond=z)``.
    cond_redshift : array_like or None
        The conditioning redshift of each image; None takes the ``redshift`` (or ``cond_0``, as
        written by :meth:`~galwidgets.Checkpoint.sample`) column of a Survey's catalog.
    estimator : Checkpoint or RedshiftEstimator
        A trained redshift estimator (see :func:`galwidgets.models.train_redshift_estimator`).
    gamma : float
        Scale of the loss (see :func:`redshift_loss`).
    normalizer, batch_size
        Passed to :func:`galwidgets.models.predict_redshift` (``normalizer`` is needed for a bare
        model).

    Returns
    -------
    float
        The mean redshift loss.
    """
    from ..models.redshift import predict_redshift  # the metrics stay importable without the models

    if cond_redshift is None:
        cond_redshift = _catalog_redshifts(images)
        if cond_redshift is None:
            raise ValueError("cond_redshift: not given and images is not a Survey with a 'redshift' or "
                             "'cond_0' catalog column")
    z_pred = predict_redshift(estimator, images, normalizer=normalizer, batch_size=batch_size)
    return redshift_loss(z_pred, cond_redshift, gamma=gamma)
