"""Every catalogue feature for a panel-grain frame, in one frame ready for labelling and models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import CATALOGUE, FAMILY_FUNCTIONS, FEATURE_NAMES
from features.indicators.context import KEYS, NationalFacts, PanelContext
from features.schemas import TOTAL_LABEL

__all__ = ["FEATURE_NAMES", "RAW_COLUMNS", "build_features"]

# Kept beside the features for reports.
RAW_COLUMNS: tuple[str, ...] = ("employment", "establishments")
# Columns of a US Cluster Mapping import (features.cmp) carried through untouched.
_CMP_COLUMNS: tuple[str, ...] = (
    "region_code",
    "region_type",
    "cluster_code",
    "traded",
    "employment_reported",
    "suppressed",
)
_CMP_PREFIX = "published_"


def build_features(
    panel: pd.DataFrame,
    *,
    national: pd.DataFrame | None = None,
    relatedness: pd.DataFrame | None = None,
    total_label: str = TOTAL_LABEL,
    facts: NationalFacts | None = None,
) -> pd.DataFrame:
    """One row per panel row (same order): region, cluster, year, every catalogue feature in
    catalogue order, employment and establishments, any US Cluster Mapping columns present
    (region_code, region_type, cluster_code, traded, employment_reported, suppressed,
    published_*), and ``n_missing_features``.

    ``national`` (cluster, year, employment[, payroll]) replaces the sum over the panel's regions
    as the national reference; without it ``panel.attrs["national_totals"]`` is used when
    present. ``relatedness`` is a cluster x cluster weight matrix
    (``features.loaders.load_relatedness``); without it relatedness comes from co-location in
    the panel itself. A panel that carries ``lq`` or ``wage`` (published values) keeps them.
    ``facts``: the national shares and growth rates of a larger input this panel is part of
    (features.national_context builds an input's features group by group with them).
    """
    ctx = PanelContext(panel, national=national, total_label=total_label, facts=facts)
    parts = []
    for family, fn in FAMILY_FUNCTIONS.items():
        extra = {"relatedness": relatedness} if family == "linkages" else {}
        parts.append(fn(ctx, **extra))
    computed = pd.concat(parts, axis=1)

    src = ctx.panel
    out = src[KEYS].copy()
    out.attrs = {}  # a national reference frame in attrs is input, not output
    for name in FEATURE_NAMES:
        out[name] = computed[name].to_numpy(dtype="float64")
    # Same RangeIndex as ``src``: assigning Series keeps their dtypes (nullable booleans).
    for name in RAW_COLUMNS:
        out[name] = src[name] if name in src.columns else ctx.col(name)
    carried = [c for c in src.columns if c in _CMP_COLUMNS or c.startswith(_CMP_PREFIX)]
    for name in carried:
        out[name] = src[name]
    values = out[list(FEATURE_NAMES)].to_numpy(dtype="float64")
    out["n_missing_features"] = np.isnan(values).sum(axis=1).astype("int64")
    return out


def feature_families() -> dict[str, list[str]]:
    """Feature names by family, in catalogue order."""
    families: dict[str, list[str]] = {}
    for f in CATALOGUE:
        families.setdefault(f.family, []).append(f.name)
    return families
