"""The nation the simulated regions belong to: its employment by sector and in all.

The regions are a small part of a large country, as real regions are. Without a national reference
their location quotients and national shares would be computed within the regions alone, where a
sector found in three regions makes each of them a large share of the "nation". The generator
therefore adds national rows to the panel (region = the total label), which the indicators read as
the national reference (features.indicators.context).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.reference_world.archetypes import CYCLE, NOISE, YEARS

# The nation's stream of random draws, apart from every region's (seed, region index, stream).
_NATION_STREAM = 10_000


def national_rows(panel: pd.DataFrame, seed: int, total_label: str) -> pd.DataFrame:
    """National rows for ``panel`` (every simulated region, every year): one per sector and year
    (region = ``total_label``; employment and establishments of the regions plus those of the
    rest of the nation) and one per year with cluster = ``total_label`` (all national employment).

    In 2000 the regions hold ``NOISE.nation_world_share`` of national employment, and in a typical
    year a share drawn from ``NOISE.nation_sector_share`` of each sector's; the rest of the nation
    grows at ``nation_growth`` (a sector's: plus a trend of its own) and feels the national cycle
    and noise.
    """
    rng = np.random.default_rng([seed, _NATION_STREAM])
    sectors = sorted(panel["cluster"].unique())
    n_t = len(YEARS)
    by_sector = panel.pivot_table(
        index="cluster", columns="year", values=["employment", "establishments"], aggfunc="sum"
    ).reindex(index=sectors)
    totals = (
        panel.drop_duplicates(["region", "year"])
        .groupby("year")["region_employment_total"]
        .sum()
        .reindex(YEARS)
        .to_numpy(dtype="float64")
    )
    shock = np.array([CYCLE.get(y, (0.0, 1.0))[0] for y in YEARS])
    lo, hi = NOISE.nation_sector_share
    share = rng.uniform(lo, hi, len(sectors))
    trend = NOISE.nation_growth + rng.normal(0.0, NOISE.nation_sector_sigma, len(sectors))
    noise = rng.normal(0.0, NOISE.nation_sigma, (len(sectors), n_t))
    path = _path(trend[:, None] + shock[None, :] + noise)  # the rest of the nation by sector
    emp = by_sector["employment"].reindex(columns=list(YEARS)).to_numpy(dtype="float64")
    est = by_sector["establishments"].reindex(columns=list(YEARS)).to_numpy(dtype="float64")
    # The rest of the nation is sized on the regions' typical (median) year of the sector, so a
    # sector that emerges in the regions late still meets a national industry of its size.
    rest_emp = np.nanmedian(np.where(emp > 0, emp, np.nan), axis=1) * (1 - share) / share
    rest_est = np.nanmedian(np.where(est > 0, est, np.nan), axis=1) * (1 - share) / share
    nat_emp = np.nan_to_num(emp) + rest_emp[:, None] * path
    nat_est = np.nan_to_num(est) + rest_est[:, None] * path
    own = NOISE.nation_world_share
    all_steps = NOISE.nation_growth + shock + rng.normal(0.0, NOISE.nation_sigma, n_t)
    rest_all = totals[0] * (1 - own) / own * _path(all_steps)
    sector_rows = pd.DataFrame(
        {
            "region": total_label,
            "cluster": np.repeat(np.asarray(sectors, dtype=object), n_t),
            "year": np.tile(np.asarray(YEARS, dtype="int64"), len(sectors)),
            "employment": np.rint(nat_emp.ravel()),
            "establishments": np.rint(nat_est.ravel()),
        }
    )
    grand = pd.DataFrame(
        {
            "region": total_label,
            "cluster": total_label,
            "year": np.asarray(YEARS, dtype="int64"),
            "employment": np.rint(totals + rest_all),
        }
    )
    return pd.concat([sector_rows, grand], ignore_index=True)


def _path(steps: np.ndarray) -> np.ndarray:
    """Levels relative to the first year from yearly log steps (the last axis is the year; the
    first year's step is ignored)."""
    steps = steps.copy()
    steps[..., 0] = 0.0
    return np.exp(np.cumsum(steps, axis=-1))
