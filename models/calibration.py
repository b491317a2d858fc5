"""Temperature scaling of multi-class margins: one parameter, so it cannot overfit a small fold."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax


def fit_temperature(margins: np.ndarray, y: np.ndarray) -> float:
    """The temperature T > 0 that minimises the log loss of softmax(margins / T)."""
    y = np.asarray(y, dtype=int)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return float(-log_softmax(margins / np.exp(log_t), axis=1)[rows, y].mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def apply_temperature(margins: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities from margins (n, k) at the given temperature.

    A vector is read as the margins of a one-class model (XGBoost's multi:softprob booster with
    one class returns them so; this project fits no binary objective): probability 1.
    """
    margins = np.asarray(margins, dtype=float)
    if margins.ndim == 1:
        margins = margins[:, None]
    return softmax(margins / temperature, axis=1)
