"""`clusterstage score`: streamed groups equal a one-shot build, every row comes back, bad rows
say why, outputs are whole or absent."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.build import build_features
from features.errors import InputError
from features.loaders import load_input
from features.national_context import group_features
from features.row_checks import reject_feature_table
from features.schemas import PANEL_SCHEMA
from features.stages import STAGES
from models.scoring import DRIVER_FIELDS, N_RECOMMENDATIONS, output_columns, score_rows
from pipeline import score as score_module
from pipeline import score_output
from pipeline.cli import app
from pipeline.params import default_of
from pipeline.score import score_file
from policy.ranking import DEFAULT_SCORING, Scoring
from tests.models.test_scoring import small_model, small_panel

KEYS = ["region", "cluster", "year"]
ROOT = Path(__file__).resolve().parents[2]
NO_CHANGE = "no year-on-year change known (needs the year before): cannot judge a stage"
STATES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "us-cluster-mapping"
# Tiny chunks and groups: several chunks per group, groups of one or a few regions (some empty).
SMALL = {"chunk_rows": 37, "group_rows": 100}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return small_panel(seed=1)


@pytest.fixture(scope="module")
def model(panel):
    return small_model(panel, seed=1)


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    model.save(folder)
    return folder


def _streamed_features(
    monkeypatch, path: Path, out: Path, model, grain: str, group_rows: int = 100
) -> pd.DataFrame:
    """The features each streamed group was scored with, all groups together."""
    seen: list[pd.DataFrame] = []
    real = score_module.score_group

    def spy(group, context, model, **kwargs):
        if len(group.panel):
            seen.append(group_features(group.panel, context))
        return real(group, context, model, **kwargs)

    monkeypatch.setattr(score_module, "score_group", spy)
    score_file(path, out, model, grain=grain, progress=False, chunk_rows=37, group_rows=group_rows)
    assert len(seen) >= 2, "expected several groups"
    return pd.concat(seen).sort_values(KEYS).reset_index(drop=True)


def _assert_same_features(got: pd.DataFrame, want: pd.DataFrame) -> None:
    want = want.sort_values(KEYS).reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for column in want.columns:
        a, b = want[column], got[column]
        if pd.api.types.is_float_dtype(a.dtype):
            np.testing.assert_allclose(
                b.to_numpy(dtype=float), a.to_numpy(dtype=float), rtol=1e-9, atol=1e-9,
                err_msg=column,
            )  # fmt: skip
        else:
            assert b.astype(str).tolist() == a.astype(str).tolist(), column


def _with_totals(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel plus region total rows and national total rows, as statistics offices publish
    them (the nation is larger than the regions in the file)."""
    region = (
        panel.groupby(["region", "year"], as_index=False)["employment"]
        .sum()
        .assign(cluster="Insgesamt", establishments=1)
    )
    region["employment"] *= 3.0
    nation = panel.groupby(["cluster", "year"], as_index=False)[["employment", "payroll"]].sum()
    nation[["employment", "payroll"]] *= 1.7
    grand = region.groupby("year", as_index=False)["employment"].sum()
    grand["employment"] *= 2.0
    grand["cluster"] = "Insgesamt"
    nation = pd.concat([nation, grand]).assign(region="Insgesamt", establishments=1)
    out = pd.concat([panel.drop(columns="region_employment_total"), region, nation])
    return out.sample(frac=1.0, random_state=0).reset_index(drop=True)  # rows in any order


def test_streamed_panel_features_equal_the_one_shot_build(tmp_path, monkeypatch, panel, model):
    path = tmp_path / "panel.csv"
    _with_totals(panel).to_csv(path, index=False)
    got = _streamed_features(monkeypatch, path, tmp_path / "out.csv", model, "panel")
    _assert_same_features(got, build_features(load_input(path, "panel")))


def test_streamed_features_equal_the_one_shot_build_across_gaps(
    tmp_path, monkeypatch, panel, model
):
    # National growth compares the same regions in both years: a region missing a year, a blank
    # cell and a national reference that lacks a year must give every group what the whole
    # input gives, although no group sees the others' gaps.
    frame = _with_totals(panel)
    years = sorted(panel["year"].unique())
    first_region = sorted(panel["region"].unique())[0]
    gone = (frame["region"] == first_region) & (frame["year"] == years[2])
    nation_gap = (frame["region"] == "Insgesamt") & (frame["year"] == years[4])
    frame = frame[~(gone | nation_gap)].reset_index(drop=True)
    blank = frame.index[(frame["region"] != "Insgesamt") & (frame["cluster"] != "Insgesamt")][5]
    frame.loc[blank, "employment"] = np.nan
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    got = _streamed_features(monkeypatch, path, tmp_path / "out.csv", model, "panel")
    want = build_features(load_input(path, "panel"))
    assert want["regional_shift_rate"].notna().sum() > 0
    _assert_same_features(got, want)


def test_an_ingested_parquet_panel_keeps_its_national_totals(tmp_path, monkeypatch, panel, model):
    csv = tmp_path / "panel.csv"
    _with_totals(panel).to_csv(csv, index=False)
    ingested = load_input(csv, "panel")  # national totals travel in the frame's attributes
    assert ingested.attrs["national_totals"]
    path = tmp_path / "ingested.parquet"
    ingested.to_parquet(path, index=False)
    got = _streamed_features(monkeypatch, path, tmp_path / "out.csv", model, "panel")
    _assert_same_features(got, build_features(ingested))


def test_streamed_output_equals_the_pyfunc_table(tmp_path, panel, model):
    rows = _with_totals(panel)
    path = tmp_path / "panel.parquet"
    rows.to_parquet(path, index=False)
    out = tmp_path / "out.parquet"
    summary = score_file(path, out, model, grain="panel", progress=False, **SMALL)
    streamed = pd.read_parquet(out).sort_values("row").reset_index(drop=True)
    one_group = score_rows(rows, model)
    assert len(streamed) == len(rows) == summary.scored + summary.not_scored
    assert streamed["row"].tolist() == list(range(1, len(rows) + 1))
    pd.testing.assert_frame_equal(streamed, one_group, check_exact=False, rtol=1e-6, atol=1e-9)
    is_total = (streamed["cluster"] == "Insgesamt") | (streamed["region"] == "Insgesamt")
    assert streamed.loc[is_total, "error"].str.contains("total row").all()
    assert summary.totals == is_total.sum() and summary.failed == 0
    # Every other row not scored opens its cluster's history (no change known).
    unchanged = streamed[streamed["error"].notna() & ~is_total]
    assert (unchanged["year"] == 2010).all() and len(unchanged) == summary.no_change == 30


