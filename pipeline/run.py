"""`clusterstage run`: check params.yaml, then let DVC run whatever is out of date."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pipeline.params import load_params

# DVC's report of a failed stage: "ERROR: failed to reproduce 'ingest': failed to run:
# clusterstage ingest, exited with 2".
_STAGE_FAILED = re.compile(r"failed to reproduce .*exited with (\d+)")
BAD_INPUT = 2


def stage_exit_code(line: str) -> int | None:
    """The exit code of the stage command DVC reports as failed on this line, if it does."""
    found = _STAGE_FAILED.search(line)
    return int(found.group(1)) if found else None


def run_pipeline(params_path: str | Path) -> int:
    """Validate the params (a bad key stops here, exit 2), then `dvc repro`.

    Exit code: 0, 2 when a stage rejected its input (its one-line error is all that is shown),
    else 1. DVC deletes a stage's outputs before running it; when a stage fails they are checked
    out again from DVC's cache, so a bad input leaves the last good outputs in place.
    """
    load_params(params_path)
    env = dict(os.environ)
    # DVC's stages call `clusterstage ...`: make this interpreter's console scripts win.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    dvc = [sys.executable, "-m", "dvc"]
    failed_with: int | None = None
    with subprocess.Popen(
        [*dvc, "repro"], env=env, stderr=subprocess.PIPE, text=True, bufsize=1
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            code = stage_exit_code(line)
            if code is not None:
                failed_with = code
                if code == BAD_INPUT:
                    continue  # the stage has already said what was wrong, in one line
            sys.stderr.write(line)
    if proc.returncode == 0:
        return 0
    subprocess.run([*dvc, "checkout", "--quiet"], env=env, check=False)
    return BAD_INPUT if failed_with == BAD_INPUT else 1
