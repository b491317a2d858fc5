"""Performance and openness: wages, productivity, exports."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.indicators.context import PanelContext, as_context, frame_of, ratio

COLUMNS: tuple[str, ...] = ("wage", "relative_wage", "productivity", "export_intensity")


def productivity_source(ctx: PanelContext) -> str:
    """``value_added`` when the panel has any value of it, else ``output``.

    Chosen per panel, not per row: value added and output differ by the cost of inputs, so
    mixing them row by row would make rows incomparable.
    """
    return "value_added" if ctx.has_values("value_added") else "output"


def performance(
    data: pd.DataFrame | PanelContext, *, national: pd.DataFrame | None = None
) -> pd.DataFrame:
    """wage, relative_wage, productivity, export_intensity for each panel row.

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
    return frame_of(
        ctx,
        [
            ("wage", wage),
            ("relative_wage", ratio(wage, ctx.national_wage)),
            ("productivity", ratio(ctx.col(productivity_source(ctx)), emp)),
            ("export_intensity", ratio(ctx.col("exports"), ctx.col("output"))),
        ],
    )
