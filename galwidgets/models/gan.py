"""Deep convolutional GAN (DCGAN, Radford, Metz & Chintala 2016): the "why diffusion" comparison.

A generator maps a latent vector ``z ~ N(0, I)`` through transposed convolutions to an image in
``[-1, 1]``; a discriminator tells generated from real images. Both are submodules of one
:class:`DCGAN`, so one checkpoint holds the pair and :meth:`DCGAN.generate` draws galaxies from it
(:meth:`galwidgets.Checkpoint.sample` calls it). :func:`galwidgets.training.baselines.train_dcgan`
trains it with the shared loop :func:`galwidgets.training.fitting.fit`, alternating one
discriminator and one generator step (:func:`dcgan_losses`).

Teaching point of the thesis's chapter 2: GANs give sharp samples in one network call, but the
two-player game is fragile (mode collapse, oscillation) and has no likelihood, which motivates
diffusion models.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .._validation import check_positive_int

__all__ = ["DCGAN", "dcgan_losses"]


def _n_upsamplings(image_size: int) -> int:
    """Stride-2 layers between 4x4 and ``image_size`` (which must be a power of two >= 16)."""
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise TypeError(f"image_size: expected an integer power of 2 >= 16, got {image_size!r}")
    if image_size < 16 or image_size & (image_size - 1):
        raise ValueError(f"image_size: expected a power of 2 >= 16 (16, 32, 64, ...), got {image_size}")
    return int(math.log2(image_size)) - 2


def _dcgan_init(module: nn.Module) -> None:
    """Weights from N(0, 0.02) and BatchNorm scales from N(1, 0.02) (Radford et al. 2016, sec. 4)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _generator(in_channels: int, latent_dim: int, base_channels: int, n_up: int) -> nn.Sequential:
    """z (latent_dim, 1, 1) -> 4x4 -> ... -> image_size, halving the channels at each doubling."""
    channels = [base_channels * 2 ** k for k in reversed(range(n_up))]  # e.g. 8b, 4b, 2b, b
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(latent_dim, channels[0], 4, 1, 0, bias=False),
        nn.BatchNorm2d(channels[0]),
        nn.ReLU(inplace=True),
    ]
    for c_in, c_out in itertools.pairwise(channels):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True)]
    layers += [nn.ConvTranspose2d(channels[-1], in_channels, 4, 2, 1), nn.Tanh()]
    return nn.Sequential(*layers)


def _discriminator(in_channels: int, base_channels: int, n_down: int) -> nn.Sequential:
    """image -> ... -> 4x4 -> one logit; strided convs, LeakyReLU(0.2), spectral norm throughout."""
    channels = [base_channels * 2 ** k for k in range(n_down)]  # b, 2b, 4b, 8b
    layers: list[nn.Module] = [spectral_norm(nn.Conv2d(in_channels, channels[0], 4, 2, 1)),
                               nn.LeakyReLU(0.2, inplace=True)]
    for c_in, c_out in itertools.pairwise(channels):
        layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
    layers += [spectral_norm(nn.Conv2d(channels[-1], 1, 4, 1, 0)), nn.Flatten()]
    return nn.Sequential(*layers)


