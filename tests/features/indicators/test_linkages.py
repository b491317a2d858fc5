import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from features.indicators import linkages, relatedness_density, relatedness_matrix

# Which region is specialised (LQ >= 1) in which cluster:
#   R1: a, b    R2: a, c    R3: b
SPECIALISED = {("R1", "a"), ("R1", "b"), ("R2", "a"), ("R2", "c"), ("R3", "b")}


def panel(year: int = 2020) -> pd.DataFrame:
    rows = [
        (r, c, year, 10.0, 2, 1.5 if (r, c) in SPECIALISED else 0.5)
        for r in ("R1", "R2", "R3")
        for c in ("a", "b", "c")
    ]
    return pd.DataFrame(
        rows, columns=["region", "cluster", "year", "employment", "establishments", "lq"]
    )


def rd(frame: pd.DataFrame, values: np.ndarray, region: str, cluster: str) -> float:
    mask = (frame["region"] == region) & (frame["cluster"] == cluster)
    return float(values[mask.to_numpy()][0])


def test_colocation_proximity_by_hand():
    # ubiquity a = 2, b = 2, c = 1; co-occurrence ab = 1 (R1), ac = 1 (R2), bc = 0
    # phi_ab = 1/2, phi_ac = 1/max(2, 1) = 1/2, phi_bc = 0
    p = panel()
    out = relatedness_density(p)
    assert rd(p, out, "R1", "a") == pytest.approx(50.0)  # (0.5 * 1 + 0.5 * 0) / 1
    assert rd(p, out, "R2", "b") == pytest.approx(100.0)  # (0.5 * 1 + 0 * 1) / 0.5
    assert rd(p, out, "R3", "c") == pytest.approx(0.0)  # (0.5 * 0 + 0 * 1) / 0.5
    assert rd(p, out, "R3", "a") == pytest.approx(50.0)  # (0.5 * 1 + 0.5 * 0) / 1


def test_proximity_is_computed_per_year():
    both = pd.concat([panel(2020), panel(2021)], ignore_index=True)
    # in 2021 R3 is also specialised in c: phi_bc = 1/2 and phi_ac = 1/2
    both.loc[(both["year"] == 2021) & (both["region"] == "R3") & (both["cluster"] == "c"), "lq"] = 2
    out = relatedness_density(both)
    y20 = both["year"].eq(2020).to_numpy()
    np.testing.assert_allclose(out[y20], relatedness_density(panel(2020)))
    y21 = both[~y20].reset_index(drop=True)
    # R1,c in 2021: ubiquity a = 2, b = 2, c = 2; phi_ca = 1/2, phi_cb = 1/2; x_a = x_b = 1
    assert rd(y21, out[~y20], "R1", "c") == pytest.approx(100.0)


def test_unknown_lq_leaves_the_sums_and_absent_rows_count_as_zero():
    p = panel()
    p.loc[(p["region"] == "R1") & (p["cluster"] == "c"), "lq"] = np.nan
    out = relatedness_density(p)
    # R1,a: only b is known among a's relatives: 0.5 * 1 / 0.5
    assert rd(p, out, "R1", "a") == pytest.approx(100.0)
    dropped = panel()
    dropped = dropped[~((dropped["region"] == "R1") & (dropped["cluster"] == "c"))]
    out = relatedness_density(dropped)
    assert rd(dropped, out, "R1", "a") == pytest.approx(50.0)


def test_relatedness_table_is_used_when_given():
    p = panel()
    table = pd.DataFrame(
        [[0.0, 0.5, 0.25], [0.5, 0.0, 0.0], [0.25, 0.0, 0.0]],
        index=["a", "b", "c"],
        columns=["a", "b", "c"],
    )
    out = relatedness_density(p, relatedness=table)
    assert rd(p, out, "R1", "a") == pytest.approx(100 * 0.5 / 0.75)
    assert rd(p, out, "R2", "a") == pytest.approx(100 * 0.25 / 0.75)
    assert rd(p, out, "R1", "b") == pytest.approx(100.0)  # b relates only to a
    # a cluster missing from the table gets no value
    out = relatedness_density(p, relatedness=table.drop(index="c", columns="c"))
    assert np.isnan(rd(p, out, "R1", "c"))
    assert rd(p, out, "R1", "a") == pytest.approx(100.0)


