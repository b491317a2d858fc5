"""What every indicator family needs from a panel: columns as floats, calendar-year lags, and the
regional and national totals, computed once per panel.

Totals (the catalogue states the same rules):

- Region total E_r: ``region_employment_total`` where the region-year has it, else the sum of the
  region's clusters in the frame (which undercounts when the frame holds only some industries and
  double counts when its industries overlap).
- National cluster e_Nc: the sum over the regions of the frame, unless a national reference frame
  (cluster, year, employment[, payroll]) is given; cluster-years it lacks fall back to the sum.
- National total E_N: the sum of the region totals E_r of the frame's regions, unless the national
  frame has a row whose cluster is the total label (e.g. ``Insgesamt``) for that year.
- Ratios never mix the two sources: the national share e_Nc / E_N of the LQ is the reference's
  where it has both for the cluster-year, else the frame's own sums; national growth from t-k to t
  is the reference's where it has both years, else summed over the frame's regions known in both
  years, so a suppressed cell or a region missing in one year does not pass for growth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from features.errors import InputError
from features.schemas import TOTAL_LABEL

KEYS = ["region", "cluster", "year"]
# Years are shifted so that t - k never goes below zero, keeping lag keys inside their own group.
_YEAR_PAD = 100
# The horizons of national growth the indicators read (shift-share: 1, relative growth: 3).
GROWTH_YEARS: tuple[int, ...] = (1, 3)


def ratio(num: object, den: object) -> np.ndarray:
    """num / den as float64, with NaN (never inf) where the denominator is zero or missing."""
    a = np.asarray(num, dtype="float64")
    b = np.asarray(den, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out = np.asarray(out, dtype="float64")
    out[~np.isfinite(out)] = np.nan
    return out


def cagr(now: np.ndarray, before: np.ndarray, k: int) -> np.ndarray:
    """(x_t / x_{t-k})^(1/k) - 1; NaN where x_{t-k} is zero or either value is missing."""
    growth = ratio(now, before)
    with np.errstate(invalid="ignore"):
        out = np.power(growth, 1.0 / k) - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def _numeric(frame: pd.DataFrame, name: str, source: str = "panel") -> np.ndarray:
    try:
        values = pd.to_numeric(frame[name], errors="raise")
    except (TypeError, ValueError):
        raise InputError(None, f"{source}: expected numbers", column=name) from None
    out = values.to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(out), out, np.nan)


@dataclass(frozen=True)
class NationalFacts:
    """The national ratios of a whole input, under the rules of the module docstring.

    ``share``: e_Nc / E_N by (cluster, year), for the LQ; ``cluster_growth[k]``: e_Nc,t /
    e_Nc,t-k by (cluster, year t); ``total_growth[k]``: E_N,t / E_N,t-k by year t. A context
    computes them from its own panel; the streamed scorer, which builds the features of an input
    group by group, sums them over all groups (``national_facts`` on the combined sums) and
    passes them in.
    """

    share: pd.Series
    cluster_growth: Mapping[int, pd.Series]
    total_growth: Mapping[int, pd.Series]


def matched_sums(
    cluster: np.ndarray, year: np.ndarray, now: np.ndarray, before: np.ndarray
) -> tuple[pd.Series, pd.Series]:
    """Sums of ``now`` and ``before`` by (cluster, year) over the rows where both are known.

    Adding up over any split of the regions gives the sums of the whole input.
    """
    both = np.isfinite(now) & np.isfinite(before)
    keys = [np.asarray(cluster)[both], np.asarray(year)[both]]
    return pd.Series(now[both]).groupby(keys).sum(), pd.Series(before[both]).groupby(keys).sum()


def reference_frame(nat: pd.DataFrame | None) -> pd.DataFrame | None:
    """A national reference (cluster, year, employment[, payroll, national_employment_total])
    with its numbers checked; an InputError names a missing or non-numeric column."""
    if nat is None:
        return None
    missing = [c for c in ("cluster", "year", "employment") if c not in nat.columns]
    if missing:
        raise InputError(
            None,
            "the national reference needs the columns cluster, year, employment",
            column=missing[0],
        )
    out = pd.DataFrame(
        {
            "cluster": nat["cluster"].to_numpy(),
            "year": _numeric(nat, "year", "national reference").astype("int64"),
            "employment": _numeric(nat, "employment", "national reference"),
        }
    )
    for name in ("payroll", "national_employment_total"):
        if name in nat.columns:
            out[name] = _numeric(nat, name, "national reference")
    return out


def stated_totals(nat: pd.DataFrame | None, total_label: str) -> pd.Series:
    """E_N by year as a checked national reference states it (empty without one): its
    ``national_employment_total`` column, else its total-label row; where both give a year, the
    column wins (it is what the loaders derive from the grand total row)."""
    if nat is None:
        return pd.Series(dtype="float64")
    is_total = nat["cluster"].astype("string").eq(total_label).fillna(False)
    stated = nat.loc[is_total.to_numpy()].groupby("year")["employment"].max()
    if "national_employment_total" in nat.columns:
        column = nat.groupby("year")["national_employment_total"].max()
        stated = column.combine_first(stated)
    return stated.dropna().astype("float64")


def _ratio_of_sums(now: pd.Series, before: pd.Series) -> pd.Series:
    """now / before, aligned on ``now``'s index (``matched_sums`` gives both the same keys)."""
    return pd.Series(ratio(now, before.reindex(now.index)), index=now.index)


