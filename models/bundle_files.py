"""The file names of a saved model folder (``models.bundle.StageModel.save``).

Apart from the bundle so that ``pipeline.paths`` can name them without importing XGBoost, which
every command would then load before it starts.
"""

from __future__ import annotations

BOOSTER_FILE = "model.ubj"
META_FILE = "model.json"
YEAR_QUANTILES_FILE = "year_quantiles.json"
