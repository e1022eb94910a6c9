"""Metrics over surveys too large for memory: an on-disk store measured a chunk at a time.

:func:`galwidgets.metrics.photometry`, :func:`~galwidgets.metrics.gini_m20`,
:func:`~galwidgets.metrics.synthetic_galaxy_distance`,
:func:`~galwidgets.metrics.frechet_morphology_distance`,
:func:`~galwidgets.metrics.nearest_neighbours`, :func:`~galwidgets.metrics.fid`,
:func:`~galwidgets.metrics.morphology` and :func:`~galwidgets.metrics.isophotal_shapes` accept a
:class:`~galwidgets.data.store.SurveyStore` wherever they accept a Survey. Per-galaxy measurements
then run on :data:`~galwidgets.data.store.STORE_CHUNK` galaxies at a time and their tables are
concatenated, so memory holds one chunk of images (plus the tables) whatever the size of the store,
and the result equals the in-memory one row for row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ..data.store import STORE_CHUNK, SurveyStore, is_store

__all__ = ["STORE_CHUNK", "is_store", "table_by_chunks"]


def table_by_chunks(func: Callable[..., pd.DataFrame], store: SurveyStore, chunk_size: int | None = None,
                    progress: bool = False, desc: str = "", **kwargs: Any) -> pd.DataFrame:
    """``func(part, **kwargs)`` for each part of ``store`` (Surveys of ``chunk_size`` galaxies, default
    :data:`STORE_CHUNK`), stacked.

    The index runs over the whole store; ``attrs`` are those of the first part.
    """
    chunk_size = chunk_size or STORE_CHUNK
    parts = []
    n_chunks = -(-len(store) // chunk_size)
    for part in tqdm(store.chunks(chunk_size), total=n_chunks, desc=desc, unit="chunk",
                     disable=not progress or n_chunks < 2):
        parts.append(func(part, **kwargs))
    table = pd.concat(parts, ignore_index=True)
    table.attrs = dict(parts[0].attrs)
    return table
