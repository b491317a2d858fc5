import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import build_features
from features.errors import InputError
from models.bundle import (
    BOOSTER_FILE,
    META_FILE,
    YEAR_QUANTILES_FILE,
    ModelMeta,
    StageModel,
    feature_ranges,
    year_quantiles,
)
from models.estimators import StageClassifier
from pipeline.cli import app
from tests.models.test_scoring import small_model, small_panel

# Catalogue names for the conftest's rows: a saved model names features of the catalogue (or
# their lags), which loading checks.
CATALOGUE_NAMES = {
    "growth": "emp_cagr_3y",
    "innovation": "patents_per_10k",
    "noise_a": "sme_share",
    "noise_b": "entry_rate_lag2",
}


@pytest.fixture
def catalogued_rows(staged_rows):
    X, y, regions = staged_rows
    return X.rename(columns=CATALOGUE_NAMES), y, regions


def test_saved_model_predicts_what_the_estimator_predicts(tmp_path, catalogued_rows):
    X, y, regions = catalogued_rows
    clf = StageClassifier(n_estimators=30, seed=2).fit(X, y, regions)
    meta = ModelMeta(
        features=list(X.columns),
        classes=clf.classes_.tolist(),
        temperature=clf.temperature_,
        ranges=feature_ranges(X),
    )
    StageModel(clf.booster, meta).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.ubj"]
    loaded = StageModel.load(tmp_path)
    frame = X.assign(region="r", cluster="c", year=2020)
    np.testing.assert_allclose(loaded.predict_proba(frame), clf.predict_proba(X), atol=1e-6)
    out = loaded.predict_frame(frame.head(3))
    assert list(out.columns[:4]) == ["region", "cluster", "year", "stage"]
    assert out.filter(like="p_").sum(axis=1).round(6).eq(1).all()


def test_absent_feature_is_missing_and_text_is_an_error(tmp_path, staged_rows):
    X, y, regions = staged_rows
    clf = StageClassifier(n_estimators=10, calibrate=False).fit(X, y, regions)
    model = StageModel(clf.booster, ModelMeta(features=list(X.columns), classes=[0, 1, 2, 3, 4]))
    assert model.predict_proba(X.drop(columns=["noise_b"])).shape == (len(X), 5)
    with pytest.raises(InputError, match="column 'growth'"):
        model.predict_proba(X.assign(growth="high"))


def test_loading_a_folder_without_a_model_is_bad_input(tmp_path):
    with pytest.raises(InputError, match="not a clusterstage model folder"):
        StageModel.load(tmp_path)


def test_feature_ranges_are_robust_percentiles():
    X = pd.DataFrame({"a": np.arange(101, dtype=float), "b": np.nan})
    assert feature_ranges(X) == {"a": [1.0, 99.0]}


@pytest.mark.parametrize("stages", [[2], [1, 3]])
def test_saved_model_of_one_or_two_stages_scores_all_five(tmp_path, catalogued_rows, stages):
    X, _, regions = catalogued_rows
    y = np.resize(stages, len(X))
    clf = StageClassifier(n_estimators=10, seed=2).fit(X, y, regions)
    meta = ModelMeta(features=list(X.columns), classes=clf.classes_.tolist())
    meta.temperature = clf.temperature_
    StageModel(clf.booster, meta).save(tmp_path)
    proba = StageModel.load(tmp_path).predict_proba(X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-6)
    absent = [s for s in range(5) if s not in stages]
    assert (proba[:, absent] == 0).all()
    np.testing.assert_allclose(proba[:, stages].sum(axis=1), 1.0)


def test_year_quantiles_rank_among_the_same_years_rows():
    X = pd.DataFrame({"wage": np.r_[np.arange(40.0), 100.0 + np.arange(40.0)]})
    years = np.repeat([2001, 2024], 40)
    grids = year_quantiles(X, years)
    assert sorted(grids) == ["2001", "2024"]
    assert grids["2001"]["wage"][0] == 0.0 and grids["2001"]["wage"][-1] == 39.0
    assert grids["2024"]["wage"][50] == pytest.approx(119.5)
    # 10 of 2024 are too few to rank among: the nearest years are added
    few = year_quantiles(X.iloc[:50], years[:50])
    assert few["2024"]["wage"][0] == 0.0 and few["2024"]["wage"][-1] == 109.0
    assert few["2001"]["wage"][-1] == 39.0


