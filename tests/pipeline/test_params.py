import pytest
import yaml

from pipeline.params import ParamsError, flatten, load_params, parse_params


def test_the_committed_params_file_is_valid():
    params = load_params("params.yaml")
    assert params.data.grain in {"panel", "firms", "cmp"}


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  max_dept: 3\n")
    with pytest.raises(ParamsError, match=r"params.yaml: unknown key 'train.max_dept'$"):
        load_params(path)


def test_wrong_type_names_key_and_value():
    with pytest.raises(ParamsError, match=r"key 'train.n_estimators'.*got 'many'"):
        parse_params({"train": {"n_estimators": "many"}})


def test_out_of_range_value():
    with pytest.raises(ParamsError, match="key 'generate.scale'"):
        parse_params({"generate": {"scale": -1}})


def test_inputs_must_lie_in_the_data_folder():
    with pytest.raises(ParamsError, match=r"data.path .* must lie inside data.dir"):
        parse_params({"data": {"dir": "data/raw/x", "path": "elsewhere/panel.csv"}})


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(tmp_path / "absent.yaml")


def test_yaml_errors_name_the_line_and_an_empty_file_is_refused(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("train:\n  max_depth: 4\n  seed: [1, 2\nscore:\n  region: x\n")
    with pytest.raises(ParamsError, match=r"p.yaml, line \d+: not valid YAML \(.+\)$"):
        load_params(bad)
    bad.write_text("# nothing left\n")
    with pytest.raises(ParamsError, match="the file is empty"):
        load_params(bad)


@pytest.mark.parametrize("region", ['Sachsen $(touch x) "Q"', "a`b", "a/b", "a\\b", "tab\there"])
def test_a_region_that_would_break_dvc_yaml_quoting_is_refused(region):
    with pytest.raises(ParamsError, match=r"key 'score.region': must not contain"):
        parse_params({"score": {"region": region}})


def test_region_names_with_spaces_accents_and_apostrophes_are_fine():
    region = "Provence-Alpes-Côte d'Azur"
    assert parse_params({"score": {"region": region}}).score.region == region


def test_flatten_gives_dotted_keys():
    flat = flatten(parse_params({}))
    assert flat["train.max_depth"] == 4
    assert flat["score.region"] == "Wenzhou-like"


def test_lagged_features_must_be_catalogue_features():
    params = parse_params({})
    assert params.features.lags == 3 and "entry_rate" in params.features.lagged
    with pytest.raises(ParamsError, match="features.lagged: 'entry_rte' is not a feature"):
        parse_params({"features": {"lagged": ["entry_rte"]}})
    with pytest.raises(ParamsError, match="key 'features.lags'"):
        parse_params({"features": {"lags": -1}})


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"train": {"n_estimators": True}},
            "key 'train.n_estimators': Input should be a valid integer (got True)",
        ),
        ({"train": {"seed": "7"}}, "key 'train.seed': Input should be a valid integer (got '7')"),
        (
            {"train": {"calibrate": "yes"}},
            "key 'train.calibrate': Input should be a valid boolean (got 'yes')",
        ),
        (
            {"train": {"learning_rate": True}},
            "key 'train.learning_rate': Input should be a valid number (got True)",
        ),
        (
            {"generate": {"seed": -1}},
            "key 'generate.seed': Input should be greater than or equal to 0 (got -1)",
        ),
        (
            {"generate": {"scale": float("inf")}},
            "key 'generate.scale': Input should be a finite number (got inf)",
        ),
        (
            {"generate": {"scale": 101}},
            "key 'generate.scale': expected a number > 0 and <= 100, found 101.0",
        ),
    ],
)
def test_a_scalar_of_another_type_or_out_of_bounds_is_refused(section, expected):
    with pytest.raises(ParamsError) as err:
        parse_params(section)
    assert str(err.value) == f"params.yaml: {expected}"


