"""Neural networks: the ε-prediction U-Net and the comparison models of the published work.

:mod:`.unet` (the diffusion prior), :mod:`.vae` (VAE and redshift-conditional VAE),
:mod:`.gan` (DCGAN), :mod:`.translator` (band-to-band image translation) and :mod:`.redshift`
(a CNN redshift estimator, and the redshift loss of a conditional generator judged by it).
:data:`MODELS` (:mod:`.registry`) maps class names to classes, so checkpoints can rebuild any of
them. Each module holds a network, its loss and the functions that apply a trained one.

Their trainers live a floor higher, with the training loops, in
:mod:`galwidgets.training.baselines`; ``train_vae``, ``train_dcgan``, ``train_translator`` and
``train_redshift_estimator`` are also named here, where users look for them.

This ``__init__`` only names what the package offers; names are imported on first use.
"""

from __future__ import annotations

from .._lazy import attach

_NAMES = {
    "gan": ".gan",
    "redshift": ".redshift",
    "registry": ".registry",
    "translator": ".translator",
    "unet": ".unet",
    "vae": ".vae",
    "MODELS": ".registry:MODELS",
    "BandTranslator": ".translator:BandTranslator",
    "ConditionalVAE": ".vae:ConditionalVAE",
    "DCGAN": ".gan:DCGAN",
    "PatchDiscriminator": ".translator:PatchDiscriminator",
    "RedshiftEstimator": ".redshift:RedshiftEstimator",
    "ResnetGenerator": ".translator:ResnetGenerator",
    "UNet": ".unet:UNet",
    "VAE": ".vae:VAE",
    "conditional_redshift_loss": ".redshift:conditional_redshift_loss",
    "dcgan_losses": ".gan:dcgan_losses",
    "interpolate": ".vae:interpolate",
    "latent_traversal": ".vae:latent_traversal",
    "predict_redshift": ".redshift:predict_redshift",
    "timestep_embedding": ".unet:timestep_embedding",
    "translate": ".translator:translate",
    "vae_loss": ".vae:vae_loss",
    # trainers (a floor higher, in galwidgets.training.baselines)
    "train_dcgan": "..training.baselines:train_dcgan",
    "train_redshift_estimator": "..training.baselines:train_redshift_estimator",
    "train_translator": "..training.baselines:train_translator",
    "train_vae": "..training.baselines:train_vae",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
