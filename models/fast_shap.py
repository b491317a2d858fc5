"""Exact TreeSHAP for one class per row, at about 1/K of the cost of all K classes.

A ``multi:softprob`` booster grows K trees per round, one for each class (``tree_info`` in the
model JSON says which). ``Booster.predict(pred_contribs=True)`` runs TreeSHAP over every tree for
every row, although a reader of one row's explanation only needs the trees of one class. So the
booster is split once into K single-output boosters, each holding only class k's trees with class
k's intercept as its ``base_score`` (objective ``reg:squarederror``, whose margin is its output);
each row then goes through the booster of the class asked for. TreeSHAP is exact and additive
per tree, so the result is the same contributions as the full call's ``[:, k, :]`` slice, up to
float32 summation order.
"""

from __future__ import annotations

import json
import threading
import weakref

import numpy as np
import pandas as pd
import xgboost as xgb

_SINGLE_OBJECTIVE = {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}


def _base_scores(learner: dict) -> list[str]:
    """The per-class intercepts, as stored (a bracketed list in xgboost 3, a scalar before)."""
    raw = str(learner["learner_model_param"]["base_score"]).strip()
    if raw.startswith("["):
        return [v.strip() for v in raw.strip("[]").split(",")]
    return [raw]


def _nthread(booster: xgb.Booster) -> int | None:
    try:
        config = json.loads(booster.save_config())
        value = int(config["learner"]["generic_param"]["nthread"])
    except (KeyError, ValueError, TypeError, xgb.core.XGBoostError):
        return None
    return value if value > 0 else None


def n_outputs(booster: xgb.Booster) -> int:
    """How many margins the booster predicts per row (1 for single-output objectives)."""
    learner = json.loads(booster.save_config())["learner"]
    return max(int(learner["learner_model_param"].get("num_class", "0")), 1)


def split_by_class(booster: xgb.Booster) -> list[xgb.Booster]:
    """One single-output booster per class: class k's trees and intercept, nothing else.

    Its margin equals the full booster's margin for class k, and its TreeSHAP contributions equal
    ``booster.predict(dm, pred_contribs=True)[:, k, :]``.
    """
    model = json.loads(bytes(booster.save_raw("json")))
    learner = model["learner"]
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree":
        raise ValueError(f"expected a gbtree booster, got {gbm.get('name')!r}")
    tree_model = gbm["model"]
    if int(tree_model["gbtree_model_param"].get("num_parallel_tree", "1")) != 1:
        # Rounds with several trees per class are fine for TreeSHAP, but iteration_indptr below
        # assumes one tree per round; no model of this project uses forests of boosted trees.
        raise ValueError("boosters with num_parallel_tree > 1 are not supported")
    k_classes = max(int(learner["learner_model_param"].get("num_class", "0")), 1)
    bases = _base_scores(learner)
    if len(bases) == 1:
        bases = bases * k_classes
    tree_info = np.asarray(tree_model["tree_info"], dtype=int)
    nthread = _nthread(booster)

    boosters = []
    for k in range(k_classes):
        trees = [tree_model["trees"][i] for i in np.flatnonzero(tree_info == k)]
        renumbered = []
        for new_id, tree in enumerate(trees):
            renumbered.append({**tree, "id": new_id})
        single = {
            **model,
            "learner": {
                **learner,
                "objective": _SINGLE_OBJECTIVE,
                "learner_model_param": {
                    **learner["learner_model_param"],
                    "base_score": f"[{bases[k]}]",
                    "num_class": "0",
                    "num_target": "1",
                },
                "gradient_booster": {
                    **gbm,
                    "model": {
                        **tree_model,
                        "gbtree_model_param": {
                            **tree_model["gbtree_model_param"],
                            "num_trees": str(len(renumbered)),
                        },
                        "tree_info": [0] * len(renumbered),
                        "iteration_indptr": list(range(len(renumbered) + 1)),
                        "trees": renumbered,
                    },
                },
            },
        }
        out = xgb.Booster()
        out.load_model(bytearray(json.dumps(single).encode("utf-8")))
        if nthread is not None:
            out.set_param({"nthread": nthread})
        boosters.append(out)
    return boosters


