"""The LQ x growth portfolio quadrant, read as a life-cycle stage.

Economic-development agencies plot each cluster at x = location quotient (split at 1) and
y = growth (split at 0). The preferred growth measure is relative to the same industry nationally,
so that a cluster riding a national boom is not called a star: ``growth_vs_national_3y`` (the
multi-year view agencies use, and less noisy than one year), else the one-year
``regional_shift_rate``; a row with neither falls back to its own ``emp_cagr_3y``. The first of
``growth_columns`` that a row has is used.

====================  =====================  ======================================================
quadrant              condition              stage
====================  =====================  ======================================================
star                  LQ >= 1, growing       ``growth``
emerging              LQ < 1, growing        ``emerging``
mature / declining    LQ >= 1, not growing   ``mature``; ``decline`` if growth < growth_split -
                                             decline_threshold
transitional / weak   LQ < 1, not growing    ``decline``
====================  =====================  ======================================================

"Growing" means growth > ``growth_split``. The quadrant has four cells for five stages: the
mature/declining cell is split by how fast it shrinks, and ``renewal`` is never assigned, because
renewal (employment flat or falling while productivity, wages or innovation rise) is invisible on
the LQ and growth axes: a renewing cluster lands in the mature, declining or weak cell. Rows
without an LQ or any growth measure are left unlabelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import InputError

SOURCE = "quadrant"
GROWTH_COLUMNS: tuple[str, ...] = ("growth_vs_national_3y", "regional_shift_rate", "emp_cagr_3y")
KEYS = ["region", "cluster", "year"]


@dataclass(frozen=True)
class QuadrantSettings:
    """The labeller's splits; see the module docstring. The one home of their defaults: the
    labeller and params.yaml's labels.quadrant take them from :data:`DEFAULT_QUADRANT`."""

    lq_split: float = 1.0
    growth_split: float = 0.0
    decline_threshold: float = 0.02
    growth_columns: tuple[str, ...] = GROWTH_COLUMNS


DEFAULT_QUADRANT = QuadrantSettings()


def quadrant_labels(
    features: pd.DataFrame,
    *,
    lq_split: float = DEFAULT_QUADRANT.lq_split,
    growth_split: float = DEFAULT_QUADRANT.growth_split,
    decline_threshold: float = DEFAULT_QUADRANT.decline_threshold,
    growth_columns: Sequence[str] = DEFAULT_QUADRANT.growth_columns,
) -> pd.DataFrame:
    """Label each row by its LQ x growth quadrant: region, cluster, year, stage, source."""
    if decline_threshold < 0:
        raise ValueError("decline_threshold must be >= 0")
    present = [c for c in growth_columns if c in features.columns]
    missing = [c for c in [*KEYS, "lq"] if c not in features.columns]
    if missing or not present:
        raise InputError(
            None,
            "the quadrant labeller needs region, cluster, year, lq and one growth column of "
            + ", ".join(growth_columns),
            column=missing[0] if missing else growth_columns[0],
        )
    lq = pd.to_numeric(features["lq"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    growth = np.full(len(features), np.nan)
    for col in present:
        values = pd.to_numeric(features[col], errors="coerce")
        values = values.to_numpy(dtype="float64", na_value=np.nan)
        growth = np.where(np.isnan(growth), values, growth)

    specialised = lq >= lq_split
    growing = growth > growth_split
    shrinking = growth < growth_split - decline_threshold
    stage = np.select(
        [specialised & growing, ~specialised & growing, specialised & ~shrinking],
        ["growth", "emerging", "mature"],
        default="decline",
    )
    known = ~(np.isnan(lq) | np.isnan(growth))
    out = features.loc[known, KEYS].reset_index(drop=True)
    out["stage"] = stage[known]
    out["source"] = SOURCE
    return out