def _firms(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(5):
        for c in range(3):
            alive = {f"{c}-{i}": rng.lognormal(2, 1) for i in range(rng.integers(3, 12))}
            born = 100
            for year in range(2014, 2021):
                for firm in list(alive):
                    if rng.random() < 0.1:
                        del alive[firm]
                for _ in range(rng.poisson(1.5)):
                    alive[f"{c}-{born}"] = rng.lognormal(2, 1)
                    born += 1
                for firm, size in alive.items():
                    employees = max(1, round(size * rng.lognormal(0, 0.1)))
                    rows.append(
                        {
                            "region": f"R{r}",
                            "cluster": f"C{c}",
                            "year": year,
                            "firm_id": f"{r}-{firm}",
                            "employees": employees,
                            "revenue": employees * rng.uniform(5e4, 2e5),
                            "wages": employees * rng.uniform(2e4, 5e4),
                            "founded_year": 2000 + int(rng.integers(0, 14)),
                        }
                    )
    return pd.DataFrame(rows)


def test_streamed_firm_features_equal_the_one_shot_build(tmp_path, monkeypatch, model):
    path = tmp_path / "firms.csv"
    _firms().to_csv(path, index=False)
    got = _streamed_features(monkeypatch, path, tmp_path / "out.csv", model, "firms", 250)
    _assert_same_features(got, build_features(load_input(path, "firms")))


def test_a_bad_firm_row_spoils_only_its_cluster_year(tmp_path, model):
    firms = _firms()
    firms["employees"] = firms["employees"].astype(object)
    firms.loc[10, "employees"] = "many"
    path = tmp_path / "firms.csv"
    firms.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    summary = score_file(path, out, model, grain="firms", progress=False, group_rows=250)
    table = pd.read_csv(out)
    key = firms.loc[10, KEYS].tolist()
    hit = table[(table[KEYS] == key).all(axis=1)]
    assert len(hit) == 1 and pd.isna(hit["stage"].iloc[0])
    assert hit["error"].iloc[0] == (
        "not scored: 1 firm row(s) of this region × cluster × year cannot be used "
        "(row 11: column 'employees': expected a number, found 'many')"
    )
    assert summary.failed == 1
    first_years = firms.groupby(["region", "cluster"])["year"].min()
    assert summary.no_change == len(first_years) == 15
    assert summary.not_scored == 16
    assert table["stage"].notna().sum() == summary.scored


def _cmp_export() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    regions = [
        ("Adams County", "001"),
        ("Adams County", "003"),  # one name, two codes: made unique with the code
        ("Baker County", "005"),
        ("Clay County", "007"),
        ("Dale County", "009"),
        *((f"County {i}", f"{100 + i}") for i in range(8)),
    ]
    for name, code in regions:
        for k, cluster in enumerate(["Footwear", "Textiles", "Furniture", "Local Retail"]):
            for year in (2015, 2016):
                emp = float(rng.integers(0, 5000))
                suppressed = rng.random() < 0.2
                rows.append(
                    {
                        "region_name_t": name,
                        "region_code_t": code,
                        "region_type_t": "county",
                        "cluster_name_t": cluster,
                        "cluster_code_t": 100 + k,
                        "year_t": year,
                        "emp_tl": emp,
                        "emp_reported_tl": 0.0 if suppressed else emp,
                        "est_tl": float(rng.integers(1, 90)),
                        "ap_tl": 0.0 if suppressed else emp * 45.0,
                        "private_wage_tf": 0.0 if suppressed else 45000.0,
                        "lq_tf": float(rng.uniform(0, 3)),
                        "traded_b": cluster != "Local Retail",
                        "subcluster_b": False,
                        "supression_b": suppressed,
                        "qualifying_b": rng.random() < 0.5,
                    }
                )
    return pd.DataFrame(rows)


def test_streamed_cmp_features_equal_the_one_shot_build(tmp_path, monkeypatch, model):
    path = tmp_path / "export.csv"
    _cmp_export().to_csv(path, index=False)
    got = _streamed_features(monkeypatch, path, tmp_path / "out.csv", model, "cmp", 25)
    want = build_features(load_input(path, "cmp"))
    assert {"Adams County (001)", "Adams County (003)"} <= set(got["region"])
    _assert_same_features(got, want)


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _bad_panel(panel: pd.DataFrame) -> pd.DataFrame:
    rows = panel.astype({"employment": object, "region": object})
    rows.loc[4, "employment"] = "abc"
    rows.loc[9, "region"] = None
    return rows


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_cli_writes_every_row_and_says_which_failed(tmp_path, runner, panel, model_dir, suffix):
    path = tmp_path / "panel.csv"
    _bad_panel(panel).to_csv(path, index=False)
    out = tmp_path / f"scores{suffix}"
    result = runner.invoke(
        app, ["score", str(path), "--grain", "panel", "-o", str(out), "--model", str(model_dir)]
    )
    assert result.exit_code == 0, result.output
    # Not a terminal: no progress bar, only the one-line summary.
    assert result.stderr == (
        f"warning: 2 of {len(panel):,} rows not scored (first: row 5: column 'employment': "
        f"expected a number, found 'abc'); the reason of each is in the 'error' column of {out}\n"
        f"warning: 30 of {len(panel):,} rows have no year-on-year change known, so no stage: a "
        "stage needs the cluster's year before in the input (the 'error' column of "
        f"{out} names them)\n"
        # the row after the blank cell has no one-year growth, its strongest driver
        "note: in 1 of 268 staged rows the strongest driver is a feature the row does not have "
        "(emp_cagr_1y 1x): such a stage rests on data the input lacks; a model trained on data "
        "like it is more trustworthy (README: Retraining on your own regional data)\n"
    )
    table = {
        ".csv": pd.read_csv,
        ".parquet": pd.read_parquet,
        ".jsonl": lambda p: pd.read_json(p, lines=True),
    }[suffix](out)
    assert list(table.columns) == output_columns(3)
    assert sorted(table["row"]) == list(range(1, len(panel) + 1))
    failed = table[table["error"].notna() & (table["year"] > 2010)].sort_values("row")
    assert failed["row"].tolist() == [5, 10]
    assert failed["error"].iloc[1] == "column 'region': expected a value, found an empty cell"
    assert failed["stage"].isna().all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv", out.name]


def test_a_flag_written_in_no_known_way_fails_only_its_row(tmp_path, runner, panel, model_dir):
    rows = panel.assign(traded=["Yes", "0", "TRUE", "f"] * (len(panel) // 4))
    rows.loc[7, "traded"] = "maybe"
    path = tmp_path / "panel.csv"
    rows.to_csv(path, index=False)
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["score", str(path), "--grain", "panel", "-o", str(out), "--model", str(model_dir)]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    failed = table[table["error"].notna() & (table["year"] > 2010)]
    assert failed["row"].tolist() == [8]
    assert failed["error"].iloc[0] == "column 'traded': expected true or false, found 'maybe'"
    assert table["stage"].notna().sum() == len(panel) - 1 - 30  # 30 histories open in 2010


def test_cli_top_k_and_region(tmp_path, runner, panel, model_dir):
    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    out = tmp_path / "one.csv"
    args = ["score", str(path), "--grain", "panel", "-o", str(out), "--model", str(model_dir)]
    result = runner.invoke(app, [*args, "--top-k", "5", "--region", "Region 2"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert (
        set(table["region"]) == {"Region 2"} and len(table) == (panel["region"] == "Region 2").sum()
    )
    assert "driver_5_contribution" in table.columns
    # Its indicators still compare with every region: same scores as in the full run.
    full = tmp_path / "all.csv"
    assert runner.invoke(app, [*args[:5], str(full), *args[6:]]).exit_code == 0
    every = pd.read_csv(full).set_index("row")
    mine = table.set_index("row")
    np.testing.assert_allclose(mine["p_growth"], every.loc[mine.index, "p_growth"], atol=1e-12)
    result = runner.invoke(app, [*args, "--region", "Atlantis"])
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}, column 'region': no rows for region 'Atlantis'\n"


def test_recommendations_come_from_the_knowledge_base_named(tmp_path, runner, panel, model_dir):
    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    packaged = yaml.safe_load((ROOT / "policy" / "instruments.yaml").read_text(encoding="utf-8"))
    for instrument in packaged["instruments"]:
        instrument["id"] += "_own"
    own = tmp_path / "kb.yaml"
    own.write_text(yaml.safe_dump(packaged), encoding="utf-8")
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir)]
    result = runner.invoke(
        app, [*args, "-o", str(tmp_path / "own.csv"), "--knowledge-base", str(own)]
    )
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "packaged.csv")]).exit_code == 0
    mine = pd.read_csv(tmp_path / "own.csv")["recommendations"].dropna()
    default = pd.read_csv(tmp_path / "packaged.csv")["recommendations"].dropna()
    assert len(mine) == len(default) > 0
    # the same ranking, under the own file's ids
    renamed = mine.str.split(";").map(lambda ids: ";".join(i.removesuffix("_own") for i in ids))
    assert (renamed.to_numpy() == default.to_numpy()).all()
    assert mine.str.split(";").map(lambda ids: all(i.endswith("_own") for i in ids)).all()
    broken = tmp_path / "broken.yaml"
    broken.write_text("instruments: [", encoding="utf-8")
    out = tmp_path / "none.csv"
    result = runner.invoke(app, [*args, "-o", str(out), "--knowledge-base", str(broken)])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.startswith(f"error: {broken}: not valid YAML")


