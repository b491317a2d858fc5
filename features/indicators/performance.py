"""Performance and openness: wages, productivity, exports."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.indicators.context import PanelContext, as_context, cagr, frame_of, ratio

COLUMNS: tuple[str, ...] = (
    "wage",
    "relative_wage",
    "productivity",
    "export_intensity",
    "productivity_cagr_3y",
    "wage_cagr_3y",
    "productivity_cagr_1y",
    "wage_cagr_1y",
    "va_share",
    "va_share_change_3y",
)


def productivity_source(ctx: PanelContext) -> str:
    """``value_added`` when the panel has any value of it, else ``output``.

    Chosen per panel, not per row: value added and output differ by the cost of inputs, so
    mixing them row by row would make rows incomparable.
    """
    return "value_added" if ctx.has_values("value_added") else "output"


def performance(
    data: pd.DataFrame | PanelContext, *, national: pd.DataFrame | None = None
) -> pd.DataFrame:
    """wage, relative_wage, productivity, export_intensity, the 3-year and 1-year growth of
    productivity and wage, the value-added share of output and its 3-year change for each panel
    row (renewal shows as productivity, wages and value added rising while employment does not).

    A panel that already carries ``wage`` (the US Cluster Mapping export's published private
    wage) keeps it, except where employment is 0 (no wage to speak of); otherwise
    wage = payroll / employment.
    """
    ctx = as_context(data, national)
    emp = ctx.col("employment")
    if ctx.has("wage"):
        wage = np.where(emp == 0, np.nan, ctx.col("wage"))
    else:
        wage = ratio(ctx.col("payroll"), emp)
    productivity = ratio(ctx.col(productivity_source(ctx)), emp)
    va_share = ratio(ctx.col("value_added"), ctx.col("output"))
    return frame_of(
        ctx,
        [
            ("wage", wage),
            ("relative_wage", ratio(wage, ctx.national_wage)),
            ("productivity", productivity),
            ("export_intensity", ratio(ctx.col("exports"), ctx.col("output"))),
            ("productivity_cagr_3y", cagr(productivity, ctx.lag(productivity, 3), 3)),
            ("wage_cagr_3y", cagr(wage, ctx.lag(wage, 3), 3)),
            ("productivity_cagr_1y", cagr(productivity, ctx.lag(productivity, 1), 1)),
            ("wage_cagr_1y", cagr(wage, ctx.lag(wage, 1), 1)),
            ("va_share", va_share),
            ("va_share_change_3y", va_share - ctx.lag(va_share, 3)),
        ],
    )
