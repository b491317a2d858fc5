"""Why the model puts a cluster in its stage: exact TreeSHAP contributions, drivers, global views.

Contributions are to the model's **raw margin** of a stage (the booster's output before the
softmax). The StageModel's probability is ``softmax(margin / T)`` with its calibration temperature
``T`` (``meta.temperature``), so a contribution ``c`` moves the tempered logit by ``c / T``; signs
and rankings are the same either way. For every row, ``values.sum() + base`` equals the margin of
the explained stage.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb

from features.stages import STAGE_ID, STAGES
from models.bundle import StageModel
from models.defaults import DEFAULT_BEESWARM_FEATURES
from models.fast_shap import explainer_for

TOWARDS = "towards"
AWAY = "away from"


@dataclass(frozen=True)
class Contributions:
    """Per-row contributions of each feature to the margin of one stage per row."""

    values: np.ndarray  # (n, F): feature contributions
    base: np.ndarray  # (n,): the stage's expected margin (the bias term)
    stage: np.ndarray  # (n,): the explained stage id of each row (index into STAGES)
    features: list[str]

    @property
    def margin(self) -> np.ndarray:
        return self.values.sum(axis=1) + self.base

    @property
    def stage_name(self) -> np.ndarray:
        return np.asarray(STAGES, dtype=object)[self.stage]


def _stage_ids(stages: object, n: int) -> np.ndarray:
    """Stage names or ids (one, or one per row) as an array of ids."""
    arr = np.atleast_1d(np.asarray(stages, dtype=object))
    if arr.size == 1 and n != 1:
        arr = np.repeat(arr, n)
    if arr.shape != (n,):
        raise ValueError(f"expected one stage or one per row ({n}), got {arr.shape[0]}")
    ids = np.empty(n, dtype=int)
    for i, s in enumerate(arr):
        if isinstance(s, str):
            if s not in STAGE_ID:
                raise ValueError(f"unknown stage {s!r}; expected one of {', '.join(STAGES)}")
            ids[i] = STAGE_ID[s]
        else:
            ids[i] = int(s)
            if not 0 <= ids[i] < len(STAGES):
                raise ValueError(f"stage id {ids[i]} outside 0..{len(STAGES) - 1}")
    return ids


def _class_index(model: StageModel, stage_ids: np.ndarray) -> np.ndarray:
    """Booster output columns of vocabulary stage ids; a stage the model never saw is an error."""
    classes = np.asarray(model.meta.classes, dtype=int)
    lookup = np.full(len(STAGES), -1)
    lookup[classes] = np.arange(len(classes))
    idx = lookup[stage_ids]
    if (idx < 0).any():
        missing = STAGES[int(stage_ids[idx < 0][0])]
        raise ValueError(f"the model was not trained on stage {missing!r}; it cannot explain it")
    return idx


def contributions(
    model: StageModel, X: pd.DataFrame, stages: object | None = None
) -> Contributions:
    """Exact TreeSHAP contributions to the margin of each row's predicted stage (default), or of
    ``stages``: one stage (name or id) for every row, or one per row.

    Only the trees of the explained stage are evaluated (see models.fast_shap), so this costs
    about 1/K of xgboost's all-stage ``pred_contribs``.
    """
    matrix = model.matrix(X)
    explainer = explainer_for(model.booster)
    classes = np.asarray(model.meta.classes, dtype=int)
    if stages is None:
        idx, raw = explainer.predicted_contributions(matrix)
    else:
        idx = _class_index(model, _stage_ids(stages, len(matrix)))
        raw = explainer.contributions(matrix, idx)
    raw = raw.astype(np.float64)
    return Contributions(
        values=raw[:, :-1],
        base=raw[:, -1],
        stage=classes[idx] if len(idx) else np.zeros(0, dtype=int),
        features=list(model.meta.features),
    )


def runner_up_stages(model: StageModel, X: pd.DataFrame) -> np.ndarray | None:
    """Per row, the stage id with the second-highest margin (so probability), or None for a model
    of one stage. Ties go to the earlier class, as ``predict_frame``'s argmax does."""
    classes = np.asarray(model.meta.classes, dtype=int)
    if len(classes) < 2:
        return None
    matrix = model.matrix(X).to_numpy(dtype=np.float32)
    if not len(matrix):
        return np.zeros(0, dtype=int)
    margins = np.asarray(
        model.booster.inplace_predict(matrix, predict_type="margin", missing=np.nan)
    ).reshape(len(matrix), -1)
    order = np.argsort(-margins, axis=1, kind="stable")
    return classes[order[:, 1]]


def all_stage_contributions(model: StageModel, X: pd.DataFrame) -> np.ndarray:
    """(n, K, F + 1) contributions to every trained stage's margin (K = len(meta.classes)),
    the last column the bias; xgboost's own TreeSHAP over all trees."""
    matrix = model.matrix(X)
    out = model.booster.predict(xgb.DMatrix(matrix, missing=np.nan), pred_contribs=True)
    if out.ndim == 2:
        out = out[:, None, :]
    return out.astype(np.float64)


