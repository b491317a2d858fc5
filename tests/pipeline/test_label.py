"""The DVC stage `label`: features (+ expert labels) -> training labels and labeller agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from features.errors import InputError
from pipeline import paths
from pipeline.cli import app
from pipeline.label import AGREEMENT_REPORT, label_from_params
from pipeline.params import ParamsError

# (employment growth, entry rate, productivity growth) per year of each textbook history.
PROFILES = {
    "emerging": (0.20, 0.35, 0.02),
    "growth": (0.08, 0.15, 0.02),
    "mature": (0.00, 0.05, 0.02),
    "decline": (-0.10, 0.02, -0.02),
    "renewal": (-0.02, 0.10, 0.08),
}
LQ = {"emerging": 0.5, "growth": 1.6, "mature": 2.0, "decline": 1.4, "renewal": 1.2}


def _features(years: int = 5) -> pd.DataFrame:
    frames = []
    for stage, (g, entry, prod) in PROFILES.items():
        t = np.arange(years)
        frames.append(
            pd.DataFrame(
                {
                    "region": "Testshire",
                    "cluster": stage.title(),
                    "year": 2010 + t,
                    "employment": 1000.0 * np.exp(g * t),
                    "entry_rate": np.where(t == 0, np.nan, entry),
                    "productivity": 40_000.0 * np.exp(prod * t),
                    "patents_per_10k": 5.0,
                    "lq": LQ[stage],
                    "growth_vs_national_3y": np.where(t == 0, np.nan, g),
                    "emp_cagr_3y": np.where(t == 0, np.nan, g),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _truth(features: pd.DataFrame) -> pd.DataFrame:
    truth = features[["region", "cluster", "year"]].copy()
    truth["stage"] = truth["cluster"].str.lower()
    truth["source"] = "synthetic reference world"
    truth["confidence"] = 1.0
    return truth


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    features = _features()
    paths.FEATURES.parent.mkdir(parents=True)
    table = pa.Table.from_pandas(features, preserve_index=False)
    meta = {**(table.schema.metadata or {}), b"clusterstage.synthetic": b"true"}
    pq.write_table(table.replace_schema_metadata(meta), paths.FEATURES)
    paths.INGESTED_LABELS.parent.mkdir(parents=True)
    _truth(features).to_parquet(paths.INGESTED_LABELS)
    return tmp_path


def _params(root: Path, source: str, **extra: object) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump({"labels": {"source": source, **extra}}), encoding="utf-8")
    return path


def _report() -> dict:
    return json.loads(AGREEMENT_REPORT.read_text(encoding="utf-8"))


def test_expert_labels_pass_through_with_agreement_report(project: Path) -> None:
    label_from_params(_params(project, "expert"))
    labels = pd.read_parquet(paths.LABELS)
    assert list(labels.columns) == ["region", "cluster", "year", "stage", "source"]
    assert len(labels) == 25
    assert set(labels["source"]) == {"synthetic reference world"}
    assert (labels["stage"] == labels["cluster"].str.lower()).all()

    report = _report()
    assert set(report) == {"quadrant", "trajectory"}
    # The textbook histories are what the trajectory rules describe.
    assert report["trajectory"]["accuracy"] == 1.0
    assert report["trajectory"]["n"] == 25 and report["trajectory"]["coverage"] == 1.0
    # The quadrant cannot see renewal and calls a shrinking specialised cluster decline.
    assert report["quadrant"]["recall"]["renewal"] == 0.0
    assert report["quadrant"]["n"] == 20  # the first year has no growth rate
    assert report["quadrant"]["confusion"]["stages"][4] == "renewal"
    # the synthetic mark of the features travels with the labels
    assert pq.read_schema(paths.LABELS).metadata[b"clusterstage.synthetic"] == b"true"


def test_quadrant_source_uses_params_thresholds(project: Path) -> None:
    label_from_params(_params(project, "quadrant"))
    labels = pd.read_parquet(paths.LABELS)
    assert set(labels["source"]) == {"quadrant"}
    stage = labels.groupby("cluster")["stage"].agg(set).to_dict()
    assert stage["Growth"] == {"growth"} and stage["Emerging"] == {"emerging"}
    assert stage["Mature"] == {"mature"} and stage["Renewal"] == {"mature"}

    label_from_params(_params(project, "quadrant", quadrant={"lq_split": 1.5}))
    stage = pd.read_parquet(paths.LABELS).groupby("cluster")["stage"].agg(set).to_dict()
    assert stage["Renewal"] == {"decline"}  # LQ 1.2 is no longer specialised


def test_trajectory_source_without_expert_labels(project: Path) -> None:
    pd.read_parquet(paths.INGESTED_LABELS).iloc[:0].to_parquet(paths.INGESTED_LABELS)
    label_from_params(_params(project, "trajectory"))
    labels = pd.read_parquet(paths.LABELS)
    assert set(labels["source"]) == {"trajectory"}
    assert (labels["stage"] == labels["cluster"].str.lower()).all()
    assert _report() == {"quadrant": None, "trajectory": None}


def test_trajectory_thresholds_come_from_params(project: Path) -> None:
    label_from_params(_params(project, "trajectory", trajectory={"growth_entry_min": 0.5}))
    labels = pd.read_parquet(paths.LABELS)
    assert set(labels.loc[labels["cluster"] == "Growth", "stage"]) == {"mature"}


def test_a_labeller_without_its_features_is_left_out_of_the_report(project: Path) -> None:
    pd.read_parquet(paths.FEATURES).drop(columns="lq").to_parquet(paths.FEATURES)
    label_from_params(_params(project, "trajectory"))
    report = _report()
    assert report["quadrant"] is None and report["trajectory"]["accuracy"] == 1.0
    with pytest.raises(InputError, match="lq"):
        label_from_params(_params(project, "quadrant"))


def test_expert_source_without_labels_is_a_clear_error(project: Path) -> None:
    paths.INGESTED_LABELS.unlink()
    with pytest.raises(InputError, match="no expert labels"):
        label_from_params(_params(project, "expert"))
    assert not paths.LABELS.exists() and not AGREEMENT_REPORT.exists()


def test_cli_exit_2_on_bad_labels_and_leaves_no_output(project: Path) -> None:
    truth = pd.read_parquet(paths.INGESTED_LABELS)
    truth.loc[3, "stage"] = "booming"
    truth.to_parquet(paths.INGESTED_LABELS)
    result = CliRunner().invoke(app, ["label", "--params", str(_params(project, "quadrant"))])
    assert result.exit_code == 2
    assert "column 'stage', row 4" in result.output and "'booming'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not paths.LABELS.exists() and not AGREEMENT_REPORT.exists()


@pytest.mark.parametrize(
    ("source", "needs"),
    [
        (
            "quadrant",
            "lq and a growth rate (growth_vs_national_3y, regional_shift_rate, emp_cagr_3y)",
        ),
        ("trajectory", "employment growth over a window of 3 years"),
    ],
)
def test_a_rule_that_labels_nothing_says_why_here_not_in_train(
    project: Path, source: str, needs: str
) -> None:
    # one year of data, as in a US Cluster Mapping export: no growth, so no rule label
    one_year = pd.read_parquet(paths.FEATURES).query("year == 2010")
    one_year.to_parquet(paths.FEATURES)
    result = CliRunner().invoke(app, ["label", "--params", str(_params(project, source))])
    assert result.exit_code == 2
    assert result.output == (
        f"error: {paths.FEATURES}: the {source} labeller labelled none of the 5 rows: none has "
        f"{needs} known; growth needs earlier years, and these data hold one year\n"
    )
    assert not paths.LABELS.exists() and not AGREEMENT_REPORT.exists()


def test_missing_features_and_bad_params(project: Path) -> None:
    with pytest.raises(ParamsError, match="labels.source"):
        label_from_params(_params(project, "oracle"))
    with pytest.raises(ParamsError, match="odd number"):
        label_from_params(_params(project, "trajectory", trajectory={"window": 2}))
    paths.FEATURES.unlink()
    with pytest.raises(InputError, match="features not found"):
        label_from_params(_params(project, "quadrant"))