def test_year_quantiles_sit_in_their_own_file_and_load_back(tmp_path, catalogued_rows):
    X, y, regions = catalogued_rows
    clf = StageClassifier(n_estimators=10, calibrate=False).fit(X, y, regions)
    grids = {"2020": {"emp_cagr_3y": [float(v) for v in range(101)]}}
    meta = ModelMeta(features=list(X.columns), classes=[0, 1, 2, 3, 4], year_quantiles=grids)
    StageModel(clf.booster, meta).save(tmp_path)
    assert "year_quantiles" not in json.loads((tmp_path / "model.json").read_text())
    assert StageModel.load(tmp_path).meta.year_quantiles == grids
    # a model saved before per-year grids existed loads with none
    (tmp_path / YEAR_QUANTILES_FILE).unlink()
    assert StageModel.load(tmp_path).meta.year_quantiles == {}
    (tmp_path / YEAR_QUANTILES_FILE).write_text('{"next year": {}}', encoding="utf-8")
    with pytest.raises(InputError, match="key 'next year': expected a year, found 'next year'"):
        StageModel.load(tmp_path)
    (tmp_path / YEAR_QUANTILES_FILE).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="expected an object mapping each year to per-feature"):
        StageModel.load(tmp_path)


# --- a model folder edited by hand or damaged ---------------------------------------------------


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return small_panel(seed=1)


@pytest.fixture(scope="module")
def saved(panel, tmp_path_factory) -> tuple[StageModel, Path]:
    """A model with every part the training stage saves, and the folder it is saved in."""
    model = small_model(panel, seed=1)
    features = build_features(panel)
    X = features[model.meta.features].astype("float64")
    meta = replace(
        model.meta,
        params={"max_depth": 3, "max_bin": 128},
        year_quantiles=year_quantiles(X, features["year"].to_numpy()),
        training_regions=sorted(set(features["region"])),
        synthetic=True,
        metrics={"cv_macro_f1": 0.5},
    )
    folder = tmp_path_factory.mktemp("saved") / "model"
    StageModel(model.booster, meta).save(folder)
    return StageModel(model.booster, meta), folder


def test_a_saved_model_loads_back_as_it_was(saved, panel):
    model, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        META_FILE,
        BOOSTER_FILE,
        YEAR_QUANTILES_FILE,
    ]
    loaded = StageModel.load(folder)
    digest = hashlib.sha256((folder / BOOSTER_FILE).read_bytes()).hexdigest()
    assert loaded.meta.booster_sha256 == digest  # recorded by save
    assert replace(loaded.meta, booster_sha256=None) == model.meta
    frame = build_features(panel)
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))


def test_a_model_saved_before_the_optional_keys_loads_with_their_defaults(saved, tmp_path):
    _, folder = saved
    shutil.copytree(folder, tmp_path / "old")
    (tmp_path / "old" / YEAR_QUANTILES_FILE).unlink()
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    old = {key: meta[key] for key in ("features", "classes", "temperature", "params", "ranges")}
    (tmp_path / "old" / META_FILE).write_text(json.dumps(old), encoding="utf-8")
    loaded = StageModel.load(tmp_path / "old").meta
    assert (loaded.quantiles, loaded.year_quantiles, loaded.max_missing) == ({}, {}, None)
    assert loaded.ranges == meta["ranges"]


def _set(key: str, value: object):
    def edit(meta: dict) -> None:
        meta[key] = value

    return edit


def _edit_features(edit):
    def on_meta(meta: dict) -> None:
        meta["features"] = edit(meta["features"])

    return on_meta


def _first_feature_grid(value: object):
    def edit(meta: dict) -> None:
        meta["quantiles"][meta["features"][0]] = value

    return edit


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:5000])


def _flip_a_byte(path: Path) -> None:
    # damage XGBoost may not notice, or crash on: the checksum refuses it first
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGED = (
    "damaged or replaced: its SHA-256 is not the one model.json records (key 'booster_sha256'); "
    "expected the booster saved with that metadata"
)


