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


class Interrupted(BaseException):
    """Ctrl-C, raised by the CLI's SIGINT handler instead of KeyboardInterrupt.

    A ``BaseException`` on purpose: code that turns any ``Exception`` from a damaged file into
    "damaged or truncated" (checkpoint and shape readers) must never catch an interrupt, or a
    Ctrl-C during loading would be reported as a bad file and resumable state called damaged.
    Click would turn a KeyboardInterrupt into a bare "Aborted!"; this one reaches the error
    boundary, which exits 130 with the hint that rerunning resumes.
    """


def user_os_error(exc: OSError) -> str | None:
    """The one-line message for an OS error on a user's path (``None`` when it names no path).

    ``PATH: read-only file system`` instead of ``OSError: [Errno 30] ...``: a folder that cannot
    be written, a full disk or a permission problem is the user's to fix, not a bug.
    """
    if exc.filename is None:
        return None
    reason = (exc.strerror or type(exc).__name__).lower()
    target = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else str(exc.filename)
    return f"{target}: {reason}"
