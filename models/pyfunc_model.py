"""The MLflow pyfunc flavour of the stage model, logged as code (no cloudpickle of objects).

MLflow loads this file and the model folder given as the artifact ``model_dir``.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from models.bundle import StageModel


class ClusterStagePyfunc(PythonModel):
    """predict(features) -> keys, stage and one probability column per stage."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model = StageModel.load(context.artifacts["model_dir"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        return self.model.predict_frame(model_input)


mlflow.models.set_model(ClusterStagePyfunc())
