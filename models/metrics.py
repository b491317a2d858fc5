"""Evaluation metrics for stage predictions: integer stage ids 0..4 and per-stage probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from features.stages import STAGE_ID, STAGES

N_STAGES = len(STAGES)


def _life_cycle_steps() -> np.ndarray:
    """(N_STAGES, N_STAGES) booleans: the two stages are equal or one step apart in the life
    cycle. The steps are the path emerging -> growth -> mature -> decline, and renewal's three:
    it branches off a mature or a declining cluster (Stough's rejuvenation beside exhaustion,
    the 调整/转型 beside 衰退) and leads into new growth (Martin & Sunley's adaptive cycle)."""
    steps = np.eye(N_STAGES, dtype=bool)
    for a, b in [
        ("emerging", "growth"),
        ("growth", "mature"),
        ("mature", "decline"),
        ("mature", "renewal"),
        ("decline", "renewal"),
        ("renewal", "growth"),
    ]:
        steps[STAGE_ID[a], STAGE_ID[b]] = steps[STAGE_ID[b], STAGE_ID[a]] = True
    return steps


ONE_STEP = _life_cycle_steps()


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: the weighted gap between confidence and accuracy over equal-width bins."""
    y = np.asarray(y)
    if len(y) == 0:
        return float("nan")
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        mask = bins == b
        total += mask.sum() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total / len(y))


def adjacent_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Share of predictions at most one life-cycle step from the truth (``ONE_STEP``)."""
    y = np.asarray(y, dtype=int)
    if len(y) == 0:
        return float("nan")
    return float(np.mean(ONE_STEP[y, np.asarray(pred, dtype=int)]))


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Macro-F1 over the stages that occur in the truth or the predictions (scikit-learn's default
    label set): a stage that can never occur, such as renewal under the quadrant labeller, must not
    count as an F1 of 0. Every macro-F1 the project reports is this one."""
    return float(f1_score(y, pred, average="macro", zero_division=0))


def _or_none(values: np.ndarray) -> dict[str, float | None]:
    # None (JSON null) where the ratio is undefined, so that it cannot read as a score of 0
    return {s: None if np.isnan(v) else float(v) for s, v in zip(STAGES, values, strict=True)}


def stage_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, object]:
    """Every scalar metric the project reports, plus per-stage precision and recall.

    Precision and recall are given for all five stages; a stage never predicted has precision
    None and a stage without support (absent from ``y``) has recall None. Log loss is None for a
    model certain of every answer (a rule): one wrong answer makes it infinite, and any finite
    figure would only reflect the clipping.
    """
    y = np.asarray(y, dtype=int)
    proba = np.asarray(proba, dtype=float)
    pred = proba.argmax(axis=1)
    labels = list(range(N_STAGES))
    precision, recall, _, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=np.nan
    )
    certain = bool(np.isin(proba, (0.0, 1.0)).all())
    clipped = np.clip(proba, 1e-6, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return {
        "macro_f1": macro_f1(y, pred),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "accuracy": float(np.mean(pred == y)),
        "adjacent_accuracy": adjacent_accuracy(y, pred),
        "log_loss": None if certain else float(log_loss(y, clipped, labels=labels)),
        "ece": expected_calibration_error(y, proba),
        "n": int(len(y)),
        "precision": _or_none(precision),
        "recall": _or_none(recall),
        "support": {s: int(n) for s, n in zip(STAGES, support, strict=True)},
    }


def confusion(y: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Confusion matrix with stage names: rows are true stages (index ``true_stage``), columns
    the predicted ones (``predicted_<stage>``)."""
    cm = confusion_matrix(y, pred, labels=list(range(N_STAGES)))
    return pd.DataFrame(
        cm,
        index=pd.Index(STAGES, name="true_stage"),
        columns=[f"predicted_{s}" for s in STAGES],
    )


def confusion_counts(y: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, int]]:
    """``confusion`` as {true stage: {predicted stage: count}}, for metrics.json."""
    frame = confusion(y, pred)
    return {
        t: dict(zip(STAGES, map(int, row), strict=True))
        for t, row in zip(STAGES, frame.values, strict=True)
    }


