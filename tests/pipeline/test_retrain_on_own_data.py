"""The README's retraining path, end to end: a user points params.yaml at their own panel (a small
copy of the real German Länder file), labels it with a rule-based labeller, and runs the pipeline.

Slow (a whole `dvc repro` in a fresh repository); skipped when ../shared is absent.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from models.scoring import change_known

ROOT = Path(__file__).resolve().parents[2]
GERMAN = ROOT.parent / "shared" / "data" / "germany-laender-employment" / "emp_2008_2014.csv"
LAENDER = [
    "Baden-Wuerttemberg",
    "Bayern",
    "Berlin",
    "Brandenburg",
    "Bremen",
    "Hamburg",
    "Hessen",
    "Niedersachsen",
    "Freistaat Sachsen",
    "Thueringen",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not GERMAN.exists(), reason="../shared/data is absent"),
]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, proj / name)
    # the stages depend on the code they run, as in the user's clone
    for package in ("features", "models", "policy", "pipeline"):
        shutil.copytree(
            ROOT / package, proj / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    data = proj / "data" / "raw" / "germany"
    data.mkdir(parents=True)
    frame = pd.read_csv(GERMAN)
    small = frame[frame["region"].isin([*LAENDER, "Insgesamt"])]
    small.to_csv(data / "emp.csv", index=False)

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["generate"]["scale"] = 0.05
    params["data"].update(
        dir="data/raw/germany",
        grain="panel",
        path="data/raw/germany/emp.csv",
        labels=None,
        target_labels=None,
        synthetic=False,
        columns={"cluster": "industry", "employment": "emp", "establishments": None},
    )
    params["labels"]["source"] = "quadrant"
    params["train"].update(
        tuning_budget=0, n_estimators=40, calibrate=False, n_jobs=1, champion_gate=0.0
    )
    params["score"]["region"] = "Freistaat Sachsen"
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        assert run(cmd, proj).returncode == 0
    return proj


def test_retraining_on_the_german_file_with_rule_labels(project: Path):
    first = run([str(Path(sys.executable).parent / "clusterstage"), "run"], project)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert 0.0 <= metrics["model"]["macro_f1"] <= 1.0
    assert set(metrics["baselines"]) == {
        "logistic_regression",
        "random_forest",
        "quadrant",
        "majority",
    }
    held_out = len(pd.read_csv(project / "reports" / "per_region.csv"))
    # Learned from and judged on the rows `score` stages: not the first year (2008), which has
    # no year-on-year change.
    keys = ["region", "cluster", "year"]
    features = pd.read_parquet(project / "data" / "processed" / "features.parquet")
    labels = pd.read_parquet(project / "data" / "processed" / "labels.parquet")
    staged = features[change_known(features)].merge(labels[keys], on=keys)
    assert staged["year"].min() == 2009
    assert metrics["model"]["n"] == int((staged["region"] != "Freistaat Sachsen").sum())
    comparative = int((features["region"] != "Freistaat Sachsen").sum())
    assert metrics["rows"] == {
        "comparative": comparative,
        "first_year": int(
            ((features["region"] != "Freistaat Sachsen") & (features["year"] == 2008)).sum()
        ),
        "unlabelled": 0,
        "used": metrics["model"]["n"],
    }
    # the quadrant baseline applies the rule that made these labels
    assert metrics["labels"] == {"source": "quadrant", "baselines_scored_on_own_rule": ["quadrant"]}
    tuning = pd.read_csv(project / "reports" / "tuning.csv")
    assert tuning.groupby("held_out")["chosen"].sum().eq(1).all()
    assert metrics["tuning"]["folds"] == held_out
    # score ranks drivers among the comparative clusters of each year the model learned from
    by_year = json.loads((project / "data" / "model" / "year_quantiles.json").read_text())
    assert sorted(by_year) == [str(y) for y in range(2009, 2015)]
    for name, baseline in metrics["baselines"].items():
        lead = metrics["lead"][name]
        assert lead["macro_f1"] == pytest.approx(
            metrics["model"]["macro_f1"] - baseline["macro_f1"]
        )
        assert lead["ci_low"] <= lead["ci_high"] and lead["n_boot"] == 1000
        assert lead["regions_won"] + lead["regions_lost"] <= lead["regions"] == held_out
    stages = pd.read_csv(project / "reports" / "target_stages.csv")
    assert set(stages["region"]) == {"Freistaat Sachsen"}
    assert len(stages) == 11 * 7  # every section of every year
    page = (project / "reports" / "Freistaat Sachsen.html").read_text()
    assert "<strong>Real data.</strong>" in page and "Synthetic data." not in page
    assert (project / "mlflow.db").exists()

    second = run([sys.executable, "-m", "dvc", "repro"], project)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout, second.stdout

    # A bad cell: exit 2, the stage's one line and nothing else, and the last good outputs stay.
    panel = project / "data" / "interim" / "panel.parquet"
    before = panel.read_bytes()
    emp = project / "data" / "raw" / "germany" / "emp.csv"
    frame = pd.read_csv(emp)
    frame["emp"] = frame["emp"].astype(object)
    frame.loc[4, "emp"] = "abc"
    frame.to_csv(emp, index=False)
    bad = run([str(Path(sys.executable).parent / "clusterstage"), "run"], project)
    assert bad.returncode == 2, bad.stderr[-3000:]
    errors = [line for line in bad.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "error: data/raw/germany/emp.csv, column 'emp', row 5: expected a number, found 'abc'"
    ]
    assert panel.read_bytes() == before
