"""A life-cycle trajectory labeller: yearly evidence rules, then the most plausible stage path.

Each region x cluster history is read in two steps (docs/labellers.md has the same tables).

**1. Yearly evidence.** Year-on-year changes are averaged over a centred window of ``window``
calendar years (t-1, t, t+1 for 3), so a stage is judged on the years around it rather than on
one noisy year or on a trailing window that lags every turn. The signals:

=============  =============================================================================
``growth``     mean log change of employment
``entry``      mean ``entry_rate`` (entrants / establishments a year earlier)
``upgrading``  mean log change of ``productivity`` minus that year's median change across all
               rows of the frame (so inflation and common cycles cancel)
``innovation`` mean log change of 1 + ``patents_per_10k``, or where the frame has no patents,
               of ``rd_intensity`` itself (a share of output, a few per cent, so the 1 + would
               flatten it: R&D rising by a tenth a year then counts as innovation)
=============  =============================================================================

The first rule that holds gives the year's evidence (after Stough's take-off / exhaustion /
rejuvenation thresholds and the stage table of features/stages.py):

==========  ======================================================================================
stage       rule
==========  ======================================================================================
renewal     growth <= ``flat_max`` and (upgrading > ``upgrade_min`` or innovation >
            ``innovation_min``) and entry >= ``renewal_entry_min`` (employment flat or falling,
            productivity or innovation rising, new firms still entering)
decline     growth < ``decline_max`` (shrinking, without the upgrading of renewal)
emerging    growth > ``growth_min`` and entry > ``emerging_entry_min`` (take-off: growing on a
            wave of new firms)
growth      growth > ``growth_min`` and entry > ``growth_entry_min`` (expanding, net entry still
            positive; the entry test is skipped where entry is unknown)
mature      otherwise (employment within the flat band, or growing on incumbents alone, with
            little entry and no upgrading spurt)
==========  ======================================================================================

**2. The path.** The stage sequence of the history is the one that agrees with the yearly
evidence in the most years, minus ``switch_penalty`` per change of stage, among the paths the
life cycle allows (Menzel & Fornahl; Martin & Sunley's adaptive cycle for renewal):

- emerging -> growth, or -> decline (a failed take-off)
- growth -> mature, or -> decline
- mature -> decline, or -> renewal
- decline -> renewal (decline may also simply persist)
- renewal -> growth, -> mature, or -> decline (a failed renewal)

It is solved exactly by dynamic programming (Viterbi) over calendar years, a year missing from the
history counting as a year without evidence. With a penalty of 1 a single year of
contrary evidence inside a spell does not flip the stage (a blip costs two switches); the path
also fills years without evidence (a gap, or a first year whose window holds no change) from
their neighbours.

Rows with too little history: a year with no year-on-year change in its window gets its stage
from the path; a history with no change at all (a single year) is left unlabelled. A signal whose
column is missing makes the rules that need it fail (without ``entry_rate`` there is no emerging
or renewal evidence; without productivity and patents no renewal), so those stages shrink rather
than being guessed; a stage a history's signals cannot show is also left out of its path, so the
path never bridges through it (mature -> renewal -> growth on employment alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import InputError
from features.stages import STAGE_ID, STAGES

SOURCE = "trajectory"
KEYS = ["region", "cluster", "year"]


@dataclass(frozen=True)
class TrajectorySettings:
    """The labeller's thresholds (rates per year) and switch cost; see the module docstring.

    The one home of their defaults: the functions below and params.yaml's labels.trajectory
    take them from :data:`DEFAULT_TRAJECTORY`.
    """

    window: int = 3
    growth_min: float = 0.03
    decline_max: float = -0.05
    flat_max: float = 0.02
    emerging_entry_min: float = 0.22
    growth_entry_min: float = 0.10
    renewal_entry_min: float = 0.06
    upgrade_min: float = 0.02
    innovation_min: float = 0.10
    switch_penalty: float = 1.0


DEFAULT_TRAJECTORY = TrajectorySettings()

# The life-cycle moves a path may make (besides staying); see the module docstring.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "emerging": ("growth", "decline"),
    "growth": ("mature", "decline"),
    "mature": ("decline", "renewal"),
    "decline": ("renewal",),
    "renewal": ("growth", "mature", "decline"),
}


def _at_year(frame: pd.DataFrame, values: np.ndarray, shift: int) -> np.ndarray:
    """``values`` of the same region x cluster at calendar year t - shift (NaN where absent)."""
    source = pd.DataFrame(
        {
            "region": frame["region"].to_numpy(),
            "cluster": frame["cluster"].to_numpy(),
            "year": frame["year"].to_numpy() + shift,
            "_v": values,
        }
    )
    merged = frame[KEYS].merge(source, on=KEYS, how="left", sort=False)
    return merged["_v"].to_numpy(dtype="float64")


def _log_change(frame: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.log(values / _at_year(frame, values, 1))
    change[~np.isfinite(change)] = np.nan
    return change


def _centred_mean(frame: pd.DataFrame, values: np.ndarray, window: int) -> np.ndarray:
    """Mean over calendar years t - h .. t + h (h = window // 2) of the same history."""
    half = window // 2
    stack = np.vstack([_at_year(frame, values, k) for k in range(-half, half + 1)])
    counts = np.isfinite(stack).sum(axis=0)
    total = np.nansum(stack, axis=0)
    return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def yearly_evidence(
    frame: pd.DataFrame,
    *,
    window: int = DEFAULT_TRAJECTORY.window,
    growth_min: float = DEFAULT_TRAJECTORY.growth_min,
    decline_max: float = DEFAULT_TRAJECTORY.decline_max,
    flat_max: float = DEFAULT_TRAJECTORY.flat_max,
    emerging_entry_min: float = DEFAULT_TRAJECTORY.emerging_entry_min,
    growth_entry_min: float = DEFAULT_TRAJECTORY.growth_entry_min,
    renewal_entry_min: float = DEFAULT_TRAJECTORY.renewal_entry_min,
    upgrade_min: float = DEFAULT_TRAJECTORY.upgrade_min,
    innovation_min: float = DEFAULT_TRAJECTORY.innovation_min,
) -> pd.DataFrame:
    """Step 1: the signals and the yearly rule stage (NaN / None where no change is known).

    ``frame`` needs region, cluster, year, employment and ideally entry_rate, productivity and
    patents_per_10k (or rd_intensity); it must hold one row per region x cluster x year.
    """
    growth = _centred_mean(frame, _log_change(frame, _column(frame, "employment")), window)
    entry = _centred_mean(frame, _column(frame, "entry_rate"), window)
    prod = _log_change(frame, _column(frame, "productivity"))
    prod_excess = prod - pd.Series(prod).groupby(frame["year"].to_numpy()).transform("median")
    upgrading = _centred_mean(frame, prod_excess.to_numpy(dtype="float64"), window)
    patents = _column(frame, "patents_per_10k")
    if np.isnan(patents).all():
        effort = _log_change(frame, _column(frame, "rd_intensity"))
    else:
        effort = _log_change(frame, 1.0 + patents)
    innovation = _centred_mean(frame, effort, window)

    with np.errstate(invalid="ignore"):
        rising = (upgrading > upgrade_min) | (innovation > innovation_min)
        rules = [
            (growth <= flat_max) & rising & (entry >= renewal_entry_min),
            growth < decline_max,
            (growth > growth_min) & (entry > emerging_entry_min),
            (growth > growth_min) & (np.isnan(entry) | (entry > growth_entry_min)),
        ]
    stage = np.select(rules, ["renewal", "decline", "emerging", "growth"], default="mature")
    stage = np.where(np.isnan(growth), None, stage)
    return pd.DataFrame(
        {
            "growth": growth,
            "entry": entry,
            "upgrading": upgrading,
            "innovation": innovation,
            "evidence": stage,
        },
        index=frame.index,
    )


def _allowed() -> np.ndarray:
    """Log-scale transition mask: 0 where a move (or staying) is allowed, -inf elsewhere."""
    mask = np.full((len(STAGES), len(STAGES)), -np.inf)
    np.fill_diagonal(mask, 0.0)
    for src, targets in TRANSITIONS.items():
        for dst in targets:
            mask[STAGE_ID[src], STAGE_ID[dst]] = 0.0
    return mask


def life_cycle_path(
    evidence: list[str | None],
    switch_penalty: float = DEFAULT_TRAJECTORY.switch_penalty,
    stages: Iterable[str] = STAGES,
) -> list[str]:
    """Step 2: the allowed stage path that agrees with ``evidence`` most, less the switch cost.

    ``stages``: the stages the path may use; one whose evidence the data cannot show is left out,
    so that the path never bridges through it (mature -> renewal -> growth without any sign of
    renewal).
    """
    n, k = len(evidence), len(STAGES)
    if n == 0:
        return []
    score = np.zeros((n, k))
    score[:, [STAGE_ID[s] for s in STAGES if s not in set(stages)]] = -np.inf
    for t, stage in enumerate(evidence):
        if isinstance(stage, str):  # None / NaN: no evidence this year
            score[t, STAGE_ID[stage]] = 1.0
    move = _allowed() - switch_penalty * (1.0 - np.eye(k))
    best = score[0].copy()
    back = np.zeros((n, k), dtype=np.int64)
    for t in range(1, n):
        cand = best[:, None] + move
        back[t] = cand.argmax(axis=0)
        best = cand.max(axis=0) + score[t]
    # Ties go to the earlier stage in life-cycle order (argmax takes the first maximum).
    path = [int(best.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return [STAGES[i] for i in reversed(path)]


def _observable(entry: bool, rising: bool) -> tuple[str, ...]:
    """The stages a history's signals can show: emerging needs entry rates, renewal needs entry
    and productivity or innovation."""
    hidden = set() if entry else {"emerging", "renewal"}
    if not rising:
        hidden.add("renewal")
    return tuple(s for s in STAGES if s not in hidden)


def trajectory_labels(
    features: pd.DataFrame,
    *,
    window: int = DEFAULT_TRAJECTORY.window,
    growth_min: float = DEFAULT_TRAJECTORY.growth_min,
    decline_max: float = DEFAULT_TRAJECTORY.decline_max,
    flat_max: float = DEFAULT_TRAJECTORY.flat_max,
    emerging_entry_min: float = DEFAULT_TRAJECTORY.emerging_entry_min,
    growth_entry_min: float = DEFAULT_TRAJECTORY.growth_entry_min,
    renewal_entry_min: float = DEFAULT_TRAJECTORY.renewal_entry_min,
    upgrade_min: float = DEFAULT_TRAJECTORY.upgrade_min,
    innovation_min: float = DEFAULT_TRAJECTORY.innovation_min,
    switch_penalty: float = DEFAULT_TRAJECTORY.switch_penalty,
) -> pd.DataFrame:
    """Label every year of each region x cluster history: region, cluster, year, stage, source.

    Thresholds are per-year rates (log changes or shares); see the module docstring.
    """
    missing = [c for c in [*KEYS, "employment"] if c not in features.columns]
    if missing:
        raise InputError(
            None,
            "the trajectory labeller needs region, cluster, year and employment",
            column=missing[0],
        )
    if window < 1 or window % 2 == 0:
        raise ValueError("window must be an odd number of years >= 1")
    if decline_max > flat_max or flat_max > growth_min:
        raise ValueError("expected decline_max <= flat_max <= growth_min")
    dup = features.duplicated(KEYS).to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0]) + 1
        raise InputError(None, "one row per region x cluster x year expected", row=row)
    frame = features[[*KEYS]].copy()
    for col in ("employment", "entry_rate", "productivity", "patents_per_10k", "rd_intensity"):
        if col in features.columns:
            frame[col] = features[col].to_numpy()
    frame = frame.sort_values(KEYS, kind="stable").reset_index(drop=True)

    signals = yearly_evidence(
        frame,
        window=window,
        growth_min=growth_min,
        decline_max=decline_max,
        flat_max=flat_max,
        emerging_entry_min=emerging_entry_min,
        growth_entry_min=growth_entry_min,
        renewal_entry_min=renewal_entry_min,
        upgrade_min=upgrade_min,
        innovation_min=innovation_min,
    )
    evidence = signals["evidence"].to_numpy(dtype=object)
    entry_known = np.isfinite(signals["entry"].to_numpy())
    rising_known = np.isfinite(signals["upgrading"].to_numpy()) | np.isfinite(
        signals["innovation"].to_numpy()
    )

    stages = np.empty(len(frame), dtype=object)
    known = np.zeros(len(frame), dtype=bool)
    years = frame["year"].to_numpy(dtype="int64")
    groups = frame.groupby(["region", "cluster"], sort=False, observed=True).indices
    for rows in groups.values():
        if not any(isinstance(evidence[i], str) for i in rows):
            continue
        # The path runs over calendar years: a year missing from the history is a year without
        # evidence, so a gap of ten years allows the moves of ten years.
        offset = years[rows] - years[rows[0]]
        seq: list[str | None] = [None] * (int(offset[-1]) + 1)
        for i, at in zip(rows, offset, strict=True):
            seq[at] = evidence[i]
        usable = _observable(entry_known[rows].any(), rising_known[rows].any())
        path = life_cycle_path(seq, switch_penalty, usable)
        stages[rows] = np.asarray(path, dtype=object)[offset]
        known[rows] = True
    out = frame.loc[known, KEYS].reset_index(drop=True)
    out["stage"] = stages[known]
    out["source"] = SOURCE
    return out
