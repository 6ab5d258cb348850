"""``nanobragg-nb``: nanoBragg.c's command line, computed with Numba kernels.

Every failure ends with one line ``nanobragg-nb: error: ...`` on stderr and an
exit code from :data:`EXIT_CODES` (README, "Errors and exit codes"), never a
traceback; a run that fails or is interrupted leaves none of its image files
behind (each is written to a temporary name and renamed when complete, and
the ones already renamed are removed again).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator

from ..errors import (
    EXIT_CODES,
    EXIT_FILE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RESOURCES,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Terminated,
)

EXIT_INPUT = EXIT_FILE
__all__ = ["main", "EXIT_CODES", "EXIT_OK", "EXIT_INTERNAL", "EXIT_USAGE", "EXIT_INPUT",
           "EXIT_RESOURCES", "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

PROG = "nanobragg-nb"

# set to see the traceback behind an internal error
DEBUG_ENV = "NBNUMBA_TRACEBACK"
_RESOURCE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EFBIG}


class _Console:
    """stdout for C's summary, stderr for warnings (once each) and the error line."""

    def __init__(self) -> None:
        self.quiet = False
        self._seen: set[str] = set()
        self._stdout_open = True

    def out(self, text: str) -> None:
        if not self.quiet:
            self.always(text)

    def always(self, text: str) -> None:
        """stdout even with -quiet: what was asked for by name (-trace_pixel)."""
        if not self._stdout_open:
            return
        try:
            sys.stdout.write(text)
        except BrokenPipeError:
            # the reader went away (| head): keep computing, stop printing
            self._stdout_open = False
            stdout_reader_gone()

    def warn(self, text: str) -> None:
        if self.quiet or text in self._seen:
            return
        self._seen.add(text)
        self._flush_stdout()
        sys.stderr.write(text.rstrip("\n") + "\n")

    def error(self, text: str) -> None:
        self._flush_stdout()
        line = " ".join(str(text).splitlines())
        sys.stderr.write(f"{PROG}: error: {line}\n")
        sys.stderr.flush()

    def _flush_stdout(self) -> None:
        if self._stdout_open:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()


