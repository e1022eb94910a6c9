"""How the shipped checkpoints were made: each recipe is plain data, rebuilt by :func:`build`.

Run ``python -m galwidgets.pretrained.recipes desi-tiny --workdir /tmp/desi-tiny`` to retrain
and re-export a shipped checkpoint (resumable: run the same command again after an interruption).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ..checkpoints import save_checkpoint
from ..data.simulate import simulate_survey
from ..diffusion.schedules import NoiseSchedule
from ..models.unet import UNet
from ..training.diffusion import train

__all__ = ["RECIPES", "build"]

RECIPES: dict[str, dict] = {
    "desi-tiny": {
        "description": "Unconditional DDPM on 64x64 g, r, z mock DESI Legacy Surveys galaxies",
        "survey": {"n": 6000, "size": 64, "bands": ["g", "r", "z"], "pixel_scale": 0.262, "seed": 1000},
        "model": {"base_channels": 16, "channel_mults": [1, 2, 4, 4], "num_res_blocks": 1,
                  "attention_levels": [2], "prediction": "v"},
        "schedule": {"kind": "cosine", "params": {"T": 1000}},
        "train": {"steps": 6000, "batch_size": 32, "lr": 4e-4, "warmup_steps": 200,
                  "ema_decay": 0.998, "seed": 0, "checkpoint_every": 250},
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
    },
}


def build(name: str, workdir: str | Path, output: str | Path | None = None, progress: bool = True) -> Path:
    """Simulate the training survey, train (resuming in ``workdir``) and export the checkpoint.

    The exported file holds the EMA weights in float16 with the schedule, normalizer and config.
    """
    if name not in RECIPES:
        raise ValueError(f"name: unknown recipe {name!r}; known: {sorted(RECIPES)}")
    recipe = RECIPES[name]
    workdir = Path(workdir)
    t0 = time.perf_counter()
    survey_file = workdir / "train_survey.fits"
    if survey_file.is_file():
        from ..data.surveys import Survey

        survey = Survey.load(survey_file)
    else:
        survey = simulate_survey(**recipe["survey"], progress=progress)
        survey.save(survey_file)
    torch.manual_seed(recipe["train"]["seed"])  # the initial weights; on resume they come from the checkpoint
    model = UNet(in_channels=len(survey.bands), **recipe["model"])
    schedule = NoiseSchedule.from_config(recipe["schedule"])
    ckpt = train(model, schedule, survey, checkpoint_dir=workdir / "checkpoints", progress=progress,
                 sample_every=1000, **recipe["train"])
    config = dict(ckpt.config)
    config["pretrained"] = {"name": name, "description": recipe["description"], "recipe": recipe,
                            "wall_seconds_this_run": round(time.perf_counter() - t0, 1)}
    output = Path(output) if output else Path(__file__).with_name(f"{name.replace('-', '_')}.safetensors")
    save_checkpoint(output, ckpt.model, ckpt.schedule, ckpt.normalizer, config, half=True)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--workdir", required=True, help="scratch folder for the survey and checkpoints")
    parser.add_argument("--output", help="exported checkpoint (default: inside the package)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    path = build(args.name, args.workdir, args.output)
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
