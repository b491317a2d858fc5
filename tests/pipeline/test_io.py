import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.errors import InputError
from pipeline.io import atomic_path, defuse_formulas, write_table


def test_formula_cells_are_defused_in_csv(tmp_path):
    frame = pd.DataFrame(
        {"cluster": ['=HYPERLINK("x")', "+1", "Footwear", "-2"], "n": [1, 2, 3, 4]}
    )
    out = write_table(frame, tmp_path / "a.csv")
    back = pd.read_csv(out)
    assert back["cluster"].tolist() == ['\'=HYPERLINK("x")', "'+1", "Footwear", "'-2"]
    assert back["n"].tolist() == [1, 2, 3, 4]


def test_defuse_leaves_numbers_alone():
    frame = pd.DataFrame({"x": [-1.5, 2.0]})
    pd.testing.assert_frame_equal(defuse_formulas(frame), frame)


def test_parquet_metadata_is_written(tmp_path):
    out = write_table(pd.DataFrame({"a": [1]}), tmp_path / "a.parquet", metadata={"k": "v"})
    assert pq.read_schema(out).metadata[b"k"] == b"v"


def test_failure_leaves_no_partial_output(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_survives_a_failed_rewrite(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError
    assert target.read_text() == "old"


def test_unknown_suffix_is_bad_input(tmp_path):
    with pytest.raises(InputError, match="expected .parquet, .csv or .jsonl"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "a.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_a_writable_target_passes_and_nothing_is_left_behind(tmp_path):
    from pipeline.io import check_writable

    (tmp_path / "old.csv").write_text("old")
    assert check_writable(tmp_path / "new.csv") == tmp_path / "new.csv"
    assert check_writable(str(tmp_path / "old.csv")) == tmp_path / "old.csv"  # replaced later
    # A folder that does not exist yet is made when the output is written, not by the check.
    assert check_writable(tmp_path / "new" / "deeper" / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]
    assert (tmp_path / "old.csv").read_text() == "old"


def test_a_target_that_cannot_be_written_is_bad_input(tmp_path, monkeypatch):
    from pipeline.io import check_writable

    (tmp_path / "d.parquet").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    cases = {
        tmp_path / "d.parquet": "cannot write: it is a folder, expected a file path",
        tmp_path
        / "notes.txt"
        / "out.csv": f"cannot write: {tmp_path / 'notes.txt'} is not a folder",
        tmp_path / "notes.txt" / "a" / "out.csv": (
            f"cannot write: {tmp_path / 'notes.txt'} is not a folder"
        ),
        locked / "out.csv": f"cannot write: no file can be created in {locked} (permission denied)",
        locked / "new" / "out.csv": (
            f"cannot write: no file can be created in {locked} (permission denied)"
        ),
    }
    real = tempfile.mkstemp

    def deny(*args, **kwargs):
        # As root a folder's mode does not stop a write, so the refusal is simulated.
        if Path(kwargs.get("dir", "")) == locked:
            raise PermissionError(13, "Permission denied")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", deny)
    for target, message in cases.items():
        with pytest.raises(InputError) as err:
            check_writable(target)
        assert str(err.value) == f"{target}: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet", "locked", "notes.txt"]
    assert list(locked.iterdir()) == [] and list((tmp_path / "d.parquet").iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc here")
def test_a_folder_that_takes_no_new_files_is_bad_input():
    from pipeline.io import check_writable

    # /proc exists and looks writable to root, but no file can be made in it.
    with pytest.raises(InputError) as err:
        check_writable("/proc/x.parquet")
    assert str(err.value) == (
        "/proc/x.parquet: cannot write: no file can be created in /proc (no such file or directory)"
    )
