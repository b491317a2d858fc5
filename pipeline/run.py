"""`clusterstage run`: check params.yaml, then let DVC run whatever is out of date."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from features.errors import InputError
from pipeline import paths
from pipeline.params import ParamsError, load_params, parse_params, read_params_yaml

# DVC's report of a failed stage: "ERROR: failed to reproduce 'ingest': failed to run:
# clusterstage ingest, exited with 2".
_STAGE_FAILED = re.compile(r"failed to reproduce .*exited with (\d+)")
_FAILED_STAGE = re.compile(r"failed to reproduce '([^']+)'")
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


def check_stage_params(params_path: Path, dvc_path: Path, raw: object = None) -> None:
    """ParamsError for a key a DVC stage needs but params.yaml lacks: DVC would stop at that
    stage, after the ones before it had run, with its own multi-line error. Validation alone
    does not catch it, since every key has a default. ``raw``: the parsed params to check in
    place of the file's (params.yaml with --set applied)."""
    if raw is None:
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


def stage_outputs(dvc_yaml: dict) -> list[tuple[str, str, bool]]:
    """(stage, path, cached) for every output dvc.yaml declares (templated paths left out)."""
    found: list[tuple[str, str, bool]] = []
    for stage, spec in (dvc_yaml.get("stages") or {}).items():
        for kind in ("outs", "metrics", "plots"):
            for entry in spec.get(kind) or []:
                items = entry.items() if isinstance(entry, dict) else [(entry, None)]
                for path, options in items:
                    if "${" not in str(path):
                        cached = not isinstance(options, dict) or options.get("cache", True)
                        found.append((stage, str(path), bool(cached)))
    return found


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink())


