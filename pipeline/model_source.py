"""Where `clusterstage score` finds its model: a local model folder, a logged MLflow model's
folder, or any MLflow model URI (downloaded once, without progress bars)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from features.errors import InputError
from models.bundle import META_FILE, StageModel
from pipeline import paths

DEFAULT_MODEL = f"models:/{paths.REGISTERED_MODEL}@champion"
MLMODEL = "MLmodel"  # the file that describes a logged MLflow model
MODEL_ARTIFACT = "model_dir"  # the pyfunc's artifact holding the stage model (log_model)


def logged_model_dir(folder: str | Path) -> Path:
    """The stage-model folder inside a logged MLflow model (a folder holding its MLmodel file).

    The pyfunc keeps it as its ``model_dir`` artifact, at the path the MLmodel file declares:
    MLflow names that path after the folder that was logged (``artifacts/model`` for data/model),
    so it is read, never assumed.
    """
    import yaml

    folder = Path(folder)
    mlmodel = folder / MLMODEL
    try:
        spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(mlmodel, f"not a readable MLmodel file ({err})") from None
    try:
        path = spec["flavors"]["python_function"]["artifacts"][MODEL_ARTIFACT]["path"]
    except (KeyError, TypeError):
        raise InputError(
            mlmodel,
            f"not a clusterstage model: expected a python_function flavour with a "
            f"{MODEL_ARTIFACT!r} artifact",
        ) from None
    inside = (folder / str(path)).resolve()
    if not inside.is_relative_to(folder.resolve()):
        raise InputError(
            mlmodel, f"the {MODEL_ARTIFACT!r} artifact {path!r} lies outside the model folder"
        )
    return inside


def resolve_model(uri: str | None) -> StageModel:
    """A local model folder (model.json + model.ubj), a logged MLflow model's folder, or any
    MLflow model URI (models:/name@alias, models:/name/version, models:/<model id>,
    runs:/<run id>/<path>, file:// ...); the default is the registered champion."""
    uri = uri or DEFAULT_MODEL
    local = Path(uri)
    if local.is_dir():
        return _load_folder(local, uri)
    if not urlparse(uri).scheme:  # a path, not a URI: MLflow would only say the download failed
        raise InputError(
            uri,
            "cannot load the model: no such folder; expected a model folder or an MLflow model "
            "URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH)",
        )
    import mlflow

    from pipeline.tracking import require_store, use_project_store

    if uri.startswith(("models:", "runs:")):  # URIs that the project's store resolves
        require_store()
    use_project_store()
    with tempfile.TemporaryDirectory(prefix="clusterstage-model-") as target:
        try:
            # The whole logged model (the stage model is most of its size): one download that
            # works for every kind of URI, where a path inside some of them does not resolve.
            with _quiet_downloads():
                root = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=target)
        except Exception as err:  # MLflow raises several types for a URI it cannot resolve
            detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(uri, f"cannot load the model ({detail})") from None
        return _load_folder(Path(root), uri)


def _load_folder(folder: Path, uri: str) -> StageModel:
    if (folder / META_FILE).is_file():
        return StageModel.load(folder)
    if (folder / MLMODEL).is_file():
        return StageModel.load(logged_model_dir(folder))
    raise InputError(
        uri,
        f"cannot load the model: expected a model folder (with {META_FILE}) or a logged MLflow "
        f"model (with {MLMODEL})",
    )


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No MLflow download progress bars: stderr carries one line per problem (the CLI contract)."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
