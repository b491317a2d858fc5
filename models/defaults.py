"""Defaults of the scoring and explanation functions (``models.scoring``, ``models.levers``,
``models.explain``, ``models.pyfunc_model``).

Apart from those modules so that ``pipeline.params`` can take params.yaml's defaults from here
without importing XGBoost or SHAP, which every command would then load before it starts.
"""

from __future__ import annotations

DEFAULT_TOP_K = 3  # drivers per row
DEFAULT_PAIR_FEATURES = 4  # features whose moves the lever search tries in pairs
DEFAULT_BEESWARM_FEATURES = 15  # features shown per beeswarm plot
