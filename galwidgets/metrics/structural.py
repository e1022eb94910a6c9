"""Pixel-space comparisons: SSIM, SSIM gain and nearest neighbours in the training set.

* :func:`ssim` is the structural similarity index of Wang et al. (2004), computed by
  :func:`skimage.metrics.structural_similarity` per galaxy and band with the paper's settings
  (11-tap Gaussian window of σ = 1.5 px, population covariances, K1 = 0.01, K2 = 0.03).
* :func:`ssim_gain` is the SSIM gain of the band-translation thesis (eq. 3.5),
  ``SSIM(output, target) - SSIM(input, target)``: how much closer to the truth an image-to-image
  model brings its input.
* :func:`nearest_neighbours` finds, for each generated galaxy, its closest training stamps in
  pixel space (L2, batched :func:`torch.cdist`), the usual memorisation check of generative models:
  a generated galaxy at distance ≈ 0 from a training galaxy is a copy. Distances are compared with
  the training set's own nearest-neighbour distances (:func:`training_nn_distances`), which set the
  scale of "close".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from skimage.metrics import structural_similarity
from tqdm.auto import tqdm

from .._validation import as_bands, as_images, check_positive, check_positive_int
from . import chunked
from .chunked import is_store

__all__ = ["NN_FLAGS", "nearest_neighbours", "ssim", "ssim_gain", "training_nn_distances"]

#: Bits of the ``flag`` column of :func:`nearest_neighbours`.
NN_FLAGS = {
    "nonfinite_pixels": 1,  # NaN or inf pixels in the generated stamp: no neighbour (index -1, NaN)
    "zero_norm": 2,  # normalise="l2" and an all-zero stamp: compared unnormalised (as zeros)
}

_NORMALISE = (None, "l2")


# --------------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------------


def _pair(a: Any, b: Any, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    arr_a = as_images(a, name_a, allow_nan=True)
    arr_b = as_images(b, name_b, allow_nan=True)
    if arr_a.shape != arr_b.shape:
        raise ValueError(f"{name_a}: expected the shape of {name_b} {arr_b.shape}, got {arr_a.shape}")
    return arr_a, arr_b


def _data_range(target: np.ndarray, data_range: Any) -> np.ndarray:
    """Data range per image and band, ``(N, C)``: the target's max - min unless given."""
    n, c = target.shape[:2]
    if data_range is None:
        flat = target.reshape(n, c, -1).astype(np.float64)
        finite = np.isfinite(flat).all(axis=-1)
        with np.errstate(invalid="ignore"):
            rng = np.where(finite, flat.max(axis=-1) - flat.min(axis=-1), np.nan)
        return rng
    values = np.asarray(data_range, dtype=np.float64)
    try:
        values = np.broadcast_to(values, (n, c))
    except ValueError as exc:
        raise ValueError(
            f"data_range: expected a number, one per band ({c},) or one per image and band ({n}, {c}), "
            f"got shape {values.shape}"
        ) from exc
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(f"data_range: expected finite positive values, got {data_range!r}")
    return values


def _window(gaussian_weights: bool, sigma: float, win_size: int | None) -> int:
    if win_size is not None:
        win_size = check_positive_int(win_size, "win_size")
        if win_size % 2 == 0:
            raise ValueError(f"win_size: expected an odd number of pixels, got {win_size}")
        return win_size
    return 2 * int(3.5 * sigma + 0.5) + 1 if gaussian_weights else 7


def _ssim_per_band(
    a: np.ndarray, b: np.ndarray, data_range: np.ndarray, gaussian_weights: bool, sigma: float,
    win_size: int | None, progress: bool,
) -> np.ndarray:
    """SSIM of each image and band, ``(N, C)``; NaN where a band has non-finite pixels or zero range."""
    n, c = a.shape[:2]
    out = np.full((n, c), np.nan)
    finite = np.isfinite(a).all(axis=(2, 3)) & np.isfinite(b).all(axis=(2, 3))
    ok = finite & np.isfinite(data_range) & (data_range > 0)
    kwargs = {"gaussian_weights": gaussian_weights, "use_sample_covariance": False, "win_size": win_size}
    if gaussian_weights:
        kwargs["sigma"] = sigma
    for i in tqdm(range(n), desc="SSIM", disable=not progress, leave=False):
        for j in range(c):
            if ok[i, j]:
                out[i, j] = structural_similarity(
                    a[i, j].astype(np.float64), b[i, j].astype(np.float64),
                    data_range=float(data_range[i, j]), **kwargs,
                )
    return out


