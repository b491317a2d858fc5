"""The score table: one row per input row with its stage, probabilities, drivers, recommendations
and how far its values lie from the training data. Shared by ``clusterstage score`` and the
registered MLflow model, so the two give the same table.

Columns (``output_columns``): ``row`` (the input's 1-based data row; empty for rows aggregated
from firm rows), region, cluster, year, ``stage`` and ``p_<stage>`` for the five stages (the
model's calibrated probabilities), ``driver_<i>_feature`` / ``_value`` / ``_percentile`` /
``_contribution`` for the top-k drivers (exact TreeSHAP contributions to the raw margin of the
predicted stage, models.fast_shap; features with no contribution are never drivers, so a row may
have fewer; the percentile of the value among the comparative clusters of the row's year, see
``percentiles``),
``recommendations`` (instrument ids, best first, ';'-joined: policy.ranking's ranking for the
row's stage and drivers, without levers and before the portfolio guards, which need a region's
whole portfolio; how many and by which weights: ``n_recommendations`` and ``scoring``),
``n_missing_features`` (model features without a value), ``out_of_range`` and
``out_of_range_features`` (see ``range_bounds``; a row missing more model features than any
training row did is out of range too, listed as ``n_missing_features``) and ``error``: why a
row was not scored (then every score column is empty): a bad row, a total row (the input's
reference, not a cluster), or a row without any change over time known (``change_known``), which
cannot show a stage; ``not_scored_kind`` tells the three apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from features.groups import NATIONAL_TOTAL, REGION_TOTAL, Group
from features.indicators.dynamics import COLUMNS as DYNAMICS
from features.lags import add_lags, lag_columns
from features.national_context import NationalContext, group_features
from features.row_checks import ERROR, KEYS, ROW
from features.schemas import TOTAL_LABEL
from features.stages import STAGES
from models.bundle import PROBA_COLUMNS, StageModel
from models.calibration import apply_temperature
from models.defaults import DEFAULT_TOP_K
from models.explain import percentile_among
from models.fast_shap import explainer_for
from policy.knowledge_base import KnowledgeBase, load_knowledge_base
from policy.ranking import DEFAULT_K, DEFAULT_SCORING, Scoring, recommend_ids, torn_stages

# Instruments recommended per row: policy's default (params.yaml recommend.k).
N_RECOMMENDATIONS = DEFAULT_K
# How far beyond the training rows' [P1, P99] a value may lie, in units of that range's width,
# before it counts as out of range; see range_bounds.
RANGE_MARGIN = 0.5
DRIVER_FIELDS = ("feature", "value", "percentile", "contribution")
SCORE_COLUMNS = ["stage", *PROBA_COLUMNS]
TAIL_COLUMNS = ["recommendations", "n_missing_features", "out_of_range", "out_of_range_features"]
# The reason of a row without any change over time known (see change_known).
NO_CHANGE = "no year-on-year change known (needs the year before): cannot judge a stage"


def default_knowledge_base() -> KnowledgeBase:
    """The packaged knowledge base (policy/instruments.yaml).

    Read through the file next to policy/knowledge_base.py when importlib.resources cannot see
    the package as one (an editable install made before policy/ had an __init__.py makes it a
    namespace package outside the project folder, e.g. under ``mlflow models serve``).
    """
    try:
        return load_knowledge_base()
    except OSError:
        from policy import knowledge_base

        return load_knowledge_base(Path(knowledge_base.__file__).with_name("instruments.yaml"))


def driver_columns(top_k: int) -> list[str]:
    return [f"driver_{i}_{f}" for i in range(1, top_k + 1) for f in DRIVER_FIELDS]


def output_columns(top_k: int) -> list[str]:
    return [ROW, *KEYS, *SCORE_COLUMNS, *driver_columns(top_k), *TAIL_COLUMNS, ERROR]


def _dtypes(top_k: int) -> dict[str, str]:
    types = {ROW: "Int64", "region": "str", "cluster": "str", "year": "Int64", "stage": "str"}
    types.update(dict.fromkeys(PROBA_COLUMNS, "float64"))
    for column in driver_columns(top_k):
        types[column] = "str" if column.endswith("_feature") else "float64"
    types.update(
        {
            "recommendations": "str",
            "n_missing_features": "Int64",
            "out_of_range": "boolean",
            "out_of_range_features": "str",
            ERROR: "str",
        }
    )
    return types


def conform(table: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The table with exactly the output columns, in order, with their fixed types (nullable
    where error rows leave them empty), so every group of a streamed run writes one schema."""
    types = _dtypes(top_k)
    out = table.reindex(columns=output_columns(top_k))
    for column, dtype in types.items():
        series = out[column]
        if dtype == "str":
            values = series.to_numpy(dtype=object)
            values = np.where(pd.isna(values), None, values)
            out[column] = pd.array(values, dtype="str")
        elif str(series.dtype) != dtype:
            out[column] = series.astype(dtype)
    return out.reset_index(drop=True)