def test_cli_bad_input_as_a_whole_is_one_line_and_exit_2(tmp_path, runner, model_dir):
    path = tmp_path / "panel.csv"
    path.write_text("region,cluster,year,employment\nA,x,2010,5\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o"]
    result = runner.invoke(app, [*args, str(out)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}, column 'establishments': missing required column; expected region, "
        "cluster, year, employment, establishments (map other names with --column "
        "CONTRACT=SOURCE or data.columns); columns found: region, cluster, year, employment\n"
    )
    result = runner.invoke(app, [*args, str(tmp_path / "out.xlsx")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "expected an output ending in .parquet, .csv or .jsonl" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv"]
    # a name written twice, which pandas' reader would rename to 'employment.1' and drop
    path.write_text(
        "region,cluster,year,employment,employment,establishments\nA,x,2010,5,7,1\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, [*args, str(out)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}: two columns are named 'employment' (ignoring case); "
        "expected unique names\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "region,cluster,year,employment,establishments\nA,x,2010,5,1\nA,y,2010,5\n",
            "row 2: 4 fields where the header names 5 (line 3); expected one value, or an "
            "empty one, per column",
        ),
        (
            "region,cluster,year,employment,establishments\nA,x,2010,5,1,\nA,y,2010,5,1,9\n",
            "row 2: 6 fields where the header names 5 (line 3); expected no values beyond the "
            "header's columns",
        ),
    ],
)
def test_a_short_or_long_csv_row_is_a_malformed_file(tmp_path, runner, model_dir, text, message):
    path = tmp_path / "panel.csv"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out.csv"
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}, {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv"]


def test_a_trailing_delimiter_on_every_row_scores_the_columns_in_place(
    tmp_path, runner, panel, model_dir
):
    rows = panel[panel["region"] == panel["region"].iloc[0]]
    plain, trailing = tmp_path / "plain.csv", tmp_path / "trailing.csv"
    rows.to_csv(plain, index=False)
    lines = plain.read_text(encoding="utf-8").splitlines()
    trailing.write_text("\n".join([lines[0], *(line + "," for line in lines[1:])]) + "\n")
    outputs = []
    for path in (plain, trailing):
        out = tmp_path / f"{path.stem}_out.csv"
        args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o"]
        assert runner.invoke(app, [*args, str(out)]).exit_code == 0
        outputs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    later = outputs[0]["year"] > rows["year"].min()  # the first year has no change to read
    assert len(outputs[0]) == len(rows) and outputs[0].loc[later, "error"].isna().all()


def test_a_run_that_fails_midway_leaves_no_output(tmp_path, monkeypatch, panel, model):
    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    out.write_text("the previous scores\n", encoding="utf-8")
    real = score_module.score_group
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C would, after two groups were written
        return real(*args, **kwargs)

    monkeypatch.setattr(score_module, "score_group", failing)
    with pytest.raises(KeyboardInterrupt):
        score_file(path, out, model, grain="panel", progress=False, **SMALL)
    assert out.read_text(encoding="utf-8") == "the previous scores\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "panel.csv"]


@pytest.mark.skipif(not STATES.is_dir(), reason="../shared/data is absent")
def test_every_row_of_the_us_states_file_is_in_the_output(tmp_path, runner, model_dir):
    source = STATES / "states_2016.csv"
    out = tmp_path / "out.csv"
    args = ["score", str(source), "--grain", "cmp", "-o", str(out), "--model", str(model_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 3350
    assert sorted(table["row"]) == list(range(1, 3351))
    assert (table["stage"].notna() | table["error"].notna()).all()
    # One year (2016): no cluster's change is known, so no row can be staged, and none is given
    # a stage, probabilities or recommendations made up from levels alone.
    assert (table["error"] == NO_CHANGE).all()
    assert table[["stage", "p_renewal", "driver_1_feature", "recommendations"]].isna().all().all()
    assert table["region"].notna().all() and (table["year"] == 2016).all()
    assert result.stderr == (
        "warning: 3,350 of 3,350 rows have no year-on-year change known, so no stage: a stage "
        f"needs the cluster's year before in the input (the 'error' column of {out} names them)\n"
    )


# --- the settings it shares with params.yaml ---------------------------------------------------


def _ranked_as_recommend_ranks(table: pd.DataFrame, top_k: int, settings: dict) -> pd.Series:
    """Per staged row of a score table, the ids `recommend` ranks (before its guards) for a
    cluster with the row's stage, probabilities and drivers under params.yaml ``settings``."""
    from pipeline.params import parse_params
    from policy.knowledge_base import load_knowledge_base
    from policy.recommender import ClusterCase, Driver, recommend

    cfg = parse_params({"recommend": settings}).recommend
    kb = load_knowledge_base(cfg.knowledge_base)
    ids = {}
    for index, row in table[table["stage"].notna()].iterrows():
        drivers = [
            Driver.from_record({f: row[f"driver_{j}_{f}"] for f in DRIVER_FIELDS})
            for j in range(1, top_k + 1)
            if isinstance(row[f"driver_{j}_feature"], str)
        ]
        probabilities = {s: row[f"p_{s}"] for s in STAGES}
        case = ClusterCase(
            row["region"],
            row["cluster"],
            int(row["year"]),
            row["stage"],
            probabilities,
            drivers=tuple(d for d in drivers if d is not None),
        )
        ids[index] = ";".join(r.id for r in recommend(case, kb, cfg.k, cfg.scoring()))
    return pd.Series(ids, dtype=object)


def _staged(runner, tmp_path: Path, panel, model_dir, name: str, *options: str) -> pd.DataFrame:
    path = tmp_path / "panel.csv"
    if not path.exists():
        panel.to_csv(path, index=False)
    out = tmp_path / f"{name}.parquet"
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out)


def test_k_and_top_k_give_recommends_ranking_of_that_many_drivers(
    tmp_path, runner, panel, model_dir
):
    table = _staged(runner, tmp_path, panel, model_dir, "k2", "--k", "2", "--top-k", "5")
    staged = table[table["stage"].notna()]
    assert len(staged) > 200
    assert [c for c in table.columns if c.startswith("driver_") and c.endswith("_feature")] == [
        f"driver_{j}_feature" for j in range(1, 6)
    ]
    assert (staged["recommendations"].str.split(";").map(len) == 2).all()
    expected = _ranked_as_recommend_ranks(table, 5, {"k": 2})
    assert staged["recommendations"].tolist() == expected.reindex(staged.index).tolist()


def test_weights_and_percentiles_rank_as_recommend_ranks_with_them(
    tmp_path, runner, panel, model_dir
):
    settings = {
        "driver_weight": 0.5,
        "high_percentile": 90.0,
        "low_percentile": 10.0,
        "near_tie_margin": 0.0,
    }
    options = [
        a for key, value in settings.items() for a in (f"--{key.replace('_', '-')}", str(value))
    ]
    table = _staged(runner, tmp_path, panel, model_dir, "own", *options)
    default = _staged(runner, tmp_path, panel, model_dir, "default")
    staged = table[table["stage"].notna()]
    expected = _ranked_as_recommend_ranks(table, 3, settings)
    assert staged["recommendations"].tolist() == expected.reindex(staged.index).tolist()
    # the settings change the ranking of some rows (else the test would prove nothing)
    changed = staged["recommendations"] != default.loc[staged.index, "recommendations"]
    assert 0 < changed.sum() < len(staged)
    at_default = _ranked_as_recommend_ranks(default, 3, {}).reindex(staged.index)
    assert default.loc[staged.index, "recommendations"].tolist() == at_default.tolist()


def test_total_rows_are_those_of_the_total_label_given(tmp_path, runner, model_dir):
    rows = _laender_rows()
    mapping = ["--column", "cluster=industry", "--column", "employment=emp"]
    mapping += ["--column", "establishments="]
    lines = ["region,industry,year,emp", *(f"{r},{i},{y},{e}" for r, i, y, e in rows)]
    german, english = tmp_path / "german.csv", tmp_path / "english.csv"
    german.write_text("\n".join(lines) + "\n")
    english.write_text("\n".join(lines).replace("Insgesamt", "Total") + "\n")
    (result, got), (_, want) = (
        _score(runner, english, model_dir, *mapping, "--total-label", "Total"),
        _score(runner, german, model_dir, *mapping),
    )
    assert result.exit_code == 0, result.output
    got_table, want_table = pd.read_csv(got), pd.read_csv(want)
    assert got_table["stage"].notna().sum() == 18
    pd.testing.assert_frame_equal(
        got_table.drop(columns=["region", "cluster", "error"]),
        want_table.drop(columns=["region", "cluster", "error"]),
    )
    # under the default label the total rows are clusters and regions of their own, and staged
    result, plain = _score(runner, english, model_dir, *mapping)
    assert result.exit_code == 0, result.output
    as_clusters = pd.read_csv(plain)
    assert as_clusters["stage"].notna().sum() > 18
    assert as_clusters.loc[as_clusters["cluster"] == "Total", "stage"].notna().any()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--k", "0"], "--k 0: expected a whole number from 1 to 30 (params.yaml recommend.k)"),
        (
            ["--high-percentile", "30", "--low-percentile", "40"],
            "--high-percentile 30: expected a number from 50 to 100 "
            "(params.yaml recommend.high_percentile)",
        ),
        (
            ["--low-percentile", "60"],
            "--low-percentile 60: expected a number from 0 to 50 "
            "(params.yaml recommend.low_percentile)",
        ),
        (
            ["--driver-weight", "-1"],
            "--driver-weight -1: expected a number ≥ 0 (params.yaml recommend.driver_weight)",
        ),
        (
            ["--near-tie-margin", "nan"],
            "--near-tie-margin nan: expected a number from 0 to 1 "
            "(params.yaml recommend.near_tie_margin)",
        ),
        (
            ["--top-k", "0"],
            "--top-k 0: expected a whole number from 1 to 50 (params.yaml explain.top_k)",
        ),
    ],
)
def test_a_setting_params_yaml_would_refuse_is_one_line_and_no_output(
    tmp_path, runner, panel, model_dir, options, message
):
    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    result, out = _score(runner, path, model_dir, *options)
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv"]


