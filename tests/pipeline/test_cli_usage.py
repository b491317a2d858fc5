"""The console script's own handling of usage errors (the commands' input errors are tested in
test_cli_bad_input.py)."""

import sys

import pytest

from pipeline.cli import main


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["clusterstage", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["score", "in.csv", "--grain", "county", "-o", "o.csv"],
            "error: Invalid value for '--grain': 'county' is not one of 'panel', 'firms', 'cmp'."
            " (see 'clusterstage score --help')",
        ),
        (
            ["score", "in.csv", "--grain", "cmp", "--top-k", "x", "-o", "o.csv"],
            "error: Invalid value for '--top-k': Input should be a valid integer, unable to parse "
            "string as an integer (see 'clusterstage score --help')",
        ),
        # a number out of range is the command's own one-line error, before any file is read
        (
            ["score", "in.csv", "--grain", "cmp", "--top-k", "0", "-o", "o.csv"],
            "error: --top-k 0: expected a whole number from 1 to 50 (params.yaml explain.top_k)",
        ),
        (["nosuch"], "error: No such command 'nosuch'. (see 'clusterstage --help')"),
        (["score"], "error: Missing argument 'input'. (see 'clusterstage score --help')"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(monkeypatch, capsys, args, expected):
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert err.splitlines() == [expected]
    assert out == ""


def test_help_and_no_arguments(monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, "--help")
    assert code == 0 and "clusterstage" in out and "score" in out
    code, out, err = run_main(monkeypatch, capsys)
    assert code == 2 and "Usage" in out + err


def test_a_bad_input_keeps_its_own_one_line_error(monkeypatch, capsys, tmp_path):
    missing = tmp_path / "absent.csv"
    out_path = tmp_path / "o.parquet"
    code, _, err = run_main(
        monkeypatch, capsys, "features", str(missing), "--grain", "panel", "-o", str(out_path)
    )
    assert code == 2 and err.splitlines() == [f"error: {missing}: cannot read: no such file"]
    assert not out_path.exists()
