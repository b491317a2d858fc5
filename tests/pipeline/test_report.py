"""The per-region HTML report: contents, escaping, charts, the command and its files.

Every input is built here: a small region of clusters with explanations, levers and (through the
real recommender) recommendations and a portfolio, plus training metrics and an MLflow record.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.errors import InputError
from features.stages import STAGES
from pipeline import paths
from pipeline.cli import app
from pipeline.io import write_table
from pipeline.params import Params, ScoreParams
from pipeline.recommend import recommend
from pipeline.report import (
    default_output,
    file_name,
    render_report,
    report_command,
    write_report,
)
from pipeline.report_charts import bubble_chart, log_ticks, nice_ticks, waterfall
from pipeline.report_inputs import ReportInputs, load_inputs
from policy.knowledge_base import load_knowledge_base
from tests.policy.helpers import drivers_json

ROOT = Path(__file__).resolve().parents[2]
REGION = "Wenzhou-like"
EVIL = '<script>alert(1)</script> & "Co"'

# cluster: stage, p(stage), employment, lq, growth vs national, sme_share, drivers
# (feature, value, percentile, contribution); the margin adds a remainder for the other features.
CLUSTERS: dict[str, tuple] = {
    "footwear": ("decline", 0.58, 42_000, 3.1, -0.035, 0.86, [
        ("exit_rate", 0.14, 93.0, 0.92), ("rd_intensity", 0.004, 12.0, 0.41),
        ("productivity", 31_000.0, 22.0, -0.18)]),
    "eyeglasses": ("mature", 0.81, 18_000, 4.5, 0.002, 0.74, [
        ("hhi", 0.21, 88.0, 0.66), ("relative_wage", 0.82, 25.0, 0.31),
        ("entry_rate", 0.04, 30.0, 0.12)]),
    "lighters": ("decline", 0.72, 6_000, 6.0, -0.06, 0.91, [
        ("emp_cagr_3y", -0.07, 4.0, 1.10), ("lq_change_3y", -0.9, 6.0, 0.52)]),
    "low-voltage electrics": ("growth", 0.77, 35_000, 2.2, 0.04, 0.55, [
        ("growth_vs_national_3y", 0.04, 91.0, 0.84), ("net_entry_rate", 0.05, 80.0, 0.33),
        ("cr4", 0.35, 70.0, -0.21)]),
    "pumps and valves": ("mature", 0.48, 15_000, 1.8, -0.005, 0.66, [
        ("avg_firm_size", 48.0, 75.0, 0.38), ("emp_cagr_3y", 0.0, 45.0, 0.20),
        ("exit_rate", 0.06, 60.0, -0.15)]),
    "auto parts": ("growth", 0.69, 22_000, 1.3, 0.03, 0.62, [
        ("emp_cagr_3y", 0.05, 85.0, 0.71), ("export_intensity", 0.45, 78.0, 0.22)]),
    "drones": ("emerging", 0.74, 900, 0.4, 0.12, 0.95, [
        ("entry_rate", 0.31, 96.0, 1.05), ("lq", 0.4, 10.0, 0.48),
        ("median_firm_age", 3.0, 5.0, 0.30)]),
    "apparel": ("renewal", 0.63, 26_000, 1.6, -0.01, 0.81, [
        ("productivity", 61_000.0, 84.0, 0.77), ("patents_per_10k", 4.2, 80.0, 0.35),
        ("emp_cagr_3y", -0.02, 30.0, 0.18)]),
}  # fmt: skip
YEARS = (2023, 2024)
BASE = -0.35


def _probabilities(stage: str, top: float) -> dict[str, float]:
    rest = (1 - top) / 4
    return {f"p_{s}": (top if s == stage else rest) for s in STAGES}


def make_frames(
    region: str = REGION, rename: dict[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """features, explanations and levers of ``region`` (clusters renamed by ``rename``)."""
    rename = rename or {}
    feature_rows, explain_rows = [], []
    for cluster, (stage, p, emp, lq, growth, sme, drivers) in CLUSTERS.items():
        name = rename.get(cluster, cluster)
        for year in YEARS:
            latest = year == YEARS[-1]
            values = {
                "employment": emp * (1.0 if latest else 1 - growth),
                "lq": lq,
                "growth_vs_national_3y": growth,
                "emp_cagr_3y": growth + 0.01,
                "sme_share": sme,
                "entry_rate": 0.08,
                "exit_rate": 0.07,
                "net_entry_rate": 0.01,
                "productivity": 40_000.0,
                "relative_wage": 0.9,
                "export_intensity": 0.4,
                "patents_per_10k": 1.5,
                "rd_intensity": 0.01,
                "institutions_per_100_est": 1.2,
                "hhi": 0.08,
                "cr4": 0.25,
            }
            feature_rows.append({"region": region, "cluster": name, "year": year, **values})
            contributions = sum(c for *_, c in drivers)
            explain_rows.append(
                {
                    "region": region,
                    "cluster": name,
                    "year": year,
                    "latest": latest,
                    "stage": stage if latest else "mature",
                    **_probabilities(stage if latest else "mature", p),
                    "margin": BASE + contributions + 0.25,
                    "base": BASE,
                    "drivers": drivers_json(*drivers),
                }
            )
    # Another region in the features only: a page is about one region.
    feature_rows.append(
        {"region": "Other", "cluster": "footwear", "year": 2024, "employment": 5.0, "lq": 0.2}
    )
    features = pd.DataFrame(feature_rows)
    explanations = pd.DataFrame(explain_rows)
    n = rename.get
    levers = pd.DataFrame(
        [
            (n("footwear", "footwear"), "decline", "renewal", True,
             [{"feature": "patents_per_10k", "from": 0.5, "to": 2.0, "to_percentile": 70.0,
               "change_iqr": 0.8}], "renewal", 0.21, 0.52, "raise patents_per_10k"),
            (n("drones", "drones"), "emerging", "growth", True,
             [{"feature": "sme_share", "from": 0.95, "to": 0.7, "to_percentile": 40.0,
               "change_iqr": 0.5},
              {"feature": "export_intensity", "from": 0.1, "to": 0.3, "to_percentile": 55.0,
               "change_iqr": 0.6}], "growth", 0.12, 0.47, "two changes"),
            (n("lighters", "lighters"), "decline", "renewal", False, [], None, 0.05, None,
             "no move of one or two of rd_intensity, patents_per_10k within P5-P95 of "
             "comparative clusters (in their good direction) makes the model predict renewal"),
            (n("eyeglasses", "eyeglasses"), "mature", None, False, [], None, None, None,
             "mature with decline not looming (p_decline 0.05)"),
            (n("low-voltage electrics", "low-voltage electrics"), "growth", None, False, [], None,
             None, None, "growth is already a desirable stage"),
        ],
        columns=["cluster", "stage", "target_stage", "reachable", "changes", "predicted_after",
                 "p_target_before", "p_target_after", "reason"],
    )  # fmt: skip
    levers.insert(0, "region", region)
    levers.insert(2, "year", YEARS[-1])
    levers["changes"] = levers["changes"].map(json.dumps)
    return features, explanations, levers


def make_metrics(region: str = REGION) -> dict[str, object]:
    def scores(f1: float, bacc: float, adj: float, ece: float, ll: float) -> dict[str, object]:
        return {
            "macro_f1": f1,
            "balanced_accuracy": bacc,
            "accuracy": bacc,
            "adjacent_accuracy": adj,
            "log_loss": ll,
            "ece": ece,
            "ece_region_mean": ece + 0.02,
            "n": 4200,
        }

    return {
        "model": scores(0.712, 0.705, 0.931, 0.041, 0.802),
        "baselines": {
            "logistic_regression": scores(0.604, 0.611, 0.902, 0.062, 0.981),
            "random_forest": scores(0.688, 0.681, 0.925, 0.035, 0.845),
            "quadrant": scores(0.391, 0.402, 0.801, 0.301, 3.912),
            "majority": scores(0.081, 0.200, 0.512, 0.410, 1.609),
        },
        "lead": {
            "random_forest": {
                "macro_f1": 0.024,
                "ci_low": -0.0104,
                "ci_high": 0.0561,
                "level": 0.95,
                "regions_won": 9,
                "regions_lost": 5,
                "regions": 14,
            },
            "quadrant": {
                "macro_f1": 0.321,
                "ci_low": 0.2503,
                "ci_high": 0.3897,
                "level": 0.95,
                "regions_won": 14,
                "regions_lost": 0,
                "regions": 14,
            },
        },
        "calibration": {"ece_raw": 0.052, "ece_scaled": 0.041, "temperature": 1.31, "applied": 1},
        "transfer": {"region": region, **scores(0.655, 0.640, 0.920, 0.071, 0.903), "n": 48},
    }


def make_inputs(
    region: str = REGION, rename: dict[str, str] | None = None, synthetic: bool = True
) -> ReportInputs:
    features, explanations, levers = make_frames(region, rename)
    # The report renders any region, not only params.yaml's (whose name must suit dvc.yaml).
    params = Params(score=ScoreParams.model_construct(region=region))
    records, summary = recommend(params, explanations, levers, features, load_knowledge_base())
    return ReportInputs(
        region=region,
        features=features,
        explanations=explanations,
        levers=levers,
        recommendations=records,
        portfolio=summary["regions"][region],
        metrics=make_metrics(region),
        per_region=pd.DataFrame(
            {
                "region": ["Italian-district-1", "FDI-hub-2", "Old-industrial-3"],
                "n": [700, 650, 720],
                "macro_f1": [0.74, 0.66, 0.69],
                "accuracy": [0.77, 0.70, 0.72],
                "adjacent_accuracy": [0.95, 0.91, 0.93],
                "ece": [0.051, 0.034, 0.047],
            }
        ),
        mlflow_run={
            "run_id": "3f2a9c0d1b7e4a55",
            "experiment_id": "1",
            "registered_version": "4",
            "champion_moved": True,
            "champion_reason": "cv macro-F1 0.712 >= gate 0.5",
        },
        model_meta={
            "features": ["lq", "emp_cagr_3y", "entry_rate"],
            "training_regions": ["Italian-district-1", "FDI-hub-2", "Old-industrial-3"],
        },
        synthetic=synthetic,
        synthetic_sources=("params.yaml data.synthetic",) if synthetic else (),
        max_aspect_share=0.4,
        generated="2025-01-01 00:00 UTC",
    )


def _text(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded, whitespace collapsed."""
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


