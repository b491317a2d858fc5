"""Each DVC stage declares the project code it runs, so that `dvc repro` re-runs a stage whenever
code that can change its outputs changes (and not only when an upstream output happens to).

A stage's code is the import closure of the module its command runs, followed through every
`import` of the project's own packages, including imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "models", "pipeline", "policy")

# The module behind each stage's `clusterstage <command>`.
STAGE_MODULES = {
    "generate": "pipeline/generate.py",
    "ingest": "pipeline/ingest.py",
    "features": "pipeline/build_features.py",
    "label": "pipeline/label.py",
    "train": "pipeline/train.py",
    "score": "pipeline/score.py",
    "explain": "pipeline/explain.py",
    "recommend": "pipeline/recommend.py",
    "report": "pipeline/report.py",
}

# Imported by every stage, yet unable to change what a finished stage writes: params.py only
# validates (every value reaches a stage from params.yaml, which DVC tracks key by key), and
# errors.py words the one-line message of a run that writes nothing. What they import only to
# validate is not followed either.
NO_OUTPUT_EFFECT = {"pipeline/params.py", "features/errors.py"}


def _module_file(name: str) -> Path | None:
    """The file of a dotted module name of the project, or None for anything else."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imported(path: Path) -> set[Path]:
    found: set[Path] = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import name` imports pkg, and pkg.name too where that is a module
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            # importing a.b.c runs a/__init__.py and a/b/__init__.py as well
            for i in range(1, len(parts) + 1):
                file = _module_file(".".join(parts[:i]))
                if file is not None:
                    found.add(file)
    return found


def _has_code(path: Path) -> bool:
    """Whether a file does more than hold a docstring (an empty __init__.py changes nothing)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return bool(body)


def import_closure(start: str, waived: set[str] = NO_OUTPUT_EFFECT) -> set[str]:
    """Project files that running ``start`` may execute and that can change what it writes,
    relative to the repository root."""
    skip = {ROOT / w for w in waived}
    seen: set[Path] = set()
    todo = [ROOT / start]
    while todo:
        path = todo.pop()
        if path in seen or path in skip:
            continue
        seen.add(path)
        todo.extend(_imported(path) - seen)
    return {str(p.relative_to(ROOT)) for p in seen if _has_code(p)}


def _covered(file: str, deps: list[str]) -> bool:
    return any(file == dep or file.startswith(dep.rstrip("/") + "/") for dep in deps)


def _stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def test_every_stage_has_its_module() -> None:
    assert set(STAGE_MODULES) == set(_stages())
    for stage, module in STAGE_MODULES.items():
        command = _stages()[stage]["cmd"].split()
        assert command[0] == "clusterstage", stage
        assert (ROOT / module).is_file(), module


@pytest.mark.parametrize("stage", sorted(STAGE_MODULES))
def test_stage_declares_the_code_it_runs(stage: str) -> None:
    deps = [str(d) for d in _stages()[stage].get("deps", [])]
    needed = import_closure(STAGE_MODULES[stage])
    missing = sorted(f for f in needed if not _covered(f, deps))
    assert not missing, f"dvc.yaml stage {stage!r} runs code it does not declare: {missing}"


def test_closure_follows_imports_inside_functions(tmp_path: Path) -> None:
    # the report's on-request path imports inside a function; a closure that skipped such
    # imports would let those modules change without re-running the stage
    closure = import_closure("pipeline/report.py")
    assert "pipeline/report_charts.py" in closure
    assert "pipeline/report.py" in closure
    assert "pipeline/params.py" not in closure  # waived, and not followed
    assert "pipeline/params.py" in import_closure("pipeline/report.py", waived=set())


def test_covered_reads_folders_as_prefixes() -> None:
    assert _covered("features/indicators/context.py", ["features/indicators"])
    assert _covered("models/bundle.py", ["models/"])
    assert not _covered("features/indicators2.py", ["features/indicators"])
    assert not _covered("models/bundle.py", ["models/bundle"])


def _source_files(folder: Path) -> int:
    return sum(
        1
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def test_the_committed_lock_hashes_code_folders_without_their_bytecode() -> None:
    # Python writes __pycache__ beside the modules a stage depends on; hashed with them, a fresh
    # clone's stages would look changed against dvc.lock until something imported the code
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    checked = 0
    for stage, entry in lock.items():
        for dep in entry.get("deps", []):
            folder = ROOT / dep["path"]
            if "nfiles" in dep and dep["path"].split("/")[0] in PACKAGES and folder.is_dir():
                assert dep["nfiles"] == _source_files(folder), f"{stage}: {dep['path']}"
                checked += 1
    assert checked >= len(STAGE_MODULES)
