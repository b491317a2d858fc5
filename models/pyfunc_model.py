"""The MLflow pyfunc flavour of the stage model, logged as code (no cloudpickle of objects).

MLflow runs this file when it loads the model (models from code) and reads the model folder it
was logged with as the artifact ``model_dir`` (xgboost UBJ + JSON metadata). ``predict`` takes
panel-grain rows (one per region × cluster × year, as ``clusterstage score --grain panel`` reads
them) and returns the same table as that command (models.scoring.score_rows): stage,
probabilities, drivers, recommendations, range flags, and an ``error`` for every row it could not
score. Indicators compare a cluster with its own history and with the other regions, so send a
region's whole history, and every region, in one request.

Params: ``top_k`` (drivers per row, default 3). Everything else is at its default, whatever
params.yaml held when the model was trained and logged: the packaged knowledge base, 6
recommendations ranked with policy.ranking.DEFAULT_SCORING, total rows labelled "Insgesamt"
(``clusterstage score --k/--driver-weight/...`` and the pipeline's score stage take params.yaml's).
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from models.bundle import StageModel
from models.defaults import DEFAULT_TOP_K
from models.scoring import default_knowledge_base, plain_objects, score_rows


class ClusterStagePyfunc(PythonModel):
    """predict(panel rows) -> one scored row per input row, in input order."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model = StageModel.load(context.artifacts["model_dir"])
        self.kb = default_knowledge_base()

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        top_k = int((params or {}).get("top_k", DEFAULT_TOP_K))
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return plain_objects(score_rows(frame, self.model, top_k=top_k, kb=self.kb))


mlflow.models.set_model(ClusterStagePyfunc())
