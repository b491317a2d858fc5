"""The `recommend` stage end to end on small frames (tests/policy/helpers.py), in a temporary
project folder."""

from __future__ import annotations

import errno
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from features.errors import InputError
from pipeline import paths
from pipeline.cli import app
from pipeline.io import write_table
from pipeline.params import Params
from pipeline.recommend import log_to_training_run, recommend, recommend_from_params
from policy.knowledge_base import ASPECTS, load_knowledge_base
from tests.policy.helpers import REGION, explanations_frame, features_frame, levers_frame


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(
        yaml.safe_dump({"score": {"region": REGION}, "recommend": {"k": 6}}), encoding="utf-8"
    )
    write_table(explanations_frame(), paths.EXPLANATIONS)
    write_table(levers_frame(), paths.LEVERS)
    write_table(features_frame(), paths.FEATURES)
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

    bad = explanations_frame().drop(columns=["year"])
    write_table(bad, paths.EXPLANATIONS)
    write_table(levers_frame(), paths.LEVERS)
    with pytest.raises(InputError, match="column 'year': expected explanations with columns"):
        recommend_from_params("params.yaml")


def test_bad_drivers_cell_names_its_row(project: Path) -> None:
    frame = explanations_frame()
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


def test_instruments_command_writes_the_markdown(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "policy.md"
    result = CliRunner().invoke(app, ["instruments", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Policy instruments\n")
    assert "### `orderly_exit_procedure`:" in text


def test_recommend_uses_the_knowledge_base_it_is_given() -> None:
    params = Params.model_validate({"score": {"region": REGION}})
    kb = replace(load_knowledge_base(), source="my instruments")
    records, summary = recommend(params, explanations_frame(), levers_frame(), features_frame(), kb)
    assert summary["knowledge_base"] == "my instruments"
    assert [r["cluster"] for r in records] == ["footwear", "eyeglasses", "drones", "pumps"]


def test_a_refused_portfolio_write_leaves_both_outputs_as_they_were(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recommend_from_params("params.yaml")
    outputs = (paths.RECOMMENDATIONS, paths.PORTFOLIO)
    before = {p: p.read_bytes() for p in outputs}
    Path("params.yaml").write_text(
        yaml.safe_dump({"score": {"region": REGION}, "recommend": {"k": 2}}), encoding="utf-8"
    )
    real = Path.write_text

    def refused(self: Path, *args: object, **kwargs: object) -> int:
        if self.name == paths.PORTFOLIO.name:  # the last output written
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", refused)
    result = CliRunner().invoke(app, ["recommend", "--params", "params.yaml"])
    assert result.exit_code == 2
    assert result.stderr == "error: reports/portfolio.json: cannot write: no space left on device\n"
    assert {p: p.read_bytes() for p in outputs} == before
    assert sorted(p.name for p in paths.REPORTS.iterdir()) == sorted(
        ["explanations.parquet", "levers.parquet", "portfolio.json", "recommendations.jsonl"]
    )
