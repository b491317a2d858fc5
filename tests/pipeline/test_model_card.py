"""The report's model card: scores per metric and per region, as the page shows them."""

from __future__ import annotations

from pipeline.model_card import METRIC_COLUMNS, model_card
from pipeline.report import render_report
from pipeline.report_inputs import ReportInputs
from tests.pipeline.test_report import _text, make_inputs


def test_the_model_card_gives_the_calibration_error_per_region() -> None:
    card = model_card(make_inputs())
    column = [heading for _, heading, _ in METRIC_COLUMNS].index("ECE per region")
    cells = {row["name"]: row["cells"][column]["text"] for row in card["metrics"]}
    assert cells["xgboost (this model)"] == "0.061" and cells["random forest"] == "0.055"
    assert [r["ece"] for r in card["per_region"]] == ["0.051", "0.034", "0.047"]
    text = _text(render_report(make_inputs()))
    assert "Italian-district-1 700 0.740 0.770 0.950 0.051" in text


def test_the_model_card_takes_per_region_scores_from_metrics_json() -> None:
    inputs = make_inputs()
    scores = {"n": 10, "macro_f1": 0.5, "accuracy": 0.55, "adjacent_accuracy": 0.9, "ece": 0.04}
    model = {**inputs.metrics["model"], "per_region": {"-North": scores, "=X": scores}}  # type: ignore[dict-item]
    card = model_card(
        ReportInputs(**{**inputs.__dict__, "metrics": {**inputs.metrics, "model": model}})
    )
    assert card["per_region"] == [
        {"region": name, "n": 10, "macro_f1": "0.500", "accuracy": "0.550", "adjacent": "0.900",
         "ece": "0.040"}
        for name in ("-North", "=X")
    ]  # fmt: skip
