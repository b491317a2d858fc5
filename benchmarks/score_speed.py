"""How fast does `clusterstage score` run end to end, and how does its memory grow with the input?

    .venv/bin/python benchmarks/score_speed.py [--rows 100000 1000000] [--model data/model]
        [--reference-rows 20000] [--nthread 2] [--format parquet|csv] [--seed 20240601]

Input: the reference world's panel tiled (each copy's regions renamed, so every copy is a new
set of regions with their whole histories; the national rows once) to the wanted number of panel
rows. Model: ``--model``, else ``data/model`` when it exists, else a StageClassifier of the
pipeline's default size (the ``train`` XGBoost settings, lags and features of params.yaml; no
tuning, no calibration) trained here on the reference world (pipeline.generate).

Each configuration is one ``pipeline.score.score_file`` call (read -> check -> features ->
predict -> one-stage TreeSHAP drivers -> recommendations -> write Parquet) in its own subprocess;
its peak memory is the child's own high-water mark (VmHWM, benchmarks/peak_memory.py; ru_maxrss
would start from this parent's peak), so one configuration does not hide another.

Speeds count the rows ``score`` stages ("staged rows"): input rows minus the national rows
and the first year of each history (no change over time known), which get no stage and no
drivers. Two references run in this process, with the same nthread, on the feature matrix of
those rows among the first ``--reference-rows`` cluster rows of the tiled input (features
computed as score does, against the national rows) and are reported as staged rows per second
(both are linear in rows):

- like-for-like, the named reference: the model work ``score`` does, done by hand with XGBoost:
  margins (``inplace_predict``), softmax, the predicted stage (argmax) and TreeSHAP of that stage
  only, through one single-output booster per stage (``models.fast_shap.split_by_class``, built
  once before timing, as a user would load a model once; its one-off cost is printed). XGBoost
  itself has no call for one class's contributions: ``pred_contribs`` runs every stage's trees.
- all stages: ``Booster.predict`` + ``Booster.predict(pred_contribs=True)``, TreeSHAP over every
  stage's trees (about 5x the one-stage work): what a plain XGBoost user would run to get the
  predicted stage's contributions without splitting the model.

The end-to-end speed over the like-for-like reference is the share of score's time spent on the
model work; 1 - that share is clusterstage's overhead (reading, checks, features, percentiles,
recommendations, writing). Its ratio to the all-stage reference is printed beside it.

Targets: end-to-end staged rows/s >= 0.8 x the like-for-like reference's (clusterstage adds
at most a quarter to the model work: a target that keeps its meaning now that both sides do the
same model work; small inputs, where fixed costs weigh, may miss it); peak memory at the largest
size <= 1.5 x that at the smallest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peak_memory import peak_rss_mib  # noqa: E402
from models.bundle import StageModel  # noqa: E402
from models.estimators import StageClassifier  # noqa: E402

TARGET_SPEED = 0.8
TARGET_MEMORY = 1.5


def reference_world(folder: Path, seed: int) -> Path:
    from pipeline.generate import generate_world

    generate_world(folder, seed=seed, scale=1.0)
    return folder


def default_classifier(params_path: Path, nthread: int) -> StageClassifier:
    """The pipeline's classifier as params.yaml configures it, without tuning or calibration."""
    from pipeline.params import load_params
    from pipeline.train import stage_classifier

    train = load_params(params_path).train
    clf = stage_classifier(train.model_copy(update={"tuning_budget": 0, "calibrate": False}))
    return clf.set_params(n_jobs=nthread)


