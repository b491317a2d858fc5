"""Fixtures shared by the tests of the pipeline's commands."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def refuse_new_files(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``refuse_new_files(folder, code=errno.EACCES)``: ``folder`` takes no new file from now on,
    as a read-only (EACCES) or immutable (EPERM, `chattr +i`) folder does. As root a folder's
    mode stops nothing, so the refusal is simulated where every output and every writability
    probe is made: ``tempfile.mkstemp`` with ``dir=folder``."""
    real = tempfile.mkstemp
    refused: dict[Path, int] = {}

    def mkstemp(*args: object, **kwargs: object):
        code = refused.get(Path(str(kwargs.get("dir", ""))))
        if code is not None:
            raise PermissionError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    def refuse(folder: Path, code: int = errno.EACCES) -> None:
        refused[Path(folder)] = code

    return refuse
