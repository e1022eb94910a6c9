"""Band-to-band image translation: predict a galaxy's image in one band from its image in others.

:class:`BandTranslator` is the ResNet generator of Johnson et al. (2016) as used by pix2pix
(Isola et al. 2017) and CycleGAN (Zhu et al. 2017), in the configuration that worked best in the
band-translation thesis: a 7×7 convolution stem, **one** stride-2 down-sampling block, **nine**
residual blocks, one up-sampling block and a 7×7 output convolution with ``tanh``. It maps input
bands (e.g. ``u``, or ``FUV`` + ``K``) to target bands (e.g. ``K``, or ``g``, ``r``, ``z``) in model
space, one normalizer band scale per channel.

* :func:`galwidgets.training.baselines.train_translator` trains it on paired images of the same
  galaxies (all bands of one :class:`~galwidgets.data.Survey`, e.g.
  ``simulate_survey(n, instrument="uv-ir")``) with an L1 (default) or L2 loss, or, with
  ``cycle=True``, as a CycleGAN on unpaired images: a second generator maps the targets back, two
  PatchGAN discriminators judge each domain, and the loss is adversarial (least squares, Mao et
  al. 2017) + cycle consistency + identity (:func:`paired_step`, :func:`cycle_step`).
* :func:`translate` applies a trained translator to flux images and returns flux images.
* The thesis scores translators by the SSIM gain (:func:`galwidgets.metrics.ssim_gain`, its
  eq. 3.5) and by the Gini/M20 of the outputs (:func:`galwidgets.metrics.gini_m20`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._device import resolve_device
from .._validation import as_bands, as_images, check_positive_int
from ..data.surveys import Survey
from ..data.transforms import Normalizer, normalizer_from_config

if TYPE_CHECKING:  # galwidgets.checkpoints imports the models
    pass

__all__ = ["BandTranslator", "PatchDiscriminator", "ResnetGenerator", "translate"]

_NORMS = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}


def _norm(kind: str, channels: int) -> nn.Module:
    return _NORMS[kind](channels) if kind == "batch" else _NORMS[kind](channels, affine=True)


class ResidualBlock(nn.Module):
    """``x + [pad-conv3x3-norm-ReLU-pad-conv3x3-norm](x)`` (Johnson et al. 2016; He et al. 2016)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Sequential):
    """ResNet image-to-image generator (Johnson et al. 2016, as in pix2pix and CycleGAN).

    7×7 stem → ``n_downsampling`` stride-2 3×3 convolutions doubling the channels →
    ``n_blocks`` residual blocks → as many stride-2 transposed convolutions back → 7×7 convolution
    and ``tanh``. Reflection padding avoids edge artefacts. Image sides must be divisible by
    ``2 ** n_downsampling``.
    """

    def __init__(self, in_channels: int, out_channels: int, base_channels: int = 64,
                 n_downsampling: int = 1, n_blocks: int = 9, norm: str = "batch") -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, base_channels, 7),
                                   _norm(norm, base_channels), nn.ReLU(True)]
        ch = base_channels
        for _ in range(n_downsampling):
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), _norm(norm, 2 * ch), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch, norm) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(norm, ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        super().__init__(*layers)


class PatchDiscriminator(nn.Sequential):
    """PatchGAN discriminator of pix2pix (Isola et al. 2017): one real/fake score per image patch.

    4×4 convolutions: ``n_layers`` with stride 2 (no norm on the first), one with stride 1, then one
    to a single channel; LeakyReLU(0.2). With ``n_layers=3`` each score sees a 70×70 px patch and
    images need at least 24 px per side (``3 * 2 ** n_layers``).
    """

    def __init__(self, in_channels: int, base_channels: int = 64, n_layers: int = 3, norm: str = "batch"):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = base_channels
        for k in range(1, n_layers + 1):
            out = base_channels * min(2 ** k, 8)
            stride = 2 if k < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1), _norm(norm, out), nn.LeakyReLU(0.2, True)]
            ch = out
        layers += [nn.Conv2d(ch, 1, 4, 1, 1)]
        super().__init__(*layers)


