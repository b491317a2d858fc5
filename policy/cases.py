"""The explain stage's tables read back as cluster cases: one ``ClusterCase`` per cluster of a
region (its latest explained year) with its stage, probabilities, drivers, feature values and
levers, ready for the recommender.

Drivers come as a ``drivers`` column of JSON text or nested records, or as a long table with one
row per driver; a lever's changes as JSON text, records or (feature, from, to) triples. Errors
name the file a frame came from where the caller says (``sources``), else the column and row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from features.errors import InputError
from features.stages import STAGES
from policy.recommender import ClusterCase, Driver, LeverChange, Levers, finite

KEYS = ["region", "cluster", "year"]
PROBA = {s: f"p_{s}" for s in STAGES}

Source = str | Path | None


def optional_text(value: object) -> str | None:
    """A cell as text; None for a missing one (None, NaN, pd.NA)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def cell_records(
    cell: object, path: Source, column: str, row: int | None
) -> list[dict[str, object]]:
    """A JSON-text or nested (list of structs) cell as a list of dicts; a (feature, from, to)
    triple stands for {feature, from, to}. ``path``, ``column`` and ``row`` name the cell in
    errors."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    if isinstance(cell, str):
        try:
            cell = json.loads(cell) if cell.strip() else []
        except ValueError:
            raise InputError(path, "expected JSON text", column=column, row=row) from None
    if isinstance(cell, Mapping):
        cell = [cell]
    try:
        items = list(cell)  # type: ignore[call-overload]
    except TypeError:
        raise InputError(path, "expected a list of records", column=column, row=row) from None
    out = []
    for item in items:
        if isinstance(item, Mapping):
            out.append(dict(item))
        elif isinstance(item, list | tuple) and len(item) == 3:
            out.append({"feature": item[0], "from": item[1], "to": item[2]})
        else:
            raise InputError(path, "expected a list of records", column=column, row=row)
    return out


def _require(frame: pd.DataFrame, columns: Sequence[str], path: Source, what: str) -> None:
    for col in columns:
        if col not in frame.columns:
            raise InputError(path, f"expected {what} with columns {', '.join(columns)}", column=col)


def latest_rows(frame: pd.DataFrame, region: str, path: Source) -> pd.DataFrame:
    """The region's rows of the latest year of each cluster."""
    rows = frame[frame["region"] == region]
    if rows.empty:
        raise InputError(path, f"no rows for region {region!r}", column="region")
    latest = rows.groupby("cluster", sort=False)["year"].transform("max")
    return rows[rows["year"] == latest]


def parse_drivers(explanations: pd.DataFrame, path: Source) -> dict[tuple, list[Driver]]:
    """Drivers per (region, cluster, year): a ``drivers`` column of JSON text or lists of records,
    or a long table with one row per driver (columns feature, contribution, ... and ``rank``)."""
    out: dict[tuple, list[Driver]] = {}
    if "drivers" in explanations.columns:
        for pos, (key, cell) in enumerate(
            zip(
                explanations[KEYS].itertuples(index=False, name=None),
                explanations["drivers"],
                strict=True,
            )
        ):
            records = cell_records(cell, path, "drivers", pos + 1)
            out[key] = [_driver(r, path, pos + 1) for r in records]
        return out
    if {"feature", "contribution"} <= set(explanations.columns):
        frame = explanations.reset_index(drop=True)  # row numbers are file rows
        if "rank" in frame.columns:
            frame = frame.sort_values([*KEYS, "rank"], kind="stable")
        for index, record in zip(frame.index, frame.to_dict("records"), strict=True):
            key = tuple(record[k] for k in KEYS)
            out.setdefault(key, []).append(_driver(record, path, int(index) + 1))
        return out
    raise InputError(
        path, "expected a 'drivers' column or long-format driver rows", column="drivers"
    )


def _driver(record: Mapping[str, object], path: Source, row: int) -> Driver:
    driver = Driver.from_record(record)
    if driver is None:
        raise InputError(
            path, "expected each driver to have a feature and a numeric contribution", row=row
        )
    return driver


def parse_levers(levers: pd.DataFrame, path: Source) -> dict[tuple, Levers]:
    """Levers per (region, cluster, year): one row per cluster with a ``changes`` column (JSON text
    or list of {feature, from, to}), ``reachable``, ``target_stage``, ``predicted_after``,
    ``p_target_after``, ``reason``."""
    _require(levers, [*KEYS, "reachable"], path, "levers")
    out: dict[tuple, Levers] = {}
    for pos, record in enumerate(levers.to_dict("records")):
        key = tuple(record[k] for k in KEYS)
        changes = tuple(
            LeverChange(
                feature=str(c.get("feature")),
                from_value=finite(c.get("from", c.get("from_value"))),
                to_value=finite(c.get("to", c.get("to_value"))),
            )
            for c in cell_records(record.get("changes"), path, "changes", pos + 1)
        )
        reachable = record.get("reachable")
        out[key] = Levers(
            target_stage=optional_text(record.get("target_stage")),
            reachable=bool(reachable) if optional_text(reachable) else False,
            changes=changes,
            predicted_after=optional_text(record.get("predicted_after")),
            p_target_after=finite(record.get("p_target_after")),
            reason=optional_text(record.get("reason")),
            runner_up_after=optional_text(record.get("runner_up_after")),
            p_runner_up_after=finite(record.get("p_runner_up_after")),
        )
    return out


def cluster_cases(
    explanations: pd.DataFrame,
    levers: pd.DataFrame | None,
    features: pd.DataFrame,
    region: str,
    *,
    sources: Mapping[str, Source] | None = None,
) -> list[ClusterCase]:
    """One case per cluster of ``region`` (its latest explained year) from the three inputs.

    ``sources`` names the files in error messages (keys explanations, levers, features).
    """
    where: dict[str, Source] = {"explanations": None, "levers": None, "features": None}
    where.update(sources or {})
    _require(explanations, KEYS, where["explanations"], "explanations")
    _require(features, KEYS, where["features"], "features")
    drivers = parse_drivers(explanations, where["explanations"])
    lever_map = parse_levers(levers, where["levers"]) if levers is not None else {}
    wide = explanations.drop_duplicates(KEYS)
    rows = latest_rows(wide, region, where["explanations"])
    values = features.drop_duplicates(KEYS, keep="last").set_index(KEYS)
    cases = []
    for record in rows.to_dict("records"):
        key = tuple(record[k] for k in KEYS)
        probabilities = {s: finite(record.get(col)) for s, col in PROBA.items() if col in record}
        probs = {s: p for s, p in probabilities.items() if p is not None}
        stage = optional_text(record.get("stage")) or (max(probs, key=probs.get) if probs else None)
        if stage not in STAGES:
            raise InputError(
                where["explanations"], f"stage must be one of {', '.join(STAGES)}", column="stage"
            )
        feature_values = values.loc[key].to_dict() if key in values.index else {}
        cases.append(
            ClusterCase(
                region=str(record["region"]),
                cluster=str(record["cluster"]),
                year=int(record["year"]),
                stage=stage,
                probabilities=probs,
                drivers=tuple(drivers.get(key, [])),
                values=feature_values,
                levers=lever_map.get(key),
            )
        )
    return cases