def test_ints_and_yaml_11_exponents_are_numbers():
    # PyYAML reads 1e-3 (no dot) as the text '1e-3'; DVC's YAML 1.2 reader as a number
    raw = yaml.safe_load("train:\n  learning_rate: 1\n  min_child_weight: 1e-3\n")
    train = parse_params(raw).train
    assert (train.learning_rate, train.min_child_weight) == (1.0, 0.001)


def test_data_columns_must_name_contract_columns():
    assert parse_params({"data": {"columns": {" Employment ": "emp"}}}).data.columns
    with pytest.raises(ParamsError) as err:
        parse_params({"data": {"columns": {"cluster": "industry", "emplyment": "emp"}}})
    assert str(err.value).startswith(
        "params.yaml: key 'data.columns.emplyment': unknown panel column 'emplyment'; "
        "expected one of region, cluster, year, employment, establishments, payroll, "
    )
    with pytest.raises(ParamsError) as err:
        parse_params({"data": {"grain": "firms", "columns": {"employment": "emp"}}})
    assert "key 'data.columns.employment': unknown firms column 'employment'; " in str(err.value)
    with pytest.raises(ParamsError) as err:
        parse_params({"data": {"grain": "cmp", "columns": {"employment": "emp"}}})
    assert str(err.value) == (
        "params.yaml: key 'data.columns.employment': the cmp grain takes no column mapping "
        "(its columns are fixed); expected data.columns: {}"
    )


@pytest.mark.parametrize("folder", ["", " ", ".", "/", "..", "data", "reports", "data/interim"])
def test_data_dir_must_be_a_folder_of_inputs_only(folder):
    with pytest.raises(ParamsError) as err:
        parse_params({"data": {"dir": folder, "path": f"{folder}/panel.csv"}})
    assert str(err.value) == (
        "params.yaml: key 'data.dir': expected a folder inside the project that holds only the "
        f"inputs (data/raw/<name>), found {folder!r}"
    )


def test_data_files_may_not_lie_in_a_stage_output_folder_unless_they_are_its_files(tmp_path):
    params = parse_params({"data": {"labels": "data/raw/reference/labels.csv"}})
    assert params.data.path == "data/raw/reference/panel.parquet"
    assert parse_params({"data": {"dir": "data/raw", "path": "data/raw/mine/p.csv"}}).data.dir
    outside = tmp_path / "in"  # a folder outside the project, as tests and external deps use
    no_labels = {"labels": None, "target_labels": None}
    assert parse_params(
        {"data": {"dir": str(outside), "path": str(outside / "p.csv"), **no_labels}}
    )
    with pytest.raises(ParamsError) as err:
        parse_params({"data": {"path": "data/raw/reference/mine.csv"}})
    assert str(err.value) == (
        "params.yaml: key 'data.path': data/raw/reference/mine.csv lies inside "
        "data/raw/reference, the output of the generate stage, which DVC deletes and writes "
        "anew when that stage runs; expected the file in a folder of its own (data/raw/<name>, "
        "named by data.dir)"
    )
    with pytest.raises(ParamsError, match=r"^params.yaml: key 'data.region_totals': data/model"):
        parse_params({"data": {"dir": "data/raw", "region_totals": "data/model/t.csv"}})
    with pytest.raises(ParamsError) as err:
        parse_params({"data": {"dir": "data/raw/reference/mine", "path": "data/raw/x.csv"}})
    assert str(err.value) == (
        "params.yaml: key 'data.dir': data/raw/reference/mine lies inside data/raw/reference, "
        "the output of the generate stage, which DVC deletes and writes anew when that stage "
        "runs; expected a folder of its own (data/raw/<name>)"
    )


def test_champion_gate_defaults_to_one_half():
    assert parse_params({}).train.champion_gate == 0.5


def test_high_percentile_below_the_median_is_refused():
    with pytest.raises(ParamsError) as err:
        parse_params({"recommend": {"high_percentile": 30}})
    assert str(err.value) == (
        "params.yaml: key 'recommend.high_percentile': "
        "Input should be greater than or equal to 50 (got 30)"
    )


