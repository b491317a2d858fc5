"""The national context that makes the indicators of a group of regions equal to those of the
whole input.

Indicators are local to a region (a cluster's own history, its region's totals) except where
they compare with the nation or with other regions. ``NationalContext`` holds those comparisons
for the whole input, summed group by group (``partial_totals``): national employment per
cluster-year (passed to ``build_features(national=...)``), the national shares of the LQ and the
national growth rates (``features.indicators.context.NationalFacts``, passed as ``facts``), the
national wage per cluster-year (``relative_wage``), whether productivity divides value added or
output (chosen per input), and the co-location proximity of clusters per year
(``relatedness_density``). ``group_features`` builds one group's features with them, so every
group's rows equal those of ``build_features`` on the whole input (tested, and by the pyfunc,
which scores its whole input as one group).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.build import build_features
from features.indicators.context import (
    GROWTH_YEARS,
    NationalFacts,
    PanelContext,
    matched_sums,
    national_facts,
    ratio,
    reference_frame,
)
from features.indicators.linkages import table_proximity
from features.row_checks import ROW
from features.schemas import TOTAL_LABEL


@dataclass(frozen=True)
class Partial:
    """What one group adds to the national context (sums over its rows)."""

    employment: pd.Series  # (cluster, year): sum of employment
    wage_payroll: pd.Series  # (cluster, year): payroll where payroll and its employment are known
    wage_employment: pd.Series  # (cluster, year): that employment
    region_totals: pd.Series  # (region, year): E_r
    value_added: bool  # any value added at all
    # k -> (cluster, year t): employment in t and in t - k, over rows that know both
    matched: dict[int, tuple[pd.Series, pd.Series]]


def partial_totals(panel: pd.DataFrame) -> Partial:
    """The group's sums, as features.indicators.context computes them for a whole panel."""
    emp = panel["employment"].astype("float64")
    cluster_year = [panel["cluster"].to_numpy(), panel["year"].to_numpy()]
    region_year = [panel["region"].to_numpy(), panel["year"].to_numpy()]
    reported = panel.get("employment_reported", emp * np.nan).astype("float64")
    base = reported.where(reported.notna(), emp)
    pay = panel["payroll"].astype("float64") if "payroll" in panel.columns else emp * np.nan
    both = (np.isfinite(base) & np.isfinite(pay)).to_numpy()
    given = panel.get("region_employment_total", emp * np.nan).astype("float64")
    summed = emp.groupby(region_year).sum(min_count=1)
    stated = given.groupby(region_year).max()
    value_added = "value_added" in panel.columns and bool(
        np.isfinite(panel["value_added"].to_numpy(dtype="float64")).any()
    )
    # A group holds whole regions, so a cluster's year t - k lies in the same group.
    ctx = PanelContext(panel[["region", "cluster", "year", "employment"]])
    values = ctx.col("employment")
    matched = {
        k: matched_sums(ctx.cluster_names, ctx.year, values, ctx.lag(values, k))
        for k in GROWTH_YEARS
    }
    return Partial(
        employment=emp.groupby(cluster_year).sum(min_count=1),
        wage_payroll=pay[both].groupby([k[both] for k in cluster_year]).sum(min_count=1),
        wage_employment=base[both].groupby([k[both] for k in cluster_year]).sum(min_count=1),
        region_totals=stated.where(stated.notna(), summed),
        value_added=value_added,
        matched=matched,
    )


def _combined(parts: list[pd.Series]) -> pd.Series:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.Series(dtype="float64", index=pd.MultiIndex.from_arrays([[], []]))
    return pd.concat(parts).groupby(level=[0, 1]).sum(min_count=1)


