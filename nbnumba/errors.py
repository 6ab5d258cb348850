"""One exception tree for the whole package (each class carries its exit code), and
the package's warnings.

The command-line programs map an exception to the process exit code by the
``exit_code`` attribute alone (README, "Errors and exit codes"): 2 usage, 3 an
input file or an output path, 4 resources, 130 SIGINT, 143 SIGTERM, 1 a bug.
Library callers catch :class:`NbError` (or a subclass) and get a one-line
message from ``str(exc)``.

Warnings (C's surprising behaviour, input files read differently from what they
mean, results that differ from nanoBragg.c's files) reach a library caller the
Python way: :func:`warn` issues each as a :class:`NbnumbaWarning` (or a subclass),
attributed to the caller's line, while the result objects keep the list of
``"warning: ..."`` lines (``Result.warnings``).  The command-line programs print
those lists themselves, one line each on stderr, inside :func:`warnings_silenced`.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import sys
import warnings as _py_warnings
from collections.abc import Iterable, Iterator

__all__ = [
    "EXIT_OK", "EXIT_INTERNAL", "EXIT_USAGE", "EXIT_FILE", "EXIT_RESOURCES",
    "EXIT_INTERRUPTED", "EXIT_TERMINATED", "EXIT_CODES", "RESOURCE_ERRNOS",
    "NbError", "UsageError", "SetupExit", "InputFileError", "InputFileOpenError",
    "OutputPathError", "ResourceError", "Terminated", "write_error", "shown", "TOKEN_CHARS",
    "NbnumbaWarning", "CParityWarning", "warn", "warnings_silenced",
]

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug in nbnumba: please report it
EXIT_USAGE = 2  # a flag's value, or a combination of flags, cannot work
EXIT_FILE = 3  # an input file is missing, unreadable or malformed, or an output can't be written
EXIT_RESOURCES = 4  # not enough memory or disk space, no GPU
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
EXIT_TERMINATED = 143  # SIGTERM (and SIGHUP): 128 + 15
# an OSError with one of these errnos means the machine ran out of something (exit 4)
RESOURCE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EFBIG})
EXIT_CODES = (EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_FILE, EXIT_RESOURCES,
              EXIT_INTERRUPTED, EXIT_TERMINATED)


# an echoed token (a flag's value, a word in a file) is cut to this many characters
TOKEN_CHARS = 40


def shown(token: str | bytes, limit: int = TOKEN_CHARS) -> str:
    """``token`` quoted for a one-line message, cut to ``limit`` characters.

    Every message that echoes what a user gave (a value, a word of a file, a
    template) goes through here, so that a 100 MB token makes a short line.
    """
    if isinstance(token, (bytes, bytearray)):
        size, unit = len(token), "bytes"
        text = bytes(token[:limit + 1]).decode("utf-8", "backslashreplace")
    else:
        text = str(token)
        size, unit = len(text), "characters"
    if size <= limit and len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({size} {unit})"


class NbError(Exception):
    """Base of every error nbnumba raises on purpose; ``exit_code`` is the CLI's exit code."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(NbError, ValueError):
    """A flag's value (or a combination of flags) that cannot give a meaningful image."""

    exit_code = EXIT_USAGE


class SetupExit(UsageError):
    """nanoBragg.c would exit here (``exit(9)`` after its usage text or an input error)."""

    def __init__(self, message: str, code: int = 9) -> None:
        super().__init__(message)
        self.code = code  # C's own exit status, for reference


class InputFileError(NbError, ValueError):
    """An input file the C program cannot use: it would print and exit, or crash.

    ``path``: the file; ``line``: 1-based line (or record) where known;
    ``messages``: stdout lines C prints before giving up, newline included.
    """

    exit_code = EXIT_FILE

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None,
                 messages: list[str] | None = None) -> None:
        Exception.__init__(self, os.fspath(path), message)
        self.path = os.fspath(path)
        self.message = message
        self.line = line
        self.messages = list(messages or [])

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path} line {self.line}"
        return f"{where}: {self.message}"


class InputFileOpenError(InputFileError, OSError):
    """The file could not be opened or read at all; also an ``OSError`` (errno, strerror)."""

    def __init__(self, path: str | os.PathLike, exc: OSError,
                 messages: list[str] | None = None) -> None:
        reason = exc.strerror or str(exc)
        InputFileError.__init__(self, path, f"cannot read it: {reason}", messages=messages)
        self.errno = exc.errno
        self.strerror = exc.strerror
        self.filename = os.fspath(path)


