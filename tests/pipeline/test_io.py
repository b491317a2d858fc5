import errno
import os
import stat
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.errors import InputError
from pipeline.io import atomic_path, check_writable, defuse_formulas, write_table


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


def test_a_target_that_cannot_be_written_is_bad_input(tmp_path, refuse_new_files):
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
    refuse_new_files(locked)
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


def test_an_output_that_is_the_input_is_refused(tmp_path, monkeypatch):
    from pipeline.io import check_writable

    source = tmp_path / "in" / "panel.csv"
    source.parent.mkdir()
    source.write_text("region\nA\n")
    (tmp_path / "link.csv").symlink_to(source)
    monkeypatch.chdir(tmp_path)
    message = f"cannot write: it is the input file {source}; expected another output path"
    for target in [source, Path("in/../in/panel.csv"), Path("link.csv")]:
        with pytest.raises(InputError) as err:
            check_writable(target, inputs=[tmp_path / "other.csv", source])
        assert str(err.value) == f"{target}: {message}"
    # Another file, and an output that does not exist yet, are fine.
    (tmp_path / "old.csv").write_text("old")
    assert check_writable(tmp_path / "old.csv", inputs=[source]) == tmp_path / "old.csv"
    assert check_writable(tmp_path / "new.csv", inputs=[source]) == tmp_path / "new.csv"
    assert source.read_text() == "region\nA\n"


def test_a_cr_or_lf_in_a_text_cell_stays_inside_its_csv_record(tmp_path):
    import csv

    from features.loaders import check_field_counts, load_input

    names = ["Shoe\rmakers", "Foot\nwear", "Crlf\r\nco", "Plain"]
    panel = pd.DataFrame(
        {
            "region": ["North"] * 4,
            "cluster": names,
            "year": [2020] * 4,
            "employment": [10.0, 20.0, 30.0, 40.0],
            "establishments": [1, 2, 3, 4],
        }
    )
    out = write_table(panel, tmp_path / "panel.csv")
    with out.open(encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle))
    assert records[1:] == [["North", name, "2020", f"{10 * i}.0", str(i)] for i, name in
                           enumerate(names, start=1)]  # fmt: skip
    check_field_counts(out, ",")
    # Our own loader reads every record back whole (it sorts the rows by their keys).
    assert sorted(load_input(out, "panel")["cluster"]) == sorted(names)


@pytest.mark.parametrize(
    ("suffix", "writer", "err"),
    [
        (".csv", "pandas.DataFrame.to_csv", (errno.ENOSPC, "No space left on device")),
        (".parquet", "pyarrow.parquet.write_table", (errno.EFBIG, "File too large")),
        (".jsonl", "pandas.DataFrame.to_json", (errno.EACCES, "Permission denied")),
    ],
)
def test_an_os_error_while_writing_is_bad_input(tmp_path, monkeypatch, suffix, writer, err):
    target = tmp_path / f"out{suffix}"
    target.write_text("old")

    def refused(*args, **kwargs):
        raise OSError(*err)

    monkeypatch.setattr(writer, refused)
    with pytest.raises(InputError) as raised:
        write_table(pd.DataFrame({"a": [1]}), target)
    assert str(raised.value) == f"{target}: cannot write: {err[1].lower()}"
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_an_output_name_too_long_for_the_file_system_is_bad_input(tmp_path: Path) -> None:
    target = tmp_path / ("x" * 300 + ".csv")
    with pytest.raises(InputError, match=r"cannot write: file name too long$"):
        check_writable(target)
    source = tmp_path / "in.csv"
    source.write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"cannot write: file name too long$"):
        check_writable(target, inputs=[source])


def test_an_output_hard_linked_to_the_input_is_refused(tmp_path):
    source = tmp_path / "panel.csv"
    source.write_text("region\nA\n")
    target = tmp_path / "out.csv"
    os.link(source, target)  # another name for the same file: writing it would replace the input
    with pytest.raises(InputError) as err:
        check_writable(target, inputs=[source])
    assert str(err.value) == (
        f"{target}: cannot write: it is the input file {source}; expected another output path"
    )
    assert source.read_text() == "region\nA\n"


def test_outputs_get_the_umask_mode_not_the_private_temp_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "x.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.csv").stat().st_mode) == 0o644


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``, hidden ones included."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def _old_outputs(root: Path) -> None:
    write_table(pd.DataFrame({"a": [1]}), root / "a.parquet")
    (root / "b.json").write_text('{"old": true}\n')
    (root / "plots").mkdir()
    (root / "plots" / "old.png").write_bytes(b"old plot")