def empty_table(top_k: int) -> pd.DataFrame:
    return conform(pd.DataFrame(), top_k)


# --- where values lie among the training rows ------------------------------------------------


def range_bounds(model: StageModel) -> tuple[np.ndarray, np.ndarray]:
    """Per model feature, the [low, high] outside which a value is out of range.

    The training rows' [P1, P99] (``meta.ranges``) widened by ``RANGE_MARGIN`` of its width on
    each side, and never narrower than the training [min, max] (``meta.quantiles`` P0 and P100,
    when the model has them). Plain [P1, P99] would flag about 2 % of training-like values per
    feature, so with ~30 features most rows; the margin keeps the flag for values unlike the
    comparative clusters, and the [min, max] floor never flags a value some training row had
    (a feature that is almost always 0 has P1 = P99). Features without a range are never flagged.
    """
    low = np.full(len(model.meta.features), -np.inf)
    high = np.full(len(model.meta.features), np.inf)
    for j, name in enumerate(model.meta.features):
        bounds = model.meta.ranges.get(name)
        if not bounds:
            continue
        p1, p99 = float(bounds[0]), float(bounds[1])
        margin = RANGE_MARGIN * (p99 - p1)
        low[j], high[j] = p1 - margin, p99 + margin
        grid = model.meta.quantiles.get(name)
        if grid:
            low[j], high[j] = min(low[j], float(grid[0])), max(high[j], float(grid[-1]))
    return low, high


