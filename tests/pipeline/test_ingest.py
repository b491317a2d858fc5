"""The DVC stage `ingest`: params -> validated panel and labels in data/interim."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from features.errors import InputError
from features.loaders import national_totals
from pipeline import paths
from pipeline.cli import app
from pipeline.ingest import ingest_from_params

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
GERMANY = SHARED / "germany-laender-employment" / "emp_2008_2014.csv"
STATES = SHARED / "us-cluster-mapping" / "states_2016.csv"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root (the cwd) with the small fixtures copied into data/raw/in."""
    monkeypatch.chdir(tmp_path)
    inputs = tmp_path / "data" / "raw" / "in"
    inputs.mkdir(parents=True)
    for name in ("panel_small.csv", "firms_small.csv", "labels_small.csv"):
        shutil.copy(FIXTURES / name, inputs / name)
    return tmp_path


def _params(root: Path, **data: object) -> Path:
    section = {
        "dir": "data/raw/in",
        "grain": "panel",
        "path": "data/raw/in/panel_small.csv",
        "labels": None,
        "target_labels": None,
        "synthetic": False,
        **data,
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump({"data": section}), encoding="utf-8")
    return path


OUTPUTS = (paths.INGESTED_PANEL, paths.INGESTED_LABELS, paths.INGESTED_TARGET_LABELS)


def test_ingest_writes_panel_labels_and_metadata(project: Path) -> None:
    ingest_from_params(
        _params(
            project,
            labels="data/raw/in/labels_small.csv",
            target_labels="data/raw/in/labels_small.csv",
        )
    )
    panel = pd.read_parquet(paths.INGESTED_PANEL)
    assert len(panel) == 8 and panel["establishments"].dtype == "int64"
    meta = pq.read_schema(paths.INGESTED_PANEL).metadata
    assert meta[b"clusterstage.synthetic"] == b"false"
    assert meta[b"clusterstage.grain"] == b"panel"
    labels = pd.read_parquet(paths.INGESTED_LABELS)
    assert labels[["region", "stage"]].values.tolist() == [
        ["North", "mature"],
        ["South", "emerging"],
    ]
    pd.testing.assert_frame_equal(labels, pd.read_parquet(paths.INGESTED_TARGET_LABELS))
    leftovers = [p.name for p in paths.INTERIM.iterdir()]
    assert sorted(leftovers) == ["labels.parquet", "panel.parquet", "target_labels.parquet"]


def test_ingest_without_labels_writes_empty_label_files(project: Path) -> None:
    ingest_from_params(
        _params(project, synthetic=True, grain="firms", path="data/raw/in/firms_small.csv")
    )
    assert pq.read_schema(paths.INGESTED_PANEL).metadata[b"clusterstage.synthetic"] == b"true"
    for target in (paths.INGESTED_LABELS, paths.INGESTED_TARGET_LABELS):
        labels = pd.read_parquet(target)
        assert labels.empty
        assert list(labels.columns) == [
            "region",
            "cluster",
            "year",
            "stage",
            "source",
            "confidence",
        ]


def test_labels_outside_the_panel_fail_and_nothing_is_written(project: Path) -> None:
    labels = project / "data" / "raw" / "in" / "labels_small.csv"
    labels.write_text(
        "region,cluster,year,stage\nNorth,Footwear,2020,mature\nNorth,Footwear,2031,decline\n"
    )
    params = _params(project, labels="data/raw/in/labels_small.csv")
    with pytest.raises(InputError) as err:
        ingest_from_params(params)
    assert str(err.value) == (
        "data/raw/in/labels_small.csv, row 2: label for region 'North', cluster 'Footwear', "
        "year 2031 matches no row of the input; expected labels only for region × cluster × "
        "year rows of the panel"
    )
    assert not any(p.exists() for p in OUTPUTS)


def test_a_failed_ingest_leaves_earlier_outputs_untouched(project: Path) -> None:
    ingest_from_params(_params(project))
    before = {p: p.read_bytes() for p in OUTPUTS}
    bad = project / "data" / "raw" / "in" / "bad.csv"
    bad.write_text("region,cluster,year,employment,establishments\nA,x,2010,-1,1\n")
    with pytest.raises(InputError):
        ingest_from_params(_params(project, path="data/raw/in/bad.csv"))
    assert {p: p.read_bytes() for p in OUTPUTS} == before
    assert sorted(p.name for p in paths.INTERIM.iterdir()) == sorted(p.name for p in OUTPUTS)


@pytest.mark.skipif(not GERMANY.exists(), reason="../shared/data is not present")
def test_ingest_the_german_file_keeps_national_totals(project: Path) -> None:
    params = _params(
        project,
        dir=str(GERMANY.parent),
        path=str(GERMANY),
        columns={"cluster": "industry", "employment": "emp", "establishments": None},
    )
    before = GERMANY.stat().st_mtime_ns
    ingest_from_params(params)
    panel = pd.read_parquet(paths.INGESTED_PANEL)
    assert len(panel) == 1232 and panel["region_employment_total"].notna().all()
    national = national_totals(panel)
    assert national is not None and len(national) == 77
    assert GERMANY.stat().st_mtime_ns == before


@pytest.mark.skipif(not STATES.exists(), reason="../shared/data is not present")
def test_ingest_a_cluster_mapping_export(project: Path) -> None:
    ingest_from_params(_params(project, dir=str(STATES.parent), path=str(STATES), grain="cmp"))
    panel = pd.read_parquet(paths.INGESTED_PANEL)
    assert len(panel) == 3350 and panel["suppressed"].sum() == 204
    assert pq.read_schema(paths.INGESTED_PANEL).metadata[b"clusterstage.grain"] == b"cmp"


def _interim() -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under data/interim, hidden ones included."""
    return {
        p.as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(paths.INTERIM.rglob("*"))
    }


def test_an_unwritable_interim_folder_is_one_line_before_the_work(
    project: Path, monkeypatch: pytest.MonkeyPatch, refuse_new_files
) -> None:
    _params(project)
    paths.INTERIM.mkdir(parents=True)
    refuse_new_files(paths.INTERIM)
    monkeypatch.setattr("pipeline.ingest._ingest", lambda *a: pytest.fail("read the input"))
    result = CliRunner().invoke(app, ["ingest", "--params", "params.yaml"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: data/interim/panel.parquet: cannot write: no file can be created in "
        "data/interim (permission denied)\n"
    )
    assert _interim() == {}


def test_a_refused_write_of_the_last_output_leaves_every_output_as_it_was(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_from_params(_params(project))
    before = _interim()
    _params(project, labels="data/raw/in/labels_small.csv")
    real = pq.write_table
    calls: list[object] = []

    def refused(table, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == len(OUTPUTS):  # target_labels.parquet, written last
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", refused)
    result = CliRunner().invoke(app, ["ingest", "--params", "params.yaml"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: data/interim/target_labels.parquet: cannot write: no space left on device\n"
    )
    assert len(calls) == len(OUTPUTS)
    assert _interim() == before  # byte for byte, and no temporary left
