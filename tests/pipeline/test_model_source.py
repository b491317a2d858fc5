"""Where `clusterstage score` finds its model (pipeline.model_source)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.errors import InputError
from pipeline.model_source import logged_model_dir, resolve_model
from tests.models.test_scoring import small_model, small_panel


@pytest.fixture(scope="module")
def model():
    return small_model(small_panel(seed=1), seed=1)


def test_the_stage_model_is_where_the_mlmodel_file_says(tmp_path, model):
    def logged(path: str, artifact: str = "model_dir") -> Path:
        root = tmp_path / path.replace("/", "_")
        root.mkdir()
        flavour = {"artifacts": {artifact: {"path": path, "uri": "whatever"}}}
        text = yaml.safe_dump({"flavors": {"python_function": flavour}})
        (root / "MLmodel").write_text(text, encoding="utf-8")
        return root

    root = logged("artifacts/stage model")
    model.save(root / "artifacts" / "stage model")
    assert resolve_model(str(root)).meta.features == model.meta.features

    assert logged_model_dir(root) == (root / "artifacts" / "stage model").resolve()
    with pytest.raises(InputError) as err:
        logged_model_dir(logged("artifacts/model", artifact="weights"))
    assert str(err.value).endswith(
        "MLmodel: not a clusterstage model: expected a python_function flavour with a "
        "'model_dir' artifact"
    )
    with pytest.raises(InputError, match="lies outside the model folder"):
        logged_model_dir(logged("../../elsewhere"))
    with pytest.raises(InputError) as err:
        resolve_model(str(tmp_path / "no such folder"))
    assert "cannot load the model: no such folder" in str(err.value)
