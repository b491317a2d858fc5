"""The registered MLflow model gives what `clusterstage score` gives: loaded in Python, through
`mlflow models predict` and through `mlflow models serve`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.scoring import NO_CHANGE
from pipeline import tracking
from pipeline.cli import app
from pipeline.model_logging import log_model
from tests.models.test_scoring import small_model, small_panel

URI = "models:/clusterstage@champion"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A project folder whose SQLite store has the small model registered as champion, with the
    input file and what `clusterstage score` wrote for it."""
    root = tmp_path_factory.mktemp("project")
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        panel = small_panel(seed=4, n_regions=4, n_clusters=3)
        small_model(panel, seed=4).save(root / "model_dir")
        rows = panel.astype({"employment": object})
        rows.loc[7, "employment"] = "abc"  # a row the model reports instead of scoring
        rows.to_csv(root / "clusters.csv", index=False)
        tracking.use_project_store()
        with mlflow.start_run():
            info = log_model(root / "model_dir", panel.head(6))
        version = mlflow.register_model(info.model_uri, "clusterstage")
        mlflow.MlflowClient().set_registered_model_alias(
            "clusterstage", "champion", version.version
        )
        result = CliRunner().invoke(
            app, ["score", "clusters.csv", "--grain", "panel", "-o", "cli.csv", "--model", URI]
        )
        assert result.exit_code == 0, result.output
        try:
            yield root, info
        finally:
            mlflow.set_tracking_uri(previous)
            mlflow.set_registry_uri(previous)


def _env(root: Path) -> dict[str, str]:
    # The MLflow CLI runs uvicorn from PATH: the virtual environment's bin comes first.
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _same(got: pd.DataFrame, root: Path) -> None:
    """``got`` (any source) holds what `clusterstage score` wrote, cell for cell."""
    want = pd.read_csv(root / "cli.csv").sort_values("row").reset_index(drop=True)
    got = got.sort_values("row").reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) == 120
    for column in want.columns:
        a, b = want[column], got[column]
        if pd.api.types.is_float_dtype(a.dtype) and column not in ("row", "year"):
            values = pd.to_numeric(b.astype(object).where(b.notna(), np.nan))
            np.testing.assert_allclose(values.to_numpy(float), a.to_numpy(float), rtol=1e-9)
        else:
            shown = [("" if pd.isna(v) else str(v)) for v in b]
            expected = [("" if pd.isna(v) else str(v)) for v in a]
            if column in ("row", "year", "n_missing_features"):
                shown = [s.removesuffix(".0") for s in shown]
                expected = [s.removesuffix(".0") for s in expected]
            assert shown == expected, column
    # one bad cell, and the first year of each of the 12 histories (no change known yet)
    assert want["error"].value_counts().to_dict()[NO_CHANGE] == 12
    assert want["error"].notna().sum() == 13


def test_the_model_is_logged_as_code_with_the_model_folder(registered):
    root, info = registered
    local = Path(mlflow.artifacts.download_artifacts(URI, dst_path=str(root / "download")))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert {"MLmodel", "artifacts/model_dir/model.ubj", "artifacts/model_dir/model.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))]
    assert "pyfunc_model.py" in files  # the code, not a pickled object
    inputs = {spec.name: spec.required for spec in info.signature.inputs.inputs}
    assert {k for k, required in inputs.items() if required} == {
        "region", "cluster", "year", "employment", "establishments",
    }  # fmt: skip
    assert "payroll" in inputs and "top_k" in {p.name for p in info.signature.params.params}


def test_the_pyfunc_predicts_what_the_cli_writes(registered):
    root, _ = registered
    model = mlflow.pyfunc.load_model(URI)
    got = model.predict(pd.read_csv(root / "clusters.csv"))
    _same(got, root)
    fewer = model.predict(pd.read_csv(root / "clusters.csv").head(30), params={"top_k": 1})
    assert "driver_1_feature" in fewer.columns and "driver_2_feature" not in fewer.columns


def test_mlflow_models_predict_gives_what_the_cli_writes(registered):
    root, _ = registered
    cmd = [str(BIN / "mlflow"), "models", "predict", "-m", URI, "-i", "clusters.csv"]
    cmd += ["-t", "csv", "--env-manager", "local", "-o", "predicted.json"]
    done = subprocess.run(cmd, cwd=root, env=_env(root), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    records = json.loads((root / "predicted.json").read_text(encoding="utf-8"))["predictions"]
    _same(pd.DataFrame.from_records(records), root)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlflow_models_serve_gives_what_the_cli_writes(registered):
    root, _ = registered
    port = _free_port()
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", URI, "-h", "127.0.0.1"]
    cmd += ["-p", str(port), "--env-manager", "local"]
    log = (root / "serve.log").open("wb")
    server = subprocess.Popen(
        cmd, cwd=root, env=_env(root), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow models serve did not start:\n" + _tail(root))
                time.sleep(0.5)
        frame = pd.read_csv(root / "clusters.csv", dtype=str)
        body = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            records = json.loads(response.read())["predictions"]
        _same(pd.DataFrame.from_records(records), root)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _tail(root: Path) -> str:
    return (root / "serve.log").read_text(encoding="utf-8", errors="replace")[-3000:]


PORTABLE_LOAD = """
import sys
# as where the project is not installed: no editable finder, no project folder on the path
sys.meta_path = [f for f in sys.meta_path if "editable" not in type(f).__module__]
sys.path = [p for p in sys.path if p not in ("", sys.argv[4])]
import mlflow
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
model.predict(pd.read_csv(sys.argv[2])).to_csv(sys.argv[3], index=False)
import features
print(features.__file__)
"""


def test_the_model_loads_where_the_project_is_not_installed(registered, tmp_path):
    root, _ = registered
    local = Path(mlflow.artifacts.download_artifacts(URI, dst_path=str(tmp_path / "model")))
    pins = (local / "requirements.txt").read_text(encoding="utf-8").split()
    names = {pin.split("==")[0].lower() for pin in pins}
    assert {"mlflow", "xgboost", "pandas", "pandera", "pyyaml"} <= names
    assert "clusterstage" not in names  # not on any index: an environment could not be built
    project = str(Path(__file__).resolve().parents[2])
    args = [str(local), str(root / "clusters.csv"), str(tmp_path / "out.csv"), project]
    done = subprocess.run(
        [sys.executable, "-c", PORTABLE_LOAD, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert Path(done.stdout.strip().splitlines()[-1]).is_relative_to(local)  # the shipped code
    _same(pd.read_csv(tmp_path / "out.csv"), root)
