"""Linkages and institutions: relatedness density and the density of supporting institutions.

Relatedness density (Hidalgo et al. 2007; EconGeo's ``relatedness_density``):
RD_rc = 100 * sum_j phi_cj * x_rj / sum_j phi_cj over the frame's other clusters j != c, with
x_rj = 1 where region r is specialised in j (LQ_rj >= 1). A cluster the region has no row for
counts as x = 0; one whose LQ is unknown (e.g. suppressed) is left out of both sums.

phi comes from a relatedness table when one is given (``relatedness_matrix``, from the records of
``features.loaders.load_relatedness``: the Delgado, Porter & Stern cluster relatedness of the US
Cluster Mapping Project); clusters the table lacks get NaN.
Otherwise phi is the co-location proximity of the data itself, per year:
phi_cj = min(P(x_rc = 1 | x_rj = 1), P(x_rj = 1 | x_rc = 1)) across the frame's regions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import InputError
from features.indicators.context import PanelContext, as_context, frame_of, ratio

COLUMNS: tuple[str, ...] = ("relatedness_density", "institutions_per_100_est")

# cr_lc: co-location relatedness (correlation of the clusters' employment across US regions). It
# is continuous and covers every pair of the 51 traded clusters, whereas the binary
# rel_all_90_v3 marks no related cluster at all for about a quarter of them (RD undefined), and it
# measures the same thing as the co-location fallback. Its few small negative values are set to 0.
DEFAULT_MEASURE = "cr_lc"
MEASURES: tuple[str, ...] = (
    "cr_lc",
    "cr_lcemp",
    "cr_lcest",
    "cr_io",
    "cr_occ",
    "rel_all_90_v3",
)


def check_measure(measure: str, source: str | Path | None = None) -> None:
    """InputError unless ``measure`` is one of MEASURES; ``source`` names the table's file."""
    if measure not in MEASURES:
        raise InputError(
            source,
            f"unknown relatedness measure {measure!r}; expected one of {', '.join(MEASURES)}",
        )


def relatedness_matrix(
    pairs: pd.DataFrame, measure: str = DEFAULT_MEASURE, source: str | Path | None = None
) -> pd.DataFrame:
    """A symmetric cluster x cluster matrix of relatedness weights (index and columns: cluster
    names) from the US Cluster Mapping Project's cluster-pair records: columns
    ``cluster_name``, ``cluster_name_2`` and one per measure (numbers, or numbers as text). The
    diagonal is 0, negative weights become 0, and a pair given only one way is mirrored.
    ``source`` names the file in errors."""
    check_measure(measure, source)
    for col in ("cluster_name", "cluster_name_2", measure):
        if col not in pairs.columns:
            raise InputError(source, "expected cluster-pair records with this field", column=col)
    weight = pd.to_numeric(pairs[measure].replace("", np.nan), errors="coerce")
    bad = weight.isna() & pairs[measure].notna() & pairs[measure].astype(str).ne("")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InputError(
            source,
            f"expected a number, found {pairs[measure].iloc[row - 1]!r}",
            column=measure,
            row=row,
        )
    long = pd.DataFrame(
        {
            "a": pairs["cluster_name"].astype(str),
            "b": pairs["cluster_name_2"].astype(str),
            "w": weight.clip(lower=0.0).to_numpy(dtype="float64"),
        }
    )
    both = pd.concat([long, long.rename(columns={"a": "b", "b": "a"})], ignore_index=True)
    matrix = both.groupby(["a", "b"])["w"].max().unstack("b")
    names = sorted(set(matrix.index) | set(matrix.columns))
    values = matrix.reindex(index=names, columns=names).fillna(0.0).to_numpy(copy=True)
    np.fill_diagonal(values, 0.0)
    matrix = pd.DataFrame(values, index=pd.Index(names), columns=pd.Index(names))
    return matrix


def table_proximity(
    table: pd.DataFrame, clusters: Sequence[object]
) -> tuple[np.ndarray, np.ndarray]:
    """phi over ``clusters`` from a relatedness table, and which clusters it covers."""
    if not table.index.equals(table.columns):
        table = table.reindex(columns=table.index)
    names = [str(c) for c in clusters]
    pos = pd.Index([str(c) for c in table.index]).get_indexer(names)
    covered = pos >= 0
    values = table.to_numpy(dtype="float64", na_value=np.nan)
    phi = np.zeros((len(names), len(names)))
    idx = np.flatnonzero(covered)
    phi[np.ix_(idx, idx)] = values[np.ix_(pos[idx], pos[idx])]
    phi = np.where(np.isfinite(phi), np.clip(phi, 0.0, None), 0.0)
    np.fill_diagonal(phi, 0.0)
    return phi, covered


def _colocation_proximity(x: np.ndarray) -> np.ndarray:
    """Hidalgo proximity from a regions x clusters 0/1 matrix: co-occurrence / max ubiquity."""
    co = x.T @ x
    ubiquity = np.diag(co)
    phi = ratio(co, np.maximum.outer(ubiquity, ubiquity))
    phi = np.nan_to_num(phi, nan=0.0)
    np.fill_diagonal(phi, 0.0)
    return phi


def relatedness_density(
    data: pd.DataFrame | PanelContext,
    *,
    national: pd.DataFrame | None = None,
    relatedness: pd.DataFrame | None = None,
) -> np.ndarray:
    """RD_rc (0..100) for each panel row; see the module docstring."""
    ctx = as_context(data, national)
    n_regions, n_clusters = len(ctx.regions), len(ctx.clusters)
    out = np.full(len(ctx.panel), np.nan)
    if n_clusters < 2:
        return out
    lq = ctx.lq
    known = np.isfinite(lq)
    special = (lq >= 1.0) & known
    table_phi, covered = (None, None)
    if relatedness is not None:
        table_phi, covered = table_proximity(relatedness, ctx.clusters)
    for year in np.unique(ctx.year):
        rows = np.flatnonzero(ctx.year == year)
        r, c = ctx.region_code[rows], ctx.cluster_code[rows]
        x = np.zeros((n_regions, n_clusters))
        x[r, c] = special[rows]
        # Absent region-cluster cells are known zeros; only unknown LQs leave the sums.
        k = np.ones((n_regions, n_clusters))
        k[r, c] = known[rows]
        phi = table_phi if table_phi is not None else _colocation_proximity(x)
        density = 100.0 * ratio(x @ phi.T, k @ phi.T)
        out[rows] = density[r, c]
    if covered is not None:
        out[~covered[ctx.cluster_code]] = np.nan
    return out


def linkages(
    data: pd.DataFrame | PanelContext,
    *,
    national: pd.DataFrame | None = None,
    relatedness: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """relatedness_density and institutions_per_100_est for each panel row."""
    ctx = as_context(data, national)
    return frame_of(
        ctx,
        [
            ("relatedness_density", relatedness_density(ctx, relatedness=relatedness)),
            (
                "institutions_per_100_est",
                100.0 * ratio(ctx.col("institutions"), ctx.col("establishments")),
            ),
        ],
    )
