from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from features.labellers import LABEL_COLUMNS, agreement, quadrant_labels, trajectory_labels
from features.labellers.trajectory import life_cycle_path, yearly_evidence
from features.stages import STAGES

# ---------------------------------------------------------------- quadrant


def _rows(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["region", "cluster", "year", "lq", "growth_vs_national_3y"])


def test_quadrant_each_cell() -> None:
    feats = _rows(
        ("r", "star", 2020, 1.8, 0.05),
        ("r", "new", 2020, 0.4, 0.05),
        ("r", "steady", 2020, 2.0, -0.01),  # not growing, but within the decline threshold
        ("r", "shrinking", 2020, 2.0, -0.08),
        ("r", "weak", 2020, 0.6, -0.01),
        ("r", "edge", 2020, 1.0, 0.0),  # LQ exactly 1 counts as specialised; 0 is not growing
    )
    out = quadrant_labels(feats, decline_threshold=0.02)
    assert list(out.columns) == list(LABEL_COLUMNS)
    stage = dict(zip(out["cluster"], out["stage"], strict=True))
    assert stage == {
        "star": "growth",
        "new": "emerging",
        "steady": "mature",
        "shrinking": "decline",
        "weak": "decline",
        "edge": "mature",
    }
    assert set(out["source"]) == {"quadrant"}
    assert "renewal" not in set(out["stage"])


def test_quadrant_thresholds_are_arguments() -> None:
    feats = _rows(("r", "a", 2020, 1.2, 0.01), ("r", "b", 2020, 0.9, -0.03))
    default = quadrant_labels(feats)["stage"].tolist()
    moved = quadrant_labels(feats, lq_split=1.5, growth_split=0.02, decline_threshold=0.0)
    assert default == ["growth", "decline"]
    assert moved["stage"].tolist() == ["decline", "decline"]
    with pytest.raises(ValueError):
        quadrant_labels(feats, decline_threshold=-1)


def test_quadrant_growth_falls_back_row_by_row_and_skips_unknown_rows() -> None:
    feats = pd.DataFrame(
        {
            "region": ["r"] * 4,
            "cluster": ["a", "b", "c", "d"],
            "year": [2020] * 4,
            "lq": [1.5, 1.5, 1.5, np.nan],
            "growth_vs_national_3y": [0.03, np.nan, np.nan, 0.1],
            "regional_shift_rate": [-0.5, -0.05, np.nan, 0.1],
            "emp_cagr_3y": [-0.5, 0.5, 0.04, 0.1],
        }
    )
    out = quadrant_labels(feats)
    assert out["cluster"].tolist() == ["a", "b", "c"]  # d has no LQ: unlabelled
    assert out["stage"].tolist() == ["growth", "decline", "growth"]
    one_year = quadrant_labels(feats, growth_columns=["regional_shift_rate"])
    assert one_year["stage"].tolist() == ["decline", "decline"]  # c has no such growth


def test_quadrant_needs_lq_and_a_growth_column() -> None:
    with pytest.raises(InputError, match="growth column"):
        quadrant_labels(pd.DataFrame({"region": [], "cluster": [], "year": [], "lq": []}))


# ---------------------------------------------------------------- agreement


def _labels(stages: list[str], clusters: list[str] | None = None) -> pd.DataFrame:
    clusters = clusters or [f"c{i}" for i in range(len(stages))]
    return pd.DataFrame({"region": "r", "cluster": clusters, "year": 2020, "stage": stages})


def test_agreement_on_a_small_pair() -> None:
    truth = _labels(["growth", "growth", "mature", "decline", "renewal", "emerging"])
    pred = _labels(
        ["growth", "mature", "mature", "decline", "decline"], ["c0", "c1", "c2", "c3", "c4"]
    )
    got = agreement(pred, truth)
    assert got["n"] == 5
    assert got["coverage"] == pytest.approx(5 / 6)
    assert got["accuracy"] == pytest.approx(3 / 5)
    # Observed 0.6; expected = sum(row_k * col_k) / 25 = (2*1 + 1*2 + 1*2) / 25 = 0.24.
    assert got["kappa"] == pytest.approx((0.6 - 0.24) / (1 - 0.24))
    assert got["recall"] == {
        "emerging": None,
        "growth": 0.5,
        "mature": 1.0,
        "decline": 1.0,
        "renewal": 0.0,
    }
    assert got["confusion"]["stages"] == list(STAGES)
    matrix = got["confusion"]["matrix"]
    assert matrix[1] == [0, 1, 1, 0, 0]  # true growth: one right, one called mature
    assert matrix[4] == [0, 0, 0, 1, 0]  # true renewal called decline
    assert sum(map(sum, matrix)) == 5


