"""The `recommend` stage end to end on small frames built here, in a temporary project folder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.errors import InputError
from pipeline import paths
from pipeline.cli import app
from pipeline.io import write_table
from pipeline.recommend import (
    cluster_cases,
    cluster_record,
    log_to_training_run,
    recommend_from_params,
)
from policy.knowledge_base import ASPECTS, load_knowledge_base
from policy.recommender import ClusterCase, Driver, build_portfolio

REGION = "Wenzhou-like"


def _drivers(*items: tuple[str, float, float, float]) -> str:
    return json.dumps(
        [
            {
                "feature": f,
                "value": v,
                "percentile": p,
                "contribution": c,
                "direction": "towards" if c > 0 else "away from",
                "stage": "x",
            }
            for f, v, p, c in items
        ]
    )


def _proba(stage: str, top: float) -> dict[str, float]:
    rest = (1 - top) / 4
    return {
        f"p_{s}": (top if s == stage else rest)
        for s in ("emerging", "growth", "mature", "decline", "renewal")
    }


def _explanations() -> pd.DataFrame:
    rows = [
        # an older year of footwear: only the latest year is recommended for
        (REGION, "footwear", 2023, "mature", 0.8, _drivers(("cr4", 0.3, 70.0, 0.4))),
        (REGION, "footwear", 2024, "decline", 0.55, _drivers(
            ("exit_rate", 0.14, 93.0, 0.9), ("rd_intensity", 0.001, 8.0, 0.5),
            ("productivity", 30.0, 20.0, -0.2))),
        (REGION, "eyeglasses", 2024, "mature", 0.85, _drivers(
            ("hhi", 0.2, 88.0, 0.7), ("relative_wage", 0.8, 25.0, 0.3))),
        (REGION, "drones", 2024, "emerging", 0.7, _drivers(("entry_rate", 0.2, 90.0, 0.6))),
        (REGION, "pumps", 2024, "growth", 0.75, _drivers(("emp_cagr_3y", 0.1, 85.0, 0.5))),
        ("Other", "footwear", 2024, "growth", 0.9, _drivers(("lq", 2.0, 90.0, 0.5))),
    ]  # fmt: skip
    return pd.DataFrame(
        [
            {"region": r, "cluster": c, "year": y, "stage": s, **_proba(s, p), "drivers": d}
            for r, c, y, s, p, d in rows
        ]
    )


def _levers() -> pd.DataFrame:
    change = json.dumps([{"feature": "patents_per_10k", "from": 0.5, "to": 2.0}])
    return pd.DataFrame(
        {
            "region": [REGION] * 4,
            "cluster": ["footwear", "eyeglasses", "drones", "pumps"],
            "year": [2024] * 4,
            "target_stage": ["renewal", None, "growth", None],
            "reachable": [True, False, False, False],
            "changes": [change, "[]", "[]", "[]"],
            "predicted_after": ["renewal", None, None, None],
            "p_target_after": [0.52, None, None, None],
            "runner_up_after": ["decline", None, None, None],
            "p_runner_up_after": [0.31, None, None, None],
            "reason": [
                "patents_per_10k: the model then predicts renewal",
                "decline is not likely: no lever target for a mature cluster",
                "no change within P5-P95 reaches growth",
                "growth is already desirable",
            ],
        }
    )


def _features() -> pd.DataFrame:
    values = {
        "productivity": 30.0,
        "exit_rate": 0.14,
        "entry_rate": 0.05,
        "net_entry_rate": -0.09,
        "relative_wage": 0.8,
        "export_intensity": 0.6,
        "patents_per_10k": 0.5,
        "rd_intensity": None,  # missing: instruments watching R&D cannot be measured here
        "sme_share": 0.85,
        "institutions_per_100_est": 1.5,
        "lq": 3.0,
        "emp_cagr_3y": -0.04,
        "regional_shift_rate": -0.03,
        "hhi": 0.05,
        "cr4": 0.2,
    }
    rows = []
    for cluster in ("footwear", "eyeglasses", "drones", "pumps"):
        for year in (2023, 2024):
            rows.append({"region": REGION, "cluster": cluster, "year": year, **values})
    return pd.DataFrame(rows)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(
        yaml.safe_dump({"score": {"region": REGION}, "recommend": {"k": 6}}), encoding="utf-8"
    )
    write_table(_explanations(), paths.EXPLANATIONS)
    write_table(_levers(), paths.LEVERS)
    write_table(_features(), paths.FEATURES)
    return tmp_path


def _lines() -> list[dict]:
    lines = paths.RECOMMENDATIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_recommend_writes_one_line_per_cluster_and_the_portfolio(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recommend_from_params("params.yaml")
    lines = _lines()
    assert [(r["cluster"], r["year"], r["stage"]) for r in lines] == [
        ("footwear", 2024, "decline"),
        ("eyeglasses", 2024, "mature"),
        ("drones", 2024, "emerging"),
        ("pumps", 2024, "growth"),
    ]
    footwear = lines[0]
    assert footwear["region"] == REGION
    assert footwear["probabilities"]["decline"] == pytest.approx(0.55)
    assert footwear["drivers"][0] == {
        "feature": "exit_rate",
        "value": 0.14,
        "percentile": 93.0,
        "contribution": 0.9,
        "direction": "towards",
        "runner_up": None,
        "vs_runner_up": None,
    }
    assert footwear["levers"] == [
        {"feature": "patents_per_10k", "from": 0.5, "to": 2.0, "predicted_stage_after": "renewal"}
    ]
    assert footwear["lever_note"] is None
    assert (footwear["runner_up_after"], footwear["p_runner_up_after"]) == ("decline", 0.31)
    assert (lines[1]["runner_up_after"], lines[1]["p_runner_up_after"]) == (None, None)
    assert lines[1]["levers"] == []
    assert lines[1]["lever_note"] == "decline is not likely: no lever target for a mature cluster"
    assert lines[2]["lever_note"] == "no change within P5-P95 reaches growth"
    for line in lines:
        assert line["synthetic"] is True
        assert 1 <= len(line["recommendations"]) <= 8
        for rec in line["recommendations"]:
            assert set(rec) >= {"id", "title", "aspect", "because", "kpi", "kpi_direction"}
            assert rec["baseline"] is not None  # governance_in_vain: every KPI has a baseline
            assert rec["kpi"] != "rd_intensity"
    recs = {r["id"]: r for r in footwear["recommendations"]}
    # The exit-rate driver calls for the orderly exit procedure, with today's exit rate as baseline.
    assert recs["orderly_exit_procedure"]["because"].startswith("top driver exit_rate is high")
    assert recs["orderly_exit_procedure"]["baseline"] == pytest.approx(0.14)
    # The lever on patents calls for technology transfer (KPI patents_per_10k).
    assert (
        "lever: moving patents_per_10k from 0.5 to 2"
        in (recs["technology_transfer_brokerage"]["because"])
    )
    # Confidence 0.55 < 0.6: nothing heavy for footwear.
    assert all(r["intensity"] != "heavy" for r in footwear["recommendations"])
    # SMEs hold 85%: every cluster has an SME measure.
    assert all(any(r["targets"] == "smes" for r in line["recommendations"]) for line in lines)

    summary = json.loads(paths.PORTFOLIO.read_text(encoding="utf-8"))
    region = summary["regions"][REGION]
    assert summary["synthetic"] is True
    assert region["clusters"] == 4
    assert set(region["guards"]) == {
        "governance_in_vain", "big_enterprise_only", "strong_over_weak", "unbalanced_support"
    }  # fmt: skip
    assert region["guards"]["governance_in_vain"]["passed"] is False
    assert region["guards"]["governance_in_vain"]["changes"]
    assert all(g["holds_after"] for g in region["guards"].values())
    counts = region["count_by_aspect"]
    assert set(counts) == set(ASPECTS) and min(counts.values()) >= 1
    assert max(counts.values()) <= 0.4 * sum(counts.values())
    assert sum(counts.values()) == sum(len(r["recommendations"]) for r in lines)
    by_stage = region["count_by_stage"]
    assert by_stage["decline"]["clusters"] == 1
    assert by_stage["emerging"]["mean_per_cluster"] >= by_stage["mature"]["mean_per_cluster"]
    assert "not logged to MLflow" in capsys.readouterr().err


def test_long_format_drivers_and_tuple_changes_are_read(project: Path) -> None:
    wide = _explanations()
    long_rows = []
    for record in wide.to_dict("records"):
        for rank, driver in enumerate(json.loads(record.pop("drivers")), start=1):
            driver.pop("stage")
            long_rows.append({**record, **driver, "rank": rank})
    levers = _levers()
    levers["changes"] = [[("patents_per_10k", 0.5, 2.0)], [], [], []]
    cases = cluster_cases(pd.DataFrame(long_rows), levers, _features(), REGION)
    footwear = cases[0]
    assert [d.feature for d in footwear.drivers] == ["exit_rate", "rd_intensity", "productivity"]
    assert footwear.levers is not None and footwear.levers.changes[0].to_value == 2.0
    assert footwear.value("sme_share") == 0.85 and footwear.value("rd_intensity") is None


def test_missing_inputs_and_region_are_one_line_errors(project: Path) -> None:
    Path("params.yaml").write_text(
        yaml.safe_dump({"score": {"region": "Atlantis"}}), encoding="utf-8"
    )
    with pytest.raises(InputError) as info:
        recommend_from_params("params.yaml")
    assert str(info.value) == (
        "reports/explanations.parquet, column 'region': no rows for region 'Atlantis'"
    )
    assert not paths.RECOMMENDATIONS.exists() and not paths.PORTFOLIO.exists()

    paths.LEVERS.unlink()
    result = CliRunner().invoke(app, ["recommend", "--params", "params.yaml"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: reports/levers.parquet: levers not found; run the earlier pipeline stages first"
    )

    bad = _explanations().drop(columns=["year"])
    write_table(bad, paths.EXPLANATIONS)
    write_table(_levers(), paths.LEVERS)
    with pytest.raises(InputError, match="column 'year': expected explanations with columns"):
        recommend_from_params("params.yaml")


def test_bad_drivers_cell_names_its_row(project: Path) -> None:
    frame = _explanations()
    frame.loc[2, "drivers"] = "{not json"
    write_table(frame, paths.EXPLANATIONS)
    with pytest.raises(InputError) as info:
        recommend_from_params("params.yaml")
    assert str(info.value) == (
        "reports/explanations.parquet, column 'drivers', row 3: expected JSON text"
    )


def test_outputs_are_logged_to_the_training_run(project: Path) -> None:
    import mlflow

    from pipeline.tracking import use_project_store

    use_project_store()
    with mlflow.start_run() as run:
        pass
    paths.MLFLOW_RUN.write_text(json.dumps({"run_id": run.info.run_id}), encoding="utf-8")
    recommend_from_params("params.yaml")
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "policy")}
    assert logged == {"policy/recommendations.jsonl", "policy/portfolio.json"}

    paths.MLFLOW_RUN.write_text("{}", encoding="utf-8")
    assert not log_to_training_run([paths.RECOMMENDATIONS])


def test_reads_what_the_explain_stage_writes() -> None:
    """A small real model through models.explanations' tables, then into the recommender."""
    explain = pytest.importorskip("models.explanations")
    import numpy as np
    import xgboost as xgb

    from models.bundle import ModelMeta, StageModel
    from policy.guards import apply_guards, holds
    from policy.knowledge_base import load_knowledge_base
    from policy.recommender import build_portfolio

    names = ["rd_intensity", "entry_rate", "productivity", "exit_rate", "sme_share"]
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.random((300, len(names))), columns=names)
    score = X["rd_intensity"] + X["entry_rate"] - X["exit_rate"] + 0.2 * rng.normal(size=300)
    y = np.digitize(score, np.quantile(score, [0.2, 0.4, 0.6, 0.8]))
    # The booster kind the StageModel wraps (multi:softprob), kept small and single-threaded.
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 5, "max_depth": 3, "nthread": 1, "seed": 5},
        xgb.DMatrix(X, label=y),
        num_boost_round=30,
    )
    model = StageModel(booster, ModelMeta(names, [0, 1, 2, 3, 4]))

    clusters = [f"c{i:02d}" for i in range(20)]
    rows = X.iloc[:40].copy()
    rows.insert(0, "year", [2023, 2024] * 20)
    rows.insert(0, "cluster", np.repeat(clusters, 2))
    rows.insert(0, "region", REGION)
    explanations = explain.explanation_table(model, rows, X, top_k=3)
    levers = explain.lever_table(
        model, rows, X, pair_features=2, actionable={"rd_intensity": 1, "entry_rate": 1}
    )
    cases = cluster_cases(explanations, levers, rows, REGION)
    assert [(c.cluster, c.year) for c in cases] == [(k, 2024) for k in clusters]
    predicted = model.predict_frame(rows.iloc[1::2])["stage"].tolist()
    assert [c.stage for c in cases] == predicted
    for case, (_, lever) in zip(cases, levers.iterrows(), strict=True):
        assert 1 <= len(case.drivers) <= 3
        assert all(d.feature in names and d.percentile is not None for d in case.drivers)
        assert case.levers is not None and case.levers.reachable == bool(lever["reachable"])
        if case.levers.reachable:
            assert [c.feature for c in case.levers.changes] == [
                c["feature"] for c in json.loads(lever["changes"])
            ]
        assert case.value("productivity") == pytest.approx(
            rows.loc[
                (rows["cluster"] == case.cluster) & (rows["year"] == 2024), "productivity"
            ].iloc[0]
        )
    portfolio = build_portfolio(REGION, cases, load_knowledge_base(), k=6)
    repaired, results = apply_guards(portfolio)
    final = holds(repaired)
    assert all(final[r.name] or r.notes for r in results)
    assert any(c.levers is not None and c.levers.reachable for c in cases)


