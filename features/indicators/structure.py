"""Firm structure and demography: size, SME share, concentration, entry and exit."""

from __future__ import annotations

import pandas as pd

from features.indicators.context import PanelContext, as_context, frame_of, ratio

COLUMNS: tuple[str, ...] = (
    "avg_firm_size",
    "sme_share",
    "hhi",
    "cr4",
    "gini",
    "entry_rate",
    "exit_rate",
    "net_entry_rate",
    "median_firm_age",
    "cr4_change_3y",
    "hhi_change_3y",
)


def structure(
    data: pd.DataFrame | PanelContext, *, national: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per-row firm structure. ``hhi``, ``gini`` and ``median_firm_age`` exist only where the
    panel was aggregated from firm microdata (features.aggregate.firms_to_panel) and are passed
    through; rates of entry and exit divide by the establishments of calendar year t-1. The
    3-year changes of concentration show the large firms pulling ahead (a mature cluster) or
    falling back."""
    ctx = as_context(data, national)
    emp = ctx.col("employment")
    est_before = ctx.lag(ctx.col("establishments"), 1)
    cr4 = ratio(ctx.col("top4_employment"), emp)
    hhi = ctx.col("hhi")
    entries = ctx.col("entries")
    exits = ctx.col("exits")
    return frame_of(
        ctx,
        [
            ("avg_firm_size", ratio(emp, ctx.col("establishments"))),
            ("sme_share", ratio(ctx.col("sme_employment"), emp)),
            ("hhi", hhi),
            ("cr4", cr4),
            ("gini", ctx.col("gini")),
            ("entry_rate", ratio(entries, est_before)),
            ("exit_rate", ratio(exits, est_before)),
            ("net_entry_rate", ratio(entries - exits, est_before)),
            ("median_firm_age", ctx.col("median_firm_age")),
            ("cr4_change_3y", cr4 - ctx.lag(cr4, 3)),
            ("hhi_change_3y", hhi - ctx.lag(hhi, 3)),
        ],
    )
