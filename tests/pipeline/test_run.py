"""`clusterstage run`: params.yaml is checked against what dvc.yaml's stages read, before DVC."""

from pathlib import Path

import pytest
import yaml

from pipeline.params import ParamsError
from pipeline.run import check_stage_params, stage_exit_code, stage_params

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
