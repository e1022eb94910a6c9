"""A small CNN that estimates a galaxy's redshift from its multi-band image.

Image-based photometric redshifts (Hoyle 2016; Pasquet et al. 2019) learn colours, sizes and
surface brightness straight from the pixels. Here the estimator is the *judge* of conditional
generators: the redshift-conditioning study generates galaxies at requested redshifts and scores
them by how well a CNN trained on real (here: mock) galaxies recovers those redshifts, with the
loss of :func:`galwidgets.metrics.redshift_loss`.

:class:`RedshiftEstimator` regresses ``log(1 + z)``;
:func:`galwidgets.training.baselines.train_redshift_estimator` trains it with the shared loop
:func:`galwidgets.training.fitting.fit`; :func:`predict_redshift` applies it to flux images and
:func:`conditional_redshift_loss` scores a conditional generator with it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validation import as_images, check_finite, check_positive_int
from ..data.transforms import Normalizer

__all__ = ["RedshiftEstimator", "conditional_redshift_loss", "predict_redshift"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """Stride-2 conv then conv, each with GroupNorm and SiLU: halves the image, ``c_in -> c_out``."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, 2, 1), nn.GroupNorm(math.gcd(8, c_out), c_out), nn.SiLU(),
        nn.Conv2d(c_out, c_out, 3, 1, 1), nn.GroupNorm(math.gcd(8, c_out), c_out), nn.SiLU(),
    )


class RedshiftEstimator(nn.Module):
    """CNN regression of ``log(1 + z)`` from a model-space multi-band stamp.

    ``n_blocks`` stride-2 blocks (two 3x3 convolutions each, GroupNorm and SiLU, channels doubling
    from ``base_channels``), global average pooling, and an MLP with one hidden layer. The network
    works at any image size.

    Parameters
    ----------
    in_channels : int
        Bands of the images.
    base_channels : int
        Channels of the first block.
    n_blocks : int
        Number of stride-2 blocks.
    hidden : int
        Width of the MLP's hidden layer.
    dropout : float
        Dropout before the MLP's output layer.

    Notes
    -----
    ``forward`` returns the redshift ``z = exp(u) - 1`` (clamped at 0) of the regressed
    ``u = log(1 + z)`` (:meth:`log1p_redshift`), the quantity trained on: errors in ``log(1+z)``
    are close to ``Δz / (1 + z)``, the error the redshift loss scores.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 16, n_blocks: int = 4, hidden: int = 64,
                 dropout: float = 0.0) -> None:
        super().__init__()
        in_channels = check_positive_int(in_channels, "in_channels")
        base_channels = check_positive_int(base_channels, "base_channels")
        n_blocks = check_positive_int(n_blocks, "n_blocks")
        hidden = check_positive_int(hidden, "hidden")
        dropout = check_finite(dropout, "dropout", "a probability in [0, 1)")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        widths = [base_channels * 2 ** k for k in range(n_blocks)]
        self.features = nn.Sequential(*(_block(c_in, c_out) for c_in, c_out in
                                        zip([in_channels, *widths[:-1]], widths, strict=True)))
        self.head = nn.Sequential(nn.Linear(widths[-1], hidden), nn.SiLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))
        self.config = {"in_channels": in_channels, "base_channels": base_channels, "n_blocks": n_blocks,
                       "hidden": hidden, "dropout": dropout}

    def log1p_redshift(self, x: torch.Tensor) -> torch.Tensor:
        """``log(1 + z)`` estimated from model-space images ``x`` ``(N, C, H, W)``: shape ``(N,)``."""
        return self.head(self.features(x).mean(dim=(-2, -1)))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Redshift estimates ``(N,)`` (``expm1`` of :meth:`log1p_redshift`, at least 0)."""
        return torch.expm1(self.log1p_redshift(x)).clamp(min=0)


@torch.no_grad()
def predict_redshift(
    estimator: Any,
    images: Any,
    normalizer: Normalizer | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Redshifts of flux images estimated by a trained :class:`RedshiftEstimator`.

    Parameters
    ----------
    estimator : Checkpoint or RedshiftEstimator
        A checkpoint from :func:`train_redshift_estimator` / :func:`galwidgets.load_checkpoint`, or
        a bare model (then ``normalizer`` is required).
    images : Survey or array
        Flux images ``(N, C, H, W)`` in the bands the estimator was trained on.
    normalizer : Normalizer, optional
        Flux -> model-space map; by default the checkpoint's (the one the estimator was trained
        with: other normalizers give wrong redshifts).
    batch_size : int
        Galaxies per network call (on the model's device).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64 redshifts.
    """
    if isinstance(estimator, RedshiftEstimator):
        model = estimator
    else:  # a Checkpoint (or anything holding the model and its normalizer)
        model = getattr(estimator, "model", estimator)
        normalizer = normalizer or getattr(estimator, "normalizer", None)
    if not isinstance(model, RedshiftEstimator):
        raise TypeError(f"estimator: expected a RedshiftEstimator or its Checkpoint, "
                        f"got {type(model).__name__}")
    if normalizer is None:
        raise ValueError("normalizer: required with a bare RedshiftEstimator (pass the training normalizer, "
                         "or the Checkpoint)")
    batch_size = check_positive_int(batch_size, "batch_size")
    flux = as_images(images, "images", channels=model.config["in_channels"])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(flux), batch_size):
            x = np.asarray(normalizer.forward(flux[start:start + batch_size]), dtype=np.float32)
            out.append(model(torch.from_numpy(x).to(device)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).double().numpy()


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
        A trained redshift estimator (see
        :func:`galwidgets.training.baselines.train_redshift_estimator`).
    gamma : float
        Scale of the loss (see :func:`redshift_loss`).
    normalizer, batch_size
        Passed to :func:`predict_redshift` (``normalizer`` is needed for a bare
        model).

    Returns
    -------
    float
        The mean redshift loss.
    """
    if cond_redshift is None:
        cond_redshift = _catalog_redshifts(images)
        if cond_redshift is None:
            raise ValueError("cond_redshift: not given and images is not a Survey with a 'redshift' or "
                             "'cond_0' catalog column")
    z_pred = predict_redshift(estimator, images, normalizer=normalizer, batch_size=batch_size)
    from ..metrics.redshift import redshift_loss  # here: the metrics package costs imports

    return redshift_loss(z_pred, cond_redshift, gamma=gamma)


MODELS = {"RedshiftEstimator": RedshiftEstimator}