class DCGAN(nn.Module):
    """Generator and discriminator of a DCGAN (Radford et al. 2016) in one module.

    Generator: ``z`` (``latent_dim`` × 1 × 1) → transposed convolution to 4×4 → stride-2 transposed
    convolutions doubling the size and halving the channels, each followed by BatchNorm and ReLU →
    a last transposed convolution to ``in_channels`` with ``tanh``, so images lie in ``[-1, 1]``
    (model space of the :class:`~galwidgets.data.Normalizer`).

    Discriminator: the mirror image, stride-2 convolutions with LeakyReLU(0.2) down to 4×4 and a
    4×4 convolution to one logit.

    Parameters
    ----------
    in_channels : int
        Bands of the images.
    image_size : int
        Image side in pixels, a power of two >= 16.
    latent_dim : int
        Size of the latent vector ``z`` (100 in Radford et al.).
    base_channels : int
        Channels of the generator's last and the discriminator's first layer (``ngf = ndf`` of the
        paper's code, 64 there; 4× more at 64×64 in the innermost layers).

    Notes
    -----
    The stable default recipe used here and by :func:`train_dcgan`:

    * the architecture guidelines of Radford et al. (2016): strided convolutions instead of
      pooling, BatchNorm and ReLU in the generator, LeakyReLU(0.2) in the discriminator, no BatchNorm
      on the discriminator's first layer, weights from N(0, 0.02), Adam with lr 2e-4 and
      betas (0.5, 0.999);
    * spectral normalisation (Miyato et al. 2018) on every discriminator layer *instead of*
      BatchNorm: it bounds the discriminator's Lipschitz constant, the most effective single
      stabiliser in the large-scale comparison of Kurach et al. (2019), and it leaves the
      discriminator's output for one image independent of the rest of the batch (BatchNorm in the
      discriminator mixes real and fake batch statistics);
    * the non-saturating generator loss ``-log D(G(z))`` (Goodfellow et al. 2014, sec. 3) and
      one-sided label smoothing of the real targets to 0.9 (Salimans et al. 2016), which keeps the
      discriminator from becoming over-confident on a small training set.

    The discriminator's output for one image never depends on the batch, so evaluating it is
    deterministic in both train and eval mode.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 64, latent_dim: int = 100,
                 base_channels: int = 64) -> None:
        super().__init__()
        in_channels = check_positive_int(in_channels, "in_channels")
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        base_channels = check_positive_int(base_channels, "base_channels")
        n = _n_upsamplings(image_size)
        self.config = {"in_channels": in_channels, "image_size": int(image_size), "latent_dim": latent_dim,
                       "base_channels": base_channels}
        self.generator = _generator(in_channels, latent_dim, base_channels, n)
        self.discriminator = _discriminator(in_channels, base_channels, n)
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, H, W)`` in ``[-1, 1]`` from latent vectors ``z`` ``(N, latent_dim)``."""
        if z.ndim != 2 or z.shape[1] != self.config["latent_dim"]:
            raise ValueError(f"z: expected shape (N, {self.config['latent_dim']}), got {tuple(z.shape)}")
        return self.generator(z[:, :, None, None])

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """Discriminator logits ``(N,)`` (large: real) for model-space images ``x``."""
        size = self.config["image_size"]
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.config["in_channels"], size, size):
            raise ValueError(
                f"x: expected shape (N, {self.config['in_channels']}, {size}, {size}), got {tuple(x.shape)}"
            )
        return self.discriminator(x)[:, 0]

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent vectors from N(0, I), drawn on the CPU from ``generator``, on the model's device."""
        n = check_positive_int(n, "n")
        z = torch.randn(n, self.config["latent_dim"], generator=generator)
        return z.to(next(self.parameters()).device)

    def generate(self, n: int, cond: Any = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` model-space images ``(n, C, H, W)`` from the generator.

        ``cond`` must be None (the DCGAN is unconditional). Call ``model.eval()`` first to use
        BatchNorm's running statistics (as :func:`galwidgets.load_checkpoint` does); in train mode
        the images depend on the batch.
        """
        if cond is not None:
            raise ValueError("cond: the DCGAN is unconditional; expected None")
        with torch.no_grad():
            return self(self.latent(n, generator))


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def dcgan_losses(model: DCGAN, real: torch.Tensor, optimizers: dict[str, torch.optim.Optimizer],
                 generator: torch.Generator, real_label: float = 0.9) -> dict[str, float]:
    """One alternating DCGAN update: a discriminator step, then a non-saturating generator step.

    The discriminator minimises ``BCE(D(x), real_label) + BCE(D(G(z)), 0)`` (one-sided label
    smoothing, Salimans et al. 2016); the generator minimises ``BCE(D(G(z)), 1) = -log D(G(z))``.
    Returns the losses and the mean discriminator probabilities on real and fake images.
    """
    z = model.latent(len(real), generator)
    fake = model(z)
    opt_d, opt_g = optimizers["discriminator"], optimizers["generator"]
    opt_d.zero_grad(set_to_none=True)
    d_real, d_fake = model.critic(real), model.critic(fake.detach())
    loss_d = _bce(d_real, real_label) + _bce(d_fake, 0.0)
    loss_d.backward()
    opt_d.step()
    model.discriminator.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    loss_g = _bce(model.critic(fake), 1.0)
    loss_g.backward()
    opt_g.step()
    model.discriminator.requires_grad_(True)
    return {"loss": loss_g.item(), "loss_d": loss_d.item(),
            "d_real": torch.sigmoid(d_real).mean().item(), "d_fake": torch.sigmoid(d_fake).mean().item()}


MODELS = {"DCGAN": DCGAN}