def train_model(world: Path, folder: Path, nthread: int, params_path: Path) -> Path:
    """The pipeline's model, minus tuning and calibration, on the comparative regions."""
    from features.build import FEATURE_NAMES, build_features
    from features.lags import add_lags, lag_columns, lag_names
    from features.loaders import load_input, load_labels
    from models.bundle import ModelMeta, feature_quantiles, feature_ranges
    from models.dataset import model_features, training_set
    from pipeline.params import load_params

    params = load_params(params_path)
    panel = load_input(world / "panel.parquet", "panel")
    lagged = lag_names(params.features.lagged, params.features.lags)
    features = add_lags(build_features(panel), lagged)
    labels = load_labels(world / "labels.csv")
    candidates = params.train.features or [*FEATURE_NAMES, *lag_columns(features.columns)]
    names = model_features(features, candidates)
    data = training_set(features, labels, names)
    clf = default_classifier(params_path, nthread)
    clf.fit(data.X, data.y, data.regions)
    meta = ModelMeta(
        features=names,
        classes=[int(c) for c in clf.classes_],
        ranges=feature_ranges(data.X),
        quantiles=feature_quantiles(data.X),
        synthetic=True,
    )
    StageModel(clf.booster, meta).save(folder)
    return folder


def tiled(panel: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``rows`` panel rows: the national rows (region = the total label) once, then copies of the
    other rows whose regions are renamed ``<name> #<copy>``.

    The nation stays one: a renamed copy of it would be read as one more region, and a repeated
    one as repeated keys; against one nation every copy's indicators are the original's.
    """
    from features.loaders import is_total
    from features.schemas import TOTAL_LABEL

    national = is_total(panel["region"], TOTAL_LABEL)
    regional = panel[~national]
    copies = max(-(-(rows - int(national.sum())) // len(regional)), 0)
    parts = [regional.assign(region=regional["region"] + f" #{i:05d}") for i in range(copies)]
    return pd.concat([panel[national], *parts], ignore_index=True).head(rows)


def child(args: argparse.Namespace) -> None:
    """One configuration: score the file, print wall seconds and this process's peak RSS."""
    from pipeline.score import score_file

    model = StageModel.load(args.model)
    model.booster.set_param({"nthread": args.nthread})
    start = time.perf_counter()
    summary = score_file(args.input, args.out, model, grain="panel", progress=False)
    wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "peak_mib": peak_rss_mib(), "scored": summary.scored}))