def percentile_among(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Percentile rank (0-100) of each value among the non-missing reference values, ties counted
    half (scipy's ``percentileofscore(kind="mean")``); NaN where the value or reference is missing.
    """
    ref = np.sort(np.asarray(reference, dtype=float))
    ref = ref[~np.isnan(ref)]
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    if ref.size == 0:
        return out
    ok = ~np.isnan(values)
    below = np.searchsorted(ref, values[ok], side="left")
    at_or_below = np.searchsorted(ref, values[ok], side="right")
    out[ok] = 100.0 * (below + at_or_below) / (2.0 * ref.size)
    return out


def _number(value: float) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def top_drivers(
    contribs: Contributions,
    X: pd.DataFrame,
    reference_X: pd.DataFrame,
    k: int = 3,
    versus: Contributions | None = None,
) -> list[list[dict[str, object]]]:
    """Per row, the ``k`` features with the largest |contribution| to the explained stage.

    Each driver: ``feature``, ``value`` (None if missing: the model routes missing values too, so
    a missing feature can still drive), ``percentile`` of the value among the comparative clusters
    (``reference_X``, the training rows; None if missing), ``contribution`` (to the raw margin),
    ``direction`` ("towards" the stage if > 0 else "away from") and ``stage``. Features with zero
    contribution are never drivers, so a row may have fewer than ``k``.

    With ``versus`` (the contributions to another stage per row, the runner-up say), each driver
    also has ``runner_up`` (that stage) and ``vs_runner_up``: its contribution to the explained
    stage's margin minus that to the other's. The probabilities compare margins through the
    softmax, so a feature that raises the explained stage's margin but the runner-up's more
    favours the runner-up: its ``vs_runner_up`` is negative though its ``contribution`` is not.
    The vs_runner_up of all features plus the two bases' difference is the margin difference.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    names = contribs.features
    values = X.reindex(columns=names).to_numpy(dtype=float)
    if values.shape[0] != contribs.values.shape[0]:
        raise ValueError(f"X has {values.shape[0]} rows, contributions {contribs.values.shape[0]}")
    if versus is not None and versus.values.shape != contribs.values.shape:
        raise ValueError("versus must hold contributions for the same rows and features")
    ref = reference_X.reindex(columns=names)
    pct = (
        np.column_stack(
            [
                percentile_among(values[:, j], ref[f].to_numpy(dtype=float))
                for j, f in enumerate(names)
            ]
        )
        if names
        else np.zeros((len(values), 0))
    )
    order = np.argsort(-np.abs(contribs.values), axis=1, kind="stable")[:, :k]
    stage_names = contribs.stage_name
    versus_names = versus.stage_name if versus is not None else None
    out: list[list[dict[str, object]]] = []
    for i in range(len(values)):
        row = []
        for j in order[i]:
            c = float(contribs.values[i, j])
            if c == 0.0:
                break
            driver: dict[str, object] = {
                "feature": names[j],
                "value": _number(values[i, j]),
                "percentile": _number(pct[i, j]),
                "contribution": c,
                "direction": TOWARDS if c > 0 else AWAY,
                "stage": str(stage_names[i]),
            }
            if versus is not None and versus_names is not None:
                driver["runner_up"] = str(versus_names[i])
                driver["vs_runner_up"] = c - float(versus.values[i, j])
            row.append(driver)
        out.append(row)
    return out


def global_importance(model: StageModel, X: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| of each feature (rows, index ``feature``) for each trained stage (columns),
    features ordered by their mean over stages, largest first."""
    stages = [STAGES[c] for c in model.meta.classes]
    if len(X):
        mean_abs = np.abs(all_stage_contributions(model, X)[:, :, :-1]).mean(axis=0).T
    else:
        mean_abs = np.zeros((len(model.meta.features), len(stages)))
    table = pd.DataFrame(
        mean_abs, index=pd.Index(model.meta.features, name="feature"), columns=stages
    )
    order = table.mean(axis=1).sort_values(ascending=False, kind="stable").index
    return table.loc[order]


@contextmanager
def _global_numpy_seed(seed: int) -> Iterator[None]:
    """NumPy's legacy global generator seeded for a block, its state given back afterwards:
    shap's beeswarm jitters its dots with it and takes no generator of its own."""
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def beeswarm_pngs(
    model: StageModel,
    X: pd.DataFrame,
    *,
    max_display: int = DEFAULT_BEESWARM_FEATURES,
    stages: Sequence[str] | None = None,
    synthetic: bool = False,
    seed: int = 0,
) -> dict[str, bytes]:
    """One SHAP beeswarm per trained stage, as the bytes of a PNG file, by stage name.

    ``synthetic`` marks the titles (plots of the synthetic reference world say so). Uses shap's
    matplotlib plot; figures are only rendered, never shown (the pipeline selects the
    Agg backend, and matplotlib falls back to it where there is no display). No network.
    The same ``seed`` draws the same PNG bytes.
    """
    import matplotlib.pyplot as plt
    import shap

    matrix = model.matrix(X)
    contribs = all_stage_contributions(model, matrix)
    pngs: dict[str, bytes] = {}
    for k, stage_id in enumerate(model.meta.classes):
        stage = STAGES[stage_id]
        if stages is not None and stage not in stages:
            continue
        explanation = shap.Explanation(
            values=contribs[:, k, :-1],
            base_values=contribs[:, k, -1],
            data=matrix.to_numpy(),
            feature_names=list(model.meta.features),
        )
        fig = plt.figure()
        try:
            with _global_numpy_seed(seed):
                shap.plots.beeswarm(explanation, max_display=max_display, show=False)
            ax = fig.axes[0]
            mark = " (synthetic data)" if synthetic else ""
            ax.set_title(f"Stage '{stage}': feature contributions to its raw margin{mark}")
            ax.set_xlabel("SHAP value (contribution to the margin; probability = softmax(m / T))")
            png = io.BytesIO()
            fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
        finally:
            plt.close(fig)
        pngs[stage] = png.getvalue()
    return pngs