def ssim(
    output: Any,
    target: Any,
    *,
    data_range: float | Sequence[float] | np.ndarray | None = None,
    per_band: bool = False,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Structural similarity (Wang et al. 2004) of each galaxy with its target.

    Parameters
    ----------
    output, target : Survey, array or torch.Tensor (N, C, H, W)
        Flux images of the same shape; ``target`` is the reference (ground truth).
    data_range : float or array, optional
        Dynamic range ``L`` in the SSIM constants ``C1 = (0.01 L)²`` and ``C2 = (0.03 L)²``: a number,
        one per band ``(C,)`` or one per image and band ``(N, C)``. Default: the target's
        ``max - min`` of each image and band. Flux images have no fixed range, and taking it from the
        target (never from the output) keeps the constants the same for every image compared with
        that target, as :func:`ssim_gain` needs.
    per_band : bool
        Return ``(N, C)`` values, one per band, instead of their mean over bands ``(N,)``.
    gaussian_weights : bool
        Weight the local statistics with a Gaussian window (σ = ``sigma``, 11 taps for σ = 1.5) as in
        Wang et al. (2004); False uses a uniform ``win_size`` window (default 7 px). Population (not
        sample) covariances are used, also as in the paper.
    sigma : float
        Standard deviation of the Gaussian window in pixels.
    win_size : int, optional
        Odd window side in pixels; default set by ``sigma`` (Gaussian) or 7 (uniform). Images must be
        at least this large; the mean SSIM excludes a border of half a window.
    progress : bool
        Show a progress bar (one :func:`skimage.metrics.structural_similarity` call per band).

    Returns
    -------
    numpy.ndarray
        SSIM per galaxy ``(N,)`` (the mean over bands), or per galaxy and band ``(N, C)``; 1 for
        identical images. NaN for a band with non-finite pixels or a constant target (zero range;
        the band mean is then NaN too).
    """
    out_arr, tgt_arr = _pair(output, target, "output", "target")
    sigma = check_positive(sigma, "sigma")
    size = _window(gaussian_weights, sigma, win_size)
    h, w = tgt_arr.shape[-2:]
    if min(h, w) < size:
        raise ValueError(
            f"output: SSIM needs images of at least {size}x{size} px for a {size} px window, got {h}x{w}; "
            "pass a smaller win_size (or sigma)"
        )
    rng = _data_range(tgt_arr, data_range)
    values = _ssim_per_band(out_arr, tgt_arr, rng, gaussian_weights, sigma, win_size, progress)
    return values if per_band else values.mean(axis=1)


def ssim_gain(
    output: Any,
    input: Any,
    target: Any,
    *,
    data_range: float | Sequence[float] | np.ndarray | None = None,
    per_band: bool = False,
    bands: Sequence[str] | None = None,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """SSIM gain of an image-to-image model: ``SSIM(output, target) - SSIM(input, target)``.

    The band-translation thesis (eq. 3.5) scores a model that maps an input image (e.g. a blurred,
    noisy or other-band image) to an estimate of the target by how much it raises the SSIM with the
    target: positive when the output is closer to the target than the input was, 0 when the model
    returns its input, negative when it makes things worse.

    Parameters
    ----------
    output, input, target : Survey, array or torch.Tensor (N, C, H, W)
        Model outputs, model inputs and ground truth, all of the same shape.
    data_range : float or array, optional
        SSIM dynamic range; default the target's ``max - min`` per image and band, used for both
        comparisons (see :func:`ssim`).
    per_band : bool
        Also return the three columns of each band, suffixed ``_<band>``.
    bands : sequence of str, optional
        Band names for the per-band columns; default the target's (a Survey), else ``("g", "r",
        "z")`` for three channels, else ``"0", "1", ...``.
    gaussian_weights, sigma, win_size, progress
        As in :func:`ssim`.

    Returns
    -------
    pandas.DataFrame
        One row per galaxy: ``ssim_input``, ``ssim_output`` and ``ssim_gain`` (means over bands),
        plus ``ssim_input_<band>``, ``ssim_output_<band>``, ``ssim_gain_<band>`` with ``per_band``.
        ``df.attrs["mean_gain"]`` is the mean gain over galaxies (NaN ignored). NaN where SSIM is
        undefined (see :func:`ssim`).
    """
    if bands is None and hasattr(target, "bands") and hasattr(target, "images"):
        bands = target.bands
    out_arr, tgt_arr = _pair(output, target, "output", "target")
    in_arr, _ = _pair(input, target, "input", "target")
    c = tgt_arr.shape[1]
    if bands is None:
        bands = ("g", "r", "z") if c == 3 else tuple(str(i) for i in range(c))
    bands = as_bands(bands, c)
    kwargs = {"data_range": _data_range(tgt_arr, data_range), "per_band": True,
              "gaussian_weights": gaussian_weights, "sigma": sigma, "win_size": win_size,
              "progress": progress}
    s_out = ssim(out_arr, tgt_arr, **kwargs)
    s_in = ssim(in_arr, tgt_arr, **kwargs)
    table: dict[str, np.ndarray] = {
        "ssim_input": s_in.mean(axis=1),
        "ssim_output": s_out.mean(axis=1),
        "ssim_gain": (s_out - s_in).mean(axis=1),
    }
    if per_band:
        for j, band in enumerate(bands):
            table[f"ssim_input_{band}"] = s_in[:, j]
            table[f"ssim_output_{band}"] = s_out[:, j]
            table[f"ssim_gain_{band}"] = s_out[:, j] - s_in[:, j]
    df = pd.DataFrame(table)
    df.attrs["mean_gain"] = float(np.nanmean(df["ssim_gain"])) if df["ssim_gain"].notna().any() \
        else float("nan")
    return df


# --------------------------------------------------------------------------------------------------
# Nearest neighbours
# --------------------------------------------------------------------------------------------------


def _flatten(
    images: Any, name: str, normalise: str | None, *, allow_nan: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C*H*W)`` float32 rows (normalised if asked) and a per-row flag array."""
    if normalise not in _NORMALISE:
        raise ValueError(f"normalise: expected one of {_NORMALISE}, got {normalise!r}")
    arr = as_images(images, name, allow_nan=allow_nan)
    flat = np.ascontiguousarray(arr.reshape(len(arr), -1))
    flag = np.zeros(len(flat), dtype=np.int64)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        flat = flat.copy()
        flat[bad] = 0.0
        flag[bad] |= NN_FLAGS["nonfinite_pixels"]
    if normalise == "l2":
        norms = np.linalg.norm(flat.astype(np.float64), axis=1)
        zero = norms == 0
        flag[zero & ~bad] |= NN_FLAGS["zero_norm"]
        flat = (flat / np.where(zero, 1.0, norms)[:, None]).astype(np.float32)
    return flat, flag