def test_score_file_checks_its_settings_by_the_same_rule(tmp_path, panel, model):
    path, out = tmp_path / "panel.csv", tmp_path / "out.csv"
    panel.to_csv(path, index=False)
    for settings, message in [
        ({"n_recommendations": 31}, "--k 31: expected a whole number from 1 to 30"),
        ({"scoring": Scoring(low_percentile=-1.0)}, "--low-percentile -1: expected a number"),
    ]:
        with pytest.raises(InputError, match=f"^{re.escape(message)}"):
            score_file(path, out, model, grain="panel", progress=False, **settings)
        assert not out.exists()


def test_each_setting_defaults_to_params_yamls_default():
    import typer

    from pipeline.params import RecommendParams

    command = typer.main.get_command(app).commands["score"]
    defaults = {p.name: p.default for p in command.params}
    for name, key in score_module.SETTINGS.items():
        assert defaults[name] == default_of(key), name
    # and the libraries' own defaults, for callers that pass none, are the same
    assert RecommendParams().scoring() == DEFAULT_SCORING
    assert default_of("recommend.k") == N_RECOMMENDATIONS


def test_the_score_stage_passes_and_declares_each_setting():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["score"]
    cmd = " ".join(stage["cmd"].split())
    settings = {
        **{score_module.option_of(name): key for name, key in score_module.SETTINGS.items()},
        "--region": "score.region",
        "--knowledge-base": "recommend.knowledge_base",
    }
    for option, key in settings.items():
        text = isinstance(default_of(key), str)
        value = f'"${{{key}}}"' if text else f"${{{key}}}"
        assert f"{option} {value}" in cmd, option
    # exactly the keys the command uses
    assert sorted(stage["params"]) == sorted(settings.values())
    assert sorted(re.findall(r"\$\{([^}]+)\}", cmd)) == sorted(settings.values())
    # the ranking's rules are a dependency of score, and of recommend (the policy folder)
    assert "policy/ranking.py" in stage["deps"]
    recommend = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert "policy" in recommend["recommend"]["deps"]