class ClassSplitExplainer:
    """Exact per-row, one-class TreeSHAP for a (multi-class) booster. Build once, reuse."""

    def __init__(self, booster: xgb.Booster) -> None:
        self.booster = booster
        self.feature_names = booster.feature_names
        self.class_boosters = split_by_class(booster)

    @property
    def n_classes(self) -> int:
        return len(self.class_boosters)

    def set_nthread(self, nthread: int) -> None:
        for b in self.class_boosters:
            b.set_param({"nthread": nthread})

    def contributions(self, X: pd.DataFrame | np.ndarray, classes: np.ndarray) -> np.ndarray:
        """(n, F + 1) contributions of each row to the margin of its class in ``classes``.

        ``classes`` holds booster class indices (0..K-1), one per row. The last column is the bias
        (the class's expected margin), as in xgboost's ``pred_contribs``.
        """
        data = X.to_numpy(dtype=np.float32) if isinstance(X, pd.DataFrame) else np.asarray(X)
        data = np.asarray(data, dtype=np.float32)
        classes = np.asarray(classes, dtype=int)
        if classes.shape != (len(data),):
            raise ValueError(f"expected one class per row ({len(data)}), got {classes.shape}")
        if len(classes) and (classes.min() < 0 or classes.max() >= self.n_classes):
            raise ValueError(f"class indices must lie in 0..{self.n_classes - 1}")
        out = np.zeros((len(data), data.shape[1] + 1), dtype=np.float32)
        for k in np.unique(classes):
            rows = np.flatnonzero(classes == k)
            dm = xgb.DMatrix(data[rows], missing=np.nan, feature_names=self.feature_names)
            out[rows] = self.class_boosters[k].predict(dm, pred_contribs=True)
        return out

    def predicted_contributions(
        self, X: pd.DataFrame | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The predicted class of each row (argmax margin) and its contributions to that margin."""
        data = X.to_numpy(dtype=np.float32) if isinstance(X, pd.DataFrame) else np.asarray(X)
        data = np.asarray(data, dtype=np.float32)
        if len(data) == 0:
            return np.zeros(0, dtype=int), np.zeros((0, data.shape[1] + 1), dtype=np.float32)
        margin = self.booster.inplace_predict(data, predict_type="margin", missing=np.nan)
        margin = np.asarray(margin).reshape(len(data), -1)
        classes = margin.argmax(axis=1) if margin.shape[1] > 1 else np.zeros(len(data), dtype=int)
        contribs = self.contributions(data, classes)
        # A cheap guard against a change of xgboost's model format: SHAP values are additive,
        # so each row's sum must give back the full booster's margin of its class.
        gap = np.abs(contribs.sum(axis=1) - margin[np.arange(len(data)), classes])
        if gap.max() > 1e-3:
            raise RuntimeError(f"per-class boosters disagree with the model (by {gap.max():.3g})")
        return classes, contribs


# One explainer per booster object: splitting costs a JSON round trip of the whole model.
_CACHE: weakref.WeakKeyDictionary[xgb.Booster, tuple[int, ClassSplitExplainer]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def explainer_for(booster: xgb.Booster) -> ClassSplitExplainer:
    """The cached :class:`ClassSplitExplainer` of ``booster`` (rebuilt if it gained rounds)."""
    rounds = booster.num_boosted_rounds()
    with _LOCK:
        hit = _CACHE.get(booster)
        if hit is not None and hit[0] == rounds:
            return hit[1]
    explainer = ClassSplitExplainer(booster)
    with _LOCK:
        _CACHE[booster] = (rounds, explainer)
    return explainer
