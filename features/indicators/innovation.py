"""Innovation: R&D spending relative to output, patents relative to employment."""

from __future__ import annotations

import pandas as pd

from features.indicators.context import PanelContext, as_context, frame_of, ratio

COLUMNS: tuple[str, ...] = (
    "rd_intensity",
    "patents_per_10k",
    "rd_intensity_change_3y",
    "patents_per_10k_change_3y",
)


def innovation(
    data: pd.DataFrame | PanelContext, *, national: pd.DataFrame | None = None
) -> pd.DataFrame:
    """rd_intensity = rd_expenditure / output; patents_per_10k = 10,000 * patents / employment;
    and their changes over 3 years (innovation rising is a mark of renewal)."""
    ctx = as_context(data, national)
    rd = ratio(ctx.col("rd_expenditure"), ctx.col("output"))
    patents = 1e4 * ratio(ctx.col("patents"), ctx.col("employment"))
    return frame_of(
        ctx,
        [
            ("rd_intensity", rd),
            ("patents_per_10k", patents),
            ("rd_intensity_change_3y", rd - ctx.lag(rd, 3)),
            ("patents_per_10k_change_3y", patents - ctx.lag(patents, 3)),
        ],
    )
