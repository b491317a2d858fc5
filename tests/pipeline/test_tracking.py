"""The registry gate on a real SQLite store: `champion` moves only by the rule."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.bundle import ModelMeta, StageModel
from models.estimators import StageClassifier
from pipeline import paths


@pytest.fixture
def logged_model_uri(tmp_path, monkeypatch):
    import mlflow

    from pipeline.model_logging import log_model
    from pipeline.tracking import use_project_store

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"lq": rng.normal(size=90), "sme_share": rng.random(90)})
    y = np.repeat([0, 1, 2], 30)
    clf = StageClassifier(n_estimators=5, calibrate=False).fit(X, y, np.arange(90) % 3)
    StageModel(clf.booster, ModelMeta(features=list(X.columns), classes=[0, 1, 2])).save(
        tmp_path / "model"
    )
    use_project_store()
    with mlflow.start_run():
        return log_model(tmp_path / "model").model_uri


def champion_version() -> str:
    client = MlflowClient()
    return str(client.get_model_version_by_alias(paths.REGISTERED_MODEL, "champion").version)


def test_champion_moves_only_when_the_gate_allows(logged_model_uri):
    from pipeline.tracking import register_and_gate

    first = register_and_gate(logged_model_uri, 0.7891234567, gate=0.5, data_hash="h1")
    assert first["champion_moved"] is True and champion_version() == "1"
    # an equally good model moves the alias: "at least the champion's"
    same = register_and_gate(logged_model_uri, 0.7891234567, gate=0.5, data_hash="h1")
    assert same["champion_moved"] is True and champion_version() == "2"
    worse = register_and_gate(logged_model_uri, 0.78912, gate=0.5, data_hash="h1")
    assert worse["champion_moved"] is False and champion_version() == "2"
    assert "below the champion's" in worse["champion_reason"]
    below_gate = register_and_gate(logged_model_uri, 0.9, gate=0.95, data_hash="h1")
    assert below_gate["champion_moved"] is False and champion_version() == "2"


def test_a_champion_of_other_labelled_rows_keeps_the_alias(logged_model_uri):
    from pipeline.tracking import register_and_gate

    register_and_gate(logged_model_uri, 0.83, gate=0.5, data_hash="synthetic")
    own = register_and_gate(
        logged_model_uri, 0.99, gate=0.5, data_hash="german", tags={"label_source": "quadrant"}
    )
    assert own["champion_moved"] is False and champion_version() == "1"
    assert own["champion_reason"].endswith(
        "the champion stays; score with this version by naming it: --model models:/clusterstage/2"
    )
    assert own["cv_data_hash"] == "german"
    version = MlflowClient().get_model_version(paths.REGISTERED_MODEL, "2")
    assert version.tags["cv_data_hash"] == "german" and version.tags["cv_macro_f1"] == "0.99"
    assert version.tags["label_source"] == "quadrant"


def test_the_record_is_json_with_a_real_boolean_and_tags_in_lower_case():
    from pipeline.tracking import run_tags

    record = {"registered_version": "3", "champion_moved": False, "champion_reason": "r"}
    assert json.loads(json.dumps(record))["champion_moved"] is False
    assert run_tags(record) == {
        "registered_version": "3",
        "champion_moved": "false",
        "champion_reason": "r",
    }


def test_labelled_rows_hash_is_the_rows_and_stages_not_their_order():
    from pipeline.tracking import labelled_rows_hash

    keys = pd.DataFrame({"region": ["a", "a", "b"], "cluster": ["x", "y", "x"], "year": [1, 1, 2]})
    y = np.array([0, 2, 3])
    base = labelled_rows_hash(keys, y)
    assert labelled_rows_hash(keys.iloc[::-1], y[::-1]) == base
    assert labelled_rows_hash(keys, np.array([0, 2, 4])) != base  # other labels
    assert labelled_rows_hash(keys.iloc[:2], y[:2]) != base  # other rows


def test_a_dvc_experiment_is_named_on_the_run(monkeypatch):
    from pipeline.tracking import dvc_experiment

    monkeypatch.setenv("DVC_EXP_NAME", "funny-dado")
    assert dvc_experiment() == {"dvc_experiment": "funny-dado"}
    monkeypatch.delenv("DVC_EXP_NAME")
    assert dvc_experiment() == {}
