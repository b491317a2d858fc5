"""Levers: the smallest change in actionable features that moves a cluster to its next good stage.

Targets (the next desirable stage on the life cycle): emerging -> growth, decline -> renewal,
renewal -> growth, and mature -> renewal only where decline is likely (p_decline at least 0.25);
growth is already desirable, so it gets no target.

A lever moves a level (``productivity``, ``entry_rate``, ...), and every feature the model sees
that the feature builder computes from that level in the same year moves with it (``DERIVED``:
growth rates, 3-year changes, ``net_entry_rate``); lagged copies are past years and stay. Without
this the model would see a cluster whose productivity jumped while its productivity growth did
not, a row no feature build can produce.

Search, per cluster. Each actionable feature may move only to values that comparative clusters
(the training rows) actually show: a grid of their quantiles P5, P10, ..., P95, and only in the
feature's good direction where the catalogue gives one. The features that follow a move must
stay within P5-P95 too (or between the cluster's own value and that range, where it already lies
outside): raising productivity by half in one year would imply a productivity growth that
comparative clusters hardly ever show. Where the comparative clusters carry
their years, the grid comes from those of the cluster's own year (see ``year_reference``:
nominal levels such as productivity drift over the years). A change costs |to - from| / IQR of
the feature among those comparative clusters, and a lever's cost is the sum over its changed
features.
1. every single-feature move on the grid, all clusters in one batch;
2. pairs of moves among the ``pair_features`` features whose single moves came closest to the
   target (largest gain in margin of the target over the best other stage), cheaper than the
   best single move, evaluated cheapest first in chunks, stopping at the first chunk that holds a
   success.
The lever returned is the cheapest success over both; it is exact over the singles grid and
over the pairs among the chosen features, a heuristic beyond them. Every lever is verified by
predicting the changed row again through ``StageModel.predict_proba``: the stage it reports is
what the model says, and the runner-up stage after the move is reported with it, so that a lever
that only just tips the model is visible as such. A missing feature value is never moved (nothing
to move it from), nor a level of zero or below that growth rates are derived from (the rate of
the changed level cannot be recovered from the features).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from features.stages import STAGE_ID, STAGES
from models.bundle import StageModel
from models.defaults import DEFAULT_PAIR_FEATURES
from models.reference import MIN_YEAR_ROWS, year_reference

# What moves a stage on; mature is handled apart (only when decline is likely).
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


class Derived(NamedTuple):
    """A same-year feature computed from another one (its level): when the level moves from
    ``old`` to ``new``, ``growth`` gives (1 + x) * (new / old)^(1/k) - 1 (a k-year CAGR of the
    level), ``scale`` x * new / old (a ratio with the level's numerator), ``shift``
    x + (new - old) (a k-year change of the level, or a difference with it)."""

    feature: str
    kind: Literal["growth", "scale", "shift"]
    k: int = 1


# Read off features/indicators/*.py; each lever is moved through the raw input named, the other
# inputs of that year held: productivity through value_added (performance: productivity_cagr_*
# are its CAGRs, va_share = value_added / output), relative_wage through payroll with the
# national wage given (performance: wage_cagr_* are the wage's CAGRs), entry_rate through entries
# (structure: net_entry_rate = entry_rate - exit_rate), rd_intensity, patents_per_10k, cr4 and hhi
# through their numerators (their *_change_3y). The other actionable features feed no other
# feature. Lagged copies (features.lags) are past years and never follow.
DERIVED: dict[str, tuple[Derived, ...]] = {
    "productivity": (
        Derived("productivity_cagr_1y", "growth", 1),
        Derived("productivity_cagr_3y", "growth", 3),
        Derived("va_share", "scale"),
    ),
    "va_share": (Derived("va_share_change_3y", "shift", 3),),
    "relative_wage": (Derived("wage", "scale"),),
    "wage": (Derived("wage_cagr_1y", "growth", 1), Derived("wage_cagr_3y", "growth", 3)),
    "entry_rate": (Derived("net_entry_rate", "shift"),),
    "rd_intensity": (Derived("rd_intensity_change_3y", "shift", 3),),
    "patents_per_10k": (Derived("patents_per_10k_change_3y", "shift", 3),),
    "cr4": (Derived("cr4_change_3y", "shift", 3),),
    "hhi": (Derived("hhi_change_3y", "shift", 3),),
}


def derived_features(feature: str, seen: Sequence[str] | None = None) -> list[str]:
    """Every feature that follows ``feature`` when it moves (through chains too), restricted to
    ``seen`` where given. A feature in a chain that ``seen`` lacks passes nothing on: its value,
    which the next link needs, is unknown."""
    out: list[str] = []
    for d in DERIVED.get(feature, ()):
        if seen is not None and d.feature not in seen:
            continue
        out += [d.feature, *derived_features(d.feature, seen)]
    return out


def _ratio_derived(feature: str, seen: Sequence[str] | None) -> bool:
    """Whether a move of ``feature`` rescales something (growth or scale): impossible from 0."""
    return any(
        d.kind != "shift" or _ratio_derived(d.feature, seen)
        for d in DERIVED.get(feature, ())
        if seen is None or d.feature in seen
    )


def move(
    rows: np.ndarray, column: Mapping[str, int], feature: str, to: np.ndarray | float
) -> np.ndarray:
    """A copy of ``rows`` (one per row, columns as ``column`` names them) with ``feature`` set to
    ``to`` and every same-year feature derived from it (``DERIVED``) following."""
    out = np.array(rows, dtype=float, copy=True, ndmin=2)
    new = np.broadcast_to(np.asarray(to, dtype=float), (len(out),))
    _follow(out, column, feature, out[:, column[feature]].copy(), new)
    return out


def _follow(
    out: np.ndarray, column: Mapping[str, int], feature: str, old: np.ndarray, new: np.ndarray
) -> None:
    out[:, column[feature]] = new
    with np.errstate(divide="ignore", invalid="ignore"):
        for d in DERIVED.get(feature, ()):
            if d.feature not in column:
                continue
            x = out[:, column[d.feature]].copy()
            if d.kind == "growth":
                x_new = (1.0 + x) * np.power(new / old, 1.0 / d.k) - 1.0
            elif d.kind == "scale":
                x_new = x * (new / old)
            else:
                x_new = x + (new - old)
            _follow(out, column, d.feature, x, x_new)


def apply_changes(
    frame: pd.DataFrame, changes: Sequence[tuple[str, float, float]], features: Sequence[str]
) -> pd.DataFrame:
    """``frame`` with each change (feature, from, to) applied to every row through ``move``
    over its columns ``features`` (the model's, say); other columns are kept as they are."""
    out = frame.copy()
    names = [f for f in features if f in out.columns]
    column = {f: j for j, f in enumerate(names)}
    values = out[names].to_numpy(dtype=float)
    for feature, _, to in changes:
        values = move(values, column, feature, to)
    out[names] = values
    return out


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
    # the same-year features that follow each change (DERIVED), in the order of ``changes``
    derived: list[list[Change]] = field(default_factory=list)
    # the best stage other than the target after the move, and its probability
    runner_up_after: str | None = None
    p_runner_up_after: float | None = None


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
    # Decline merely being the runner-up says nothing at p_decline = 0.003: only a likely decline
    # makes renewal the aim of a mature cluster.
    return "renewal" if p["decline"] >= MATURE_DECLINE_RISK else None


@dataclass
class _Grid:
    """Per actionable feature: allowed grid values, their quantile levels, and the IQR;
    ``column``: every model feature's column (derived features follow a move)."""

    features: list[str]
    column: dict[str, int]
    values: dict[str, np.ndarray]
    levels: dict[str, np.ndarray]
    scale: dict[str, float]
    sign: dict[str, int]
    ratio_bound: dict[str, bool] = field(default_factory=dict)
    # derived feature -> (lowest, highest) grid quantile among the comparative clusters
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)


def _grid(
    model: StageModel,
    reference_X: pd.DataFrame,
    actionable: Sequence[str],
    directions: Mapping[str, object],
    quantiles: Sequence[float],
) -> _Grid:
    names = list(model.meta.features)
    grid = _Grid([], {f: j for j, f in enumerate(names)}, {}, {}, {}, {})
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
        grid.values[f] = vals
        grid.levels[f] = np.asarray(quantiles, dtype=float)[first]
        grid.scale[f] = float(scale)
        grid.sign[f] = direction_sign(directions.get(f))
        grid.ratio_bound[f] = _ratio_derived(f, names)
        for d in derived_features(f, names):
            if d in grid.bounds or d not in reference_X.columns:
                continue
            known = pd.to_numeric(reference_X[d], errors="coerce").dropna().to_numpy(dtype=float)
            if known.size >= 2:
                lo, hi = np.quantile(known, [quantiles[0], quantiles[-1]])
                grid.bounds[d] = (float(lo), float(hi))
    return grid


def _within(grid: _Grid, row: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per changed row: every derived feature stays within the comparative clusters' range, that
    range stretched to take in the cluster's own value (``row``) where it already lies outside."""
    ok = np.ones(len(rows), dtype=bool)
    for d, (lo, hi) in grid.bounds.items():
        j = grid.column[d]
        low, high = (lo, hi) if np.isnan(row[j]) else (min(lo, row[j]), max(hi, row[j]))
        after = rows[:, j]
        ok &= np.isnan(after) | ((after >= low - 1e-12) & (after <= high + 1e-12))
    return ok


def _moves(grid: _Grid, row: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per feature: allowed target values, their costs and quantile levels for this row."""
    out = {}
    for f in grid.features:
        x = row[grid.column[f]]
        if np.isnan(x) or (grid.ratio_bound[f] and not x > 0):
            continue
        vals = grid.values[f]
        sign = grid.sign[f]
        keep = vals > x if sign > 0 else vals < x if sign < 0 else vals != x
        if grid.ratio_bound[f]:
            keep &= vals > 0
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
    pair_features: int = DEFAULT_PAIR_FEATURES,
    years: Sequence[int] | np.ndarray | None = None,
    reference_years: Sequence[int] | np.ndarray | None = None,
    min_year_rows: int = MIN_YEAR_ROWS,
) -> list[LeverResult]:
    """One :class:`LeverResult` per row of ``X_rows`` (see the module docstring for the search).

    ``actionable``: the features a policy can move (default: the catalogue's actionable ones;
    those the model does not use are ignored); ``directions``: feature -> good direction (+1, -1
    or None; default: the catalogue's); ``reference_X``: the comparative clusters' rows that bound
    and scale every move. With ``years`` (one per row of ``X_rows``) and ``reference_years`` (one
    per row of ``reference_X``), each row is bounded by the comparative clusters of its own year
    (``year_reference`` with ``min_year_rows``); without them by all of ``reference_X``.
    """
    if actionable is None or directions is None:
        catalogue = catalogue_levers()
        actionable = list(catalogue) if actionable is None else actionable
        directions = catalogue if directions is None else directions
    if (years is None) != (reference_years is None):
        raise ValueError("give both years and reference_years, or neither")
    matrix = model.matrix(X_rows).to_numpy(dtype=float)
    proba = model.predict_proba(X_rows)
    classes = [int(c) for c in model.meta.classes]
    class_of = {STAGES[c]: i for i, c in enumerate(classes)}
    row_years = np.asarray(years) if years is not None else np.zeros(len(matrix))
    if len(row_years) != len(matrix):
        raise ValueError(f"{len(row_years)} years for {len(matrix)} rows")
    grids: dict[object, _Grid] = {}

    def grid_of(year: object) -> _Grid:
        if year not in grids:
            ref = (
                reference_X
                if reference_years is None
                else year_reference(reference_X, reference_years, year, min_year_rows)  # type: ignore[arg-type]
            )
            grids[year] = _grid(model, ref, actionable, directions, quantiles)
        return grids[year]

    results: list[LeverResult] = []
    pending: list[tuple[int, int, dict, _Grid]] = []  # (row, target class, moves, grid)
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
                else f"mature with decline not likely (p_decline {p_decline:.2f} "
                f"< {MATURE_DECLINE_RISK})"
            )
            continue
        result.p_target_before = float(proba[i, STAGE_ID[target]])
        if target not in class_of:
            result.reason = f"the model was not trained on stage {target!r}"
            continue
        grid = grid_of(row_years[i].item())
        moves = _moves(grid, matrix[i])
        if not moves:
            result.reason = (
                "no actionable feature can move: none is measured for this cluster or has room "
                "within P5-P95 of comparative clusters in its good direction"
            )
            continue
        pending.append((i, class_of[target], moves, grid))

    searches = [_Search(i, target, moves, matrix[i], grid) for i, target, moves, grid in pending]
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
    _verify(model, X_rows, searches, results)
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
        self.single_ok = np.zeros(0, dtype=bool)
        self.chunk_ok = np.zeros(0, dtype=bool)

    def single_rows(self) -> np.ndarray:
        blocks = []
        for f, (vals, _, _) in self.moves.items():
            block = np.repeat(self.row[None, :], len(vals), axis=0)
            blocks.append(move(block, self.grid.column, f, vals))
        rows = np.vstack(blocks)
        self.single_ok = _within(self.grid, self.row, rows)
        return rows

    def take_singles(self, margins: np.ndarray, pair_features: int) -> None:
        gains: dict[str, float] = {}
        start = 0
        for f, (vals, costs, levels) in self.moves.items():
            m = margins[start : start + len(vals)]
            ok = self.single_ok[start : start + len(vals)]
            start += len(vals)
            gains[f] = float(_gap(m[ok], self.target).max()) if ok.any() else -np.inf
            hit = np.flatnonzero(_reached(m, self.target) & ok)
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
        # Grouped by feature pair, so that each pair's derived features follow in one pass.
        by_pair: dict[tuple[str, str], list[int]] = {}
        for r, (f, _, g, _) in enumerate(chunk):
            by_pair.setdefault((f, g), []).append(r)
        for (f, g), at in by_pair.items():
            a = [chunk[r][1] for r in at]
            b = [chunk[r][3] for r in at]
            block = move(rows[at], self.grid.column, f, self.moves[f][0][a])
            rows[at] = move(block, self.grid.column, g, self.moves[g][0][b])
        self.chunk_ok = _within(self.grid, self.row, rows)
        return rows

    def take_chunk(self, margins: np.ndarray) -> None:
        hit = np.flatnonzero(_reached(margins, self.target) & self.chunk_ok)
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
) -> None:
    """Predict every changed row again through the model's public path and record what it says."""
    found = [s for s in searches if s.best is not None]
    for s in searches:
        if s.best is None:
            results[s.i].reason = (
                f"no move of one or two of {', '.join(s.moves)} within P5-P95 of comparative "
                f"clusters (in their good direction, with the features derived from them "
                f"following and staying within P5-P95 too) makes the model predict "
                f"{results[s.i].target_stage}"
            )
    if not found:
        return
    names = list(model.meta.features)
    column = {f: j for j, f in enumerate(names)}
    before = model.matrix(X_rows.iloc[[s.i for s in found]]).to_numpy(dtype=float)
    changed = before.copy()
    for r, s in enumerate(found):
        for f, to, _, _ in s.best[1]:  # type: ignore[index]
            changed[r : r + 1] = move(changed[r : r + 1], column, f, to)
    after = model.predict_proba(pd.DataFrame(changed, columns=names))
    for r, s in enumerate(found):
        result = results[s.i]
        cost, picks = s.best  # type: ignore[misc]
        predicted = STAGES[int(after[r].argmax())]
        result.changes = [Change(f, float(s.row[column[f]]), to) for f, to, _, _ in picks]
        result.derived = [
            [
                Change(d, float(before[r, column[d]]), float(changed[r, column[d]]))
                for d in derived_features(c.feature, names)
            ]
            for c in result.changes
        ]
        result.to_quantiles = [level for _, _, level, _ in picks]
        result.change_costs = [c for _, _, _, c in picks]
        result.cost = cost
        result.predicted_after = predicted
        target = STAGE_ID[result.target_stage]  # type: ignore[index]
        result.p_target_after = float(after[r, target])
        runner_up = max((k for k in range(len(STAGES)) if k != target), key=lambda k: after[r, k])
        result.runner_up_after = STAGES[runner_up]
        result.p_runner_up_after = float(after[r, runner_up])
        result.reachable = predicted == result.target_stage
        if result.reachable:
            moved = [
                f"{'raise' if c.to_value > c.from_value else 'lower'} {c.feature} from "
                f"{c.from_value:.4g} to {c.to_value:.4g} (P{100 * q:.0f} of comparative clusters)"
                + (f", with {', '.join(d.feature for d in ds)} following" if ds else "")
                for c, q, ds in zip(
                    result.changes, result.to_quantiles, result.derived, strict=True
                )
            ]
            result.reason = (
                f"{' and '.join(moved)}: the model then predicts {predicted} "
                f"(p {result.p_target_after:.2f}, runner-up {result.runner_up_after} "
                f"{result.p_runner_up_after:.2f})"
            )
        else:
            result.reason = (
                f"the search's move predicts {predicted} on re-check, not {result.target_stage}"
            )
