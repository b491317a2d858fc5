"""The report's inputs: the pipeline files read back, recommendations computed where missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.errors import InputError
from pipeline import paths
from pipeline.report_inputs import load_inputs, read_jsonl
from tests.pipeline.test_report import CLUSTERS, REGION, _write_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _write_project(tmp_path)
    return tmp_path


def test_load_inputs_reads_the_pipeline_files(project: Path) -> None:
    from pipeline.params import load_params

    inputs = load_inputs(load_params("params.yaml"))
    assert inputs.region == REGION
    assert len(inputs.recommendations) == len(CLUSTERS)
    assert inputs.portfolio is not None and "guards" in inputs.portfolio
    assert inputs.metrics["model"]["macro_f1"] == pytest.approx(0.712)  # type: ignore[index]
    # params say real, but the features file is marked synthetic: the page says synthetic.
    assert inputs.synthetic
    assert inputs.synthetic_sources == (
        f"{paths.FEATURES} (features metadata clusterstage.synthetic)",
        f"{paths.RECOMMENDATIONS} (synthetic: true)",
    )
    assert inputs.notes == ()


def test_missing_recommendations_are_computed_from_the_explanations(project: Path) -> None:
    from pipeline.params import load_params

    paths.RECOMMENDATIONS.unlink()
    paths.PORTFOLIO.unlink()
    inputs = load_inputs(load_params("params.yaml"))
    assert len(inputs.recommendations) == len(CLUSTERS)
    assert inputs.portfolio is not None and set(inputs.portfolio["guards"]) == {
        "governance_in_vain", "unbalanced_support", "big_enterprise_only", "strong_over_weak"
    }  # fmt: skip
    assert inputs.notes == (
        f"{paths.RECOMMENDATIONS} holds no recommendations for {REGION}: they were computed for "
        "this page from the explanations.",
    )


def test_recommendations_lines_must_be_json(tmp_path: Path) -> None:
    path = tmp_path / "recommendations.jsonl"
    path.write_text('{"cluster": "a"}\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_jsonl(path)
    assert err.value.row == 3 and "one JSON object per line" in str(err.value)
