"""The US Cluster Mapping importer: column mapping, units, suppression, region levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.cmp import load_cmp
from features.errors import InputError
from features.loaders import load_input

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
STATES = SHARED / "us-cluster-mapping" / "states_2016.csv"

_HEADER = [
    "region_name_t",
    "region_code_t",
    "region_type_t",
    "cluster_name_t",
    "cluster_code_t",
    "year_t",
    "traded_b",
    "emp_tl",
    "emp_reported_tl",
    "qp1_tl",
    "est_tl",
    "ap_tl",
    "private_wage_tf",
    "supression_b",
    "lq_tf",
    "qualifying_b",
    "significant_b",
    "strong_b",
    "strong10_b",
]


def _row(
    region: str = "Alpha",
    code: str = "01",
    cluster: str = "Footwear",
    cluster_code: int = 5,
    *,
    kind: str = "state",
    traded: str = "TRUE",
    emp: int = 100,
    reported: int = 100,
    qp1: int = 1000,
    est: int = 4,
    ap: int = 5000,
    wage: float = 50000.0,
    supp: str = "FALSE",
    lq: float = 1.2,
    flags: tuple[str, str, str, str] = ("TRUE", "TRUE", "FALSE", "FALSE"),
) -> list[object]:
    return [
        region,
        code,
        kind,
        cluster,
        cluster_code,
        2016,
        traded,
        emp,
        reported,
        qp1,
        est,
        ap,
        wage,
        supp,
        lq,
        *flags,
    ]


def _export(tmp_path: Path, rows: list[list[object]], drop: str | None = None) -> Path:
    frame = pd.DataFrame(rows, columns=_HEADER, dtype=object)
    if drop:
        frame = frame.drop(columns=drop)
    path = tmp_path / "cmp.csv"
    # Written as the project exports it: codes quoted with leading zeros, NA for missing flags.
    frame.to_csv(path, index=False)
    return path


def test_columns_units_and_types(tmp_path: Path) -> None:
    path = _export(
        tmp_path,
        [
            _row(reported=80, ap=4000, wage=50000.0),
            _row("Beta", "02", "Local Health Services", 104, traded="FALSE", flags=("NA",) * 4),
        ],
    )
    out = load_cmp(path)
    first = out.iloc[0]
    assert first["region"] == "Alpha" and first["cluster"] == "Footwear" and first["year"] == 2016
    assert first["payroll"] == 4_000_000.0  # the export's $1000 become dollars
    assert first["employment"] == 100.0 and first["employment_reported"] == 80.0
    assert first["wage"] == 50000.0 and first["lq"] == 1.2
    assert first["region_code"] == "01" and first["cluster_code"] == "5"
    assert first["region_type"] == "state"
    assert bool(first["traded"]) and not bool(first["suppressed"])
    assert out["establishments"].dtype == "int64" and out["traded"].dtype == bool
    flags = ["published_qualifying", "published_significant", "published_strong"]
    assert out.loc[0, flags].tolist() == [True, True, False]
    assert out["published_strong10"].dtype == "boolean"
    # local clusters carry no published flags
    assert out.loc[1, flags].isna().all()


def test_zero_payroll_of_an_active_cluster_is_suppressed(tmp_path: Path) -> None:
    out = load_cmp(_export(tmp_path, [_row(reported=0, qp1=0, ap=0, wage=0.0)]))
    row = out.iloc[0]
    assert np.isnan(row["payroll"]) and np.isnan(row["wage"])
    assert row["employment"] == 100.0 and row["establishments"] == 4
    assert row["employment_reported"] == 0.0  # a fact, not a hidden value
    assert bool(row["suppressed"])


def test_zero_employment_with_establishments_is_suppressed(tmp_path: Path) -> None:
    out = load_cmp(_export(tmp_path, [_row(emp=0, reported=0, ap=0, wage=0.0, lq=0.0)]))
    row = out.iloc[0]
    assert np.isnan(row["employment"]) and np.isnan(row["lq"]) and np.isnan(row["payroll"])
    assert out["establishments"].tolist() == [4]
    assert bool(row["suppressed"])


def test_a_true_zero_stays_zero(tmp_path: Path) -> None:
    zero = _row(emp=0, reported=0, qp1=0, est=0, ap=0, wage=0.0, lq=0.0)
    out = load_cmp(_export(tmp_path, [zero]))
    row = out.iloc[0]
    assert row[["employment", "establishments", "payroll", "wage", "lq"]].tolist() == [0] * 5
    assert not bool(row["suppressed"])


def test_suppression_flag_of_the_export_is_kept(tmp_path: Path) -> None:
    flagged = _row(supp="TRUE", emp=0, reported=0, qp1=0, est=0, ap=0, wage=0.0, lq=0.0)
    out = load_cmp(_export(tmp_path, [flagged, _row(cluster="Apparel", supp="TRUE")]))
    assert out["suppressed"].tolist() == [True, True]
    # with the flag set, zeros are suppressed values even without other activity
    assert out.loc[out["cluster"] == "Footwear", "employment"].isna().all()
    assert out.loc[out["cluster"] == "Apparel", "employment"].tolist() == [100.0]


def test_rows_are_sorted_and_keep_file_rows_for_errors(tmp_path: Path) -> None:
    rows = [_row("Beta", "02"), _row("Alpha", "01"), _row("Alpha", "01", est=-1)]
    err = pytest.raises(InputError, load_cmp, _export(tmp_path, rows)).value
    assert (
        str(err)
        == f"{tmp_path / 'cmp.csv'}, column 'est_tl', row 3: expected a number ≥ 0, found -1"
    )
    out = load_cmp(_export(tmp_path, rows[:2]))
    assert out["region"].tolist() == ["Alpha", "Beta"]


def test_duplicate_region_cluster_year(tmp_path: Path) -> None:
    err = pytest.raises(InputError, load_cmp, _export(tmp_path, [_row(), _row()])).value
    assert err.row == 2 and "duplicate key (region 'Alpha', cluster 'Footwear'" in err.message


def test_county_names_shared_by_several_codes_get_their_code(tmp_path: Path) -> None:
    rows = [
        _row("Washington County", "01129", kind="county"),
        _row("Washington County", "05143", kind="county"),
        _row("Autauga County", "01001", kind="county"),
    ]
    out = load_cmp(_export(tmp_path, rows))
    assert out["region"].tolist() == [
        "Autauga County",
        "Washington County (01129)",
        "Washington County (05143)",
    ]


def test_one_region_level_per_file(tmp_path: Path) -> None:
    rows = [_row(), _row("Somewhere, AL", "10000", kind="msa")]
    err = pytest.raises(InputError, load_cmp, _export(tmp_path, rows)).value
    assert err.column == "region_type_t"
    assert "expected one region level per file, found msa, state" in err.message


def test_a_file_that_is_not_an_export(tmp_path: Path) -> None:
    err = pytest.raises(InputError, load_cmp, _export(tmp_path, [_row()], drop="emp_tl")).value
    assert err.column == "emp_tl"
    assert err.message.startswith("missing column of a US Cluster Mapping export; expected ")
    plain = tmp_path / "panel.csv"
    plain.write_text("region,cluster,year,employment,establishments\nA,x,2010,1,1\n")
    assert pytest.raises(InputError, load_cmp, plain).value.column == "region_name_t"


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    path = _export(tmp_path, [_row()], drop=None)
    frame = pd.read_csv(path, dtype=str).drop(
        columns=["strong_b", "emp_reported_tl", "supression_b", "qp1_tl", "region_type_t"]
    )
    frame.to_csv(path, index=False)
    out = load_cmp(path)
    assert out["published_strong"].isna().all() and out["employment_reported"].isna().all()
    assert out["region_type"].isna().all() and not out["suppressed"].any()


@pytest.mark.skipif(not STATES.exists(), reason="../shared/data is not present")
def test_states_2016() -> None:
    out = load_input(STATES, "cmp")
    raw = pd.read_csv(STATES, dtype={"region_code_t": str})
    assert len(out) == 3350 and out["region"].nunique() == 50 and out["cluster"].nunique() == 67
    assert out["traded"].sum() == 2550
    # payroll in dollars: Alabama's aerospace cluster reports ap_tl = 361,294 ($1000)
    al = out[(out["region"] == "Alabama") & (out["cluster"] == "Aerospace Vehicles and Defense")]
    assert al["payroll"].tolist() == [361_294_000.0]
    assert out["payroll"].sum() == raw["ap_tl"].sum() * 1000
    # 204 rows with establishments and employment but a zero payroll: suppressed, not zero
    assert out["suppressed"].sum() == 204
    assert out.loc[out["suppressed"], "payroll"].isna().all()
    assert (out.loc[out["suppressed"], "establishments"] > 0).all()
    # 56 rows without any establishment keep their true zeros
    zeros = out[out["establishments"] == 0]
    assert len(zeros) == 56 and (zeros["employment"] == 0).all() and not zeros["suppressed"].any()
    assert out["payroll"].isna().sum() == 204 and out["employment"].notna().all()
    # wage is the published one: payroll per *reported* employee
    ok = out["employment_reported"] > 0
    ratio = out.loc[ok, "payroll"] / out.loc[ok, "employment_reported"] / out.loc[ok, "wage"]
    assert np.allclose(ratio, 1.0, rtol=1e-6)
    assert out["region_code"].str.len().eq(2).all()
    local = out[~out["traded"]]
    assert local["published_strong"].isna().all()
    published = raw.loc[raw["traded_b"], "strong_b"].astype(bool).sum()
    assert out["published_strong"].sum() == published == 512