def _growth(series: pd.Series, k: int) -> pd.Series:
    """x_t / x_t-k of a series by year or by (cluster, year); only where both are known."""
    index = series.index
    if isinstance(index, pd.MultiIndex):
        earlier = pd.MultiIndex.from_arrays(
            [index.get_level_values(0), index.get_level_values(1) - k]
        )
    else:
        earlier = index - k
    before = series.reindex(earlier).to_numpy(dtype="float64")
    return pd.Series(ratio(series.to_numpy(dtype="float64"), before), index=index).dropna()


def national_facts(
    cluster_sums: pd.Series,
    region_totals: pd.Series,
    matched: Mapping[int, tuple[pd.Series, pd.Series]],
    reference: pd.DataFrame | None,
    total_label: str,
) -> NationalFacts:
    """The national ratios from the input's sums and an optional checked reference.

    ``cluster_sums``: e by (cluster, year) summed over the input; ``region_totals``: E_r by
    (region, year); ``matched[k]``: ``matched_sums`` of employment in t and t-k.
    """
    by_year = region_totals.groupby(level=1).sum(min_count=1)
    years = cluster_sums.index.get_level_values(1)
    share = pd.Series(
        ratio(cluster_sums.to_numpy(dtype="float64"), by_year.reindex(years).to_numpy()),
        index=cluster_sums.index,
    )
    regions = region_totals.index.get_level_values(0)
    total_years = region_totals.index.get_level_values(1)
    cluster_growth: dict[int, pd.Series] = {}
    total_growth: dict[int, pd.Series] = {}
    nation = np.zeros(len(region_totals), dtype="int64")  # one key: E_N is summed by year alone
    for k in GROWTH_YEARS:
        cluster_growth[k] = _ratio_of_sums(*matched[k])
        earlier = region_totals.reindex(pd.MultiIndex.from_arrays([regions, total_years - k]))
        now, before = matched_sums(
            nation,
            total_years,
            region_totals.to_numpy(dtype="float64"),
            earlier.to_numpy(dtype="float64"),
        )
        total_growth[k] = _ratio_of_sums(now.droplevel(0), before.droplevel(0))
    if reference is not None:
        given = reference.groupby(["cluster", "year"])["employment"].sum(min_count=1).dropna()
        stated = stated_totals(reference, total_label)
        if len(given) and len(stated):
            given_years = given.index.get_level_values(1)
            given_share = pd.Series(
                ratio(given.to_numpy(), stated.reindex(given_years).to_numpy()), index=given.index
            )
            share = given_share.dropna().combine_first(share)
        for k in GROWTH_YEARS:
            if len(given):
                cluster_growth[k] = _growth(given, k).combine_first(cluster_growth[k])
            if len(stated):
                total_growth[k] = _growth(stated, k).combine_first(total_growth[k])
    return NationalFacts(share=share, cluster_growth=cluster_growth, total_growth=total_growth)