class _Stamps:
    """Flattened (and normalised) stamps in memory, or read block by block from an on-disk store."""

    def __init__(self, data: Any, name: str, normalise: str | None, *, allow_nan: bool) -> None:
        self.name, self.normalise, self.allow_nan = name, normalise, allow_nan
        if is_store(data):
            if normalise not in _NORMALISE:
                raise ValueError(f"normalise: expected one of {_NORMALISE}, got {normalise!r}")
            self.store, self.flat = data, None
            self.n, self.shape = len(data), tuple(data.image_shape)
        else:
            self.store = None
            self.flat, self.flag = _flatten(data, name, normalise, allow_nan=allow_nan)
            self.n, self.shape = len(self.flat), tuple(as_images(data, name, allow_nan=True).shape[1:])
        self.dim = int(np.prod(self.shape))

    def _rows(self, images: np.ndarray) -> np.ndarray:
        return _flatten(images, self.name, self.normalise, allow_nan=self.allow_nan)[0]

    def blocks(self, size: int) -> Any:
        """``(start, rows)`` blocks of at most ``size`` stamps, in order."""
        for b0 in range(0, self.n, size):
            if self.store is None:
                yield b0, self.flat[b0:b0 + size]
            else:
                yield b0, self._rows(self.store.read_images(slice(b0, min(b0 + size, self.n))))

    def take(self, index: np.ndarray) -> np.ndarray:
        """The flattened stamps ``index`` (any order, repeats allowed)."""
        if self.store is None:
            return self.flat[index]
        return self._rows(self.store.read_images(np.asarray(index, dtype=np.int64)))


