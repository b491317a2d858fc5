"""The feature catalogue: every indicator registered once, with its formula, unit, inputs, grain,
whether a policy can act on it (and through which aspect), and which direction is desirable.

``docs/features.md`` is rendered from here (``clusterstage catalogue -o docs/features.md``); do not
edit that file by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from features.indicators.dynamics import COLUMNS as _DYNAMICS
from features.indicators.dynamics import dynamics
from features.indicators.innovation import COLUMNS as _INNOVATION
from features.indicators.innovation import innovation
from features.indicators.linkages import COLUMNS as _LINKAGES
from features.indicators.linkages import linkages
from features.indicators.performance import COLUMNS as _PERFORMANCE
from features.indicators.performance import performance
from features.indicators.specialisation import COLUMNS as _SPECIALISATION
from features.indicators.specialisation import specialisation
from features.indicators.structure import COLUMNS as _STRUCTURE
from features.indicators.structure import structure

Aspect = Literal["investment_guidance", "resource_assembly", "market_supervision", "public_service"]
Family = Literal["specialisation", "dynamics", "structure", "performance", "innovation", "linkages"]
Grain = Literal["panel", "firms"]

ASPECTS: tuple[str, ...] = (
    "investment_guidance",
    "resource_assembly",
    "market_supervision",
    "public_service",
)

FAMILY_FUNCTIONS: dict[str, Callable[..., pd.DataFrame]] = {
    "specialisation": specialisation,
    "dynamics": dynamics,
    "structure": structure,
    "performance": performance,
    "innovation": innovation,
    "linkages": linkages,
}
FAMILY_COLUMNS: dict[str, tuple[str, ...]] = {
    "specialisation": _SPECIALISATION,
    "dynamics": _DYNAMICS,
    "structure": _STRUCTURE,
    "performance": _PERFORMANCE,
    "innovation": _INNOVATION,
    "linkages": _LINKAGES,
}
FAMILY_TITLES: dict[str, str] = {
    "specialisation": "Specialisation",
    "dynamics": "Dynamics",
    "structure": "Firm structure and demography",
    "performance": "Performance and openness",
    "innovation": "Innovation",
    "linkages": "Linkages and institutions",
}


@dataclass(frozen=True)
class Feature:
    """One indicator. ``compute`` is its family function (panel -> frame of that family)."""

    name: str
    family: Family
    formula: str
    unit: str
    inputs: tuple[str, ...]
    grain: Grain
    actionable: bool
    aspect: Aspect | None
    direction_good: Literal[-1, 1] | None
    note: str = ""

    def __post_init__(self) -> None:
        if self.aspect is not None and self.aspect not in ASPECTS:
            raise ValueError(f"{self.name}: unknown aspect {self.aspect!r}")
        if self.actionable != (self.aspect is not None):
            raise ValueError(f"{self.name}: an actionable feature names an aspect, others none")
        if self.name not in FAMILY_COLUMNS[self.family]:
            raise ValueError(f"{self.name}: not computed by the {self.family} family")

    @property
    def compute(self) -> Callable[..., pd.DataFrame]:
        return FAMILY_FUNCTIONS[self.family]


_EMP = ("employment",)


def _f(
    name: str,
    family: Family,
    formula: str,
    unit: str,
    inputs: tuple[str, ...],
    *,
    grain: Grain = "panel",
    aspect: Aspect | None = None,
    good: Literal[-1, 1] | None = None,
    note: str = "",
) -> Feature:
    return Feature(
        name, family, formula, unit, inputs, grain, aspect is not None, aspect, good, note
    )


def _cagr(prefix: str, column: str, k: int) -> Feature:
    return _f(
        f"{prefix}_cagr_{k}y",
        "dynamics",
        f"({column}_t / {column}_(t-{k}))^(1/{k}) - 1",
        "per year",
        (column,),
        good=1,
        note=f"Needs calendar year t-{k}; missing when absent or when {column}_(t-{k}) = 0.",
    )


CATALOGUE: tuple[Feature, ...] = (
    # --- specialisation ------------------------------------------------------------------------
    _f(
        "lq",
        "specialisation",
        "(e_rc / E_r) / (e_Nc / E_N)",
        "ratio",
        _EMP,
        good=1,
        note="A published `lq` column in the input (US Cluster Mapping exports) is kept as is.",
    ),
    _f("national_share", "specialisation", "e_rc / e_Nc", "share", _EMP, good=1),
    _f("lq_change_1y", "specialisation", "LQ_t - LQ_(t-1)", "LQ points", _EMP, good=1),
    _f("lq_change_3y", "specialisation", "LQ_t - LQ_(t-3)", "LQ points", _EMP, good=1),
    # --- dynamics ------------------------------------------------------------------------------
    *(_cagr("emp", "employment", k) for k in (1, 3, 5)),
    *(_cagr("est", "establishments", k) for k in (1, 3, 5)),
    _f(
        "ss_national",
        "dynamics",
        "e0 * g_N",
        "employees",
        _EMP,
        note="Dunn shift-share from t-1 to t; e0 = e_rc,(t-1); g_N = E_N,t / E_N,(t-1) - 1.",
    ),
    _f(
        "ss_industry_mix",
        "dynamics",
        "e0 * (g_Nc - g_N)",
        "employees",
        _EMP,
        note="g_Nc = e_Nc,t / e_Nc,(t-1) - 1.",
    ),
    _f(
        "ss_regional_shift",
        "dynamics",
        "e0 * (g_rc - g_Nc)",
        "employees",
        _EMP,
        good=1,
        note="Computed as (e1 - e0) - e0 * g_Nc: equal where e0 > 0, defined where e0 = 0; "
        "national + industry mix + regional shift = e1 - e0.",
    ),
    _f(
        "regional_shift_rate",
        "dynamics",
        "g_rc - g_Nc",
        "fraction",
        _EMP,
        good=1,
        note="The regional shift per employee of t-1: comparable across cluster sizes.",
    ),
    _f(
        "growth_vs_national_3y",
        "dynamics",
        "emp_cagr_3y(r, c) - emp_cagr_3y(N, c)",
        "per year",
        _EMP,
        good=1,
    ),
    # --- structure -----------------------------------------------------------------------------
    _f(
        "avg_firm_size",
        "structure",
        "employment / establishments",
        "employees per establishment",
        ("employment", "establishments"),
    ),
    _f(
        "sme_share",
        "structure",
        "sme_employment / employment",
        "share",
        ("sme_employment", "employment"),
        aspect="resource_assembly",
        good=1,
        note="From microdata an SME has fewer than 250 employees (EU recommendation 2003/361).",
    ),
    _f(
        "hhi",
        "structure",
        "sum_i s_i^2 over the firms' employment shares",
        "index 0-1",
        ("hhi",),
        grain="firms",
        aspect="market_supervision",
        good=-1,
    ),
    _f(
        "cr4",
        "structure",
        "top4_employment / employment",
        "share",
        ("top4_employment", "employment"),
        aspect="market_supervision",
        good=-1,
    ),
    _f(
        "gini",
        "structure",
        "Gini coefficient of firm employment",
        "index 0-1",
        ("gini",),
        grain="firms",
    ),
    _f(
        "entry_rate",
        "structure",
        "entries_t / establishments_(t-1)",
        "per establishment",
        ("entries", "establishments"),
        aspect="resource_assembly",
        good=1,
    ),
    _f(
        "exit_rate",
        "structure",
        "exits_t / establishments_(t-1)",
        "per establishment",
        ("exits", "establishments"),
        good=-1,
    ),
    _f(
        "net_entry_rate",
        "structure",
        "(entries_t - exits_t) / establishments_(t-1)",
        "per establishment",
        ("entries", "exits", "establishments"),
        good=1,
    ),
    _f(
        "median_firm_age",
        "structure",
        "median of year - founded_year over the firms",
        "years",
        ("median_firm_age",),
        grain="firms",
    ),
    _f(
        "cr4_change_3y",
        "structure",
        "cr4_t - cr4_(t-3)",
        "share points",
        ("top4_employment", "employment"),
        good=-1,
        note="Large firms pulling ahead of the rest is the mark of a maturing cluster.",
    ),
    _f(
        "hhi_change_3y",
        "structure",
        "hhi_t - hhi_(t-3)",
        "index points",
        ("hhi",),
        grain="firms",
        good=-1,
    ),
    # --- performance ---------------------------------------------------------------------------
    _f(
        "wage",
        "performance",
        "payroll / employment",
        "currency per employee",
        ("payroll", "employment"),
        good=1,
        note="A published `wage` column in the input (US Cluster Mapping exports) is kept, "
        "except where employment is 0.",
    ),
    _f(
        "relative_wage",
        "performance",
        "wage / (payroll_Nc / e_Nc)",
        "ratio",
        ("payroll", "employment"),
        aspect="resource_assembly",
        good=1,
        note="The national wage of the cluster sums payroll and employment over the rows where "
        "both are known; with an `employment_reported` column (US Cluster Mapping: payroll "
        "covers only reported jobs) it divides by that instead.",
    ),
    _f(
        "productivity",
        "performance",
        "value_added / employment",
        "currency per employee",
        ("value_added", "employment"),
        aspect="investment_guidance",
        good=1,
        note="Uses output instead of value_added when the input has no value_added at all "
        "(chosen per input, never mixed row by row).",
    ),
    _f(
        "export_intensity",
        "performance",
        "exports / output",
        "share of output",
        ("exports", "output"),
        aspect="public_service",
        good=1,
    ),
    _f(
        "productivity_cagr_3y",
        "performance",
        "(productivity_t / productivity_(t-3))^(1/3) - 1",
        "per year",
        ("value_added", "employment"),
        good=1,
        note="Productivity rising while employment does not is the mark of renewal.",
    ),
    _f(
        "wage_cagr_3y",
        "performance",
        "(wage_t / wage_(t-3))^(1/3) - 1",
        "per year",
        ("payroll", "employment"),
        good=1,
    ),
    _f(
        "productivity_cagr_1y",
        "performance",
        "productivity_t / productivity_(t-1) - 1",
        "per year",
        ("value_added", "employment"),
        good=1,
    ),
    _f(
        "wage_cagr_1y",
        "performance",
        "wage_t / wage_(t-1) - 1",
        "per year",
        ("payroll", "employment"),
        good=1,
    ),
    _f(
        "va_share",
        "performance",
        "value_added / output",
        "share of output",
        ("value_added", "output"),
        good=1,
        note="Upgrading raises the value a cluster adds to what it sells; decline lowers it.",
    ),
    _f(
        "va_share_change_3y",
        "performance",
        "va_share_t - va_share_(t-3)",
        "share points",
        ("value_added", "output"),
        good=1,
    ),
    # --- innovation ----------------------------------------------------------------------------
    _f(
        "rd_intensity",
        "innovation",
        "rd_expenditure / output",
        "share of output",
        ("rd_expenditure", "output"),
        aspect="resource_assembly",
        good=1,
    ),
    _f(
        "patents_per_10k",
        "innovation",
        "10,000 * patents / employment",
        "patents per 10,000 employees",
        ("patents", "employment"),
        aspect="market_supervision",
        good=1,
    ),
    _f(
        "rd_intensity_change_3y",
        "innovation",
        "rd_intensity_t - rd_intensity_(t-3)",
        "share of output",
        ("rd_expenditure", "output"),
        good=1,
    ),
    _f(
        "patents_per_10k_change_3y",
        "innovation",
        "patents_per_10k_t - patents_per_10k_(t-3)",
        "patents per 10,000 employees",
        ("patents", "employment"),
        good=1,
    ),
    # --- linkages ------------------------------------------------------------------------------
    _f(
        "relatedness_density",
        "linkages",
        "100 * sum_j phi_cj * x_rj / sum_j phi_cj, j != c, x_rj = [LQ_rj >= 1]",
        "0-100",
        _EMP,
        good=1,
        note="phi from a relatedness table when given (default measure cr_lc of the US Cluster "
        "Mapping related_clusters.json, negatives set to 0; clusters it lacks get no value), "
        "else co-location proximity in the data: phi_cj = min(P(x_c|x_j), P(x_j|x_c)) across "
        "the regions of the same year. j runs over the input's clusters; a cluster without a "
        "row counts as x = 0, one with an unknown LQ is left out.",
    ),
    _f(
        "institutions_per_100_est",
        "linkages",
        "100 * institutions / establishments",
        "per 100 establishments",
        ("institutions", "establishments"),
        aspect="public_service",
        good=1,
    ),
)

FEATURES: dict[str, Feature] = {}
for _feature in CATALOGUE:
    if _feature.name in FEATURES:
        raise ValueError(f"feature {_feature.name!r} registered twice")
    FEATURES[_feature.name] = _feature

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in CATALOGUE)

_missing = {c for cols in FAMILY_COLUMNS.values() for c in cols} - set(FEATURES)
if _missing:
    raise ValueError(f"computed but not catalogued: {sorted(_missing)}")


def actionable_features() -> dict[str, Feature]:
    """The features a policy can move, by name."""
    return {f.name: f for f in CATALOGUE if f.actionable}


_GENERAL_NOTES = """\
Notation: e_rc employment of region r in cluster c, E_r the region's total, e_Nc the national
employment of the cluster, E_N the national total, t the calendar year.