# --- the page ----------------------------------------------------------------------------------


def test_page_shows_every_part() -> None:
    inputs = make_inputs()
    page = render_report(inputs)
    text = _text(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "Synthetic data." in text
    for section in ("summary", "map", "clusters", "portfolio", "model"):
        assert f'id="{section}"' in page
    # Stage summary: counts per predicted stage in the latest year.
    tiles = re.findall(r'class="tile-count">(\d+)<', page)
    assert tiles == ["1", "2", "2", "2", "1"]  # emerging, growth, mature, decline, renewal
    assert "latest year 2024" in text
    # One card per cluster, ordered by stage then employment.
    cards = re.findall(r'<span class="card-title">([^<]+)</span>', page)
    assert cards == [
        "drones", "low-voltage electrics", "auto parts", "eyeglasses", "pumps and valves",
        "footwear", "lighters", "apparel",
    ]  # fmt: skip
    # Recommendations with their reasons and KPI baselines, from the real recommender.
    footwear = next(r for r in inputs.recommendations if r["cluster"] == "footwear")
    first = footwear["recommendations"][0]
    assert html.escape(first["title"]) in page
    assert first["because"] in text
    # Levers: the change and the re-predicted stage, or the note why there is none.
    assert "raise patents_per_10k from 0.5 to 2" in text
    assert "The model then predicts renewal" in text
    assert "No lever within bounds reaches renewal: no move of one or two of" in text
    assert "No lever needed: growth is already a desirable stage." in text
    # Portfolio: four guards with their state, counts per aspect.
    for title in ("Governance in vain", "Unbalanced support", "Big enterprises only",
                  "Strong over weak"):  # fmt: skip
        assert title in text
    assert re.search(r"(passed|repaired|failing) Governance in vain", text)
    # Model card: metrics of the model beside the baselines, transfer, the MLflow run.
    assert "0.712" in text and "0.604" in text and "logistic regression" in text
    assert "transfer to Wenzhou-like" in text and "0.655" in text
    assert "3f2a9c0d1b7e4a55" in text and "Registered version 4" in text
    assert "Training regions 3: Italian-district-1, FDI-hub-2, Old-industrial-3" in text
    assert "4,200 labelled cluster-years" in text
    assert "Calibration: temperature 1.31, applied; ECE 0.052 before scaling, 0.041 after." in text
    # The lead over each baseline with its region-bootstrap interval; bold only where it excludes 0.
    assert "random forest +0.024 -0.010 to +0.056 9 / 5 of 14" in text
    assert "quadrant +0.321 +0.250 to +0.390 14 / 0 of 14" in text
    assert "95 % interval" in text
    assert '<td class="num best">+0.321</td>' in page and '<td class="num">+0.024</td>' in page


def test_page_is_self_contained_and_script_free() -> None:
    page = render_report(make_inputs())
    assert "<script" not in page.lower()
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # Nothing to fetch: no http(s) URL in any src/href, no external stylesheet or font.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert '<link rel="stylesheet"' not in page


def test_user_text_is_escaped_everywhere() -> None:
    evil_cluster = "<img src=x onerror=alert(2)>"
    inputs = make_inputs(region=EVIL, rename={"footwear": evil_cluster, "drones": 'A&B "q"'})
    page = render_report(inputs)
    assert EVIL not in page
    assert evil_cluster not in page
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "A&B" not in page
    text = _text(page)
    assert EVIL in text  # shown, as text
    assert evil_cluster in text
    # The SVG tooltips carry the names escaped as well.
    assert "<title>&lt;img src=x onerror=alert(2)&gt;: decline" in page


def test_the_model_card_says_what_the_labels_are() -> None:
    inputs = make_inputs(synthetic=False)
    weak = _text(render_report(ReportInputs(**{**inputs.__dict__, "label_source": "quadrant"})))
    assert "Labels weak labels from the LQ x growth quadrant rule (no expert labels)" in weak
    expert = _text(render_report(ReportInputs(**{**inputs.__dict__, "label_source": "expert"})))
    assert "Labels expert labels (data.labels)" in expert and "weak labels" not in expert


def test_growth_vs_the_nation_is_named_so_and_shown_beside_own_growth() -> None:
    """A cluster can grow faster than its industry nationally while its employment shrinks."""
    inputs = make_inputs()
    features = inputs.features.copy()
    latest = (features["cluster"] == "eyeglasses") & (features["year"] == YEARS[-1])
    features.loc[latest, ["growth_vs_national_3y", "emp_cagr_3y"]] = [0.012, -0.019]
    page = render_report(ReportInputs(**{**inputs.__dict__, "features": features}))
    text = _text(page)
    assert "LQ Growth vs nation Employment growth Measures" in text
    assert "eyeglasses mature 81 % 18,000 4.50 +1.2 pp/yr -1.9 %/yr" in text  # the table
    assert "LQ 4.50 · growth vs nation +1.2 pp/yr · employment growth -1.9 %/yr" in text  # card
    chart = re.search(r'<svg class="chart bubbles".*?</svg>', page, flags=re.S).group(0)
    assert (
        "<title>eyeglasses: mature; LQ 4.50; growth vs nation +1.2 pp/yr; employment growth "
        "-1.9 %/yr; employment 18,000</title>"
    ) in chart
    y_ticks = re.findall(
        r'<text class="tick" x="[\d.]+" y="[\d.]+" text-anchor="end">([^<]+)<', chart
    )
    assert len(y_ticks) >= 3 and all(t.endswith(" pp") for t in y_ticks)
    assert "Growth vs. the industry nationally (pp per year, 3 years)" in chart
    quadrants = re.findall(r'<text class="quadrant"[^>]*>([^<]+)<', chart)
    assert quadrants == [
        "specialised, outgrowing the nation", "specialised, lagging the nation",
        "not specialised, outgrowing the nation", "not specialised, lagging the nation",
    ]  # fmt: skip


def test_a_latest_year_without_change_over_time_gets_no_stage_as_in_score() -> None:
    """explain stages a history's first year; score refuses it, and so does the page."""
    inputs = make_inputs()
    features = inputs.features.copy()
    first = (features["cluster"] == "drones") & (features["year"] == YEARS[-1])
    features.loc[first, ["growth_vs_national_3y", "emp_cagr_3y"]] = np.nan  # its only year
    page = render_report(ReportInputs(**{**inputs.__dict__, "features": features}))
    text = _text(page)
    cards = re.findall(r'<span class="card-title">([^<]+)</span>', page)
    assert "drones" not in cards and len(cards) == len(CLUSTERS) - 1
    assert re.findall(r'class="tile-count">(\d+)<', page) == ["0", "2", "2", "2", "1"]
    assert "Not staged: drones (2024). No change over time is known in that year" in text
    chart = re.search(r'<svg class="chart bubbles".*?</svg>', page, flags=re.S).group(0)
    assert "drones" not in chart and chart.count('<g class="bubble">') == len(CLUSTERS) - 1
    everything = features.assign(growth_vs_national_3y=np.nan, emp_cagr_3y=np.nan)
    with pytest.raises(InputError, match="no cluster of region 'Wenzhou-like' has a change"):
        render_report(ReportInputs(**{**inputs.__dict__, "features": everything}))


def _per_region_frame(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": names,
            "n": [10 * (i + 1) for i in range(len(names))],
            "macro_f1": 0.5,
            "accuracy": 0.55,
            "adjacent_accuracy": 0.9,
            "ece": 0.04,
        }
    )