def percentiles(
    model: StageModel,
    values: np.ndarray,
    years: np.ndarray | None = None,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """Percentile (0-100) of values among the training rows, read from the model's percentile
    grids (1-point resolution; ties counted half as in models.explain.percentile_among); NaN
    where the value is missing or the model has no grid.

    ``values`` is (n, F) in the model's feature order. Without ``columns`` the result is (n, F);
    with ``columns`` (n, d) of feature indices it is (n, d): the percentile of
    ``values[i, columns[i, j]]``, so that a table ranks only the features it shows.

    With ``years`` (one per row) and per-year grids in the model (``meta.year_quantiles``), a
    row is ranked among the comparative clusters of its year, or of the nearest training year
    (the earlier of two as near), as ``explain`` ranks it; rows without a year, and models
    without per-year grids, use the grids pooled over all years (``meta.quantiles``)."""
    n, n_features = values.shape
    if columns is None:
        columns = np.broadcast_to(np.arange(n_features), (n, n_features))
    depth = columns.shape[1]
    rows = np.repeat(np.arange(n), depth)
    feats = np.asarray(columns, dtype=np.int64).ravel()
    out = np.full(rows.size, np.nan)
    if rows.size == 0:
        return out.reshape(n, depth)
    # Per row, which grids rank it: a training year's (its index in known), or -1: the pooled.
    grid_of = np.full(n, -1, dtype=np.int64)
    by_year = model.meta.year_quantiles
    known = np.array(sorted(int(y) for y in by_year), dtype=np.int64) if by_year else None
    if years is not None and known is not None and n:
        years = np.asarray(years, dtype=float)
        has_year = ~np.isnan(years)
        # argmin takes the first of equal distances: the earlier year
        nearest = np.abs(years[has_year, None] - known[None, :]).argmin(axis=1)
        grid_of[has_year] = nearest
    pair_grid = grid_of[rows]
    order = np.lexsort((feats, pair_grid))
    pair_grid, sorted_feats = pair_grid[order], feats[order]
    starts = np.flatnonzero(
        np.r_[True, (pair_grid[1:] != pair_grid[:-1]) | (sorted_feats[1:] != sorted_feats[:-1])]
    )
    names = model.meta.features
    for start, stop in zip(starts, np.r_[starts[1:], order.size], strict=True):
        g, j = pair_grid[start], sorted_feats[start]
        grids = model.meta.quantiles if g < 0 else by_year[str(int(known[g]))]
        grid = grids.get(names[j])
        if grid:
            at = order[start:stop]
            out[at] = percentile_among(values[rows[at], j], np.asarray(grid, dtype=float))
    return out.reshape(n, depth)


# --- joined labels ------------------------------------------------------------------------------


def _joined(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, the labels of its non-negative codes (n, m) joined with ';' (each distinct row
    pattern is joined once: there are few)."""
    if codes.shape[0] == 0:
        return np.empty(0, dtype=object)
    if codes.shape[1] == 0:
        return np.full(codes.shape[0], "", dtype=object)
    bits = int(len(labels)).bit_length()
    if bits * codes.shape[1] <= 62:
        # One int64 per row (code + 1 in each field): a 1-d unique, much faster than axis=0.
        packed = np.zeros(codes.shape[0], dtype=np.int64)
        for j in range(codes.shape[1]):
            packed = (packed << bits) | (codes[:, j].astype(np.int64) + 1)
        _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
        patterns = codes[first]
    else:
        patterns, inverse = np.unique(codes, axis=0, return_inverse=True)
    text = np.array([";".join(labels[c] for c in p if c >= 0) for p in patterns], dtype=object)
    return text[inverse.ravel()]


def _joined_flags(flags: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, the labels of its True columns (n, F) joined with ';' (each distinct row
    pattern is joined once: there are few)."""
    if flags.shape[0] == 0:
        return np.empty(0, dtype=object)
    # The flags as int64 words of 62 bits; rows are told apart by hashing the words (a 2-d
    # np.unique over a hundred features sorted whole rows and cost a tenth of scoring's time).
    words = [
        flags[:, i : i + 62].astype(np.int64)
        @ (np.int64(1) << np.arange(min(62, flags.shape[1] - i), dtype=np.int64))
        for i in range(0, flags.shape[1], 62)
    ] or [np.zeros(flags.shape[0], dtype=np.int64)]
    inverse = pd.MultiIndex.from_arrays(words).factorize()[0]
    _, first = np.unique(inverse, return_index=True)
    text = np.array([";".join(labels[flags[i]]) for i in first], dtype=object)
    return text[inverse]


# --- the score table ------------------------------------------------------------------------


def score_features(
    features: pd.DataFrame,
    model: StageModel,
    *,
    top_k: int = DEFAULT_TOP_K,
    kb: KnowledgeBase | None = None,
    n_recommendations: int = N_RECOMMENDATIONS,
    scoring: Scoring = DEFAULT_SCORING,
) -> pd.DataFrame:
    """The score columns for a feature frame (features.build), one row per feature row, in order:
    keys, stage, p_<stage>, drivers, recommendations, n_missing_features, out_of_range,
    out_of_range_features (no ``row`` or ``error``: see ``score_table``).

    One margin prediction gives stage and probabilities (softmax(margin / T)); TreeSHAP runs only
    the predicted stage's trees (models.fast_shap). ``kb`` defaults to the packaged knowledge base.
    """
    if top_k < 1:
        raise ValueError("top_k must be at least 1")
    kb = kb if kb is not None else default_knowledge_base()
    names = list(model.meta.features)
    X = model.matrix(features)
    values = X.to_numpy(dtype="float64")
    n, n_features = values.shape
    keys = features[[k for k in KEYS if k in features.columns]].reset_index(drop=True)
    classes = np.asarray(model.meta.classes, dtype=int)
    if n:
        data = values.astype(np.float32)
        margins = np.asarray(
            model.booster.inplace_predict(data, predict_type="margin", missing=np.nan)
        ).reshape(n, -1)
        k_idx = margins.argmax(axis=1)
        proba = np.zeros((n, len(STAGES)))
        proba[:, classes] = apply_temperature(margins, model.meta.temperature)
        contributions = explainer_for(model.booster).contributions(data, k_idx)[:, :-1]
        contributions = contributions.astype(np.float64)
    else:
        k_idx = np.zeros(0, dtype=int)
        proba = np.zeros((0, len(STAGES)))
        contributions = np.zeros((0, n_features))
    stage_id = classes[k_idx] if n else np.zeros(0, dtype=int)
    # Columns are gathered and joined once: added one by one, a large top_k fragments the frame
    # (pandas then warns for every column past the hundredth).
    out: dict[str, np.ndarray] = {"stage": np.asarray(STAGES, dtype=object)[stage_id]}
    for s, column in enumerate(PROBA_COLUMNS):
        out[column] = proba[:, s]

    depth = min(top_k, n_features)
    order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :depth]
    top_c = np.take_along_axis(contributions, order, axis=1)
    present = top_c != 0.0  # a feature that contributes nothing is no driver
    top_v = np.take_along_axis(values, order, axis=1)
    years = keys["year"].to_numpy(dtype=float, na_value=np.nan) if "year" in keys.columns else None
    top_p = percentiles(model, values, years, columns=order)
    label = np.asarray(names, dtype=object)
    for i in range(top_k):
        prefix = f"driver_{i + 1}_"
        if i < depth:
            has = present[:, i]
            out[prefix + "feature"] = np.where(has, label[order[:, i]], None)
            out[prefix + "value"] = np.where(has, top_v[:, i], np.nan)
            out[prefix + "percentile"] = np.where(has, top_p[:, i], np.nan)
            out[prefix + "contribution"] = np.where(has, top_c[:, i], np.nan)
        else:
            out[prefix + "feature"] = np.full(n, None, dtype=object)
            out[prefix + "value"] = np.full(n, np.nan)
            out[prefix + "percentile"] = np.full(n, np.nan)
            out[prefix + "contribution"] = np.full(n, np.nan)

    chosen = recommend_ids(
        stage_id,
        np.where(present, order, -1),
        top_c,
        top_p,
        kb,
        names,
        torn=torn_stages(proba, scoring.near_tie_margin),
        k=n_recommendations,
        scoring=scoring,
    )
    ids = np.asarray([inst.id for inst in kb.instruments], dtype=object)
    out["recommendations"] = _joined(chosen, ids)
    n_missing = np.isnan(values).sum(axis=1).astype("int64")
    out["n_missing_features"] = n_missing
    low, high = range_bounds(model)
    outside = (values < low) | (values > high)  # NaN compares False: missing is not outside
    too_sparse = (
        n_missing > model.meta.max_missing
        if model.meta.max_missing is not None
        else np.zeros(len(n_missing), dtype=bool)
    )
    out["out_of_range"] = outside.any(axis=1) | too_sparse
    flags = _joined_flags(outside, label)
    # more features missing than in any training row: named as the pseudo-feature below
    out["out_of_range_features"] = np.where(
        too_sparse,
        np.where(flags == "", "n_missing_features", "n_missing_features;" + flags.astype(str)),
        flags,
    )
    return pd.concat([keys, pd.DataFrame(out, index=keys.index)], axis=1)


def plain_objects(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its nullable columns as plain objects (None for empty cells), as the
    MLflow model returns it: MLflow's JSON output cannot serialise pandas' NA."""
    out = table.copy()
    for column in out.columns:
        if not pd.api.types.is_float_dtype(out[column].dtype):
            values = out[column].astype(object)
            out[column] = values.where(values.notna(), None)
    return out


def change_known(features: pd.DataFrame) -> np.ndarray:
    """Per feature row, whether any change of the cluster over time is known: one of the growth
    and shift-share features (features.indicators.dynamics: employment and establishment CAGRs,
    shift-share, relative growth), each of which needs an earlier year of the same cluster.

    A stage is a matter of change over time (growth, decline, renewal, ...). A row without any
    such change, the first year of a history or every row of a one-year file, would be staged
    from levels alone, i.e. by how the model fills in missing growth, not by the data; so it
    is not scored (``score_table``). A row with some change known is scored as usual.
    """
    columns = [c for c in DYNAMICS if c in features.columns]
    if not columns:
        return np.zeros(len(features), dtype=bool)
    return features[columns].notna().to_numpy().any(axis=1)


def not_scored_kind(error: pd.Series) -> np.ndarray:
    """Per output row, why it has no stage: "" (it has one), "total" (a region or national total
    row: the input's reference, not a cluster), "no_change" (``NO_CHANGE``) or "failed" (the row
    could not be used: a bad cell, a repeated key, ...)."""
    text = error.astype("str")
    kind = np.where(error.notna().to_numpy(), "failed", "")
    total = text.str.startswith((REGION_TOTAL, NATIONAL_TOTAL)).fillna(False).to_numpy(dtype=bool)
    kind = np.where(total, "total", kind)
    unchanged = text.eq(NO_CHANGE).fillna(False).to_numpy(dtype=bool)
    return np.where(unchanged, "no_change", kind)


def score_table(
    features: pd.DataFrame,
    rows: Sequence[object] | pd.Series,
    errors: pd.DataFrame,
    model: StageModel,
    *,
    top_k: int = DEFAULT_TOP_K,
    kb: KnowledgeBase | None = None,
    n_recommendations: int = N_RECOMMENDATIONS,
    scoring: Scoring = DEFAULT_SCORING,
) -> pd.DataFrame:
    """The output table: the scored feature rows (``rows``: their input row numbers), the feature
    rows without any change over time known (``change_known``: their keys and ``NO_CHANGE``) and
    the rows that could not be scored (``errors``: row, region, cluster, year, error), by row."""
    row = pd.array(list(rows), dtype="Int64")
    known = change_known(features)
    scored = score_features(
        features[known].reset_index(drop=True),
        model,
        top_k=top_k,
        kb=kb,
        n_recommendations=n_recommendations,
        scoring=scoring,
    )
    scored.insert(0, ROW, row[known])
    parts = [conform(scored, top_k)]
    if not known.all():
        unchanged = features.loc[~known, KEYS].reset_index(drop=True)
        unchanged.insert(0, ROW, row[~known])
        unchanged[ERROR] = NO_CHANGE
        parts.append(conform(unchanged, top_k))
    if len(errors):
        parts.append(conform(errors, top_k))
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return table.sort_values(ROW, kind="stable", na_position="last").reset_index(drop=True)


def score_group(
    group: Group,
    context: NationalContext,
    model: StageModel,
    *,
    top_k: int = DEFAULT_TOP_K,
    kb: KnowledgeBase | None = None,
    n_recommendations: int = N_RECOMMENDATIONS,
    scoring: Scoring = DEFAULT_SCORING,
) -> pd.DataFrame:
    """The output table of one group of regions (features.groups.prepare_group)."""
    panel = group.panel
    features = (
        add_lags(group_features(panel, context), lag_columns(model.meta.features))
        if len(panel)
        else panel[KEYS]
    )
    return score_table(
        features,
        group.panel[ROW],
        group.errors,
        model,
        top_k=top_k,
        kb=kb,
        n_recommendations=n_recommendations,
        scoring=scoring,
    )


def score_rows(
    frame: pd.DataFrame,
    model: StageModel,
    *,
    top_k: int = DEFAULT_TOP_K,
    kb: KnowledgeBase | None = None,
    total_label: str = TOTAL_LABEL,
    n_recommendations: int = N_RECOMMENDATIONS,
    scoring: Scoring = DEFAULT_SCORING,
) -> pd.DataFrame:
    """The output table for panel-grain rows held in memory (the MLflow model's ``predict``):
    the whole frame is one group, so it gets what ``clusterstage score`` writes for the same rows.
    """
    from features.errors import InputError
    from features.groups import (
        given_national,
        national_errors,
        prepare_group,
        region_years,
        split_national,
    )
    from features.loaders import NATIONAL_TOTALS, check_region_totals, normalise_name
    from features.national_context import cooccurrence, national_context, partial_totals
    from features.row_checks import check_rows, reject_feature_table
    from features.schemas import PANEL_SCHEMA

    inherited = frame.attrs.get(NATIONAL_TOTALS)
    names = [normalise_name(c) for c in frame.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            None, f"two columns are named {repeated[0]!r} (ignoring case); expected unique names"
        )
    frame = frame.set_axis(names, axis=1)
    reject_feature_table(names, PANEL_SCHEMA, None)
    rows, errors = check_rows(frame, PANEL_SCHEMA)
    rows, national_rows = split_national(rows, total_label)
    if total_label.strip():
        # as `clusterstage score` checks a whole file: total rows are all or none
        untotalled, totals = region_years(rows, errors, total_label)
        check_region_totals(
            untotalled.sort_values(ROW, kind="stable"), totals, None, total_label.strip()
        )
    group = prepare_group(rows, "panel", errors=errors, total_label=total_label)
    if len(national_rows):
        group.errors = pd.concat(
            [group.errors, national_errors(national_rows, total_label)], ignore_index=True
        )
    context = national_context(
        [partial_totals(group.panel)],
        given_national(national_rows, total_label, inherited),
        total_label=total_label,
    )
    context = context.with_cooccurrence([cooccurrence(group.panel, context)])
    return score_group(
        group,
        context,
        model,
        top_k=top_k,
        kb=kb,
        n_recommendations=n_recommendations,
        scoring=scoring,
    )
