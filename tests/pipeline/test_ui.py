"""`clusterstage ui` serves the project's tracking store: a run logged there is read back."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_ui_serves_runs_of_the_sqlite_store(project_dir):
    import mlflow

    from pipeline.tracking import use_project_store

    use_project_store()
    with mlflow.start_run() as run:
        mlflow.log_param("train.max_depth", 4)
        mlflow.log_metric("model.macro_f1", 0.75)
    assert (project_dir / "mlflow.db").exists()

    port = free_port()
    exe = Path(sys.executable).parent / "clusterstage"
    proc = subprocess.Popen(
        [str(exe), "ui", "--port", str(port)],
        cwd=project_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={run.info.run_id}"
        deadline = time.monotonic() + 180
        body = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    body = json.load(resp)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"mlflow ui exited with {proc.returncode}")
                time.sleep(1)
        assert body is not None, "the UI did not answer within 180 s"
        data = body["run"]["data"]
        assert {"key": "train.max_depth", "value": "4"} in data["params"]
        assert [m["value"] for m in data["metrics"] if m["key"] == "model.macro_f1"] == [0.75]
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
