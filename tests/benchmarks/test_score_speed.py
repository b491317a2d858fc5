import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml

import benchmarks.score_speed as score_speed
from models.bundle import ModelMeta, StageModel

ROOT = Path(__file__).resolve().parents[2]


def tiny_model(features: list[str], seed: int = 0) -> StageModel:
    """A five-stage softprob booster on random rows (a few trees: cheap, but every stage has
    its own trees, as in the real model)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(250, len(features)))
    y = np.tile(np.arange(5), 50)
    X[:, 0] += y  # a readable signal, so the argmax differs from row to row
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 5, "max_depth": 3, "nthread": 1},
        xgb.DMatrix(X, label=y, feature_names=features),
        num_boost_round=6,
    )
    return StageModel(booster, ModelMeta(features=features, classes=[0, 1, 2, 3, 4]))


def test_the_like_for_like_reference_does_the_model_work_score_does():
    """Stage = argmax margin, and the contributions of that stage only (bias last)."""
    model = tiny_model(["a", "b", "c"])
    matrix = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    matrix[:, 0] = np.linspace(-1, 6, 40)
    matrix[3, 1] = np.nan
    _, _, stages, contributions = score_speed.one_stage_reference(matrix, model, nthread=1)

    dm = xgb.DMatrix(matrix, missing=np.nan, feature_names=["a", "b", "c"])
    margin = model.booster.predict(dm, output_margin=True)
    full = model.booster.predict(dm, pred_contribs=True)
    assert len(np.unique(stages)) > 1
    np.testing.assert_array_equal(stages, margin.argmax(axis=1))
    assert contributions.shape == (40, 4)
    np.testing.assert_allclose(contributions, full[np.arange(40), stages], atol=1e-5)


def test_the_all_stage_reference_computes_every_stage():
    model = tiny_model(["a", "b"])
    matrix = np.random.default_rng(2).normal(size=(10, 2)).astype(np.float32)
    _, contributions = score_speed.all_stage_reference(matrix, model, nthread=1)
    assert contributions.shape == (10, 5, 3)


def test_the_fallback_model_takes_its_size_from_params_yaml(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["train"].update(n_estimators=37, max_depth=3, learning_rate=0.2, seed=11)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw), encoding="utf-8")
    clf = score_speed.default_classifier(params, nthread=2)
    assert (clf.n_estimators, clf.max_depth, clf.learning_rate, clf.seed) == (37, 3, 0.2, 11)
    assert (clf.tuning_budget, clf.calibrate, clf.n_jobs) == (0, False, 2)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_child_reports_its_own_peak_memory_not_its_parents(tmp_path):
    """ru_maxrss of a child starts from the parent's peak; the child must report its own."""
    model_dir = tmp_path / "model"
    tiny_model(["lq", "emp_cagr_3y"]).save(model_dir)
    panel = tmp_path / "panel.csv"
    shutil.copy(ROOT / "tests" / "fixtures" / "panel_small.csv", panel)
    # 600 MiB resident in this (the parent) process, on top of pytest's own; a child scoring
    # a small file peaks near 270 MiB of its own
    ballast = np.ones(600 * 2**20 // 8)
    got = score_speed.run_child(panel, model_dir, tmp_path / "scores.parquet", nthread=1)
    assert ballast.sum() > 0
    assert got["scored"] > 0
    assert 0 < got["peak_mib"] < 550


def test_tiling_keeps_the_nation_once_and_renames_the_regions():
    panel = pd.DataFrame(
        {
            "region": ["A", "A", "B", "Insgesamt", "Insgesamt"],
            "cluster": ["Shoes", "Shoes", "Shoes", "Shoes", "Insgesamt"],
            "year": [2020, 2021, 2020, 2020, 2020],
        }
    )
    out = score_speed.tiled(panel, 8)
    assert list(out["region"]) == [
        "Insgesamt",
        "Insgesamt",
        "A #00000",
        "A #00000",
        "B #00000",
        "A #00001",
        "A #00001",
        "B #00001",
    ]
    assert list(out["cluster"][:2]) == ["Shoes", "Insgesamt"]
