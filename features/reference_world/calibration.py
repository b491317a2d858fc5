"""Does the reference world look like real state-level cluster data? Percentiles side by side:
levels of the panel (``calibration_table``) and specialisation against the nation
(``specialisation_table``: location quotient and national share, from the features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MEASURES = ("log_employment", "log_establishments", "avg_firm_size", "wage")
_LOG = {"log_employment", "log_establishments"}


def _measures(panel: pd.DataFrame) -> dict[str, pd.Series]:
    """The compared measures of a panel-grain frame; rows without employment are left out."""
    emp = pd.to_numeric(panel["employment"], errors="coerce").astype("float64")
    est = pd.to_numeric(panel["establishments"], errors="coerce").astype("float64")
    pay = pd.to_numeric(panel["payroll"], errors="coerce").astype("float64")
    keep = emp > 0
    emp, est, pay = emp[keep], est[keep], pay[keep]
    # A zero or missing payroll (or establishment count) means suppressed, not free labour.
    est = est.where(est > 0)
    pay = pay.where(pay > 0)
    return {
        "log_employment": np.log(emp),
        "log_establishments": np.log(est).dropna(),
        "avg_firm_size": (emp / est).dropna(),
        "wage": (pay / emp).dropna(),
    }


def calibration_table(world: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """One row per measure with P10/P50/P90 of ``world`` and ``real`` and the P50 ratio.

    Both frames are in the panel grain with ``employment``, ``establishments`` and ``payroll``
    (dollars); filter them to the rows to compare (e.g. one year) before calling. The ratio is
    world / real in levels: for the log measures it is exp(P50_world - P50_real).
    Columns: measure, world_p10, world_p50, world_p90, real_p10, real_p50, real_p90, p50_ratio,
    world_n, real_n.
    """
    w, r = _measures(world), _measures(real)
    return pd.DataFrame([_row(name, w[name], r[name], log=name in _LOG) for name in MEASURES])


def _row(name: str, w: pd.Series, r: pd.Series, log: bool = False) -> dict[str, object]:
    """P10/P50/P90 of both sides and the P50 ratio world / real (in levels for a log measure)."""
    qw = w.quantile([0.1, 0.5, 0.9]).to_numpy()
    qr = r.quantile([0.1, 0.5, 0.9]).to_numpy()
    ratio = np.exp(qw[1] - qr[1]) if log else qw[1] / qr[1]
    return {
        "measure": name,
        "world_p10": qw[0],
        "world_p50": qw[1],
        "world_p90": qw[2],
        "real_p10": qr[0],
        "real_p50": qr[1],
        "real_p90": qr[2],
        "p50_ratio": float(ratio),
        "world_n": int(w.size),
        "real_n": int(r.size),
    }


def load_real_traded(path: str | Path) -> pd.DataFrame:
    """Traded clusters with employment > 0 of a US Cluster Mapping export, in the panel grain.

    Payroll is in dollars and NaN where the export suppressed it (``features.cmp.load_cmp``).
    """
    from features.cmp import load_cmp

    real = load_cmp(path)
    return real[real["traded"] & (real["employment"] > 0)].reset_index(drop=True)


SPECIALISATION = ("lq", "national_share")


def specialisation_table(world: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """P10/P50/P90 of the location quotient and the national share in two feature frames (rows
    with a value), with the P50 ratio world / real; the columns of ``calibration_table``.

    These depend on the nation the regions are measured against, which the level measures do not
    show: a world whose "nation" is its few regions has location quotients far above real ones.
    """
    return pd.DataFrame(
        [
            _row(
                name,
                pd.to_numeric(world[name], errors="coerce").dropna(),
                pd.to_numeric(real[name], errors="coerce").dropna(),
            )
            for name in SPECIALISATION
        ]
    )
