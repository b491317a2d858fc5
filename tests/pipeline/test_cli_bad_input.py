"""Every bad input of issue 2 (point 3) through the real CLI: exit 2, one exact line, no output.

Each case runs `clusterstage ingest --params <tmp params.yaml>` and, once
pipeline.build_features exists, `clusterstage features INPUT --grain ... -o OUT.parquet`.
"""

from __future__ import annotations

import importlib.util
import pathlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline import paths
from pipeline.cli import app

GOOD = "region,cluster,year,employment,establishments\nA,x,2010,5,1\nA,y,2010,7,2\nB,x,2010,3,1\n"
HEADER = "region,cluster,year,employment,establishments\n"
HAS_FEATURES = importlib.util.find_spec("pipeline.build_features") is not None
COMMANDS = [
    "ingest",
    pytest.param(
        "features",
        marks=pytest.mark.skipif(
            not HAS_FEATURES, reason="pipeline.build_features not written yet"
        ),
    ),
]


def _expected_columns_line(missing: str, found: str) -> str:
    return (
        f"column '{missing}': missing required column; expected region, cluster, year, "
        "employment, establishments (map other names with --column CONTRACT=SOURCE or "
        f"data.columns); columns found: {found}"
    )


# name -> (file name, content or a writer, grain, message after "<path>, ")
CASES: dict[str, tuple[str, bytes | Callable[[Path], None], str, str]] = {
    "missing required column": (
        "panel.csv",
        b"region,cluster,year,establishments\nA,x,2010,1\n",
        "panel",
        _expected_columns_line("employment", "region, cluster, year, establishments"),
    ),
    "wrong type": (
        "panel.csv",
        (HEADER + "A,x,2010,5,1\nA,y,2010,abc,2\n").encode(),
        "panel",
        "column 'employment', row 2: expected a number, found 'abc'",
    ),
    "negative employment": (
        "panel.csv",
        (HEADER + "A,x,2010,5,1\nA,y,2010,7,2\nB,x,2010,-3,1\n").encode(),
        "panel",
        "column 'employment', row 3: expected a number ≥ 0, found -3",
    ),
    "duplicate keys": (
        "panel.csv",
        (HEADER + "A,x,2010,5,1\nA,y,2010,7,2\nB,x,2010,3,1\nA,y,2010.0,8,2\n").encode(),
        "panel",
        "row 4: duplicate key (region 'A', cluster 'y', year 2010): expected one row per "
        "region × cluster × year, found the same key in row 2",
    ),
    "year not a whole number": (
        "panel.csv",
        (HEADER + "A,x,2010.5,5,1\n").encode(),
        "panel",
        "column 'year', row 1: expected a whole number, found 2010.5",
    ),
    "empty file": ("panel.csv", b"", "panel", "empty file: expected a header row and data rows"),
    "header only": (
        "panel.csv",
        HEADER.encode(),
        "panel",
        "no data rows: expected at least one row below the header",
    ),
    "missing file": (
        "panel.csv",
        lambda path: None,
        "panel",
        "cannot read: no such file",
    ),
    "folder instead of a file": (
        "panel.csv",
        lambda path: path.mkdir(),
        "panel",
        "cannot read: it is a folder, expected a file",
    ),
    "not UTF-8": (
        "panel.csv",
        (HEADER + "W\u00fcrzburg,x,2010,5,1\n").encode("latin-1"),
        "panel",
        "not UTF-8 text (byte 0xfc on line 2); expected a UTF-8 encoded CSV file (re-save it as "
        "UTF-8, e.g. 'CSV UTF-8' in a spreadsheet)",
    ),
    "short row": (
        "panel.csv",
        (HEADER + "A,x,2010,5,1\nB,x,2010,5\n").encode(),
        "panel",
        "row 2: 4 fields where the header names 5 (line 3); expected one value, or an empty "
        "one, per column",
    ),
    "corrupt Parquet": (
        "panel.parquet",
        b"PAR1 not really parquet PAR1",
        "panel",
        "not a readable Parquet file",
    ),
    "unknown suffix": (
        "panel.xlsx",
        b"PK",
        "panel",
        "unsupported file type '.xlsx'; expected .csv or .parquet",
    ),
    "negative firm employees": (
        "firms.csv",
        b"region,cluster,year,firm_id,employees\nA,x,2010,f1,5\nA,x,2010,f2,-1\n",
        "firms",
        "column 'employees', row 2: expected a number ≥ 0, found -1",
    ),
    "thousands separator or decimal point": (
        "panel.csv",
        b"region;cluster;year;employment;establishments\nA;x;2010;1.250;4\n",
        "panel",
        "column 'employment', row 1: expected a number written unambiguously, found '1.250' "
        "(1250 or 1.25?); in a ';'-separated file write it 1250 or 1,25",
    ),
    "firm founded after the year": (
        "firms.csv",
        b"region,cluster,year,firm_id,employees,founded_year\nA,x,2010,f1,5,2050\n",
        "firms",
        "column 'founded_year', row 1: expected a founding year no later than the year (2010), "
        "found 2050",
    ),
    "region without its total row": (
        "panel.csv",
        (HEADER + "A,x,2010,5,1\nA,Insgesamt,2010,9,\nB,x,2010,3,1\n").encode(),
        "panel",
        "no total row for region 'B' in 2010, while other regions have one; expected a total "
        "(Insgesamt) row for every region and year, or none",
    ),
    "Parquet text not UTF-8": (
        "panel.parquet",
        lambda path: pd.DataFrame(
            {
                "region": [b"A", "W\u00fcrzburg".encode("latin-1")],
                "cluster": ["x", "x"],
                "year": [2010, 2011],
                "employment": [5.0, 6.0],
                "establishments": [1, 1],
            }
        ).to_parquet(path),
        "panel",
        "not a readable Parquet file (column 'region', row 2: bytes that are not UTF-8 text)",
    ),
    "not a cluster mapping export": (
        "cmp.csv",
        GOOD.encode(),
        "cmp",
        "column 'region_name_t': missing column of a US Cluster Mapping export; expected "
        "region_name_t, cluster_name_t, year_t, emp_tl, est_tl, ap_tl, region_code_t, "
        "cluster_code_t, traded_b, private_wage_tf, lq_tf",
    ),
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    return tmp_path


def _write_params(root: Path, **data: object) -> Path:
    section = {"dir": str(root / "in"), "labels": None, "target_labels": None, **data}
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"data": section}), encoding="utf-8")
    return params


