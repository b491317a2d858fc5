from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.cmp_flags import FLAGS, strength_flags
from features.errors import InputError

STATES = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "us-cluster-mapping"
) / "states_2016.csv"


def _frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["region", "cluster", "year", "lq", "employment", "establishments"]
    )


def _flags(out: pd.DataFrame, region: str, cluster: str = "c") -> list[object]:
    row = out[(out["region"] == region) & (out["cluster"] == cluster)].iloc[0]
    return [None if pd.isna(row[f]) else bool(row[f]) for f in FLAGS]


def test_hand_computed_percentiles_with_interpolation() -> None:
    # Population of 4: linear positions 3p. LQ sorted 0.6 0.9 1.2 2.0 -> P25 0.825, P50 1.05,
    # P75 1.4, P90 1.76; employment 50 60 80 120 -> P25 57.5; establishments 5 6 7 9 -> P25 5.75.
    out = strength_flags(
        _frame(
            [
                ("r1", "c", 2016, 0.6, 50, 5),
                ("r2", "c", 2016, 1.2, 80, 9),
                ("r3", "c", 2016, 2.0, 120, 7),
                ("r4", "c", 2016, 0.9, 60, 6),
            ]
        )
    )
    assert _flags(out, "r1") == [False, False, False, False]  # too small
    assert _flags(out, "r2") == [True, True, False, False]  # 1.2 < P75 1.4
    assert _flags(out, "r3") == [True, True, True, True]  # 2.0 >= P90 1.76
    assert _flags(out, "r4") == [True, False, False, False]  # 0.825 < 0.9 < 1.05
    assert all(str(out[f].dtype) == "boolean" for f in FLAGS)


def test_zero_employment_regions_stay_out_of_the_percentiles() -> None:
    # Without z: employment 100..500 -> P25 = 200, LQ P25 = 0.8, so b is neither large enough
    # nor above the LQ bar. Counting z (employment 0) would lower both bars and flag b.
    rows = [
        ("a", "c", 2016, 0.5, 100, 10),
        ("b", "c", 2016, 0.8, 200, 20),
        ("cc", "c", 2016, 1.0, 300, 30),
        ("d", "c", 2016, 1.5, 400, 40),
        ("e", "c", 2016, 3.0, 500, 50),
        ("z", "c", 2016, 0.0, 0, 0),
    ]
    out = strength_flags(_frame(rows))
    assert _flags(out, "b") == [False, False, False, False]
    assert _flags(out, "cc") == [True, False, False, False]  # LQ 1.0 is not > P50 1.0
    assert _flags(out, "d") == [True, True, True, False]  # P75 = 1.5 inclusive; P90 = 2.4
    assert _flags(out, "e") == [True, True, True, True]
    assert _flags(out, "z") == [False, False, False, False]


def test_strong_also_needs_lq_of_at_least_one() -> None:
    rows = [(f"r{i}", "c", 2016, lq, 10 * i, i) for i, lq in enumerate([0.2, 0.4, 0.6, 0.8], 1)]
    out = strength_flags(_frame(rows))
    assert _flags(out, "r4") == [True, True, False, False]  # top of its cluster, but LQ < 1


def test_percentiles_are_per_cluster_and_year() -> None:
    rows = [
        ("a", "c", 2015, 1.0, 10, 1),
        ("b", "c", 2015, 2.0, 20, 2),
        ("a", "c", 2016, 3.0, 10, 1),
        ("b", "c", 2016, 2.0, 20, 2),
        ("a", "k", 2016, 9.0, 10, 1),
        ("b", "k", 2016, 1.0, 20, 2),
    ]
    out = strength_flags(_frame(rows))
    by_key = out.set_index(["region", "cluster", "year"])["cmp_significant"]
    # b is the bigger region everywhere; its LQ ranks first in 2015 and last in 2016.
    assert bool(by_key[("b", "c", 2015)]) is True
    assert bool(by_key[("b", "c", 2016)]) is False
    assert bool(by_key[("b", "k", 2016)]) is False


def test_level_agnostic_counties_local_clusters_and_missing_values() -> None:
    counties = pd.DataFrame(
        {
            "county": ["Harris, TX", "Dallas, TX", "Travis, TX", "Bexar, TX", "Harris, TX"],
            "cluster": ["Oil and Gas"] * 4 + ["Local Health"],
            "lq": [4.0, 1.1, 0.3, None, 1.5],
            "employment": [900, 300, 100, 200, 800],
            "establishments": [90, 30, 10, 20, 80],
            "traded": [True, True, True, True, False],
        }
    )
    out = strength_flags(counties, region_col="county", year_col=None)
    assert list(out.columns[:6]) == list(counties.columns)
    # Population of the four traded counties: employment 100 200 300 900 -> P25 175;
    # LQ of the three known values 0.3 1.1 4.0 -> P25 0.7, P75 2.55, P90 3.42.
    assert [bool(v) for v in out.loc[0, list(FLAGS)]] == [True, True, True, True]
    assert [bool(v) for v in out.loc[1, list(FLAGS)]] == [True, False, False, False]
    assert [bool(v) for v in out.loc[2, list(FLAGS)]] == [False, False, False, False]
    assert out.loc[3, list(FLAGS)].isna().all()  # LQ unknown
    assert out.loc[4, list(FLAGS)].isna().all()  # local cluster
    assert counties["lq"].isna().sum() == 1  # input untouched


def test_bad_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match="missing establishments"):
        strength_flags(_frame([("a", "c", 2016, 1.0, 1, 1)]).drop(columns="establishments"))
    with pytest.raises(InputError, match="repeats") as err:
        strength_flags(_frame([("a", "c", 2016, 1.0, 1, 1), ("a", "c", 2016, 2.0, 1, 1)]))
    assert err.value.row == 2
    bad = _frame([("a", "c", 2016, "high", 1, 1)])
    with pytest.raises(InputError, match="expected numbers"):
        strength_flags(bad)


def _published_states() -> pd.DataFrame:
    try:
        from features.cmp import load_cmp
    except ImportError:
        raw = pd.read_csv(STATES)
        frame = raw.rename(
            columns={
                "region_name_t": "region",
                "cluster_name_t": "cluster",
                "year_t": "year",
                "emp_tl": "employment",
                "est_tl": "establishments",
                "lq_tf": "lq",
                "traded_b": "traded",
            }
        )
        for flag in ("qualifying", "significant", "strong", "strong10"):
            frame[f"published_{flag}"] = frame[f"{flag}_b"].astype("boolean")
        return frame
    return load_cmp(STATES)


@pytest.mark.skipif(not STATES.exists(), reason="../shared/data is not present")
def test_reproduces_the_published_flags_on_every_traded_state_row() -> None:
    frame = _published_states()
    out = strength_flags(frame)
    traded = out[out["traded"].astype(bool)]
    assert len(traded) == 2550
    for flag in ("qualifying", "significant", "strong", "strong10"):
        ours = traded[f"cmp_{flag}"]
        published = traded[f"published_{flag}"].astype("boolean")
        assert ours.notna().all() and published.notna().all()
        mismatches = int((ours.to_numpy(bool) != published.to_numpy(bool)).sum())
        assert mismatches == 0, f"{flag}: {mismatches} rows differ"
    local = out[~out["traded"].astype(bool)]
    assert len(local) == 800 and local[list(FLAGS)].isna().all().all()
