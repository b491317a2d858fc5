"""Specialisation: location quotient, share of the national cluster, and how the LQ moves."""

from __future__ import annotations

import pandas as pd

from features.indicators.context import PanelContext, as_context, frame_of, ratio

COLUMNS: tuple[str, ...] = ("lq", "national_share", "lq_change_1y", "lq_change_3y")


def specialisation(
    data: pd.DataFrame | PanelContext, *, national: pd.DataFrame | None = None
) -> pd.DataFrame:
    """lq, national_share, lq_change_1y, lq_change_3y for each panel row.

    A panel that already carries ``lq`` (the US Cluster Mapping export's published LQ, whose
    denominators are traded or local totals the export does not contain) keeps it.
    """
    ctx = as_context(data, national)
    lq = ctx.lq
    return frame_of(
        ctx,
        [
            ("lq", lq),
            ("national_share", ratio(ctx.col("employment"), ctx.national_cluster)),
            ("lq_change_1y", lq - ctx.lag(lq, 1)),
            ("lq_change_3y", lq - ctx.lag(lq, 3)),
        ],
    )
