"""Writing outputs safely: to a temporary sibling first, renamed into place only when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import pandas as pd

from features.errors import InputError

# A cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# CSV records end in CRLF (RFC 4180): the csv module quotes a cell holding any character of the
# line terminator, and with a bare LF a CR inside a cell went out unquoted, so Excel and our own
# loader split the record there.
CSV_LINE_END = "\r\n"


def check_not_input(target: str | Path, inputs: Iterable[str | Path]) -> None:
    """InputError when ``target`` is one of ``inputs``, however spelt (another relative path, a
    symlink, a hard link): the output would replace the file it is computed from."""
    target = Path(target)
    for source in inputs:
        source = Path(source)
        if target.exists() and source.exists() and os.path.samefile(target, source):
            raise InputError(
                target, f"cannot write: it is the input file {source}; expected another output path"
            )


def check_writable(
    target: str | Path, *, inputs: Iterable[str | Path] = (), folder: bool = False
) -> Path:
    """``target`` as a Path, once it is known that ``atomic_path`` can write it; else InputError
    ("cannot write: ..."), so that a command fails at once instead of after all its work.

    The target must not be one of ``inputs`` (``check_not_input``) nor a folder, and a file must
    be creatable in its folder or, when that folder does not exist yet (``atomic_path`` creates
    it), in the nearest one that does. That is tried for real, with the temporary name
    ``atomic_path`` would use, and removed at once: permission bits do not tell (root may write
    anywhere, /proc takes no new files at all).

    With ``folder``, the target is a folder that ``atomic_outputs`` replaces as a whole: it must
    not be a file, and when it exists a file must also be creatable inside it, since its old
    files are removed once the new folder is in place (an immutable folder fails here, not after
    the work).
    """
    target = Path(target)
    # A name too long for the file system makes even exists() and is_dir() raise.
    with writing(target):
        check_not_input(target, inputs)
        if folder and target.exists() and not target.is_dir():
            raise InputError(target, "cannot write: it is a file, expected a folder")
        if not folder and target.is_dir():
            raise InputError(target, "cannot write: it is a folder, expected a file path")
        parent = target.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        is_folder = parent.is_dir()
        replaces_folder = folder and target.is_dir()
    if not is_folder:
        raise InputError(target, f"cannot write: {parent} is not a folder")
    _probe(target, parent)
    if replaces_folder:
        _probe(target, target)
    return target


def _probe(target: Path, folder: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise InputError(
            target, f"cannot write: no file can be created in {folder} ({_reason(err)})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _reason(err: OSError) -> str:
    return (err.strerror or type(err).__name__).lower()


@contextlib.contextmanager
def writing(target: str | Path, hint: str = "") -> Iterator[None]:
    """An OSError inside (a full disk, a file too large, permission denied) as the InputError
    "cannot write: <reason><hint>" naming ``target``: the system refused, the project has no bug."""
    try:
        yield
    except OSError as err:
        raise InputError(target, f"cannot write: {_reason(err)}{hint}") from None


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); outputs get the usual umask-derived mode instead.
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)
    try:
        yield tmp_path
        with writing(target):
            os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_outputs(
    files: Iterable[str | Path] = (),
    folders: Iterable[str | Path] = (),
    *,
    inputs: Iterable[str | Path] = (),
) -> None:
    """``check_writable`` for every output of a stage (``folders`` as whole folders), so that a
    stage can refuse an unwritable one before its work; ``atomic_outputs`` checks them again."""
    for target in files:
        check_writable(target, inputs=inputs)
    for target in folders:
        check_writable(target, inputs=inputs, folder=True)


@contextlib.contextmanager
def atomic_outputs(
    files: Iterable[str | Path] = (),
    folders: Iterable[str | Path] = (),
    *,
    inputs: Iterable[str | Path] = (),
) -> Iterator[dict[Path, Path]]:
    """A stage's several outputs, replaced together: yield {target: temporary path}, and move
    every one into place only once the block has written them all.

    Every target is checked first (``check_outputs``). Each gets a temporary folder next to it
    (``.<name>.<random>.tmp``, on the same file system, so that the move is a rename) holding
    the path yielded, which has the target's own name, so writers that go by the suffix
    (``write_table``) work unchanged. A folder target's path is created, empty, with the mode a
    new folder gets; a file target's path is for the block to create (``write_table``,
    ``Path.write_text``: the usual umask-derived mode). An InputError naming a yielded path
    (``write_table``, ``writing``) is raised naming its target instead.

    When the block fails, or is left by an exception, Ctrl-C or SystemExit (SIGTERM and SIGHUP
    raise one, pipeline.cli), every temporary is removed and no target is touched. When it
    succeeds, the targets are replaced one after another: a file by ``os.replace``, a folder as a
    whole by moving the old one aside, the new one in, and only then removing the old one (it is
    put back if the new one cannot be moved in; between the two renames the folder is absent).
    All writing happens before the first rename, so only a failure or kill during these few
    renames, at the very end, can leave some targets new and others old. The checks make a
    refused rename unlikely there (each folder took a new file), not impossible (an immutable
    file, a file system gone read-only during the block).
    """
    files = [Path(f) for f in files]
    folders = [Path(f) for f in folders]
    check_outputs(files, folders, inputs=inputs)
    holders: list[Path] = []  # the temporary folders, removed whatever happens
    staged: dict[Path, Path] = {}
    try:
        for target in [*files, *folders]:
            with writing(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                holder = tempfile.mkdtemp(
                    prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
                )
                holders.append(Path(holder))
                staged[target] = Path(holder) / target.name
                if target in folders:
                    staged[target].mkdir()
        try:
            yield dict(staged)
        except InputError as err:
            named = _named_for_target(err, staged)
            if named is err:
                raise
            raise named from None
        for target, path in staged.items():
            if not path.exists():
                raise RuntimeError(f"{target} was not written: {path} is missing")
        # Folders first: moving an old folder aside is the step likeliest to be refused, and
        # refused before any file is replaced it leaves every output as it was.
        for target in folders:
            _replace_folder(staged[target], target)
        for target in files:
            with writing(target):
                os.replace(staged[target], target)
    finally:
        for holder in holders:
            # Also removes an old folder moved aside; what cannot be removed stays hidden (a
            # dot name), no output is ever left half written.
            shutil.rmtree(holder, ignore_errors=True)


def _replace_folder(new: Path, target: Path) -> None:
    # No rename swaps two folders, and os.replace refuses a folder that is not empty.
    old = new.with_name(f"{new.name}.old")  # inside the temporary folder, removed with it
    with writing(target):
        if target.exists() or target.is_symlink():
            os.replace(target, old)
        try:
            os.replace(new, target)
        except BaseException:
            if old.exists() or old.is_symlink():
                os.replace(old, target)  # the previous folder back
            raise


def _named_for_target(err: InputError, staged: dict[Path, Path]) -> InputError:
    """``err`` naming the target, or the file inside a folder target, for a path of ``staged``;
    ``err`` itself when it names none."""
    if err.file is None:
        return err
    path = Path(err.file)
    for target, tmp in staged.items():
        if path == tmp or tmp in path.parents:
            named = target / path.relative_to(tmp)
            return InputError(named, err.message, column=err.column, row=err.row)
    return err


def defuse_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would evaluate with a single quote."""
    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_string_dtype(series) or series.dtype == object:
            mask = series.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START))
            if mask.any():
                out[col] = series.where(~mask, "'" + series.astype("string"))
    return out