- **Region total E_r** = `region_employment_total` where the input has it for that region and
  year, else the sum of the region's clusters in the input (an undercount when the input holds
  only some industries, a double count when its industries overlap).
- **National totals**: e_Nc is the sum over the input's regions, unless a national reference
  (cluster, year, employment[, payroll]) is given (`national=` or the frame's
  `attrs["national_totals"]`); cluster-years it lacks fall back to the sum. E_N is the sum of
  the regions' totals E_r, unless the reference has a row for the total label
  (`Insgesamt`) of that year.
- **No mixed sources in a ratio**: the LQ's national share e_Nc / E_N is the reference's where it
  has both for the cluster and year, else the input's own sums; national growth from t-k to t
  (shift-share, `growth_vs_national_3y`) is the reference's where it has both years, else summed
  over the input's regions known in both years, so a suppressed cell or a region missing in one
  year does not pass for national growth.
- **Lags** are calendar years: t-k means the year t-k, not the previous row; a missing year gives
  a missing feature.
- **Missing values**: a missing input column gives a missing feature, never an error; a division
  by zero gives a missing value, never infinity. `n_missing_features` counts the missing
  features of each row.
- **Grain** `firms`: only available when the panel was aggregated from firm microdata. Sums
  over firms (wages, revenue, exports, R&D, patents) are ratio estimates: where some firms leave
  a column blank, the reporting firms' sum is scaled by the group's employment over theirs
  (exports and R&D: by revenue, over the firms that report both), so that a per-employee or
  per-revenue indicator is the reporters' own, not diluted by firms that said nothing.
