"""The champion gate: when the registered model's `champion` alias may move to a new version."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Champion:
    """What the registry recorded on the version the alias points to."""

    version: str
    macro_f1: float | None
    # Hash of the labelled rows (keys and stages) its macro-F1 was cross-validated on; None for
    # versions registered before it was recorded.
    data_hash: str | None


def champion_decision(
    new_f1: float, gate: float, champion: Champion | None, data_hash: str | None
) -> tuple[bool, str]:
    """Move only if the new macro-F1 reaches the gate and is at least the current champion's.

    Two macro-F1 say which model is better only on the same labelled rows (a champion trained on
    the synthetic reference world says nothing about a model of one's own regions, and other
    labels ask another question), so the champion's counts only when both recorded the same
    ``data_hash``; otherwise the gate alone decides and the reason says why.
    """
    if not math.isfinite(new_f1):
        return False, "cross-validated macro-F1 is not a number"
    if new_f1 < gate:
        return False, f"macro-F1 {new_f1:.4f} is below the gate {gate:.4f}"
    reaches = f"macro-F1 {new_f1:.4f} reaches the gate {gate:.4f}"
    if champion is None:
        return True, f"no champion yet; {reaches}"
    theirs = f"the champion (version {champion.version})"
    if champion.macro_f1 is None:
        return True, f"{reaches}; {theirs} records no macro-F1 to compare with"
    if data_hash is None or champion.data_hash is None:
        whose = "this run" if data_hash is None else theirs
        return True, (
            f"{reaches}; {whose} records no hash of its labelled rows, so the champion's "
            f"macro-F1 {champion.macro_f1:.4f} is not compared"
        )
    if data_hash != champion.data_hash:
        return True, (
            f"{reaches}; {theirs} was cross-validated on other labelled rows (data hash "
            f"{champion.data_hash}, this run {data_hash}), so its macro-F1 "
            f"{champion.macro_f1:.4f} is not compared"
        )
    if new_f1 < champion.macro_f1:
        return False, (
            f"macro-F1 {new_f1:.4f} is below the champion's {champion.macro_f1:.4f} "
            f"(version {champion.version}, same labelled rows)"
        )
    return True, f"{reaches} and the champion's {champion.macro_f1:.4f} on the same labelled rows"