FEATURES = "a non-empty list of unique names of features of docs/features.md or their lags "
FEATURES += "<feature>_lag<k>"
GRIDS = "101 finite non-decreasing numbers"
NUMBERS_AS_TEXT = [str(v) for v in range(101)]
# (file, edit, message): the edit changes the parsed JSON in place or returns what the file is to
# hold; for the booster it changes the file. The message follows the file's path and ": ".
TAMPERED = [
    pytest.param(
        META_FILE,
        _set("temperature", "hot"),
        "key 'temperature': expected a finite number > 0, found 'hot'",
        id="temperature-text",
    ),
    pytest.param(
        META_FILE,
        _set("temperature", 0),
        "key 'temperature': expected a finite number > 0, found 0",
        id="temperature-zero",
    ),
    pytest.param(
        META_FILE,
        _set("temperature", -1),
        "key 'temperature': expected a finite number > 0, found -1",
        id="temperature-negative",
    ),
    pytest.param(
        META_FILE,
        _set("temperature", float("nan")),
        "key 'temperature': expected a finite number > 0, found nan",
        id="temperature-nan",
    ),
    pytest.param(
        META_FILE,
        _set("classes", [0, 1, 2]),
        "key 'classes': expected 5 stage ids, one per class of model.ubj, found 3",
        id="classes-fewer-than-the-booster",
    ),
    pytest.param(
        META_FILE,
        _set("classes", [0, 1, 2, 3, 9]),
        "key 'classes': expected a non-empty list of unique stage ids 0 to 4, found 9 at "
        "position 4",
        id="classes-not-a-stage",
    ),
    pytest.param(
        META_FILE,
        _set("classes", [0, 1, 2, 2, 4]),
        "key 'classes': expected a non-empty list of unique stage ids 0 to 4, found 2 twice",
        id="classes-twice",
    ),
    pytest.param(
        META_FILE,
        _edit_features(lambda names: names[:-5]),
        "key 'features': expected {n} names, one per feature of model.ubj, found {n5}",
        id="features-fewer-than-the-booster",
    ),
    pytest.param(
        META_FILE,
        _set("features", "emp"),
        f"key 'features': expected {FEATURES}, found 'emp'",
        id="features-text",
    ),
    pytest.param(
        META_FILE,
        _edit_features(lambda names: ["employment_growth", *names[1:]]),
        f"key 'features': expected {FEATURES}, found 'employment_growth'",
        id="features-unknown-name",
    ),
    pytest.param(
        META_FILE,
        _edit_features(lambda names: [names[1], names[0], *names[2:]]),
        "key 'features': expected the features of model.ubj in its order, found "
        "'national_share' where it has 'lq'",
        id="features-out-of-order",
    ),
    pytest.param(
        META_FILE,
        _first_feature_grid(NUMBERS_AS_TEXT),
        f"key 'quantiles', feature 'lq': expected {GRIDS}, found '0' at position 0",
        id="quantiles-text",
    ),
    pytest.param(
        META_FILE,
        _first_feature_grid([float(v) for v in range(100)]),
        f"key 'quantiles', feature 'lq': expected {GRIDS}, found 100 items",
        id="quantiles-short",
    ),
    pytest.param(
        META_FILE,
        _first_feature_grid([*range(50), -1.0, *range(51, 101)]),
        f"key 'quantiles', feature 'lq': expected {GRIDS}, found -1.0 after 49.0",
        id="quantiles-decreasing",
    ),
    pytest.param(
        META_FILE,
        lambda meta: meta["quantiles"].update(employment=list(range(101))),
        "key 'quantiles': expected features of the model (model.json key 'features') only, "
        "found 'employment'",
        id="quantiles-of-no-feature",
    ),
    pytest.param(
        META_FILE,
        lambda meta: meta["ranges"].update(lq=["0.5", "2"]),
        "key 'ranges', feature 'lq': expected [low, high], two finite numbers with low <= high, "
        "found '0.5' at position 0",
        id="ranges-text",
    ),
    pytest.param(
        META_FILE,
        lambda meta: meta["ranges"].update(lq=[2.0, 0.5]),
        "key 'ranges', feature 'lq': expected [low, high], two finite numbers with low <= high, "
        "found [2.0, 0.5]",
        id="ranges-high-below-low",
    ),
    pytest.param(
        META_FILE,
        _set("max_missing", "lots"),
        "key 'max_missing': expected an integer >= 0 or null, found 'lots'",
        id="max-missing-text",
    ),
    pytest.param(
        META_FILE,
        _set("training_regions", "Region 1"),
        "key 'training_regions': expected a list of region names, found 'Region 1'",
        id="training-regions-text",
    ),
    pytest.param(
        META_FILE,
        _set("metrics", {"cv_macro_f1": "good"}),
        "key 'metrics', metric 'cv_macro_f1': expected a number, found 'good'",
        id="metrics-text",
    ),
    pytest.param(
        META_FILE,
        _set("colour", "red"),
        "key 'colour': unknown; expected only the keys features, classes, temperature, params, "
        "ranges, quantiles, year_quantiles, max_missing, training_regions, synthetic, metrics, "
        "booster_sha256",
        id="unknown-key",
    ),
    pytest.param(
        META_FILE,
        _set("booster_sha256", "abc"),
        f"key 'booster_sha256': expected the SHA-256 of {BOOSTER_FILE} in 64 hexadecimal digits, "
        "or null, found 'abc'",
        id="checksum-not-hex",
    ),
    pytest.param(
        META_FILE,
        lambda meta: {key: value for key, value in meta.items() if key != "features"},
        f"key 'features': missing; expected {FEATURES}",
        id="features-missing",
    ),
    pytest.param(
        META_FILE,
        lambda meta: meta["features"][:2],
        "expected an object of model metadata, found ['lq', 'national_share']",
        id="not-an-object",
    ),
    pytest.param(
        YEAR_QUANTILES_FILE,
        lambda grids: {"2015": "grids"},
        f"year '2015': expected an object mapping each feature to {GRIDS}, found 'grids'",
        id="year-grids-text",
    ),
    pytest.param(
        YEAR_QUANTILES_FILE,
        lambda grids: {"2015": 7},
        f"year '2015': expected an object mapping each feature to {GRIDS}, found 7",
        id="year-grids-number",
    ),
    pytest.param(
        YEAR_QUANTILES_FILE,
        lambda grids: {"2015": {"lq": "low"}},
        f"year '2015', feature 'lq': expected {GRIDS}, found 'low'",
        id="year-grid-text",
    ),
    pytest.param(
        YEAR_QUANTILES_FILE,
        lambda grids: {"2015": {"lq": NUMBERS_AS_TEXT}},
        f"year '2015', feature 'lq': expected {GRIDS}, found '0' at position 0",
        id="year-grid-numbers-as-text",
    ),
    pytest.param(
        YEAR_QUANTILES_FILE,
        lambda grids: {"2015": {"employment": list(range(101))}},
        "year '2015': expected features of the model (model.json key 'features') only, found "
        "'employment'",
        id="year-grid-of-no-feature",
    ),
    pytest.param(BOOSTER_FILE, _truncate, DAMAGED, id="booster-truncated"),
    pytest.param(BOOSTER_FILE, lambda path: path.write_bytes(b""), DAMAGED, id="booster-empty"),
    pytest.param(BOOSTER_FILE, _flip_a_byte, DAMAGED, id="booster-one-byte-flipped"),
]


