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
        where = [self.file] if self.file else []
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        return ": ".join([", ".join(where), self.message]) if where else self.message
