"""The one error type for bad input: it names the file, column, row and what was expected."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input. The CLI prints it as one line and exits with code 2.

    ``row`` is the 1-based data row (the header is not counted), so row 1 is the first record.
    """

    def __init__(
        self,
        file: str | Path | None,
        message: str,
        *,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.column = column
        self.row = row
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        # Without a file (a command-line value, a frame built in memory) the line starts with
        # the column or row, or with the message itself.
        # a line break in a file name would break the one line; repr() writes it as \n
        file = self.file if self.file is None or self.file.isprintable() else repr(self.file)
        where = [file] if file else []
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        return ": ".join([", ".join(where), self.message]) if where else self.message


def read_utf8(path: str | Path, expected: str) -> str:
    """The text of ``path``, or the InputError naming its first byte that is not UTF-8 and the
    line it is on (``expected``: what the file should be, "a UTF-8 encoded YAML file").
    An OSError is left to the caller, which words it for the file's role."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        byte = f"0x{raw[err.start]:02x}"
        raise InputError(
            path, f"not UTF-8 text (byte {byte} on line {line}); expected {expected}"
        ) from None
