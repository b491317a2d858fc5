"""The stage model logged as an MLflow pyfunc (models from code): the code and pinned
requirements it ships with and its signature."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features import schemas
from features.row_checks import PANEL_COLUMNS
from models.defaults import DEFAULT_TOP_K
from models.scoring import empty_table
from pipeline.model_source import MODEL_ARTIFACT

PROJECT = Path(__file__).resolve().parents[1]
PYFUNC_CODE = PROJECT / "models" / "pyfunc_model.py"
# What the pyfunc imports from this project, shipped with it so that the model loads where the
# project is not installed; and the libraries it needs there, pinned to the versions it was
# logged with (MLflow's inference finds neither xgboost nor pandera, and names this project).
PYFUNC_PACKAGES = ("features", "models", "policy")
PYFUNC_REQUIREMENTS = (
    "mlflow",
    "xgboost",
    "numpy",
    "pandas",
    "pyarrow",
    "pandera",
    "pydantic",
    "pyyaml",
    "scipy",
    "scikit-learn",
)


def pyfunc_requirements() -> list[str]:
    """``PYFUNC_REQUIREMENTS`` pinned to the installed versions."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in PYFUNC_REQUIREMENTS]


def pyfunc_signature(top_k: int = DEFAULT_TOP_K):
    """The registered model's signature: panel-grain input columns, the score table, top_k.

    Input columns are typed ``Any``: the model checks every cell itself and reports a bad one in
    that row's ``error``, whereas MLflow's strict types would reject a whole request (and a CSV
    column of whole numbers where a double is declared). Required: the panel grain's required
    columns; every other panel column is optional; others are dropped.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    required = set(schemas.PANEL_REQUIRED)
    inputs = Schema([ColSpec(AnyType(), name, required=name in required) for name in PANEL_COLUMNS])
    # Every output column may be empty: a row that was not scored has only row, keys, error.
    kinds = {"Int64": "long", "str": "string", "float64": "double", "boolean": "boolean"}
    outputs = Schema(
        [
            ColSpec(kinds[str(dtype)], name, required=False)
            for name, dtype in empty_table(top_k).dtypes.items()
        ]
    )
    params = ParamSchema([ParamSpec("top_k", "long", top_k)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def log_model(model_dir: str | Path, input_example: pd.DataFrame | None = None, *, name="model"):
    """Log the stage model in ``model_dir`` as the pyfunc ``name`` of the active MLflow run.

    Models from code (models/pyfunc_model.py) with the project's packages it imports, the model
    folder as the one artifact, pinned requirements, the signature of ``pyfunc_signature`` and,
    when given, panel rows as the input example.
    """
    import mlflow

    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(PYFUNC_CODE),
        artifacts={MODEL_ARTIFACT: str(model_dir)},
        code_paths=[str(PROJECT / package) for package in PYFUNC_PACKAGES],
        pip_requirements=pyfunc_requirements(),
        signature=pyfunc_signature(),
        input_example=input_example,
    )