def run_child(input: Path, model: Path, out: Path, nthread: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", "--input", str(input), "--model", str(model)]
    cmd += ["--out", str(out), "--nthread", str(nthread)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"scoring {input} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_stage_reference(
    matrix: np.ndarray, model: StageModel, nthread: int
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """score's model work by hand: seconds to split the model (once), seconds for margins,
    probabilities, predicted stage and its TreeSHAP contributions, then the stages and the
    (n, features + 1) contributions (bias last)."""
    import xgboost as xgb
    from scipy.special import softmax

    from models.fast_shap import split_by_class

    booster = model.booster
    booster.set_param({"nthread": nthread})
    start = time.perf_counter()
    per_stage = split_by_class(booster)
    split_s = time.perf_counter() - start

    start = time.perf_counter()
    margin = booster.inplace_predict(matrix, predict_type="margin", missing=np.nan)
    margin = np.asarray(margin).reshape(len(matrix), -1)
    softmax(margin, axis=1)
    stages = margin.argmax(axis=1)
    contributions = np.empty((len(matrix), matrix.shape[1] + 1), dtype=np.float32)
    for k in np.unique(stages):
        rows = np.flatnonzero(stages == k)
        dm = xgb.DMatrix(matrix[rows], missing=np.nan, feature_names=list(model.meta.features))
        contributions[rows] = per_stage[k].predict(dm, pred_contribs=True)
    return split_s, time.perf_counter() - start, stages, contributions


def all_stage_reference(
    matrix: np.ndarray, model: StageModel, nthread: int
) -> tuple[float, np.ndarray]:
    """Seconds of Booster.predict + predict(pred_contribs=True) over the matrix, and the
    (n, stages, features + 1) contributions of every stage."""
    import xgboost as xgb

    booster = model.booster
    booster.set_param({"nthread": nthread})
    start = time.perf_counter()
    dm = xgb.DMatrix(matrix, missing=np.nan, feature_names=list(model.meta.features))
    booster.predict(dm)
    contributions = booster.predict(dm, pred_contribs=True)
    return time.perf_counter() - start, contributions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--nthread", type=int, default=2)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from features.build import build_features
    from features.lags import add_lags, lag_columns
    from features.loaders import is_total, load_input
    from features.schemas import TOTAL_LABEL
    from models.scoring import change_known

    with tempfile.TemporaryDirectory(prefix="score-speed-") as tmp:
        tmp = Path(tmp)
        world = reference_world(tmp / "world", args.seed)
        panel = pd.read_parquet(world / "panel.parquet")
        model_dir = args.model or (
            Path("data/model") if Path("data/model/model.json").exists() else None
        )
        if model_dir is None:
            start = time.perf_counter()
            model_dir = train_model(world, tmp / "model", args.nthread, ROOT / "params.yaml")
            print(f"trained a model on the reference world in {time.perf_counter() - start:.0f} s")
        model = StageModel.load(model_dir)
        print(
            f"model:  {model_dir} ({model.booster.num_boosted_rounds()} rounds, "
            f"{len(model.meta.classes)} stages, {len(model.meta.features)} features)"
        )
        print(
            f"input:  the reference world's panel ({len(panel):,} rows) tiled; "
            f"{args.format} in, parquet out; nthread {args.nthread}"
        )

        results = []
        for rows in sorted(args.rows):
            path = tmp / f"panel_{rows}.{args.format}"
            frame = tiled(panel, rows)
            if args.format == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            del frame
            got = run_child(path, model_dir, tmp / f"scores_{rows}.parquet", args.nthread)
            got["rows"] = rows
            results.append(got)
            print(
                f"end to end {rows:>10,} rows: {got['wall']:8.1f} s  "
                f"{rows / got['wall']:9,.0f} input rows/s ({got['scored']:,} staged)  "
                f"peak {got['peak_mib']:7,.0f} MiB",
                flush=True,
            )

        # The references: the staged rows' features (of the first copies of the tiled input).
        sample = tmp / "reference.parquet"
        # --reference-rows counts cluster rows: the nation comes first and on top.
        national = int(is_total(panel["region"], TOTAL_LABEL).sum())
        tiled(panel, args.reference_rows + national).to_parquet(sample, index=False)
        # Read as score reads it: the national rows become the reference, not rows to score.
        sample = load_input(sample, "panel")
        features = add_lags(build_features(sample), lag_columns(model.meta.features))
        features = features[change_known(features)]
        matrix = model.matrix(features).to_numpy(dtype=np.float32)
        split_s, one_s, _, _ = one_stage_reference(matrix, model, args.nthread)
        all_s, _ = all_stage_reference(matrix, model, args.nthread)
        one_speed, all_speed = len(matrix) / one_s, len(matrix) / all_s
        print(
            f"reference (like-for-like): bare XGBoost margins + the predicted stage's TreeSHAP "
            f"on {len(matrix):,} staged rows of the same features: {one_s:.1f} s, "
            f"{one_speed:,.0f} rows/s (splitting the model by stage, once: {split_s:.2f} s)"
        )
        print(
            f"reference (all stages):    bare XGBoost predict + pred_contribs of all "
            f"{len(model.meta.classes)} stages on the same rows: {all_s:.1f} s, "
            f"{all_speed:,.0f} rows/s"
        )

        print("\nsummary (staged rows per second; end to end over the reference)")
        for got in results:
            speed = got["scored"] / got["wall"]
            print(
                f"  {got['rows']:>10,} rows ({got['scored']:,} staged): {speed:9,.0f} rows/s = "
                f"{speed / one_speed:5.2f} x like-for-like (target >= {TARGET_SPEED}), "
                f"{speed / all_speed:5.2f} x all-stage pred_contribs"
            )
        if len(results) > 1:
            growth = results[-1]["peak_mib"] / results[0]["peak_mib"]
            print(
                f"  peak memory {results[-1]['rows']:,} / {results[0]['rows']:,} rows: "
                f"{growth:.2f} x (target <= {TARGET_MEMORY})"
            )


if __name__ == "__main__":
    main()
