import sys

import pytest

import benchmarks.calibrate as calibrate


def run(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["calibrate.py", *args])
    calibrate.main()


def test_a_missing_real_file_is_one_line_and_exit_2_before_any_work(tmp_path, monkeypatch, capsys):
    def no_world(*_args, **_kwargs):
        raise AssertionError("the world was generated before the --real file was checked")

    monkeypatch.setattr(calibrate, "generate_world", no_world)
    missing = tmp_path / "states_2016.csv"
    with pytest.raises(SystemExit) as exit_info:
        run(monkeypatch, "--real", str(missing), "--scale", "0.01")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(missing) in err
    assert "--real" in err


def test_the_default_real_file_is_named_when_absent(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "shared" / "states_2016.csv"
    monkeypatch.setattr(calibrate, "REAL", missing)
    monkeypatch.setattr(sys, "argv", ["calibrate.py", "--world", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        # The default is read when the parser is built, so main sees the patched path.
        calibrate.main()
    assert exit_info.value.code == 2
    assert str(missing) in capsys.readouterr().err


def test_a_world_folder_without_a_panel_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    real = tmp_path / "states_2016.csv"
    real.write_text("state,cluster\n", encoding="utf-8")
    world = tmp_path / "world"
    world.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        run(monkeypatch, "--real", str(real), "--world", str(world))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(world / "panel.parquet") in err