@dataclass(frozen=True)
class NationalContext:
    """The cross-region facts of a whole input, for the indicators of any group of its regions."""

    national: pd.DataFrame  # cluster, year, employment (e_Nc)
    facts: NationalFacts  # the LQ's national shares and national growth, of the whole input
    wage: pd.Series  # national wage by (cluster, year)
    productivity_source: str  # value_added or output, chosen once for the whole input
    clusters: pd.Index  # every cluster of the input, sorted
    total_label: str
    proximity: Mapping[int, np.ndarray] | None = None  # per year: co-location phi
    table: tuple[np.ndarray, np.ndarray] | None = None  # relatedness-table phi, clusters covered

    def with_cooccurrence(self, counts: Iterable[Mapping[int, np.ndarray]]) -> NationalContext:
        """Add the per-year co-location proximity from the groups' co-occurrence counts."""
        total: dict[int, np.ndarray] = {}
        for part in counts:
            for year, co in part.items():
                total[year] = total[year] + co if year in total else co.copy()
        proximity = {}
        for year, co in total.items():
            ubiquity = np.diag(co)
            phi = np.nan_to_num(ratio(co, np.maximum.outer(ubiquity, ubiquity)), nan=0.0)
            np.fill_diagonal(phi, 0.0)
            proximity[year] = phi
        return replace(self, proximity=proximity)

    def relatedness_density(self, features: pd.DataFrame) -> np.ndarray:
        """RD_rc (features.indicators.linkages) with every cluster of the input and the
        proximity of the whole input, for the rows of any group of regions."""
        n_clusters = len(self.clusters)
        out = np.full(len(features), np.nan)
        if n_clusters < 2 or not len(features):
            return out
        lq = features["lq"].to_numpy(dtype="float64")
        known = np.isfinite(lq)
        special = (lq >= 1.0) & known
        region_code, regions = pd.factorize(features["region"])
        cluster_code = self.clusters.get_indexer(features["cluster"])
        years = features["year"].to_numpy()
        for year in np.unique(years):
            rows = np.flatnonzero(years == year)
            r, c = region_code[rows], cluster_code[rows]
            x = np.zeros((len(regions), n_clusters))
            x[r, c] = special[rows]
            k = np.ones((len(regions), n_clusters))
            k[r, c] = known[rows]
            if self.table is not None:
                phi = self.table[0]
            elif self.proximity is not None and int(year) in self.proximity:
                phi = self.proximity[int(year)]
            else:
                raise ValueError(f"no co-location proximity for {year}: add the co-occurrence")
            density = 100.0 * ratio(x @ phi.T, k @ phi.T)
            out[rows] = density[r, c]
        if self.table is not None:
            out[~self.table[1][cluster_code]] = np.nan
        return out


def national_context(
    partials: Iterable[Partial],
    given: pd.DataFrame | None = None,
    *,
    total_label: str = TOTAL_LABEL,
    relatedness: pd.DataFrame | None = None,
) -> NationalContext:
    """The national context of the input whose groups gave ``partials``.

    ``given``: the input's own national reference (``given_national``); as in
    features.indicators.context its cluster-years win over the sums of the regions (e_Nc), its
    payroll / employment over the summed national wage, and the national shares and growth rates
    follow ``national_facts``. ``relatedness``: a cluster x cluster
    table (features.loaders.load_relatedness); without it the proximity is co-location in the
    input itself, which needs ``with_cooccurrence`` before features are built.
    """
    partials = list(partials)
    summed = _combined([p.employment for p in partials])
    wage_pay = _combined([p.wage_payroll for p in partials])
    wage_emp = _combined([p.wage_employment for p in partials])
    region_totals = _combined([p.region_totals for p in partials])
    clusters = pd.Index(sorted(set(summed.index.get_level_values(0))), dtype="str")
    matched = {
        k: (
            _combined([p.matched[k][0] for p in partials]),
            _combined([p.matched[k][1] for p in partials]),
        )
        for k in GROWTH_YEARS
    }
    facts = national_facts(summed, region_totals, matched, reference_frame(given), total_label)
    employment = summed
    given_wage = None
    if given is not None:
        own = given[given["cluster"].isin(clusters)]
        keys = [own["cluster"].to_numpy(), own["year"].to_numpy()]
        stated_emp = own["employment"].groupby(keys).sum(min_count=1)
        if len(stated_emp):
            employment = stated_emp.combine_first(summed)
        if "payroll" in own.columns:
            stated_pay = own["payroll"].groupby(keys).sum(min_count=1)
            given_wage = pd.Series(
                ratio(stated_pay, stated_emp.reindex(stated_pay.index)), index=stated_pay.index
            )
    keys = wage_pay.index.union(wage_emp.index)
    if given_wage is not None:
        keys = keys.union(given_wage.index)
    wage = pd.Series(
        ratio(wage_pay.reindex(keys).to_numpy(), wage_emp.reindex(keys).to_numpy()), index=keys
    )
    if given_wage is not None:
        stated_wage = given_wage.reindex(keys).to_numpy()
        wage = pd.Series(np.where(np.isfinite(stated_wage), stated_wage, wage), index=keys)
    # e_Nc for national_share; E_N enters only through the facts (shares and growth rates).
    national = pd.DataFrame(
        {
            "cluster": employment.index.get_level_values(0).astype("str"),
            "year": employment.index.get_level_values(1).astype("int64"),
            "employment": employment.to_numpy(dtype="float64"),
        }
    )
    return NationalContext(
        national=national,
        facts=facts,
        wage=wage,
        productivity_source=("value_added" if any(p.value_added for p in partials) else "output"),
        clusters=clusters,
        total_label=total_label,
        table=None if relatedness is None else table_proximity(relatedness, clusters),
    )


