"""The `clusterstage` command line. Each command is a thin wrapper over one module of pipeline/.

Exit codes: 0 ok, 2 bad input or usage (one line on stderr), 1 a bug (traceback).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer

from features.errors import InputError
from features.schemas import TOTAL_LABEL
from pipeline import paths
from pipeline.params import ParamsError, default_of

app = typer.Typer(
    name="clusterstage",
    help="Identify the development stage of regional industrial clusters and recommend policy.",
    epilog="Exit codes: 0 ok; 2 bad input or usage (one line naming the file, column and row); "
    "1 a bug.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Grain = Literal["panel", "firms", "cmp"]
F = TypeVar("F", bound=Callable[..., object])

ParamsOption = Annotated[Path, typer.Option("--params", help="The params file.")]


def _one_line_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)
        except (InputError, ParamsError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def parse_columns(pairs: list[str] | None) -> dict[str, str | None]:
    """`--column cluster=industry --column establishments=` -> {'cluster': 'industry', ...}."""
    from features.loaders import mapped_twice, normalise_name, source_key

    mapping: dict[str, str | None] = {}
    given: dict[str, str | None] = {}  # snake_case contract -> its first source
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(
                None, f"--column {pair!r}: expected CONTRACT=SOURCE (SOURCE may be empty)"
            )
        key, _, value = pair.partition("=")
        source = value.strip() or None
        contract = normalise_name(key)
        if contract in given and source_key(given[contract]) != source_key(source):
            raise InputError(None, mapped_twice(contract, given[contract], source, "--column"))
        given.setdefault(contract, source)
        mapping[key.strip()] = source
    return mapping


@app.command()
@_one_line_errors
def run(
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Run a variant as a DVC experiment (dvc exp run -S): checked first like "
            "params.yaml, then written into it. Repeatable.",
        ),
    ] = None,
) -> None:
    """Run the whole pipeline (dvc repro) on ./params.yaml.

    DVC's stages read ./params.yaml; for a variant without editing it by hand, use
    `--set key=value` (e.g. --set train.max_depth=6), and compare variants with
    `dvc exp show`. A variant that fails puts params.yaml back, and the last good outputs as a
    failed run does.
    """
    from pipeline.run import run_pipeline

    raise typer.Exit(run_pipeline(paths.PARAMS, set_ or ()))


@app.command()
@_one_line_errors
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the reference world to.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = default_of("generate.seed"),
    scale: Annotated[float, typer.Option(help="Multiplies the number of firms.")] = default_of(
        "generate.scale"
    ),
    total_label: Annotated[
        str, typer.Option(help="Region label of the panel's national rows.")
    ] = TOTAL_LABEL,
) -> None:
    """Simulate the synthetic reference world (firms, panel with national rows, labels)."""
    from pipeline.generate import generate_world

    generate_world(out, seed=seed, scale=scale, total_label=total_label)


@app.command()
@_one_line_errors
def ingest(params: ParamsOption = paths.PARAMS) -> None:
    """Validate and normalise the input named in params.yaml into the panel grain."""
    from pipeline.ingest import ingest_from_params

    ingest_from_params(params)


@app.command()
@_one_line_errors
def features(
    input: Annotated[Path, typer.Argument(help="CSV or Parquet input.")],
    grain: Annotated[Grain, typer.Option(help="What one input row is.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .parquet, .csv or .jsonl.")],
    column: Annotated[
        list[str] | None,
        typer.Option(help="CONTRACT=SOURCE column mapping; SOURCE empty = absent. Repeatable."),
    ] = None,
    total_label: Annotated[str, typer.Option(help="Label of total rows.")] = TOTAL_LABEL,
    relatedness: Annotated[
        Path | None,
        typer.Option(
            help="related_clusters.json for relatedness density (default: the one beside a cmp "
            "input, else co-location in the input)."
        ),
    ] = None,
) -> None:
    """Build every indicator: one row per region x cluster x year."""
    from pipeline.build_features import features_command

    features_command(
        input,
        grain=grain,
        out=out,
        columns=parse_columns(column),
        total_label=total_label,
        relatedness=relatedness,
    )


@app.command("build-features")
@_one_line_errors
def build_features(params: ParamsOption = paths.PARAMS) -> None:
    """The DVC stage `features`: every indicator of the ingested panel (data/processed)."""
    from pipeline.build_features import features_from_params

    features_from_params(params)


@app.command()
@_one_line_errors
def label(params: ParamsOption = paths.PARAMS) -> None:
    """Training labels from the source params.yaml names (expert, quadrant, trajectory)."""
    from pipeline.label import label_from_params

    label_from_params(params)


@app.command()
@_one_line_errors
def catalogue(
    out: Annotated[Path, typer.Option("-o", "--out", help="Markdown file to write.")] = Path(
        "docs/features.md"
    ),
) -> None:
    """Write the feature catalogue as Markdown (docs/features.md is generated by this)."""
    from pipeline.build_features import catalogue_command

    catalogue_command(out)


@app.command()
@_one_line_errors
def train(params: ParamsOption = paths.PARAMS) -> None:
    """Train and evaluate (leave-one-region-out), tracked as one MLflow run."""
    from pipeline.train import train_from_params

    train_from_params(params)


@app.command()
@_one_line_errors
def score(
    input: Annotated[Path, typer.Argument(help="CSV or Parquet input.")],
    grain: Annotated[Grain, typer.Option(help="What one input row is.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .parquet, .csv or .jsonl.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="MLflow model URI or local model folder (default: models:/clusterstage@champion)."
        ),
    ] = None,
    top_k: Annotated[
        int, typer.Option("--top-k", help="Drivers per row (params.yaml explain.top_k).")
    ] = default_of("explain.top_k"),
    region: Annotated[str | None, typer.Option(help="Score only this region.")] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(help="CONTRACT=SOURCE column mapping; SOURCE empty = absent. Repeatable."),
    ] = None,
    knowledge_base: Annotated[
        Path | None,
        typer.Option(help="Policy knowledge base (default: the packaged policy/instruments.yaml)."),
    ] = None,
    k: Annotated[
        int, typer.Option("--k", help="Recommendations per row (params.yaml recommend.k).")
    ] = default_of("recommend.k"),
    driver_weight: Annotated[
        float, typer.Option(help="Weight of the driver fit in an instrument's score.")
    ] = default_of("recommend.driver_weight"),
    high_percentile: Annotated[
        float, typer.Option(help="A driver at or above this percentile is high.")
    ] = default_of("recommend.high_percentile"),
    low_percentile: Annotated[
        float, typer.Option(help="A driver at or below this percentile is low.")
    ] = default_of("recommend.low_percentile"),
    near_tie_margin: Annotated[
        float,
        typer.Option(help="Top two stage probabilities this close: prefer measures fitting both."),
    ] = default_of("recommend.near_tie_margin"),
    total_label: Annotated[
        str, typer.Option(help="Label of total rows (params.yaml data.total_label).")
    ] = default_of("data.total_label"),
) -> None:
    """Score every row: stage, probabilities, drivers, recommendations, range flags (or why not).

    Recommendations are ranked as `recommend` ranks them, before its portfolio
    guards and without levers. Each setting defaults to params.yaml's default
    for its key (recommend.*); the pipeline's score stage passes params.yaml's.
    """
    from pipeline.score import score_command
    from policy.ranking import Scoring

    score_command(
        input,
        grain=grain,
        out=out,
        model=model,
        top_k=top_k,
        region=region,
        columns=parse_columns(column),
        knowledge_base=knowledge_base,
        k=k,
        scoring=Scoring(
            driver_weight=driver_weight,
            high_percentile=high_percentile,
            low_percentile=low_percentile,
            near_tie_margin=near_tie_margin,
        ),
        total_label=total_label,
    )


@app.command()
@_one_line_errors
def explain(params: ParamsOption = paths.PARAMS) -> None:
    """Drivers (TreeSHAP) and levers of the target region's clusters; global SHAP plots."""
    from pipeline.explain import explain_from_params

    explain_from_params(params)