# --- models from MLflow ----------------------------------------------------------------------


def test_a_registered_model_scores_through_every_kind_of_mlflow_uri(
    tmp_path, runner, panel, model, monkeypatch
):
    import mlflow

    from pipeline import tracking
    from pipeline.model_logging import log_model

    monkeypatch.chdir(tmp_path)  # a throwaway tracking store: ./mlflow.db and ./mlruns
    # Named as the pipeline names it: MLflow keeps it as the artifact path artifacts/model.
    folder = tmp_path / "data" / "model"
    model.save(folder)
    path = tmp_path / "panel.csv"
    _bad_panel(panel).to_csv(path, index=False)
    args = ["score", str(path), "--grain", "panel", "-o"]
    assert runner.invoke(app, [*args, "local.csv", "--model", str(folder)]).exit_code == 0
    want = pd.read_csv(tmp_path / "local.csv")
    assert want["stage"].notna().sum() > 200
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        experiment = tracking.use_project_store()
        with mlflow.start_run(experiment_id=experiment) as run:
            info = log_model(folder, panel.head(6))
        version = mlflow.register_model(info.model_uri, "clusterstage").version
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("clusterstage", "champion", version)
        client.set_registered_model_alias("clusterstage", "candidate", version)
        logged = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "dl"))
        uris = {
            "default": [],  # models:/clusterstage@champion
            "alias": ["--model", "models:/clusterstage@candidate"],
            "version": ["--model", f"models:/clusterstage/{version}"],
            "run": ["--model", f"runs:/{run.info.run_id}/model"],
            "logged model": ["--model", info.model_uri],
            "logged folder": ["--model", logged],
        }
        for name, option in uris.items():
            out = tmp_path / f"{name}.csv"
            result = runner.invoke(app, [*args, str(out), *option])
            assert result.exit_code == 0, (name, result.output)
            assert "Downloading" not in result.stderr  # no MLflow progress bars on stderr
            pd.testing.assert_frame_equal(pd.read_csv(out), want, obj=name)
        result = runner.invoke(app, [*args, "x.csv", "--model", "models:/clusterstage@nope"])
        assert result.exit_code == 2
        # One line: no download progress bars either.
        assert result.stderr == (
            "error: models:/clusterstage@nope: cannot load the model "
            "(Registered model alias nope not found.)\n"
        )
        assert not (tmp_path / "x.csv").exists()
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