def test_agreement_handles_key_dtypes_and_empty_overlap() -> None:
    truth = _labels(["growth", "mature"])
    pred = truth.astype({"region": "category", "year": "Int64"})
    perfect = agreement(pred, truth)
    assert perfect["accuracy"] == 1.0 and perfect["kappa"] == 1.0
    none = agreement(_labels(["growth"], ["other"]), truth)
    assert none["n"] == 0 and none["coverage"] == 0.0
    assert none["accuracy"] is None and none["kappa"] is None


def test_agreement_rejects_unknown_stage() -> None:
    with pytest.raises(InputError, match="not one of"):
        agreement(_labels(["boom"]), _labels(["growth"]))


# ---------------------------------------------------------------- trajectory

# Per-year employment growth, entry rate, productivity growth and patent growth of five textbook
# histories. Productivity of all but two grows 2 % a year, so that is the yearly median.
PROFILES = {
    "emerging": (0.20, 0.35, 0.02, 0.0),
    "growth": (0.08, 0.15, 0.02, 0.0),
    "mature": (0.00, 0.05, 0.02, 0.0),
    "decline": (-0.10, 0.02, -0.02, 0.0),
    "renewal": (-0.02, 0.10, 0.08, 0.2),
}


def history(
    region: str, cluster: str, steps: list[tuple[float, float, float, float]], start: int = 2000
) -> pd.DataFrame:
    """A region x cluster history that moves by ``steps`` (one per year after the first)."""
    emp, prod, patents = [1000.0], [50_000.0], [10.0]
    entry = [np.nan]
    for g, e, p, pat in steps:
        emp.append(emp[-1] * np.exp(g))
        prod.append(prod[-1] * np.exp(p))
        patents.append((1 + patents[-1]) * np.exp(pat) - 1)
        entry.append(e)
    n = len(emp)
    return pd.DataFrame(
        {
            "region": region,
            "cluster": cluster,
            "year": range(start, start + n),
            "employment": emp,
            "entry_rate": entry,
            "productivity": prod,
            "patents_per_10k": patents,
        }
    )


def textbook_world(years: int = 6) -> pd.DataFrame:
    return pd.concat(
        [history("r", stage, [profile] * years) for stage, profile in PROFILES.items()],
        ignore_index=True,
    )


def test_trajectory_labels_each_textbook_history() -> None:
    world = textbook_world()
    out = trajectory_labels(world)
    assert list(out.columns) == list(LABEL_COLUMNS)
    assert len(out) == len(world)  # the first year is labelled from the path
    for stage in STAGES:
        got = out.loc[out["cluster"] == stage, "stage"]
        assert set(got) == {stage}, (stage, got.tolist())
    assert set(out["source"]) == {"trajectory"}


def test_trajectory_follows_a_life_cycle_turn() -> None:
    # Six years of growth, then six of maturity, then six of decline: one path, two turns.
    steps = [PROFILES["growth"]] * 6 + [PROFILES["mature"]] * 6 + [PROFILES["decline"]] * 6
    others = textbook_world(18)
    world = pd.concat([history("x", "turning", steps), others], ignore_index=True)
    out = trajectory_labels(world)
    path = out.loc[out["region"] == "x", "stage"].tolist()
    assert path[:5] == ["growth"] * 5
    assert path[8:12] == ["mature"] * 4
    assert path[-5:] == ["decline"] * 5
    # a path never runs backwards through the cycle
    firsts = [path.index(s) for s in ("growth", "mature", "decline")]
    assert firsts == sorted(firsts)


def test_life_cycle_path_smooths_blips_and_respects_allowed_moves() -> None:
    assert life_cycle_path(["growth", "growth", "decline", "growth", "growth"]) == ["growth"] * 5
    assert life_cycle_path(["growth", None, None, "growth"]) == ["growth"] * 4
    # decline cannot turn straight into growth: the path passes through renewal.
    path = life_cycle_path(["decline"] * 4 + ["growth"] * 6)
    assert path[:3] == ["decline"] * 3 and path[-5:] == ["growth"] * 5
    assert path.count("renewal") == 1
    assert path.index("renewal") == path.index("growth") - 1
    # a higher switch penalty keeps one stage for longer
    evidence = ["growth"] * 2 + ["mature"] * 2
    assert life_cycle_path(evidence, 1.0) == evidence
    assert life_cycle_path(evidence, 3.0) == ["growth"] * 4
    assert life_cycle_path([]) == []


