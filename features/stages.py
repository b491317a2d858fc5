"""The fixed stage vocabulary of DESIGN.md: ids, names and their order."""

from __future__ import annotations

STAGES: tuple[str, ...] = ("emerging", "growth", "mature", "decline", "renewal")
STAGE_ID: dict[str, int] = {name: i for i, name in enumerate(STAGES)}
