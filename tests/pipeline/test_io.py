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