def per_region(regions: np.ndarray, y: np.ndarray, proba: np.ndarray) -> pd.DataFrame:
    """Macro-F1, accuracy, adjacent accuracy and calibration error for each region.

    The ECE of a region is the one that matters to a user scoring a new region: the pooled ECE
    can hide a model over-confident in some regions and under-confident in others.
    """
    proba = np.asarray(proba, dtype=float)
    pred = proba.argmax(axis=1)
    rows = []
    for region in pd.unique(np.asarray(regions)):
        m = np.asarray(regions) == region
        rows.append(
            {
                "region": region,
                "n": int(m.sum()),
                "macro_f1": macro_f1(y[m], pred[m]),
                "accuracy": float(np.mean(pred[m] == y[m])),
                "adjacent_accuracy": adjacent_accuracy(y[m], pred[m]),
                "ece": expected_calibration_error(y[m], proba[m]),
            }
        )
    return pd.DataFrame(rows)


def _macro_f1(cm: np.ndarray) -> np.ndarray:
    """``macro_f1`` from confusion matrices (..., N_STAGES, N_STAGES): the mean F1 of the stages
    in the truth or the predictions, which are exactly those with 2tp + fn + fp > 0."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    denominator = cm.sum(axis=-1) + cm.sum(axis=-2)  # 2tp + fn + fp
    present = denominator > 0
    f1 = np.divide(2.0 * tp, denominator, out=np.zeros(tp.shape), where=present)
    return f1.sum(axis=-1) / present.sum(axis=-1)


def macro_f1_lead(
    y: np.ndarray,
    proba: np.ndarray,
    baseline_proba: np.ndarray,
    regions: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, object]:
    """How far one model's macro-F1 lies above a baseline's on the same out-of-fold rows, and how
    sure that lead is when the regions themselves are a sample.

    The interval is a paired bootstrap over regions (the unit of generalisation): ``n_boot`` draws
    of as many regions as there are, with replacement, both models scored on the same rows of each
    draw, the percentiles of the lead at ``(1 - level) / 2`` and ``(1 + level) / 2``. Regions won
    and lost compare the per-region macro-F1 of ``per_region``.
    """
    y = np.asarray(y, dtype=int)
    regions = np.asarray(regions)
    names, code = np.unique(regions, return_inverse=True)
    cells = (code * N_STAGES + y) * N_STAGES
    pair = np.stack([np.asarray(p).argmax(axis=1) for p in (proba, baseline_proba)])
    # Per region and model, the confusion matrix as a flat row; a draw is a weighted sum of rows.
    counts = np.zeros((2, len(names) * N_STAGES * N_STAGES))
    for m in range(2):
        np.add.at(counts[m], cells + pair[m], 1.0)
    counts = counts.reshape(2, len(names), N_STAGES * N_STAGES)
    lead = float(
        _macro_f1(counts[0].sum(axis=0).reshape(N_STAGES, N_STAGES))
        - _macro_f1(counts[1].sum(axis=0).reshape(N_STAGES, N_STAGES))
    )
    out: dict[str, object] = {"macro_f1": lead}
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=n_boot)
        shape = (n_boot, N_STAGES, N_STAGES)
        leads = _macro_f1((draws @ counts[0]).reshape(shape)) - _macro_f1(
            (draws @ counts[1]).reshape(shape)
        )
        low, high = np.percentile(leads, [50 * (1 - level), 50 * (1 + level)])
        out |= {"ci_low": float(low), "ci_high": float(high), "level": level, "n_boot": n_boot}
    own = per_region(regions, y, proba).set_index("region")["macro_f1"]
    other = per_region(regions, y, baseline_proba).set_index("region")["macro_f1"]
    diff = own - other.reindex(own.index)
    return out | {
        "regions_won": int((diff > 1e-12).sum()),
        "regions_lost": int((diff < -1e-12).sum()),
        "regions": int(len(names)),
    }
