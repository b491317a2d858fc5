import pytest

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