# --- columns named otherwise, total rows -------------------------------------------------------


def _laender_rows() -> list[tuple[str, str, int, float]]:
    """A German Länder table in small: region, industry, year, emp; region total rows (industry
    Insgesamt) larger than the sections listed, and national rows (region Insgesamt)."""
    industries = ["Baugewerbe (F)", "Handel (G-I)", "Verarbeitendes Gewerbe (C)"]
    rows = []
    for year in (2012, 2013, 2014):
        for r, region in enumerate(["Bayern", "Berlin", "Freistaat Sachsen"]):
            emp = [1000.0 * (r + 1) * (k + 2) + 37.0 * (year - 2012) * (r - k) for k in range(3)]
            rows += [(region, i, year, e) for i, e in zip(industries, emp, strict=True)]
            rows.append((region, "Insgesamt", year, 4.0 * sum(emp)))
        for k, industry in enumerate(industries):
            rows.append(("Insgesamt", industry, year, 9000.0 * (k + 1) + 50.0 * (year - 2012)))
        rows.append(("Insgesamt", "Insgesamt", year, 250000.0 + 1000.0 * (year - 2012)))
    return rows


def test_score_maps_columns_as_features_does(tmp_path, runner, model_dir):
    rows = _laender_rows()
    source = tmp_path / "laender.csv"
    lines = ["region,industry,year,emp", *(f"{r},{i},{y},{e}" for r, i, y, e in rows)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    mapping = ["--column", "cluster=industry", "--column", "employment=emp"]
    args = ["score", str(source), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    result = runner.invoke(app, [*args, *mapping, "--column", "establishments="])
    assert result.exit_code == 0, result.output
    # The same rows under the contract names, with an empty establishments column.
    renamed = tmp_path / "contract.csv"
    frame = pd.DataFrame(rows, columns=["region", "cluster", "year", "employment"])
    frame.assign(establishments=np.nan).to_csv(renamed, index=False)
    want_out = tmp_path / "want.csv"
    plain = ["score", str(renamed), "--grain", "panel", "--model", str(model_dir)]
    assert runner.invoke(app, [*plain, "-o", str(want_out)]).exit_code == 0
    got, want = pd.read_csv(out), pd.read_csv(want_out)
    pd.testing.assert_frame_equal(got, want)
    assert len(got) == len(rows) == 48 and sorted(got["row"]) == list(range(1, 49))
    assert got["stage"].notna().sum() == 18  # 3 regions x 3 industries x 2013, 2014
    # 9 region totals + 12 national rows are reference; 2012 opens every history.
    assert result.stderr == (
        "warning: 9 of 48 rows have no year-on-year change known, so no stage: a stage needs "
        f"the cluster's year before in the input (the 'error' column of {out} names them)\n"
        "note: 21 of 48 rows are region or national totals, not clusters: used as reference, "
        "not scored\n"
    )
    # A bad cell is reported under the file's own name of its column.
    lines[5] = lines[5].rsplit(",", 1)[0] + ",abc"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, [*args, *mapping, "--column", "establishments="])
    assert result.exit_code == 0, result.output
    bad = pd.read_csv(out).set_index("row").loc[5]
    assert bad["error"] == "column 'emp': expected a number, found 'abc'"
    assert result.stderr.startswith(
        "warning: 1 of 48 rows not scored (first: row 5: column 'emp': expected a number, "
        "found 'abc'); "
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--column", "cluster=sector"],
            "column mapping cluster=sector: no column 'sector' in the file; columns found: "
            "region, industry, year, emp",
        ),
        (
            ["--column", "cluster=industry", "--column", "employment=emp"],
            "column 'establishments': missing required column; expected region, cluster, year, "
            "employment, establishments (map other names with --column CONTRACT=SOURCE or "
            "data.columns); columns found: region, industry, year, emp",
        ),
        (
            ["--column", "region="],
            "column mapping declares 'region' absent; it is required",
        ),
        (["--column", "cluster"], None),
    ],
)
def test_a_bad_column_mapping_is_one_line_and_exit_2(tmp_path, runner, model_dir, options, message):
    source = tmp_path / "laender.csv"
    source.write_text("region,industry,year,emp\nBayern,Bau,2012,5\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    args = ["score", str(source), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 2
    if message is None:  # not CONTRACT=SOURCE: a usage error, no file named
        assert result.stderr == (
            "error: --column 'cluster': expected CONTRACT=SOURCE (SOURCE may be empty)\n"
        )
    else:
        # InputError puts ", " before a column it names and ": " before the message.
        where = ", " if message.startswith("column '") else ": "
        assert result.stderr == f"error: {source}{where}{message}\n"
    assert not out.exists()


def test_a_feature_table_is_refused_by_the_cli_and_the_pyfunc(tmp_path, runner, panel, model_dir):
    # Its raw columns would be scored while its indicators were ignored: confident, wrong stages.
    features = build_features(panel)
    path = tmp_path / "features.parquet"
    features.to_parquet(path)
    out = tmp_path / "out.csv"
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {path}: columns ")
    assert "are features the model computes itself: this looks like a feature table" in (
        result.stderr
    )
    assert not out.exists()
    with pytest.raises(InputError, match="this looks like a feature table"):
        score_rows(features, small_model(panel, seed=1))
    # three indicators no input grain holds are enough; lq and wage alone are panel columns
    with pytest.raises(InputError, match="columns emp_cagr_1y, entry_rate, exit_rate are"):
        reject_feature_table(
            ["region", "emp_cagr_1y", "entry_rate", "exit_rate"], PANEL_SCHEMA, None
        )
    reject_feature_table(["region", "lq", "wage", "emp_cagr_1y"], PANEL_SCHEMA, None)
    with pytest.raises(InputError, match="columns entry_rate_lag1 are"):
        reject_feature_table(["region", "entry_rate_lag1"], PANEL_SCHEMA, None)


def test_the_default_model_outside_a_project_is_refused_and_no_store_is_made(
    tmp_path, runner, panel, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "panel.csv"
    panel.head(20).to_csv(path, index=False)
    result = runner.invoke(app, ["score", str(path), "--grain", "panel", "-o", "out.csv"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path / 'mlflow.db'}: no MLflow tracking store here; expected the project "
        "folder (where params.yaml is) after a `clusterstage run`\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv"]


# --- output order and output safety ----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_rows_come_out_in_input_order_across_groups(tmp_path, panel, model, suffix):
    # Shuffled rows (totals among them): every group holds rows from all over the input.
    rows = _with_totals(panel)
    path = tmp_path / "panel.parquet"
    rows.to_parquet(path, index=False)
    out = tmp_path / f"out{suffix}"
    seen = []
    real = score_module.score_group

    def spy(*args, **kwargs):
        seen.append(1)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(score_module, "score_group", spy)
        score_file(path, out, model, grain="panel", progress=False, **SMALL)
    assert len(seen) >= 3, "expected several groups"
    table = {
        ".csv": pd.read_csv,
        ".parquet": pd.read_parquet,
        ".jsonl": lambda p: pd.read_json(p, lines=True),
    }[suffix](out)
    assert table["row"].tolist() == list(range(1, len(rows) + 1))
    # Beside the input, each output row is about the input row next to it.
    assert table["region"].tolist() == rows["region"].tolist()
    assert table["cluster"].tolist() == rows["cluster"].tolist()
    assert table["year"].tolist() == rows["year"].tolist()


def test_firm_aggregates_follow_the_numbered_rows(tmp_path, model):
    firms = _firms()
    firms["employees"] = firms["employees"].astype(object)
    # Failed firm rows, each with its row number, in regions of different groups.
    firms.loc[[900, 7, 500], "employees"] = "n/a"
    path = tmp_path / "firms.csv"
    firms.to_csv(path, index=False)
    out = tmp_path / "out.parquet"
    score_file(path, out, model, grain="firms", progress=False, chunk_rows=37, group_rows=250)
    table = pd.read_parquet(out)
    numbered = table["row"].notna()
    assert table.loc[numbered, "row"].tolist() == [8, 501, 901]
    assert numbered[:3].all() and not numbered[3:].any()


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_terminated_run_leaves_nothing_behind(tmp_path, panel, model_dir, signame):
    import os
    import signal
    import subprocess
    import sys
    import time

    signum = getattr(signal, signame)
    work, spill_root = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    spill_root.mkdir()
    path = work / "panel.csv"
    panel.to_csv(path, index=False)
    out = work / "scores.csv"
    out.write_text("the previous scores\n", encoding="utf-8")
    # The real console script, held up once it has written part of the temporary output.
    script = (
        "import sys, time\n"
        "from pipeline import score_output\n"
        "real = score_output.Writer.write\n"
        "def slow(self, table):\n"
        "    real(self, table)\n"
        "    time.sleep(120)\n"
        "score_output.Writer.write = slow\n"
        "from pipeline.cli import main\n"
        "sys.argv = ['clusterstage', *sys.argv[1:]]\n"
        "main()\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TMPDIR": str(spill_root), "PYTHONPATH": str(root)}
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=root, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (list(work.glob(".scores.csv.*.tmp")) and list(spill_root.iterdir())):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the run never got to writing"
            time.sleep(0.05)
        proc.send_signal(signum)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, stderr
    assert stderr == ""
    assert sorted(p.name for p in work.iterdir()) == ["panel.csv", "scores.csv"]
    assert out.read_text(encoding="utf-8") == "the previous scores\n"
    assert list(spill_root.iterdir()) == []


def test_a_cr_or_lf_in_a_text_cell_stays_inside_its_csv_record(tmp_path, runner, panel, model_dir):
    import csv

    from features.loaders import check_field_counts

    rows = panel.copy()
    names = {"Cluster 1": "Shoe\rmakers", "Cluster 2": "Foot\nwear", "Cluster 3": "Crlf\r\nco"}
    rows["cluster"] = rows["cluster"].replace(names)
    assert set(names.values()) <= set(rows["cluster"])
    path = tmp_path / "panel.parquet"
    rows.to_parquet(path, index=False)
    out = tmp_path / "scores.csv"
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle))
    assert len(records) == len(rows) + 1
    assert {len(record) for record in records} == {len(output_columns(3))}
    check_field_counts(out, ",")  # our own loader's check: no short or long record
    table = pd.read_csv(out)
    assert table["cluster"].tolist() == rows["cluster"].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_full_disk_while_writing_is_one_line_and_exit_2(
    tmp_path, runner, panel, model_dir, monkeypatch, suffix
):
    import errno
    import tempfile

    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    out = tmp_path / f"scores{suffix}"
    out.write_text("the previous scores\n", encoding="utf-8")
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    real = score_output.Writer.write

    def full(self, table):
        real(self, table)  # part of the output is on disk when the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(score_output.Writer, "write", full)
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {out}: cannot write: no space left on device\n"
    assert out.read_text(encoding="utf-8") == "the previous scores\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv", out.name, "tmp"]
    assert list(spill_root.iterdir()) == []


