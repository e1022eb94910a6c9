"""Single-file checkpoints: weights, schedule, normalizer and the full config, without pickle.

A checkpoint is one safetensors file. Tensors are stored under prefixes (``model/``, ``ema/``,
``optim/``, ``rng/``); everything else (model class and arguments, schedule, normalizer, data
calibration, training settings, step) is JSON in the file's metadata. Loading never unpickles, so
a checkpoint from an untrusted source cannot run code. Files are written atomically.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ._device import resolve_device
from ._io import atomic_path
from ._validation import check_finite, check_positive_int
from .data.surveys import Survey
from .data.transforms import Normalizer, normalizer_from_config
from .diffusion import samplers
from .diffusion.schedules import NoiseSchedule
from .models.registry import MODELS

__all__ = ["Checkpoint", "ExtrapolationWarning", "load_checkpoint", "load_optimizer_state",
           "read_checkpoint_tensors", "save_checkpoint", "trained_condition_range", "warn_if_extrapolating"]

FORMAT_VERSION = 1
_META_KEY = "galwidgets"


@dataclass(eq=False)
class Checkpoint:
    """A trained model with everything needed to sample flux images from it.

    Attributes
    ----------
    model : torch.nn.Module
        The network, holding the EMA weights when training kept them, in eval mode.
    schedule : NoiseSchedule or None
        The noise schedule it was trained with; None for models that are not diffusion models
        (the VAE, DCGAN, band-translation and redshift-estimation baselines of
        :mod:`galwidgets.models`).
    normalizer : Normalizer
        Maps flux images to model space and back.
    config : dict
        Model, schedule, normalizer, data calibration (bands, pixel scale, zeropoint, size),
        training settings and the step reached.
    history : pandas.DataFrame, optional
        Loss per step when the checkpoint comes straight from :func:`galwidgets.train`.
    """

    model: torch.nn.Module
    schedule: NoiseSchedule | None
    normalizer: Normalizer
    config: dict
    history: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.config["data"]["bands"])

    @property
    def pixel_scale(self) -> float:
        return float(self.config["data"]["pixel_scale"])

    @property
    def zeropoint(self) -> float:
        return float(self.config["data"]["zeropoint"])

    @property
    def size(self) -> int:
        return int(self.config["data"]["size"])

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def default_sampler(self) -> tuple[str, int | None]:
        """``(sampler, steps)`` this model draws with when :meth:`sample` is given no sampler.

        The ``"sampling"`` entry of the config when the model's recipe recorded one (a sampler
        measured to suit this model better than the library's default, e.g. ``hsc-z-tiny``, whose
        galaxies the stochastic default draws 0.2–0.4 mag too bright: ``BENCHMARKS.md``), else
        :data:`~galwidgets.diffusion.samplers.DEFAULT_SAMPLER` with its default steps.
        """
        recorded = self.config.get("sampling") or {}
        if "sampler" not in recorded:
            return samplers.DEFAULT_SAMPLER, samplers.default_steps(samplers.DEFAULT_SAMPLER)
        sampler = recorded["sampler"]
        return sampler, recorded.get("steps", samplers.default_steps(sampler))

    @property
    def default_guidance(self) -> float:
        """Classifier-free guidance scale this model draws with when :meth:`sample` is given none.

        The ``"guidance"`` of the ``"sampling"`` entry of the config when the model's recipe
        recorded one (``hsc-z-tiny``: a mild 1.1, which puts more of the requested redshift into
        its galaxies' colours without the caricature of strong guidance: ``BENCHMARKS.md``), else 1
        (the plain conditional model). It applies only to conditioned draws.
        """
        value = check_finite((self.config.get("sampling") or {}).get("guidance", 1.0), "sampling.guidance",
                             "a finite number >= 0 recorded in the checkpoint")
        if value < 0:
            raise ValueError(f"sampling.guidance: expected a finite number >= 0 recorded in the checkpoint, "
                             f"got {value!r}")
        return value

    def resolve_sampler(self, sampler: str | None = None, steps: int | None = None) -> tuple[str, int | None]:
        """The ``(sampler, steps)`` a draw by :meth:`sample` takes for these arguments.

        No ``sampler``: :attr:`default_sampler`, with its steps unless ``steps`` is given; a named
        sampler without ``steps``: that sampler's own default (50 for DDIM); DDPM: ``None`` (all T
        steps). Raises ``ValueError`` naming ``sampler`` for a name not in
        :data:`~galwidgets.diffusion.samplers.SAMPLERS`. The one place the defaults are resolved:
        the demo, the notebooks and the widgets report what a draw will take through it.
        """
        if sampler is None:
            sampler, recommended = self.default_sampler
            steps = recommended if steps is None else steps
        if not isinstance(sampler, str) or sampler not in samplers.SAMPLERS:
            raise ValueError(f"sampler: expected one of {', '.join(map(repr, samplers.SAMPLERS))}, "
                             f"got {sampler!r}")
        if sampler == "ddpm":
            return sampler, None
        return sampler, samplers.default_steps(sampler) if steps is None else steps

    def sample(
        self,
        n: int,
        sampler: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        cond: Any = None,
        guidance: float | None = None,
        batch_size: int = 64,
        progress: bool = True,
        **kwargs: Any,
    ) -> Survey:
        """Draw ``n`` galaxies and return them as a flux-calibrated :class:`Survey`.

        Parameters
        ----------
        n : int
            Number of galaxies.
        sampler : str, optional
            Reverse-process sampler, a name of :data:`galwidgets.samplers.SAMPLERS`: DDIM (Song et
            al. 2021), DDPM (Ho et al. 2020, all T steps), DPM-Solver++ (Lu et al. 2022:
            ``dpm_solver``, ``dpm_solver_sde``, ``dpm_solver_3m_sde``; ``order`` and ``eta`` through
            ``**kwargs``), or the Euler, Heun and ancestral Euler samplers of
            Karras et al. (2022). See :mod:`galwidgets.diffusion.samplers`. Default: the model's
            :attr:`default_sampler`, which for most models is
            :data:`~galwidgets.diffusion.samplers.DEFAULT_SAMPLER`, the sampler that reached 50-step
            DDIM's quality in the fewest network evaluations (``BENCHMARKS.md``, "Samplers").
        steps : int, optional
            Steps of the sampler, ``1 .. T``; default the model's :attr:`default_sampler` steps when
            ``sampler`` is not given, else the sampler's own (50 for DDIM, 12 for the library
            default). Network evaluations: ``steps`` for every sampler but Heun (``2 steps - 1``);
            DDPM always takes all T steps and ignores it.
        seed : int
            Seeds the generator: the same seed gives the same galaxies.
        cond : array_like, optional
            One condition per galaxy (e.g. redshift) for conditional models; values outside the
            range the model was trained on raise an :class:`ExtrapolationWarning`.
        guidance : float, optional
            Classifier-free guidance scale (Ho & Salimans 2022; 1: the plain conditional model, 0:
            the unconditional one; see :func:`~galwidgets.diffusion.denoisers.model_output`).
            Default: the model's :attr:`default_guidance` for a conditioned draw, 1 without ``cond``.
        batch_size : int
            Galaxies per network call.
        **kwargs
            Passed to the sampler (``eta``, ``autocast``, ``callback``, ...).

        Models without a schedule (generative baselines such as the VAE or DCGAN) draw through
        their own ``generate(n, cond=None, generator=None)`` method; ``sampler``, ``steps`` and
        ``guidance`` do not apply to them.
        """
        n = check_positive_int(n, "n")
        batch_size = check_positive_int(batch_size, "batch_size")
        if self.schedule is None and not hasattr(self.model, "generate"):
            raise TypeError(f"{type(self.model).__name__} is not a generative model: it has no "
                            "schedule and no generate() method")
        given = steps
        sampler, steps = self.resolve_sampler(sampler, steps)
        fn = samplers.SAMPLERS[sampler]
        if given is not None and self.schedule is not None and sampler != "ddpm" and (
                isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                or not 1 <= steps <= self.schedule.T):
            raise ValueError(f"steps: expected an integer in 1..{self.schedule.T} (the schedule's T), "
                             f"got {steps!r}")
        steps = None if steps is None else int(steps)
        if guidance is None:
            guidance = self.default_guidance if cond is not None else 1.0
        if cond is not None:
            cond = np.asarray(cond, dtype=np.float32).reshape(n, -1)
            warn_if_extrapolating(self.config, cond)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        out = []
        starts = range(0, n, batch_size)
        for start in tqdm(starts, desc=f"sampling {n} galaxies", disable=not progress or len(starts) < 2):
            m = min(batch_size, n - start)
            shape = (m, len(self.bands), self.size, self.size)
            c = None if cond is None else torch.from_numpy(cond[start:start + m])
            if self.schedule is None:
                with torch.no_grad():
                    x = self.model.generate(m, cond=None if c is None else c.to(self.device),
                                            generator=generator)
            else:
                stepping = {} if sampler == "ddpm" else {"steps": steps}
                x = fn(self.model, self.schedule, shape, cond=c, guidance=guidance, generator=generator,
                       progress=progress, **stepping, **kwargs)
            out.append(self.normalizer.inverse(x.float().cpu()).numpy())
        catalog = pd.DataFrame({"seed": seed, "index": np.arange(n)})
        if cond is not None:
            for j in range(cond.shape[1]):
                catalog[f"cond_{j}"] = cond[:, j]
        return Survey(
            images=np.concatenate(out),
            catalog=catalog,
            bands=self.bands,
            pixel_scale=self.pixel_scale,
            zeropoint=self.zeropoint,
            meta={"source": "galwidgets.Checkpoint.sample", "sampler": sampler, "steps": steps,
                  "guidance": float(guidance), "seed": seed, "checkpoint_step": self.config.get("step")},
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model (as plain weights), schedule, normalizer and config to one file."""
        return save_checkpoint(path, self.model, self.schedule, self.normalizer, self.config)


