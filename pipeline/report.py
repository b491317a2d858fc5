"""DVC stage `report`: one self-contained HTML page per region for the analyst who reads it.

Reads what the earlier stages wrote (``data/processed/features.parquet``,
``reports/explanations.parquet`` and ``reports/levers.parquet`` from `explain`,
``reports/recommendations.jsonl`` and ``reports/portfolio.json`` from `recommend`,
``reports/metrics.json``, ``reports/per_region.csv`` and ``reports/mlflow_run.json`` from `train`,
``data/model/model.json``) and writes ``reports/<region>.html``: the synthetic-data banner,
the stage summary, the LQ x growth bubble chart, one card per cluster (stage probabilities, a
SHAP waterfall of its drivers, recommendations with their reasons and KPIs, levers), the region's
policy portfolio with the four trap guards, and a model card.

A region other than ``score.region`` is explained and recommended for on request, in memory, with
the current model (the page says so). The page needs no network and runs no JavaScript: CSS is
inline, charts are inline SVG built by the templates, a Content-Security-Policy forbids scripts
and remote loads, and every text from the inputs goes through Jinja's autoescaping.

This module renders and writes the page; reading its inputs is `pipeline.report_inputs`, its view
models `pipeline.report_views`, the model card `pipeline.model_card`, the charts
`pipeline.report_charts`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from features.errors import InputError
from pipeline import paths
from pipeline.io import atomic_path, check_writable
from pipeline.params import load_params
from pipeline.report_charts import STAGE_COLOURS, fmt_number, fmt_percent
from pipeline.report_inputs import ReportInputs, load_inputs
from pipeline.report_views import context

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"


def file_name(region: str) -> str:
    """The region's name as the page's file name: unchanged, as dvc.yaml's report stage names its
    output (``reports/${score.region}.html``), so that the command and the pipeline write one
    file. Only a separator or control character, which score.region may not hold, becomes '_'
    (a region asked for with --region is not checked like score.region)."""
    return re.sub(r"[/\\\x00-\x1f]", "_", region)


HTML_SUFFIXES = (".html", ".htm")


def default_output(region: str, reports: Path = paths.REPORTS) -> Path:
    return reports / f"{file_name(region)}.html"


@cache
def _environment() -> jinja2.Environment:
    # imported lazily with the rest of the report
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, digits=0: fmt_percent(v, digits=digits)
    env.filters["num"] = fmt_number
    env.filters["stage_colour"] = lambda stage: STAGE_COLOURS.get(str(stage), "#777777")
    return env


def render_report(inputs: ReportInputs) -> str:
    """The page as one HTML string."""
    return _environment().get_template("report.html.j2").render(**context(inputs))


def write_report(inputs: ReportInputs, out: str | Path) -> Path:
    """Render and write atomically: a failure leaves no partial page behind."""
    out = Path(out)
    html = render_report(inputs)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out


def report_command(
    params_path: str | Path = paths.PARAMS, region: str | None = None, out: Path | None = None
) -> Path:
    """`clusterstage report`: the page of ``region`` (default score.region) to ``out`` (default
    ``reports/<region>.html``, the file dvc.yaml's report stage writes)."""
    params = load_params(params_path)
    target = out or default_output(params.score.region if region is None else region)
    # An -o naming params.yaml, metrics.json or the features would replace an input with HTML;
    # none of the report's inputs is an HTML page.
    if target.suffix.lower() not in HTML_SUFFIXES:
        raise InputError(target, "cannot write: expected an .html file name")
    # Before the work, not after it; the default keeps the region's name, which may be too long,
    # and check_writable's first look at a name the file system refuses raises a bare OSError.
    try:
        out = check_writable(target)
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise InputError(target, f"cannot write: {reason}") from None
    inputs = load_inputs(params, region)
    inputs = replace(inputs, generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return write_report(inputs, out)
