"""The main job, ``galwidgets demo``: mock galaxies → shipped model → samples → evaluation notebook."""

from __future__ import annotations

import os
import time

from ._validation import check_positive_int
from .notebooks import NotebookResult, WarmKernel, run_notebook, warm_kernel

__all__ = ["run_demo", "summary"]


def _say(message: str, progress: bool) -> None:
    if progress:
        print(message, flush=True)


def run_demo(
    output_dir: str | os.PathLike = "galwidgets-demo",
    n_generated: int = 64,
    n_reference: int = 128,
    steps: int | None = None,
    seed: int = 2026,
    model: str = "desi-tiny",
    progress: bool = True,
    sampler: str | None = None,
) -> NotebookResult:
    """Simulate held-out galaxies, sample from a shipped model and evaluate them in a notebook.

    Writes into ``output_dir``: ``reference.fits`` and ``generated.fits`` (Surveys), the executed
    ``evaluate.ipynb``, ``metrics.json`` (SGD of the model and of the split-half baseline),
    ``grid.png``, ``distributions.png`` and the photometry tables.

    Parameters
    ----------
    output_dir : path
        Folder for everything the demo writes.
    n_generated : int
        Galaxies sampled from the model.
    n_reference : int
        Held-out mock galaxies (a seed the model never saw in training).
    steps : int, optional
        Sampler steps; None for the sampler's default (the model's, when ``sampler`` is None).
    seed : int
        Seed of the simulation and the sampling.
    model : str
        Shipped checkpoint name (see :func:`galwidgets.pretrained.available`).
    progress : bool
        Show what is happening and progress bars.
    sampler : str, optional
        A name of ``gw.samplers.SAMPLERS``; None for the model's
        :attr:`~galwidgets.checkpoints.Checkpoint.default_sampler` (for ``desi-tiny``
        :data:`~galwidgets.diffusion.samplers.DEFAULT_SAMPLER`, which reached 50-step DDIM's SGD
        in the fewest network evaluations: ``BENCHMARKS.md``, "Samplers").

    Notes
    -----
    The evaluation notebook's kernel starts (and imports the metrics) first, in the background,
    so that its start-up overlaps with the simulation and the sampling (:func:`warm_kernel`).
    """
    n_generated = check_positive_int(n_generated, "n_generated")
    n_reference = check_positive_int(n_reference, "n_reference")
    t0 = time.perf_counter()
    with warm_kernel(output_dir) as kernel:
        result = _run(kernel, n_generated, n_reference, steps, seed, model, progress, sampler)
    result.seconds = time.perf_counter() - t0
    return result


def _run(kernel: WarmKernel, n_generated: int, n_reference: int, steps: int | None, seed: int, model: str,
         progress: bool, sampler: str | None) -> NotebookResult:
    # imported here, after the kernel started, so that its start-up overlaps with torch's import
    from .data.simulate import simulate_survey
    from .pretrained import load as load_pretrained

    out = kernel.output_dir
    _say(f"[1/4] loading the shipped model {model!r}", progress)
    ckpt = load_pretrained(model)
    _say(f"[2/4] simulating {n_reference} held-out mock galaxies (seed {seed})", progress)
    reference = simulate_survey(n_reference, size=ckpt.size, bands=ckpt.bands,
                                pixel_scale=ckpt.pixel_scale, seed=seed, progress=progress)
    reference.save(out / "reference.fits")
    sampler, steps = ckpt.resolve_sampler(sampler, steps)
    _say(f"[3/4] sampling {n_generated} galaxies with {sampler} ({'all' if steps is None else steps} steps)",
         progress)
    generated = ckpt.sample(n_generated, sampler=sampler, steps=steps, seed=seed, progress=progress)
    generated.save(out / "generated.fits")
    _say("[4/4] running notebooks/evaluate.ipynb (SGD, split-half baseline, figures)", progress)
    return run_notebook(
        "evaluate",
        parameters={"generated": str(out / "generated.fits"), "reference": str(out / "reference.fits"),
                    "seed": seed},
        progress=progress,
        kernel=kernel,
    )


def summary(result: NotebookResult) -> str:
    """A short text summary of a demo or evaluate run, with the paths it wrote."""
    m = result.metrics
    sgd, base = m["sgd"], m["sgd_baseline"]
    terms = [*(t for t in sgd if t != "total"), "total"]  # metrics.json keeps the notebook's order
    width = max(len(t) for t in terms)
    lines = [
        f"galwidgets demo finished in {result.seconds:.0f} s",
        f"  {m['n_generated']} generated vs {m['n_reference']} held-out mock galaxies",
        "",
        f"  {'SGD term':<{width}}  {'model':>8}  {'± s.e.':>7}  {'split-half':>10}",
    ]
    err = m.get("sgd_err", {})
    for term in terms:
        pm = f"{err[term]:7.3f}" if err.get(term) is not None else f"{'-':>7}"
        lines.append(f"  {term:<{width}}  {sgd[term]:8.3f}  {pm}  {base[term]:10.3f}")
    morph = m.get("morphology")
    if morph and morph.get("frechet_morphology_distance") is not None:
        lines += ["", f"  Fréchet morphology distance ({morph['band']} band Gini/M20 + photometry): "
                      f"{morph['frechet_morphology_distance']:.2f} (split-half "
                      f"{morph['frechet_morphology_distance_baseline']:.2f})"]
    lines += [
        "",
        f"  outputs in {result.output_dir}",
        f"    notebook  {result.notebook.name}",
        "    metrics   metrics.json",
        f"    figures   {', '.join(m.get('figures', []))}",
    ]
    return "\n".join(lines)
