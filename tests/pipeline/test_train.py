import numpy as np
import pandas as pd

from features.stages import STAGE_ID
from models.estimators import StageClassifier
from pipeline.params import QuadrantParams, TrainParams
from pipeline.train import model_factories, quadrant_rule, stage_classifier


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lq": [1.5, 0.5, 1.5, 1.5, np.nan],
            "growth_vs_national_3y": [0.04, 0.04, -0.01, -0.05, 0.02],
        }
    )


def test_quadrant_rule_with_the_default_thresholds():
    stages = quadrant_rule(frame())
    expected = ["growth", "emerging", "mature", "decline", "mature"]  # unplaced: mature
    assert stages.tolist() == [STAGE_ID[s] for s in expected]


def test_quadrant_baseline_follows_labels_quadrant_of_params():
    strict = QuadrantParams(lq_split=2.0, growth_split=0.03, decline_threshold=0.0)
    baseline = model_factories(TrainParams(), strict)["quadrant"]().fit(frame(), np.zeros(5))
    # LQ 1.5 is no longer specialised; growth 0.04 still counts, 0.02 and below do not
    expected = ["emerging", "emerging", "decline", "decline", "mature"]
    assert baseline.predict(frame()).tolist() == [STAGE_ID[s] for s in expected]


def _staged(seed: int = 3, n: int = 240) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(3), n // 3)
    X = pd.DataFrame(
        {
            "signal": y + rng.normal(0, 0.6, n),
            "lq": rng.uniform(0.5, 1.5, n),  # the quadrant baseline's two inputs
            "growth_vs_national_3y": rng.normal(0, 0.05, n),
        }
    )
    return X, y, np.repeat([f"r{i}" for i in range(4)], n // 4)


def test_the_tuning_table_names_every_setting_tried_and_the_winner():
    from models.cv import leave_one_region_out
    from models.estimators import StageClassifier
    from pipeline.train import tuning_summary, tuning_table

    X, y, regions = _staged()

    def make():
        return StageClassifier(n_estimators=2, max_depth=1, tuning_budget=2, inner_folds=2, seed=1)

    results = leave_one_region_out(X, y, regions, {"xgboost": make}, refit="xgboost")
    final = results["xgboost"].refitted
    table = tuning_table(results["xgboost"], final)
    assert table["held_out"].unique().tolist() == ["r0", "r1", "r2", "r3", "(final)"]
    assert table.groupby("held_out")["candidate"].apply(list).map(len).eq(3).all()
    assert table.groupby("held_out")["chosen"].sum().eq(1).all()
    # candidate 0 is params.yaml's setting; the winner has the best inner macro-F1
    first = table[table["candidate"] == 0]
    assert (first["n_estimators"] == 2).all() and (first["max_depth"] == 1).all()
    for _, fit in table.groupby("held_out"):
        best = fit.loc[fit["chosen"], "inner_macro_f1"].iloc[0]
        assert best == fit["inner_macro_f1"].max()
    won = table[(table["held_out"] == "(final)") & table["chosen"]].iloc[0]
    assert final.best_params_["n_estimators"] == won["n_estimators"]
    summary = tuning_summary(table, final)
    assert summary["final"]["n_estimators"] == float(won["n_estimators"])
    assert summary["final_is_configured"] == (won["candidate"] == 0)
    folds = table[(table["held_out"] != "(final)") & table["chosen"]]
    assert summary["folds_configured_won"] == int((folds["candidate"] == 0).sum())
    assert summary["folds"] == 4


def test_tuning_final_keeps_whole_number_settings_whole():
    import json
    from types import SimpleNamespace

    from pipeline.train import tuning_summary

    table = pd.DataFrame(
        {"held_out": ["r0", "(final)"], "candidate": [0, 1], "chosen": [True, True]}
    )
    best = {
        "max_depth": np.int64(6),  # as a draw of the search gives it
        "n_estimators": 200,  # as params.yaml gives it
        "learning_rate": np.float64(0.08),
        "min_child_weight": 1.0,
    }
    summary = tuning_summary(table, SimpleNamespace(best_params_=best))
    assert json.dumps(summary["final"]) == (
        '{"max_depth": 6, "n_estimators": 200, "learning_rate": 0.08, "min_child_weight": 1.0}'
    )
    assert summary["final_is_configured"] is False and summary["folds_configured_won"] == 1


def test_metrics_hold_per_region_scores_and_confusion_for_every_model():
    from models.cv import leave_one_region_out
    from pipeline.train import MAIN, _flat_metrics, summarise

    X, y, regions = _staged()
    factories = model_factories(TrainParams(n_estimators=5, tuning_budget=0, calibrate=False))
    results = leave_one_region_out(X, y, regions, factories)
    metrics = summarise(results, y, regions)
    for name, scored in {MAIN: metrics["model"], **metrics["baselines"]}.items():
        assert set(scored["per_region"]) == {"r0", "r1", "r2", "r3"}, name
        assert sum(r["n"] for r in scored["per_region"].values()) == len(y)
        pred = results[name].proba.argmax(axis=1)
        r1 = regions == "r1"
        assert scored["per_region"]["r1"]["accuracy"] == float(np.mean(pred[r1] == y[r1]))
        assert scored["confusion"]["growth"]["growth"] == int(((y == 1) & (pred == 1)).sum())
        eces = [r["ece"] for r in scored["per_region"].values()]
        assert scored["ece_region_max"] == max(eces)
    # the rule and nothing else is certain of every answer: its log loss is not a number
    assert metrics["baselines"]["quadrant"]["log_loss"] is None
    assert metrics["model"]["log_loss"] > 0
    flat = _flat_metrics(metrics)
    assert "model.macro_f1" in flat and "model.ece_region_mean" in flat
    assert not any("per_region" in k or "confusion" in k for k in flat)


def test_calibration_summary_leaves_the_estimators_record_alone():
    from types import SimpleNamespace

    from pipeline.train import calibration_summary

    record = {"ece_raw": 0.05, "ece_scaled": 0.04, "temperature": 1.3}
    final = SimpleNamespace(calibration_=record, temperature_=1.3)
    assert calibration_summary(final) == {**record, "applied": True}
    assert final.calibration_ == {"ece_raw": 0.05, "ece_scaled": 0.04, "temperature": 1.3}
    kept_raw = SimpleNamespace(calibration_=dict(record), temperature_=1.0)
    assert calibration_summary(kept_raw)["applied"] is False
    assert "applied" not in kept_raw.calibration_
    assert calibration_summary(SimpleNamespace(temperature_=1.0)) == {"applied": False}


def test_params_defaults_build_the_libraries_default_classifier():
    # params.yaml's train section and StageClassifier() must mean the same model: a notebook user
    # and `clusterstage train` with an empty train section fit the same booster.
    built = stage_classifier(TrainParams()).get_params()
    assert built == StageClassifier().get_params()
    assert built["max_bin"] == 32 and built["n_estimators"] == 200 and built["seed"] == 7


def _tree(root) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``, hidden ones included."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def test_a_refused_model_write_leaves_every_train_output_as_it_was(tmp_path, monkeypatch):
    import errno

    import yaml
    from typer.testing import CliRunner

    from models.bundle import StageModel
    from pipeline import paths
    from pipeline.cli import app
    from pipeline.train import REPORT_FILES
    from tests.pipeline.test_explain import FEATURES, _project

    _project(tmp_path)  # features, labels and an earlier model folder
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load(paths.PARAMS.read_text())
    params["train"] = {
        "n_estimators": 5,
        "tuning_budget": 0,
        "calibrate": False,
        "bootstrap": 0,
        "n_jobs": 1,
        "features": FEATURES,
    }
    paths.PARAMS.write_text(yaml.safe_dump(params), encoding="utf-8")
    paths.INTERIM.mkdir(parents=True)
    pd.DataFrame({"region": [], "cluster": [], "year": [], "stage": []}).to_parquet(
        paths.INGESTED_TARGET_LABELS
    )
    for path in [*REPORT_FILES, paths.MLFLOW_RUN]:  # an earlier run's reports
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"earlier {path.name}\n", encoding="utf-8")
    before = _tree(tmp_path)

    def refused(self, folder):
        # The model folder is written last: every report is written by then, to its temporary.
        staged = [next(p.parent.glob(f".{p.name}.*.tmp/{p.name}"), None) for p in REPORT_FILES]
        assert all(staged), staged
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(StageModel, "save", refused)
    result = CliRunner().invoke(app, ["train", "--params", "params.yaml"])
    assert result.exit_code == 2, result.output
    assert result.stderr == "error: data/model: cannot write: no space left on device\n"
    assert _tree(tmp_path) == before  # byte for byte, no temporary left, no MLflow run
