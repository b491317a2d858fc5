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
    server_stopped = False
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
        experiment = body["run"]["info"]["experiment_id"]
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get?experiment_id={experiment}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert json.load(resp)["experiment"]["name"] == "clusterstage"  # not "Default"

        # SIGTERM to the command alone (as a service manager sends it) stops the whole server.
        proc.terminate()
        assert proc.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _answers(port):
            time.sleep(0.5)
        server_stopped = not _answers(port)
        assert server_stopped, "the MLflow server outlived `clusterstage ui`"
    finally:
        if not server_stopped:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)


def _answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_ui_without_a_store_says_so_and_creates_none(project_dir):
    exe = Path(sys.executable).parent / "clusterstage"
    result = subprocess.run(
        [str(exe), "ui", "--port", str(free_port())],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {project_dir / 'mlflow.db'}: no MLflow tracking store here; expected the "
        "project folder (where params.yaml is) after a `clusterstage run`\n"
    )
    assert list(project_dir.iterdir()) == []
