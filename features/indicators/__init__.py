"""The indicator library: one module per family, each a pure function from a panel-grain frame
(one row per region x cluster x year) to a frame of its features, aligned with the panel's rows.

A missing input column gives a missing (NaN) feature, and division by zero gives NaN, never inf.
``features.catalogue`` registers every feature; ``features.build.build_features`` runs them all.
"""

from __future__ import annotations

from features.indicators.context import PanelContext, as_context
from features.indicators.dynamics import dynamics
from features.indicators.innovation import innovation
from features.indicators.linkages import linkages, relatedness_density, relatedness_matrix
from features.indicators.performance import performance
from features.indicators.specialisation import specialisation
from features.indicators.structure import structure

__all__ = [
    "PanelContext",
    "as_context",
    "dynamics",
    "innovation",
    "linkages",
    "performance",
    "relatedness_density",
    "relatedness_matrix",
    "specialisation",
    "structure",
]