def test_atomic_outputs_replaces_every_target_once_all_are_written(tmp_path):
    from pipeline.io import atomic_outputs

    _old_outputs(tmp_path)
    targets = [tmp_path / "a.parquet", tmp_path / "b.json"]
    folder = tmp_path / "plots"
    old = os.umask(0o022)
    try:
        with atomic_outputs(targets, [folder]) as staged:
            assert set(staged) == {*targets, folder}
            # Each is written under its own name (write_table goes by the suffix), next to it.
            assert all(staged[t].name == t.name and staged[t].parent.parent == t.parent
                       for t in staged)  # fmt: skip
            write_table(pd.DataFrame({"a": [2]}), staged[targets[0]])
            staged[targets[1]].write_text('{"new": true}\n')
            (staged[folder] / "new.png").write_bytes(b"new plot")
            # nothing is replaced before the block ends
            assert (tmp_path / "b.json").read_text() == '{"old": true}\n'
    finally:
        os.umask(old)
    assert pd.read_parquet(targets[0])["a"].tolist() == [2]
    assert targets[1].read_text() == '{"new": true}\n'
    # The folder is replaced as a whole: the old one's files are gone.
    assert _tree(tmp_path) == {
        "a.parquet": targets[0].read_bytes(),
        "b.json": b'{"new": true}\n',
        "plots": None,
        "plots/new.png": b"new plot",
    }
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"a.parquet": 0o644, "b.json": 0o644, "plots": 0o755}


@pytest.mark.parametrize("interruption", ["os_error", "keyboard_interrupt", "system_exit"])
def test_a_failure_writing_the_last_output_leaves_every_output_as_it_was(
    tmp_path, monkeypatch, interruption
):
    from pipeline.io import atomic_outputs

    _old_outputs(tmp_path)
    before = _tree(tmp_path)
    raised = {
        "os_error": OSError(errno.ENOSPC, "No space left on device"),
        "keyboard_interrupt": KeyboardInterrupt(),
        "system_exit": SystemExit(143),  # as SIGTERM raises it (pipeline.cli)
    }[interruption]

    def refused(*args, **kwargs):
        raise raised

    targets = [tmp_path / "a.parquet", tmp_path / "b.json", tmp_path / "c.csv"]
    expected = InputError if interruption == "os_error" else type(raised)
    with pytest.raises(expected) as err, atomic_outputs(targets, [tmp_path / "plots"]) as staged:
        write_table(pd.DataFrame({"a": [2]}), staged[targets[0]])
        staged[targets[1]].write_text('{"new": true}\n')
        (staged[tmp_path / "plots"] / "new.png").write_bytes(b"new plot")
        monkeypatch.setattr("pandas.DataFrame.to_csv", refused)
        write_table(pd.DataFrame({"a": [2]}), staged[targets[2]])
    if interruption == "os_error":  # named after the output, not its temporary
        assert str(err.value) == f"{targets[2]}: cannot write: no space left on device"
    assert _tree(tmp_path) == before  # byte for byte, and no temporary left


def test_an_output_that_cannot_be_replaced_is_refused_before_the_block(tmp_path, refuse_new_files):
    from pipeline.io import atomic_outputs, check_outputs

    _old_outputs(tmp_path)
    before = _tree(tmp_path)
    folder = tmp_path / "plots"
    # `chattr +i plots`: no file can be made in it, so it can be neither moved nor emptied.
    refuse_new_files(folder, errno.EPERM)
    message = (
        f"{folder}: cannot write: no file can be created in {folder} (operation not permitted)"
    )
    with pytest.raises(InputError) as err:
        check_outputs([tmp_path / "a.parquet"], [folder])
    assert str(err.value) == message
    with pytest.raises(InputError) as err, atomic_outputs([tmp_path / "a.parquet"], [folder]):
        pytest.fail("the block must not run")
    assert str(err.value) == message
    # A file where a folder is expected, and the other way round.
    with pytest.raises(InputError, match="cannot write: it is a file, expected a folder"):
        check_outputs(folders=[tmp_path / "b.json"])
    with pytest.raises(InputError, match="cannot write: it is a folder, expected a file path"):
        check_outputs([folder])
    assert _tree(tmp_path) == before


def test_a_folder_that_cannot_be_moved_in_puts_the_old_one_back(tmp_path, monkeypatch):
    from pipeline.io import atomic_outputs

    _old_outputs(tmp_path)
    before = _tree(tmp_path)
    folder = tmp_path / "plots"
    real = os.replace
    moves_in: list[Path] = []

    def refused(src, dst):
        if Path(dst) == folder:
            moves_in.append(Path(src))
            if len(moves_in) == 1:  # the new folder; the old one may go back
                raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refused)
    with (
        pytest.raises(InputError) as err,
        atomic_outputs([tmp_path / "b.json"], [folder]) as staged,
    ):
        staged[tmp_path / "b.json"].write_text("new")
        (staged[folder] / "new.png").write_bytes(b"new plot")
    assert str(err.value) == f"{folder}: cannot write: invalid cross-device link"
    assert len(moves_in) == 2
    assert _tree(tmp_path) == before