def test_single_cluster_or_no_related_cluster_is_missing():
    p = panel()
    one = p[p["cluster"] == "a"]
    assert np.isnan(relatedness_density(one)).all()
    zero = pd.DataFrame(0.0, index=["a", "b", "c"], columns=["a", "b", "c"])
    assert np.isnan(relatedness_density(p, relatedness=zero)).all()


def test_lq_is_computed_when_not_given():
    # R1 holds all of cluster a and none of b: LQ_R1,a = 2, LQ_R2,b = 2, others 0
    p = pd.DataFrame(
        {
            "region": ["R1", "R1", "R2", "R2"],
            "cluster": ["a", "b", "a", "b"],
            "year": [2020] * 4,
            "employment": [10.0, 0.0, 0.0, 10.0],
            "establishments": [1, 0, 0, 1],
        }
    )
    # never co-located: proximity 0, density undefined
    assert np.isnan(relatedness_density(p)).all()


def test_institutions_per_100_establishments():
    p = panel().assign(institutions=3.0)
    p.loc[0, "establishments"] = 0
    out = linkages(p)
    assert out.loc[1, "institutions_per_100_est"] == pytest.approx(150.0)
    assert np.isnan(out.loc[0, "institutions_per_100_est"])
    assert linkages(panel())["institutions_per_100_est"].isna().all()


def test_relatedness_matrix_mirrors_clips_and_zeroes_the_diagonal():
    pairs = pd.DataFrame(
        [
            {"cluster_name": "a", "cluster_name_2": "a", "cr_lc": "0.9", "rel_all_90_v3": "0"},
            {"cluster_name": "a", "cluster_name_2": "b", "cr_lc": "0.4", "rel_all_90_v3": "1"},
            {"cluster_name": "b", "cluster_name_2": "c", "cr_lc": "-0.02", "rel_all_90_v3": "0"},
        ]
    )
    m = relatedness_matrix(pairs)
    assert list(m.index) == ["a", "b", "c"] and list(m.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(m.to_numpy(), [[0, 0.4, 0], [0.4, 0, 0], [0, 0, 0]])
    m = relatedness_matrix(pairs, "rel_all_90_v3")
    assert m.loc["b", "a"] == 1.0


def test_relatedness_matrix_bad_records():
    pairs = pd.DataFrame([{"cluster_name": "a", "cluster_name_2": "b"}])
    with pytest.raises(InputError, match="column 'cr_lc'"):
        relatedness_matrix(pairs)
    pairs = pd.DataFrame([{"cluster_name": "a", "cluster_name_2": "b", "cr_lc": "high"}])
    with pytest.raises(InputError, match="column 'cr_lc', row 1: expected a number"):
        relatedness_matrix(pairs)
    with pytest.raises(InputError, match="unknown relatedness measure"):
        relatedness_matrix(pairs, "cr_magic")
    with pytest.raises(InputError) as info:
        relatedness_matrix(pairs, source="rel.json")
    assert str(info.value) == "rel.json, column 'cr_lc', row 1: expected a number, found 'high'"


def test_relatedness_matrix_keeps_the_larger_weight_of_a_pair_given_both_ways():
    pairs = pd.DataFrame(
        [
            {"cluster_name": "a", "cluster_name_2": "b", "cr_lc": 0.2},
            {"cluster_name": "b", "cluster_name_2": "a", "cr_lc": 0.6},
        ]
    )
    m = relatedness_matrix(pairs)
    assert m.loc["a", "b"] == 0.6 and m.loc["b", "a"] == 0.6