def test_a_full_disk_in_the_temporary_folder_is_one_line_and_exit_2(
    tmp_path, runner, panel, model_dir, monkeypatch
):
    import errno
    import re
    import tempfile

    import pyarrow.parquet as pq

    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    out = tmp_path / "scores.csv"
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert re.fullmatch(
        re.escape(f"error: {spill_root}/clusterstage-") + r"\w+"
        + re.escape(
            ": cannot write: no space left on device (the run's temporary folder; TMPDIR names "
            "where it goes)\n"
        ),
        result.stderr,
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv", "tmp"]
    assert list(spill_root.iterdir()) == []


# --- input reading as features.loaders reads it ---------------------------------------------


def _score(runner, path: Path, model_dir: Path, *options: str):
    out = path.with_name(path.stem + "_out.csv")
    args = ["score", str(path), "--grain", "panel", "--model", str(model_dir), "-o", str(out)]
    return runner.invoke(app, [*args, *options]), out


def test_german_numbers_and_empty_rows_are_read_as_the_loaders_read_them(
    tmp_path, runner, panel, model_dir
):
    rows = panel[panel["region"] == panel["region"].iloc[0]][
        ["region", "cluster", "year", "employment", "establishments"]
    ]
    plain = tmp_path / "plain.csv"
    rows.to_csv(plain, index=False)
    german = tmp_path / "german.csv"
    cells = [
        f"{e:,.1f}".replace(",", "_").replace(".", ",").replace("_", ".")
        for e in rows["employment"]
    ]
    lines = [
        f"{r};{c};{y};{e};{n}"
        for (r, c, y, n), e in zip(
            rows[["region", "cluster", "year", "establishments"]].itertuples(index=False),
            cells,
            strict=True,
        )
    ]
    german.write_text(
        "region;cluster;year;employment;establishments\n;;;;\n" + "\n".join(lines) + "\n"
    )
    assert any("." in cell for cell in cells)  # thousands separators are read as such
    (_, want), (result, got) = _score(runner, plain, model_dir), _score(runner, german, model_dir)
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(got), pd.read_csv(want))