def test_trajectory_short_histories_and_missing_signals() -> None:
    one_year = history("r", "single", [])
    growing = history("r", "grower", [PROFILES["growth"]] * 5).drop(columns="entry_rate")
    out = trajectory_labels(pd.concat([one_year, growing], ignore_index=True))
    assert "single" not in set(out["cluster"])  # no change to read: unlabelled
    # Without entry rates there is no emerging or renewal evidence; growth rests on employment.
    assert set(out["stage"]) == {"growth"}


def test_trajectory_uses_calendar_years_across_gaps() -> None:
    world = textbook_world()
    gappy = world[~((world["cluster"] == "decline") & (world["year"] == 2003))]
    out = trajectory_labels(gappy.sample(frac=1.0, random_state=0))
    decline = out[out["cluster"] == "decline"]
    assert 2003 not in set(decline["year"]) and set(decline["stage"]) == {"decline"}
    assert out[["region", "cluster", "year"]].equals(
        out.sort_values(["region", "cluster", "year"])[["region", "cluster", "year"]]
    )


def test_a_long_gap_allows_the_moves_of_its_years() -> None:
    # Take-off in 2000-2003, then nothing until 2015, when the cluster is flat with little
    # entry. Read row by row, emerging -> mature would be one forbidden step; over the twelve
    # unobserved years the path can pass through growth.
    seen = [2000, 2001, 2002, 2003, 2015, 2016, 2017, 2018]
    frame = pd.DataFrame(
        {
            "region": "r",
            "cluster": "x",
            "year": seen,
            "employment": [100, 115, 132, 152, 400, 400, 401, 400],
            "entry_rate": [0.3] * 4 + [0.02] * 4,
        }
    )
    out = trajectory_labels(frame)
    assert out["year"].tolist() == seen
    assert out["stage"].tolist() == ["emerging"] * 4 + ["mature"] * 4


def test_no_renewal_bridge_where_the_data_cannot_show_renewal() -> None:
    # Employment alone: three flat years, then growth. The life cycle allows mature -> growth only
    # through renewal, but without entry, productivity or patents nothing could show one.
    emp = [1000.0, 1000.0, 1001.0, 1000.0, 1060.0, 1124.0, 1191.0, 1262.0]
    frame = pd.DataFrame(
        {"region": "r", "cluster": "x", "year": range(2000, 2008), "employment": emp}
    )
    out = trajectory_labels(frame)
    assert "renewal" not in set(out["stage"])
    assert out["stage"].tolist()[-3:] == ["growth"] * 3
    # Where entry and productivity are known, renewal could show: the cycle bridges through it.
    signals = frame.assign(entry_rate=[0.05] * 4 + [0.15] * 4, productivity=100.0)
    assert trajectory_labels(signals)["stage"].tolist().count("renewal") == 1
    assert life_cycle_path(["mature", "growth"], stages=("growth", "mature", "decline")) == [
        "growth",
        "growth",
    ]


def test_rd_intensity_stands_in_for_patents_on_its_own_scale() -> None:
    # Flat employment, some entry, R&D rising 15 % a year from 1 % of output: renewal evidence.
    # On log(1 + rd) the rise would be 0.15 per cent a year, under any innovation threshold.
    years = range(2000, 2008)
    frame = pd.DataFrame(
        {
            "region": "r",
            "cluster": "x",
            "year": years,
            "employment": 1000.0,
            "entry_rate": 0.08,
            "rd_intensity": [0.01 * 1.15**i for i in range(len(years))],
        }
    )
    out = trajectory_labels(frame)
    assert set(out["stage"]) == {"renewal"}
    flat = trajectory_labels(frame.assign(rd_intensity=0.01))
    assert set(flat["stage"]) == {"mature"}


