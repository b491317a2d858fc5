"""`clusterstage run`: check params.yaml, then let DVC run whatever is out of date."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.params import ParamsError, load_params

# DVC's report of a failed stage: "ERROR: failed to reproduce 'ingest': failed to run:
# clusterstage ingest, exited with 2".
_STAGE_FAILED = re.compile(r"failed to reproduce .*exited with (\d+)")
BAD_INPUT = 2
_TEMPLATE = re.compile(r"\$\{\s*([^}\s]+)\s*\}")


def stage_exit_code(line: str) -> int | None:
    """The exit code of the stage command DVC reports as failed on this line, if it does."""
    found = _STAGE_FAILED.search(line)
    return int(found.group(1)) if found else None


def stage_params(dvc_yaml: dict) -> list[tuple[str, str]]:
    """(stage, dotted key) for every params.yaml key a stage of dvc.yaml declares or templates."""
    found: list[tuple[str, str]] = []
    for stage, spec in (dvc_yaml.get("stages") or {}).items():
        for entry in spec.get("params") or []:
            keys = [entry] if isinstance(entry, str) else []
            if isinstance(entry, dict):  # {file: [keys]}; only params.yaml's own keys count
                keys = [k for f, ks in entry.items() if f == "params.yaml" for k in ks or []]
            found += [(stage, k) for k in keys]
        found += [(stage, k) for k in _TEMPLATE.findall(yaml.safe_dump(spec))]
    return found


def check_stage_params(params_path: Path, dvc_path: Path) -> None:
    """ParamsError for a key a DVC stage needs but params.yaml lacks: DVC would stop at that
    stage, after the ones before it had run, with its own multi-line error. Validation alone
    does not catch it, since every key has a default."""
    raw = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    spec = yaml.safe_load(dvc_path.read_text(encoding="utf-8")) or {}
    for stage, key in stage_params(spec):
        if not _has_key(raw, key):
            raise ParamsError(
                f"{params_path}: missing key '{key}' (the {stage} stage of {dvc_path} reads "
                "it); expected it as in the shipped params.yaml"
            )


def _has_key(raw: object, key: str) -> bool:
    # present even when its value is null (data.labels: null)
    node = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def run_pipeline(params_path: str | Path) -> int:
    """Validate the params (a bad key stops here, exit 2), then `dvc repro`.

    Exit code: 0, 2 when a stage rejected its input (its one-line error is all that is shown),
    else 1. DVC deletes a stage's outputs before running it; when a stage fails they are checked
    out again from DVC's cache, so a bad input leaves the last good outputs in place.
    """
    load_params(params_path)
    dvc_yaml = Path(params_path).parent / "dvc.yaml"
    if dvc_yaml.is_file():
        check_stage_params(Path(params_path), dvc_yaml)
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
