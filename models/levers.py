"""Levers: the smallest change in actionable features that moves a cluster to its next good stage.

Targets (the next desirable stage on the life cycle): emerging -> growth, decline -> renewal,
renewal -> growth, and mature -> renewal only where decline looms (p_decline is the second
highest probability or at least 0.25); growth is already desirable, so it gets no target.

Search, per cluster. Each actionable feature may move only to values that comparative clusters
(the training rows) actually show: a grid of their quantiles P5, P10, ..., P95, and only in the
feature's good direction where the catalogue gives one. A change costs |to - from| / IQR of the
feature among comparative clusters, and a lever's cost is the sum over its changed features.
1. every single-feature move on the grid, all clusters in one batch;
2. pairs of moves among the ``pair_features`` features whose single moves came closest to the
   target (largest gain in margin of the target over the best other stage), cheaper than the
   best single move, evaluated cheapest first in chunks, stopping at the first chunk that holds a
   success.
The lever returned is the cheapest success over both; it is exact over the singles grid and
over the pairs among the chosen features, a heuristic beyond them. Every lever is verified by
predicting the changed row again through ``StageModel.predict_proba``: the stage it reports is
what the model says. A missing feature value is never moved (nothing to move it from).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from features.stages import STAGE_ID, STAGES
from models.bundle import StageModel

# What moves a stage on; mature is handled apart (only when decline looms).
NEXT_STAGE: dict[str, str | None] = {
    "emerging": "growth",
    "growth": None,
    "mature": "renewal",
    "decline": "renewal",
    "renewal": "growth",
}
MATURE_DECLINE_RISK = 0.25
QUANTILES: tuple[float, ...] = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))
_CHUNK = 512


class Change(NamedTuple):
    feature: str
    from_value: float
    to_value: float


@dataclass
class LeverResult:
    """The lever of one cluster. ``target_stage`` is None where the stage needs none."""

    stage: str
    target_stage: str | None
    reachable: bool
    changes: list[Change] = field(default_factory=list)
    predicted_after: str | None = None
    p_target_after: float | None = None
    p_target_before: float | None = None
    cost: float | None = None  # sum of |change| / IQR among comparative clusters
    to_quantiles: list[float] = field(default_factory=list)  # grid quantile of each `to`
    change_costs: list[float] = field(default_factory=list)  # |to - from| / IQR of each change
    reason: str = ""


def catalogue_levers() -> dict[str, int | None]:
    """The catalogue's actionable features and their good direction (+1, -1 or None)."""
    from features.catalogue import actionable_features

    return {name: f.direction_good for name, f in actionable_features().items()}


def direction_sign(value: object) -> int:
    """+1, -1 or 0 from the catalogue's direction_good (+1/-1/None; words accepted too)."""
    if value is None:
        return 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in {"+1", "1", "+", "up", "higher", "increase", "high"}:
            return 1
        if word in {"-1", "-", "down", "lower", "decrease", "low"}:
            return -1
        if word in {"", "0", "none", "neutral"}:
            return 0
        raise ValueError(f"unknown direction {value!r}; expected +1, -1 or None")
    number = float(value)  # type: ignore[arg-type]
    return 0 if np.isnan(number) or number == 0 else int(np.sign(number))


def lever_target(stage: str, proba: Mapping[str, float] | Sequence[float]) -> str | None:
    """The stage a lever should aim at for a cluster predicted ``stage`` with ``proba``."""
    p = (
        {s: float(proba.get(s, 0.0)) for s in STAGES}
        if isinstance(proba, Mapping)
        else dict(zip(STAGES, map(float, proba), strict=True))
    )
    if stage != "mature":
        return NEXT_STAGE[stage]
    others = sorted((v, s) for s, v in p.items() if s != "mature")
    second = others[-1][1] if others else None
    if second == "decline" or p["decline"] >= MATURE_DECLINE_RISK:
        return "renewal"
    return None


@dataclass
class _Grid:
    """Per actionable feature: allowed grid values, their quantile levels, and the IQR."""

    features: list[str]
    column: dict[str, int]
    values: dict[str, np.ndarray]
    levels: dict[str, np.ndarray]
    scale: dict[str, float]
    sign: dict[str, int]


def _grid(
    model: StageModel,
    reference_X: pd.DataFrame,
    actionable: Sequence[str],
    directions: Mapping[str, object],
    quantiles: Sequence[float],
) -> _Grid:
    names = list(model.meta.features)
    grid = _Grid([], {}, {}, {}, {}, {})
    for f in actionable:
        if f not in names or f not in reference_X.columns:
            continue
        ref = pd.to_numeric(reference_X[f], errors="coerce").dropna().to_numpy(dtype=float)
        if ref.size < 2:
            continue
        q = np.quantile(ref, quantiles)
        p25, p75 = np.quantile(ref, [0.25, 0.75])
        scale = p75 - p25
        if not scale > 0:
            scale = q[-1] - q[0]
        if not scale > 0:
            continue  # comparative clusters all show one value: nothing to move within
        vals, first = np.unique(q, return_index=True)
        grid.features.append(f)
        grid.column[f] = names.index(f)
        grid.values[f] = vals
        grid.levels[f] = np.asarray(quantiles, dtype=float)[first]
        grid.scale[f] = float(scale)
        grid.sign[f] = direction_sign(directions.get(f))
    return grid


