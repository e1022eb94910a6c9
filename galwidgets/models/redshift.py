"""A small CNN that estimates a galaxy's redshift from its multi-band image.

Image-based photometric redshifts (Hoyle 2016; Pasquet et al. 2019) learn colours, sizes and
surface brightness straight from the pixels. Here the estimator is the *judge* of conditional
generators: the redshift-conditioning study generates galaxies at requested redshifts and scores
them by how well a CNN trained on real (here: mock) galaxies recovers those redshifts, with the
loss of :func:`galwidgets.metrics.redshift_loss`.

:class:`RedshiftEstimator` regresses ``log(1 + z)``; :func:`train_redshift_estimator` trains it with
the shared loop :func:`galwidgets.models.fitting.fit` and :func:`predict_redshift` applies it to
flux images.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import as_images, check_finite, check_positive, check_positive_int
from ..checkpoints import Checkpoint
from ..data.surveys import Survey
from ..data.transforms import Normalizer
from .fitting import Batch, fit

__all__ = ["RedshiftEstimator", "predict_redshift", "train_redshift_estimator"]


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


def _lr_factor(schedule: str, step: int, steps: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up, then constant or cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train_redshift_estimator(
    model: RedshiftEstimator,
    data: Survey,
    steps: int = 2000,
    batch_size: int = 64,
    *,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    lr_schedule: str = "cosine",
    warmup_steps: int = 100,
    column: str = "redshift",
    **fit_kwargs: Any,
) -> Checkpoint:
    """Train a :class:`RedshiftEstimator` on galaxies with known redshifts (e.g. mock galaxies).

    Minimises the mean squared error in ``log(1 + z)`` with AdamW, a linear warm-up and (by default)
    a cosine decay of the learning rate; random flips and 90° rotations augment the images.

    Parameters
    ----------
    model : RedshiftEstimator
        Trained in place.
    data : Survey
        Flux images with a catalog holding the true redshifts (column ``column``), e.g.
        :func:`galwidgets.data.simulate_survey`.
    steps, batch_size : int
        Optimisation steps and galaxies per step.
    lr, weight_decay : float
        AdamW learning rate (peak) and weight decay.
    lr_schedule : {"cosine", "constant"}
        Learning rate after the warm-up.
    warmup_steps : int
        Linear warm-up length (0 for none).
    column : str
        Catalog column of the true redshift.
    **fit_kwargs
        Passed to :func:`~galwidgets.models.fitting.fit` (``normalizer``, ``augment``,
        ``checkpoint_dir``, ``resume``, ``seed``, ``device``, ``progress``, ...).

    Returns
    -------
    Checkpoint
        The estimator with the normalizer that maps flux to its input; use it with
        :func:`predict_redshift`.
    """
    if not isinstance(model, RedshiftEstimator):
        raise TypeError(f"model: expected a RedshiftEstimator, got {type(model).__name__}")
    check_positive(lr, "lr")
    weight_decay = check_finite(weight_decay, "weight_decay", "a finite non-negative number")
    if weight_decay < 0:
        raise ValueError(f"weight_decay: expected a finite non-negative number, got {weight_decay!r}")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule: expected 'cosine' or 'constant', got {lr_schedule!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) or warmup_steps < 0:
        raise ValueError(f"warmup_steps: expected a non-negative integer, got {warmup_steps!r}")
    if not isinstance(column, str):
        raise TypeError(f"column: expected a catalog column name, got {column!r}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def step(batch: Batch) -> dict[str, float]:
        factor = _lr_factor(lr_schedule, batch.step, steps, warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr * factor
        target = torch.log1p(batch.values[:, 0])
        loss = F.mse_loss(model.log1p_redshift(batch.x), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "lr": lr * factor}

    settings = {"lr": lr, "weight_decay": weight_decay, "lr_schedule": lr_schedule,
                "warmup_steps": int(warmup_steps), "optimizer": "AdamW", "target": f"log1p({column})"}
    config = {"training": settings, "target": {"column": column, "transform": "log1p"},
              **fit_kwargs.pop("config", {})}
    return fit(model, step, {"adamw": optimizer}, data, steps, batch_size, columns=column, config=config,
               **fit_kwargs)


@torch.no_grad()
def predict_redshift(
    estimator: Checkpoint | RedshiftEstimator,
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
    if isinstance(estimator, Checkpoint):
        model, normalizer = estimator.model, normalizer or estimator.normalizer
    else:
        model = estimator
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


MODELS = {"RedshiftEstimator": RedshiftEstimator}