def _knn(
    queries: np.ndarray, base: _Stamps, k: int, batch_size: int, device: str | torch.device,
    exclude: np.ndarray | None = None, progress: bool = False, desc: str = "nearest neighbours",
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest rows of ``base`` for each row of ``queries``: indices ``(Q, k)``, distances ``(Q, k)``.

    Distances of blocks of ``batch_size`` base rows × ``batch_size`` queries come from
    :func:`torch.cdist` (matrix-product mode, float32); the base is read once, block by block (from
    disk for a store), while a shortlist of ``k + 2`` candidates per query is kept. The shortlisted
    neighbours are then re-measured directly from pixel differences, so a copy comes out at
    distance 0 exactly (not ``sqrt`` of round-off) and round-off of the matrix product cannot swap
    near ties. ``exclude`` gives one base index per query to skip (itself).
    """
    n_short = min(k + 2, base.n - (exclude is not None))
    nq = len(queries)
    best_d = torch.full((nq, 0), float("inf"), device=device)
    best_i = torch.full((nq, 0), -1, dtype=torch.int64, device=device)
    q_all = torch.from_numpy(queries)
    own = None if exclude is None else torch.from_numpy(exclude).to(device)[:, None]
    n_blocks = -(-base.n // batch_size)
    for b0, block in tqdm(base.blocks(batch_size), total=n_blocks, desc=desc, disable=not progress,
                          leave=False):
        b = torch.from_numpy(block).to(device)
        ids = torch.arange(b0, b0 + len(b), device=device)
        d_parts, i_parts = [], []
        for q0 in range(0, nq, batch_size):
            q = q_all[q0:q0 + batch_size].to(device)
            d = torch.cdist(q[None], b[None], compute_mode="use_mm_for_euclid_dist")[0]
            block_ids = ids.expand(len(q), -1)
            if own is not None:
                d = d.masked_fill(block_ids == own[q0:q0 + batch_size], float("inf"))
            cand_d = torch.cat([best_d[q0:q0 + batch_size], d], dim=1)
            cand_i = torch.cat([best_i[q0:q0 + batch_size], block_ids], dim=1)
            top_d, pos = cand_d.topk(min(n_short, cand_d.shape[1]), dim=1, largest=False)
            d_parts.append(top_d)
            i_parts.append(cand_i.gather(1, pos))
        best_d, best_i = torch.cat(d_parts), torch.cat(i_parts)
    short = best_i.cpu().numpy()
    wanted, where = np.unique(short, return_inverse=True)
    candidates = torch.from_numpy(base.take(wanted))
    where = where.reshape(short.shape)
    exact = np.stack([
        torch.linalg.vector_norm(q_all - candidates[where[:, j]], dim=1).double().numpy()
        for j in range(short.shape[1])
    ], axis=1)
    order = np.argsort(exact, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(short, order, axis=1), np.take_along_axis(exact, order, axis=1)


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def training_nn_distances(
    training: Any,
    *,
    n: int | None = 1000,
    normalise: str | None = None,
    batch_size: int = 1024,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Distance of training galaxies to their nearest *other* training galaxy (pixel-space L2).

    The natural scale of :func:`nearest_neighbours`: generated galaxies that are much closer to a
    training galaxy than training galaxies are to each other are suspected copies.

    Parameters
    ----------
    training : Survey, SurveyStore, array or torch.Tensor (N, C, H, W)
        Training flux images (finite), at least two; an on-disk store is read block by block.
    n : int, optional
        Number of randomly chosen training galaxies to measure (each against the whole set); None
        measures all (as costly as a full generated-versus-training search).
    normalise : None or "l2"
        As in :func:`nearest_neighbours`; use the same setting for both.
    batch_size : int
        Rows per distance block (memory ~ ``batch_size² × 4`` bytes plus the two blocks of stamps).
    seed : int, optional
        Seed of the random subset.
    device : str or torch.device, optional
        Torch device; default CUDA when available, else CPU.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per measured training galaxy: ``index`` (into ``training``), ``nn_index`` (its
        nearest other training galaxy) and ``distance``. Exact duplicates in the training set give 0.
    """
    base = _Stamps(training, "training", normalise, allow_nan=False)
    if base.n < 2:
        raise ValueError(f"training: expected at least 2 images to compare with each other, got {base.n}")
    if n is not None:
        n = check_positive_int(n, "n")
    batch_size = check_positive_int(batch_size, "batch_size")
    return _training_nn(base, n, seed, batch_size, _device(device), progress)


def _training_nn(
    base: _Stamps, n: int | None, seed: int | None, batch_size: int, device: torch.device,
    progress: bool,
) -> pd.DataFrame:
    if n is None or n >= base.n:
        chosen = np.arange(base.n)
    else:
        chosen = np.sort(np.random.default_rng(seed).choice(base.n, size=n, replace=False))
    idx, dist = _knn(base.take(chosen), base, 1, batch_size, device, exclude=chosen,
                     progress=progress, desc="training NN distances")
    return pd.DataFrame({"index": chosen, "nn_index": idx[:, 0], "distance": dist[:, 0]})


def nearest_neighbours(
    generated: Any,
    training: Any,
    *,
    k: int = 1,
    batch_size: int = 1024,
    normalise: str | None = None,
    reference: int | None = 1000,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Nearest training galaxies of each generated galaxy in pixel space: a memorisation check.

    Euclidean (L2) distances between flattened stamps ``(C*H*W,)``, computed block by block with
    :func:`torch.cdist` so that memory stays at a few blocks whatever the set sizes (10,000 × 10,000
    stamps of 3×64×64 need about 1 GB for the two sets plus ~50 MB of work space), with the
    shortlisted neighbours re-measured exactly (a copy gives distance 0, not round-off).

    Parameters
    ----------
    generated : Survey, SurveyStore, array or torch.Tensor (N, C, H, W)
        Generated flux images. A stamp with non-finite pixels gets no neighbour (flagged). A store
        is searched :data:`~galwidgets.data.store.STORE_CHUNK` galaxies at a time.
    training : Survey, SurveyStore, array or torch.Tensor (M, C, H, W)
        Training flux images (finite), with the same ``(C, H, W)``. An on-disk store is read block
        by block, once per chunk of generated galaxies, so memory stays at a few blocks.
    k : int
        Number of neighbours per generated galaxy (at most ``M``).
    batch_size : int
        Rows per distance block.
    normalise : None or "l2"
        None compares flux images as they are (bright galaxies dominate the distances); ``"l2"``
        scales every stamp to unit L2 norm first, so distances (0 to 2) compare shapes whatever the
        brightness, and a rescaled copy also counts as a copy. For another pixel space (e.g. an
        asinh stretch) transform both sets before calling.
    reference : int, optional
        Number of training galaxies whose distance to their nearest other training galaxy
        (:func:`training_nn_distances`) sets the reference scale; None skips it (no ``ratio``).
    seed : int, optional
        Seed of the reference subset.
    device : str or torch.device, optional
        Torch device; default CUDA when available, else CPU.
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        One row per generated galaxy: ``index_1 ... index_k`` (rows of ``training``, nearest first;
        -1 when undefined), ``distance_1 ... distance_k`` (L2, in flux units or unit-norm units),
        ``ratio`` = ``distance_1`` / the median training-to-training nearest-neighbour distance
        (with ``reference``), and ``flag`` (bits in :data:`NN_FLAGS`). ``df.attrs`` holds
        ``reference_distance`` (that median) and ``reference_quantiles`` (its 1, 5, 50 per cent
        quantiles). A ratio near 0 marks a likely memorised sample; generated galaxies that are
        genuinely new have ratios of order 1, like training galaxies among themselves.
    """
    k = check_positive_int(k, "k")
    batch_size = check_positive_int(batch_size, "batch_size")
    if reference is not None:
        reference = check_positive_int(reference, "reference")
    base = _Stamps(training, "training", normalise, allow_nan=False)
    g_shape = tuple(generated.image_shape) if is_store(generated) else \
        as_images(generated, "generated", allow_nan=True).shape[1:]
    if g_shape != base.shape:
        raise ValueError(f"training: expected stamps shaped like generated {g_shape}, got {base.shape}")
    if k > base.n:
        raise ValueError(f"k: expected at most the {base.n} training images, got {k}")
    dev = _device(device)
    parts = generated.chunks(chunked.STORE_CHUNK) if is_store(generated) else [generated]
    tables = [_neighbour_table(part, base, k, normalise, batch_size, dev, progress) for part in parts]
    df = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    if reference is not None and base.n >= 2:
        ref = _training_nn(base, reference, seed, batch_size, dev, progress)["distance"].to_numpy()
        median = float(np.median(ref))
        df.attrs["reference_distance"] = median
        levels = (0.01, 0.05, 0.5)
        df.attrs["reference_quantiles"] = dict(zip(levels, np.quantile(ref, levels).tolist()))
        with np.errstate(divide="ignore", invalid="ignore"):
            df.insert(len(df.columns) - 1, "ratio", df["distance_1"].to_numpy() / median)
    return df


def _neighbour_table(generated: Any, base: _Stamps, k: int, normalise: str | None, batch_size: int,
                     device: torch.device, progress: bool) -> pd.DataFrame:
    """``index_j``, ``distance_j`` and ``flag`` of each generated stamp (without the reference ratio)."""
    queries, flag = _flatten(generated, "generated", normalise, allow_nan=True)
    idx, dist = _knn(queries, base, k, batch_size, device, progress=progress)
    bad = (flag & NN_FLAGS["nonfinite_pixels"]).astype(bool)
    idx[bad], dist[bad] = -1, np.nan
    table: dict[str, np.ndarray] = {}
    for j in range(k):
        table[f"index_{j + 1}"] = idx[:, j]
    for j in range(k):
        table[f"distance_{j + 1}"] = dist[:, j]
    table["flag"] = flag
    return pd.DataFrame(table)