def _moves(grid: _Grid, row: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per feature: allowed target values, their costs and quantile levels for this row."""
    out = {}
    for f in grid.features:
        x = row[grid.column[f]]
        if np.isnan(x):
            continue
        vals = grid.values[f]
        sign = grid.sign[f]
        keep = vals > x if sign > 0 else vals < x if sign < 0 else vals != x
        if keep.any():
            v = vals[keep]
            out[f] = (v, np.abs(v - x) / grid.scale[f], grid.levels[f][keep])
    return out


def _margins(model: StageModel, rows: np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.zeros((0, len(model.meta.classes)))
    m = model.booster.inplace_predict(rows.astype(np.float32), predict_type="margin")
    return np.asarray(m, dtype=float).reshape(len(rows), -1)


def _gap(margins: np.ndarray, target: int) -> np.ndarray:
    """Margin of the target minus the best other class: > 0 means the target is predicted."""
    others = np.delete(margins, target, axis=1)
    best_other = others.max(axis=1) if others.shape[1] else np.full(len(margins), -np.inf)
    return margins[:, target] - best_other


def _reached(margins: np.ndarray, target: int) -> np.ndarray:
    # np.argmax breaks ties towards the lower index, exactly as predict_frame does.
    return margins.argmax(axis=1) == target


def find_levers(
    model: StageModel,
    X_rows: pd.DataFrame,
    reference_X: pd.DataFrame,
    actionable: Sequence[str] | None = None,
    directions: Mapping[str, object] | None = None,
    *,
    quantiles: Sequence[float] = QUANTILES,
    pair_features: int = 4,
) -> list[LeverResult]:
    """One :class:`LeverResult` per row of ``X_rows`` (see the module docstring for the search).

    ``actionable``: the features a policy can move (default: the catalogue's actionable ones;
    those the model does not use are ignored); ``directions``: feature -> good direction (+1, -1
    or None; default: the catalogue's); ``reference_X``: the comparative clusters' rows that bound
    and scale every move.
    """
    if actionable is None or directions is None:
        catalogue = catalogue_levers()
        actionable = list(catalogue) if actionable is None else actionable
        directions = catalogue if directions is None else directions
    matrix = model.matrix(X_rows).to_numpy(dtype=float)
    proba = model.predict_proba(X_rows)
    classes = [int(c) for c in model.meta.classes]
    class_of = {STAGES[c]: i for i, c in enumerate(classes)}
    grid = _grid(model, reference_X, actionable, directions, quantiles)

    results: list[LeverResult] = []
    pending: list[tuple[int, int, dict]] = []  # (row, target class, moves)
    for i in range(len(matrix)):
        stage = STAGES[int(proba[i].argmax())]
        target = lever_target(stage, proba[i])
        result = LeverResult(stage=stage, target_stage=target, reachable=False)
        results.append(result)
        if target is None:
            p_decline = proba[i, STAGE_ID["decline"]]
            result.reason = (
                "growth is already a desirable stage"
                if stage == "growth"
                else f"mature with decline not looming (p_decline {p_decline:.2f})"
            )
            continue
        result.p_target_before = float(proba[i, STAGE_ID[target]])
        if target not in class_of:
            result.reason = f"the model was not trained on stage {target!r}"
            continue
        moves = _moves(grid, matrix[i])
        if not moves:
            result.reason = (
                "no actionable feature can move: none is measured for this cluster or has room "
                "within P5-P95 of comparative clusters in its good direction"
            )
            continue
        pending.append((i, class_of[target], moves))

    searches = [_Search(i, target, moves, matrix[i], grid) for i, target, moves in pending]
    # 1. every single move of every pending cluster, in one prediction
    blocks = [s.single_rows() for s in searches]
    margins = _margins(model, np.vstack(blocks)) if blocks else np.zeros((0, 0))
    start = 0
    for search, block in zip(searches, blocks, strict=True):
        search.take_singles(margins[start : start + len(block)], pair_features)
        start += len(block)
    # 2. pairs, cheapest first, one chunk of every still-searching cluster per prediction
    while active := [s for s in searches if s.has_chunk()]:
        blocks = [s.next_chunk() for s in active]
        margins = _margins(model, np.vstack(blocks))
        start = 0
        for search, block in zip(active, blocks, strict=True):
            search.take_chunk(margins[start : start + len(block)])
            start += len(block)
    _verify(model, X_rows, searches, results, grid)
    return results


class _Search:
    """The lever search state of one cluster."""

    def __init__(
        self,
        i: int,
        target: int,
        moves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
        row: np.ndarray,
        grid: _Grid,
    ) -> None:
        self.i, self.target, self.moves, self.row, self.grid = i, target, moves, row, grid
        # (total cost, [(feature, to, quantile level of to, cost of this change)])
        self.best: tuple[float, list[tuple[str, float, float, float]]] | None = None
        self.cand_cost = np.zeros(0)
        self.cand: list[tuple[str, int, str, int]] = []
        self.pos = 0

    def single_rows(self) -> np.ndarray:
        blocks = []
        for f, (vals, _, _) in self.moves.items():
            block = np.repeat(self.row[None, :], len(vals), axis=0)
            block[:, self.grid.column[f]] = vals
            blocks.append(block)
        return np.vstack(blocks)

    def take_singles(self, margins: np.ndarray, pair_features: int) -> None:
        gains: dict[str, float] = {}
        start = 0
        for f, (vals, costs, levels) in self.moves.items():
            m = margins[start : start + len(vals)]
            start += len(vals)
            gains[f] = float(_gap(m, self.target).max())
            hit = np.flatnonzero(_reached(m, self.target))
            if hit.size:
                j = hit[np.argmin(costs[hit])]
                if self.best is None or costs[j] < self.best[0]:
                    pick = (f, float(vals[j]), float(levels[j]), float(costs[j]))
                    self.best = (float(costs[j]), [pick])
        # Pairs among the features whose single moves came closest, cheaper than the best single.
        chosen = sorted(gains, key=lambda f: -gains[f])[:pair_features]
        bound = self.best[0] if self.best is not None else np.inf
        costs, cands = [], []
        for f, g in itertools.combinations(chosen, 2):
            total = self.moves[f][1][:, None] + self.moves[g][1][None, :]
            a, b = np.nonzero(total < bound)
            costs.append(total[a, b])
            cands.extend((f, int(x), g, int(y)) for x, y in zip(a, b, strict=True))
        if costs:
            cost = np.concatenate(costs)
            order = np.argsort(cost, kind="stable")
            self.cand_cost = cost[order]
            self.cand = [cands[k] for k in order]

    def has_chunk(self) -> bool:
        return self.pos < len(self.cand)

    def next_chunk(self) -> np.ndarray:
        chunk = self.cand[self.pos : self.pos + _CHUNK]
        rows = np.repeat(self.row[None, :], len(chunk), axis=0)
        for r, (f, a, g, b) in enumerate(chunk):
            rows[r, self.grid.column[f]] = self.moves[f][0][a]
            rows[r, self.grid.column[g]] = self.moves[g][0][b]
        return rows

    def take_chunk(self, margins: np.ndarray) -> None:
        hit = np.flatnonzero(_reached(margins, self.target))
        if hit.size:
            # Candidates are in cost order, so the first hit is the cheapest pair of all.
            k = self.pos + int(hit[0])
            f, a, g, b = self.cand[k]
            picks = [
                (
                    h,
                    float(self.moves[h][0][j]),
                    float(self.moves[h][2][j]),
                    float(self.moves[h][1][j]),
                )
                for h, j in ((f, a), (g, b))
            ]
            self.best = (float(self.cand_cost[k]), picks)
            self.pos = len(self.cand)  # done
        else:
            self.pos += len(margins)


def _verify(
    model: StageModel,
    X_rows: pd.DataFrame,
    searches: list[_Search],
    results: list[LeverResult],
    grid: _Grid,
) -> None:
    """Predict every changed row again through the model's public path and record what it says."""
    found = [s for s in searches if s.best is not None]
    for s in searches:
        if s.best is None:
            results[s.i].reason = (
                f"no move of one or two of {', '.join(s.moves)} within P5-P95 of comparative "
                f"clusters (in their good direction) makes the model predict "
                f"{results[s.i].target_stage}"
            )
    if not found:
        return
    changed = model.matrix(X_rows.iloc[[s.i for s in found]]).reset_index(drop=True)
    for r, s in enumerate(found):
        for f, to, _, _ in s.best[1]:  # type: ignore[index]
            changed.iloc[r, grid.column[f]] = to
    after = model.predict_proba(changed)
    for r, s in enumerate(found):
        result = results[s.i]
        cost, picks = s.best  # type: ignore[misc]
        predicted = STAGES[int(after[r].argmax())]
        result.changes = [Change(f, float(s.row[grid.column[f]]), to) for f, to, _, _ in picks]
        result.to_quantiles = [level for _, _, level, _ in picks]
        result.change_costs = [c for _, _, _, c in picks]
        result.cost = cost
        result.predicted_after = predicted
        result.p_target_after = float(after[r, STAGE_ID[result.target_stage]])  # type: ignore[index]
        result.reachable = predicted == result.target_stage
        if result.reachable:
            moved = [
                f"{'raise' if c.to_value > c.from_value else 'lower'} {c.feature} from "
                f"{c.from_value:.4g} to {c.to_value:.4g} (P{100 * q:.0f} of comparative clusters)"
                for c, q in zip(result.changes, result.to_quantiles, strict=True)
            ]
            result.reason = f"{' and '.join(moved)}: the model then predicts {predicted}"
        else:
            result.reason = (
                f"the search's move predicts {predicted} on re-check, not {result.target_stage}"
            )