def restore_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` read back from a CSV that ``to_csv`` wrote, with the quote ``defuse_formulas``
    put before a text cell taken off again. A cell that itself began with a quote and one of
    FORMULA_START reads back one quote short: the CSV cannot tell the two apart."""
    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_string_dtype(series) or series.dtype == object:
            mask = series.map(
                lambda v: (
                    isinstance(v, str) and v.startswith("'") and v[1:].startswith(FORMULA_START)
                )
            )
            if mask.any():
                out[col] = series.where(~mask, series.str[1:])
    return out


def to_csv(frame: pd.DataFrame, handle: str | Path | IO[str], *, header: bool = True) -> None:
    """``frame`` as CSV records, formulas defused (``defuse_formulas``), CRLF-terminated."""
    defuse_formulas(frame).to_csv(handle, header=header, index=False, lineterminator=CSV_LINE_END)


def write_table(
    frame: pd.DataFrame, target: str | Path, *, metadata: dict[str, str] | None = None
) -> Path:
    """Write a frame as Parquet, CSV or JSON Lines, chosen by the suffix, atomically; an OSError
    while writing is an InputError naming ``target`` (``writing``)."""
    target = Path(target)
    suffix = target.suffix.lower()
    with atomic_path(target) as tmp, writing(target):
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if metadata:
                merged = dict(table.schema.metadata or {})
                merged.update({k.encode(): v.encode() for k, v in metadata.items()})
                table = table.replace_schema_metadata(merged)
            pq.write_table(table, tmp)
        elif suffix == ".csv":
            to_csv(frame, tmp)
        elif suffix == ".jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            raise InputError(
                target, f"unsupported output suffix {suffix!r}; expected .parquet, .csv or .jsonl"
            )
    return target


def warn(message: str) -> None:
    """A one-line warning on stderr for something skipped that the user should know about."""
    print(f"warning: {message}", file=sys.stderr)


def read_stage_output(path: Path, what: str) -> pd.DataFrame:
    """A Parquet file an earlier pipeline stage wrote; a clear error when it is absent or bad."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise InputError(path, f"{what} not found; run the earlier pipeline stages first") from None
    except (OSError, ValueError) as err:
        raise InputError(path, f"expected a Parquet file of {what} ({err})") from None