def _invoke(runner: CliRunner, root: Path, command: str, path: Path, grain: str, **data: object):
    """Run the command on ``path``; return (result, the outputs that must not exist)."""
    if command == "ingest":
        params = _write_params(root, path=str(path), grain=grain, **data)
        result = runner.invoke(app, ["ingest", "--params", str(params)])
        outputs = [root / p for p in (paths.INGESTED_PANEL, paths.INGESTED_LABELS)]
    else:
        out = root / "out" / "features.parquet"
        result = runner.invoke(app, ["features", str(path), "--grain", grain, "-o", str(out)])
        outputs = [out]
    return result, outputs


def _assert_one_line(result, expected: str, outputs: list[Path], *, exact: bool = True) -> None:
    assert result.exit_code == 2, result.output
    if exact:
        assert result.stderr == f"error: {expected}\n"
    else:  # the parser's own detail follows in parentheses
        assert result.stderr.startswith(f"error: {expected} (")
        assert result.stderr.endswith(")\n") and result.stderr.count("\n") == 1
    assert not any(p.exists() for p in outputs)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(
    runner: CliRunner, project: Path, command: str, case: str
) -> None:
    name, content, grain, message = CASES[case]
    path = project / "in" / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    before = path.read_bytes() if path.is_file() else None
    result, outputs = _invoke(runner, project, command, path, grain)
    # InputError joins file, column and row with ", " and puts ": " before the message.
    where = f"{path}, " if message.startswith(("column ", "row ")) else f"{path}: "
    _assert_one_line(result, where + message, outputs, exact=case != "corrupt Parquet")
    if before is not None:
        assert path.read_bytes() == before  # the input is never modified


@pytest.mark.parametrize("command", COMMANDS)
def test_unreadable_file_permission_denied(
    runner: CliRunner, project: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / "in" / "panel.csv"
    path.write_text(GOOD)
    real_open = pathlib.Path.open

    def deny(self: Path, *args: object, **kwargs: object):
        # As root chmod cannot make a file unreadable, so the refusal is simulated for this file.
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", deny)
    result, outputs = _invoke(runner, project, command, path, "panel")
    _assert_one_line(result, f"{path}: cannot read: permission denied", outputs)


def test_unknown_stage_name_in_labels(runner: CliRunner, project: Path) -> None:
    panel = project / "in" / "panel.csv"
    panel.write_text(GOOD)
    labels = project / "in" / "labels.csv"
    labels.write_text("region,cluster,year,stage\nA,x,2010,growth\nB,x,2010,booming\n")
    result, outputs = _invoke(runner, project, "ingest", panel, "panel", labels=str(labels))
    _assert_one_line(
        result,
        f"{labels}, column 'stage', row 2: expected one of emerging, growth, mature, decline, "
        "renewal, found 'booming'",
        outputs,
    )


def test_label_for_a_key_outside_the_panel(runner: CliRunner, project: Path) -> None:
    panel = project / "in" / "panel.csv"
    panel.write_text(GOOD)
    labels = project / "in" / "labels.csv"
    labels.write_text("region,cluster,year,stage\nA,x,2010,growth\nC,x,2010,mature\n")
    result, outputs = _invoke(runner, project, "ingest", panel, "panel", labels=str(labels))
    _assert_one_line(
        result,
        f"{labels}, row 2: label for region 'C', cluster 'x', year 2010 matches no row of the "
        "input; expected labels only for region × cluster × year rows of the panel",
        outputs,
    )


def test_good_input_exits_0_and_writes(runner: CliRunner, project: Path) -> None:
    panel = project / "in" / "panel.csv"
    panel.write_text(GOOD)
    result, outputs = _invoke(runner, project, "ingest", panel, "panel")
    assert result.exit_code == 0, result.output
    assert all(p.exists() for p in outputs)


# --- an output that cannot be written (-o) ---------------------------------------------------

UNWRITABLE = ["a folder", "inside a file", "permission denied", "/proc"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.models.test_scoring import small_model, small_panel

    folder = tmp_path_factory.mktemp("model")
    small_model(small_panel(seed=2, n_regions=3, n_clusters=2), seed=2).save(folder)
    return folder


def _unwritable(case: str, root: Path, name: str, refuse_new_files):
    """An output path that cannot be written, and what the one line says after "<path>: "."""
    if case == "a folder":
        out = root / name
        out.mkdir()
        return out, "cannot write: it is a folder, expected a file path"
    if case == "inside a file":
        (root / "notes.txt").write_text("x")
        return root / "notes.txt" / name, f"cannot write: {root / 'notes.txt'} is not a folder"
    if case == "/proc":
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc here")
        out = Path("/proc") / name  # exists, looks writable to root, takes no new files
        return out, "cannot write: no file can be created in /proc (no such file or directory)"
    locked = root / "locked"
    locked.mkdir()
    refuse_new_files(locked)
    return locked / name, f"cannot write: no file can be created in {locked} (permission denied)"


def _spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str, calls: list[str]) -> None:
    real = getattr(module, name)

    def recorded(*args: object, **kwargs: object) -> object:
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recorded)


