import numpy as np
import pandas as pd

from features.stages import STAGE_ID
from pipeline.params import QuadrantParams, TrainParams
from pipeline.train import model_factories, quadrant_rule


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
