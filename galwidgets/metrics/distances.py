"""Distances between populations of galaxies: the Synthetic Galaxy Distance, Cohen's d, binned KL.

The Synthetic Galaxy Distance (SGD) of Smith et al. (2022) compares generated and real
galaxies through physically meaningful summaries rather than pixels: the Wasserstein-1 distance
between the distributions of aperture magnitude in each band, of each colour and of the half-light
radius; their sum is the total. Identical populations have SGD 0.

The redshift-conditioning comparison of a conditional DDPM and a conditional VAE judges each model
by the Kullback-Leibler divergence between histograms (10 bins) of a physical property, such as
isophotal area, ellipticity or Sérsic index, of real and generated galaxies in each redshift bin
(:func:`binned_kl`, :func:`galaxy_kl_loss`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

from .photometry import photometry

__all__ = [
    "binned_kl", "cohens_d", "galaxy_kl_loss", "sgd_columns", "split_half_baseline",
    "synthetic_galaxy_distance",
]


def _as_table(data: Any, name: str, **photometry_kwargs: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    try:
        return photometry(data, **photometry_kwargs)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from exc


def sgd_columns(table: pd.DataFrame) -> dict[str, str]:
    """SGD term → photometry column: ``{"g": "mag_g", ..., "g-r": "g-r", ..., "r_half": "r_half"}``."""
    bands = [c[len("mag_"):] for c in table.columns if c.startswith("mag_")]
    columns = {band: f"mag_{band}" for band in bands}
    columns.update({c: c for c in table.columns if "-" in c and c.split("-")[0] in bands})
    if "r_half" in table.columns:
        columns["r_half"] = "r_half"
    return columns


def synthetic_galaxy_distance(
    a: Any, b: Any, *, bootstrap: int = 0, seed: int = 0, **photometry_kwargs: Any
) -> dict[str, float]:
    """Synthetic Galaxy Distance between two galaxy populations (Smith et al. 2022).

    Parameters
    ----------
    a, b : Survey, flux images (N, C, H, W) or photometry table
        The two populations (e.g. generated and real). Images are measured with :func:`photometry`.
    bootstrap : int
        Number of bootstrap resamplings (both populations drawn again with replacement) used to
        estimate the standard error of every term; 0 (default) skips it.
    seed : int
        Seed of the bootstrap resampling.
    **photometry_kwargs
        Passed to :func:`photometry` for image inputs (``zeropoint``, ``aperture_radius``,
        ``convention="smith2022"`` for the published measurement, ...).

    Returns
    -------
    dict
        Wasserstein-1 distance (:func:`scipy.stats.wasserstein_distance`) per term (e.g. ``"g"``,
        ``"r"``, ``"z"`` in magnitudes, ``"g-r"``, ``"r-z"`` in magnitudes, ``"r_half"`` in
        arcsec) and their sum ``"total"``. With ``bootstrap > 0`` also ``"<term>_err"``, the
        bootstrap standard deviation of each term and of the total.

    Notes
    -----
    Galaxies whose value is NaN (flagged by photometry) are left out of that term, on each side
    independently; a term with fewer than two values on either side is NaN, and so is the total.
    The published script instead drops a *pair* (the i-th galaxy of each set) when either is
    unmeasurable; the two agree whenever every galaxy is measurable.
    """
    ta = _as_table(a, "a", **photometry_kwargs)
    tb = _as_table(b, "b", **photometry_kwargs)
    columns = sgd_columns(ta)
    if columns != sgd_columns(tb):
        raise ValueError(
            f"b: has SGD terms {list(sgd_columns(tb))} but a has {list(columns)}; use the same bands"
        )
    bootstrap = int(bootstrap)
    if bootstrap < 0:
        raise ValueError(f"bootstrap: expected a number of resamplings >= 0, got {bootstrap}")
    values = {term: (_finite(ta[col]), _finite(tb[col])) for term, col in columns.items()}
    result = _sgd_terms(values)
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = [_sgd_terms(_resample(values, rng)) for _ in range(bootstrap)]
        for term in list(result):
            result[f"{term}_err"] = float(np.std([d[term] for d in draws], ddof=1)) if bootstrap > 1 \
                else float("nan")
    return result


def _finite(column: pd.Series) -> np.ndarray:
    values = column.to_numpy(float)
    return values[np.isfinite(values)]


def _sgd_terms(values: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    result = {
        term: float(wasserstein_distance(u, v)) if min(len(u), len(v)) >= 2 else float("nan")
        for term, (u, v) in values.items()
    }
    result["total"] = float(sum(result.values()))
    return result


def _resample(
    values: dict[str, tuple[np.ndarray, np.ndarray]], rng: np.random.Generator
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {term: (rng.choice(u, len(u)), rng.choice(v, len(v))) if min(len(u), len(v)) else (u, v)
            for term, (u, v) in values.items()}


def split_half_baseline(reference: Any, seed: int = 0, **photometry_kwargs: Any) -> dict[str, float]:
    """SGD between two random halves of ``reference``: the "perfect model" reference value.

    A model indistinguishable from the data cannot beat the SGD between two independent samples of
    the data itself; Smith et al. (2022) report this split-half value beside the model's.
    """
    table = _as_table(reference, "reference", **photometry_kwargs)
    if len(table) < 4:
        raise ValueError(f"reference: need at least 4 galaxies to split in halves, got {len(table)}")
    order = np.random.default_rng(seed).permutation(len(table))
    half = len(table) // 2
    return synthetic_galaxy_distance(table.iloc[order[:half]], table.iloc[order[half:]])


def cohens_d(u: Any, v: Any) -> float:
    """Cohen's d: difference of means in units of the pooled standard deviation.

    ``d = (mean(u) - mean(v)) / s``, ``s² = ((n_u - 1) s_u² + (n_v - 1) s_v²) / (n_u + n_v - 2)``
    (Cohen 1988). NaN values are dropped; with fewer than two finite values on a side
    the result is NaN (like an SGD term). |d| < 0.2 is conventionally "small".
    """
    u = np.asarray(u, dtype=float).ravel()
    v = np.asarray(v, dtype=float).ravel()
    u, v = u[np.isfinite(u)], v[np.isfinite(v)]
    if len(u) < 2 or len(v) < 2:
        return float("nan")
    pooled = ((len(u) - 1) * u.var(ddof=1) + (len(v) - 1) * v.var(ddof=1)) / (len(u) + len(v) - 2)
    diff = u.mean() - v.mean()
    if pooled == 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    return float(diff / np.sqrt(pooled))


def binned_kl(p: Any, q: Any, bins: int = 10, *, epsilon: float = 1e-10) -> float:
    """Kullback-Leibler divergence KL(P || Q) between two samples, from binned histograms.

    Both samples are histogrammed in ``bins`` equal bins between their joint minimum and maximum
    (as the redshift-conditioning DDPM-versus-VAE comparison does, with 10 bins), turned into
    probabilities ``p_i``, ``q_i``, and ``KL = sum_i p_i ln(p_i / q_i)`` in nats.

    Parameters
    ----------
    p, q : array_like
        Samples of one property, e.g. real (``p``) and generated (``q``) galaxies; NaN dropped.
    bins : int
        Number of bins.
    epsilon : float
        Treatment of empty bins: ``epsilon`` is added to every bin probability of both histograms,
        which are then renormalised. A bin empty in both contributes nothing; a bin empty only in
        ``q`` contributes a large finite penalty of about ``p_i ln(p_i / epsilon)`` instead of
        infinity; a bin empty only in ``p`` contributes about ``-epsilon``, i.e. nothing.

    Returns
    -------
    float
        KL(P || Q) >= 0; 0 for identical samples; NaN when either sample has no finite value.
        When all values are equal (zero range) the single bin holds both and the KL is 0.
    """
    bins = int(bins)
    if bins < 1:
        raise ValueError(f"bins: expected at least 1 bin, got {bins}")
    if not (epsilon > 0):
        raise ValueError(f"epsilon: expected a positive number, got {epsilon!r}")
    u = np.asarray(p, dtype=float).ravel()
    v = np.asarray(q, dtype=float).ravel()
    return _histogram_kl(u[np.isfinite(u)], v[np.isfinite(v)], bins, epsilon)


def _histogram_kl(u: np.ndarray, v: np.ndarray, bins: int, epsilon: float,
                  value_range: tuple[float, float] | None = None) -> float:
    """KL(P || Q) of finite samples ``u``, ``v`` on ``bins`` equal bins of ``value_range`` (default: their
    joint minimum to maximum; values beyond it count in the end bins); see :func:`binned_kl`."""
    if len(u) == 0 or len(v) == 0:
        return float("nan")
    lo, hi = value_range if value_range is not None else (min(u.min(), v.min()), max(u.max(), v.max()))
    if hi == lo:
        return 0.0
    u, v = np.clip(u, lo, hi), np.clip(v, lo, hi)  # values beyond a given range count in the end bins
    hp = np.histogram(u, bins=bins, range=(lo, hi))[0] / len(u) + epsilon
    hq = np.histogram(v, bins=bins, range=(lo, hi))[0] / len(v) + epsilon
    hp, hq = hp / hp.sum(), hq / hq.sum()
    return float(max(np.sum(hp * np.log(hp / hq)), 0.0))


def galaxy_kl_loss(
    real: pd.DataFrame,
    generated: pd.DataFrame,
    properties: Sequence[str] = ("isophotal_area", "ellipticity", "sersic_n"),
    *,
    redshift: str = "z",
    redshift_bins: Sequence[float] | int = 5,
    bins: int = 10,
    min_galaxies: int = 10,
    value_range: str = "pooled",
) -> pd.DataFrame:
    """Per-redshift-bin KL divergence of galaxy properties, real versus generated.

    The "galaxy KL loss" of Li et al. (2024, arXiv:2407.07229, Sect. 3): in each redshift bin and
    for each property, the Kullback-Leibler divergence KL(real || generated) between histograms of
    ``bins`` (10 in the paper) equal bins between the minimum and the maximum of the property. A
    conditional generator that reproduces how morphology evolves with redshift scores low in every
    bin.

    The paper does not say over which galaxies the minimum and maximum are taken; ``value_range``
    chooses. The default, ``"pooled"``, takes them in each redshift bin over the real and generated
    galaxies of that bin together (:func:`binned_kl`): no compared galaxy falls outside the
    histogram, and each redshift bin is resolved on its own scale (isophotal areas at z > 1 span a
    small part of those at z < 0.5, and one range for all redshifts would put them in one or two
    bins). Its weakness: extreme generated values (a Sérsic fit stopped at its bound ``n = 8``, say)
    widen the range and coarsen the histogram for both samples, so that a model producing outliers
    can score *better* than one that does not. ``"global"`` takes one range per property over all
    real and generated galaxies of all redshift bins, so every redshift bin is histogrammed on the
    same bins (with the same weakness). ``"real"`` takes it in each redshift bin from the real
    galaxies alone and counts generated values beyond it in the first or last bin: the histogram is
    the real population's whatever the model does.

    Parameters
    ----------
    real, generated : pandas.DataFrame
        One row per galaxy with a redshift column and the property columns (e.g. from
        :func:`galwidgets.metrics.isophotal_shapes` and :func:`galwidgets.metrics.morphology`
        joined with the redshift each galaxy was observed or generated at).
    properties : sequence of str
        Columns to compare.
    redshift : str
        Name of the redshift column.
    redshift_bins : int or sequence of float
        Number of equal-count (quantile) bins of the real redshifts, or explicit bin edges (Li et
        al. 2024: ``(0, 0.5, 1, 1.5, 2, 3)``). Bins are half-open ``[lo, hi)`` but for the last,
        which includes its upper edge; galaxies outside the edges are not used.
    bins : int
        Histogram bins of each property.
    min_galaxies : int
        A redshift bin with fewer real or generated galaxies gets NaN rather than a noisy value.
    value_range : {"pooled", "global", "real"}
        Where the histogram's minimum and maximum come from (see above).

    Returns
    -------
    pandas.DataFrame
        One row per redshift bin: ``z_min``, ``z_max``, ``n_real``, ``n_generated``, one KL column
        (nats) per property, and ``total`` (their sum). ``df.attrs["mean"]`` holds the mean over
        bins (those with a value) of each property and of the total; ``df.attrs["value_range"]``
        the choice made.
    """
    for name, table in (("real", real), ("generated", generated)):
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"{name}: expected a pandas DataFrame, got {type(table).__name__}")
        missing = [c for c in (redshift, *properties) if c not in table.columns]
        if missing:
            raise ValueError(f"{name}: missing columns {missing}; it has {list(table.columns)}")
    if value_range not in ("pooled", "global", "real"):
        raise ValueError(f"value_range: expected 'pooled', 'global' or 'real', got {value_range!r}")
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins: expected a positive integer number of histogram bins, got {bins!r}")
    edges = _redshift_edges(real[redshift].to_numpy(float), redshift_bins)
    masks = [(_in_bin(real[redshift], lo, hi, hi == edges[-1]),
              _in_bin(generated[redshift], lo, hi, hi == edges[-1])) for lo, hi in itertools.pairwise(edges)]
    ranges = _global_ranges(real, generated, properties, masks) if value_range == "global" else {}
    rows = []
    for (lo, hi), (in_real, in_gen) in zip(itertools.pairwise(edges), masks, strict=True):
        row: dict[str, float] = {"z_min": lo, "z_max": hi, "n_real": int(in_real.sum()),
                                 "n_generated": int(in_gen.sum())}
        enough = min(row["n_real"], row["n_generated"]) >= min_galaxies
        for prop in properties:
            u, v = _finite_values(real.loc[in_real, prop]), _finite_values(generated.loc[in_gen, prop])
            span = (u.min(), u.max()) if value_range == "real" and len(u) else ranges.get(prop)
            row[prop] = _histogram_kl(u, v, int(bins), 1e-10, span) if enough else float("nan")
        row["total"] = float(sum(row[prop] for prop in properties))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["mean"] = {c: float(table[c].mean()) for c in (*properties, "total")}
    table.attrs["value_range"] = value_range
    return table


def _finite_values(column: pd.Series) -> np.ndarray:
    values = column.to_numpy(float)
    return values[np.isfinite(values)]


def _global_ranges(real: pd.DataFrame, generated: pd.DataFrame, properties: Sequence[str],
                   masks: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """Minimum and maximum of each property over the real and generated galaxies of all redshift bins."""
    in_real = np.logical_or.reduce([m[0] for m in masks])
    in_gen = np.logical_or.reduce([m[1] for m in masks])
    ranges = {}
    for prop in properties:
        values = np.concatenate([_finite_values(real.loc[in_real, prop]),
                                 _finite_values(generated.loc[in_gen, prop])])
        if len(values):
            ranges[prop] = (float(values.min()), float(values.max()))
    return ranges


def _redshift_edges(z: np.ndarray, redshift_bins: Sequence[float] | int) -> np.ndarray:
    if isinstance(redshift_bins, int | np.integer):
        if redshift_bins < 1:
            raise ValueError(f"redshift_bins: expected at least 1 bin, got {redshift_bins}")
        z = z[np.isfinite(z)]
        if len(z) == 0:
            raise ValueError("real: no finite redshifts to bin")
        return np.unique(np.quantile(z, np.linspace(0, 1, int(redshift_bins) + 1)))
    edges = np.asarray(redshift_bins, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"redshift_bins: expected increasing bin edges, got {redshift_bins!r}")
    return edges


def _in_bin(z: pd.Series, lo: float, hi: float, last: bool) -> np.ndarray:
    values = z.to_numpy(float)
    return (values >= lo) & ((values <= hi) if last else (values < hi))
