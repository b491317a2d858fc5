import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_NAMES, build_features
from features.errors import InputError


def panel() -> pd.DataFrame:
    rows = []
    for region, scale in (("B", 2.0), ("A", 1.0)):
        for cluster, base in (("x", 10.0), ("y", 30.0)):
            for i, year in enumerate(range(2010, 2015)):
                rows.append((region, cluster, year, scale * base * (1 + 0.1 * i), 2 + i))
    return pd.DataFrame(rows, columns=["region", "cluster", "year", "employment", "establishments"])


def test_columns_order_and_row_order():
    p = panel()
    out = build_features(p)
    assert list(out.columns) == [
        "region",
        "cluster",
        "year",
        *FEATURE_NAMES,
        "employment",
        "establishments",
        "n_missing_features",
    ]
    pd.testing.assert_frame_equal(
        out[["region", "cluster", "year"]], p[["region", "cluster", "year"]]
    )
    np.testing.assert_array_equal(out["employment"], p["employment"])
    assert all(out[name].dtype == "float64" for name in FEATURE_NAMES)


def test_n_missing_features_counts_missing_features_per_row():
    out = build_features(panel())
    expected = out[list(FEATURE_NAMES)].isna().sum(axis=1)
    np.testing.assert_array_equal(out["n_missing_features"], expected)
    first = out[out["year"] == 2010].iloc[0]
    last = out[out["year"] == 2014].iloc[0]
    # only employment and establishments are given: lq, national_share, avg_firm_size and
    # relatedness_density, and with five years of history every lag but the 5-year CAGRs
    assert last["n_missing_features"] == len(FEATURE_NAMES) - 15
    assert first["n_missing_features"] == len(FEATURE_NAMES) - 4
    assert out["n_missing_features"].dtype == "int64"


def test_a_missing_input_column_is_a_missing_feature_not_a_crash():
    p = panel().assign(patents=5.0)
    with_patents = build_features(p)
    without = build_features(p.drop(columns="patents"))
    assert with_patents["patents_per_10k"].notna().all()
    assert without["patents_per_10k"].isna().all()
    assert without["patents_per_10k_change_3y"].isna().all()
    lost = 1 + with_patents["patents_per_10k_change_3y"].notna().astype(int)
    np.testing.assert_array_equal(
        without["n_missing_features"], with_patents["n_missing_features"] + lost
    )


def test_zeros_never_give_inf():
    p = panel().assign(output=0.0, exports=1.0, payroll=0.0, institutions=1.0)
    p["employment"] = 0.0
    p["establishments"] = 0
    out = build_features(p)
    values = out[list(FEATURE_NAMES)].to_numpy()
    assert not np.isinf(values).any()
    assert np.isnan(out["export_intensity"]).all()


def test_published_lq_and_cmp_columns_are_kept():
    p = panel().assign(
        lq=0.7,
        traded=True,
        region_code="06",
        cluster_code="3",
        published_strong=pd.array([True, False] * 10, dtype="boolean"),
        suppressed=False,
    )
    out = build_features(p)
    assert (out["lq"] == 0.7).all()
    for col in ("traded", "region_code", "cluster_code", "published_strong", "suppressed"):
        assert col in out.columns
    assert out["published_strong"].dtype == "boolean"
    assert out.columns[-1] == "n_missing_features"


def test_keys_are_validated():
    with pytest.raises(InputError, match="column 'year'"):
        build_features(panel().drop(columns="year"))
    dup = pd.concat([panel(), panel().iloc[[3]]], ignore_index=True)
    with pytest.raises(InputError, match="row 21: one row per region x cluster x year"):
        build_features(dup)
    bad = panel()
    bad["employment"] = bad["employment"].astype(object)
    bad.loc[2, "employment"] = "many"
    with pytest.raises(InputError, match="column 'employment'"):
        build_features(bad)


def test_national_attrs_do_not_leak_into_the_output():
    p = panel()
    p.attrs["national_totals"] = {"cluster": ["x"], "year": [2010], "employment": [100.0]}
    out = build_features(p)
    assert out.attrs == {}
    assert out.loc[0, "national_share"] == pytest.approx(20 / 100)  # B,x 2010 / national x


def test_n_missing_features_counts_a_missing_lq():
    p = panel()
    p.loc[0, "employment"] = np.nan
    out = build_features(p)
    assert FEATURE_NAMES[0] == "lq" and np.isnan(out.loc[0, "lq"])
    assert out.loc[0, "n_missing_features"] == out.loc[0, list(FEATURE_NAMES)].isna().sum()
