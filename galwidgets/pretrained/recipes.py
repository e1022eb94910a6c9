"""How the shipped checkpoints were made, and the papers' own recipes (:mod:`.specs`), run by :func:`build`.

Run ``python -m galwidgets.pretrained.recipes desi-tiny --workdir /tmp/desi-tiny`` to retrain
and re-export a shipped checkpoint (resumable: run the same command again after an interruption).

Two recipes reproduce the published models at the papers' scale, on GPUs: ``smith2022`` (Smith et
al. 2022, MNRAS 511, 1808: 306,006 DESI galaxies, 256×256 g r z) and ``li2024`` (Li et al. 2024,
arXiv:2407.07229: 204,513 HSC galaxies, 64×64 g r i z y, conditioned on redshift). Their training
set is a :class:`~galwidgets.data.store.SurveyStore` streamed from disk (a mock survey of the
paper's size written by ``--prepare``, or the real cutouts converted with
``gw.data.load_fits_cutouts(..., out=)`` and given with ``--store``); the ``torchrun`` command is in
each recipe and in ``galwidgets/pretrained/README.md``. ``--dry-run`` checks a recipe on the CPU:
it builds the network, streams two training steps from a small store at reduced batch and prints
the parameter count, the activation memory per image and the step time::

    python -m galwidgets.pretrained.recipes smith2022 --dry-run
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..checkpoints import save_checkpoint
from ..data.simulate import simulate_survey
from ..data.store import SurveyStore, open_store
from ..diffusion.schedules import NoiseSchedule
from ..models.unet import UNet
from ..training.diffusion import train
from .specs import RECIPES

__all__ = ["RECIPES", "build", "dry_run", "prepare_store", "training_phases", "with_overrides"]


def _survey_kwargs(spec: dict) -> dict:
    """``simulate_survey`` arguments of a recipe (a JSON list redshift range becomes the tuple it takes)."""
    return {k: tuple(v) if k == "redshift" and isinstance(v, list) else v for k, v in spec.items()}


def _recipe(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"name: unknown recipe {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]


def _resolve(name: str, recipe: dict | None) -> dict:
    """``recipe`` when given (checked for the sections a build reads), else the registered ``name``."""
    if recipe is None:
        return _recipe(name)
    if not isinstance(recipe, dict):
        raise TypeError(f"recipe: expected a recipe dict (e.g. from with_overrides), "
                        f"got {type(recipe).__name__}")
    missing = [k for k in ("survey", "model", "schedule", "train") if not isinstance(recipe.get(k), dict)]
    if missing:
        raise ValueError(f"recipe: {name!r} has no section(s) {missing}; a recipe needs survey, model, "
                         "schedule and train")
    return recipe


def prepare_store(name: str, path: str | Path, *, n_jobs: int | None = None,
                  progress: bool = True, recipe: dict | None = None) -> SurveyStore:
    """Write (or finish writing) the mock training survey of a store recipe into ``path``.

    One ``simulate_survey(..., out=path)`` call: the galaxies are rendered chunk by chunk straight
    into the store, so memory holds the catalog and a few chunks, and an interrupted run continues
    after the last complete chunk when called again. ``recipe`` replaces the registered recipe
    ``name`` (e.g. a copy from :func:`with_overrides`).
    """
    spec = _survey_kwargs(_resolve(name, recipe)["survey"])
    path = Path(path)
    try:
        return simulate_survey(**spec, out=path, n_jobs=n_jobs, progress=progress)
    except ValueError as exc:
        if "holds another survey" not in str(exc):
            raise
        raise ValueError(f"workdir: {path} holds another survey than recipe {name!r}; remove it or use "
                         "another workdir") from exc


def training_phases(recipe: dict) -> list[dict]:
    """The :func:`~galwidgets.training.diffusion.train` settings of a recipe, phase by phase.

    A recipe trains in one phase (``recipe["train"]``), two when it has an ``"anneal"`` entry: the
    same run continued from the end of the first to ``anneal["steps"]`` in total with the settings
    it overrides, typically a lower learning rate and a longer EMA (the weights then settle instead
    of wandering at the first phase's step size), and three with an ``"oversample"`` entry: the run
    continued at the last phase's settings to ``oversample["steps"]`` on a training set in which
    the galaxies whose catalog ``column`` lies in ``range`` appear ``factor`` times, so the network
    sees them that much more often (it changes how often a redshift is trained, not the galaxies
    at a redshift). That phase's dict carries the ``"oversample"`` entry, which :func:`build`
    applies to the data. All phases write to one checkpoint folder, so an interrupted build
    resumes in whichever phase it stopped, with the normalizer of the first.
    """
    phases = [("train", dict(recipe["train"]))]
    if "anneal" in recipe:
        phases.append(("anneal", {**phases[-1][1], **recipe["anneal"]}))
    if "oversample" in recipe:
        spec = dict(recipe["oversample"])
        steps = spec.pop("steps", 0)
        phases.append(("oversample", {**phases[-1][1], "steps": steps,
                                      "oversample": _check_oversample(spec)}))
    for (before, previous), (name, phase) in itertools.pairwise(phases):
        if phase.get("steps", 0) <= previous["steps"]:
            raise ValueError(f"recipe: {name} steps {phase.get('steps')!r} must exceed the {before} phase's "
                             f"{previous['steps']} (they count the whole run)")
    return [phase for _, phase in phases]


def _check_oversample(spec: dict) -> dict:
    """An ``"oversample"`` entry's ``column``, ``range`` and ``factor``, checked."""
    missing = {"column", "range", "factor"} - set(spec)
    if missing or len(spec["range"]) != 2 or not spec["range"][0] < spec["range"][1]:
        raise ValueError(f"recipe: oversample needs column, range [low, high) with low < high, and factor; "
                         f"got {spec!r}")
    if not isinstance(spec["factor"], int) or spec["factor"] < 2:
        raise ValueError(f"recipe: oversample factor must be an integer >= 2, got {spec['factor']!r}")
    return spec


def _oversampled(data, spec: dict):
    """``data`` with the galaxies whose ``spec["column"]`` lies in ``spec["range"]`` repeated
    ``spec["factor"]`` times: the survey, then ``factor - 1`` more copies of them in catalog order."""
    if isinstance(data, SurveyStore):
        raise ValueError("recipe: an oversample phase needs the training survey in memory, not a store")
    column, (low, high) = spec["column"], spec["range"]
    if column not in data.catalog.columns:
        raise ValueError(f"recipe: oversample column {column!r} is not in the training catalog")
    values = data.catalog[column].to_numpy()
    chosen = np.flatnonzero((values >= low) & (values < high))
    if not len(chosen):
        raise ValueError(f"recipe: no training galaxy has {low} <= {column} < {high} to oversample")
    rows = np.concatenate([np.arange(len(data)), *[chosen] * (spec["factor"] - 1)])
    return data[rows]


def with_overrides(name: str, overrides: dict[str, dict]) -> dict:
    """A copy of recipe ``name`` with some settings changed, section by section.

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`; the registered recipe itself is left unchanged.
    overrides : dict of dict
        Changes per section, e.g. ``{"train": {"steps": 20}, "survey": {"n": 64}}``.

    Returns
    -------
    dict
        The changed recipe. When ``overrides`` changes the step count of a phase (``train`` or
        ``anneal``) but leaves a later phase (``anneal``, ``oversample``) alone, that later phase is
        dropped (with a warning): its step count is a total set for the full-length run, so a
        20-step test run would otherwise go on to anneal to that total.
    """
    if not isinstance(overrides, dict):
        raise TypeError(f"overrides: expected a dict of sections, got {type(overrides).__name__}")
    recipe = copy.deepcopy(_recipe(name))
    for section, changes in overrides.items():
        if not isinstance(recipe.get(section), dict) or not isinstance(changes, dict):
            raise ValueError(f"overrides: no section {section!r} to change in recipe {name!r}; "
                             f"sections: {[k for k, v in recipe.items() if isinstance(v, dict)]}")
        recipe[section].update(changes)
    changed = [k for k in ("train", "anneal") if "steps" in overrides.get(k, {})]
    for phase in ("anneal", "oversample"):
        if changed and phase in recipe and phase not in overrides:
            dropped = recipe.pop(phase)["steps"]
            warnings.warn(f"overrides: {changed[0]} steps changed, so recipe {name!r}'s {phase} phase to "
                          f"step {dropped} is left out (override {phase!r} to keep it)", UserWarning,
                          stacklevel=2)
    training_phases(recipe)  # an overridden later phase must still continue past the one before
    return recipe


def build(name: str, workdir: str | Path, output: str | Path | None = None, progress: bool = True,
          store: str | Path | None = None, recipe: dict | None = None) -> Path:
    """Simulate the training survey, train (resuming in ``workdir``) and export the checkpoint.

    The exported file holds the EMA weights in float16 with the schedule, normalizer and config.
    Store recipes (``smith2022``, ``li2024``) stream their survey from ``store`` (e.g. real cutouts
    converted by ``load_fits_cutouts(..., out=)``), else from the mock survey in
    ``workdir/train_survey.h5`` (written by :func:`prepare_store`; under ``torchrun`` it must exist
    first: run the command once with ``--prepare``); they export to ``workdir/<name>.safetensors``.

    ``recipe`` builds a changed copy (from :func:`with_overrides`) instead of the registered recipe
    ``name``, without registering it; the checkpoint records it under ``name`` and, without
    ``output``, goes to ``workdir/<name>.safetensors`` (never over a shipped file).
    """
    recipe = _resolve(name, recipe)
    workdir = Path(workdir)
    t0 = time.perf_counter()
    if recipe.get("store"):
        data = _store_data(name, recipe, workdir, store, progress)
        bands = data.bands
    else:
        survey_file = workdir / "train_survey.fits"
        if survey_file.is_file():
            from ..data.surveys import Survey

            data = Survey.load(survey_file)
        else:
            data = simulate_survey(**_survey_kwargs(recipe["survey"]), progress=progress)
            data.save(survey_file)
        bands = data.bands
    torch.manual_seed(recipe["train"]["seed"])  # the initial weights; on resume they come from the checkpoint
    model = UNet(in_channels=len(bands), **recipe["model"])
    schedule = NoiseSchedule.from_config(recipe["schedule"])
    for settings in training_phases(recipe):  # each resumes from the newest checkpoint in workdir
        oversample = settings.pop("oversample", None)
        phase_data = _oversampled(data, oversample) if oversample else data
        ckpt = train(model, schedule, phase_data, checkpoint_dir=workdir / "checkpoints", progress=progress,
                     sample_every=1000, **settings)
    config = dict(ckpt.config)
    if "sampling" in recipe:  # the sampler this model draws with by default (Checkpoint.default_sampler)
        config["sampling"] = dict(recipe["sampling"])
    config["pretrained"] = {"name": name, "description": recipe.get("description", name), "recipe": recipe,
                            "wall_seconds_this_run": round(time.perf_counter() - t0, 1)}
    if output:
        output = Path(output)
    elif recipe.get("store") or recipe is not RECIPES.get(name):  # a copy never replaces a shipped file
        output = workdir / f"{name}.safetensors"
    else:
        output = Path(__file__).with_name(f"{name.replace('-', '_')}.safetensors")
    if int(os.environ.get("RANK", "0")) == 0:
        save_checkpoint(output, ckpt.model, ckpt.schedule, ckpt.normalizer, config, half=True)
    return output


def _store_data(name: str, recipe: dict, workdir: Path, store: str | Path | None,
                progress: bool) -> SurveyStore:
    if store is not None:
        return open_store(store)
    path = workdir / "train_survey.h5"
    n = recipe["survey"]["n"]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if not path.is_file() or len(open_store(path)) < n:
            raise ValueError(f"workdir: the training store {path} is missing or incomplete; write it first "
                             f"with `python -m galwidgets.pretrained.recipes {name} --workdir {workdir} "
                             "--prepare` (one process, all CPUs), then launch torchrun")
        return open_store(path)
    return prepare_store(name, path, progress=progress, recipe=recipe)


# -- dry run on the CPU ----------------------------------------------------------------------------
def _activation_bytes(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None,
                      bf16: bool) -> int:
    """Bytes autograd keeps for the backward pass of one training forward (the activations)."""
    saved: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[(tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())] = \
            tensor.untyped_storage().nbytes()
        return tensor

    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), ctx:
        model(x, t, cond).float().square().mean()
    return sum(saved.values())