def _tamper(saved_folder: Path, target: Path, file: str, edit) -> Path:
    """A copy of the saved folder at ``target`` with ``file`` edited; the edited file's path."""
    shutil.copytree(saved_folder, target)
    path = target / file
    if file == BOOSTER_FILE:
        edit(path)
        return path
    data = json.loads(path.read_text(encoding="utf-8"))
    edited = edit(data)
    path.write_text(json.dumps(data if edited is None else edited), encoding="utf-8")
    return path


@pytest.mark.parametrize(("file", "edit", "message"), TAMPERED)
def test_a_tampered_model_folder_is_one_line_of_bad_input(saved, tmp_path, file, edit, message):
    model, folder = saved
    path = _tamper(folder, tmp_path / "model", file, edit)
    n = len(model.meta.features)
    with pytest.raises(InputError) as caught:
        StageModel.load(tmp_path / "model")
    assert str(caught.value) == f"{path}: " + message.format(n=n, n5=n - 5)


@pytest.mark.parametrize(
    ("edit", "found"),
    [(_truncate, ""), (lambda path: path.write_bytes(b""), ", found an empty file")],
)
def test_a_damaged_booster_of_a_folder_without_its_checksum_is_one_line(
    saved, tmp_path, edit, found
):
    # a folder saved before model.json recorded the booster's SHA-256: XGBoost reads the file
    _, folder = saved
    _tamper(folder, tmp_path / "model", META_FILE, _set("booster_sha256", None))
    edit(tmp_path / "model" / BOOSTER_FILE)
    with pytest.raises(InputError) as caught:
        StageModel.load(tmp_path / "model")
    assert str(caught.value) == (
        f"{tmp_path / 'model' / BOOSTER_FILE}: cannot read the booster; expected a whole XGBoost "
        f"model in UBJ format{found}"
    )


def test_a_folder_without_its_booster_says_which_file_is_missing(saved, tmp_path):
    _, folder = saved
    shutil.copytree(folder, tmp_path / "model")
    (tmp_path / "model" / BOOSTER_FILE).unlink()
    with pytest.raises(InputError) as caught:
        StageModel.load(tmp_path / "model")
    assert str(caught.value) == (
        f"{tmp_path / 'model'}: not a clusterstage model folder ([Errno 2] No such file or "
        f"directory: '{tmp_path / 'model' / BOOSTER_FILE}')"
    )


def test_cli_score_with_a_tampered_model_is_one_line_exit_2_and_no_output(saved, panel, tmp_path):
    _, folder = saved
    path = _tamper(folder, tmp_path / "model", META_FILE, _set("temperature", "hot"))
    panel.to_csv(tmp_path / "panel.csv", index=False)
    out = tmp_path / "scores.csv"
    args = ["score", str(tmp_path / "panel.csv"), "--grain", "panel", "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--model", str(tmp_path / "model")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}: key 'temperature': expected a finite number > 0, found 'hot'\n"
    )
    assert not out.exists()