@dataclass
class PanelContext:
    """A validated view of one panel (rows in the panel's order) with its totals and lags."""

    panel: pd.DataFrame
    national: pd.DataFrame | None = None
    total_label: str = TOTAL_LABEL
    facts: NationalFacts | None = None  # None: from this panel (and its national reference)
    _cols: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        panel = self.panel
        missing = [c for c in KEYS if c not in panel.columns]
        if missing:
            raise InputError(
                None, "a panel needs the key columns region, cluster, year", column=missing[0]
            )
        self.panel = panel.reset_index(drop=True)
        keys = self.panel[KEYS]
        blank = keys.isna().any(axis=1).to_numpy()
        if blank.any():
            row = int(np.flatnonzero(blank)[0]) + 1
            col = next(c for c in KEYS if pd.isna(keys.iloc[row - 1][c]))
            raise InputError(None, "keys must not be missing", column=col, row=row)
        year = _numeric(self.panel, "year")
        self.year = year.astype("int64")
        self.region_code, self.regions = pd.factorize(self.panel["region"], sort=True)
        self.cluster_code, self.clusters = pd.factorize(self.panel["cluster"], sort=True)
        self.year_min = int(self.year.min()) if len(self.year) else 0
        group = self.region_code.astype("int64") * len(self.clusters) + self.cluster_code
        self._span = int(self.year.max() - self.year_min) + 2 * _YEAR_PAD if len(year) else 1
        self._key = group * self._span + (self.year - self.year_min + _YEAR_PAD)
        index = pd.Index(self._key)
        if not index.is_unique:
            dup = pd.Series(self._key).duplicated().to_numpy()
            row = int(np.flatnonzero(dup)[0]) + 1
            raise InputError(
                None, "one row per region x cluster x year expected; this one repeats", row=row
            )
        self._index = index
        if self.national is None:
            self.national = _national_from_attrs(self.panel.attrs.get("national_totals"))
        # The reference lives in self.national from here on; left in attrs, pandas would
        # deep-copy it into the result of every operation on the panel.
        self.panel.attrs = {}

    # --- columns --------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.panel.columns

    def col(self, name: str) -> np.ndarray:
        """The column as float64 (inf becomes NaN); all-NaN when the panel lacks it."""
        if name not in self._cols:
            if self.has(name):
                self._cols[name] = _numeric(self.panel, name)
            else:
                self._cols[name] = np.full(len(self.panel), np.nan)
        return self._cols[name]

    def has_values(self, name: str) -> bool:
        return self.has(name) and bool(np.isfinite(self.col(name)).any())

    # --- calendar-year lags ---------------------------------------------------------------
    def lag(self, values: np.ndarray, k: int) -> np.ndarray:
        """The value of the same region x cluster in calendar year t - k (NaN when absent)."""
        pos = self._index.get_indexer(self._key - k)
        out = np.asarray(values, dtype="float64")[pos]
        out[pos < 0] = np.nan
        return out

    def _year_lookup(self, table: pd.Series, years: np.ndarray) -> np.ndarray:
        return table.reindex(years).to_numpy(dtype="float64", na_value=np.nan)

    # --- totals ---------------------------------------------------------------------------
    @cached_property
    def _region_year_total(self) -> pd.Series:
        emp = self.col("employment")
        given = self.col("region_employment_total")
        frame = pd.DataFrame({"r": self.region_code, "y": self.year, "sum": emp, "given": given})
        grouped = frame.groupby(["r", "y"], sort=True)
        summed = grouped["sum"].sum(min_count=1)
        stated = grouped["given"].max()
        return stated.where(stated.notna(), summed)

    @cached_property
    def region_total(self) -> np.ndarray:
        """E_r for each row."""
        wanted = pd.MultiIndex.from_arrays([self.region_code, self.year])
        return self._region_year_total.reindex(wanted).to_numpy(dtype="float64", na_value=np.nan)

    @cached_property
    def _national_frame(self) -> pd.DataFrame | None:
        return reference_frame(self.national)

    def _national_by_cluster(self, name: str) -> pd.Series:
        """A national series by (cluster, year) from the reference (empty without one)."""
        nat = self._national_frame
        if nat is None or name not in nat.columns:
            return pd.Series(dtype="float64")
        return nat.groupby(["cluster", "year"])[name].sum(min_count=1)

    def _summed_by_cluster(self, values: np.ndarray, mask: np.ndarray | None = None) -> pd.Series:
        """``values`` summed by (cluster, year) over the rows of ``mask`` (all by default)."""
        if mask is None:
            mask = np.ones(len(values), dtype=bool)
        return (
            pd.Series(values[mask])
            .groupby([self.cluster_names[mask], self.year[mask]])
            .sum(min_count=1)
        )

    @cached_property
    def _national_cluster_series(self) -> pd.Series:
        summed = self._summed_by_cluster(self.col("employment"))
        given = self._national_by_cluster("employment")
        return given.combine_first(summed) if len(given) else summed

    @cached_property
    def national_cluster(self) -> np.ndarray:
        """e_Nc for each row."""
        return self._by_cluster_year(self._national_cluster_series)

    @cached_property
    def cluster_names(self) -> np.ndarray:
        """The cluster of each row, as in the panel."""
        return np.asarray(self.clusters.take(self.cluster_code))

    @cached_property
    def _facts(self) -> NationalFacts:
        if self.facts is not None:
            return self.facts
        emp = self.col("employment")
        names = self.cluster_names
        matched = {k: matched_sums(names, self.year, emp, self.lag(emp, k)) for k in GROWTH_YEARS}
        return national_facts(
            self._summed_by_cluster(emp),
            self._region_year_total,
            matched,
            self._national_frame,
            self.total_label,
        )

    def _by_cluster_year(self, table: pd.Series) -> np.ndarray:
        wanted = pd.MultiIndex.from_arrays([self.cluster_names, self.year])
        return table.reindex(wanted).to_numpy(dtype="float64", na_value=np.nan)

    def national_cluster_growth(self, k: int) -> np.ndarray:
        """e_Nc,t / e_Nc,t-k of the row's cluster (k in GROWTH_YEARS): the reference's where it
        has both years, else summed over the regions whose employment in the cluster is known in
        both."""
        return self._by_cluster_year(self._facts.cluster_growth[k])

    def national_total_growth(self, k: int) -> np.ndarray:
        """E_N,t / E_N,t-k (k in GROWTH_YEARS): the reference's where it states both years, else
        summed over the regions whose total is known in both."""
        return self._year_lookup(self._facts.total_growth[k], self.year)

    @cached_property
    def national_wage(self) -> np.ndarray:
        """National payroll / national employment of the row's cluster and year.

        Summed over the rows where both are known, so suppressed payroll does not drag it down;
        the national reference's payroll is used where it has one. Where a row has
        ``employment_reported`` (US Cluster Mapping: payroll covers only the reported jobs), that
        is the employment its payroll is divided by; elsewhere its employment.
        """
        reported = self.col("employment_reported")
        emp = np.where(np.isfinite(reported), reported, self.col("employment"))
        pay = self.col("payroll")
        both = np.isfinite(emp) & np.isfinite(pay)
        wage = ratio(
            self._by_cluster_year(self._summed_by_cluster(pay, both)),
            self._by_cluster_year(self._summed_by_cluster(emp, both)),
        )
        given_pay = self._national_by_cluster("payroll")
        if len(given_pay):
            given = ratio(
                self._by_cluster_year(given_pay),
                self._by_cluster_year(self._national_by_cluster("employment")),
            )
            wage = np.where(np.isfinite(given), given, wage)
        return wage

    @cached_property
    def lq(self) -> np.ndarray:
        """The input's published ``lq`` when it has that column, else (e_rc/E_r)/(e_Nc/E_N)."""
        if self.has("lq"):
            return self.col("lq")
        share_region = ratio(self.col("employment"), self.region_total)
        return ratio(share_region, self._by_cluster_year(self._facts.share))


def _national_from_attrs(raw: object) -> pd.DataFrame | None:
    """``attrs["national_totals"]``: a frame, or a column -> values mapping (features.loaders
    keeps it JSON-serialisable so that Parquet round trips keep it)."""
    if isinstance(raw, pd.DataFrame):
        return raw
    if isinstance(raw, dict) and raw:
        try:
            return pd.DataFrame(raw)
        except ValueError:
            raise InputError(None, "attrs['national_totals'] is not a table of columns") from None
    return None


def as_context(
    data: pd.DataFrame | PanelContext,
    national: pd.DataFrame | None = None,
) -> PanelContext:
    """Accept a panel or an already-built context (families share one context in build)."""
    if isinstance(data, PanelContext):
        return data
    return PanelContext(data, national=national)


def frame_of(ctx: PanelContext, columns: Iterable[tuple[str, np.ndarray]]) -> pd.DataFrame:
    """A float64 frame of named columns, aligned with the context's rows."""
    return pd.DataFrame(
        {name: np.asarray(values, dtype="float64") for name, values in columns},
        index=pd.RangeIndex(len(ctx.panel)),
    )
