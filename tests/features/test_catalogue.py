from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_NAMES
from features.catalogue import (
    ASPECTS,
    CATALOGUE,
    FAMILY_COLUMNS,
    FAMILY_FUNCTIONS,
    FEATURES,
    actionable_features,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[2]

# The names other parts of the project (labellers, models) are written against.
CONTRACT = [
    "lq", "national_share", "lq_change_1y", "lq_change_3y",
    "emp_cagr_1y", "emp_cagr_3y", "emp_cagr_5y", "est_cagr_1y", "est_cagr_3y", "est_cagr_5y",
    "ss_national", "ss_industry_mix", "ss_regional_shift", "regional_shift_rate",
    "growth_vs_national_3y",
    "avg_firm_size", "sme_share", "hhi", "cr4", "gini", "entry_rate", "exit_rate",
    "net_entry_rate", "median_firm_age", "cr4_change_3y", "hhi_change_3y",
    "wage", "relative_wage", "productivity", "export_intensity",
    "productivity_cagr_3y", "wage_cagr_3y", "productivity_cagr_1y", "wage_cagr_1y",
    "va_share", "va_share_change_3y",
    "rd_intensity", "patents_per_10k", "rd_intensity_change_3y", "patents_per_10k_change_3y",
    "relatedness_density", "institutions_per_100_est",
]  # fmt: skip


def test_every_contract_name_is_registered_exactly_once_in_catalogue_order():
    assert list(FEATURE_NAMES) == CONTRACT
    assert len({f.name for f in CATALOGUE}) == len(CATALOGUE)


def test_each_family_function_computes_exactly_its_catalogued_features():
    panel = pd.DataFrame(
        {"region": ["A", "B"], "cluster": ["x", "x"], "year": [2020, 2020],
         "employment": [1.0, 2.0], "establishments": [1, 1]}
    )  # fmt: skip
    for family, fn in FAMILY_FUNCTIONS.items():
        out = fn(panel)
        assert tuple(out.columns) == FAMILY_COLUMNS[family]
        assert [f.name for f in CATALOGUE if f.family == family] == list(FAMILY_COLUMNS[family])
    assert all(FEATURES[n].compute is FAMILY_FUNCTIONS[FEATURES[n].family] for n in FEATURES)


def test_actionability_and_aspects():
    yes = {
        "sme_share", "entry_rate", "rd_intensity", "patents_per_10k", "export_intensity",
        "institutions_per_100_est", "productivity", "relative_wage",
    }  # fmt: skip
    no = {
        "lq", "national_share", "ss_national", "ss_industry_mix", "ss_regional_shift",
        "emp_cagr_1y", "emp_cagr_3y", "emp_cagr_5y", "est_cagr_1y", "est_cagr_3y", "est_cagr_5y",
    }  # fmt: skip
    acting = actionable_features()
    assert yes <= set(acting)
    assert not no & set(acting)
    for f in CATALOGUE:
        assert (f.aspect in ASPECTS) if f.actionable else f.aspect is None
        assert f.direction_good in (-1, 1, None)
        assert f.grain in ("panel", "firms")
        assert f.formula and f.unit and f.inputs
    # every aspect can act on something, so no aspect is left without a lever
    assert {f.aspect for f in acting.values()} == set(ASPECTS)
    assert {n for n, f in FEATURES.items() if f.grain == "firms"} == {
        "hhi",
        "gini",
        "median_firm_age",
        "hhi_change_3y",
    }


def full_panel() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = [(r, c, y) for r in "ABC" for c in "xyz" for y in range(2010, 2017)]
    p = pd.DataFrame(rows, columns=["region", "cluster", "year"])
    n = len(p)
    for col in (
        "employment", "establishments", "payroll", "output", "value_added", "exports",
        "rd_expenditure", "patents", "entries", "exits", "sme_employment", "top4_employment",
        "institutions", "hhi", "gini", "median_firm_age",
    ):  # fmt: skip
        p[col] = rng.uniform(1, 100, n)
    return p


@pytest.mark.parametrize("name", [f.name for f in CATALOGUE])
def test_dropping_an_input_column_makes_the_feature_missing(name):
    from features.build import build_features

    feature = FEATURES[name]
    assert build_features(full_panel())[name].notna().any()
    for column in feature.inputs:
        if column == "employment":
            continue  # required by every panel
        productivity = {"productivity", "productivity_cagr_3y", "productivity_cagr_1y"}
        if name in productivity and column == "value_added":
            continue  # documented fallback to output
        out = build_features(full_panel().drop(columns=column))
        assert out[name].isna().all(), f"{name} without {column}"


def test_docs_features_md_is_the_rendered_catalogue():
    committed = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "run: clusterstage catalogue -o docs/features.md"


def test_rendered_catalogue_lists_every_feature_once():
    lines = render_markdown().splitlines()
    for f in CATALOGUE:
        assert sum(line.startswith(f"| `{f.name}` |") for line in lines) == 1
