import pytest

from features.errors import InputError, read_utf8


def test_the_line_names_file_column_and_row_in_that_order():
    err = InputError("data/emp.csv", "expected a number, found 'abc'", column="emp", row=5)
    assert str(err) == "data/emp.csv, column 'emp', row 5: expected a number, found 'abc'"


def test_without_a_file_the_line_starts_with_what_it_has():
    assert str(InputError(None, "expected a number", column="emp")) == (
        "column 'emp': expected a number"
    )
    assert str(InputError(None, "--scale -1.0: expected a number > 0")) == (
        "--scale -1.0: expected a number > 0"
    )


def test_a_file_name_with_a_line_break_stays_on_one_line():
    err = InputError("data/a\nb.csv", "no data rows", row=1)
    assert str(err) == "'data/a\\nb.csv', row 1: no data rows"
    assert str(InputError("data/Zürich.csv", "no data rows")) == "data/Zürich.csv: no data rows"


def test_read_utf8_names_the_first_bad_byte_and_its_line(tmp_path):
    path = tmp_path / "kb.yaml"
    path.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(InputError) as err:
        read_utf8(path, "a UTF-8 encoded YAML file")
    assert str(err.value) == (
        f"{path}: not UTF-8 text (byte 0xff on line 2); expected a UTF-8 encoded YAML file"
    )
    path.write_bytes("\ufeffa: ä\n".encode())
    assert read_utf8(path, "YAML") == "a: ä\n"  # the byte-order mark is not text