def test_per_region_csv_is_read_without_the_writers_formula_quote(project: Path) -> None:
    from pipeline.params import load_params

    names = ["-North", "=X", "'Quoted", "South"]
    write_table(_per_region_frame(names), paths.PER_REGION)
    assert "'-North" in paths.PER_REGION.read_text(encoding="utf-8")  # as a spreadsheet gets it
    inputs = load_inputs(load_params("params.yaml"))
    assert inputs.per_region["region"].tolist() == names  # type: ignore[index]
    text = _text(render_report(inputs))
    assert "-North 10 0.500" in text and "=X 20 0.500" in text and "'Quoted 30 0.500" in text
    assert "'-North" not in text and "'=X" not in text


def test_per_region_names_come_from_metrics_json_as_they_are(project: Path) -> None:
    from pipeline.params import load_params

    # "'=Y" is written to the CSV as it stands and would read back as "=Y"; metrics.json keeps it.
    names = ["-North", "=X", "'=Y"]
    frame = _per_region_frame(names)
    write_table(frame, paths.PER_REGION)
    metrics = json.loads(paths.METRICS.read_text(encoding="utf-8"))
    metrics["model"]["per_region"] = {r.pop("region"): r for r in frame.to_dict("records")}
    paths.METRICS.write_text(json.dumps(metrics), encoding="utf-8")
    text = _text(render_report(load_inputs(load_params("params.yaml"))))
    assert "-North 10 0.500" in text and "=X 20 0.500" in text and "'=Y 30 0.500" in text
    assert "'-North" not in text and "'=X" not in text


