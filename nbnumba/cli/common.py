"""What every nbnumba program shares: the console, signals, clean-up, error lines.

Each program (``nanobragg-nb``, ``nonbragg-nb``, ``noisify-nb``, ``nb-compare``)
builds a :class:`Console` with its name, runs its job inside
:func:`guarded`, and maps a failure to one error line and an exit code by the
exception's ``exit_code`` (:mod:`nbnumba.errors`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator

from ..errors import (
    EXIT_FILE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RESOURCES,
    EXIT_TERMINATED,
    EXIT_USAGE,
    RESOURCE_ERRNOS,
    InputFileError,
    NbError,
    Terminated,
    write_error,
)
from .startup import skip_numba_blas_probe

# set to see the traceback behind an internal error
DEBUG_ENV = "NBNUMBA_TRACEBACK"


class Console:
    """stdout for C's summary, stderr for warnings (once each) and the error line."""

    def __init__(self, prog: str) -> None:
        self.prog = prog
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
        except OSError as exc:  # stdout on a full disk (> /dev/full): say it is stdout
            if exc.filename is None:
                raise OSError(exc.errno, exc.strerror, "stdout") from exc
            raise

    def warn(self, text: str) -> None:
        if self.quiet or text in self._seen:
            return
        self._seen.add(text)
        self.flush_stdout()
        sys.stderr.write(one_line(text.rstrip("\n"), keep_lines=True) + "\n")

    def error(self, text: str) -> None:
        self.flush_stdout()
        line = one_line(" ".join(str(text).splitlines()))
        sys.stderr.write(f"{self.prog}: error: {line}\n")
        sys.stderr.flush()

    def flush_stdout(self) -> None:
        if self._stdout_open:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()


# no message line is longer than this (a safety net: echoed tokens are cut to a few
# dozen characters where they are put in, by nbnumba.errors.shown)
MAX_LINE_CHARS = 1000


def one_line(text: str, keep_lines: bool = False) -> str:
    """``text`` with every line cut to :data:`MAX_LINE_CHARS` characters."""
    lines = text.split("\n") if keep_lines else [text]
    return "\n".join(line if len(line) <= MAX_LINE_CHARS else
                     f"{line[:MAX_LINE_CHARS]}... ({len(line)} characters)" for line in lines)


class Outputs:
    """The run's output files: on failure, the ones this run put in place are removed.

    A file is known by its identity (st_dev, st_ino), recorded as
    :func:`nbnumba.io.atomic_write` renames it into place (:meth:`recording`). The
    clean-up removes a path only while it still is that very file: what another
    process wrote there since, what was there before, and what this run never
    completed are left alone. ``paths``: the outputs to look after (None: every
    file written in the block).
    """

    def __init__(self, paths: list[str] | None = None) -> None:
        self.paths = None if paths is None else {os.path.realpath(p) for p in paths if p}
        self.placed: dict[str, tuple[int, int]] = {}

    def _placing(self, path: str, ident: tuple[int, int]) -> None:
        real = os.path.realpath(path)
        if self.paths is None or real in self.paths:
            self.placed[real] = ident

    @contextlib.contextmanager
    def recording(self) -> Iterator[Outputs]:
        """Within the block, record the files atomic_write puts in place (after ending the
        run if a signal's exception was lost: :func:`nbnumba.errors.raise_if_signalled`)."""
        from ..errors import raise_if_signalled
        from ..io import recording_writes

        raise_if_signalled()
        with recording_writes(self._placing):
            yield self

    def remove_written(self) -> None:
        for path, ident in self.placed.items():
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == ident:
                    os.unlink(path)
        self.placed.clear()


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