class ExtrapolationWarning(UserWarning):
    """A model was asked for a condition (e.g. a redshift) outside the range it was trained on."""


def trained_condition_range(config: dict) -> list[list[float]] | None:
    """``[min, max]`` of each condition a checkpoint's model was trained on, where recorded."""
    recorded = (config.get("cond") or {}).get("range")
    return [list(map(float, r)) for r in recorded] if recorded else None


def warn_if_extrapolating(config: dict, cond: np.ndarray, stacklevel: int = 3) -> None:
    """Warn (:class:`ExtrapolationWarning`) when ``cond`` leaves the trained range of a checkpoint.

    A conditional model has seen galaxies only between the smallest and largest condition of its
    training set; beyond them (by more than 1 % of the range) its galaxies are an extrapolation
    that nothing constrained, not a prediction.
    """
    ranges = trained_condition_range(config)
    if not ranges or cond is None:
        return
    values = np.asarray(cond, dtype=np.float64).reshape(len(cond), -1)
    names = (config.get("cond") or {}).get("columns") or [f"cond_{j}" for j in range(len(ranges))]
    for j, (low, high) in enumerate(ranges[: values.shape[1]]):
        margin = 0.01 * (high - low)
        outside = (values[:, j] < low - margin) | (values[:, j] > high + margin)
        if outside.any():
            bad = values[outside, j]
            warnings.warn(
                f"cond: {int(outside.sum())} of {len(values)} {names[j]} values ({bad.min():g} to "
                f"{bad.max():g}) lie outside the range the model was trained on ({low:g} to {high:g}); "
                "the model extrapolates there and its galaxies are not constrained by any training data",
                ExtrapolationWarning, stacklevel=stacklevel)


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    schedule: NoiseSchedule | None,
    normalizer: Normalizer,
    config: dict,
    *,
    ema: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    rng: dict[str, torch.Tensor] | None = None,
    half: bool = False,
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file + rename).

    Parameters
    ----------
    path : path-like
        Destination ``.safetensors`` file.
    model, schedule, normalizer, config
        What :func:`load_checkpoint` needs to rebuild a :class:`Checkpoint`. ``schedule`` is None
        for models that are not diffusion models. ``model`` must be registered in
        :data:`galwidgets.models.MODELS` and carry its constructor arguments as ``model.config``.
    ema : torch.nn.Module, optional
        EMA copy of the model; preferred by :func:`load_checkpoint` for sampling.
    optimizer : torch.optim.Optimizer, optional
        Saved so that training can resume exactly.
    rng : dict of tensors, optional
        Random generator states (``torch.ByteTensor``) to resume exactly.
    half : bool
        Store weights as float16 (for shipped checkpoints; halves the size).
    optimizers : dict of str to torch.optim.Optimizer, optional
        Several named optimizers (e.g. a GAN's generator and discriminator), stored under
        ``optim/<name>/`` with their settings in ``config["optimizers"][name]``; restore each with
        :func:`load_optimizer_state`. Not together with ``optimizer``.
    """
    if optimizer is not None and optimizers:
        raise ValueError("optimizers: pass either one optimizer or a dict of optimizers, not both")
    tensors: dict[str, torch.Tensor] = {}

    def put(prefix: str, module: torch.nn.Module) -> None:
        for name, value in module.state_dict().items():
            value = value.detach().cpu()
            if half and value.is_floating_point():
                value = value.half()
            tensors[f"{prefix}/{name}"] = value.contiguous().clone()

    put("model", model)
    if ema is not None:
        put("ema", ema)
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "model": {"name": type(model).__name__, "kwargs": model.config},
        "schedule": None if schedule is None else schedule.to_config(),
        "normalizer": normalizer.to_config(),
        **{k: v for k, v in config.items() if k not in ("model", "schedule", "normalizer", "format")},
    }
    if optimizer is not None:
        meta["optimizer"] = _put_optimizer(tensors, "optim", optimizer)
    if optimizers:
        meta["optimizers"] = {name: _put_optimizer(tensors, f"optim/{name}", opt)
                              for name, opt in optimizers.items()}
    for key, value in (rng or {}).items():
        tensors[f"rng/{key}"] = value.detach().cpu().contiguous().clone()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(meta)})
    return Path(path)


def _put_optimizer(tensors: dict[str, torch.Tensor], prefix: str, optimizer: torch.optim.Optimizer) -> dict:
    """Store the optimizer state into ``tensors`` under ``prefix/<param index>/``; return its settings."""
    state = optimizer.state_dict()
    for idx, values in state["state"].items():
        for key, value in values.items():
            tensors[f"{prefix}/{idx}/{key}"] = torch.as_tensor(value).detach().cpu().contiguous().clone()
    return {"name": type(optimizer).__name__, "param_groups": state["param_groups"]}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], settings: dict, prefix: str = "optim"
) -> None:
    """Restore ``optimizer`` from checkpoint ``tensors`` stored under ``prefix/`` and its ``settings``.

    ``settings`` is ``config["optimizer"]`` (prefix ``"optim"``) or ``config["optimizers"][name]``
    (prefix ``f"optim/{name}"``) of a checkpoint read by :func:`read_checkpoint_tensors`.
    """
    state: dict[int, dict] = {}
    for key, value in state_dict_from(tensors, prefix).items():
        idx, name = key.split("/", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": settings["param_groups"]})


def _refuse_pickle(path: Path) -> None:
    """Raise if ``path`` is a pickle or ``torch.save`` archive: unpickling can run any code."""
    with open(path, "rb") as f:
        head = f.read(9)
    if head[8:9] == b"{":  # safetensors: 8-byte header length, then the JSON header
        return
    if head[:1] == b"\x80" or head[:4] == b"PK\x03\x04":  # pickle protocol >= 2, torch.save zip
        raise ValueError(
            f"path: {path} is a pickle / torch.save file, which galwidgets refuses to load: "
            "unpickling can run arbitrary code. galwidgets checkpoints are safetensors files; if "
            "you trust this file, read its weights with torch.load(path, weights_only=True) and "
            "write a checkpoint with galwidgets.checkpoints.save_checkpoint"
        )


def read_checkpoint_tensors(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Return ``(config, tensors)`` from a checkpoint file without building anything."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint file at {path}")
    _refuse_pickle(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"path: {path} is not a readable safetensors checkpoint ({exc})") from exc
    if _META_KEY not in metadata:
        raise ValueError(f"path: {path} is a safetensors file but not a galwidgets checkpoint")
    config = json.loads(metadata[_META_KEY])
    if config.get("format", 0) > FORMAT_VERSION:
        raise ValueError(
            f"path: {path} has checkpoint format {config['format']}; this galwidgets reads up to "
            f"{FORMAT_VERSION}: upgrade galwidgets"
        )
    return config, tensors


def build_model(config: dict) -> torch.nn.Module:
    """Instantiate the network described by ``config["model"]`` (weights untouched)."""
    name = config["model"]["name"]
    if name not in MODELS:
        raise ValueError(f"config: unknown model class {name!r}; known: {sorted(MODELS)}")
    return MODELS[name](**config["model"]["kwargs"])


def state_dict_from(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors stored under ``prefix/``, with the prefix removed."""
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device | None = None, use_ema: bool = True
) -> Checkpoint:
    """Load a checkpoint written by :func:`galwidgets.train` or :meth:`Checkpoint.save`.

    Parameters
    ----------
    path : path-like
        The ``.safetensors`` checkpoint file.
    device : str or torch.device, optional
        Where to put the model; ``cuda`` when available by default.
    use_ema : bool
        Load the EMA weights when the file has them (recommended for sampling).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a galwidgets checkpoint.
    """
    config, tensors = read_checkpoint_tensors(path)
    model = build_model(config)
    prefix = "ema" if use_ema and any(k.startswith("ema/") for k in tensors) else "model"
    stored = state_dict_from(tensors, prefix)
    state = {k: v.float() if v.is_floating_point() else v for k, v in stored.items()}
    model.load_state_dict(state)
    model.to(resolve_device(device)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Checkpoint(
        model=model,
        schedule=None if config.get("schedule") is None else NoiseSchedule.from_config(config["schedule"]),
        normalizer=normalizer_from_config(config["normalizer"]),
        config=config,
    )
