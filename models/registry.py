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
    """Move only if the new macro-F1 reaches the gate and is at least the current champion's,
    measured on the same labelled rows.

    Two macro-F1 say which model is better only on the same labelled rows (``data_hash``): a
    model of one's own regions against the synthetic world's, or a model that copies a rule's
    weak labels (and so scores near 1) against one of expert labels, is no comparison. Then the
    champion stays; the new version is used by naming it (``score --model``) or by setting the
    alias by hand in the MLflow UI.
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
        return False, (
            f"{reaches}, but {whose} records no hash of its labelled rows, so its macro-F1 "
            f"cannot be compared with the champion's {champion.macro_f1:.4f}; the champion stays"
        )
    if data_hash != champion.data_hash:
        return False, (
            f"{reaches}, but {theirs} was cross-validated on other labelled rows (data hash "
            f"{champion.data_hash}, this run {data_hash}), so the macro-F1 {new_f1:.4f} and "
            f"{champion.macro_f1:.4f} do not say which is better; the champion stays"
        )
    if new_f1 < champion.macro_f1:
        return False, (
            f"macro-F1 {new_f1:.4f} is below the champion's {champion.macro_f1:.4f} "
            f"(version {champion.version}, same labelled rows)"
        )
    return True, f"{reaches} and the champion's {champion.macro_f1:.4f} on the same labelled rows"
