"""Where a cluster's values lie among the comparative clusters of its own year.

Nominal levels such as productivity and wages drift over 25 years, so a cluster of 2024 is
compared with the comparative clusters of 2024, not with all years pooled: explanations' driver
percentiles, the levers' bounds and ``score``'s percentile grids (``models.bundle``) all take
their comparative rows from ``year_reference``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# Comparative clusters of the cluster's own year bound its levers and rank its drivers where at
# least this many have a value; fewer give quantiles too coarse to bound a move by.
MIN_YEAR_ROWS = 30


def year_reference(
    reference: pd.DataFrame,
    reference_years: Sequence[int] | np.ndarray,
    year: int,
    min_rows: int = MIN_YEAR_ROWS,
) -> pd.DataFrame:
    """The comparative rows for a cluster of ``year``, feature by feature: a column keeps its
    values from ``year`` where at least ``min_rows`` of them are known there, else from the
    nearest years, widening the window year by year (t-1..t+1, t-2..t+2, ...) until it holds
    ``min_rows`` (all years where even every year holds fewer); values outside are missing."""
    years = np.asarray(reference_years, dtype=float)
    if len(years) != len(reference):
        raise ValueError(f"{len(years)} reference years for {len(reference)} reference rows")
    distance = np.abs(years - year)
    known_distance = np.where(np.isnan(distance), np.inf, distance)
    values = reference.to_numpy(dtype=float, na_value=np.nan)
    keep = np.zeros(values.shape, dtype=bool)
    for j in range(values.shape[1]):
        d = np.sort(known_distance[~np.isnan(values[:, j])])
        d = d[np.isfinite(d)]
        if d.size == 0:
            continue
        window = d[min(min_rows, d.size) - 1]
        keep[:, j] = known_distance <= window
    return pd.DataFrame(
        np.where(keep, values, np.nan), columns=reference.columns, index=reference.index
    )
