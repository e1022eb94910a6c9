"""Variational autoencoders (Kingma & Welling 2014): the likelihood-based baseline of the comparison.

:class:`VAE` is the unconditional convolutional VAE of the thesis's chapter 2; :class:`ConditionalVAE`
is the redshift-conditioned VAE (Sohn, Lee & Yan 2015) that the redshift-conditioning study
compares with a conditional DDPM: the condition is concatenated to the flattened encoder features
(before the Gaussian posterior ``q(z | x, c)``) and to the latent vector before decoding
(``p(x | z, c)``). Both are trained by :func:`galwidgets.training.baselines.train_vae` on the
shared loop :func:`galwidgets.training.fitting.fit` with the loss of :func:`vae_loss`, the negative evidence
lower bound with a Gaussian decoder (mean-squared reconstruction error) and a weighted KL term
(β-VAE, Higgins et al. 2017).

:func:`latent_traversal` and :func:`interpolate` decode paths through the latent space, for teaching
what a VAE learns.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_finite, check_positive_int

__all__ = ["VAE", "ConditionalVAE", "interpolate", "latent_traversal", "vae_loss"]


def _n_downsamplings(image_size: Any) -> int:
    """Stride-2 stages from ``image_size`` down to 4x4 (``image_size`` a power of two >= 8)."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise TypeError(f"image_size: expected an integer power of 2 >= 8, got {image_size!r}")
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size: expected a power of 2 >= 8 (8, 16, 32, 64, ...), got {image_size}")
    return int(math.log2(image_size)) - 2


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class _GaussianVAE(nn.Module):
    """Convolutional encoder to ``(mu, logvar)`` and decoder from ``z`` (with an optional condition).

    Encoder: stride-2 convolutions (GroupNorm, SiLU) from ``image_size`` down to 4x4, doubling the
    channels up to ``8 * base_channels``; the flattened features (with the condition appended) feed
    two linear layers giving the posterior mean and log-variance. Decoder: a linear layer from
    ``z`` (with the condition appended) to 4x4 features, stride-2 transposed convolutions back to
    ``image_size`` and a ``tanh`` output in model space ``[-1, 1]``.
    """

    def __init__(self, in_channels: int, image_size: int, base_channels: int, latent_dim: int,
                 cond_dim: int) -> None:
        super().__init__()
        n_down = _n_downsamplings(image_size)
        in_channels = check_positive_int(in_channels, "in_channels")
        base_channels = check_positive_int(base_channels, "base_channels")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.cond_dim = cond_dim
        self.image_size = int(image_size)
        widths = [base_channels * min(2 ** k, 8) for k in range(n_down)]
        encoder: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True):
            encoder += [nn.Conv2d(c_in, c_out, 4, 2, 1), _norm(c_out), nn.SiLU()]
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        features = widths[-1] * 16
        self.to_mu = nn.Linear(features + cond_dim, latent_dim)
        self.to_logvar = nn.Linear(features + cond_dim, latent_dim)
        self.from_latent = nn.Linear(latent_dim + cond_dim, features)
        decoder: list[nn.Module] = [nn.Unflatten(1, (widths[-1], 4, 4))]
        for c_in, c_out in itertools.pairwise(widths[::-1]):
            decoder += [_norm(c_in), nn.SiLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
        decoder += [_norm(widths[0]), nn.SiLU(), nn.ConvTranspose2d(widths[0], in_channels, 4, 2, 1),
                    nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)

    def _condition(self, cond: Any, n: int, device: torch.device) -> torch.Tensor | None:
        """``cond`` as an ``(n, cond_dim)`` float tensor (a scalar or one row is repeated), or None."""
        if not self.cond_dim:
            if cond is not None:
                raise ValueError(f"cond: {type(self).__name__} is unconditional; got a condition")
            return None
        if cond is None:
            raise ValueError(f"cond: {type(self).__name__} needs a {self.cond_dim}-d condition per galaxy "
                             "(e.g. its redshift); got None")
        c = torch.as_tensor(cond, dtype=torch.float32, device=device)
        if c.numel() == self.cond_dim:
            c = c.reshape(1, self.cond_dim).expand(n, self.cond_dim)
        if c.numel() != n * self.cond_dim:
            raise ValueError(f"cond: expected {n} conditions of size {self.cond_dim}, got shape "
                             f"{tuple(c.shape)}")
        return c.reshape(n, self.cond_dim)

    def _cat(self, h: torch.Tensor, cond: Any) -> torch.Tensor:
        c = self._condition(cond, len(h), h.device)
        return h if c is None else torch.cat([h, c], dim=1)

    def encode(self, x: torch.Tensor, cond: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``q(z | x[, c]) = N(mu, exp(logvar))`` of model-space images ``x``: ``(mu, logvar)``."""
        h = self._cat(self.encoder(x), cond)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor, cond: Any = None) -> torch.Tensor:
        """Model-space images ``(N, C, H, W)`` in ``[-1, 1]`` from latents ``z`` ``(N, latent_dim)``."""
        return self.decoder(self.from_latent(self._cat(z, cond)))

    def forward(self, x: torch.Tensor, cond: Any = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(recon, mu, logvar)``: reconstruction of ``x`` through ``z = mu + σ ε``.

        In training mode ``z`` is a reparameterised draw (Kingma & Welling 2014, eq. 10) with ``ε``
        from ``generator`` (the global generator if None); in eval mode ``z = mu``, so
        reconstructions are deterministic.
        """
        mu, logvar = self.encode(x, cond)
        z = mu
        if self.training:
            eps = torch.randn(mu.shape, generator=generator, device=generator.device if generator else None)
            z = mu + torch.exp(0.5 * logvar) * eps.to(mu.device)
        return self.decode(z, cond), mu, logvar

    @torch.no_grad()
    def generate(self, n: int, cond: Any = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` model-space images: ``z ~ N(0, I)`` decoded (with condition ``cond`` if conditional).

        Parameters
        ----------
        n : int
            Number of galaxies.
        cond : array_like, optional
            Condition per galaxy ``(n, cond_dim)`` (or one value for all) for a :class:`ConditionalVAE`.
        generator : torch.Generator, optional
            Source of the latent draws (a CPU generator; the same seed gives the same galaxies).
        """
        n = check_positive_int(n, "n")
        device = next(self.parameters()).device
        z = torch.randn((n, self.latent_dim), generator=generator,
                        device=generator.device if generator else None).to(device)
        return self.decode(z, cond)


class VAE(_GaussianVAE):
    """Unconditional convolutional VAE (Kingma & Welling 2014), the baseline of the thesis's chapter 2.

    Parameters
    ----------
    in_channels : int
        Bands of the images.
    image_size : int
        Image side in pixels, a power of two >= 8.
    base_channels : int
        Channels of the first encoder stage (doubled at each stride-2 stage, up to 8x).
    latent_dim : int
        Size of the Gaussian latent vector ``z``.

    Examples
    --------
    >>> model = VAE(in_channels=3, image_size=32, base_channels=8, latent_dim=16)
    >>> model.generate(2).shape
    torch.Size([2, 3, 32, 32])
    """

    def __init__(self, in_channels: int = 3, image_size: int = 64, base_channels: int = 32,
                 latent_dim: int = 64) -> None:
        super().__init__(in_channels, image_size, base_channels, latent_dim, cond_dim=0)
        self.config = {"in_channels": int(in_channels), "image_size": int(image_size),
                       "base_channels": int(base_channels), "latent_dim": int(latent_dim)}


class ConditionalVAE(_GaussianVAE):
    """Conditional VAE (Sohn et al. 2015) of galaxy images given e.g. their redshift.

    As in the redshift-conditioning comparison of a conditional DDPM with a CVAE, the condition
    ``c`` (``cond_dim`` values per galaxy, e.g. the redshift) is concatenated to the flattened
    encoder features, giving ``q(z | x, c)``, and to the latent vector before decoding, giving
    ``p(x | z, c)``. Conditions are used as given (no rescaling), so keep them of order unity.

    Parameters
    ----------
    in_channels, image_size, base_channels, latent_dim
        As for :class:`VAE`.
    cond_dim : int
        Size of the condition vector (1 for redshift).
    """

    def __init__(self, in_channels: int = 3, image_size: int = 64, base_channels: int = 32,
                 latent_dim: int = 64, cond_dim: int = 1) -> None:
        super().__init__(in_channels, image_size, base_channels, latent_dim,
                         cond_dim=check_positive_int(cond_dim, "cond_dim"))
        self.config = {"in_channels": int(in_channels), "image_size": int(image_size),
                       "base_channels": int(base_channels), "latent_dim": int(latent_dim),
                       "cond_dim": int(cond_dim)}


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             kl_weight: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO of a Gaussian VAE with a weighted KL term: ``(total, reconstruction, kl)``.

    ``reconstruction`` is the mean squared error per pixel (a Gaussian decoder of fixed variance);
    ``kl`` is ``KL(N(mu, exp(logvar)) || N(0, I))`` summed over the latent dimensions, in closed form
    ``-1/2 Σ (1 + logvar - mu² - exp(logvar))`` (Kingma & Welling 2014, Appendix B), averaged over
    the batch; ``total = reconstruction + kl_weight * kl`` (β-VAE weighting, Higgins et al. 2017).

    Parameters
    ----------
    recon, x : torch.Tensor
        Reconstructed and input model-space images of the same shape.
    mu, logvar : torch.Tensor
        Posterior means and log-variances ``(N, latent_dim)``.
    kl_weight : float
        Weight of the KL term (``1e-3`` by default).
    """
    if recon.shape != x.shape:
        raise ValueError(f"recon: expected the shape of x {tuple(x.shape)}, got {tuple(recon.shape)}")
    if mu.shape != logvar.shape:
        raise ValueError(f"logvar: expected the shape of mu {tuple(mu.shape)}, got {tuple(logvar.shape)}")
    kl_weight = check_finite(kl_weight, "kl_weight", "a finite non-negative number")
    if kl_weight < 0:
        raise ValueError(f"kl_weight: expected a finite non-negative number, got {kl_weight!r}")
    reconstruction = F.mse_loss(recon, x)
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
    return reconstruction + kl_weight * kl, reconstruction, kl


def _check_vae(model: Any) -> _GaussianVAE:
    if not isinstance(model, _GaussianVAE):
        raise TypeError(f"model: expected a VAE or ConditionalVAE, got {type(model).__name__}")
    return model


@torch.no_grad()
def latent_traversal(model: VAE | ConditionalVAE, dim: int, values: Sequence[float] | np.ndarray,
                     z: torch.Tensor | None = None, cond: Any = None) -> torch.Tensor:
    """Decode a latent vector varied along one dimension: what does latent ``dim`` control?

    Parameters
    ----------
    model : VAE or ConditionalVAE
        A trained model.
    dim : int
        The latent dimension to vary.
    values : sequence of float
        The values given to ``z[dim]`` (e.g. ``np.linspace(-3, 3, 7)``, in prior standard deviations).
    z : torch.Tensor, optional
        The latent vector ``(latent_dim,)`` to start from; the prior mean (zeros) by default.
    cond : array_like, optional
        The condition (e.g. one redshift) for a :class:`ConditionalVAE`.

    Returns
    -------
    torch.Tensor
        Model-space images ``(len(values), C, H, W)``; map them to flux with the checkpoint's
        ``normalizer.inverse``.
    """
    model = _check_vae(model)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 0 <= dim < model.latent_dim:
        raise ValueError(f"dim: expected a latent dimension in [0, {model.latent_dim}), got {dim!r}")
    values = torch.as_tensor(np.asarray(values, dtype=np.float32).ravel())
    if len(values) == 0:
        raise ValueError("values: expected at least one value")
    device = next(model.parameters()).device
    start = torch.zeros(model.latent_dim) if z is None else torch.as_tensor(z, dtype=torch.float32).cpu()
    if start.shape != (model.latent_dim,):
        raise ValueError(f"z: expected shape ({model.latent_dim},), got {tuple(start.shape)}")
    zs = start.repeat(len(values), 1)
    zs[:, dim] = values
    return model.decode(zs.to(device), cond)


@torch.no_grad()
def interpolate(model: VAE | ConditionalVAE, z0: torch.Tensor, z1: torch.Tensor, n: int = 8,
                cond: Any = None) -> torch.Tensor:
    """Decode ``n`` latent vectors on the straight line from ``z0`` to ``z1`` (both ends included).

    Returns model-space images ``(n, C, H, W)``.
    """
    model = _check_vae(model)
    n = check_positive_int(n, "n")
    ends = []
    for name, z in (("z0", z0), ("z1", z1)):
        z = torch.as_tensor(z, dtype=torch.float32).cpu()
        if z.shape != (model.latent_dim,):
            raise ValueError(f"{name}: expected shape ({model.latent_dim},), got {tuple(z.shape)}")
        ends.append(z)
    w = torch.linspace(0, 1, n)[:, None]
    zs = (1 - w) * ends[0] + w * ends[1]
    return model.decode(zs.to(next(model.parameters()).device), cond)


MODELS = {"VAE": VAE, "ConditionalVAE": ConditionalVAE}