def test_real_data_banner_and_notes() -> None:
    inputs = make_inputs(synthetic=False)
    text = _text(render_report(inputs))
    assert "Real data." in text and "Synthetic data." not in text
    noted = ReportInputs(**{**inputs.__dict__, "notes": ("computed on request",)})
    assert "computed on request" in _text(render_report(noted))


def test_optional_parts_missing_are_said_not_crashed() -> None:
    features, explanations, _ = make_frames()
    page = render_report(ReportInputs(REGION, features, explanations.drop(columns=["base"])))
    text = _text(page)
    assert "No portfolio for this region" in text
    assert "No evaluation found" in text
    assert "No MLflow run recorded" in text
    assert "No lever computed for this cluster." in text
    assert 'class="chart waterfall"' not in page  # no base value: the drivers as a list instead
    assert "exit_rate towards decline" in text


def test_portfolio_guards_long_change_lists_fold_and_states_are_told_apart() -> None:
    features, explanations, _ = make_frames()
    portfolio = {
        "clusters": 8,
        "recommendations": 48,
        "count_by_aspect": {"investment_guidance": 30, "public_service": 18},
        "guards": {
            "governance_in_vain": {
                "passed": False,
                "changes": [f"change {i}" for i in range(7)],
                "notes": [],
                "holds_after": True,
            },
            "unbalanced_support": {
                "passed": False,
                "changes": ["swapped one"],
                "notes": ["no market_supervision instrument fits"],
                "holds_after": False,
            },
            "strong_over_weak": {"passed": True, "changes": [], "notes": [], "holds_after": True},
        },
    }
    inputs = ReportInputs(
        REGION,
        features,
        explanations,
        portfolio=portfolio,
        metrics={**make_metrics(), "calibration": {"applied": False}},
        max_aspect_share=0.4,
    )
    page = render_report(inputs)
    text = _text(page)
    assert "repaired Governance in vain" in text
    assert "failing Unbalanced support" in text and "no market_supervision instrument" in text
    assert "passed Strong over weak" in text and "nothing changed" in text
    assert "change 3" in text and "3 more changes" in text and "change 6" in text
    assert "<title>Investment guidance: 30 (62 %)</title>" in page  # count and share
    assert "limit 40 %" in page
    assert "Calibration: none" in text


