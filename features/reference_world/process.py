"""The stage process: a semi-Markov chain per region x cluster (see archetypes.StageProcess)."""

from __future__ import annotations

import numpy as np

from features.reference_world.archetypes import StageProcess
from features.stages import STAGES


def spell_length(process: StageProcess, stage: int, rng: np.random.Generator) -> int:
    """Years of one spell: the minimum plus a geometric number of extra years."""
    lo = process.min_years[stage]
    extra_mean = process.mean_years[stage] - lo
    if extra_mean <= 0:
        return lo
    # numpy's geometric counts trials (>= 1); minus one gives failures with mean 1/p - 1.
    return lo + int(rng.geometric(1.0 / (extra_mean + 1.0))) - 1


def simulate_stages(
    process: StageProcess, n_clusters: int, n_years: int, rng: np.random.Generator
) -> np.ndarray:
    """Stage ids, shape (n_clusters, n_years).

    The first year's stage comes from ``process.initial``. An emerging spell starts in the first
    year; any other spell already under way has a uniformly drawn number of years left, so
    clusters do not all switch in the same year.
    """
    out = np.empty((n_clusters, n_years), dtype=np.int8)
    n_stages = len(STAGES)
    for c in range(n_clusters):
        stage = int(rng.choice(n_stages, p=process.initial))
        length = spell_length(process, stage, rng)
        # An emerging cluster of the first year has only just begun to emerge; any other stage is
        # part-way through its spell.
        left = length if stage == 0 else int(rng.integers(1, length + 1))
        for t in range(n_years):
            out[c, t] = stage
            left -= 1
            if left == 0:
                stage = int(rng.choice(n_stages, p=process.transitions[stage]))
                left = spell_length(process, stage, rng)
    return out
