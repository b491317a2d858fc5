"""`clusterstage generate`: the files of the reference world, their determinism and contracts."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import pipeline.generate
from features.aggregate import KEYS, firms_to_panel
from features.errors import InputError
from features.reference_world import TARGET_REGION
from features.reference_world.archetypes import NOISE, REGIONS
from features.reference_world.simulate import FIRM_SCHEMA, SUPPRESSED
from features.stages import STAGES
from pipeline.cli import app
from pipeline.generate import generate_world
from pipeline.io import writing

TOTAL = "Insgesamt"
FILES = ("firms.parquet", "panel.parquet", "labels.csv", "target_labels.csv", "world.json")
SCALE = 0.1


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("worlds")
    out = {"a": root / "a", "a_again": root / "a_again" / "nested", "b": root / "b"}
    generate_world(out["a"], seed=11, scale=SCALE)
    generate_world(out["a_again"], seed=11, scale=SCALE)  # parents are created
    generate_world(out["b"], seed=12, scale=SCALE)
    return out


@pytest.fixture(scope="module")
def firms(worlds: dict[str, Path]) -> pd.DataFrame:
    return pd.read_parquet(worlds["a"] / "firms.parquet")


@pytest.fixture(scope="module")
def written(worlds: dict[str, Path]) -> pd.DataFrame:
    return pd.read_parquet(worlds["a"] / "panel.parquet")


@pytest.fixture(scope="module")
def panel(written: pd.DataFrame) -> pd.DataFrame:
    """The regions' rows of the panel (without the national rows)."""
    return written[written["region"] != TOTAL].reset_index(drop=True)


def test_writes_exactly_the_five_files(worlds: dict[str, Path]) -> None:
    assert sorted(p.name for p in worlds["a"].iterdir()) == sorted(FILES)  # no temp files left


def test_same_seed_gives_byte_identical_files(worlds: dict[str, Path]) -> None:
    for name in FILES:
        assert (worlds["a"] / name).read_bytes() == (worlds["a_again"] / name).read_bytes(), name


def test_another_seed_gives_another_world(worlds: dict[str, Path]) -> None:
    for name in ("firms.parquet", "panel.parquet", "labels.csv"):
        assert (worlds["a"] / name).read_bytes() != (worlds["b"] / name).read_bytes(), name


def test_firms_schema_and_values(worlds: dict[str, Path], firms: pd.DataFrame) -> None:
    schema = pq.read_schema(worlds["a"] / "firms.parquet")
    assert schema.remove_metadata().equals(FIRM_SCHEMA)
    assert set(firms["region"]) == {r.name for r in REGIONS}
    assert pd.api.types.is_integer_dtype(firms["employees"]) and (firms["employees"] >= 0).all()
    assert firms["year"].between(2000, 2024).all() and firms["year"].nunique() == 25
    assert not firms.duplicated(["region", "year", "firm_id"]).any()
    assert firms.groupby(["region", "cluster"]).ngroups >= 10 * len(REGIONS)
    assert set(firms.loc[firms["region"] == TARGET_REGION, "cluster"]) >= {
        "Footwear",
        "Apparel",
        "Eyeglasses",
        "Lighters",
        "Low-voltage electrics",
        "Pumps and valves",
        "Auto parts",
    }
    # missing values are real nulls in the file
    assert pq.read_metadata(worlds["a"] / "firms.parquet").num_row_groups >= len(REGIONS)
    assert firms["revenue"].isna().any() and firms["rd_expenditure"].isna().any()


def test_synthetic_metadata(worlds: dict[str, Path]) -> None:
    for name in ("firms.parquet", "panel.parquet"):
        meta = pq.read_schema(worlds["a"] / name).metadata
        assert meta[b"clusterstage.synthetic"] == b"true", name
        assert meta[b"clusterstage.seed"] == b"11"
        assert float(meta[b"clusterstage.scale"]) == SCALE
    info = json.loads((worlds["a"] / "world.json").read_text(encoding="utf-8"))
    assert info["synthetic"] is True and info["seed"] == 11 and info["scale"] == SCALE
    assert info["regions"] == {r.name: r.archetype for r in REGIONS}
    assert info["generator_version"]


def test_world_json_counts_rows(
    worlds: dict[str, Path], firms: pd.DataFrame, written: pd.DataFrame
) -> None:
    rows = json.loads((worlds["a"] / "world.json").read_text(encoding="utf-8"))["rows"]
    labels = pd.read_csv(worlds["a"] / "labels.csv")
    target = pd.read_csv(worlds["a"] / "target_labels.csv")
    assert rows == {
        "firms": len(firms),
        "panel": len(written),
        "national": int((written["region"] == TOTAL).sum()),
        "labels": len(labels),
        "target_labels": len(target),
    }


def test_labels_split_comparative_and_target(worlds: dict[str, Path], panel: pd.DataFrame) -> None:
    labels = pd.read_csv(worlds["a"] / "labels.csv")
    target = pd.read_csv(worlds["a"] / "target_labels.csv")
    for frame in (labels, target):
        assert list(frame.columns) == [*KEYS, "stage", "source", "confidence"]
        assert set(frame["stage"]) <= set(STAGES)
        assert (frame["source"] == "synthetic reference world").all()
        assert (frame["confidence"] == 1.0).all()
        assert not frame.duplicated(KEYS).any()
    assert TARGET_REGION not in set(labels["region"])
    assert set(target["region"]) == {TARGET_REGION}
    assert set(labels["stage"]) == set(STAGES)
    # every panel row has exactly one label, in one of the two files
    both = pd.concat([labels, target])[KEYS]
    keys = panel[KEYS].merge(both, how="outer", indicator=True)
    assert (keys["_merge"] == "both").all()


