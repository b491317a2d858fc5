"""The champion gate: when the registered model's `champion` alias may move to a new version."""

from __future__ import annotations

import math


def champion_decision(new_f1: float, champion_f1: float | None, gate: float) -> tuple[bool, str]:
    """Move only if the new macro-F1 reaches the gate and is at least the current champion's."""
    if not math.isfinite(new_f1):
        return False, "cross-validated macro-F1 is not a number"
    if new_f1 < gate:
        return False, f"macro-F1 {new_f1:.4f} is below the gate {gate:.4f}"
    if champion_f1 is not None and new_f1 < champion_f1:
        return False, f"macro-F1 {new_f1:.4f} is below the champion's {champion_f1:.4f}"
    if champion_f1 is None:
        return True, f"no champion yet; macro-F1 {new_f1:.4f} reaches the gate {gate:.4f}"
    return True, (
        f"macro-F1 {new_f1:.4f} reaches the gate {gate:.4f} and the champion's {champion_f1:.4f}"
    )
