"""Reading files into the validated grains: read_table, load_panel, load_firms, load_labels; and
the relatedness table (load_relatedness)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import InputError
from features.loaders import (
    load_firms,
    load_input,
    load_labels,
    load_panel,
    load_relatedness,
    national_totals,
    normalise_name,
    read_table,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PANEL = FIXTURES / "panel_small.csv"
FIRMS = FIXTURES / "firms_small.csv"
LABELS = FIXTURES / "labels_small.csv"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
GERMANY = SHARED / "germany-laender-employment" / "emp_2008_2014.csv"
RELATED = SHARED / "us-cluster-mapping" / "related_clusters.json"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(fn, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as err:
        fn(*args, **kwargs)
    return err.value


# --- read_table ----------------------------------------------------------------------------


def test_column_names_are_normalised() -> None:
    assert normalise_name("  Value Added ") == "value_added"
    assert normalise_name("R-D  Expenditure") == "r_d_expenditure"
    assert normalise_name("region_employment_total") == "region_employment_total"


def test_read_table_csv_cells_are_text_and_codes_keep_leading_zeros(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", "Region Code,Emp\n01,5\n02,\n")
    frame = read_table(path)
    assert list(frame.columns) == ["region_code", "emp"]
    assert frame["region_code"].tolist() == ["01", "02"]
    assert frame["emp"].iloc[0] == "5" and pd.isna(frame["emp"].iloc[1])


def test_read_table_semicolons_bom_and_blank_trailing_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffregion;year;\nA;2010;\n".encode())
    frame = read_table(path)
    assert list(frame.columns) == ["region", "year"]
    assert frame.iloc[0].tolist() == ["A", "2010"]


def test_read_table_trailing_delimiter_on_every_row_keeps_columns_in_place(
    tmp_path: Path,
) -> None:
    # pandas' default would make 'region' the index and shift every column one to the left
    path = _write(tmp_path, "t.csv", "region,cluster,year\nA,x,2010,\nB,y,2011,\n")
    frame = read_table(path)
    assert frame.to_dict("list") == {
        "region": ["A", "B"],
        "cluster": ["x", "y"],
        "year": ["2010", "2011"],
    }


def test_read_table_blank_lines_and_empty_trailing_cells_are_not_short_rows(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "t.csv", "region,year,employment\nA,2010,\n   \n\nB,2011,5\n")
    frame = read_table(path)
    assert frame["region"].tolist() == ["A", "B"]
    assert frame["employment"].isna().tolist() == [True, False]


@pytest.mark.parametrize(
    ("content", "row", "message"),
    [
        (
            "region,year,employment\nA,2010,4\n\nB,2011\n",
            2,
            "2 fields where the header names 3 (line 4); expected one value, or an empty one, "
            "per column",
        ),
        (
            "region,year,employment\nA,2010,4,\nB,2011,5,9\n",
            2,
            "4 fields where the header names 3 (line 3); expected no values beyond the "
            "header's columns",
        ),
        (
            "region,year,employment\nA,2010,4,7\nB,2011,5,9\n",
            1,
            "4 fields where the header names 3 (line 2); expected no values beyond the "
            "header's columns",
        ),
        (
            "region,year,employment\nA,2010,4\nB,2011,5,9\n",
            2,
            "4 fields where the header names 3 (line 3); expected no values beyond the "
            "header's columns",
        ),
    ],
)
def test_read_table_rows_with_too_few_or_too_many_fields(
    tmp_path: Path, content: str, row: int, message: str
) -> None:
    err = _error(read_table, _write(tmp_path, "t.csv", content))
    assert (err.row, err.message) == (row, message)


def test_read_table_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("region,year\nA,2010\nW\u00fcrzburg,2011\n".encode("latin-1"))
    assert _error(read_table, path).message.startswith("not UTF-8 text (byte 0xfc on line 3)")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.xlsx", b"x", "unsupported file type '.xlsx'; expected .csv or .parquet"),
        ("p.csv", b"", "empty file: expected a header row and data rows"),
        ("p.parquet", b"", "empty file: expected a header row and data rows"),
        ("p.csv", b"region,cluster\n", "no data rows: expected at least one row below the header"),
        ("p.csv", "region\nW\u00fcrzburg\n".encode("latin-1"), "not UTF-8 text (byte 0xfc"),
        ("p.parquet", b"PAR1 this is not parquet", "not a readable Parquet file"),
    ],
)
def test_read_table_bad_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    err = _error(read_table, path)
    assert err.file == str(path)
    assert err.message.startswith(message)


def test_read_table_missing_file_and_folder(tmp_path: Path) -> None:
    assert _error(read_table, tmp_path / "nope.csv").message == "cannot read: no such file"
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert _error(read_table, folder).message == "cannot read: it is a folder, expected a file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_read_table_permission_denied(tmp_path: Path) -> None:
    path = shutil.copy(PANEL, tmp_path / "p.csv")
    os.chmod(path, 0)
    assert _error(read_table, path).message == "cannot read: permission denied"


def test_read_table_repeated_column_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "Year,year\n2010,2011\n")
    assert "two columns are named 'year'" in _error(read_table, path).message
    # written the same twice: pandas' reader renames the second 'employment.1'
    path = _write(tmp_path, "q.csv", "region,employment,employment\nA,1,2\n")
    assert _error(read_table, path).message == (
        "two columns are named 'employment' (ignoring case); expected unique names"
    )
    path = _write(tmp_path, "r.csv", "region,employment.1,employment\nA,1,2\n")
    assert list(read_table(path).columns) == ["region", "employment.1", "employment"]


# --- load_panel ----------------------------------------------------------------------------


def test_load_panel_types_order_and_values() -> None:
    panel = load_panel(PANEL)
    assert list(panel.columns) == [
        "region",
        "cluster",
        "year",
        "employment",
        "establishments",
        "payroll",
    ]
    assert str(panel["region"].dtype) == "str" and str(panel["cluster"].dtype) == "str"
    assert panel["year"].dtype == "int64"
    assert panel["employment"].dtype == "float64" and panel["payroll"].dtype == "float64"
    assert panel["establishments"].dtype == "int64"
    assert panel[["region", "cluster", "year"]].values.tolist()[:3] == [
        ["North", "Footwear", 2019],
        ["North", "Footwear", 2020],
        ["North", "Pumps and valves", 2019],
    ]
    south = panel[(panel["region"] == "South") & (panel["cluster"] == "Footwear")]
    assert south["payroll"].isna().tolist() == [False, True]
    assert panel["employment"].sum() == 4755


def test_rows_are_sorted_whatever_the_file_order(tmp_path: Path) -> None:
    lines = PANEL.read_text().splitlines()
    path = _write(tmp_path, "p.csv", "\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    pd.testing.assert_frame_equal(load_panel(path), load_panel(PANEL))


def test_column_mapping_and_declared_absent_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "Industry,Region,Year,Emp\nx,A,2010.0,5\ny,A,2010.0,7\n")
    panel = load_panel(
        path, columns={"cluster": "Industry", "employment": "emp", "establishments": None}
    )
    assert panel["cluster"].tolist() == ["x", "y"]
    assert panel["employment"].tolist() == [5.0, 7.0]
    assert panel["establishments"].isna().all() and panel["establishments"].dtype == "float64"


def test_missing_required_column_lists_what_was_found(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "industry,region,year,emp\nx,A,2010,5\n")
    err = _error(load_panel, path)
    assert err.column == "cluster"
    assert str(err) == (
        f"{path}, column 'cluster': missing required column; expected region, cluster, year, "
        "employment, establishments (map other names with --column CONTRACT=SOURCE or "
        "data.columns); columns found: industry, region, year, emp"
    )


def test_mapping_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "industry,region,year,emp\nx,A,2010,5\n")
    err = _error(load_panel, path, columns={"cluster": "sector"})
    assert "no column 'sector' in the file; columns found: industry, region, year, emp" in str(err)
    err = _error(load_panel, path, columns={"employees": "emp"})
    assert "unknown panel column 'employees'" in str(err)
    err = _error(load_panel, path, columns={"region": None})
    assert "declares 'region' absent" in str(err)
    err = _error(load_panel, path, columns={"cluster": "industry", "region": "industry"})
    assert "sends 'industry' to both 'cluster' and 'region'" in str(err)


def test_mapping_can_swap_names(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "p.csv", "cluster,region,year,employment,establishments\nA,x,2010,1,1\n"
    )
    panel = load_panel(path, columns={"region": "cluster", "cluster": "region"})
    assert panel[["region", "cluster"]].values.tolist() == [["A", "x"]]


def test_malformed_csv_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "region,cluster,year\nA,x,2010\nA,y,2010,5,6\n")
    err = _error(read_table, path)
    assert err.row == 2
    assert err.message.startswith("5 fields where the header names 3 (line 3)")


def test_errors_name_the_source_column_of_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "industry,region,year,emp\nx,A,2010,5\ny,A,2010,-2\n")
    err = _error(
        load_panel,
        path,
        columns={"cluster": "industry", "employment": "emp", "establishments": None},
    )
    assert str(err) == f"{path}, column 'emp', row 2: expected a number ≥ 0, found -2"


def test_unknown_columns_are_dropped_project_extras_kept(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "p.csv",
        "region,cluster,year,employment,establishments,notes,hhi,patents\nA,x,2010,5,1,hi,0.5,\n",
    )
    panel = load_panel(path)
    assert list(panel.columns) == [
        "region",
        "cluster",
        "year",
        "employment",
        "establishments",
        "patents",
        "hhi",
    ]
    assert panel["hhi"].iloc[0] == 0.5 and np.isnan(panel["patents"].iloc[0])


_TOTALS = """region,cluster,year,employment,establishments
A,x,2010,60,1
A,y,2010,50,1
A,Insgesamt,2010,100,
B,x,2010,30,1
B,Insgesamt,2010,40,
Insgesamt,x,2010,90,
Insgesamt,y,2010,50,
Insgesamt,Insgesamt,2010,140,
"""


def test_total_rows_become_region_totals_and_national_totals(tmp_path: Path) -> None:
    panel = load_panel(_write(tmp_path, "p.csv", _TOTALS))
    assert panel[["region", "cluster"]].values.tolist() == [["A", "x"], ["A", "y"], ["B", "x"]]
    # from the Insgesamt rows, not the sum of the clusters (110 for A)
    assert panel["region_employment_total"].tolist() == [100.0, 100.0, 40.0]
    national = national_totals(panel)
    assert national is not None
    assert national.to_dict("list") == {
        "cluster": ["x", "y"],
        "year": [2010, 2010],
        "employment": [90.0, 50.0],
        "national_employment_total": [140.0, 140.0],
    }


def test_total_label_none_keeps_total_rows_as_clusters(tmp_path: Path) -> None:
    panel = load_panel(_write(tmp_path, "p.csv", _TOTALS), total_label=None)
    assert len(panel) == 8 and "region_employment_total" not in panel.columns
    assert national_totals(panel) is None


def test_region_totals_file_wins_over_total_rows(tmp_path: Path) -> None:
    totals = _write(tmp_path, "totals.csv", "Region,Year,Region Employment Total\nB,2010,45\n")
    panel = load_panel(_write(tmp_path, "p.csv", _TOTALS), region_totals=totals)
    assert panel["region_employment_total"].tolist() == [100.0, 100.0, 45.0]
    assert national_totals(panel) is not None  # the join keeps the national totals


def test_region_totals_file_is_validated(tmp_path: Path) -> None:
    totals = _write(tmp_path, "totals.csv", "region,year,region_employment_total\nB,2010,-1\n")
    err = _error(load_panel, PANEL, region_totals=totals)
    assert str(err) == (
        f"{totals}, column 'region_employment_total', row 1: expected a number ≥ 0, found -1"
    )


def test_only_total_rows_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "p.csv", "region,cluster,year,employment,establishments\nA,Insgesamt,2010,1,1\n"
    )
    assert "no cluster rows" in _error(load_panel, path).message


def test_csv_and_parquet_give_the_same_frame(tmp_path: Path) -> None:
    from_csv = load_panel(_write(tmp_path, "p.csv", _TOTALS))
    typed = pd.read_csv(tmp_path / "p.csv")  # numbers typed, as a Parquet writer would keep them
    typed.to_parquet(tmp_path / "p.parquet", index=False)
    from_parquet = load_panel(tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    assert from_csv.attrs == from_parquet.attrs


def test_a_written_panel_reloads_with_its_national_totals(tmp_path: Path) -> None:
    from pipeline.io import write_table

    panel = load_panel(_write(tmp_path, "p.csv", _TOTALS))
    write_table(panel, tmp_path / "out.parquet")
    again = load_panel(tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(panel, again)
    assert again.attrs == panel.attrs


def test_the_input_file_is_never_modified(tmp_path: Path) -> None:
    path = Path(shutil.copy2(PANEL, tmp_path / "p.csv"))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    load_input(path, "panel", columns={"payroll": None})
    bad = _write(
        tmp_path, "bad.csv", "region,cluster,year,employment,establishments\nA,x,2010,-1,1\n"
    )
    bad_before = (bad.read_bytes(), bad.stat().st_mtime_ns)
    _error(load_input, bad, "panel")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert (bad.read_bytes(), bad.stat().st_mtime_ns) == bad_before


# --- firms and labels ----------------------------------------------------------------------


def test_load_firms_validates_rows() -> None:
    firms = load_firms(FIRMS)
    assert len(firms) == 6 and firms["employees"].dtype == "float64"
    assert firms["founded_year"].dtype == "int64"


def test_load_input_aggregates_firms_to_the_panel() -> None:
    panel = load_input(FIRMS, "firms")
    north = panel[(panel["region"] == "North") & (panel["year"] == 2020)].iloc[0]
    assert north["employment"] == 315.0 and north["establishments"] == 2
    assert north["payroll"] == 9_600_000.0
    assert north["entries"] == 1.0 and north["exits"] == 1.0  # f3 entered, f2 left
    assert north["median_firm_age"] == 12.5  # ages 25 and 0
    assert panel["establishments"].dtype == "int64" and panel["year"].dtype == "int64"
    assert panel[["region", "cluster", "year"]].values.tolist() == [
        ["North", "Footwear", 2019],
        ["North", "Footwear", 2020],
        ["South", "Footwear", 2019],
        ["South", "Footwear", 2020],
    ]


def test_region_totals_join_firm_aggregates(tmp_path: Path) -> None:
    totals = _write(
        tmp_path,
        "t.csv",
        "region,year,region_employment_total\n"
        "North,2019,4000\nNorth,2020,5000\nSouth,2019,900\nSouth,2020,950\n",
    )
    panel = load_input(FIRMS, "firms", region_totals=totals)
    assert panel["region_employment_total"].tolist() == [4000.0, 5000.0, 900.0, 950.0]


def test_firm_columns_can_be_mapped(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "f.csv", "region,cluster,year,company,staff\nA,x,2010,c1,4\nA,x,2010,c2,6\n"
    )
    panel = load_input(path, "firms", columns={"firm_id": "company", "employees": "staff"})
    assert panel[["employment", "establishments"]].values.tolist() == [[10.0, 2]]


def test_load_labels_normalises_stages_and_adds_optional_columns(tmp_path: Path) -> None:
    labels = load_labels(LABELS)
    assert labels["stage"].tolist() == ["mature", "emerging"]
    assert labels["confidence"].isna().tolist() == [False, True]
    bare = load_labels(_write(tmp_path, "l.csv", "region,cluster,year,stage\nA,x,2010,Decline\n"))
    assert list(bare.columns) == ["region", "cluster", "year", "stage", "source", "confidence"]
    assert bare["stage"].tolist() == ["decline"] and bare["source"].isna().all()


def test_load_labels_unknown_stage(tmp_path: Path) -> None:
    path = _write(tmp_path, "l.csv", "region,cluster,year,stage\nA,x,2010,growth\nA,y,2010,Boom\n")
    assert str(_error(load_labels, path)) == (
        f"{path}, column 'stage', row 2: expected one of emerging, growth, mature, decline, "
        "renewal, found 'Boom'"
    )


def test_cmp_grain_takes_no_column_mapping(tmp_path: Path) -> None:
    err = _error(load_input, PANEL, "cmp", columns={"cluster": "x"})
    assert "not used for the cmp grain" in err.message


# --- real data -----------------------------------------------------------------------------


@pytest.mark.skipif(not GERMANY.exists(), reason="../shared/data is not present")
def test_german_laender_file_loads_with_region_totals() -> None:
    panel = load_input(
        GERMANY,
        "panel",
        columns={"cluster": "industry", "employment": "emp", "establishments": None},
    )
    assert panel.shape[0] == 16 * 11 * 7
    assert panel["region"].nunique() == 16 and panel["cluster"].nunique() == 11
    assert sorted(panel["year"].unique()) == list(range(2008, 2015))
    assert "Insgesamt" not in set(panel["region"]) | set(panel["cluster"])
    assert panel["establishments"].isna().all()
    assert panel["region_employment_total"].notna().all()
    bw = panel[(panel["region"] == "Baden-Wuerttemberg") & (panel["year"] == 2008)]
    assert (bw["region_employment_total"] == 3_891_264).all()
    # sections overlap (C lies inside B-E), so the sections add up to more than the total
    assert bw["employment"].sum() > 3_891_264
    national = national_totals(panel)
    assert national is not None and len(national) == 11 * 7
    first = national[(national["year"] == 2008) & (national["cluster"] == "Baugewerbe (F)")]
    assert first["employment"].tolist() == [1_572_378.0]
    assert first["national_employment_total"].tolist() == [27_457_715.0]


# --- numbers in ';'-separated files (German spreadsheets) ------------------------------------

_SEMI = "region;cluster;year;employment;establishments\n"


def test_a_decimal_comma_makes_dots_thousands_separators(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", _SEMI + "A;x;2010;1.250;40\nA;x;2011;1.234,5;41\n")
    assert load_panel(path)["employment"].tolist() == [1250.0, 1234.5]


def test_without_a_decimal_comma_dots_are_decimal_points(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "p.csv", _SEMI + "A;x;2010;0.125;1\nA;x;2011;1.5;1\nA;x;2012;12.3456;1\n"
    )
    assert load_panel(path)["employment"].tolist() == [0.125, 1.5, 12.3456]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (
            "1.250",
            "expected a number written unambiguously, found '1.250' (1250 or 1.25?); in a "
            "';'-separated file write it 1250 or 1,25",
        ),
        (
            "12.345.678",
            "expected a number written unambiguously, found '12.345.678' (12345678?); in a "
            "';'-separated file write it 12345678",
        ),
    ],
)
def test_a_dot_that_may_group_thousands_is_ambiguous(
    tmp_path: Path, cell: str, message: str
) -> None:
    path = _write(tmp_path, "p.csv", _SEMI + f"A;x;2010;980;40\nA;x;2011;{cell};41\n")
    err = _error(load_panel, path)
    assert str(err) == f"{path}, column 'employment', row 2: {message}"


def test_a_decimal_point_beside_decimal_commas_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", _SEMI + "A;x;2010;3,5;40\nA;x;2011;1.5;41\n")
    assert str(_error(load_panel, path)) == (
        f"{path}, column 'employment', row 2: expected a number with a decimal comma, as "
        "elsewhere in this ';'-separated file ('.' groups thousands: 1.234,5), found '1.5'"
    )


def test_comma_separated_files_keep_decimal_points(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "p.csv", "region,cluster,year,employment,establishments\nA,x,2010,1.250,4\n"
    )
    assert load_panel(path)["employment"].tolist() == [1.25]


# --- totals ----------------------------------------------------------------------------------


def test_a_region_year_without_its_total_row_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "p.csv", _TOTALS.replace("B,Insgesamt,2010,40,\n", "C,Insgesamt,2010,9,\n")
    )
    assert str(_error(load_panel, path)) == (
        f"{path}: no total row for region 'B' in 2010, while other regions have one; expected "
        "a total (Insgesamt) row for every region and year, or none"
    )


def test_without_any_total_row_region_totals_are_the_sums(tmp_path: Path) -> None:
    lines = [line for line in _TOTALS.splitlines() if "Insgesamt" not in line]
    panel = load_panel(_write(tmp_path, "p.csv", "\n".join(lines) + "\n"))
    # no stated totals: the indicators sum the clusters, as for any file without totals
    assert "region_employment_total" not in panel.columns and len(panel) == 3


def test_a_region_the_totals_file_does_not_name_is_an_error(tmp_path: Path) -> None:
    totals = _write(
        tmp_path, "t.csv", "region,year,region_employment_total\nNORTH,2019,1\nNORTH,2020,1\n"
    )
    assert str(_error(load_panel, PANEL, region_totals=totals)) == (
        f"{totals}: no row for region 'North' in 2019, a region and year of panel_small.csv; "
        "expected a total for every region and year of the input, the region written as there"
    )


@pytest.mark.parametrize("label", ["insgesamt", "INSGESAMT", " Insgesamt "])
def test_total_rows_are_recognised_whatever_their_case(tmp_path: Path, label: str) -> None:
    want = load_panel(_write(tmp_path, "want.csv", _TOTALS))
    text = _TOTALS.replace(",Insgesamt,", f",{label},").replace("Insgesamt,", f"{label},")
    got = load_panel(_write(tmp_path, "got.csv", text))
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs == want.attrs


# --- firms -----------------------------------------------------------------------------------


def test_a_firm_founded_after_the_year_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "f.csv",
        "region,cluster,year,firm_id,employees,founded_year\n"
        "A,x,2010,f1,5,2001\nA,x,2010,f2,6,2010\nA,x,2011,f1,5,2050\n",
    )
    expected = (
        f"{path}, column 'founded_year', row 3: expected a founding year no later than the "
        "year (2011), found 2050"
    )
    assert str(_error(load_firms, path)) == expected
    assert str(_error(load_input, path, "firms")) == expected


# --- Parquet ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [["region"], ["region", "cluster", "year"]])
def test_a_parquet_index_is_read_back_as_columns(tmp_path: Path, index: list[str]) -> None:
    want = load_panel(PANEL)
    path = tmp_path / "p.parquet"
    pd.read_csv(PANEL).set_index(index).to_parquet(path)
    pd.testing.assert_frame_equal(load_panel(path), want)


def _parquet_with_region(path: Path, region: pa.Array) -> Path:
    pq.write_table(
        pa.table(
            {
                "region": region,
                "cluster": ["x", "x"],
                "year": [2010, 2010],
                "employment": [5.0, 6.0],
                "establishments": [1, 1],
            }
        ),
        path,
    )
    return path


def test_parquet_bytes_that_are_not_utf8_are_one_line(tmp_path: Path) -> None:
    region = pa.array([b"A", "Baden-W\u00fcrttemberg".encode("latin-1")], pa.binary())
    path = _parquet_with_region(tmp_path / "p.parquet", region)
    assert str(_error(load_input, path, "panel")) == (
        f"{path}: not a readable Parquet file (column 'region', row 2: bytes that are not "
        "UTF-8 text)"
    )


def test_a_parquet_string_page_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    # What a corrupted page gives: a string column whose bytes pyarrow never checked.
    cells = [b"Baden-W\xfcrttemberg", b"Bayern"]
    offsets = np.cumsum([0, *map(len, cells)]).astype(np.int64)
    region = pa.Array.from_buffers(
        pa.large_string(), 2, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(cells))]
    )
    path = _parquet_with_region(tmp_path / "p.parquet", region)
    assert str(_error(load_input, path, "panel")) == (
        f"{path}: not a readable Parquet file (column 'region': Invalid UTF8 sequence at "
        "string index 0)"
    )


# --- column mappings and empty rows ----------------------------------------------------------


def test_a_contract_column_mapped_twice_is_an_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "p.csv", "region,cluster,year,emp,employment,establishments\nA,x,2010,1,2,3\n"
    )
    err = _error(load_panel, path, columns={"employment": "emp", "Employment": "employment"})
    assert str(err) == (
        f"{path}: column mapping maps 'employment' twice, from 'emp' and from 'employment'; "
        "expected one source per contract column"
    )


def test_employment_cannot_be_declared_absent(tmp_path: Path) -> None:
    err = _error(load_panel, PANEL, columns={"employment": None})
    assert str(err) == f"{PANEL}: column mapping declares 'employment' absent; it is required"


def test_rows_of_empty_cells_are_skipped_like_blank_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "p.csv",
        "region,cluster,year,employment,establishments\nA,x,2010,5,1\n,,,,\nA,x,2011,6,1\n"
        ",,,,\nA,x,x,6,1\n",
    )
    assert read_table(path)["region"].tolist() == ["A", "A", "A"]
    assert str(_error(load_panel, path)) == (
        f"{path}, column 'year', row 3: expected a whole number, found 'x'"
    )


# --- load_relatedness ------------------------------------------------------------------------


def write_pairs(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_load_relatedness_reads_the_cluster_pairs(tmp_path: Path) -> None:
    path = write_pairs(
        tmp_path / "rel.json",
        [
            {"cluster_name": "a", "cluster_name_2": "a", "cr_lc": "0.9", "rel_all_90_v3": "0"},
            {"cluster_name": "a", "cluster_name_2": "b", "cr_lc": "0.4", "rel_all_90_v3": "1"},
            {"cluster_name": "b", "cluster_name_2": "c", "cr_lc": "-0.02", "rel_all_90_v3": "0"},
        ],
    )
    m = load_relatedness(path)
    assert list(m.index) == ["a", "b", "c"] and list(m.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(m.to_numpy(), [[0, 0.4, 0], [0.4, 0, 0], [0, 0, 0]])
    assert load_relatedness(path, "rel_all_90_v3").loc["b", "a"] == 1.0


def test_load_relatedness_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_relatedness(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON list"):
        load_relatedness(bad)
    for records in ([], {"cluster_name": "a"}, [1, 2]):
        path = write_pairs(tmp_path / "list.json", records)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="expected a non-empty JSON list"):
            load_relatedness(path)
    path = write_pairs(tmp_path / "x.json", [{"cluster_name": "a", "cluster_name_2": "b"}])
    with pytest.raises(InputError, match="column 'cr_lc'"):
        load_relatedness(path)
    path = write_pairs(
        tmp_path / "y.json", [{"cluster_name": "a", "cluster_name_2": "b", "cr_lc": "high"}]
    )
    assert str(_error(load_relatedness, path)) == (
        f"{path}, column 'cr_lc', row 1: expected a number, found 'high'"
    )
    with pytest.raises(InputError, match="unknown relatedness measure"):
        load_relatedness(path, "cr_magic")
    # the measure is checked before the file is read
    with pytest.raises(InputError, match="unknown relatedness measure"):
        load_relatedness(tmp_path / "absent.json", "cr_magic")


@pytest.mark.skipif(not RELATED.exists(), reason="../shared/data is not available")
def test_load_relatedness_on_the_us_cluster_mapping_table() -> None:
    m = load_relatedness(RELATED)
    assert m.shape == (51, 51)
    np.testing.assert_allclose(m.to_numpy(), m.to_numpy().T, atol=1e-6)
    assert (np.diag(m.to_numpy()) == 0).all()
    assert (m.to_numpy() >= 0).all()
    records = json.loads(RELATED.read_text(encoding="utf-8"))
    pair = next(r for r in records if r["cluster_name"] != r["cluster_name_2"])
    expected = max(float(pair["cr_lc"]), 0.0)
    assert m.loc[pair["cluster_name"], pair["cluster_name_2"]] == pytest.approx(expected)