class OutputPathError(NbError):
    """An output file that cannot be written."""

    exit_code = EXIT_FILE


def write_error(path: str | os.PathLike, exc: OSError) -> OutputPathError:
    """The error for an output that could not be written: it names the file, and a full
    disk (or quota, memory) is a resource error (exit 4), anything else exit 3."""
    error = OutputPathError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}")
    if exc.errno in RESOURCE_ERRNOS:
        error.exit_code = EXIT_RESOURCES
    error.errno = exc.errno
    return error


class ResourceError(NbError):
    """The run needs more than this machine has (memory, disk, a GPU)."""

    exit_code = EXIT_RESOURCES


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that clean-up runs as for Ctrl-C.

    ``signal_name``: "SIGTERM" or "SIGHUP" (a closed terminal); both exit 143.
    """

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


# names of the signals (SIGINT, SIGTERM, SIGHUP) whose handler ran in this run of a program
_signals_seen: list[str] = []


def signal_seen(signal_name: str) -> None:
    """Record that a program's signal handler ran (it then raises as usual)."""
    _signals_seen.append(signal_name)


def forget_signals() -> None:
    """A program's run starts with no signal seen (several runs may share a process)."""
    _signals_seen.clear()


def raise_if_signalled() -> None:
    """Raise the KeyboardInterrupt (SIGINT) or :class:`Terminated` of a signal whose
    handler ran but whose exception was lost: raised inside a ctypes or weakref callback
    (Numba's start-up, an import's module lock), Python prints it as "Exception ignored"
    and carries on. The programs call this between phases and before writing any file,
    so such a signal still ends the run (exit 130/143, no files). Nothing happens in
    library use, where no program handler runs."""
    if _signals_seen:
        name = _signals_seen[0]
        raise KeyboardInterrupt() if name == "SIGINT" else Terminated(name)


# ---------------------------------------------------------------------------- warnings


class NbnumbaWarning(UserWarning):
    """Base of every warning nbnumba issues: something worth knowing about a run that
    still runs (a flag C ignores, a file C reads differently from what it means).

    Filter them as usual, e.g. ``warnings.simplefilter("ignore", nb.NbnumbaWarning)``;
    the result objects keep them as ``"warning: ..."`` lines either way.
    """


class CParityWarning(NbnumbaWarning):
    """The image (or file) differs from what nanoBragg.c writes for the same flags:
    C's stale φ=0 rotation without ``-c_parity``, ``-c_parity`` on an engine that is
    not bit-exact."""


# set by the command-line programs (they print the lists themselves) and by Dask
# workers (the client reports): a context variable, so each thread decides for itself
_SILENCED: contextvars.ContextVar[bool] = contextvars.ContextVar("nbnumba_warnings_silenced",
                                                                 default=False)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller_stacklevel() -> int:
    """``warnings.warn``'s stacklevel of the first frame outside nbnumba (the user's line)."""
    level, frame = 1, sys._getframe(1)  # warn()'s frame is level 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def warn(texts: str | Iterable[str] | None, category: type[Warning] = NbnumbaWarning) -> None:
    """Issue the library's one-line warnings as Python warnings (each text once).

    Parameters
    ----------
    texts : str or iterable of str or None
        ``"warning: ..."`` lines as the result objects keep them; the ``warning: ``
        prefix is dropped from the Python warning's message.  None or empty: nothing.
    category : type
        :class:`NbnumbaWarning` or a subclass (:class:`CParityWarning`).

    Notes
    -----
    The warning is attributed to the first caller outside the nbnumba package, so
    Python's default filter shows it once per line of the caller's code.  Inside
    :func:`warnings_silenced` nothing is issued.
    """
    if texts is None or _SILENCED.get():
        return
    if isinstance(texts, str):
        texts = [texts]
    for text in dict.fromkeys(texts):
        if not text:
            continue
        message = text.rstrip("\n")
        if message.startswith("warning: "):
            message = message[len("warning: "):]
        _py_warnings.warn(message, category, stacklevel=_caller_stacklevel())


@contextlib.contextmanager
def warnings_silenced() -> Iterator[None]:
    """No :func:`warn` inside (this thread and context only): for callers that print the
    result's warning lists themselves, as the command-line programs do."""
    token = _SILENCED.set(True)
    try:
        yield
    finally:
        _SILENCED.reset(token)