def test_instruments_command_writes_the_markdown(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "policy.md"
    result = CliRunner().invoke(app, ["instruments", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Policy instruments\n")
    assert "### `orderly_exit_procedure`:" in text


def test_each_line_names_the_runner_up_and_the_caveats_in_words() -> None:
    kb = load_knowledge_base()
    torn = ClusterCase(
        REGION, "auto parts", 2024, "mature",
        {"emerging": 0.01, "growth": 0.05, "mature": 0.57, "decline": 0.36, "renewal": 0.01},
    )  # fmt: skip
    sparse = ClusterCase(
        REGION, "apparel", 2024, "renewal",
        {"emerging": 0.02, "growth": 0.02, "mature": 0.02, "decline": 0.02, "renewal": 0.92},
        drivers=(
            Driver("va_share", None, None, 0.8, "towards"),
            Driver("exit_rate", None, None, 0.5, "towards"),
            Driver("entry_rate", 0.05, 30.0, 0.4, "towards"),
        ),
    )  # fmt: skip
    sure = replace(torn, cluster="valves", probabilities={"mature": 0.9, "decline": 0.1})
    portfolio = build_portfolio(REGION, [torn, sparse, sure], kb)
    lines = {c.cluster: cluster_record(c, portfolio, True) for c in (torn, sparse, sure)}
    assert lines["auto parts"]["runner_up"] == "decline"
    assert lines["auto parts"]["p_runner_up"] == pytest.approx(0.36)
    assert lines["auto parts"]["caveats"] == [
        "the model is torn between mature (0.57) and decline (0.36): measures that fit both are "
        "preferred; check the stage against next year's data before committing to "
        "stage-specific measures"
    ]
    # Measures that fit decline as well come first among the stage defaults.
    recs = lines["auto parts"]["recommendations"]
    assert kb[recs[0]["id"]].fits("decline")
    assert lines["apparel"]["caveats"] == [
        "the stage rests mostly on values missing for this cluster (va_share, exit_rate): treat "
        "it as provisional until they are collected; no heavy measures"
    ]
    assert lines["valves"]["caveats"] == []
    assert lines["valves"]["runner_up"] == "decline"