def test_bad_stage_is_an_input_error() -> None:
    features, explanations, _ = make_frames()
    explanations.loc[explanations["year"] == 2024, "stage"] = "booming"
    with pytest.raises(InputError, match="expected a stage of emerging"):
        render_report(ReportInputs(REGION, features, explanations))


# --- the charts --------------------------------------------------------------------------------


def test_bubble_area_is_proportional_to_employment_and_lq_one_is_drawn() -> None:
    points = pd.DataFrame(
        {
            "cluster": ["a", "b", "c", "d"],
            "anchor": ["cluster-1", "cluster-2", "cluster-3", "cluster-4"],
            "stage": ["growth", "mature", "decline", "emerging"],
            "lq": [2.0, 0.5, 4.0, np.nan],
            "growth": [0.05, -0.02, -0.04, 0.1],
            "employment": [40_000.0, 10_000.0, 2_500.0, 100.0],
        }
    )
    chart = bubble_chart(points, "growth_vs_national_3y")
    r = {b.cluster: b.r for b in chart.bubbles}
    assert set(r) == {"a", "b", "c"}
    assert chart.left_out == ["d (no location quotient)"]
    assert (r["a"] / r["b"]) ** 2 == pytest.approx(4.0, rel=0.01)
    assert (r["a"] / r["c"]) ** 2 == pytest.approx(16.0, rel=0.01)
    x = {b.cluster: b.cx for b in chart.bubbles}
    y = {b.cluster: b.cy for b in chart.bubbles}
    # Log scale: LQ 1 lies halfway between 0.5 and 2; higher growth is higher up (smaller y).
    assert chart.lq_one == pytest.approx((x["a"] + x["b"]) / 2, abs=0.2)
    assert y["a"] < chart.growth_zero < y["b"]
    assert chart.bubbles[0].cluster == "a"  # largest drawn first, under the small ones