@pytest.mark.parametrize("case", UNWRITABLE)
@pytest.mark.parametrize("command", ["features", "score", "report"])
def test_an_output_that_cannot_be_written_fails_before_any_work(
    runner: CliRunner,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    refuse_new_files,
    model_dir: Path,
    command: str,
    case: str,
) -> None:
    import features.loaders
    import pipeline.report
    import pipeline.score

    calls: list[str] = []
    _spy(monkeypatch, features.loaders, "load_input", calls)
    _spy(monkeypatch, pipeline.score, "resolve_model", calls)
    _spy(monkeypatch, pipeline.report, "load_inputs", calls)
    panel = project / "in" / "panel.csv"
    if command == "report":
        from tests.pipeline.test_report import _write_project

        _write_project(project)  # every input of the page, so only the output can fail
        out, message = _unwritable(case, project, "page.html", refuse_new_files)
        args = ["report", "-o", str(out)]
    else:
        from tests.models.test_scoring import small_panel

        small_panel(seed=2, n_regions=3, n_clusters=2).to_csv(panel, index=False)
        out, message = _unwritable(case, project, f"{command}.parquet", refuse_new_files)
        args = [command, str(panel), "--grain", "panel", "-o", str(out)]
        args += ["--model", str(model_dir)] if command == "score" else []
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {out}: {message}\n"
    assert calls == []  # neither the input nor the model was read
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


@pytest.mark.parametrize("command", ["features", "score"])
def test_a_missing_output_folder_is_made(
    runner: CliRunner, project: Path, model_dir: Path, command: str
) -> None:
    from tests.models.test_scoring import small_panel

    panel = project / "in" / "panel.csv"
    small_panel(seed=2, n_regions=3, n_clusters=2).to_csv(panel, index=False)
    out = project / "results" / "2024" / f"{command}.csv"
    args = [command, str(panel), "--grain", "panel", "-o", str(out)]
    result = runner.invoke(
        app, [*args, *(["--model", str(model_dir)] if command == "score" else [])]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 60


# --- an output that is the input (-o naming INPUT) -------------------------------------------

SPELLINGS = ["the same path", "another spelling", "a symlink to the input", "the input a symlink"]


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("command", ["features", "score"])
def test_an_output_that_is_the_input_fails_before_any_work(
    runner: CliRunner,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    model_dir: Path,
    command: str,
    spelling: str,
) -> None:
    import features.loaders
    import pipeline.score
    from tests.models.test_scoring import small_panel

    calls: list[str] = []
    _spy(monkeypatch, features.loaders, "load_input", calls)
    _spy(monkeypatch, pipeline.score, "resolve_model", calls)
    panel = project / "in" / "panel.csv"
    small_panel(seed=2, n_regions=3, n_clusters=2).to_csv(panel, index=False)
    source, out = panel, panel
    if spelling == "another spelling":
        out = Path("in") / ".." / "in" / "panel.csv"  # relative to the project folder (cwd)
    elif spelling == "a symlink to the input":
        out = project / "link.csv"
        out.symlink_to(panel)
    elif spelling == "the input a symlink":
        source = project / "link.csv"
        source.symlink_to(panel)
    before = panel.read_bytes()
    args = [command, str(source), "--grain", "panel", "-o", str(out)]
    args += ["--model", str(model_dir)] if command == "score" else []
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {out}: cannot write: it is the input file {source}; expected another output path\n"
    )
    assert calls == []  # neither the input nor the model was read
    assert panel.read_bytes() == before
    links = {"link.csv"} if "symlink" in spelling else set()
    assert {p.name for p in project.rglob("*")} == {"in", "panel.csv", *links}
