"""Lagged copies of yearly indicators: the value of the same region x cluster k calendar years ago.

A stage is a spell of several years, and one year's rates are noisy evidence of it; the few years
before carry the rest. The multi-year windows of the catalogue (``*_3y``, ``*_5y``) average that
history away, lags keep it year by year so that a model can weigh each year's evidence itself.

A lagged column is named ``<feature>_lag<k>``; whatever builds the features for training (the DVC
stage ``features``, from ``features.lags`` / ``features.lagged`` in params.yaml) and whatever
scores a trained model (which asks for the lag columns its feature list names) use the same
``add_lags``, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from features.indicators.context import KEYS, PanelContext

# One-year indicators: rates and levels of a single year, not the windows that already look back.
DEFAULT_LAGGED: tuple[str, ...] = (
    "emp_cagr_1y",
    "est_cagr_1y",
    "lq_change_1y",
    "entry_rate",
    "exit_rate",
    "net_entry_rate",
    "avg_firm_size",
    "sme_share",
    "cr4",
    "median_firm_age",
    "wage",
    "relative_wage",
    "productivity",
    "productivity_cagr_1y",
    "wage_cagr_1y",
    "export_intensity",
    "rd_intensity",
    "patents_per_10k",
    "institutions_per_100_est",
)
DEFAULT_LAGS = 3

_LAG = re.compile(r"^(?P<base>.+)_lag(?P<k>[1-9][0-9]*)$")


def lag_name(feature: str, k: int) -> str:
    return f"{feature}_lag{k}"


def lag_names(features: Sequence[str], lags: int) -> list[str]:
    """The lag columns of ``features`` for 1..``lags`` years, by lag then feature."""
    return [lag_name(f, k) for k in range(1, lags + 1) for f in features]


def parse_lag(name: str) -> tuple[str, int] | None:
    """(feature, k) for a lag column name, None for any other name."""
    match = _LAG.match(name)
    return (match["base"], int(match["k"])) if match else None


def base_feature(name: str) -> str:
    """The indicator a column measures: ``entry_rate`` for ``entry_rate_lag2`` and for itself."""
    parsed = parse_lag(name)
    return parsed[0] if parsed else name


def lag_columns(columns: Iterable[str]) -> list[str]:
    """The lag columns among ``columns``, in their order."""
    return [c for c in columns if parse_lag(c) is not None]


def add_lags(features: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """``features`` with the lag columns ``names`` appended (or replaced), computed from its own
    columns: a calendar-year lag within region x cluster, missing where that year has no row.

    ``features`` needs the key columns and every lagged feature; the rows keep their order.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return features
    ctx = PanelContext(features[KEYS], total_label="")
    new: dict[str, np.ndarray] = {}
    for name in wanted:
        parsed = parse_lag(name)
        if parsed is None:
            raise ValueError(f"{name!r} is not a lag column name (<feature>_lag<k>)")
        base, k = parsed
        if base not in features.columns:
            raise ValueError(f"lag column {name!r} needs the feature {base!r}")
        values = features[base].to_numpy(dtype="float64", na_value=np.nan)
        new[name] = ctx.lag(values, k)
    kept = features.drop(columns=[n for n in wanted if n in features.columns])
    return pd.concat([kept, pd.DataFrame(new, index=features.index)], axis=1)
