"""The report's view models: what a cluster card says."""

from __future__ import annotations

import json

from pipeline.report import render_report
from pipeline.report_inputs import ReportInputs
from pipeline.report_views import turned_drivers
from tests.pipeline.test_report import YEARS, _text, make_inputs


def test_a_driver_that_favours_the_runner_up_is_told_so() -> None:
    drivers = [
        {"feature": "entry_rate", "contribution": 0.44, "runner_up": "decline",
         "vs_runner_up": -0.36},
        {"feature": "exit_rate", "contribution": 0.28, "runner_up": "decline",
         "vs_runner_up": 0.1},
        {"feature": "wage", "contribution": -0.2, "runner_up": "decline", "vs_runner_up": 0.3},
        {"feature": "lq", "contribution": 0.5},
    ]  # fmt: skip
    assert turned_drivers(drivers, "mature") == [
        "entry_rate pushes towards mature, yet favours decline over it",
        "wage pushes away from mature, yet favours it over decline",
    ]
    inputs = make_inputs()
    explanations = inputs.explanations.copy()
    at = (explanations["cluster"] == "eyeglasses") & (explanations["year"] == YEARS[-1])
    explanations.loc[at, "drivers"] = json.dumps(drivers[:2])
    page = render_report(ReportInputs(**{**inputs.__dict__, "explanations": explanations}))
    text = _text(page)
    assert (
        "Told against the runner-up stage, which the probabilities weigh it against: "
        "entry_rate pushes towards mature, yet favours decline over it."
    ) in text
    assert text.count("Told against the runner-up") == 1
