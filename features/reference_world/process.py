"""The stage process: a semi-Markov chain per region x cluster (see archetypes.StageProcess)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.reference_world.archetypes import StageProcess
from features.stages import STAGES

UNBORN = -1  # stage id of the years before a cluster emerges: it has no firms and no row


def spell_length(process: StageProcess, stage: int, rng: np.random.Generator) -> int:
    """Years of one spell: the minimum plus a geometric number of extra years."""
    lo = process.min_years[stage]
    extra_mean = process.mean_years[stage] - lo
    if extra_mean <= 0:
        return lo
    # numpy's geometric counts trials (>= 1); minus one gives failures with mean 1/p - 1.
    return lo + int(rng.geometric(1.0 / (extra_mean + 1.0))) - 1


def draw_births(
    n_clusters: int, share: float, first: int, last: int, rng: np.random.Generator
) -> np.ndarray:
    """Per cluster, the index of its first year: 0 (there from the start) or, for about
    ``share`` of them, a year index drawn uniformly from ``first`` to ``last``."""
    late = rng.random(n_clusters) < share
    years = rng.integers(first, last + 1, n_clusters)
    return np.where(late, years, 0).astype(np.int64)


def simulate_stages(
    process: StageProcess,
    n_clusters: int,
    n_years: int,
    rng: np.random.Generator,
    *,
    births: np.ndarray | None = None,
    initial: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Stage ids, shape (n_clusters, n_years); ``UNBORN`` before a cluster's birth.

    A cluster there from the first year takes its stage from ``initial`` where given, else from
    ``process.initial``; an emerging spell starts in the first year, any other spell already under
    way has a uniformly drawn number of years left, so clusters do not all switch in the same
    year. A cluster born later (``births``: index of its first year) starts a full emerging spell
    then.
    """
    out = np.full((n_clusters, n_years), UNBORN, dtype=np.int8)
    n_stages = len(STAGES)
    for c in range(n_clusters):
        born = 0 if births is None else int(births[c])
        given = None if initial is None else initial[c]
        if born > 0:
            stage = 0
        elif given is not None:
            stage = int(given)
        else:
            stage = int(rng.choice(n_stages, p=process.initial))
        length = spell_length(process, stage, rng)
        # An emerging cluster has only just begun to emerge; any other stage of the first year is
        # part-way through its spell.
        left = length if stage == 0 else int(rng.integers(1, length + 1))
        for t in range(born, n_years):
            out[c, t] = stage
            left -= 1
            if left == 0:
                stage = int(rng.choice(n_stages, p=process.transitions[stage]))
                left = spell_length(process, stage, rng)
    return out
