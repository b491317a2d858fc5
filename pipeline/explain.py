"""DVC stage `explain`: why each cluster of the target region sits in its stage, and what would
move it on.

Reads ``data/processed/features.parquet``, ``data/processed/labels.parquet`` and the model folder
``data/model``; the target region is ``score.region``. The comparative clusters are the training
rows: labelled rows of every other region. Writes

- ``reports/explanations.parquet``: one row per target-region cluster and year (every year;
  ``latest`` marks each cluster's latest): region, cluster, year, latest, stage, p_<stage> for
  the five stages, ``margin`` and ``base`` (the explained stage's raw margin and its expected
  value) and ``drivers``: JSON text, a list of the ``explain.top_k`` drivers, each
  {feature, value, percentile, contribution, direction, stage, runner_up, vs_runner_up} (see
  models.explain.top_drivers: vs_runner_up is the contribution to the stage's margin minus that
  to the runner-up stage's);
  the percentile is among the comparative clusters of the row's own year;
- ``reports/levers.parquet``: one row per cluster, its latest year only: region, cluster, year,
  stage, target_stage, reachable, ``changes`` (JSON text, a list of {feature, from, to,
  to_percentile, change_iqr, derived}, ``derived`` the same-year features that follow the change
  as {feature, from, to}), n_changes, cost_iqr, predicted_after, p_target_before,
  p_target_after, runner_up_after and p_runner_up_after (the best other stage after the move:
  how close the lever is to tipping back), reason (see models.levers);
- ``reports/shap/mean_abs_shap.csv`` (feature x stage mean |SHAP|) and
  ``reports/shap/beeswarm_<stage>.png``, on the comparative rows (a seeded sample of
  ``explain.global_max_rows`` where there are more).

Percentiles and lever bounds come from the comparative clusters of the same year, since nominal
levels (productivity, wages) drift over the years; where fewer than
``models.reference.MIN_YEAR_ROWS`` of them have a value, from the nearest years around it
(``models.reference.year_reference``).
Contributions are to the raw margin; the probabilities are softmax(margin / T) with the model's
temperature T. The files and the folder are replaced together once all are written
(``pipeline.io.atomic_outputs``): a refused write or a kill leaves the previous ones as they
were, and ``reports/shap`` holds this run's files only. They are then logged to the training
MLflow run (``reports/mlflow_run.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from features.errors import InputError
from models.bundle import StageModel
from models.explain import beeswarm_pngs, global_importance
from models.explanations import comparative_rows, explanation_table, lever_table
from pipeline import paths, tracking
from pipeline.io import (
    atomic_outputs,
    atomic_path,
    check_outputs,
    read_stage_output,
    write_table,
    writing,
)
from pipeline.params import ExplainParams, Params, load_params

# The files explain writes beside its folder paths.SHAP.
FILES = (paths.EXPLANATIONS, paths.LEVERS)


def write_beeswarms(pngs: Mapping[str, bytes], folder: Path = paths.SHAP) -> dict[str, Path]:
    """Each stage's PNG as ``folder/beeswarm_<stage>.png``, each written atomically; a beeswarm
    of a stage not in ``pngs`` (one the model no longer has) is removed. Returns the files."""
    written = {}
    for stage, png in pngs.items():
        target = folder / paths.BEESWARM.format(stage=stage)
        with atomic_path(target) as tmp, writing(target):
            tmp.write_bytes(png)
        written[stage] = target
    for stale in folder.glob(paths.BEESWARM.format(stage="*")):
        if stale not in written.values():
            stale.unlink()
    return written


def explain(params: Params) -> dict[str, Path]:
    """Everything the stage does, given validated params; returns the files written."""
    cfg: ExplainParams = params.explain
    region = params.score.region
    check_outputs(FILES, [paths.SHAP])  # before the work, not after it
    features = read_stage_output(paths.FEATURES, "features")
    labels = read_stage_output(paths.LABELS, "labels")
    model = StageModel.load(paths.MODEL_DIR)
    if "region" not in features.columns:
        raise InputError(paths.FEATURES, "expected a region column", column="region")
    rows = features[features["region"] == region]
    if rows.empty:
        raise InputError(
            paths.FEATURES, f"no rows for region {region!r} (score.region)", column="region"
        )
    reference = comparative_rows(features, labels, model, region)
    sample = reference
    if len(reference) > cfg.global_max_rows:
        rng = np.random.default_rng(cfg.seed)
        pick = np.sort(rng.choice(len(reference), size=cfg.global_max_rows, replace=False))
        sample = reference.iloc[pick]

    explanations = explanation_table(model, rows, reference, cfg.top_k)
    levers = lever_table(model, rows, reference, pair_features=cfg.lever_pair_features)
    importance = global_importance(model, sample).reset_index()

    pngs = beeswarm_pngs(
        model,
        sample,
        max_display=cfg.beeswarm_features,
        synthetic=model.meta.synthetic,
        seed=cfg.seed,
    )
    metadata = {"clusterstage.synthetic": str(model.meta.synthetic).lower()}
    # Replaced together: a refused write or a kill must not leave tables of one region beside
    # plots of another.
    with atomic_outputs(FILES, [paths.SHAP]) as staged:
        write_table(explanations, staged[paths.EXPLANATIONS], metadata=metadata)
        write_table(levers, staged[paths.LEVERS], metadata=metadata)
        write_table(importance, staged[paths.SHAP] / paths.MEAN_ABS_SHAP.name)
        plots = write_beeswarms(pngs, staged[paths.SHAP])
    return {
        "explanations": paths.EXPLANATIONS,
        "levers": paths.LEVERS,
        "mean_abs_shap": paths.MEAN_ABS_SHAP,
        **{f"beeswarm_{stage}": paths.SHAP / path.name for stage, path in plots.items()},
    }


def _artifact_folder(path: Path) -> str:
    return "explain/shap" if path.parent == paths.SHAP else "explain"


def log_to_training_run(files: list[Path], run_file: Path = paths.MLFLOW_RUN) -> bool:
    """Add ``files`` to the training MLflow run; warn and skip when there is none."""
    return tracking.log_to_training_run(files, _artifact_folder, "explanations", run_file)


def explain_from_params(params_path: str | Path = paths.PARAMS) -> None:
    """The DVC stage `explain`."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    written = explain(load_params(params_path))
    log_to_training_run(list(written.values()))
