"""How far a labeller agrees with trusted labels: accuracy, Cohen's kappa, coverage, recall."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.errors import InputError
from features.stages import STAGES

KEYS = ["region", "cluster", "year"]


def _check(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in [*KEYS, "stage"] if c not in frame.columns]
    if missing:
        raise InputError(
            None, f"{name} labels need region, cluster, year, stage", column=missing[0]
        )
    out = frame[[*KEYS, "stage"]].dropna(subset=[*KEYS, "stage"])
    unknown = ~out["stage"].isin(STAGES)
    if unknown.any():
        bad = out.loc[unknown, "stage"].iloc[0]
        raise InputError(
            None,
            f"{name} labels: stage {bad!r} is not one of {', '.join(STAGES)}",
            column="stage",
        )
    # Keys may arrive as categoricals or nullable ints from different loaders; compare as values.
    out = out.astype({"region": "string", "cluster": "string", "stage": "object"})
    out["year"] = pd.to_numeric(out["year"]).astype("int64")
    return out.drop_duplicates(KEYS, keep="first")


def agreement(pred: pd.DataFrame, truth: pd.DataFrame) -> dict[str, object]:
    """Compare predicted stages with true ones on the region x cluster x year rows both hold.

    A key repeated in either frame counts once, with its first stage.

    Returns ``n`` (rows compared), ``coverage`` (share of labelled truth rows that ``pred``
    labels), ``accuracy``, ``kappa`` (Cohen's, over the five stages), ``recall`` per true stage
    (None for a stage absent from the compared truth) and ``confusion`` = {"stages": [...],
    "matrix": [[...]]} with rows = true stage, columns = predicted stage. Metrics that cannot be
    computed (nothing compared, or kappa on a single class) are None, so the dict is valid JSON.
    """
    # sklearn takes seconds to import; only pay for it when agreement is actually computed.
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    p = _check(pred, "predicted")
    t = _check(truth, "true")
    both = t.merge(p, on=KEYS, how="inner", suffixes=("_true", "_pred"))
    n = len(both)
    y_true = both["stage_true"].to_numpy(dtype=object)
    y_pred = both["stage_pred"].to_numpy(dtype=object)
    labels = list(STAGES)
    matrix = (
        confusion_matrix(y_true, y_pred, labels=labels)
        if n
        else np.zeros((len(labels), len(labels)), dtype=int)
    )
    recall: dict[str, float | None] = {}
    for i, stage in enumerate(labels):
        support = int(matrix[i].sum())
        recall[stage] = float(matrix[i, i] / support) if support else None
    kappa: float | None = None
    if n:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(cohen_kappa_score(y_true, y_pred, labels=labels))
        kappa = None if math.isnan(value) else value
    return {
        "n": n,
        "coverage": float(n / len(t)) if len(t) else None,
        "accuracy": float((y_true == y_pred).mean()) if n else None,
        "kappa": kappa,
        "recall": recall,
        "confusion": {"stages": labels, "matrix": matrix.astype(int).tolist()},
    }