def test_trajectory_thresholds_and_bad_input() -> None:
    world = textbook_world()
    lenient = trajectory_labels(world, growth_entry_min=0.5)  # growth now needs a lot of entry
    assert set(lenient.loc[lenient["cluster"] == "growth", "stage"]) == {"mature"}
    with pytest.raises(ValueError, match="odd"):
        trajectory_labels(world, window=2)
    with pytest.raises(ValueError, match="decline_max"):
        trajectory_labels(world, decline_max=0.1)
    with pytest.raises(InputError, match="employment"):
        trajectory_labels(world.drop(columns="employment"))
    with pytest.raises(InputError, match="one row per") as err:
        trajectory_labels(pd.concat([world, world.iloc[:1]]))
    assert err.value.row == len(world) + 1


def test_quadrant_shrinking_is_measured_from_growth_split() -> None:
    # -0.015 is within 0.02 of zero but 0.025 below a growth_split of 0.01
    feats = _rows(("r", "a", 2020, 1.5, -0.015))
    out = quadrant_labels(feats, growth_split=0.01, decline_threshold=0.02)
    assert out["stage"].tolist() == ["decline"]


def test_agreement_keeps_the_first_of_duplicate_truth_rows() -> None:
    truth = pd.DataFrame(
        {"region": "r", "cluster": "a", "year": 2020, "stage": ["growth", "decline"]}
    )
    got = agreement(_labels(["growth"], ["a"]), truth)
    assert got["n"] == 1 and got["accuracy"] == 1.0


def _flat_histories(productivity_growth: dict[str, float], years: int = 8) -> pd.DataFrame:
    """Flat employment and 8 % entry; productivity grows by the given factor a year."""
    rows = [
        {
            "region": "r",
            "cluster": cluster,
            "year": 2010 + i,
            "employment": 1000.0,
            "entry_rate": 0.08,
            "productivity": 100.0 * factor**i,
            "patents_per_10k": 1.0,
        }
        for cluster, factor in productivity_growth.items()
        for i in range(years)
    ]
    return pd.DataFrame(rows)


def test_upgrading_is_net_of_the_years_median_productivity_change() -> None:
    # productivity +5 %/yr everywhere is inflation, not upgrading
    out = trajectory_labels(_flat_histories({"a": 1.05, "b": 1.05, "c": 1.05}))
    assert set(out["stage"]) == {"mature"}
    out = trajectory_labels(_flat_histories({"a": 1.05, "b": 1.05, "c": 1.10}))
    stage = out.groupby("cluster")["stage"].agg(set).to_dict()
    assert stage == {"a": {"mature"}, "b": {"mature"}, "c": {"renewal"}}


def test_renewal_rule_comes_before_decline() -> None:
    # shrinking 8 %/yr, but patents +30 %/yr and 8 % entry: the renewal rule is checked first
    years = range(6)
    frame = pd.DataFrame(
        {
            "region": "r",
            "cluster": "a",
            "year": [2010 + i for i in years],
            "employment": [1000 * 0.92**i for i in years],
            "entry_rate": 0.08,
            "productivity": 100.0,
            "patents_per_10k": [5 * 1.3**i for i in years],
        }
    )
    assert yearly_evidence(frame)["evidence"].tolist() == ["renewal"] * 6


def test_renewal_entry_minimum_is_inclusive() -> None:
    # entry exactly at renewal_entry_min (0.0625 is exact in binary) still counts
    frame = pd.DataFrame(
        {
            "region": "r",
            "cluster": ["a"] * 3 + ["b"] * 3,
            "year": [2010, 2011, 2012] * 2,
            "employment": 1000.0,
            "entry_rate": [0.0625] * 3 + [0.0] * 3,
            "productivity": [100 * 1.1**i for i in range(3)] + [100.0] * 3,
        }
    )
    evidence = yearly_evidence(frame, renewal_entry_min=0.0625)["evidence"].tolist()
    assert evidence[:3] == ["renewal"] * 3


def test_a_failed_take_off_goes_from_emerging_to_decline() -> None:
    evidence = ["emerging"] * 3 + ["decline"] * 3
    assert life_cycle_path(evidence) == evidence


def test_no_renewal_without_entry_rates_even_with_productivity() -> None:
    # six flat years then growth; productivity is known but entry_rate is not
    emp = [1000.0] * 6 + [1000 * 1.1**i for i in range(1, 7)]
    frame = pd.DataFrame(
        {
            "region": "r",
            "cluster": "a",
            "year": range(2010, 2022),
            "employment": emp,
            "productivity": 100.0,
        }
    )
    out = trajectory_labels(frame)
    assert "renewal" not in set(out["stage"])
