"""The `clusterstage` command line. Each command is a thin wrapper over one module of pipeline/.

Exit codes: 0 ok, 2 bad input or usage (one line on stderr), 1 a bug (traceback).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import typer

from features.errors import InputError
from pipeline import paths
from pipeline.params import ParamsError

app = typer.Typer(
    name="clusterstage",
    help="Identify the development stage of regional industrial clusters and recommend policy.",
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
    mapping: dict[str, str | None] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(None, f"--column {pair!r}: expected CONTRACT=SOURCE (SOURCE may be empty)")
        key, _, value = pair.partition("=")
        mapping[key.strip()] = value.strip() or None
    return mapping


@app.command()
@_one_line_errors
def run(params: ParamsOption = paths.PARAMS) -> None:
    """Run the whole pipeline (dvc repro) on params.yaml."""
    from pipeline.run import run_pipeline

    raise typer.Exit(run_pipeline(params))


@app.command()
@_one_line_errors
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the reference world to.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20240601,
    scale: Annotated[float, typer.Option(help="Multiplies the number of firms.")] = 1.0,
) -> None:
    """Simulate the synthetic reference world (firms, panel, labels)."""
    from pipeline.generate import generate_world

    generate_world(out, seed=seed, scale=scale)


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
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .parquet (or .csv).")],
    column: Annotated[
        list[str] | None,
        typer.Option(help="CONTRACT=SOURCE column mapping; SOURCE empty = absent. Repeatable."),
    ] = None,
    total_label: Annotated[str, typer.Option(help="Label of total rows.")] = "Insgesamt",
) -> None:
    """Build every indicator: one row per region x cluster x year."""
    from pipeline.build_features import features_command

    features_command(input, grain=grain, out=out, columns=parse_columns(column), total_label=total_label)


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
    model: Annotated[str | None, typer.Option(help="MLflow model URI or local model folder.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Drivers per row.")] = 3,
    region: Annotated[str | None, typer.Option(help="Score only this region.")] = None,
) -> None:
    """Score clusters: stage and per-stage probabilities per region x cluster x year."""
    from pipeline.score import score_command

    score_command(input, grain=grain, out=out, model=model, top_k=top_k, region=region)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Start the MLflow UI on the project's tracking store."""
    import subprocess

    cmd = [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", paths.TRACKING_URI,
        "--default-artifact-root", paths.ARTIFACT_ROOT.resolve().as_uri(),
        "--host", host, "--port", str(port),
    ]
    raise typer.Exit(subprocess.call(cmd))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