def test_trajectory_thresholds_out_of_order_are_refused():
    with pytest.raises(ParamsError) as err:
        parse_params({"labels": {"trajectory": {"decline_max": 0.1}}})
    assert str(err.value) == (
        "params.yaml: key 'labels.trajectory': expected decline_max <= flat_max <= growth_min"
    )


def test_quadrant_growth_columns_must_be_features():
    lagged = parse_params({"labels": {"quadrant": {"growth_columns": ["emp_cagr_1y_lag2"]}}})
    assert lagged.labels.quadrant.growth_columns == ["emp_cagr_1y_lag2"]
    with pytest.raises(ParamsError) as err:
        parse_params({"labels": {"quadrant": {"growth_columns": ["emp_cagr_3y", "emp_cagr3"]}}})
    assert str(err.value).startswith(
        "params.yaml: key 'labels.quadrant.growth_columns': unknown feature 'emp_cagr3'; "
        "expected features of docs/features.md"
    )


@pytest.mark.parametrize(
    ("section", "key", "stage"),
    [("features", "relatedness", "features"), ("recommend", "knowledge_base", "recommend")],
)
def test_a_file_a_stage_reads_must_lie_in_data_dir(section, key, stage):
    data = {"dir": "data/raw/mine", "path": "data/raw/mine/p.csv", "labels": None}
    data["target_labels"] = None
    inside = parse_params({"data": data, section: {key: "data/raw/mine/sub/f.yaml"}})
    assert getattr(getattr(inside, section), key) == "data/raw/mine/sub/f.yaml"
    with pytest.raises(ParamsError) as err:
        parse_params({"data": data, section: {key: "data/raw/kb/f.yaml"}})
    assert str(err.value) == (
        f"params.yaml: key '{section}.{key}': data/raw/kb/f.yaml lies outside data.dir "
        f"(data/raw/mine); expected a file inside it, whose changes re-run the {stage} stage "
        "(else its results would go stale unnoticed)"
    )
    # data.dir may hold the generator's folder, but a file of one's own may not lie in it
    with pytest.raises(ParamsError) as err:
        parse_params({"data": {"dir": "data/raw"}, section: {key: "data/raw/reference/f.yaml"}})
    assert str(err.value).startswith(
        f"params.yaml: key '{section}.{key}': data/raw/reference/f.yaml lies inside "
        "data/raw/reference, the output of the generate stage"
    )


def test_the_packaged_knowledge_base_may_be_named_outside_data_dir():
    kb = parse_params({"recommend": {"knowledge_base": "policy/instruments.yaml"}})
    assert kb.recommend.knowledge_base == "policy/instruments.yaml"
    assert parse_params({}).recommend.knowledge_base == "policy/instruments.yaml"
    # dvc.yaml hands the path to `score` as text: a null would arrive as "None"
    with pytest.raises(ParamsError) as err:
        parse_params({"recommend": {"knowledge_base": None}})
    assert str(err.value).startswith("params.yaml: key 'recommend.knowledge_base': ")


def test_the_stages_reading_those_files_depend_on_data_dir():
    # DVC re-runs a stage only when a declared dependency changes: without data.dir among its
    # deps, an edited relatedness table or knowledge base would leave stale results.
    from pathlib import Path

    spec = yaml.safe_load((Path(__file__).parents[2] / "dvc.yaml").read_text())["stages"]
    for stage in ("ingest", "features", "recommend", "score"):
        assert "${data.dir}" in spec[stage]["deps"], stage
    # score's recommendations come from the same knowledge base as recommend's
    assert '--knowledge-base "${recommend.knowledge_base}"' in spec["score"]["cmd"]
    assert "recommend.knowledge_base" in spec["score"]["params"]


