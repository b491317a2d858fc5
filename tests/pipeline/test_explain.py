"""The DVC stage `explain` on a small project built in a temporary folder."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.stages import STAGES
from models.bundle import ModelMeta, StageModel
from models.estimators import StageClassifier
from pipeline import paths
from pipeline.cli import app
from pipeline.explain import explain_from_params, log_to_training_run, write_beeswarms

FEATURES = ["rd_intensity", "entry_rate", "sme_share", "productivity", "lq", "emp_cagr_3y"]
TARGET = "Target"
YEARS = list(range(2010, 2016))


def _project(root, *, synthetic: bool = True) -> None:
    """features, labels, a trained model folder and params.yaml under ``root``."""
    rng = np.random.default_rng(11)
    keys = [
        (region, f"c{c}", year)
        for region in ["A", "B", "C", "D", TARGET]
        for c in range(6)
        for year in YEARS
    ]
    features = pd.DataFrame(keys, columns=["region", "cluster", "year"])
    for f in FEATURES:
        features[f] = rng.normal(size=len(features))
    features.loc[rng.random(len(features)) < 0.05, "productivity"] = np.nan
    score = features["rd_intensity"] + features["entry_rate"] + 0.4 * rng.normal(size=len(keys))
    stage = np.digitize(score, np.quantile(score, [0.2, 0.4, 0.6, 0.8]))
    labels = features[["region", "cluster", "year"]].assign(
        stage=np.asarray(STAGES, dtype=object)[stage], source="expert"
    )
    (root / "data" / "processed").mkdir(parents=True)
    features.to_parquet(root / paths.FEATURES, index=False)
    labels.to_parquet(root / paths.LABELS, index=False)

    train = features["region"] != TARGET
    clf = StageClassifier(tuning_budget=0, calibrate=False, n_estimators=40, n_jobs=1)
    clf.fit(features.loc[train, FEATURES], stage[train], features.loc[train, "region"])
    meta = ModelMeta(
        features=FEATURES,
        classes=[int(c) for c in clf.classes_],
        temperature=1.3,
        synthetic=synthetic,
    )
    StageModel(clf.booster, meta).save(root / paths.MODEL_DIR)
    params = {
        "score": {"region": TARGET},
        "explain": {"top_k": 2, "global_max_rows": 100, "seed": 3, "beeswarm_features": 4},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")


@pytest.fixture
def project(tmp_path, monkeypatch):
    _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_explain_writes_every_output(project, capsys):
    explain_from_params(project / "params.yaml")
    assert "mlflow_run.json not found" in capsys.readouterr().err

    model = StageModel.load(paths.MODEL_DIR)
    features = pd.read_parquet(paths.FEATURES)
    target = features[features["region"] == TARGET].reset_index(drop=True)

    ex = pd.read_parquet(paths.EXPLANATIONS)
    assert len(ex) == len(target) == 6 * len(YEARS)
    assert set(ex["region"]) == {TARGET}
    assert ex["latest"].sum() == 6 and (ex.loc[ex["latest"], "year"] == max(YEARS)).all()
    scored = model.predict_frame(target)
    merged = ex.merge(scored, on=["region", "cluster", "year"], suffixes=("", "_model"))
    assert (merged["stage"] == merged["stage_model"]).all()
    for s in STAGES:
        np.testing.assert_allclose(merged[f"p_{s}"], merged[f"p_{s}_model"])
    # margin = base + contributions, and the margin is the model's for the stage shown
    margins = model.margins(model.matrix(target))
    stage_idx = [model.meta.classes.index(STAGES.index(s)) for s in ex["stage"]]
    np.testing.assert_allclose(ex["margin"], margins[np.arange(len(ex)), stage_idx], atol=1e-5)
    for cell, stage in zip(ex["drivers"], ex["stage"], strict=True):
        drivers = json.loads(cell)
        assert 1 <= len(drivers) <= 2
        assert {d["feature"] for d in drivers} <= set(FEATURES)
        assert all(d["stage"] == stage for d in drivers)
        assert all(d["direction"] in ("towards", "away from") for d in drivers)
        assert all(d["percentile"] is None or 0 <= d["percentile"] <= 100 for d in drivers)
        # told against the runner-up stage too
        assert all(d["runner_up"] in STAGES and d["runner_up"] != stage for d in drivers)
        assert all(isinstance(d["vs_runner_up"], float) for d in drivers)

    lev = pd.read_parquet(paths.LEVERS)
    assert len(lev) == 6 and (lev["year"] == max(YEARS)).all()
    latest = target[target["year"] == max(YEARS)].set_index("cluster")
    for row in lev.itertuples(index=False):
        changes = json.loads(row.changes)
        assert row.n_changes == len(changes)
        if not row.reachable:
            assert row.reason and changes == [] or row.predicted_after != row.target_stage
            continue
        changed = latest.loc[[row.cluster]].reset_index()
        for c in changes:
            assert c["feature"] in ("rd_intensity", "entry_rate", "sme_share", "productivity")
            assert changed.loc[0, c["feature"]] == pytest.approx(c["from"])
            changed[c["feature"]] = c["to"]
            assert 5 <= c["to_percentile"] <= 95
        after = model.predict_frame(changed).iloc[0]
        assert after["stage"] == row.predicted_after
        assert row.predicted_after == row.target_stage
        assert after[f"p_{row.runner_up_after}"] == pytest.approx(row.p_runner_up_after)
        assert row.p_runner_up_after <= row.p_target_after

    importance = pd.read_csv(paths.MEAN_ABS_SHAP)
    assert list(importance.columns) == ["feature", *[STAGES[c] for c in model.meta.classes]]
    assert set(importance["feature"]) == set(FEATURES)
    assert set(importance["feature"].head(2)) == {"rd_intensity", "entry_rate"}
    pngs = sorted(p.name for p in paths.SHAP.glob("*.png"))
    assert pngs == sorted(f"beeswarm_{STAGES[c]}.png" for c in model.meta.classes)


def test_stale_plots_are_removed(project):
    paths.SHAP.mkdir(parents=True)
    (paths.SHAP / "beeswarm_old.png").write_bytes(b"x")
    explain_from_params(project / "params.yaml")
    assert not (paths.SHAP / "beeswarm_old.png").exists()


def test_beeswarms_are_written_one_file_per_stage(tmp_path):
    shap = tmp_path / "shap"
    shap.mkdir()
    (shap / "beeswarm_renewal.png").write_bytes(b"a stage the model no longer has")
    pngs = {"growth": b"\x89PNG growth", "mature": b"\x89PNG mature"}
    written = write_beeswarms(pngs, shap)
    assert sorted(written) == ["growth", "mature"]
    for stage, path in written.items():
        assert path == tmp_path / "shap" / f"beeswarm_{stage}.png"
        assert path.read_bytes() == pngs[stage]
    assert sorted(p.name for p in shap.iterdir()) == ["beeswarm_growth.png", "beeswarm_mature.png"]
    assert not list((tmp_path / "shap").glob(".*"))  # no temporary leftovers


def test_logs_to_the_training_run(project):
    import mlflow
    from mlflow.tracking import MlflowClient

    from pipeline.tracking import use_project_store

    use_project_store()
    with mlflow.start_run() as run:
        pass
    paths.MLFLOW_RUN.parent.mkdir(parents=True, exist_ok=True)
    paths.MLFLOW_RUN.write_text(json.dumps({"run_id": run.info.run_id}), encoding="utf-8")
    explain_from_params(project / "params.yaml")
    client = MlflowClient()
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "explain")}
    assert {"explain/explanations.parquet", "explain/levers.parquet", "explain/shap"} <= logged
    shap_files = {a.path for a in client.list_artifacts(run.info.run_id, "explain/shap")}
    assert "explain/shap/mean_abs_shap.csv" in shap_files
    assert any(p.endswith(".png") for p in shap_files)


def test_bad_run_file_only_warns(project, capsys):
    paths.MLFLOW_RUN.parent.mkdir(parents=True, exist_ok=True)
    paths.MLFLOW_RUN.write_text("not json", encoding="utf-8")
    assert log_to_training_run([paths.MEAN_ABS_SHAP]) is False
    assert "expected JSON with a run_id" in capsys.readouterr().err


def test_cli_unknown_region_is_one_line_exit_2(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["score"]["region"] = "Nowhere"
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    result = CliRunner().invoke(app, ["explain", "--params", "params.yaml"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "no rows for region 'Nowhere'" in result.output
    assert not paths.EXPLANATIONS.exists() and not paths.LEVERS.exists()


def test_cli_without_features_is_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("explain:\n  top_k: 2\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["explain", "--params", "params.yaml"])
    assert result.exit_code == 2
    assert "features not found" in result.output


def test_bad_explain_params_are_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("explain:\n  top_k: 0\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["explain", "--params", "params.yaml"])
    assert result.exit_code == 2
    assert "explain.top_k" in result.output


def _reports() -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under reports/, hidden ones included."""
    return {
        p.as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(paths.REPORTS.rglob("*"))
    }


