"""`clusterstage score`: stage, drivers and recommendations for every row of an input of any size.

Memory stays bounded by the size of a group of regions, not of the input:

1. **Read** the input in chunks (pipeline.chunked_input: pandas ``read_csv(chunksize=...)`` /
   Parquet record batches, only the columns the grain uses). Each chunk's rows are checked one
   by one (features.row_checks.check_rows): bad rows are set aside with their reason, good rows
   are spilled to a temporary Parquet folder partitioned by a hash of the region
   (pipeline.spill), so that all rows of a region land in one bucket. National total rows (panel
   grain) are kept in memory (a few per cluster-year).
2. **Prepare** each bucket (a bounded group of regions, features.groups): repeated keys, total
   rows, firm aggregation (firms grain), shared region names (cmp grain); the bucket's share of
   the national totals is summed, and, once those are known, its share of the co-location
   counts (features.national_context).
3. **Score** each bucket with the national context of the whole input (so its indicators equal a
   one-shot build of the whole input), spilling its table, sorted by ``row``, to Parquet.
4. **Write** the scored rows in input order, one window of row numbers at a time read from every
   bucket's table (Parquet statistics skip the row groups outside the window), then the rows
   without a row number (aggregated from firm rows), into a temporary file (pipeline.score_output)
   renamed onto OUT only when everything succeeded (pipeline.io.atomic_path).

Output columns: models.scoring. Rows that cannot be scored keep their row number and get the
reason in ``error``; stderr gets one line per kind of them (models.score_summary): rows that
could not be used, rows without any change over time known, and total rows (a note: they are
reference).
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pandas as pd

from features.cmp_rows import CmpLevels, cmp_rows
from features.errors import InputError
from features.groups import (
    Group,
    empty_firms,
    empty_panel,
    given_national,
    national_errors,
    prepare_group,
    region_years,
    shared_region_names,
    split_national,
)
from features.loaders import NATIONAL_TOTALS, check_region_totals
from features.national_context import cooccurrence, national_context, partial_totals
from features.row_checks import ROW, check_rows, no_errors
from features.schemas import TOTAL_LABEL
from models.bundle import StageModel
from models.defaults import DEFAULT_TOP_K
from models.score_summary import ScoreSummary
from models.scoring import N_RECOMMENDATIONS, conform, default_knowledge_base, score_group
from pipeline.chunked_input import SCHEMAS, Source, grain_reader
from pipeline.io import atomic_path, check_writable, writing
from pipeline.model_source import resolve_model
from pipeline.params import accepts, expected_of
from pipeline.score_output import Writer, output_schema
from pipeline.spill import Spill
from policy.knowledge_base import load_knowledge_base
from policy.ranking import DEFAULT_SCORING, Scoring

OUTPUT_SUFFIXES = (".parquet", ".csv", ".jsonl")
CHUNK_ROWS = 100_000  # input rows read at a time
GROUP_ROWS = 100_000  # input rows per group of regions (aimed at; regions are never split)

# The settings of the output that params.yaml holds too, each the key of an option (--top-k,
# --k, --driver-weight, ...): the option defaults to the key's default, takes what params.yaml
# takes there, and dvc.yaml's score stage passes it from the key, as recommend reads the
# recommend.* ones (pipeline.params.RecommendParams.scoring), so that both rank alike. Not among
# them: recommend.lever_weight, since score computes no levers (its weight changes nothing here).
SETTINGS = {
    "top_k": "explain.top_k",
    "k": "recommend.k",
    "driver_weight": "recommend.driver_weight",
    "high_percentile": "recommend.high_percentile",
    "low_percentile": "recommend.low_percentile",
    "near_tie_margin": "recommend.near_tie_margin",
    "total_label": "data.total_label",
}
SCORING_SETTINGS = ("driver_weight", "high_percentile", "low_percentile", "near_tie_margin")


@contextmanager
def _progress(enabled: bool) -> Iterator[object]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=False,
    ) as progress:
        yield progress


def option_of(setting: str) -> str:
    """The command-line option of a setting: 'top_k' -> '--top-k'."""
    return "--" + setting.replace("_", "-")


def check_settings(*, top_k: int, k: int, scoring: Scoring, total_label: str) -> None:
    """An InputError naming the option for a value params.yaml would refuse for its key
    (``SETTINGS``): e.g. '--k 0: expected a whole number from 1 to 30 (params.yaml recommend.k)'."""
    values = {"top_k": top_k, "k": k, "total_label": total_label}
    values.update({name: getattr(scoring, name) for name in SCORING_SETTINGS})
    for name, key in SETTINGS.items():
        value = values[name]
        if not accepts(key, value):
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise InputError(
                None, f"{option_of(name)} {shown}: expected {expected_of(key)} (params.yaml {key})"
            )


def score_file(
    input: str | Path,
    out: str | Path,
    model: StageModel,
    *,
    grain: str,
    top_k: int = DEFAULT_TOP_K,
    region: str | None = None,
    kb=None,
    columns: Mapping[str, str | None] | None = None,
    total_label: str = TOTAL_LABEL,
    chunk_rows: int = CHUNK_ROWS,
    group_rows: int = GROUP_ROWS,
    n_recommendations: int = N_RECOMMENDATIONS,
    scoring: Scoring = DEFAULT_SCORING,
    progress: bool = True,
) -> ScoreSummary:
    """Score every row of ``input`` (a CSV or Parquet file of the grain) into ``out``.

    See the module docstring for how; models.scoring for the columns. ``columns`` maps contract
    columns onto the file's (`--column CONTRACT=SOURCE`, as `clusterstage features` takes it;
    panel and firms grains). ``top_k`` drivers and ``n_recommendations`` instruments per row,
    ranked with ``scoring`` (policy.ranking), each checked as ``check_settings`` does. Bad input
    as a whole (no such file, a required column missing, a bad column mapping, not CSV /
    Parquet, a bad setting) is an InputError before anything is written; a failure midway leaves
    nothing at ``out``.
    """
    input, out = Path(input), Path(out)
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(out, "expected an output ending in .parquet, .csv or .jsonl")
    if grain not in ("panel", "firms", "cmp"):
        raise InputError(input, f"unknown grain {grain!r}; expected panel, firms or cmp")
    check_settings(top_k=top_k, k=n_recommendations, scoring=scoring, total_label=total_label)
    kb = kb if kb is not None else default_knowledge_base()
    source = Source.open(input)
    reader, names, numbers = grain_reader(source, grain, chunk_rows, columns)
    n_buckets = max(1, math.ceil(source.rows_hint / max(group_rows, 1)))
    summary = ScoreSummary()
    with ExitStack() as stack:
        bar = stack.enter_context(_progress(progress))
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clusterstage-")))
        spill = Spill(root, n_buckets)

        # 1. read, check, spill
        national_rows: list[pd.DataFrame] = []
        # Region-years of cluster rows without a stated total, and those of total rows.
        untotalled: list[pd.DataFrame] = []
        totalled: list[pd.DataFrame] = []
        levels: CmpLevels | None = None
        reading = bar.add_task("read", total=source.rows_hint)
        first = 1
        for chunk in reader:
            if grain == "cmp":
                rows, errors, found = cmp_rows(chunk, first_row=first, file=input, numbers=numbers)
                levels = found if levels is None else levels.merge(found)
            else:
                rows, errors = check_rows(
                    chunk,
                    SCHEMAS[grain],
                    first_row=first,
                    file=input,
                    names=names,
                    numbers=numbers,
                )
                if grain == "panel":
                    rows, national = split_national(rows, total_label)
                    if len(national):
                        national_rows.append(national)
                    keys, totals = region_years(rows, errors, total_label)
                    untotalled.append(keys)
                    totalled.append(totals)
            spill.add("rows", rows)
            spill.add("errors", errors)
            first += len(chunk)
            bar.update(reading, completed=first - 1)
        bar.update(reading, total=first - 1)
        if levels is not None:
            levels.check(input)
        if grain == "panel" and total_label and total_label.strip():
            check_region_totals(
                pd.concat(untotalled).sort_values(ROW, kind="stable"),
                pd.concat(totalled),
                input,
                total_label.strip(),
            )
        shared = shared_region_names(levels.names) if levels is not None else set()
        national = pd.concat(national_rows, ignore_index=True) if national_rows else None
        given = given_national(national, total_label, source.attrs.get(NATIONAL_TOTALS))

        # 2. prepare each group of regions: its panel, its errors, its share of the totals
        preparing = bar.add_task("prepare", total=2 * n_buckets)
        partials, regions = [], set()
        for b in range(n_buckets):
            rows = spill.read("rows", b)
            errors = spill.read("errors", b)
            if rows is None and grain != "firms":
                group = Group(empty_panel(), no_errors() if errors is None else errors)
            else:
                # Firm rows that failed still spoil their cluster-year, even in a group whose
                # every firm row failed.
                rows = empty_firms() if rows is None else rows
                group = prepare_group(
                    rows, grain, errors=errors, total_label=total_label, shared_names=shared
                )
            spill.save("panel", b, group.panel)
            spill.save("failed", b, group.errors)
            partials.append(partial_totals(group.panel))
            regions.update(group.panel["region"].unique())
            regions.update(group.errors["region"].dropna().unique())
            bar.advance(preparing)
        if region is not None and region not in regions:
            raise InputError(input, f"no rows for region {region!r}", column="region")
        context = national_context(partials, given, total_label=total_label)
        counts = []
        for b in range(n_buckets):
            counts.append(cooccurrence(spill.load("panel", b), context))
            bar.advance(preparing)
        context = context.with_cooccurrence(counts)

        # 3. score each group into the spill
        schema = output_schema(top_k)
        scoring_task = bar.add_task("score", total=n_buckets)
        for b in range(n_buckets):
            group = Group(spill.load("panel", b), spill.load("failed", b))
            if region is not None:
                group = Group(
                    group.panel[group.panel["region"] == region].reset_index(drop=True),
                    group.errors[group.errors["region"] == region],
                )
            table = score_group(
                group,
                context,
                model,
                top_k=top_k,
                kb=kb,
                n_recommendations=n_recommendations,
                scoring=scoring,
            )
            spill.save_scored(b, table, schema)
            summary.add(table)
            bar.advance(scoring_task)
        if national is not None and region is None:
            table = conform(national_errors(national, total_label), top_k)
            spill.save_scored(n_buckets, table, schema)
            summary.add(table)

        # 4. write the output in input order (buckets hold regions, not runs of rows)
        with atomic_path(out) as tmp, writing(out):
            writer = Writer(tmp, suffix, top_k)
            try:
                for table in spill.scored_in_row_order(first - 1, group_rows):
                    writer.write(table)
            finally:
                writer.close()
    return summary


def score_command(
    input: Path,
    *,
    grain: str,
    out: Path,
    model: str | None,
    top_k: int,
    region: str | None,
    columns: Mapping[str, str | None] | None = None,
    knowledge_base: Path | None = None,
    k: int = N_RECOMMENDATIONS,
    scoring: Scoring = DEFAULT_SCORING,
    total_label: str = TOTAL_LABEL,
) -> None:
    """The CLI command: check the settings and that OUT can be written, resolve the model, score,
    and say on stderr how many rows were not scored, and why. ``knowledge_base``: the policy file
    the recommendations come from (None: the packaged one), read before any scoring, so a bad one
    costs nothing; a bad setting costs nothing either (``score_file`` checks it by the same rule,
    for callers that come to it directly)."""
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(out, "expected an output ending in .parquet, .csv or .jsonl")
    check_settings(top_k=top_k, k=k, scoring=scoring, total_label=total_label)
    check_writable(out, inputs=[input])  # before the model is downloaded and the input read
    kb = default_knowledge_base() if knowledge_base is None else load_knowledge_base(knowledge_base)
    stage_model = resolve_model(model)
    summary = score_file(
        input,
        out,
        stage_model,
        grain=grain,
        top_k=top_k,
        region=region,
        columns=columns,
        kb=kb,
        total_label=total_label,
        n_recommendations=k,
        scoring=scoring,
    )
    for line in summary.lines(Path(out)):
        print(line, file=sys.stderr)
