"""US Cluster Mapping Project exports mapped onto the panel grain.

The project (Harvard Business School / US EDA, clustermapping.us) publishes one row per region ×
cluster × year for states, economic areas, MSAs and counties (``region_type_t``); this module reads
any one such level. Columns used:

========================  ============================================================
export column             panel column
========================  ============================================================
region_name_t             region (``name (code)`` where one name has several codes)
cluster_name_t            cluster
year_t                    year
emp_tl                    employment
est_tl                    establishments
ap_tl                     payroll, in dollars (the export's unit is $1000)
emp_reported_tl           employment_reported
region_code_t             region_code (text: FIPS codes keep their leading zeros)
region_type_t             region_type
cluster_code_t            cluster_code
traded_b                  traded
private_wage_tf           wage, in dollars per employee
lq_tf                     lq (the published location quotient)
qualifying_b, ...         published_qualifying, published_significant, published_strong,
                          published_strong10 (nullable boolean; NA for local clusters)
========================  ============================================================

What the numbers mean, checked on ``states_2016.csv`` (3,350 rows):

* ``emp_tl`` is the project's employment estimate and includes employment of County Business
  Patterns cells that the Census Bureau suppresses; ``emp_reported_tl`` is the part that was
  actually reported. ``ap_tl`` (and so ``private_wage_tf``) covers only the reported part:
  ``private_wage_tf == ap_tl * 1000 / emp_reported_tl`` holds on every row with reported jobs.
  So ``payroll`` is the payroll of ``employment_reported`` jobs, and ``payroll / employment``
  understates the wage wherever part of the cluster is suppressed (2,089 of 3,350 state rows;
  median ratio 0.98, but as low as 0.001). Use ``wage`` for pay per employee.
* Zeros are ambiguous. In the state file 56 rows are zero in every column (no establishment at
  all: true zeros), while 204 rows have establishments and estimated employment but
  ``ap_tl = 0``, ``emp_reported_tl = 0`` and ``private_wage_tf = 0``: the payroll was suppressed,
  not zero.

The suppression rule (any level): a row shows activity when any of ``emp_tl``, ``est_tl``,
``emp_reported_tl``, ``ap_tl`` or ``qp1_tl`` is above zero or ``supression_b`` is true. In an
active row a zero in ``emp_tl``, ``est_tl``, ``ap_tl`` or ``private_wage_tf`` is a suppressed
value: it becomes missing and the row's ``suppressed`` flag is true (so is every row with
``supression_b`` true). A zero ``lq_tf`` becomes missing with a suppressed ``emp_tl``. A row
without any activity keeps its zeros: no establishments, no employment. ``emp_reported_tl`` is
never changed (0 reported jobs is a fact).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features import schemas
from features.errors import InputError
from features.loaders import number_style, read_table

# export column -> panel column
REQUIRED: dict[str, str] = {
    "region_name_t": "region",
    "cluster_name_t": "cluster",
    "year_t": "year",
    "emp_tl": "employment",
    "est_tl": "establishments",
    "ap_tl": "payroll",
    "region_code_t": "region_code",
    "cluster_code_t": "cluster_code",
    "traded_b": "traded",
    "private_wage_tf": "wage",
    "lq_tf": "lq",
}
# Used when present; an export without them gets missing values (flags) or no extra signal.
OPTIONAL: dict[str, str] = {
    "region_type_t": "region_type",
    "emp_reported_tl": "employment_reported",
    "qualifying_b": "published_qualifying",
    "significant_b": "published_significant",
    "strong_b": "published_strong",
    "strong10_b": "published_strong10",
}
SIGNALS = ("supression_b", "qp1_tl", "subcluster_b")

# Parses and checks the export's cells before suppression is resolved; keys are checked for
# uniqueness only afterwards, once region names shared by several codes are made unique.
SOURCE_SCHEMA = pa.DataFrameSchema(
    {
        **schemas.PANEL_SCHEMA.columns,
        "supression_b": schemas.PANEL_SCHEMA.columns["traded"].set_name("supression_b"),
        "qp1_tl": schemas.PANEL_SCHEMA.columns["payroll"].set_name("qp1_tl"),
        "subcluster_b": schemas.PANEL_SCHEMA.columns["traded"].set_name("subcluster_b"),
    },
    strict=False,
    name="cmp export",
)


def check_one_level(frame: pd.DataFrame, path: Path) -> None:
    """A file must hold one region level and clusters only: mixing them double counts."""
    if "region_type" in frame.columns:
        levels = sorted(frame["region_type"].dropna().unique())
        if len(levels) > 1:
            raise InputError(
                path,
                f"expected one region level per file, found {', '.join(levels)}; "
                "split the export by region_type_t",
                column="region_type_t",
            )
    if "subcluster_b" in frame.columns and frame["subcluster_b"].nunique() > 1:
        raise InputError(
            path,
            "expected clusters or sub-clusters, found both; split the export by subcluster_b",
            column="subcluster_b",
        )


def _region_names(frame: pd.DataFrame) -> pd.Series:
    """region_name_t, made unique with the code where one name has several codes (counties)."""
    names = frame["region"]
    codes_per_name = frame.groupby("region")["region_code"].transform("nunique")
    shared = (codes_per_name > 1).to_numpy()
    if not shared.any():
        return names
    labelled = names + " (" + frame["region_code"].fillna("?") + ")"
    return names.where(~shared, labelled)


def _suppression(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    flagged = out["supression_b"].fillna(False).to_numpy(dtype=bool)
    active = flagged.copy()
    for column in ("employment", "establishments", "employment_reported", "payroll", "qp1_tl"):
        if column in out.columns:
            active |= (out[column] > 0).to_numpy(dtype=bool, na_value=False)
    suppressed = flagged.copy()
    for column in ("employment", "establishments", "payroll", "wage"):
        hidden = active & (out[column] == 0).to_numpy(dtype=bool, na_value=False)
        out[column] = out[column].where(~hidden)
        suppressed |= hidden
    hidden_lq = out["employment"].isna().to_numpy() & (out["lq"] == 0).to_numpy(
        dtype=bool, na_value=False
    )
    out["lq"] = out["lq"].where(~hidden_lq)
    out["suppressed"] = suppressed
    return out


def normalise_validated(frame: pd.DataFrame) -> pd.DataFrame:
    """Validated export rows in the project's units: payroll in dollars, suppressed zeros made
    missing, flags for traded clusters only, optional columns present."""
    frame["payroll"] = frame["payroll"] * 1000.0
    frame = _suppression(frame)
    for flag in schemas.CMP_FLAGS:
        if flag not in frame.columns:
            frame[flag] = pd.Series(pd.NA, index=frame.index, dtype="boolean")
        # The project publishes flags for traded clusters only.
        frame[flag] = frame[flag].astype("boolean").where(frame["traded"], pd.NA)
    if "employment_reported" not in frame.columns:
        frame["employment_reported"] = np.nan
    if "region_type" not in frame.columns:
        frame["region_type"] = pd.Series(np.nan, index=frame.index, dtype="str")
    return frame


def load_cmp(path: str | Path) -> pd.DataFrame:
    """Read a US Cluster Mapping Project export as a validated panel (see the module doc).

    Returns region, cluster, year, employment, establishments, payroll (dollars), plus
    region_code, region_type, cluster_code, traded, employment_reported, wage, lq, the four
    published_* flags and suppressed; sorted by region, cluster, year. A file missing an export
    column this needs is an InputError naming it.
    """
    path = Path(path)
    raw = read_table(path)
    for column in REQUIRED:
        if column not in raw.columns:
            raise InputError(
                path,
                f"missing column of a US Cluster Mapping export; expected {', '.join(REQUIRED)}",
                column=column,
            )
    mapping = {**REQUIRED, **{k: v for k, v in OPTIONAL.items() if k in raw.columns}}
    frame = raw[[*mapping, *(c for c in SIGNALS if c in raw.columns)]].rename(columns=mapping)
    if "supression_b" not in frame.columns:
        frame["supression_b"] = False
    names = {v: k for k, v in mapping.items()}
    numbers = number_style(path, frame, SOURCE_SCHEMA)
    frame = schemas.validate(frame, SOURCE_SCHEMA, path, names, numbers=numbers)
    check_one_level(frame, path)
    frame = normalise_validated(frame)
    frame["region"] = _region_names(frame)
    frame = frame.drop(columns=[c for c in SIGNALS if c in frame.columns])
    order = [*schemas.PANEL_REQUIRED, "payroll", *schemas.PANEL_CMP]
    frame = frame[order]
    frame = schemas.validate(frame, schemas.PANEL_SCHEMA, path, names)
    return frame.sort_values(list(schemas.KEYS), kind="stable").reset_index(drop=True)
