import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def staged_rows():
    """Six regions of rows whose stage is readable from two of four features, with gaps."""
    rng = np.random.default_rng(3)
    n = 600
    y = np.tile(np.arange(5), n // 5)
    X = pd.DataFrame(
        {
            "growth": (y == 1) * 0.3 - (y == 3) * 0.3 + rng.normal(0, 0.08, n),
            "innovation": (y == 4) * 1.0 + (y == 0) * 0.5 + rng.normal(0, 0.2, n),
            "noise_a": rng.normal(size=n),
            "noise_b": rng.normal(size=n),
        }
    )
    X.loc[rng.random(n) < 0.05, "noise_a"] = np.nan
    regions = np.repeat([f"r{i}" for i in range(6)], n // 6)
    return X, y, regions


@pytest.fixture
def rare_stage_rows():
    """Four regions of rows with stage ids {0, 1, 3} only; region r0 holds every row of stage 3
    (as one region may hold a rare stage's few rows), so any fold without r0 lacks that stage."""
    rng = np.random.default_rng(7)
    regions = np.repeat(["r0", "r1", "r2", "r3"], 24)
    y = np.tile([0, 1], 48)
    y[(regions == "r0") & (np.arange(96) % 3 == 0)] = 3
    X = pd.DataFrame(
        {
            "growth": (y == 1) * 1.0 - (y == 3) * 1.0 + rng.normal(0, 0.1, 96),
            "noise": rng.normal(size=96),
        }
    )
    return X, y, regions
