"""The registry gate on a real SQLite store: `champion` moves only by the rule."""

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

    from pipeline.score import log_model
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

    first = register_and_gate(logged_model_uri, 0.7891234567, gate=0.5)
    assert first["champion_moved"] == "true" and champion_version() == "1"
    # an equally good model moves the alias: "at least the champion's"
    same = register_and_gate(logged_model_uri, 0.7891234567, gate=0.5)
    assert same["champion_moved"] == "true" and champion_version() == "2"
    worse = register_and_gate(logged_model_uri, 0.78912, gate=0.5)
    assert worse["champion_moved"] == "false" and champion_version() == "2"
    assert "below the champion's" in worse["champion_reason"]
    below_gate = register_and_gate(logged_model_uri, 0.9, gate=0.95)
    assert below_gate["champion_moved"] == "false" and champion_version() == "2"
