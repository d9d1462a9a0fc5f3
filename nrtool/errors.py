"""User-facing errors.

Library code raises :class:`NrtoolError` for anything a user can fix (a bad file, an impossible
option). The CLI prints its message as one line and exits non-zero; any other exception is a bug
and gets a traceback only with ``--debug``.
"""

from __future__ import annotations

from os import PathLike


class NrtoolError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class InputFileError(NrtoolError):
    """A file that is missing, empty, corrupt or of the wrong kind; the message names it."""

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