def dry_run(name: str, batch_size: int = 2, n_galaxies: int = 8, steps: int = 2,
            num_workers: int = 1) -> dict[str, Any]:
    """Check a recipe on the CPU: its network, two streamed training steps, memory and time.

    Builds the recipe's network, writes ``n_galaxies`` mock galaxies of the recipe's bands and stamp
    size into a temporary store, trains ``steps`` steps of ``batch_size`` from it (through the
    DataLoader workers, as on GPUs) and measures the parameter count, the forward FLOPs and the
    activation memory per image (what autograd keeps for the backward pass, in float32 and under
    bf16 autocast), and the time per step. Returns these numbers (also printed by ``--dry-run``)
    with the estimated GPU memory per rank at the recipe's own batch.
    """
    recipe = _recipe(name)
    spec = _survey_kwargs({**recipe["survey"], "n": n_galaxies})
    torch.manual_seed(0)
    tmp = tempfile.TemporaryDirectory()
    store = simulate_survey(**spec, out=Path(tmp.name) / "dry.h5", progress=False)
    model = UNet(in_channels=len(store.bands), **recipe["model"])
    schedule = NoiseSchedule.from_config(recipe["schedule"])
    n_params = sum(p.numel() for p in model.parameters())
    size = store.size
    x = torch.randn(1, len(store.bands), size, size)
    t = torch.tensor([schedule.T // 2])
    cond = torch.ones(1, model.config["cond_dim"]) if model.config.get("cond_dim") else None
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            model(x, t, cond)
    act32 = _activation_bytes(model, x, t, cond, bf16=False)
    act16 = _activation_bytes(model, x, t, cond, bf16=True)
    train_kwargs = {k: v for k, v in recipe["train"].items() if k in ("cond", "cond_drop", "lr")}
    try:
        t0 = time.perf_counter()
        ckpt = train(model, schedule, store, steps=steps, batch_size=batch_size, warmup_steps=1,
                     num_workers=num_workers, progress=False, **train_kwargs)
        wall = time.perf_counter() - t0
    finally:
        store.close()
        tmp.cleanup()
    seconds = ckpt.history["seconds"].to_numpy()
    per_gpu = recipe["train"]["batch_size"] // recipe.get("gpus", 1)
    states = 24 * n_params  # fp32 weights, gradients, DDP buckets, AdamW's two moments, EMA
    result = {
        "recipe": name, "parameters": n_params, "forward_gflop_per_image": counter.get_total_flops() / 1e9,
        "activation_mb_per_image_fp32": act32 / 1e6, "activation_mb_per_image_bf16": act16 / 1e6,
        "batch_size": batch_size, "steps": steps, "step_seconds": float(np.diff(seconds, prepend=0)[-1]),
        "first_step_seconds": float(seconds[0]), "wall_seconds": wall,
        "loss": ckpt.history["loss"].tolist(),
        "recipe_batch_per_gpu": per_gpu,
        "estimated_gpu_gb_per_rank": (states + 1.25 * act16 * per_gpu) / 1e9,
    }
    return result


def _print_dry_run(result: dict[str, Any]) -> None:
    print(f"recipe {result['recipe']}: {result['parameters'] / 1e6:.2f} M parameters, "
          f"{result['forward_gflop_per_image']:.1f} GFLOP per image forward")
    print(f"activation memory per image: {result['activation_mb_per_image_fp32']:.0f} MB (float32), "
          f"{result['activation_mb_per_image_bf16']:.0f} MB (bf16 autocast)")
    print(f"streamed {result['steps']} training steps of batch {result['batch_size']} from a store: "
          f"{result['step_seconds']:.2f} s per step (first step {result['first_step_seconds']:.2f} s, "
          f"losses {', '.join(f'{v:.3f}' for v in result['loss'])})")
    print(f"estimated GPU memory per rank at the recipe's batch of {result['recipe_batch_per_gpu']} per "
          f"GPU: {result['estimated_gpu_gb_per_rank']:.1f} GB (states 24 B/parameter + 1.25x bf16 "
          "activations)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--workdir", help="scratch folder for the survey and checkpoints")
    parser.add_argument("--output", help="exported checkpoint (default: inside the package; GPU recipes: "
                                         "the workdir)")
    parser.add_argument("--store", help="store recipes: train on this SurveyStore (e.g. real cutouts) "
                                        "instead of the mock survey")
    parser.add_argument("--prepare", action="store_true",
                        help="store recipes: only write the mock training store into the workdir")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the network and stream two training steps from a small store on the CPU")
    parser.add_argument("--batch-size", type=int, default=2, help="batch of the dry run")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.dry_run:
        _print_dry_run(dry_run(args.name, batch_size=args.batch_size))
        return
    if not args.workdir:
        parser.error("--workdir is required (except with --dry-run)")
    if args.prepare:
        store = prepare_store(args.name, Path(args.workdir) / "train_survey.h5")
        print(f"wrote {store} in {time.perf_counter() - t0:.0f} s")
        return
    path = build(args.name, args.workdir, args.output, store=args.store)
    print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
