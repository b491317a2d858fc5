import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.build import FEATURE_NAMES
from features.catalogue import render_markdown
from pipeline import paths
from pipeline.cli import app
from pipeline.io import write_table

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
GERMAN = DATA / "germany-laender-employment" / "emp_2008_2014.csv"
STATES = DATA / "us-cluster-mapping" / "states_2016.csv"
HAVE_LOADER = importlib.util.find_spec("features.loaders") is not None
needs_loader = pytest.mark.skipif(not HAVE_LOADER, reason="features.loaders is not there yet")

runner = CliRunner()


def small_panel() -> pd.DataFrame:
    rows = [
        (r, c, y, float(10 + i + 3 * j + (y - 2018) * (j + 1)), 2 + i)
        for i, r in enumerate(("North", "South", "East"))
        for j, c in enumerate(("Footwear", "Apparel"))
        for y in (2018, 2019, 2020)
    ]
    return pd.DataFrame(rows, columns=["region", "cluster", "year", "employment", "establishments"])


@needs_loader
def test_features_command_on_a_csv_panel(tmp_path):
    src = tmp_path / "panel.csv"
    small_panel().to_csv(src, index=False)
    before = src.read_bytes()
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["features", str(src), "--grain", "panel", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 18
    assert list(frame.columns[3 : 3 + len(FEATURE_NAMES)]) == list(FEATURE_NAMES)
    assert frame["emp_cagr_1y"].notna().sum() == 12
    assert src.read_bytes() == before


@needs_loader
def test_bad_output_suffix_exits_2_and_writes_nothing(tmp_path):
    src = tmp_path / "panel.csv"
    small_panel().to_csv(src, index=False)
    out = tmp_path / "out.xlsx"
    result = runner.invoke(app, ["features", str(src), "--grain", "panel", "-o", str(out)])
    assert result.exit_code == 2
    assert "out.xlsx: unsupported output suffix" in result.output
    assert not out.exists()
    assert os.listdir(tmp_path) == ["panel.csv"]


@needs_loader
def test_bad_relatedness_file_exits_2_and_writes_nothing(tmp_path):
    src = tmp_path / "panel.csv"
    small_panel().to_csv(src, index=False)
    rel = tmp_path / "rel.json"
    rel.write_text("[]", encoding="utf-8")
    out = tmp_path / "out.parquet"
    args = ["features", str(src), "--grain", "panel", "-o", str(out), "--relatedness", str(rel)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "rel.json: expected a non-empty JSON list" in result.output
    assert not out.exists()


@needs_loader
def test_a_relatedness_table_of_other_cluster_names_exits_2(tmp_path):
    src = tmp_path / "panel.csv"
    small_panel().to_csv(src, index=False)
    rel = tmp_path / "rel.json"
    pairs = [{"cluster_name": "Footwear", "cluster_name_2": "Apparel", "cr_lc": 0.4}]
    rel.write_text(json.dumps(pairs), encoding="utf-8")
    out = tmp_path / "out.parquet"
    args = ["features", str(src), "--grain", "panel", "-o", str(out), "--relatedness", str(rel)]
    assert runner.invoke(app, args).exit_code == 0
    assert pd.read_parquet(out)["relatedness_density"].notna().all()
    pairs[0].update(cluster_name="Footwear and Leather", cluster_name_2="Apparel and Textiles")
    rel.write_text(json.dumps(pairs), encoding="utf-8")
    out.unlink()
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert (
        "rel.json: names none of the input's 2 clusters (such as 'Apparel'); expected a "
        "relatedness table over the same cluster names, or none (co-location)"
    ) in result.output
    assert not out.exists()


@needs_loader
def test_parquet_metadata_is_passed_on(tmp_path):
    src = tmp_path / "panel.parquet"
    write_table(small_panel(), src, metadata={"clusterstage.synthetic": "true"})
    out = tmp_path / "features.parquet"
    result = runner.invoke(app, ["features", str(src), "--grain", "panel", "-o", str(out)])
    assert result.exit_code == 0, result.output
    meta = pq.read_schema(out).metadata
    assert meta[b"clusterstage.synthetic"] == b"true"


@needs_loader
def test_features_from_params_is_the_dvc_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths.INTERIM.mkdir(parents=True)
    write_table(
        small_panel(),
        paths.INGESTED_PANEL,
        metadata={"clusterstage.synthetic": "true", "clusterstage.grain": "panel"},
    )
    Path("params.yaml").write_text("features:\n  relatedness: null\n", encoding="utf-8")
    result = runner.invoke(app, ["build-features", "--params", "params.yaml"])
    assert result.exit_code == 0, result.output
    meta = pq.read_schema(paths.FEATURES).metadata
    assert meta[b"clusterstage.synthetic"] == b"true"
    frame = pd.read_parquet(paths.FEATURES)
    assert frame.shape[0] == 18 and "relatedness_density" in frame


@needs_loader
def test_a_cr_in_a_cluster_name_stays_inside_its_csv_record(tmp_path):
    import csv

    from features.loaders import check_field_counts

    src = tmp_path / "panel.parquet"
    small_panel().replace({"cluster": {"Footwear": "Shoe\rmakers"}}).to_parquet(src, index=False)
    out = tmp_path / "features.csv"
    result = runner.invoke(app, ["features", str(src), "--grain", "panel", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        header, *records = csv.reader(handle)
    assert len(records) == 18 and {len(record) for record in records} == {len(header)}
    check_field_counts(out, ",")
    assert sorted(set(pd.read_csv(out)["cluster"])) == ["Apparel", "Shoe\rmakers"]


@needs_loader
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_full_disk_is_one_line_and_exit_2(tmp_path, monkeypatch, suffix):
    import errno

    src = tmp_path / "panel.csv"
    small_panel().to_csv(src, index=False)
    out = tmp_path / f"features{suffix}"
    out.write_text("the previous features\n", encoding="utf-8")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    writer = "pandas.DataFrame.to_csv" if suffix == ".csv" else "pyarrow.parquet.write_table"
    monkeypatch.setattr(writer, full)
    result = runner.invoke(app, ["features", str(src), "--grain", "panel", "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {out}: cannot write: no space left on device\n"
    assert out.read_text(encoding="utf-8") == "the previous features\n"
    assert sorted(os.listdir(tmp_path)) == [out.name, "panel.csv"]


def test_catalogue_command_writes_the_rendered_markdown(tmp_path):
    out = tmp_path / "docs" / "features.md"
    result = runner.invoke(app, ["catalogue", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render_markdown()


@needs_loader
@pytest.mark.skipif(not GERMAN.exists(), reason="../shared/data is not available")
def test_german_laender_file(tmp_path):
    out = tmp_path / "out.parquet"
    args = [
        "features", str(GERMAN), "--grain", "panel",
        "--column", "cluster=industry", "--column", "employment=emp",
        "--column", "establishments=", "-o", str(out),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    f = pd.read_parquet(out)
    assert len(f) == 16 * 11 * 7
    assert f["lq"].notna().all() and f["relatedness_density"].notna().all()
    assert f["avg_firm_size"].isna().all()  # establishments declared absent
    assert f["emp_cagr_5y"].notna().sum() == 16 * 11 * 2
    # LQ by hand from the file: region totals and national totals are its Insgesamt rows
    raw = pd.read_csv(GERMAN)
    raw["year"] = raw["year"].astype(int)
    row = f.iloc[0]
    r, c, y = row["region"], row["cluster"], int(row["year"])
    year = raw[raw["year"] == y]

    def emp(region: str, industry: str) -> float:
        hit = year[(year["region"] == region) & (year["industry"] == industry)]
        return float(hit["emp"].iloc[0])

    expected = (emp(r, c) / emp(r, "Insgesamt")) / (
        emp("Insgesamt", c) / emp("Insgesamt", "Insgesamt")
    )
    assert row["lq"] == pytest.approx(expected)
    # shift-share adds up to the change in employment
    parts = f["ss_national"] + f["ss_industry_mix"] + f["ss_regional_shift"]
    prev = f[["region", "cluster", "year", "employment"]].assign(year=f["year"] + 1)
    joined = f.merge(prev, on=["region", "cluster", "year"], suffixes=("", "_0"), how="left")
    known = joined["employment_0"].notna().to_numpy()
    np.testing.assert_allclose(
        parts[known], (joined["employment"] - joined["employment_0"])[known], rtol=1e-9
    )


@needs_loader
@pytest.mark.skipif(not STATES.exists(), reason="../shared/data is not available")
def test_us_cluster_mapping_states_file(tmp_path):
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["features", str(STATES), "--grain", "cmp", "-o", str(out)])
    assert result.exit_code == 0, result.output
    f = pd.read_parquet(out)
    assert len(f) == 3350
    traded = f["traded"].to_numpy(dtype=bool)
    raw = pd.read_csv(STATES, usecols=["lq_tf"])
    np.testing.assert_allclose(np.sort(f["lq"]), np.sort(raw["lq_tf"]))  # published LQ kept
    # related_clusters.json beside the export: density for the 51 traded clusters only
    assert f.loc[traded, "relatedness_density"].notna().all()
    assert f.loc[~traded, "relatedness_density"].isna().all()
    assert f["n_missing_features"].min() >= 20  # one year: no growth, no microdata
    if "cmp_strong" in f.columns:
        same = f.loc[traded, "cmp_strong"] == f.loc[traded, "published_strong"]
        assert same.all()
