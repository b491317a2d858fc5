"""Rule-based stage labellers: weak labels from features when no expert labels exist.

Each labeller is a pure function from a feature frame (one row per region x cluster x year) to a
labels frame with the columns of ``LABEL_COLUMNS``; rows a labeller cannot judge are left out.
"""

from __future__ import annotations

from features.labellers.agreement import agreement
from features.labellers.quadrant import quadrant_labels
from features.labellers.trajectory import trajectory_labels

LABEL_COLUMNS: tuple[str, ...] = ("region", "cluster", "year", "stage", "source")

__all__ = ["LABEL_COLUMNS", "agreement", "quadrant_labels", "trajectory_labels"]