def test_run_refuses_a_relatedness_table_outside_data_dir_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    monkeypatch.chdir(tmp_path)
    text = "features:\n  relatedness: elsewhere/related_clusters.json\n"
    (tmp_path / "params.yaml").write_text(text)
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: params.yaml: key 'features.relatedness': elsewhere/related_clusters.json lies "
        "outside data.dir (data/raw/reference); expected a file inside it, whose changes re-run "
        "the features stage (else its results would go stale unnoticed)\n"
    )
    assert (tmp_path / "params.yaml").read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_train_features_must_be_columns_the_features_stage_builds():
    chosen = ["lq", "emp_cagr_3y", "entry_rate_lag3"]
    assert parse_params({"train": {"features": chosen}}).train.features == chosen
    assert parse_params({"train": {"features": None}}).train.features is None
    cases = [
        (
            {"train": {"features": ["lq", "emp_cagr_3yy"]}},
            "unknown feature 'emp_cagr_3yy'; expected features of docs/features.md or their "
            "lags <feature>_lag<k> (e.g. lq, emp_cagr_3y, entry_rate_lag1)",
        ),
        (
            {"train": {"features": ["lq_lag1"]}},
            "'lq_lag1' is never built: lq is not in features.lagged",
        ),
        (
            {"train": {"features": ["entry_rate_lag4"]}},
            "'entry_rate_lag4' is never built: features.lags is 3, so lags stop at _lag3",
        ),
        (
            {"features": {"lags": 0}, "train": {"features": ["entry_rate_lag1"]}},
            "'entry_rate_lag1' is never built: features.lags is 0, so none is built",
        ),
        (
            {"train": {"features": []}},
            "expected at least one feature, or null for every feature; found []",
        ),
        ({"train": {"features": ["lq", "lq"]}}, "'lq' is listed twice; expected each feature once"),
    ]
    for raw, message in cases:
        with pytest.raises(ParamsError) as err:
            parse_params(raw)
        assert str(err.value) == f"params.yaml: key 'train.features': {message}"


def test_a_keys_default_and_range_are_read_from_its_section():
    from pipeline.params import accepts, default_of, expected_of

    assert default_of("recommend.k") == 6 and default_of("data.total_label") == "Insgesamt"
    assert expected_of("recommend.k") == "a whole number from 1 to 30"
    assert expected_of("recommend.driver_weight") == "a number ≥ 0"
    assert expected_of("train.learning_rate") == "a number > 0 and ≤ 1"
    assert accepts("recommend.high_percentile", 50) and not accepts("recommend.high_percentile", 49)
    assert not accepts("recommend.near_tie_margin", float("nan"))
    assert not accepts("recommend.k", True)  # strict, as params.yaml is read


def test_defaults_are_the_librarys_own():
    # A notebook calling the library and the pipeline reading an unset key must behave alike.
    from dataclasses import asdict

    from features.indicators.linkages import DEFAULT_MEASURE
    from features.labellers.quadrant import DEFAULT_QUADRANT
    from features.labellers.trajectory import DEFAULT_TRAJECTORY
    from features.reference_world import TARGET_REGION
    from models.defaults import (
        DEFAULT_BEESWARM_FEATURES,
        DEFAULT_PAIR_FEATURES,
        DEFAULT_TOP_K,
        DEFAULT_XGB,
    )
    from pipeline.params import Params
    from policy.guards import DEFAULT_CONFIG
    from policy.ranking import DEFAULT_K, DEFAULT_SCORING

    params = Params()
    assert params.recommend.scoring() == DEFAULT_SCORING
    assert params.recommend.guard_config() == DEFAULT_CONFIG
    assert params.recommend.k == DEFAULT_K
    quadrant = params.labels.quadrant.model_dump()
    assert {**quadrant, "growth_columns": tuple(quadrant["growth_columns"])} == asdict(
        DEFAULT_QUADRANT
    )
    assert params.labels.trajectory.model_dump() == asdict(DEFAULT_TRAJECTORY)
    assert params.train.model_dump(include=set(asdict(DEFAULT_XGB))) == asdict(DEFAULT_XGB)
    explain = params.explain
    assert (explain.top_k, explain.lever_pair_features, explain.beeswarm_features) == (
        DEFAULT_TOP_K,
        DEFAULT_PAIR_FEATURES,
        DEFAULT_BEESWARM_FEATURES,
    )
    assert params.features.relatedness_measure == DEFAULT_MEASURE
    assert params.score.region == TARGET_REGION
