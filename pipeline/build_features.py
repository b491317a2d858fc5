"""`clusterstage features` and the DVC stage `features`: any input grain to the feature table;
`clusterstage catalogue`: the feature catalogue as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from features.errors import InputError
from features.indicators.linkages import DEFAULT_MEASURE
from features.lags import DEFAULT_LAGGED, DEFAULT_LAGS, add_lags, lag_names
from features.schemas import TOTAL_LABEL
from pipeline import paths
from pipeline.io import atomic_path, check_writable, write_table, writing

# The file name the US Cluster Mapping Project gives its relatedness table.
RELATED_CLUSTERS = "related_clusters.json"
_OUTPUT_SUFFIXES = (".parquet", ".csv", ".jsonl")
_METADATA_PREFIX = "clusterstage."


def _check_output(out: Path) -> None:
    if Path(out).suffix.lower() not in _OUTPUT_SUFFIXES:
        raise InputError(out, "unsupported output suffix; expected .parquet, .csv or .jsonl")


def _project_metadata(path: Path) -> dict[str, str]:
    """The clusterstage.* Parquet metadata of an input (e.g. clusterstage.synthetic), if any."""
    if path.suffix.lower() != ".parquet":
        return {}
    import pyarrow.parquet as pq

    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):
        return {}  # the loader reports an unreadable file with a proper message
    out = {}
    for key, value in raw.items():
        name = key.decode("utf-8", "replace")
        if name.startswith(_METADATA_PREFIX):
            out[name] = value.decode("utf-8", "replace")
    return out


def _relatedness_table(
    relatedness: str | Path | None, measure: str, input: Path, grain: str
) -> pd.DataFrame | None:
    """The relatedness table named, else for cmp inputs a related_clusters.json beside the
    export (where the US Cluster Mapping download puts it), else None (co-location)."""
    from features.loaders import load_relatedness

    if relatedness is not None:
        return load_relatedness(relatedness, measure)
    sibling = Path(input).parent / RELATED_CLUSTERS
    if grain == "cmp" and sibling.is_file():
        return load_relatedness(sibling, measure)
    return None


def check_covers(table: pd.DataFrame | None, panel: pd.DataFrame, path: str | Path | None) -> None:
    """InputError where a relatedness table names none of the panel's clusters: every
    relatedness_density would be missing, which reads as data the input lacks, not as a table
    of other cluster names (US Cluster Mapping names against a statistical office's sections)."""
    if table is None or panel.empty:
        return
    names = pd.unique(panel["cluster"].astype(str))
    if not pd.Index([str(c) for c in table.index]).isin(names).any():
        raise InputError(
            path,
            f"names none of the input's {len(names)} clusters (such as {names[0]!r}); expected "
            "a relatedness table over the same cluster names, or none (co-location)",
        )


def _add_strength_flags(features: pd.DataFrame) -> pd.DataFrame:
    """The US Cluster Mapping Project's four strength flags (qualifying, significant, strong,
    strong10), recomputed by its published rule (features.cmp_flags) on the published LQ."""
    from features.cmp_flags import strength_flags

    return strength_flags(features)


def compute_features(
    panel: pd.DataFrame,
    *,
    grain: str,
    relatedness: pd.DataFrame | None = None,
    total_label: str = TOTAL_LABEL,
    lagged: Sequence[str] = DEFAULT_LAGGED,
    lags: int = DEFAULT_LAGS,
) -> pd.DataFrame:
    """build_features, the lag columns of ``lagged`` for 1..``lags`` years (features.lags) and,
    for US Cluster Mapping inputs, the four strength flags."""
    from features.build import build_features

    features = build_features(panel, relatedness=relatedness, total_label=total_label)
    features = add_lags(features, lag_names(lagged, lags))
    if grain == "cmp":
        features = _add_strength_flags(features)
        features = features[[c for c in features if c != "n_missing_features"]].assign(
            n_missing_features=features["n_missing_features"]
        )
    return features


def features_command(
    input: Path,
    *,
    grain: str,
    out: Path,
    columns: Mapping[str, str | None] | None = None,
    total_label: str = TOTAL_LABEL,
    relatedness: str | Path | None = None,
    relatedness_measure: str = DEFAULT_MEASURE,
) -> None:
    """Load any grain, build every feature, write ``out`` atomically (.parquet, .csv, .jsonl).

    ``relatedness``: a related_clusters.json to take relatedness weights from; for the cmp grain
    one lying beside the input is used when none is named. Parquet inputs pass their
    ``clusterstage.*`` metadata (e.g. ``clusterstage.synthetic``) on to a Parquet output.
    """
    from features.loaders import load_input

    input, out = Path(input), Path(out)
    _check_output(out)
    check_writable(out, inputs=[input])  # before the work, not after it
    panel = load_input(input, grain, columns=columns or None, total_label=total_label)
    table = _relatedness_table(relatedness, relatedness_measure, input, grain)
    check_covers(table, panel, relatedness or Path(input).parent / RELATED_CLUSTERS)
    features = compute_features(panel, grain=grain, relatedness=table, total_label=total_label)
    write_table(features, out, metadata=_project_metadata(input) or None)


def features_from_params(params_path: str | Path = paths.PARAMS) -> None:
    """The DVC stage `features`: pipeline.paths.INGESTED_PANEL -> pipeline.paths.FEATURES.

    The ingested panel's metadata says which grain it came from (``clusterstage.grain``): US
    Cluster Mapping data also get the strength flags. ``features.relatedness`` in params.yaml
    names an optional relatedness table.
    """
    from features.loaders import load_input, load_relatedness
    from pipeline.params import load_params

    params = load_params(params_path)
    settings = params.features
    metadata = _project_metadata(paths.INGESTED_PANEL)
    grain = metadata.get("clusterstage.grain", "panel")
    # Totals were split off at ingest; nothing in the ingested panel is a total row any more.
    panel = load_input(paths.INGESTED_PANEL, "panel", total_label=None)
    table = (
        load_relatedness(settings.relatedness, settings.relatedness_measure)
        if settings.relatedness
        else None
    )
    check_covers(table, panel, settings.relatedness)
    features = compute_features(
        panel,
        grain=grain,
        relatedness=table,
        # the label of the grand total row in the national reference that ingest kept
        total_label=params.data.total_label,
        lagged=settings.lagged,
        lags=settings.lags,
    )
    write_table(features, paths.FEATURES, metadata=metadata or None)


def catalogue_command(out: str | Path) -> None:
    """Write the feature catalogue as Markdown (docs/features.md), atomically."""
    from features.catalogue import render_markdown

    with atomic_path(out) as tmp, writing(out):
        tmp.write_text(render_markdown(), encoding="utf-8")