# signals that end a run like SIGTERM: one error line, nothing left, exit 143
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                            if hasattr(signal, name))


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP :class:`Terminated`, and each
    is recorded (:func:`nbnumba.errors.signal_seen`) so that one whose exception Python
    drops (raised inside a callback) still ends the run at the next
    :func:`~nbnumba.errors.raise_if_signalled`. A SIGINT or SIGHUP that was ignored when
    the program started (``nohup``, a background job) stays ignored."""
    if not in_main_thread():
        yield
        return
    from ..errors import forget_signals, signal_seen

    def on_signal(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        signal_seen(name)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(name)

    forget_signals()
    previous = {}
    for sig in (signal.SIGINT, *TERMINATING_SIGNALS):
        if sig != signal.SIGTERM and signal.getsignal(sig) is signal.SIG_IGN:
            continue
        previous[sig] = signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        forget_signals()  # dealt with: later library calls in this process must not see it


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """No SIGINT/SIGTERM/SIGHUP while removing files: a second Ctrl-C must not stop the
    clean-up."""
    if not in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN)
                for s in (signal.SIGINT, *TERMINATING_SIGNALS)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def python_warnings_to(warn: Callable[[str], None]) -> Iterator[None]:
    """Python warnings (numpy's, ...) become one-line warnings; Numba's are dropped, and so
    are nbnumba's own (:class:`~nbnumba.errors.NbnumbaWarning`: the programs print the
    results' warning lists themselves, in C's order, so nothing prints twice)."""
    from ..errors import NbnumbaWarning, warnings_silenced

    with warnings.catch_warnings(), warnings_silenced():
        warnings.simplefilter("always")

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if category.__module__.split(".")[0] != "numba" and \
                    not issubclass(category, NbnumbaWarning):
                warn(f"warning: {message}")

        warnings.showwarning = show
        yield


def written_name(path: str) -> str:
    """The output a temporary ``.NAME.XXXXXXXX.tmp`` of atomic_write stands for."""
    folder, name = os.path.split(path)
    if name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3:
        return os.path.join(folder, name[1:].rsplit(".", 2)[0])
    return path


def failure(exc: BaseException, prog: str,
            flag_of: Callable[[str], str | None] | None = None) -> tuple[int, str]:
    """Exit code and error line for an exception that ended a run of ``prog``.

    ``flag_of(path)`` names the flag that gave an input file, for the message.
    """
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED, f"terminated ({getattr(exc, 'signal_name', 'SIGTERM')})"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted (SIGINT)"
    if isinstance(exc, InputFileError):
        flag = flag_of(exc.path) if flag_of is not None else None
        return exc.exit_code, f"{flag} {exc}" if flag else str(exc)
    if isinstance(exc, NbError):  # every error of ours knows its exit code
        return exc.exit_code, str(exc)
    if isinstance(exc, MemoryError):
        return EXIT_RESOURCES, "out of memory" + (f" ({exc})" if str(exc) else "")
    if isinstance(exc, OSError):
        if exc.filename is not None:  # the one wording of errors.write_error
            error = write_error(written_name(os.fspath(exc.filename)), exc)
            return error.exit_code, str(error)
        return (EXIT_RESOURCES if exc.errno in RESOURCE_ERRNOS else EXIT_FILE), str(exc)
    if isinstance(exc, ArithmeticError):
        c_program = {"nonbragg-nb": "nonBragg.c", "noisify-nb": "noisify.c",
                     "nb-float-add": "float_add"}.get(prog.split()[0], "nanoBragg.c")
        return EXIT_USAGE, (f"these options make {c_program}'s setup fail "
                            f"({type(exc).__name__}: {exc}); check the numbers given")
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    return EXIT_INTERNAL, (f"internal error: {type(exc).__name__}: {exc} (a bug in "
                           f"{prog}; {DEBUG_ENV}=1 shows where)")


HELP_FLAGS = ("-h", "-help", "--help")


def answer_help(argv: list[str], prog: str, help_text: Callable[[], str]) -> int | None:
    """-h/-help/--help anywhere: ``help_text()`` on stdout, exit 0; --version likewise.

    Returns the exit code, or None for an ordinary run (``| head`` closing stdout early
    is no error).
    """
    from .usage import package_version

    try:
        if any(a in HELP_FLAGS for a in argv):
            sys.stdout.write(help_text())
            sys.stdout.flush()
            return EXIT_OK
        if "--version" in argv:
            sys.stdout.write(f"{prog} (nbnumba) {package_version()}\n")
            sys.stdout.flush()
            return EXIT_OK
    except BrokenPipeError:
        stdout_reader_gone()
        return EXIT_OK
    return None


def stdout_reader_gone() -> None:
    """The reader of stdout went away (``| head``): send the rest to /dev/null, so that
    neither later prints nor the interpreter's final flush raise BrokenPipeError."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def exit_without_teardown(main_function: Callable[[list[str] | None], int]):
    """Run as the process entry (no ``argv`` given), end with ``os._exit`` once stdout
    and stderr are flushed: every file is complete by then, and the interpreter's
    teardown after importing numba costs about 0.3 s of CPU (bench/suite.py).

    The process also keeps OpenBLAS to one thread (unless the environment says
    otherwise): nothing here needs a threaded BLAS, and its idle threads would
    take CPU from the kernel's; and Numba's start-up skips its SciPy probe
    (:func:`nbnumba.cli.startup.skip_numba_blas_probe`)."""

    def entry(argv: list[str] | None = None) -> int:
        if argv is None:
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            skip_numba_blas_probe()
        code = main_function(argv)
        if argv is not None or (sys.argv[1:2] in (["series"], ["tiles"])
                                and code not in (EXIT_INTERRUPTED, EXIT_TERMINATED)):
            # in-process callers, and Dask's own shutdown, keep the normal exit (after a
            # signal the cluster is closed already: end at once)
            return code
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            return code
        os._exit(code)

    entry.__doc__ = main_function.__doc__
    return entry