def _explain_region(project, region: str) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["score"]["region"] = region
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")


@pytest.mark.parametrize(
    "raised", [OSError(errno.ENOSPC, "No space left on device"), SystemExit(143)]
)
def test_a_failed_beeswarm_write_leaves_every_output_as_it_was(project, monkeypatch, raised):
    explain_from_params(project / "params.yaml")
    before = _reports()
    _explain_region(project, "A")  # tables and plots of another region, if they were written
    real = Path.write_bytes

    def refused(self, data):
        # The beeswarm PNGs are the last output written: a full disk, or SIGTERM (pipeline.cli
        # raises SystemExit), while they are.
        if self.name.startswith(".beeswarm_"):
            raise raised
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", refused)
    result = CliRunner().invoke(app, ["explain", "--params", "params.yaml"])
    if isinstance(raised, OSError):
        assert result.exit_code == 2
        assert re.fullmatch(
            r"error: reports/shap/beeswarm_\w+\.png: cannot write: no space left on device\n",
            result.stderr,
        )
    else:
        assert result.exit_code == 143
    assert _reports() == before  # byte for byte, and no temporary left


def test_a_shap_folder_that_cannot_be_replaced_is_refused_before_the_work(
    project, monkeypatch, refuse_new_files
):
    explain_from_params(project / "params.yaml")
    before = _reports()
    _explain_region(project, "A")
    refuse_new_files(paths.SHAP, errno.EPERM)  # `chattr +i reports/shap`
    monkeypatch.setattr("pipeline.explain.explanation_table", lambda *a, **k: pytest.fail("work"))
    result = CliRunner().invoke(app, ["explain", "--params", "params.yaml"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: reports/shap: cannot write: no file can be created in reports/shap "
        "(operation not permitted)\n"
    )
    assert _reports() == before