def test_the_size_key_is_drawn_to_the_bubbles_scale_inside_the_chart() -> None:
    points = pd.DataFrame(
        {
            "cluster": ["a", "b", "c"],
            "anchor": ["cluster-1", "cluster-2", "cluster-3"],
            "stage": ["growth", "mature", "decline"],
            "lq": [2.0, 0.5, 4.0],
            "growth": [0.05, -0.02, -0.04],
            "employment": [40_000.0, 20_000.0, 2_000.0],
        }
    )
    chart = bubble_chart(points, "growth_vs_national_3y")
    r = {b.cluster: b.r for b in chart.bubbles}
    assert {k.label: k.r for k in chart.size_key} == {"20,000": r["b"], "2,000": r["c"]}
    assert all(k.cy + k.r <= chart.height and k.cy - k.r > chart.bottom for k in chart.size_key)
    # On the page: in the bubbles' own SVG (one viewBox, one scale), not in an SVG of its own.
    page = render_report(make_inputs())
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    (bubbles,) = [svg for svg in svgs if 'class="chart bubbles"' in svg]
    assert sum("size-key" in svg for svg in svgs) == 1 and 'class="size-key"' in bubbles
    largest = float(
        re.search(r"employment 42,000</title>\s*<circle [^>]*r=\"([\d.]+)\"", bubbles)[1]
    )
    key = dict(
        (label, float(radius))
        for radius, label in re.findall(
            r'<circle class="key" [^>]*r="([\d.]+)"/>\s*<text class="key-label"[^>]*>([^<]+)<',
            bubbles,
        )
    )
    assert largest == 34.0 and set(key) == {"20,000", "2,000"}
    for label, radius in key.items():
        expected = largest * math.sqrt(float(label.replace(",", "")) / 42_000)
        assert radius == pytest.approx(expected, abs=0.05)


def test_waterfall_adds_up_from_base_to_margin() -> None:
    drivers = [
        {"feature": "exit_rate", "value": 0.14, "percentile": 93.0, "contribution": 0.9},
        {"feature": "productivity", "value": 3e4, "percentile": 20.0, "contribution": -0.3},
    ]
    w = waterfall(-0.5, 0.4, drivers, "decline", 0.6)
    assert w is not None
    kinds = [s.kind for s in w.steps]
    assert kinds == ["base", "up", "down", "rest", "total"]
    base, up, down, rest, total = w.steps
    assert base.end == base.x0 and up.x0 == base.end  # each bar starts where the last ended
    assert down.x1 == up.end and rest.x0 == down.end
    assert rest.end == total.x0  # the remainder (0.3) closes the gap to the margin
    assert rest.value_text == "+0.30"
    assert "P93" in up.detail and up.tooltip.endswith("towards decline")
    assert waterfall(None, 0.4, drivers, "decline", 0.6) is None


def test_ticks() -> None:
    assert nice_ticks(-0.07, 0.13) == pytest.approx([-0.05, 0.0, 0.05, 0.1])
    assert log_ticks(0.3, 7.0) == [0.5, 1.0, 2.0, 5.0]
    assert all(0.01 <= t <= 1e4 for t in log_ticks(0.01, 1e4))
    assert len(log_ticks(0.01, 1e4)) <= 9