def test_panel_equals_firms_to_panel_where_not_suppressed(
    firms: pd.DataFrame, panel: pd.DataFrame
) -> None:
    expected = firms_to_panel(firms).sort_values(KEYS, ignore_index=True)
    got = panel.sort_values(KEYS, ignore_index=True)
    assert len(expected) == len(got)
    small = got["establishments"] < NOISE.suppress_below
    assert small.any(), "the test world should contain small cells"
    for col in expected.columns:
        if col in SUPPRESSED:
            pd.testing.assert_series_equal(got.loc[~small, col], expected.loc[~small, col])
            assert got.loc[small, col].isna().all(), col
        else:
            pd.testing.assert_series_equal(got[col], expected[col], check_dtype=False)


def test_national_rows_hold_the_regions_and_more(written: pd.DataFrame) -> None:
    nation = written[written["region"] == TOTAL]
    regions = written[written["region"] != TOTAL]
    by_sector = nation[nation["cluster"] != TOTAL].set_index(["cluster", "year"])["employment"]
    summed = regions.groupby(["cluster", "year"])["employment"].sum()
    # every sector-year of the regions has a national row, larger than the regions' sum
    assert summed.index.isin(by_sector.index).all()
    share = (summed / by_sector.reindex(summed.index)).to_numpy()
    assert (share < 1).all()
    # in a typical year the regions hold a few per cent to a third of a sector's jobs
    typical = pd.Series(share, index=summed.index).groupby(level="cluster").median()
    assert typical.between(0.01, 0.35).all(), typical.to_dict()
    grand = nation[nation["cluster"] == TOTAL].set_index("year")["employment"]
    totals = (
        regions.drop_duplicates(["region", "year"]).groupby("year")["region_employment_total"].sum()
    )
    assert sorted(grand.index) == sorted(totals.index)
    assert (totals / grand.reindex(totals.index)).iloc[0] == pytest.approx(
        NOISE.nation_world_share, rel=1e-4
    )


def test_panel_extras(panel: pd.DataFrame) -> None:
    for col in ("region_employment_total", "institutions", "value_added", "hhi", "gini"):
        assert col in panel.columns, col
    assert (panel["institutions"] >= 0).all()
    va = panel["value_added"] / panel["output"]
    assert va.dropna().between(0.05, 0.9).all()
    assert (panel["value_added"].notna() == panel["output"].notna()).all()
    ry = panel.groupby(["region", "year"]).agg(
        clusters=("employment", "sum"), total=("region_employment_total", "first")
    )
    assert (ry["total"] > ry["clusters"]).all()


def test_bad_arguments_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--scale"):
        generate_world(tmp_path / "w", seed=1, scale=0.0)
    with pytest.raises(InputError, match="--scale"):
        generate_world(tmp_path / "w", seed=1, scale=float("nan"))
    with pytest.raises(InputError, match="--seed"):
        generate_world(tmp_path / "w", seed=-1, scale=1.0)
    assert not (tmp_path / "w").exists()


def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["generate", "--out", str(tmp_path / "w"), "--scale", "-1"])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "error: --scale -1.0: expected a number > 0 and <= 100"
    ]
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    res = runner.invoke(app, ["generate", "--out", str(a_file), "--scale", "0.01"])
    assert res.exit_code == 2
    assert "expected a folder" in res.stderr
    assert a_file.read_text(encoding="utf-8") == "x"


def test_a_total_label_that_names_a_region_or_a_folder_that_takes_no_files_is_one_line(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app, ["generate", "--out", str(tmp_path / "w"), "--total-label", TARGET_REGION]
    )
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: --total-label '{TARGET_REGION}': expected a label that is no region's name\n"
    )
    # /proc takes no new files, even for root: said before the simulation, not as a traceback
    res = runner.invoke(app, ["generate", "--out", "/proc/clusterstage-world", "--scale", "0.01"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: /proc/clusterstage-world/firms.parquet: cannot write: ")
    assert len(res.stderr.splitlines()) == 1
    assert not (tmp_path / "w").exists()


def test_a_failure_after_some_files_are_written_leaves_the_previous_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "w"
    generate_world(out, seed=3, scale=0.02)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = pipeline.generate.write_table

    def full_disk(frame, path, **kwargs):
        if Path(path).name == "target_labels.csv":  # firms and panel are written by now
            with writing(path):  # as write_table says a refused write
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(frame, path, **kwargs)

    monkeypatch.setattr(pipeline.generate, "write_table", full_disk)
    res = CliRunner().invoke(app, ["generate", "--out", str(out), "--seed", "4", "--scale", "0.02"])
    assert res.exit_code == 2
    target = out / "target_labels.csv"
    assert res.stderr == f"error: {target}: cannot write: no space left on device\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nor a temporary left


def test_cli_generates(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["generate", "--out", str(tmp_path / "w"), "--seed", "3", "--scale", "0.02"]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == sorted(FILES)
    stages = pd.read_csv(tmp_path / "w" / "labels.csv")["stage"]
    assert np.isin(stages, STAGES).all()