class Job:
    """One invocation of a program: subclasses set ``prog`` and implement ``execute``.

    ``outputs`` (an :class:`Outputs`, set by ``execute``) is what a failure cleans up;
    :meth:`input_flag` names the flag that gave an input file, for messages.
    """

    prog = "nbnumba"

    def __init__(self, argv: list[str], console: Console) -> None:
        self.argv = argv
        self.con = console
        self.outputs: Outputs | None = None

    def execute(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    def input_flag(self, path: str) -> str | None:
        return None

    def fail(self, exc: BaseException) -> int:
        """Remove what this run put in place, print C's last lines and the error line."""
        with signals_held():
            if self.outputs is not None:
                self.outputs.remove_written()
            code, message = failure(exc, self.prog, self.input_flag)
            if isinstance(exc, InputFileError):
                for line in exc.messages:  # what C prints before it gives up
                    self.con.out(line if line.endswith("\n") else line + "\n")
            self.con.error(message)
        return code


def run_job(job: Job, *args: object, **kwargs: object) -> int:
    """``job.execute(*args, **kwargs)`` with signals and Python warnings handled; every
    failure ends in one error line and its exit code (returned; 0 on success)."""
    from ..errors import EXIT_OK, raise_if_signalled

    with sigterm_raises(), python_warnings_to(job.con.warn):
        try:
            job.execute(*args, **kwargs)
            raise_if_signalled()  # a signal whose exception was lost ends the run anyway
            job.con.flush_stdout()
        except (SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # every failure ends in one line and an exit code
            return job.fail(_lost_signal_or(exc))
    return EXIT_OK


def _lost_signal_or(exc: BaseException) -> BaseException:
    """What a run that failed with ``exc`` ends as: the signal whose exception a callback
    swallowed, if one did (an import it broke fails in its wake), else ``exc``."""
    from ..errors import raise_if_signalled

    try:
        raise_if_signalled()
    except KeyboardInterrupt as signalled:
        return signalled
    return exc


def check_companion_outputs(outputs: list[tuple[str, str]], inputs: list[tuple[str, str]],
                            program: str) -> list[str]:
    """Before any compute: each (flag, path) output can be written
    (:func:`nbnumba.validate.check_output_files`, exit 3) and is none of the (flag, path)
    inputs, however spelled (exit 2). Returns the warnings (an output named twice)."""
    from ..errors import UsageError
    from ..inputs import same_file
    from ..validate import check_output_files

    warnings = check_output_files(outputs, program)
    for oflag, opath in outputs:
        for iflag, ipath in inputs:
            if opath and ipath and same_file(opath, ipath):
                raise UsageError(f"{oflag} {opath}: that is the {iflag} input file {ipath}; "
                                 "an output must not overwrite an input of the run")
    return warnings