@app.command()
@_one_line_errors
def recommend(params: ParamsOption = paths.PARAMS) -> None:
    """Policy recommendations for the target region's clusters, checked against the four traps."""
    from pipeline.recommend import recommend_from_params

    recommend_from_params(params)


@app.command()
@_one_line_errors
def instruments(
    out: Annotated[Path, typer.Option("-o", "--out", help="Markdown file to write.")] = Path(
        "docs/policy.md"
    ),
) -> None:
    """Write the policy knowledge base as Markdown (docs/policy.md is generated by this)."""
    from pipeline.recommend import instruments_command

    instruments_command(out)


@app.command()
@_one_line_errors
def report(
    params: ParamsOption = paths.PARAMS,
    region: Annotated[
        str | None, typer.Option(help="Region to report on (default: params score.region).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="HTML file to write (default: reports/<region>.html).",
        ),
    ] = None,
) -> None:
    """One self-contained HTML page per region: stages, drivers, levers, policy, model card."""
    from pipeline.report import report_command

    report_command(params, region=region, out=out)


@app.command()
@_one_line_errors
def ui(
    port: Annotated[int, typer.Option(help="Port to listen on, at the --host interface.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Start the MLflow UI on the project's tracking store (mlflow.db in this folder)."""
    import subprocess

    from pipeline.tracking import require_store

    db = require_store()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--default-artifact-root",
        paths.ARTIFACT_ROOT.resolve().as_uri(),
        "--host",
        host,
        "--port",
        str(port),
    ]
    # The server runs in a session of its own, and a signal to this command stops all of it:
    # MLflow's workers would otherwise outlive a plain SIGTERM and keep the port.
    server = subprocess.Popen(cmd, start_new_session=True)

    def stop(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    code = server.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)  # workers left behind by a server that died
    raise typer.Exit(0 if code < 0 else code)


def _exit_on_signal(signum: int, _frame: object) -> None:
    # Unwinds like Ctrl-C, so that temporary outputs and spill folders are removed by their
    # `finally` and context managers; a repeat of the signal must not cut that cleanup short.
    for other in _EXIT_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise SystemExit(128 + signum)


# What `timeout`, CI cancellation, `docker stop` and a closed terminal send.
_EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def main() -> None:
    """The console script: usage errors become one line, like every other bad input; SIGTERM
    and SIGHUP exit (128 + the signal) after the same cleanup as Ctrl-C."""
    for signum in _EXIT_SIGNALS:
        signal.signal(signum, _exit_on_signal)
    try:
        code = app(standalone_mode=False, prog_name="clusterstage")
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except typer.TyperException as err:  # click's usage and parameter errors
        if type(err).__name__ == "NoArgsIsHelpError":
            err.show()  # the help text itself
            sys.exit(2)
        ctx = getattr(err, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = " ".join(err.format_message().split()).replace("Value error, ", "")
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
