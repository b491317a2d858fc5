"""`clusterstage run`: check params.yaml, then let DVC run whatever is out of date."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.params import load_params


def run_pipeline(params_path: str | Path) -> int:
    """Validate the params (a bad key stops here, exit 2), then `dvc repro`; its exit code."""
    load_params(params_path)
    env = dict(os.environ)
    # DVC's stages call `clusterstage ...`: make this interpreter's console scripts win.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.call([sys.executable, "-m", "dvc", "repro"], env=env)
