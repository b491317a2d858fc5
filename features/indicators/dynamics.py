"""Dynamics: compound growth of employment and establishments, and the Dunn shift-share."""

from __future__ import annotations

import pandas as pd

from features.indicators.context import PanelContext, as_context, cagr, frame_of, ratio

HORIZONS: tuple[int, ...] = (1, 3, 5)
COLUMNS: tuple[str, ...] = (
    *(f"emp_cagr_{k}y" for k in HORIZONS),
    *(f"est_cagr_{k}y" for k in HORIZONS),
    "ss_national",
    "ss_industry_mix",
    "ss_regional_shift",
    "regional_shift_rate",
    "growth_vs_national_3y",
)


def dynamics(
    data: pd.DataFrame | PanelContext, *, national: pd.DataFrame | None = None
) -> pd.DataFrame:
    """CAGRs over 1, 3 and 5 calendar years, the one-year shift-share and relative growth.

    Shift-share (Dunn) from t-1 to t, in employees: national = e0 * g_N, industry mix =
    e0 * (g_Nc - g_N), regional shift = (e1 - e0) - e0 * g_Nc, which equals e0 * (g_rc - g_Nc)
    and stays defined when e0 = 0, so the three always add up to e1 - e0. National growth g_Nc
    and g_N compare the same regions in both years (see ``PanelContext.national_cluster_growth``).
    """
    ctx = as_context(data, national)
    emp = ctx.col("employment")
    est = ctx.col("establishments")
    columns = [(f"emp_cagr_{k}y", cagr(emp, ctx.lag(emp, k), k)) for k in HORIZONS]
    columns += [(f"est_cagr_{k}y", cagr(est, ctx.lag(est, k), k)) for k in HORIZONS]

    e0 = ctx.lag(emp, 1)
    g_rc = ratio(emp, e0) - 1.0
    g_nc = ctx.national_cluster_growth(1) - 1.0
    g_n = ctx.national_total_growth(1) - 1.0
    national_3y = cagr(ctx.national_cluster_growth(3), 1.0, 3)
    columns += [
        ("ss_national", e0 * g_n),
        ("ss_industry_mix", e0 * (g_nc - g_n)),
        ("ss_regional_shift", (emp - e0) - e0 * g_nc),
        ("regional_shift_rate", g_rc - g_nc),
        ("growth_vs_national_3y", cagr(emp, ctx.lag(emp, 3), 3) - national_3y),
    ]
    return frame_of(ctx, columns)