def test_an_ambiguous_number_fails_only_its_row(tmp_path, runner, model_dir):
    path = tmp_path / "p.csv"
    path.write_text(
        "region;cluster;year;employment;establishments\nA;x;2010;1.250;4\nA;x;2011;980;4\n"
    )
    result, out = _score(runner, path, model_dir)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["error"].iloc[0] == (
        "column 'employment': expected a number written unambiguously, found '1.250' (1250 or "
        "1.25?); in a ';'-separated file write it 1250 or 1,25"
    )


def test_lower_case_totals_are_totals_and_a_missing_one_is_an_error(tmp_path, runner, model_dir):
    rows = _laender_rows()
    lines = ["region,industry,year,emp", *(f"{r},{i},{y},{e}" for r, i, y, e in rows)]
    mapping = [
        "--column",
        "cluster=industry",
        "--column",
        "employment=emp",
        "--column",
        "establishments=",
    ]
    want_path, got_path = tmp_path / "want.csv", tmp_path / "got.csv"
    want_path.write_text("\n".join(lines) + "\n")
    got_path.write_text("\n".join(lines).replace("Insgesamt", "INSGESAMT") + "\n")
    (_, want), (result, got) = (
        _score(runner, want_path, model_dir, *mapping),
        _score(runner, got_path, model_dir, *mapping),
    )
    assert result.exit_code == 0, result.output
    got_table, want_table = pd.read_csv(got), pd.read_csv(want)
    pd.testing.assert_frame_equal(
        got_table.drop(columns=["region", "cluster", "error"]),
        want_table.drop(columns=["region", "cluster", "error"]),
    )
    assert got_table["stage"].notna().sum() == 18
    missing = tmp_path / "missing.csv"
    kept = [line for line in lines if not line.startswith("Berlin,Insgesamt,2013")]
    missing.write_text("\n".join(kept) + "\n")
    result, out = _score(runner, missing, model_dir, *mapping)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {missing}: no total row for region 'Berlin' in 2013, while other regions have "
        "one; expected a total (Insgesamt) row for every region and year, or none\n"
    )
    assert not out.exists()


def test_a_firm_founded_after_its_year_fails_its_row(tmp_path, model):
    path = tmp_path / "firms.csv"
    path.write_text(
        "region,cluster,year,firm_id,employees,founded_year\n"
        "A,x,2010,f1,5,2001\nA,x,2011,f1,6,2001\nA,x,2011,f2,6,2050\n"
    )
    out = tmp_path / "out.csv"
    score_file(path, out, model, grain="firms", progress=False)
    # Firm rows have no row of their own in the output: their cluster-year is not scored.
    table = pd.read_csv(out)
    assert table.loc[table["year"] == 2011, "error"].tolist() == [
        "not scored: 1 firm row(s) of this region × cluster × year cannot be used (row 3: "
        "column 'founded_year': expected a founding year no later than the year (2011), "
        "found 2050)"
    ]


@pytest.mark.parametrize("index", [["region"], ["region", "cluster", "year"]])
def test_a_parquet_index_is_read_back_as_columns(tmp_path, panel, model, index):
    plain, indexed = tmp_path / "plain.parquet", tmp_path / "indexed.parquet"
    panel.to_parquet(plain)
    panel.set_index(index).to_parquet(indexed)
    for path in (plain, indexed):
        score_file(path, path.with_suffix(".csv"), model, grain="panel", progress=False)
    pd.testing.assert_frame_equal(
        pd.read_csv(indexed.with_suffix(".csv")), pd.read_csv(plain.with_suffix(".csv"))
    )


def test_parquet_text_that_is_not_utf8_is_one_line(tmp_path, runner, model_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    region = pa.array([b"A", "Baden-W\u00fcrttemberg".encode("latin-1")], pa.binary())
    table = {"region": region, "cluster": ["x", "x"], "year": [2010, 2011]}
    pq.write_table(pa.table({**table, "employment": [5.0, 6.0], "establishments": [1, 1]}), path)
    result, out = _score(runner, path, model_dir)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}: not a readable Parquet file (column 'region', row 2: bytes that are "
        "not UTF-8 text)\n"
    )
    assert not out.exists()


def test_a_contract_column_mapped_twice_is_one_line(tmp_path, runner, model_dir):
    path = tmp_path / "p.csv"
    path.write_text("region,cluster,year,emp,employment,establishments\nA,x,2010,1,2,3\n")
    for second in ("employment=employment", "Employment=employment"):
        result, out = _score(
            runner, path, model_dir, "--column", "employment=emp", "--column", second
        )
        assert result.exit_code == 2
        assert result.stderr == (
            "error: --column maps 'employment' twice, from 'emp' and from 'employment'; "
            "expected one source per contract column\n"
        )
        assert not out.exists()