def test_the_command_names_the_page_as_the_pipeline_stage_does() -> None:
    """Without -o, `clusterstage report` writes the file that dvc.yaml's report stage writes."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["report"]
    (out,) = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]]
    assert f'-o "{out}"' in stage["cmd"]
    for region in ("Wenzhou-like", "Emilia Romagna", "温州 鞋业", "-North", "=X", "A & B <Co>"):
        ScoreParams(region=region)  # a region dvc.yaml can take
        assert default_output(region) == Path(out.replace("${score.region}", region))
    # A region asked for with --region is not checked like score.region: it stays in reports/.
    assert file_name("../../etc") == ".._.._etc"
    assert file_name("a\\b\tc") == "a_b_c"
    assert default_output("../../etc").parent == paths.REPORTS


# --- files and the command ---------------------------------------------------------------------


def _write_project(root: Path, region: str = REGION) -> None:
    inputs = make_inputs(region)
    root.joinpath("params.yaml").write_text(
        yaml.safe_dump({"score": {"region": region}, "data": {"synthetic": False}}),
        encoding="utf-8",
    )
    write_table(inputs.features, paths.FEATURES, metadata={"clusterstage.synthetic": "true"})
    write_table(inputs.explanations, paths.EXPLANATIONS)
    write_table(inputs.levers, paths.LEVERS)
    paths.RECOMMENDATIONS.write_text(
        "".join(json.dumps(r) + "\n" for r in inputs.recommendations), encoding="utf-8"
    )
    paths.PORTFOLIO.write_text(
        json.dumps({"synthetic": True, "regions": {region: inputs.portfolio}}), encoding="utf-8"
    )
    paths.METRICS.write_text(json.dumps(inputs.metrics), encoding="utf-8")
    inputs.per_region.to_csv(paths.PER_REGION, index=False)
    paths.MLFLOW_RUN.write_text(json.dumps(inputs.mlflow_run), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _write_project(tmp_path)
    return tmp_path


def test_report_command_writes_the_region_page(project: Path) -> None:
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    page = Path("reports/Wenzhou-like.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in Path("reports").glob("*.html")) == ["Wenzhou-like.html"]
    assert "Synthetic data." in page and "generated 20" in page
    assert [p.name for p in Path("reports").glob(".*.tmp")] == []
    out = project / "elsewhere" / "page.html"
    result = CliRunner().invoke(app, ["report", "--region", REGION, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").count('class="card"') == len(CLUSTERS)


def test_unknown_region_is_one_line_exit_2_and_no_output(project: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--region", "Atlantis"])
    assert result.exit_code == 2
    assert "no rows for region 'Atlantis'" in result.output
    assert "Wenzhou-like" in result.output  # the regions there are
    assert not list(Path("reports").glob("*.html"))


@pytest.mark.parametrize(
    "out", ["params.yaml", str(paths.METRICS), str(paths.FEATURES), "reports/page.txt"]
)
def test_an_output_that_is_no_html_page_is_refused_and_nothing_is_replaced(
    project: Path, out: str
) -> None:
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["report", "-o", out])
    assert result.exit_code == 2
    assert result.output == f"error: {out}: cannot write: expected an .html file name\n"
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before


def test_a_region_name_too_long_for_a_file_is_one_line_exit_2_before_the_work(
    project: Path,
) -> None:
    result = CliRunner().invoke(app, ["report", "--region", "x" * 300])
    assert result.exit_code == 2
    assert "cannot write" in result.output and "file name too long" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_input_leaves_no_partial_page(project: Path) -> None:
    out = Path("reports/Wenzhou-like.html")
    out.write_text("the previous page", encoding="utf-8")
    explanations = pd.read_parquet(paths.EXPLANATIONS)
    explanations["drivers"] = "{not json"
    write_table(explanations, paths.EXPLANATIONS)
    with pytest.raises(InputError, match="expected JSON text") as err:
        report_command("params.yaml")
    assert err.value.column == "drivers" and err.value.row == 1
    assert out.read_text(encoding="utf-8") == "the previous page"
    assert [p.name for p in Path("reports").glob(".*.tmp")] == []


def test_write_report_is_atomic(tmp_path: Path) -> None:
    out = write_report(make_inputs(), tmp_path / "sub" / "page.html")
    assert out.read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert sorted(p.name for p in out.parent.iterdir()) == ["page.html"]


def test_probability_bars_show_the_predicted_stage_strongly() -> None:
    page = render_report(make_inputs())
    rows = re.findall(r'<g class="bar-row( strong)?">\s*<title>([a-z]+): ([\d.]+) %', page)
    strong = [stage for flag, stage, _ in rows if flag]
    assert len(strong) == len(CLUSTERS)
    assert strong[0] == "emerging"  # drones come first
    values = [float(v) for _, _, v in rows[:5]]
    assert math.isclose(sum(values), 100.0, abs_tol=1.0)


# --- a region the pipeline did not explain: computed on request with the model -----------------

MODEL_FEATURES = ["rd_intensity", "entry_rate", "sme_share", "productivity", "lq", "emp_cagr_3y"]


def _model_project(root: Path) -> None:
    """features, labels and a small trained model of four regions; no report inputs at all."""
    from models.bundle import ModelMeta, StageModel
    from models.estimators import StageClassifier

    rng = np.random.default_rng(5)
    keys = [(r, f"c{c}", y) for r in ("A", "B", "C", REGION) for c in range(5) for y in YEARS]
    features = pd.DataFrame(keys, columns=["region", "cluster", "year"])
    for f in MODEL_FEATURES:
        features[f] = rng.uniform(0.1, 1.0, size=len(features))
    features["employment"] = rng.uniform(100, 5000, size=len(features))
    score = features["rd_intensity"] + features["entry_rate"] + 0.3 * rng.normal(size=len(keys))
    stage = np.digitize(score, np.quantile(score, [0.2, 0.4, 0.6, 0.8]))
    labels = features[["region", "cluster", "year"]].assign(
        stage=np.asarray(STAGES, dtype=object)[stage], source="expert"
    )
    write_table(features, root / paths.FEATURES)
    write_table(labels, root / paths.LABELS)
    train = (features["region"] != REGION).to_numpy()
    clf = StageClassifier(tuning_budget=0, calibrate=False, n_estimators=20, n_jobs=1)
    clf.fit(features.loc[train, MODEL_FEATURES], stage[train], features.loc[train, "region"])
    meta = ModelMeta(
        features=MODEL_FEATURES,
        classes=[int(c) for c in clf.classes_],
        training_regions=["A", "B", "C"],
        synthetic=True,
    )
    StageModel(clf.booster, meta).save(root / paths.MODEL_DIR)
    (root / "params.yaml").write_text(
        yaml.safe_dump(
            {"score": {"region": REGION}, "explain": {"top_k": 2}, "data": {"synthetic": False}}
        ),
        encoding="utf-8",
    )


def test_a_region_not_explained_is_computed_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _model_project(tmp_path)
    out = report_command("params.yaml", region="B")
    assert out == Path("reports/B.html")
    text = _text(out.read_text(encoding="utf-8"))
    assert "B is not the pipeline's target region (Wenzhou-like)" in text
    assert "B is one of the model's training regions" in text
    # params.yaml says real, but the model was trained on synthetic data: the page says synthetic.
    assert "Synthetic data." in text and "model.json" in text
    assert text.count("Recommended measures") == 5  # every cluster explained and recommended
    assert "in the training data" in text
    assert re.search(r"(passed|repaired|failing) Unbalanced support", text)


def test_a_region_not_explained_without_a_model_says_what_to_run(project: Path) -> None:
    features = pd.read_parquet(paths.FEATURES)
    write_table(features.assign(region="Elsewhere"), paths.FEATURES)
    result = CliRunner().invoke(app, ["report", "--region", "Elsewhere"])
    assert result.exit_code == 2
    assert "no explanations for region 'Elsewhere'; run `clusterstage explain`" in result.output
    assert len(result.output.strip().splitlines()) == 1


# --- the champion line of the model card -------------------------------------------------------


def _champion_line(mlflow_run: dict[str, object]) -> str:
    inputs = ReportInputs(**{**make_inputs().__dict__, "mlflow_run": mlflow_run})
    text = _text(render_report(inputs))
    return re.search(r"Champion alias (.*?) \(", text + " (").group(1)


@pytest.mark.parametrize(
    ("recorded", "shown"),
    [
        (True, "moved to this version"),
        (False, "not moved"),
        ("true", "moved to this version"),  # mlflow_run.json written before it held booleans
        ("false", "not moved"),
        ("False", "not moved"),
        (None, "not recorded"),
        ("maybe", "not recorded"),
    ],
)
def test_champion_line_reads_the_flag_strictly(recorded: object, shown: str) -> None:
    run = {"run_id": "r1", "registered_version": "5", "champion_reason": "why"}
    assert _champion_line({**run, "champion_moved": recorded}) == shown


def test_champion_line_of_runs_the_tracking_code_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mlflow_run.json as the train stage writes it: the run ids and register_and_gate's record,
    dumped as JSON; once moved, once not."""
    import mlflow

    from models.bundle import ModelMeta, StageModel
    from models.estimators import StageClassifier
    from pipeline.model_logging import log_model
    from pipeline.tracking import register_and_gate, use_project_store

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"lq": rng.normal(size=60)})
    y = np.repeat([0, 1], 30)
    clf = StageClassifier(n_estimators=3, calibrate=False).fit(X, y, np.arange(60) % 3)
    StageModel(clf.booster, ModelMeta(features=["lq"], classes=[0, 1])).save(tmp_path / "model")
    use_project_store()
    written = []
    for macro_f1 in (0.8, 0.7):  # the second is below the first on the same rows
        with mlflow.start_run() as run:
            uri = log_model(tmp_path / "model").model_uri
            record = register_and_gate(uri, macro_f1, gate=0.5, data_hash="rows")
            run_ids = {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id}
            written.append(json.dumps({**run_ids, **record}, indent=2))
    runs = [json.loads(w) for w in written]
    assert [_champion_line(r) for r in runs] == ["moved to this version", "not moved"]
    assert [r["champion_moved"] for r in runs] == [True, False]


