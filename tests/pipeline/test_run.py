"""`clusterstage run`: params.yaml is checked against what dvc.yaml's stages read, and the stages'
output folders for files DVC would delete, before DVC; a failed run restores what DVC removed."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from features.errors import InputError
from pipeline import paths
from pipeline.cli import app
from pipeline.params import ParamsError
from pipeline.run import (
    check_stage_params,
    exp_run_args,
    run_pipeline,
    stage_exit_code,
    stage_outputs,
    stage_params,
)

ROOT = Path(__file__).resolve().parents[2]

DVC = {
    "stages": {
        "label": {"cmd": "clusterstage label", "params": ["labels"]},
        "train": {
            "cmd": "clusterstage train --region ${score.region}",
            "params": ["train", "labels.quadrant", {"params.yaml": ["data.labels"]}],
        },
    }
}


def _write(tmp_path: Path, params: dict) -> tuple[Path, Path]:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC))
    return tmp_path / "params.yaml", tmp_path / "dvc.yaml"


def test_stage_params_reads_declared_and_templated_keys():
    assert stage_params(DVC) == [
        ("label", "labels"),
        ("train", "train"),
        ("train", "labels.quadrant"),
        ("train", "data.labels"),
        ("train", "score.region"),
    ]


def test_a_key_a_stage_reads_must_be_in_params_yaml(tmp_path):
    full = {
        "labels": {"source": "quadrant", "quadrant": {"lq_split": 1.0}},
        "train": {"seed": 7},
        "data": {"labels": None},  # present, though null
        "score": {"region": "Sachsen"},
    }
    check_stage_params(*_write(tmp_path, full))
    # the README's `labels:` snippet pasted over the whole section drops labels.quadrant
    params, dvc = _write(tmp_path, {**full, "labels": {"source": "quadrant"}})
    with pytest.raises(ParamsError) as err:
        check_stage_params(params, dvc)
    assert str(err.value) == (
        f"{params}: missing key 'labels.quadrant' (the train stage of {dvc} reads it); "
        "expected it as in the shipped params.yaml"
    )
    params, dvc = _write(tmp_path, {k: v for k, v in full.items() if k != "score"})
    with pytest.raises(ParamsError, match="missing key 'score.region' \\(the train stage"):
        check_stage_params(params, dvc)


def test_the_shipped_params_hold_every_key_the_pipeline_reads():
    check_stage_params(ROOT / "params.yaml", ROOT / "dvc.yaml")


def test_stage_exit_code_reads_dvcs_failure_line():
    line = "ERROR: failed to reproduce 'ingest': failed to run: clusterstage ingest, exited with 2"
    assert stage_exit_code(line) == 2
    assert stage_exit_code("Running stage 'ingest':") is None


# A small DVC project whose stages copy text files: every stage calls step.py, which fails with
# exit 2 and one line when its input says "bad".
STEP = """\
import sys
from pathlib import Path

src, *outs = sys.argv[1:]
text = Path(src).read_text()
if "bad" in text:
    print(f"error: {src}: bad input", file=sys.stderr)
    sys.exit(2)
