"""Innovation: R&D spending relative to output, patents relative to employment."""

from __future__ import annotations

import pandas as pd

from features.indicators.context import PanelContext, as_context, frame_of, ratio

COLUMNS: tuple[str, ...] = ("rd_intensity", "patents_per_10k")


def innovation(
    data: pd.DataFrame | PanelContext, *, national: pd.DataFrame | None = None
) -> pd.DataFrame:
    """rd_intensity = rd_expenditure / output; patents_per_10k = 10,000 * patents / employment."""
    ctx = as_context(data, national)
    return frame_of(
        ctx,
        [
            ("rd_intensity", ratio(ctx.col("rd_expenditure"), ctx.col("output"))),
            ("patents_per_10k", 1e4 * ratio(ctx.col("patents"), ctx.col("employment"))),
        ],
    )