def test_a_card_shows_the_caveats_and_how_close_a_lever_tips() -> None:
    inputs = make_inputs()
    levers = inputs.levers.copy()
    at = levers["cluster"] == "footwear"
    levers["runner_up_after"] = pd.array([None] * len(levers), dtype="string")
    levers["p_runner_up_after"] = pd.array([None] * len(levers), dtype="Float64")
    levers.loc[at, ["runner_up_after", "p_runner_up_after"]] = ["decline", 0.41]
    levers.loc[at, "changes"] = json.dumps(
        [{"feature": "productivity", "from": 40000.0, "to": 44000.0, "to_percentile": 20.0,
          "change_iqr": 0.3, "derived": [{"feature": "productivity_cagr_1y", "from": 0.0,
                                          "to": 0.1}]}]
    )  # fmt: skip
    records = [dict(r) for r in inputs.recommendations]
    for r in records:
        if r["cluster"] == "footwear":
            r["caveats"] = ["the model is torn between decline (0.55) and <renewal> (0.40)"]
    page = render_report(
        ReportInputs(**{**inputs.__dict__, "levers": levers, "recommendations": records})
    )
    text = _text(page)
    assert "Caveat: the model is torn between decline (0.55) and <renewal> (0.40)." in text
    assert "&lt;renewal&gt;" in page and "<renewal>" not in page
    assert text.count("Caveat:") == 1
    assert "— with productivity_cagr_1y following" in text
    assert "(p of renewal: 21 % → 52 %; runner-up decline 41 %)" in text
