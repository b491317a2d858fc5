"""The US Cluster Mapping Project's strength flags, recomputed for any set of regions.

The published rule (shared/data/README.md): within one cluster and year, take percentiles across
the regions with employment > 0 (linear interpolation), then

===============  ==========================================================
``qualifying``   LQ >  P25(LQ)
``significant``  LQ >  P50(LQ)
``strong``       LQ >= P75(LQ) and LQ >= 1
``strong10``     LQ >= P90(LQ) and LQ >= 1
===============  ==========================================================

and every flag also needs employment > P25(employment) and establishments > P25(establishments).

What reproduces the published ``*_b`` flags of states_2016.csv on all 2,550 traded rows
(51 clusters x 50 states), checked against the alternatives:

- The percentile population is the regions with *total* employment > 0 (``emp_tl``, which holds
  the project's imputed value for suppressed cells). Rows whose employment is suppressed but
  imputed (``emp_reported_tl`` = 0, ``emp_tl`` > 0; 204 of the traded rows) stay in the population:
  dropping them matches only 2,429 qualifying flags. Rows with employment 0 (56 rows, LQ 0) are
  left out: keeping them matches 2,499. In that file employment > 0 and establishments > 0 pick
  the same rows.
- Percentiles use linear interpolation (numpy's default, ``(n - 1) * p``); "lower", "higher",
  "nearest" and "weibull" each miss between 1 and 57 rows.
- The employment and establishment bars are strict (``>``; ``>=`` misses 25 qualifying rows), the
  qualifying / significant LQ bars strict and the strong / strong10 LQ bars inclusive, as the
  rule says.

Percentiles are taken within whatever regions the frame holds, so the same function flags states,
metropolitan areas or counties; it never mixes two clusters or two years. Local (non-traded)
clusters get NA flags when a ``traded`` column says so, as in the published file, and so does a
row whose LQ, employment or establishments is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.errors import InputError

FLAGS: tuple[str, ...] = ("cmp_qualifying", "cmp_significant", "cmp_strong", "cmp_strong10")

# (flag, LQ percentile, LQ bar inclusive?, also needs LQ >= 1?)
_RULES: tuple[tuple[str, float, bool, bool], ...] = (
    ("cmp_qualifying", 0.25, False, False),
    ("cmp_significant", 0.50, False, False),
    ("cmp_strong", 0.75, True, True),
    ("cmp_strong10", 0.90, True, True),
)
_SIZE_PERCENTILE = 0.25


def _group_quantile(work: pd.DataFrame, group_cols: list[str], col: str, q: float) -> np.ndarray:
    """Per-group linear-interpolated quantile of the non-missing values, broadcast to each row."""
    grouped = work.groupby(group_cols, observed=True, dropna=False, sort=False)[col]
    return grouped.transform("quantile", q).to_numpy()


def strength_flags(
    frame: pd.DataFrame,
    *,
    region_col: str = "region",
    cluster_col: str = "cluster",
    year_col: str | None = "year",
) -> pd.DataFrame:
    """Return a copy of ``frame`` with the four nullable-boolean ``cmp_*`` strength flags added.

    Needs ``lq``, ``employment`` and ``establishments``; ``lq`` is used as given (the published
    LQ). Percentiles are per cluster and year (per cluster alone when ``year_col`` is None or not a
    column). An optional boolean ``traded`` column marks local clusters, whose flags are NA.
    """
    needed = [region_col, cluster_col, "lq", "employment", "establishments"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(
            None,
            f"strength flags need the columns {', '.join(needed)}; missing {', '.join(missing)}",
            column=missing[0],
        )
    group_cols = [cluster_col]
    if year_col is not None and year_col in frame.columns:
        group_cols.append(year_col)
    keys = [region_col, *group_cols]
    dup = frame.duplicated(keys, keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0]) + 1
        raise InputError(
            None,
            f"one row per {' x '.join(keys)} expected; this one repeats an earlier row",
            row=row,
        )

    out = frame.copy()
    work = pd.DataFrame({f"_g{i}": frame[c].to_numpy() for i, c in enumerate(group_cols)})
    gcols = list(work.columns)
    for col in ("lq", "employment", "establishments"):
        try:
            work[col] = pd.to_numeric(frame[col], errors="raise").astype("float64").to_numpy()
        except (TypeError, ValueError):
            raise InputError(None, "expected numbers", column=col) from None
    lq_v, emp_v, est_v = (
        work[c].to_numpy(copy=True) for c in ("lq", "employment", "establishments")
    )

    # The percentile population: regions of the cluster with employment > 0 (see module docstring).
    outside = ~(emp_v > 0)
    work.loc[outside, ["lq", "employment", "establishments"]] = np.nan
    emp_p25 = _group_quantile(work, gcols, "employment", _SIZE_PERCENTILE)
    est_p25 = _group_quantile(work, gcols, "establishments", _SIZE_PERCENTILE)
    # NaN comparisons are False, so a cluster with no employed region flags nothing.
    sized = (emp_v > emp_p25) & (est_v > est_p25)

    unknown = np.isnan(lq_v) | np.isnan(emp_v) | np.isnan(est_v)
    if "traded" in frame.columns:
        traded = frame["traded"].astype("boolean")
        unknown |= traded.eq(False).fillna(False).to_numpy()

    for name, q, inclusive, needs_one in _RULES:
        bar = _group_quantile(work, gcols, "lq", q)
        passed = (lq_v >= bar) if inclusive else (lq_v > bar)
        if needs_one:
            passed &= lq_v >= 1.0
        flag = pd.array(passed & sized, dtype="boolean")
        flag[unknown] = pd.NA
        out[name] = pd.Series(flag, index=frame.index)
    return out