class BandTranslator(nn.Module):
    """Translate galaxy images from input band(s) to target band(s) (thesis's best configuration).

    Parameters
    ----------
    in_bands : sequence of str
        Input band names, e.g. ``("u",)`` or ``("FUV", "K")``; picked by name from a Survey.
    out_bands : sequence of str
        Target band names, e.g. ``("K",)`` or ``("g", "r", "z")``.
    base_channels : int
        Channels of the stem (``ngf``; 64 in pix2pix/CycleGAN), doubled at each down-sampling.
    n_downsampling : int
        Stride-2 down-sampling blocks (thesis's best: 1; CycleGAN: 2).
    n_blocks : int
        Residual blocks at the lowest resolution (thesis's best and CycleGAN: 9).
    norm : {"batch", "instance"}
        Normalisation layers. BatchNorm (pix2pix's choice for paired training) is the default:
        instance normalisation (CycleGAN's) removes each image's mean and contrast after the
        stem, so the network has to recover the galaxy's brightness, which band translation needs.
    cycle : bool
        Also build the CycleGAN parts for unpaired training (:func:`train_translator` with
        ``cycle=True``): ``inverse`` (a generator from target to input bands) and the PatchGAN
        discriminators ``discriminator_in`` and ``discriminator_out``. Off by default, so a paired
        model holds only its generator.
    patch_layers : int
        Stride-2 layers of the PatchGAN discriminators (only with ``cycle``).

    Attributes
    ----------
    generator : ResnetGenerator
        Input → target bands; :meth:`forward` calls it.
    """

    def __init__(self, in_bands: Sequence[str] = ("u",), out_bands: Sequence[str] = ("K",),
                 base_channels: int = 64, n_downsampling: int = 1, n_blocks: int = 9, norm: str = "batch",
                 cycle: bool = False, patch_layers: int = 3) -> None:
        super().__init__()
        in_bands = as_bands(in_bands, name="in_bands")
        out_bands = as_bands(out_bands, name="out_bands")
        base_channels = check_positive_int(base_channels, "base_channels")
        n_blocks = check_positive_int(n_blocks, "n_blocks")
        patch_layers = check_positive_int(patch_layers, "patch_layers")
        if isinstance(n_downsampling, bool) or not isinstance(n_downsampling, int) or n_downsampling < 0:
            raise ValueError(f"n_downsampling: expected a non-negative integer, got {n_downsampling!r}")
        if norm not in _NORMS:
            raise ValueError(f"norm: expected one of {sorted(_NORMS)}, got {norm!r}")
        if not isinstance(cycle, bool):
            raise TypeError(f"cycle: expected True or False, got {cycle!r}")
        self.config = {"in_bands": list(in_bands), "out_bands": list(out_bands),
                       "base_channels": base_channels, "n_downsampling": n_downsampling,
                       "n_blocks": n_blocks, "norm": norm, "cycle": cycle, "patch_layers": patch_layers}
        n_in, n_out = len(in_bands), len(out_bands)
        self.generator = ResnetGenerator(n_in, n_out, base_channels, n_downsampling, n_blocks, norm)
        if cycle:
            self.inverse = ResnetGenerator(n_out, n_in, base_channels, n_downsampling, n_blocks, norm)
            self.discriminator_in = PatchDiscriminator(n_in, base_channels, patch_layers, norm)
            self.discriminator_out = PatchDiscriminator(n_out, base_channels, patch_layers, norm)

    @property
    def in_bands(self) -> tuple[str, ...]:
        return tuple(self.config["in_bands"])

    @property
    def out_bands(self) -> tuple[str, ...]:
        return tuple(self.config["out_bands"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Target-band images in model space from input-band images ``(N, len(in_bands), H, W)``."""
        factor = 2 ** self.config["n_downsampling"]
        if x.ndim != 4 or x.shape[1] != len(self.in_bands):
            raise ValueError(f"x: expected shape (N, {len(self.in_bands)}, H, W) for bands {self.in_bands}, "
                             f"got {tuple(x.shape)}")
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"x: image sides must be divisible by {factor} (2 ** n_downsampling), "
                             f"got {tuple(x.shape[-2:])}")
        return self.generator(x)


# --------------------------------------------------------------------------------------------------
# Bands and normalizers
# --------------------------------------------------------------------------------------------------


def band_channels(bands: Sequence[str], wanted: Sequence[str], name: str) -> list[int]:
    """Channel indices of the ``wanted`` bands among ``bands``; ``name`` is the argument blamed."""
    missing = [b for b in wanted if b not in bands]
    if missing:
        raise ValueError(f"{name}: the data have no band(s) {missing}; their bands are {tuple(bands)}")
    return [list(bands).index(b) for b in wanted]


def band_normalizer(normalizer: Normalizer, bands: Sequence[str], subset: Sequence[str]) -> Normalizer:
    """The normalizer of the ``subset`` bands, from one fitted on all ``bands`` (per-band scales).

    A normalizer with one scale for all bands is returned as it is; per-band parameters are picked
    by band name, so input and target channels of a translator each keep their own band's scale.
    """
    config = normalizer.to_config()
    idx = band_channels(bands, subset, "bands")
    for key, value in config.items():
        if isinstance(value, list):
            if len(value) != len(bands):
                raise ValueError(f"normalizer: {key} has {len(value)} values for the {len(bands)} bands "
                                 f"{tuple(bands)}")
            config[key] = [value[i] for i in idx]
    return normalizer_from_config(config)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def _lsgan(scores: torch.Tensor, target: float) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017), as CycleGAN uses: mean ``(D(x) - target)²``."""
    return F.mse_loss(scores, torch.full_like(scores, target))


def paired_step(model: BandTranslator, a: torch.Tensor, b: torch.Tensor, optimizer: torch.optim.Optimizer,
                loss: str) -> dict[str, float]:
    """One supervised update on paired input ``a`` and target ``b`` (model space)."""
    optimizer.zero_grad(set_to_none=True)
    pred = model(a)
    value = F.l1_loss(pred, b) if loss == "l1" else F.mse_loss(pred, b)
    value.backward()
    optimizer.step()
    return {"loss": value.item()}


def cycle_step(model: BandTranslator, a: torch.Tensor, b: torch.Tensor,
               optimizers: dict[str, torch.optim.Optimizer], lambda_cycle: float,
               lambda_identity: float, b_paired: torch.Tensor | None = None) -> dict[str, float]:
    """One CycleGAN update (Zhu et al. 2017, eqs. 1-3): both generators, then both discriminators.

    ``a`` (input bands) and ``b`` (target bands) need not show the same galaxies. Generators
    minimise LSGAN + ``lambda_cycle`` × cycle L1 + ``lambda_cycle · lambda_identity`` × identity L1;
    the identity term ``|G(b) - b| + |F(a) - a|`` needs as many input as target bands and is left
    out otherwise (a generator cannot take the other domain's channels). Discriminators minimise
    half the sum of their LSGAN losses on real and generated images. The history of generated
    images (an image pool of 50) of the original is not kept: each update uses the current batch.
    With ``b_paired``, the true targets of ``a``, the L1 error of ``G(a)`` is reported as
    ``l1_paired`` (monitoring only).
    """
    gen_ab, gen_ba = model.generator, model.inverse
    disc_a, disc_b = model.discriminator_in, model.discriminator_out
    discs = nn.ModuleList([disc_a, disc_b])
    opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
    discs.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    fake_b, fake_a = model(a), gen_ba(b)
    adversarial = _lsgan(disc_b(fake_b), 1.0) + _lsgan(disc_a(fake_a), 1.0)
    cycle = F.l1_loss(gen_ba(fake_b), a) + F.l1_loss(gen_ab(fake_a), b)
    identity = F.l1_loss(gen_ab(b), b) + F.l1_loss(gen_ba(a), a) if a.shape[1] == b.shape[1] \
        else torch.zeros((), device=a.device)
    loss_g = adversarial + lambda_cycle * cycle + lambda_cycle * lambda_identity * identity
    loss_g.backward()
    opt_g.step()
    discs.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    loss_d = 0.5 * (_lsgan(disc_b(b), 1.0) + _lsgan(disc_b(fake_b.detach()), 0.0)) \
        + 0.5 * (_lsgan(disc_a(a), 1.0) + _lsgan(disc_a(fake_a.detach()), 0.0))
    loss_d.backward()
    opt_d.step()
    out = {"loss": loss_g.item(), "loss_d": loss_d.item(), "adversarial": adversarial.item(),
           "cycle": cycle.item(), "identity": identity.item()}
    if b_paired is not None:
        out["l1_paired"] = F.l1_loss(fake_b.detach(), b_paired).item()
    return out


# --------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------


def _translator_parts(source: Any, normalizer: Normalizer | None):
    """``(model, normalizer, normalizer_bands, calibration)`` of a Checkpoint or a bare model.

    For a bare model ``normalizer_bands`` and ``calibration`` are None (the data's are used).
    """
    if isinstance(source, BandTranslator):
        if normalizer is None:
            raise ValueError("normalizer: a bare BandTranslator needs the normalizer it was trained with "
                             "(fitted on the bands of data); or pass its Checkpoint")
        return source, normalizer, None, None
    model = getattr(source, "model", None)
    if not isinstance(model, BandTranslator) or not hasattr(source, "normalizer"):
        what = type(source).__name__ + (f" of a {type(model).__name__}" if model is not None else "")
        raise TypeError(f"checkpoint_or_model: expected a BandTranslator or its Checkpoint, got {what}")
    calibration = {"pixel_scale": source.pixel_scale, "zeropoint": source.zeropoint}
    return model, normalizer or source.normalizer, source.bands, calibration


def _input_survey(data: Any, bands: Sequence[str] | None, model: BandTranslator) -> Survey:
    """``data`` as a Survey; an array gets ``bands`` (default the model's input bands)."""
    if isinstance(data, Survey):
        return data
    images = as_images(data, "data")
    names = as_bands(bands if bands is not None else model.in_bands, images.shape[1])
    return Survey(images=images, catalog=None, bands=names, pixel_scale=1.0)


def translate(
    checkpoint_or_model: Any,
    data: Survey | np.ndarray,
    *,
    bands: Sequence[str] | None = None,
    normalizer: Normalizer | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> Survey:
    """Predict target-band flux images from input-band flux images with a trained translator.

    The input bands are mapped to model space with their bands' normalizer scales, the network
    runs in eval mode, and its output is mapped back to flux with the target bands' scales.

    Parameters
    ----------
    checkpoint_or_model : Checkpoint or BandTranslator
        A checkpoint from :func:`train_translator` (model and all-band normalizer), or a bare model
        together with ``normalizer``.
    data : Survey or array (N, C, H, W)
        Flux images holding (at least) the model's input bands; other bands are ignored.
    bands : sequence of str, optional
        Band names of an array ``data``; default the model's input bands (then ``C`` must match).
    normalizer : Normalizer, optional
        Overrides the checkpoint's. For a bare model it is required and indexed by the bands of
        ``data`` (a normalizer fitted on ``data``'s bands, per-band or one scale for all).
    batch_size : int
        Galaxies per network call.
    device : str or torch.device, optional
        Where to run; default where the model is.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Survey
        Flux images ``(N, len(out_bands), H, W)`` in the model's target bands, with the input
        survey's catalog and the checkpoint's pixel scale and zeropoint (else the input's).

    Raises
    ------
    ValueError
        If ``data`` lacks one of the model's input bands, or a bare model comes without ``normalizer``.
    """
    model, norm, norm_bands, calibration = _translator_parts(checkpoint_or_model, normalizer)
    survey = _input_survey(data, bands, model)
    batch_size = check_positive_int(batch_size, "batch_size")
    norm_bands = survey.bands if norm_bands is None else norm_bands
    norm_in = band_normalizer(norm, norm_bands, model.in_bands)
    norm_out = band_normalizer(norm, norm_bands, model.out_bands)
    flux_in = survey.images[:, band_channels(survey.bands, model.in_bands, "data")]
    dev = next(model.parameters()).device if device is None else resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    out = []
    starts = range(0, len(flux_in), batch_size)
    with torch.no_grad():
        for s in tqdm(starts, desc="translating", disable=not progress):
            x = torch.from_numpy(np.ascontiguousarray(norm_in.forward(flux_in[s:s + batch_size]))).to(dev)
            out.append(norm_out.inverse(model(x).float().cpu()).numpy())
    model.train(was_training)
    calibration = calibration or {"pixel_scale": survey.pixel_scale, "zeropoint": survey.zeropoint}
    return Survey(images=np.concatenate(out), catalog=survey.catalog.copy(), bands=model.out_bands,
                  meta={**survey.meta, "source": "galwidgets.models.translate",
                        "in_bands": list(model.in_bands)}, **calibration)


MODELS = {"BandTranslator": BandTranslator}