def _file_identity(path: str) -> tuple[int, int, int, int] | None:
    """What tells a file this run wrote from the one that was there before."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


class _Outputs:
    """The run's image files: on failure, the ones it already wrote are removed."""

    def __init__(self, paths: list[str]) -> None:
        self.before = {os.path.realpath(p): _file_identity(os.path.realpath(p)) for p in paths}

    def remove_written(self) -> None:
        for path, before in self.before.items():
            now = _file_identity(path)
            if now is None or now == before:
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.stat(path).st_mode):
                    os.unlink(path)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (SIGINT already raises KeyboardInterrupt)."""
    if not _in_main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """No SIGINT/SIGTERM while removing files: a second Ctrl-C must not stop the cleanup."""
    if not _in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _python_warnings_to(warn: Callable[[str], None]) -> Iterator[None]:
    """Python warnings (numpy's, ...) become one-line warnings; Numba's are dropped."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if category.__module__.split(".")[0] != "numba":
                warn(f"warning: {message}")

        warnings.showwarning = show
        yield


def _written_name(path: str) -> str:
    """The output a temporary ``.NAME.XXXXXXXX.tmp`` of atomic_write stands for."""
    folder, name = os.path.split(path)
    if name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3:
        return os.path.join(folder, name[1:].rsplit(".", 2)[0])
    return path


def _failure(exc: BaseException, opts) -> tuple[int, str]:
    """Exit code and error line for an exception that ended the run."""
    from ..errors import InputFileError, NbError
    from ..validate import input_flag

    if isinstance(exc, Terminated):
        return EXIT_TERMINATED, "terminated (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted (SIGINT)"
    if isinstance(exc, InputFileError):
        flag = input_flag(opts, exc.path) if opts is not None else None
        return exc.exit_code, f"{flag} {exc}" if flag else str(exc)
    if isinstance(exc, NbError):  # every error of ours knows its exit code
        return exc.exit_code, str(exc)
    if isinstance(exc, MemoryError):
        return EXIT_RESOURCES, "out of memory" + (f" ({exc})" if str(exc) else "")
    if isinstance(exc, OSError):
        code = EXIT_RESOURCES if exc.errno in _RESOURCE_ERRNOS else EXIT_INPUT
        if exc.filename is not None:
            return code, f"cannot write {_written_name(os.fspath(exc.filename))}: " \
                         f"{exc.strerror or exc}"
        return code, str(exc)
    if isinstance(exc, ArithmeticError):
        return EXIT_USAGE, (f"these options make nanoBragg.c's setup fail "
                            f"({type(exc).__name__}: {exc}); check the numbers given")
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    return EXIT_INTERNAL, (f"internal error: {type(exc).__name__}: {exc} (a bug in "
                           f"{PROG}; {DEBUG_ENV}=1 shows where)")


class _Run:
    """One invocation: parse, validate, simulate, write."""

    def __init__(self, argv: list[str], console: _Console) -> None:
        self.argv = argv
        self.con = console
        self.opts = None
        self.outputs: _Outputs | None = None

    def execute(self) -> None:
        from ..cargs import parse_args
        from ..validate import output_paths, validate

        con = self.con
        opts, parse_warnings = parse_args(self.argv)
        self.opts = opts
        con.quiet = opts.quiet
        more = validate(opts, parse_warnings)
        for w in parse_warnings + more:
            con.warn(w)
        # C's GetFrame announces the -mask and -img files before anything else
        for name in (opts.maskfilename, opts.imginfilename):
            if name is not None:
                con.out(f"reading {name}\n")
        self.outputs = _Outputs([path for _, path in output_paths(opts)])
        from ..simulate import run

        run(opts, con.out, con.warn, progress=bool(opts.progress_meter) and not con.quiet,
            trace_out=con.always)

    def fail(self, exc: BaseException) -> int:
        from ..io import InputFileError

        with _signals_held():
            if self.outputs is not None:
                self.outputs.remove_written()
            code, message = _failure(exc, self.opts)
            if isinstance(exc, InputFileError):
                for line in exc.messages:  # what C prints before it gives up
                    self.con.out(line if line.endswith("\n") else line + "\n")
            self.con.error(message)
        return code


def stdout_reader_gone() -> None:
    """The reader of stdout went away (``| head``): send the rest to /dev/null, so that
    neither later prints nor the interpreter's final flush raise BrokenPipeError."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _exit_without_teardown(main_function: Callable[[list[str] | None], int]):
    """Run as the process entry (no ``argv`` given), end with ``os._exit`` once stdout
    and stderr are flushed: every file is complete by then, and the interpreter's
    teardown after importing numba costs about 0.3 s of CPU (bench/suite.py).

    The process also keeps OpenBLAS to one thread (unless the environment says
    otherwise): nothing here needs a threaded BLAS, and its idle threads would
    take CPU from the kernel's."""

    def entry(argv: list[str] | None = None) -> int:
        if argv is None:
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        code = main_function(argv)
        if argv is not None or sys.argv[1:2] in (["series"], ["tiles"]):
            return code  # in-process callers, and Dask's own shutdown, keep the normal exit
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            return code
        os._exit(code)

    entry.__doc__ = main_function.__doc__
    return entry


@_exit_without_teardown
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (see :data:`EXIT_CODES`).

    Called without ``argv`` (the console script, ``python -m``) it is the
    process: it exits with that code instead of returning.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("series", "tiles"):  # Dask subcommands (nbnumba/cli/series.py)
        from .series import main as cluster_main

        try:
            return cluster_main(argv)
        except BrokenPipeError:  # e.g. `series --help | head`: the output was not wanted
            stdout_reader_gone()
            return EXIT_OK
    con = _Console()
    job = _Run(argv, con)
    with _sigterm_raises(), _python_warnings_to(con.warn):
        try:
            job.execute()
            con._flush_stdout()
        except (SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # every failure ends in one line and an exit code
            return job.fail(exc)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
