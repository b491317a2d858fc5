import numpy as np
import pandas as pd
import pytest

from features.indicators import specialisation


def panel() -> pd.DataFrame:
    # 2 regions x 2 clusters x 2010..2013; employment chosen so totals are easy to follow.
    rows = []
    emp = {
        ("A", "x"): [10, 12, 12, 15],
        ("A", "y"): [30, 30, 33, 30],
        ("B", "x"): [20, 24, 30, 30],
        ("B", "y"): [40, 50, 50, 60],
    }
    for (region, cluster), values in emp.items():
        for year, e in zip(range(2010, 2014), values, strict=True):
            rows.append((region, cluster, year, float(e), 1))
    return pd.DataFrame(rows, columns=["region", "cluster", "year", "employment", "establishments"])


def at(frame: pd.DataFrame, out: pd.DataFrame, region: str, cluster: str, year: int, col: str):
    mask = (frame["region"] == region) & (frame["cluster"] == cluster) & (frame["year"] == year)
    return out.loc[mask.to_numpy(), col].item()


def test_lq_and_national_share_from_the_frame_itself():
    p = panel()
    out = specialisation(p)
    # 2010: E_A = 40, E_B = 60, E_N = 100, e_Nx = 30, e_Ny = 70
    assert at(p, out, "A", "x", 2010, "lq") == pytest.approx((10 / 40) / (30 / 100))
    assert at(p, out, "B", "y", 2010, "lq") == pytest.approx((40 / 60) / (70 / 100))
    assert at(p, out, "A", "x", 2010, "national_share") == pytest.approx(10 / 30)
    # 2011: E_A = 42, E_B = 74, E_N = 116, e_Nx = 36
    assert at(p, out, "A", "x", 2011, "lq") == pytest.approx((12 / 42) / (36 / 116))


def test_lq_changes_are_differences_to_calendar_years_t1_and_t3():
    p = panel()
    out = specialisation(p)
    lq = {y: at(p, out, "B", "x", y, "lq") for y in range(2010, 2014)}
    assert at(p, out, "B", "x", 2011, "lq_change_1y") == pytest.approx(lq[2011] - lq[2010])
    assert at(p, out, "B", "x", 2013, "lq_change_3y") == pytest.approx(lq[2013] - lq[2010])
    assert np.isnan(at(p, out, "B", "x", 2010, "lq_change_1y"))
    assert np.isnan(at(p, out, "B", "x", 2012, "lq_change_3y"))


def test_region_total_column_replaces_the_sum_of_clusters():
    p = panel().assign(region_employment_total=lambda f: np.where(f["region"] == "A", 100, 200))
    out = specialisation(p)
    # E_A = 100, E_N = 300, e_Nx(2010) = 30: LQ = (10/100) / (30/300) = 1
    assert at(p, out, "A", "x", 2010, "lq") == pytest.approx(1.0)
    assert at(p, out, "B", "y", 2010, "lq") == pytest.approx((40 / 200) / (70 / 300))


def test_national_reference_frame_and_its_total():
    p = panel()
    national = pd.DataFrame(
        {
            "cluster": ["x", "y", "Insgesamt"],
            "year": [2010, 2010, 2010],
            "employment": [60.0, 140.0, 1000.0],
        }
    )
    out = specialisation(p, national=national)
    assert at(p, out, "A", "x", 2010, "national_share") == pytest.approx(10 / 60)
    assert at(p, out, "A", "x", 2010, "lq") == pytest.approx((10 / 40) / (60 / 1000))
    # 2011 is not in the reference: back to the sums over the frame
    assert at(p, out, "A", "x", 2011, "lq") == pytest.approx((12 / 42) / (36 / 116))


def test_national_reference_from_loader_attrs_mapping():
    p = panel()
    p.attrs["national_totals"] = {
        "cluster": ["x", "y"],
        "year": [2010, 2010],
        "employment": [60.0, 140.0],
        "national_employment_total": [1000.0, 1000.0],
    }
    out = specialisation(p)
    assert at(p, out, "A", "x", 2010, "lq") == pytest.approx((10 / 40) / (60 / 1000))


def test_published_lq_is_kept():
    p = panel().assign(lq=2.5)
    out = specialisation(p)
    assert (out["lq"] == 2.5).all()
    assert at(p, out, "A", "x", 2011, "lq_change_1y") == 0.0


def test_zero_and_missing_employment_give_nan_not_inf():
    p = panel()
    p.loc[(p["cluster"] == "x") & (p["year"] == 2010), "employment"] = 0.0
    p.loc[(p["region"] == "A") & (p["cluster"] == "y") & (p["year"] == 2011), "employment"] = np.nan
    out = specialisation(p)
    assert np.isfinite(out.to_numpy()[~np.isnan(out.to_numpy())]).all()
    assert np.isnan(at(p, out, "A", "x", 2010, "national_share"))  # 0 / 0
    assert np.isnan(at(p, out, "A", "y", 2011, "lq"))


def test_lq_takes_e_nc_and_e_n_from_one_source():
    p = panel()
    # A reference for the clusters without the national total: its e_Nc would be divided by the
    # frame's E_N, so the LQ stays on the frame's own sums; national_share uses the reference.
    national = pd.DataFrame({"cluster": ["x"], "year": [2010], "employment": [600.0]})
    out = specialisation(p, national=national)
    assert at(p, out, "A", "x", 2010, "lq") == pytest.approx((10 / 40) / (30 / 100))
    assert at(p, out, "A", "x", 2010, "national_share") == pytest.approx(10 / 600)
    # A total without the cluster: y's LQ stays on the frame's sums too
    national = pd.DataFrame(
        {"cluster": ["x", "Insgesamt"], "year": [2010, 2010], "employment": [60.0, 1000.0]}
    )
    out = specialisation(p, national=national)
    assert at(p, out, "A", "x", 2010, "lq") == pytest.approx((10 / 40) / (60 / 1000))
    assert at(p, out, "A", "y", 2010, "lq") == pytest.approx((30 / 40) / (70 / 100))


def test_national_employment_total_column_wins_over_the_total_row():
    p = pd.DataFrame(
        {
            "region": ["A", "B"],
            "cluster": "x",
            "year": 2020,
            "employment": [50.0, 50.0],
            "region_employment_total": [1000.0, 1000.0],
        }
    )
    national = pd.DataFrame(
        {
            "cluster": ["x", "Insgesamt"],
            "year": 2020,
            "employment": [200.0, 10_000.0],
            "national_employment_total": [20_000.0, 20_000.0],
        }
    )
    out = specialisation(p, national=national)
    # E_N = 20000 from the column, not 10000 from the Insgesamt row
    assert out["lq"].tolist() == pytest.approx([(50 / 1000) / (200 / 20_000)] * 2)