def _dvc_status(root: Path, dvc: list[str], env: dict[str, str]) -> dict[str, set[str]] | None:
    """`dvc data status --granular`'s uncommitted files by state, or None if it failed.

    For a cached folder output, "added" is a file beside those DVC recorded for it, "unknown"
    one in a folder whose record is not in the cache; the folder itself is "added" when it
    has never been recorded."""
    proc = subprocess.run(
        [*dvc, "data", "status", "--granular", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    try:
        uncommitted = json.loads(proc.stdout).get("uncommitted", {})
    except (ValueError, AttributeError):
        return None
    return {state: set(files) for state, files in uncommitted.items()}


def _recorded(status: dict[str, set[str]] | None, out: str, file: str) -> bool | None:
    """Whether DVC recorded ``file`` in the cached folder output ``out`` at the stage's last run;
    None when it cannot tell (no record of the folder, or the record is not in the cache)."""
    if status is None:
        return None
    added, unknown = status.get("added", set()), status.get("unknown", set())
    if f"{out}/" in added or file in unknown:
        return None
    return file not in added


def check_stage_folders(root: Path, dvc_yaml: dict, dvc: list[str], env: dict[str, str]) -> None:
    """InputError naming a file that lies in a folder a stage has as its output, yet is not the
    stage's: DVC deletes the whole folder when it runs the stage or checks it out of its cache.

    A file is the stage's when its name is one the stage writes (pipeline.paths.STAGE_FOLDERS),
    or, for a cached folder, when DVC recorded it there at the stage's last run. A folder for
    which neither is known is not checked."""
    status: dict[str, set[str]] | None = None
    asked = False
    for stage, declared, cached in stage_outputs(dvc_yaml):
        folder, out = root / declared, Path(declared).as_posix()  # out/ names the folder out
        if not folder.is_dir():
            continue
        names = next((f for p, (_, f) in paths.STAGE_FOLDERS.items() if Path(out) == p), None)
        patterns = [paths.PARTIAL_WRITE, *(names or ())]
        foreign: list[Path] = []
        for file in _files(folder):
            if any(fnmatch.fnmatchcase(file.relative_to(folder).as_posix(), p) for p in patterns):
                continue
            if cached and not asked:  # only now: it takes DVC a few seconds
                status, asked = _dvc_status(root, dvc, env), True
            recorded = _recorded(status, out, file.relative_to(root).as_posix())
            if recorded is False or (recorded is None and names is not None):
                foreign.append(file)
        if foreign:
            n = len(foreign) - 1
            more = f" (and {n} more such file{'s' * (n > 1)})" if n else ""
            raise InputError(
                foreign[0].relative_to(root),
                f"not written by the pipeline, yet inside {out}, the output of the {stage} "
                "stage, which DVC deletes when that stage runs; expected it in a folder of its "
                f"own (data/raw/<name>, named by data.dir in params.yaml){more}",
            )


def _lock_outputs(root: Path) -> dict[str, str]:
    """{output path: stage} as dvc.lock records them (templated paths resolved)."""
    lock_file = root / "dvc.lock"
    if not lock_file.is_file():
        return {}
    lock = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    return {
        str(out["path"]): stage
        for stage, entry in (lock.get("stages") or {}).items()
        for out in (entry or {}).get("outs") or []
        if isinstance(out, dict) and "path" in out
    }


def _fingerprint(path: Path) -> object:
    """What changes when a file (or a file of a folder) is removed, replaced or rewritten."""

    def stamp(p: Path) -> tuple[int, int, int]:
        st = p.lstat()
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    if path.is_dir():
        return frozenset((p.relative_to(path).as_posix(), stamp(p)) for p in _files(path))
    return stamp(path) if path.exists() or path.is_symlink() else None


def restore_outputs(
    root: Path,
    before: dict[str, object],
    failed_stage: str | None,
    dvc: list[str],
    env: dict[str, str],
) -> str | None:
    """Check out of DVC's cache the outputs a failed `dvc repro` removed; a line saying what
    could not be restored, or None.

    ``before``: each output's fingerprint before the run. Restored: outputs there before and
    missing now, and the failed stage's outputs that changed during the run (DVC removed them
    before the stage ran, and the stage wrote some again). Every other output is left as it
    is, a user's changed file included (a plain `dvc checkout` refuses to run at all then)."""
    found = {path: _fingerprint(root / path) for path in before}
    targets = [
        path
        for path, stage in _lock_outputs(root).items()
        if before.get(path) is not None
        and (found.get(path) is None or (stage == failed_stage and found[path] != before[path]))
    ]
    if not targets:
        return None
    # --force: each target was removed or rewritten by this run, not changed by a user.
    proc = subprocess.run(
        [*dvc, "checkout", "--quiet", "--force", "--", *targets],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Not restored: still missing, or, where the checkout failed, as the failed run left it.
    failed = proc.returncode != 0
    left = [
        t
        for t in targets
        if (now := _fingerprint(root / t)) is None or (failed and now == found[t])
    ]
    if not left:
        return None
    if failed:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
        why = f"dvc checkout failed: {(errors or [f'exit code {proc.returncode}'])[0]}"
    else:
        why = "DVC keeps no copy of an output marked cache: false; the next good run writes it"
    return f"the last good run's {', '.join(left)} could not be restored ({why})"


def check_experiment_repo(root: Path) -> None:
    """ParamsError unless ``root`` is in a git repository with a commit: DVC experiments are
    git commits of their own, and without one `dvc exp run` fails with its own error."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise ParamsError(
            "--set runs a DVC experiment, which needs a git repository with at least one "
            "commit; expected one here (git init, git add, git commit), or change params.yaml "
            "and run without --set"
        )


def exp_run_args(sets: Sequence[str]) -> list[str]:
    """The DVC arguments that run ``sets`` (KEY=VALUE each) as one experiment."""
    return ["exp", "run", *(arg for pair in sets for arg in ("-S", pair))]


def params_with_sets(params_path: Path, sets: Sequence[str]) -> dict:
    """params.yaml as it will be once `dvc exp run -S` has applied ``sets`` to it, validated;
    params.yaml itself is left as it is. A bad override is a ParamsError naming it."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides, to_hydra_overrides
    from hydra.errors import OverrideParseException

    load_params(params_path)  # the file's own errors first, named as `run` names them
    raw = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    for pair in sets:
        try:
            [override] = to_hydra_overrides([pair])  # DVC's reading of `-S`
        except OverrideParseException as err:
            raise ParamsError(
                f"--set {pair!r}: expected KEY=VALUE ({str(err).splitlines()[0]})"
            ) from None
        key = override.key_or_group
        if override.is_delete() or override.is_sweep_override():
            raise ParamsError(f"--set {pair!r}: expected KEY=VALUE, one value for one key")
        # DVC refuses to change a key the file lacks (a "+" adds one): say which, as `run` does.
        if not override.is_add() and not override.is_force_add() and not _has_key(raw, key):
            raise ParamsError(f"{params_path}: unknown key '{key}' (--set {pair})")
    with_sets = Path(f"{params_path} with --set")
    with tempfile.TemporaryDirectory(prefix="clusterstage-set-") as tmp:
        copy = Path(tmp, params_path.name)
        shutil.copyfile(params_path, copy)
        try:
            apply_overrides(copy, list(sets))
        except InvalidArgumentError as err:
            cause = str(err.__cause__ or err).splitlines()[0]
            raise ParamsError(f"--set {' '.join(sets)}: {cause}") from None
        # as DVC wrote it: a plain `--set k=off` is a boolean here, text to DVC
        merged = read_params_yaml(copy.read_text(encoding="utf-8"), with_sets)
    parse_params(merged, with_sets)
    return merged


def run_pipeline(params_path: str | Path, sets: Sequence[str] = ()) -> int:
    """Validate the params (a bad key stops here, exit 2), then `dvc repro`; with ``sets``
    (KEY=VALUE overrides), validate params.yaml as they will change it, then run them as one
    DVC experiment (`dvc exp run -S ...`), which writes them into params.yaml.

    Exit code: 0, 2 when a stage rejected its input (its one-line error is all that is shown),
    else 1. A file of the user's inside a folder DVC deletes (a stage's output folder) also
    stops it before anything runs. DVC deletes a stage's outputs before running it; when a
    stage fails they are checked out again from DVC's cache, so a bad input leaves the last
    good outputs in place, and a line says which could not be restored; so is params.yaml
    where ``sets`` had changed it.
    """
    params_path = Path(params_path)
    raw = params_with_sets(params_path, sets) if sets else None
    if raw is None:
        load_params(params_path)
    root = params_path.parent
    if sets:
        check_experiment_repo(root)
    env = dict(os.environ)
    # DVC's stages call `clusterstage ...`: make this interpreter's console scripts win.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    dvc = [sys.executable, "-m", "dvc"]
    dvc_yaml = root / "dvc.yaml"
    if dvc_yaml.is_file():
        check_stage_params(params_path, dvc_yaml, raw)
        spec = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
        check_stage_folders(root, spec, dvc, env)
    before = {path: _fingerprint(root / path) for path in _lock_outputs(root)}
    params_before = params_path.read_bytes()
    failed_with: int | None = None
    failed_stage: str | None = None
    command = exp_run_args(sets) if sets else ["repro"]
    with subprocess.Popen(
        [*dvc, *command], cwd=root, env=env, stderr=subprocess.PIPE, text=True, bufsize=1
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if found := _FAILED_STAGE.search(line):
                failed_stage = found.group(1)
            code = stage_exit_code(line)
            if code is not None:
                failed_with = code
                if code == BAD_INPUT:
                    continue  # the stage has already said what was wrong, in one line
            sys.stderr.write(line)
    if proc.returncode == 0:
        return 0
    if sets and params_path.read_bytes() != params_before:
        # The failed experiment's values would otherwise stay, unasked, for the next run.
        params_path.write_bytes(params_before)
    not_restored = restore_outputs(root, before, failed_stage, dvc, env)
    if not_restored:
        sys.stderr.write(f"warning: {not_restored}\n")
    return BAD_INPUT if failed_with == BAD_INPUT else 1
