"""Firm microdata (one row per firm x year) to the panel grain, plus what only microdata gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["region", "cluster", "year"]

# EU recommendation 2003/361: an SME has fewer than 250 persons employed.
SME_THRESHOLD = 250

_SUMS = {
    "wages": "payroll",
    "revenue": "output",
    "exports": "exports",
    "rd_expenditure": "rd_expenditure",
    "patents": "patents",
}


def _entries_exits(firms: pd.DataFrame) -> pd.DataFrame:
    """Entries at t: firms present at t but not t-1; exits at t: present at t-1 but not t.

    A firm that changes cluster exits one and enters the other. The first year of each
    region x cluster has no previous year, so its entries and exits are unknown (NaN), and exits
    are only counted for years the data still cover.
    """
    f = firms[["region", "cluster", "firm_id", "year"]].sort_values(
        ["region", "cluster", "firm_id", "year"], kind="stable"
    )
    year = f["year"].to_numpy()
    same = (
        (f["region"].to_numpy()[1:] == f["region"].to_numpy()[:-1])
        & (f["cluster"].to_numpy()[1:] == f["cluster"].to_numpy()[:-1])
        & (f["firm_id"].to_numpy()[1:] == f["firm_id"].to_numpy()[:-1])
    )
    consecutive = same & (year[1:] == year[:-1] + 1)
    entered = np.ones(len(f), dtype=bool)
    entered[1:] = ~consecutive
    exits_after = np.ones(len(f), dtype=bool)
    exits_after[:-1] = ~consecutive

    ent = f.assign(_e=entered).groupby(KEYS, observed=True, sort=False)["_e"].sum()
    ext = (
        f.assign(year=f["year"] + 1, _x=exits_after)
        .groupby(KEYS, observed=True, sort=False)["_x"]
        .sum()
    )
    out = pd.concat({"entries": ent, "exits": ext}, axis=1)
    first = f.groupby(["region", "cluster"], observed=True)["year"].agg(["min", "max"])
    out = out.reset_index().merge(first, on=["region", "cluster"], how="left")
    out.loc[out["year"] == out["min"], ["entries", "exits"]] = np.nan
    out = out[out["year"] <= out["max"]]
    return out.drop(columns=["min", "max"]).astype({"entries": "float64", "exits": "float64"})


def firms_to_panel(firms: pd.DataFrame, sme_threshold: int = SME_THRESHOLD) -> pd.DataFrame:
    """Aggregate validated firm rows to one row per region x cluster x year.

    Each firm row counts as one establishment. Besides the panel contract's columns it adds
    ``hhi`` (Herfindahl of firm employment shares), ``gini`` (of firm size) and
    ``median_firm_age`` (when ``founded_year`` is given).
    """
    f = firms.sort_values([*KEYS, "employees"], ascending=[True, True, True, False], kind="stable")
    emp = f["employees"].to_numpy(dtype="float64")
    groups = f.groupby(KEYS, observed=True, sort=False)
    rank_desc = groups.cumcount().to_numpy()
    n = groups["employees"].transform("size").to_numpy()
    # ascending rank for the Gini sum: i = n - rank_desc (1-based, smallest firm has i = 1)
    work = pd.DataFrame(
        {
            "region": f["region"].to_numpy(),
            "cluster": f["cluster"].to_numpy(),
            "year": f["year"].to_numpy(),
            "employment": emp,
            "establishments": 1,
            "sme_employment": np.where(emp < sme_threshold, emp, 0.0),
            "top4_employment": np.where(rank_desc < 4, emp, 0.0),
            "_sq": emp * emp,
            "_iw": (n - rank_desc) * emp,
        }
    )
    present = [c for c in _SUMS if c in f.columns]
    for src in present:
        work[_SUMS[src]] = f[src].to_numpy(dtype="float64")
    agg = {c: "sum" for c in work.columns if c not in KEYS}
    panel = work.groupby(KEYS, observed=True, sort=True).agg(agg)
    for src in present:  # all-missing groups stay missing rather than becoming 0
        col = _SUMS[src]
        panel[col] = work.groupby(KEYS, observed=True, sort=True)[col].sum(min_count=1)
    total = panel["employment"].to_numpy()
    count = panel["establishments"].to_numpy().astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        panel["hhi"] = np.where(total > 0, panel["_sq"] / total**2, np.nan)
        gini = 2.0 * panel["_iw"] / (count * total) - (count + 1.0) / count
        panel["gini"] = np.where(total > 0, gini, np.nan)
    panel = panel.drop(columns=["_sq", "_iw"]).reset_index()
    if "founded_year" in f.columns:
        age = (f["year"] - f["founded_year"]).astype("float64")
        med = age.groupby([f["region"], f["cluster"], f["year"]], observed=True).median()
        panel = panel.merge(med.rename("median_firm_age").reset_index(), on=KEYS, how="left")
    panel = panel.merge(_entries_exits(f), on=KEYS, how="left")
    panel["establishments"] = panel["establishments"].astype("int64")
    return panel