def _source(panel: pd.DataFrame) -> pd.DataFrame:
    return panel.drop(columns=[ROW], errors="ignore")


def cooccurrence(panel: pd.DataFrame, context: NationalContext) -> dict[int, np.ndarray]:
    """Per year, x'x of the group's regions x clusters matrix of specialisations (LQ ≥ 1):
    summed over all groups it gives the co-location proximity of the whole input."""
    if not len(panel):
        return {}
    ctx = PanelContext(
        _source(panel),
        national=context.national,
        total_label=context.total_label,
        facts=context.facts,
    )
    lq = ctx.lq
    special = (lq >= 1.0) & np.isfinite(lq)
    region_code, regions = pd.factorize(panel["region"])
    cluster_code = context.clusters.get_indexer(panel["cluster"])
    years = panel["year"].to_numpy()
    out: dict[int, np.ndarray] = {}
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        x = np.zeros((len(regions), len(context.clusters)))
        x[region_code[rows], cluster_code[rows]] = special[rows]
        out[int(year)] = x.T @ x
    return out


def group_features(panel: pd.DataFrame, context: NationalContext) -> pd.DataFrame:
    """build_features for the panel rows of some regions, compared with the whole input.

    The national reference goes to build_features; the three indicators it would otherwise
    compare within the group only are recomputed with the whole input (same formulas as
    features.indicators): relative_wage (wage / the national wage of the cluster-year),
    productivity (value added or output, as chosen for the whole input, per employee) and
    relatedness_density.
    """
    source = _source(panel)
    features = build_features(
        source, national=context.national, facts=context.facts, total_label=context.total_label
    )
    if "relative_wage" in features.columns:
        wanted = pd.MultiIndex.from_arrays(
            [features["cluster"].to_numpy(), features["year"].to_numpy()]
        )
        national_wage = context.wage.reindex(wanted).to_numpy(dtype="float64", na_value=np.nan)
        features["relative_wage"] = ratio(features["wage"].to_numpy(), national_wage)
    if "productivity" in features.columns:
        column = context.productivity_source
        numerator = source[column] if column in source.columns else source["employment"] * np.nan
        features["productivity"] = ratio(_finite(numerator), _finite(source["employment"]))
    if "relatedness_density" in features.columns:
        features["relatedness_density"] = context.relatedness_density(features)
    if "n_missing_features" in features.columns:
        from features.build import FEATURE_NAMES

        values = features[list(FEATURE_NAMES)].to_numpy(dtype="float64")
        features["n_missing_features"] = np.isnan(values).sum(axis=1).astype("int64")
    return features


def _finite(series: pd.Series) -> np.ndarray:
    values = pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)
