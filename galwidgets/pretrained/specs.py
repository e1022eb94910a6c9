"""The recipes of the shipped checkpoints and of the papers' models, as plain data.

Kept apart from :mod:`galwidgets.pretrained.recipes` (which trains, exports and dry-runs them) so
that loading a shipped model reads the recipe table without importing the training code, and
``python -m galwidgets.pretrained.recipes`` runs a module the package has not imported yet.
"""

from __future__ import annotations

__all__ = ["RECIPES"]

RECIPES: dict[str, dict] = {
    "desi-tiny": {
        "description": "Unconditional DDPM on 64x64 g, r, z mock DESI Legacy Surveys galaxies",
        "survey": {"n": 6000, "size": 64, "bands": ["g", "r", "z"], "pixel_scale": 0.262, "seed": 1000},
        "model": {"base_channels": 16, "channel_mults": [1, 2, 4, 4], "num_res_blocks": 1,
                  "attention_levels": [2], "prediction": "v"},
        "schedule": {"kind": "cosine", "params": {"T": 1000}},
        "train": {"steps": 6000, "batch_size": 32, "lr": 4e-4, "warmup_steps": 200,
                  "ema_decay": 0.998, "seed": 0, "checkpoint_every": 250},
        # then settle as hsc-z-tiny does: 2000 steps at an eighth of the learning rate, 4x longer EMA
        "anneal": {"steps": 8000, "lr": 5e-5, "ema_decay": 0.9995, "checkpoint_every": 500},
    },
    "desi-z-tiny": {
        "description": "Redshift-conditioned DDPM on 64x64 g, r, z mock DESI Legacy Surveys galaxies",
        "survey": {"n": 6000, "size": 64, "bands": ["g", "r", "z"], "pixel_scale": 0.262, "seed": 1000},
        "model": {"base_channels": 16, "channel_mults": [1, 2, 4, 4], "num_res_blocks": 1,
                  "attention_levels": [2], "prediction": "v", "cond_dim": 1, "cond_center": 0.07,
                  "cond_scale": 0.03},
        "schedule": {"kind": "cosine", "params": {"T": 1000}},
        "train": {"steps": 6000, "batch_size": 32, "lr": 4e-4, "warmup_steps": 200,
                  "ema_decay": 0.998, "seed": 0, "checkpoint_every": 250, "cond": "redshift",
                  "cond_drop": 0.1},
        # then 2000 more steps at an eighth of the learning rate with a 4x longer EMA, as desi-tiny
        "anneal": {"steps": 8000, "lr": 5e-5, "ema_decay": 0.9995, "checkpoint_every": 500},
    },
    "hsc-z-tiny": {
        "description": "Redshift-conditioned DDPM on 64x64 g, r, i, z, y mock HSC galaxies at 0.05 < z < 3",
        "survey": {"n": 10000, "size": 64, "instrument": "hsc-deep", "seed": 1000},
        # adaptive group normalisation (scale_shift): redshift scales each block's features, so it
        # can change a band's brightness (redshift loss of the samples 2.64x -> 1.79x the mock's)
        "model": {"base_channels": 16, "channel_mults": [1, 2, 4, 4], "num_res_blocks": 1,
                  "attention_levels": [2], "prediction": "v", "cond_dim": 1, "cond_center": 1.0,
                  "cond_scale": 0.7, "scale_shift": True},
        "schedule": {"kind": "cosine", "params": {"T": 1000}},
        "train": {"steps": 6000, "batch_size": 32, "lr": 4e-4, "warmup_steps": 200,
                  "ema_decay": 0.998, "seed": 0, "checkpoint_every": 250, "cond": "redshift",
                  "cond_drop": 0.1},
        # then 5000 more steps at an eighth of the learning rate with a 4x longer EMA: the loss is flat
        # from step 3000, but the weights settle and the samples carry more redshift (2.12x -> 1.79x
        # from step 8000 to 11,000)
        "anneal": {"steps": 11000, "lr": 5e-5, "ema_decay": 0.9995, "checkpoint_every": 500},
        # then 6000 more steps at the anneal settings with the z < 0.5 galaxies (2167 of the 10,000)
        # shown three times as often: the median g - i at z = 0.25 was 0.41 mag too red, now 0.18, and
        # the redshift loss of the samples fell on (1.79x -> 1.68x at step 13,000 -> 1.53x at 17,000)
        "oversample": {"steps": 17000, "column": "redshift", "range": [0.0, 0.5], "factor": 3},
        # its default sampler (Checkpoint.default_sampler): the library's stochastic 12-step default
        # draws this model's galaxies 0.2-0.4 mag too bright in i at z >= 0.75; DDIM 25 does not.
        # Its default guidance (Checkpoint.default_guidance): a mild 1.1 puts more of the requested
        # redshift into the colours (redshift loss of the samples 1.55x -> 1.44x the mock's, 1000
        # galaxies) with the photometry as close to the mock's as unguided; 1.25 (1.37x) loses it
        "sampling": {"sampler": "ddim", "steps": 25, "guidance": 1.1},
    },
    # The papers' models, trained on GPUs from an on-disk store (not shipped: see the model card).
    "smith2022": {
        "description": "Smith et al. (2022): unconditional DDPM on 256x256 g, r, z DESI galaxies "
                       "(306,006 in the paper); GPU recipe, not shipped",
        "paper": "Smith et al. 2022, MNRAS 511, 1808 (arXiv:2111.01713); code github.com/Smith42/astroddpm",
        "survey": {"n": 306_006, "size": 256, "bands": ["g", "r", "z"], "instrument": "desi", "seed": 2022},
        "store": True,
        # the published network: width 64, multipliers 1, 2, 4, 8, two residual blocks per level;
        # softmax attention at 32x32 and in the bottleneck (the paper's linear attention at every
        # level has no equivalent here: full attention at 256x256 would need 4 GB per image)
        "model": {"base_channels": 64, "channel_mults": [1, 2, 4, 8], "num_res_blocks": 2,
                  "attention_levels": [3], "prediction": "eps"},
        "schedule": {"kind": "cosine", "params": {"T": 1000}},  # Nichol & Dhariwal, as the paper
        # the paper: batch 56 with 2-step accumulation (112), lr 2e-5, 750,001 steps, EMA 0.995
        # applied every 10 steps (~0.9995 per step); an L1 loss where gw.train uses the MSE
        "train": {"steps": 750_000, "batch_size": 112, "lr": 2e-5, "warmup_steps": 1000,
                  "ema_decay": 0.9995, "seed": 0, "checkpoint_every": 5000, "num_workers": 8},
        "gpus": 4,
        "torchrun": "torchrun --standalone --nproc_per_node 4 -m galwidgets.pretrained.recipes smith2022 "
                    "--workdir runs/smith2022",
    },
    "li2024": {
        "description": "Li et al. (2024): redshift-conditioned DDPM on 64x64 g, r, i, z, y HSC galaxies "
                       "(204,513 in the paper); GPU recipe, not shipped",
        "paper": "Li et al. 2024, arXiv:2407.07229 (GalaxiesML HSC cutouts)",
        "survey": {"n": 204_513, "size": 64, "instrument": "hsc-deep", "redshift": [0.05, 3.0], "seed": 2024},
        "store": True,
        # after the 64-128-256-256 U-Net with self-attention at 32, 16 and 8 px of the authors'
        # published code; two residual blocks per level
        "model": {"base_channels": 64, "channel_mults": [1, 2, 4, 4], "num_res_blocks": 2,
                  "attention_levels": [1, 2, 3], "prediction": "eps", "cond_dim": 1,
                  "cond_center": 1.0, "cond_scale": 0.7},
        "schedule": {"kind": "linear", "params": {"T": 1000}},  # beta 1e-4 to 0.02, as the paper
        "train": {"steps": 100_000, "batch_size": 256, "lr": 1e-4, "warmup_steps": 1000,
                  "ema_decay": 0.9999, "seed": 0, "checkpoint_every": 5000, "cond": "redshift",
                  "cond_drop": 0.1, "num_workers": 8},
        "gpus": 4,
        "torchrun": "torchrun --standalone --nproc_per_node 4 -m galwidgets.pretrained.recipes li2024 "
                    "--workdir runs/li2024",
    },
}