- **Actionable**: a policy instrument can move it; **aspect** names the policy aspect that acts
  on it; **good** is the desirable direction (+1 higher, -1 lower, blank: neither).
"""


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def render_markdown() -> str:
    """The catalogue as Markdown (the content of docs/features.md)."""
    lines = [
        "# Feature catalogue",
        "",
        "Generated from `features/catalogue.py` by `clusterstage catalogue -o docs/features.md`;",
        "do not edit by hand.",
        "",
        _GENERAL_NOTES.rstrip(),
        "",
        f"{len(CATALOGUE)} features in {len(FAMILY_FUNCTIONS)} families.",
    ]
    for family, title in FAMILY_TITLES.items():
        fn = FAMILY_FUNCTIONS[family]
        lines += [
            "",
            f"## {title}",
            "",
            f"Computed by `{fn.__module__}.{fn.__name__}`.",
            "",
            "| feature | formula | unit | inputs | grain | actionable | aspect | good |",
            "|---|---|---|---|---|---|---|---|",
        ]
        members = [f for f in CATALOGUE if f.family == family]
        for f in members:
            good = {1: "+1", -1: "-1", None: ""}[f.direction_good]
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"`{f.name}`",
                        _cell(f.formula),
                        _cell(f.unit),
                        ", ".join(f"`{c}`" for c in f.inputs),
                        f.grain,
                        "yes" if f.actionable else "no",
                        f.aspect or "",
                        good,
                    ]
                )
                + " |"
            )
        notes = [f for f in members if f.note]
        if notes:
            lines.append("")
            lines += [f"- `{f.name}`: {f.note}" for f in notes]
    lines += ["", *_lag_section()]
    return "\n".join(lines) + "\n"


def _lag_section() -> list[str]:
    from features.lags import DEFAULT_LAGGED, DEFAULT_LAGS, lag_name

    names = ", ".join(f"`{n}`" for n in DEFAULT_LAGGED)
    return [
        "## Lagged copies",
        "",
        "Computed by `features.lags.add_lags` after the families above. `<feature>_lag<k>` is",
        "the feature's value for the same region and cluster in calendar year t-k (missing when",
        "that year has no row). A stage lasts several years and one year's rates are noisy",
        "evidence of it; the lags let a model weigh each of the last years itself, where the",
        "`_3y` and `_5y` windows average them. Lagged copies are never actionable (the past",
        "cannot be changed) and match the policy triggers of their feature.",
        "",
        f"By default (`features.lags: {DEFAULT_LAGS}` and `features.lagged` in params.yaml) the",
        f"lags 1 to {DEFAULT_LAGS} of these {len(DEFAULT_LAGGED)} one-year indicators, "
        f"{len(DEFAULT_LAGGED) * DEFAULT_LAGS} columns from `{lag_name(DEFAULT_LAGGED[0], 1)}`",
        f"on: {names}.",
    ]
