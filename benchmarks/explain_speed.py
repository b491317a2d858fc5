"""How much faster is one-class TreeSHAP (models.fast_shap) than xgboost's all-class TreeSHAP?

    .venv/bin/python benchmarks/explain_speed.py [--rows 100000] [--nthread 2] [--seed 0]
        [--model data/model --features data/processed/features.parquet]

The reference run is ``Booster.predict(DMatrix, pred_contribs=True)`` on the same rows, in the same
process, with the same nthread. The fast path's time includes the prediction that finds each
row's stage and the DMatrix it builds per class; the one-off split of the booster is timed
separately. Without ``--model`` a StageClassifier of the default size (``models.defaults``) is
trained on synthetic rows (5 stages, 35 features, missing values) drawn like the scored rows; with
``--model`` the rows are the given feature file's rows resampled with replacement.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.bundle import StageModel  # noqa: E402
from models.defaults import DEFAULT_XGB  # noqa: E402
from models.estimators import StageClassifier  # noqa: E402
from models.fast_shap import ClassSplitExplainer  # noqa: E402
from models.levers import find_levers  # noqa: E402

N_FEATURES = 35
N_CLASSES = 5


def synthetic_rows(n: int, rng: np.random.Generator, centres: np.ndarray) -> tuple:
    """Rows from 5 overlapping Gaussian classes with 8 % of values missing."""
    y = rng.integers(0, N_CLASSES, size=n)
    X = centres[y] + rng.normal(size=(n, N_FEATURES))
    X[rng.random(X.shape) < 0.08] = np.nan
    names = [f"f{i:02d}" for i in range(N_FEATURES)]
    return pd.DataFrame(X, columns=names), y


def synthetic_model(seed: int, nthread: int) -> tuple[xgb.Booster, np.random.Generator, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.6, size=(N_CLASSES, N_FEATURES))
    X, y = synthetic_rows(3000, rng, centres)
    clf = StageClassifier(tuning_budget=0, calibrate=False, seed=seed, n_jobs=nthread)
    clf.fit(X, y, groups=np.arange(len(y)) % 6)
    return clf.booster, rng, centres


def _meta(booster: xgb.Booster, X: pd.DataFrame, folder: Path | None):
    from models.bundle import ModelMeta

    if folder is not None:
        return StageModel.load(folder).meta
    return ModelMeta(features=list(X.columns), classes=list(range(N_CLASSES)))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--nthread", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blocks", type=int, default=10, help="alternating blocks of rows")
    parser.add_argument("--model", type=Path, default=None, help="a clusterstage model folder")
    parser.add_argument("--features", type=Path, default=None, help="feature rows to resample")
    parser.add_argument(
        "--lever-rows", type=int, default=200, help="clusters for the lever search timing (0: skip)"
    )
    args = parser.parse_args()

    if args.model is not None:
        model = StageModel.load(args.model)
        booster = model.booster
        rng = np.random.default_rng(args.seed)
        pool = model.matrix(pd.read_parquet(args.features))
        X = pool.iloc[rng.integers(0, len(pool), size=args.rows)].reset_index(drop=True)
        source = f"model {args.model}, rows resampled from {args.features}"
    else:
        booster, rng, centres = synthetic_model(args.seed, args.nthread)
        X, _ = synthetic_rows(args.rows, rng, centres)
        source = (
            f"synthetic StageClassifier ({DEFAULT_XGB.n_estimators} rounds, "
            f"depth {DEFAULT_XGB.max_depth}), synthetic rows"
        )
    booster.set_param({"nthread": args.nthread})
    n_trees = len(booster.get_dump())

    split_s, explainer = timed(lambda: ClassSplitExplainer(booster))
    explainer.set_nthread(args.nthread)
    data = X.to_numpy(dtype=np.float32)

    def reference(block: np.ndarray) -> np.ndarray:
        dm = xgb.DMatrix(block, missing=np.nan, feature_names=booster.feature_names)
        return booster.predict(dm, pred_contribs=True)

    # The two paths alternate over blocks of rows, so that a machine whose load changes during
    # the run (a shared CI box) slows both alike; wall and CPU seconds are summed over blocks.
    full_s = fast_s = full_cpu = fast_cpu = 0.0
    diff = 0.0
    for block in np.array_split(data, max(1, args.blocks)):
        cpu = time.process_time()
        wall, full = timed(lambda b=block: reference(b))
        full_s, full_cpu = full_s + wall, full_cpu + time.process_time() - cpu
        cpu = time.process_time()
        wall, (classes, fast) = timed(lambda b=block: explainer.predicted_contributions(b))
        fast_s, fast_cpu = fast_s + wall, fast_cpu + time.process_time() - cpu
        want = full[np.arange(len(block)), classes, :]
        diff = max(diff, float(np.abs(fast - want).max()))

    print(f"source:       {source}")
    print(f"rows:         {len(data):,} x {data.shape[1]} features, {explainer.n_classes} classes")
    print(
        f"trees:        {n_trees} ({booster.num_boosted_rounds()} rounds), nthread {args.nthread}"
    )
    print(f"split once:   {split_s:8.3f} s")
    print(f"blocks:       {max(1, args.blocks)} (the two paths alternate)")
    print(
        f"full TreeSHAP (Booster.predict pred_contribs=True): {full_s:8.2f} s wall, "
        f"{full_cpu:8.2f} s CPU"
    )
    print(
        f"fast (predict + predicted class only):              {fast_s:8.2f} s wall, "
        f"{fast_cpu:8.2f} s CPU"
    )
    print(f"speedup:      {full_s / fast_s:6.2f}x wall, {full_cpu / fast_cpu:6.2f}x CPU")
    print(f"max |diff|:   {diff:.3g}")

    if args.lever_rows > 0:
        # Levers on the same model: 10 features actionable (half with a good direction), the
        # comparative rows a 5,000-row sample of the scored rows.
        if args.model is not None:
            actionable, directions = None, None
        else:
            actionable = list(X.columns[:10])
            directions = {f: 1 for f in actionable[:5]}
        model = StageModel(booster, _meta(booster, X, args.model))
        rows = X.iloc[: args.lever_rows]
        reference = X.iloc[-5000:]
        lever_s, results = timed(
            lambda: find_levers(model, rows, reference, actionable, directions)
        )
        wanted = sum(r.target_stage is not None for r in results)
        reached = sum(r.reachable for r in results)
        print(
            f"levers:       {1000 * lever_s / len(rows):8.1f} ms per cluster over {len(rows)} "
            f"clusters ({wanted} with a target, {reached} reachable)"
        )


if __name__ == "__main__":
    main()
