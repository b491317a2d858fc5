from features.errors import InputError


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