for out in outs:
    if out.endswith("/"):
        Path(out).mkdir(parents=True, exist_ok=True)
        for name in ("a.txt", "b.txt"):
            Path(out, name).write_text(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
"""


def _stage(src: str, *outs: object) -> dict:
    names = [o if isinstance(o, str) else next(iter(o)) for o in outs]
    return {
        "cmd": f'"{sys.executable}" step.py {src} {" ".join(names)}',
        "deps": ["step.py", src],
        "outs": list(outs),
    }


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Make a DVC project in tmp_path (the cwd) with the given stages; return its root."""
    monkeypatch.chdir(tmp_path)

    def make(stages: dict) -> Path:
        (tmp_path / "step.py").write_text(STEP)
        (tmp_path / "in.txt").write_text("one\n")
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"score": {"region": "x"}}))
        (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
        init = [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"]
        subprocess.run(init, cwd=tmp_path, check=True)
        return tmp_path

    return make


def test_a_file_in_a_stage_output_folder_stops_the_run_before_dvc_deletes_it(project):
    root = project({"make": _stage("in.txt", "out/")})  # out/: the stage writes a.txt, b.txt
    assert run_pipeline("params.yaml") == 0
    lock = (root / "dvc.lock").read_text()
    mine = root / "out" / "mine.csv"
    mine.write_text("region,cluster\n")
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    # a.txt and b.txt are the stage's (DVC recorded them there), mine.csv is not
    assert result.stderr == (
        "error: out/mine.csv: not written by the pipeline, yet inside out, the output of the "
        "make stage, which DVC deletes when that stage runs; expected it in a folder of its "
        "own (data/raw/<name>, named by data.dir in params.yaml)\n"
    )
    assert mine.read_text() == "region,cluster\n" and (root / "dvc.lock").read_text() == lock


def test_a_fresh_project_runs_and_known_names_tell_a_stage_folder_without_a_record(project):
    shap = paths.SHAP.as_posix()
    explain = {
        "cmd": f'"{sys.executable}" step.py in.txt {shap}/mean_abs_shap.csv',
        "deps": ["in.txt"],
        "outs": [{shap: {"cache": False}}],
    }
    root = project({"generate": _stage("in.txt", paths.REFERENCE.as_posix()), "explain": explain})
    # No dvc.lock and no cache yet: the generator's file names say what is its own.
    (root / paths.REFERENCE).mkdir(parents=True)
    (root / paths.REFERENCE / "panel.parquet").write_text("left by an earlier run")
    (root / paths.REFERENCE / "mine.csv").write_text("x")
    with pytest.raises(InputError, match=r"^data/raw/reference/mine.csv: not written by the"):
        run_pipeline("params.yaml")
    (root / paths.REFERENCE / "mine.csv").unlink()
    assert run_pipeline("params.yaml") == 0
    # DVC records no files of a folder it does not cache: the explain stage's names tell.
    for name in ("beeswarm_growth.png", ".mean_abs_shap.csv.x1y2.tmp", "notes.txt", "more.txt"):
        (root / paths.SHAP / name).write_text("x")
    with pytest.raises(InputError) as err:
        run_pipeline("params.yaml")
    assert str(err.value).startswith("reports/shap/more.txt: not written by the pipeline, yet ")
    assert str(err.value).endswith(" (and 1 more such file)")  # notes.txt


def test_a_failed_run_restores_what_dvc_removed_and_keeps_a_changed_output(project, capsys):
    root = project(
        {
            "first": _stage("in.txt", "first.txt", {"note.txt": {"cache": False}}),
            "second": _stage("first.txt", "second.txt"),
        }
    )
    assert run_pipeline("params.yaml") == 0
    # second.txt changed by hand, as `clusterstage label` run on its own leaves labels.parquet:
    # DVC's plain checkout refuses to run at all then.
    (root / "second.txt").write_text("mine\n")
    (root / "in.txt").write_text("bad\n")
    capsys.readouterr()
    assert run_pipeline("params.yaml") == 2
    assert (root / "first.txt").read_text() == "one\n"
    assert (root / "second.txt").read_text() == "mine\n"
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == [
        "error: in.txt: bad input",
        "warning: the last good run's note.txt could not be restored (DVC keeps no copy of an "
        "output marked cache: false; the next good run writes it)",
    ]


def test_a_restore_that_fails_is_said_in_one_line(project, capsys):
    root = project({"first": _stage("in.txt", "first.txt")})
    assert run_pipeline("params.yaml") == 0
    shutil.rmtree(root / ".dvc" / "cache")
    (root / "in.txt").write_text("bad\n")
    capsys.readouterr()
    assert run_pipeline("params.yaml") == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("warning: the last good run's first.txt could not be restored (dvc ")
    assert not (root / "first.txt").exists()


def test_stage_folders_are_dvc_yamls_and_name_the_files_their_stages_write(tmp_path):
    from models.bundle import BOOSTER_FILE, META_FILE, YEAR_QUANTILES_FILE
    from pipeline.generate import generate_world

    outputs = stage_outputs(yaml.safe_load((ROOT / "dvc.yaml").read_text()))
    for folder, (stage, _) in paths.STAGE_FOLDERS.items():
        assert any(s == stage and Path(out) == folder for s, out, _ in outputs), folder
    assert paths.STAGE_FOLDERS[paths.MODEL_DIR][1] == (META_FILE, BOOSTER_FILE, YEAR_QUANTILES_FILE)
    assert paths.MEAN_ABS_SHAP.parent == paths.SHAP
    assert paths.MEAN_ABS_SHAP.name in paths.STAGE_FOLDERS[paths.SHAP][1]
    generate_world(tmp_path, seed=1, scale=0.01)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(paths.STAGE_FOLDERS[paths.REFERENCE][1])


def test_set_pairs_become_one_dvc_experiment():
    assert exp_run_args(["train.max_depth=6", "score.region=Freistaat Sachsen"]) == [
        "exp",
        "run",
        "-S",
        "train.max_depth=6",
        "-S",
        "score.region=Freistaat Sachsen",
    ]


@pytest.fixture
def git_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed git + DVC project whose one stage reads the file named by score.region:
    good.txt and fine.txt are fine, bad.txt makes it fail with exit 2 and one line."""
    monkeypatch.chdir(tmp_path)
    for var in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{var}_NAME", "test")
        monkeypatch.setenv(f"{var}_EMAIL", "test@example.org")
    (tmp_path / "step.py").write_text(STEP)
    for name, text in {"good": "one\n", "fine": "two\n", "bad": "bad\n"}.items():
        (tmp_path / f"{name}.txt").write_text(text)
    (tmp_path / "params.yaml").write_text("score:\n  region: good  # the file to copy\n")
    stage = {
        "cmd": f'"{sys.executable}" step.py ${{score.region}}.txt first.txt',
        "deps": ["step.py", "good.txt", "fine.txt", "bad.txt"],
        "outs": ["first.txt"],
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"first": stage}}))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    assert run_pipeline("params.yaml") == 0
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=tmp_path, check=True)
    return tmp_path


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("score.regio=fine", "params.yaml: unknown key 'score.regio' (--set score.regio=fine)"),
        (
            "score.region=[a,b]",
            "params.yaml with --set: key 'score.region': Input should be a valid string "
            "(got ['a', 'b'])",
        ),
        (
            "score.region=fine,good",
            "--set 'score.region=fine,good': expected KEY=VALUE, one value for one key",
        ),
        (
            "score.region",
            "--set 'score.region': expected KEY=VALUE (Error parsing override 'score.region')",
        ),
        (
            "score.region=Off",
            "params.yaml with --set, line 2: 'Off' is read as a boolean here but as text by "
            "DVC (YAML 1.2); write true or false, or quote it",
        ),
    ],
)
def test_a_bad_set_stops_before_dvc_and_touches_nothing(git_project, pair, message):
    params = (git_project / "params.yaml").read_bytes()
    files = sorted(p.relative_to(git_project) for p in git_project.rglob("*") if p.is_file())
    result = CliRunner().invoke(app, ["run", "--set", "score.region=fine", "--set", pair])
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert (git_project / "params.yaml").read_bytes() == params
    assert (
        sorted(p.relative_to(git_project) for p in git_project.rglob("*") if p.is_file()) == files
    )
    assert (git_project / "first.txt").read_text() == "one\n"


def test_a_set_outside_a_committed_git_repository_is_one_line(git_project):
    subprocess.run(["git", "update-ref", "-d", "HEAD"], cwd=git_project, check=True)
    params = (git_project / "params.yaml").read_bytes()
    result = CliRunner().invoke(app, ["run", "--set", "score.region=fine"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --set runs a DVC experiment, which needs a git repository with at least one "
        "commit; expected one here (git init, git add, git commit), or change params.yaml and "
        "run without --set\n"
    )
    assert (git_project / "params.yaml").read_bytes() == params
    assert (git_project / "first.txt").read_text() == "one\n"


def test_a_set_runs_a_dvc_experiment_and_a_failed_one_puts_everything_back(git_project, capsys):
    params = (git_project / "params.yaml").read_bytes()
    capsys.readouterr()
    assert run_pipeline("params.yaml", ["score.region=bad"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: bad.txt: bad input"
    assert (git_project / "params.yaml").read_bytes() == params
    assert (git_project / "first.txt").read_text() == "one\n"  # DVC had removed it

    assert run_pipeline("params.yaml", ["score.region=fine"]) == 0
    assert (git_project / "first.txt").read_text() == "two\n"
    assert yaml.safe_load((git_project / "params.yaml").read_text()) == {
        "score": {"region": "fine"}
    }
    listed = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "list", "--name-only"],
        cwd=git_project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(listed.stdout.split()) == 1  # the good variant, which `dvc exp show` compares
