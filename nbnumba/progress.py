"""The progress display of a run: a bar on a terminal or in a notebook, lines in a log.

nanoBragg.c prints ``N% done`` lines on stdout; we keep stdout for C's summary
and show progress on stderr, in the form the place it goes to can show:

- a Jupyter (or other IPython kernel) cell: ``tqdm.auto``'s bar (a widget with
  ipywidgets, else tqdm's text bar, which a cell renders in place);
- a terminal: tqdm's bar, cleared when done;
- anything else (a batch log, a pipe, a file): a plain line every
  :data:`LOG_INTERVAL_S` seconds (``desc: 40% (205/512 row) [00:12 elapsed, ~00:18
  left, 16.7row/s]``), no carriage returns, and nothing at all for a run shorter
  than that.

The first run on a machine compiles the Numba kernels (tens of seconds, once:
they are cached); that happens before the bar starts, so the bar's ETA is
measured on real rows, and a one-line notice says what the wait is.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator

# seconds a kernel's first call may take (a cache load) before we say it compiles
NOTICE_AFTER_S = 1.0
NOTICE = ("nanobragg-nb: compiling the Numba kernels (the first run on this machine only; "
          "later runs load them from the cache)\n")


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def compile_with_notice(first_call: Callable[[], object],
                        notice_after_s: float = NOTICE_AFTER_S) -> bool:
    """Run ``first_call`` (a kernel call on no pixels: it compiles or loads the kernel);
    if it takes longer than ``notice_after_s``, print :data:`NOTICE` on stderr, once.
    Returns whether the notice was printed."""
    said = threading.Event()

    def say() -> None:
        try:
            sys.stderr.write(NOTICE)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        said.set()

    timer = threading.Timer(notice_after_s, say)
    timer.daemon = True
    timer.start()
    try:
        first_call()
    finally:
        timer.cancel()
    return said.is_set()


@contextlib.contextmanager
def notice_when_compiling(prog: str) -> Iterator[None]:
    """Within the block, the first time Numba compiles a kernel (a cache miss: the first
    run on a machine, or after a kernel changed) say so once on stderr, as
    :data:`NOTICE` says it for nanobragg-nb; a run that loads its kernels from the cache
    says nothing. For programs whose kernels are many small calls (nonbragg-nb,
    noisify-nb), where no single first call can be timed."""
    from numba.core import event

    said = threading.Lock()
    notice = NOTICE.replace("nanobragg-nb:", f"{prog}:", 1)

    class Notice(event.Listener):
        def on_start(self, ev: object) -> None:
            if said.acquire(blocking=False):  # once, from whichever thread compiles
                try:
                    sys.stderr.write(notice)
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass

        def on_end(self, ev: object) -> None:
            pass

    with event.install_listener("numba:compile", Notice()):
        yield


# a log's progress line: no bar, no carriage return
LOG_FORMAT = ("{desc}: {percentage:3.0f}% ({n_fmt}/{total_fmt} {unit}) "
              "[{elapsed} elapsed, ~{remaining} left, {rate_fmt}]")
# seconds between two progress lines in a log (and before the first one)
LOG_INTERVAL_S = 30.0


def in_notebook() -> bool:
    """Whether this process is an IPython kernel (Jupyter, VS Code, Colab...), where
    stderr is no terminal but renders tqdm's bars (tqdm.autonotebook's test)."""
    return ("ipykernel.zmqshell" in sys.modules
            or "IPython.utils._process_emscripten" in sys.modules)


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Lines:
    """A file for tqdm that turns its in-place redraws into whole lines (for logs)."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._last = ""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").replace("\x1b[A", "").strip()
        # the count before the times: close() redraws the last line once more
        count = line.partition(" [")[0]
        if line and count != self._last:
            self._last = count
            try:
                self._stream.write(line + "\n")
            except (OSError, ValueError):  # a closed log: progress is not worth a failure
                pass

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (AttributeError, OSError, ValueError):
            pass

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


def progress_bar(total: int, unit: str = "row", desc: str = "nanobragg-nb", *,
                 initial: int = 0, leave: bool = False, file=None,
                 log_interval_s: float | None = None):
    """A progress display over ``total`` steps for where ``file`` goes.

    Parameters
    ----------
    total, initial : int
        Steps in all, and already done.
    unit, desc : str
        tqdm's unit and description.
    leave : bool
        Keep a terminal's bar when done (a notebook's and a log's stay).
    file : text stream, optional
        Where to show it; default ``sys.stderr`` (and, in an IPython kernel, the cell).
    log_interval_s : float, optional
        Seconds between a log's lines (default :data:`LOG_INTERVAL_S`).

    Returns
    -------
    tqdm.tqdm
        Call ``update(n)`` and ``close()``: ``tqdm.auto``'s bar in a notebook, tqdm's
        bar on a terminal, else a bar writing one plain line per ``log_interval_s``
        (none for a shorter run).
    """
    if file is None and in_notebook():
        import warnings

        with warnings.catch_warnings():  # "IProgress not found": the text bar works there
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm as auto_tqdm
        return auto_tqdm(total=total, initial=initial, unit=unit, desc=desc, leave=True)
    from tqdm import tqdm

    stream = sys.stderr if file is None else file
    if is_terminal(stream):
        return tqdm(total=total, initial=initial, unit=unit, desc=desc, leave=leave,
                    file=stream)
    interval = LOG_INTERVAL_S if log_interval_s is None else float(log_interval_s)
    return tqdm(total=total, initial=initial, unit=unit, desc=desc, leave=True,
                file=_Lines(stream), mininterval=interval, delay=interval, ascii=True,
                bar_format=LOG_FORMAT)


def row_bar(rows: int, desc: str = "nanobragg-nb", file=None):
    """The progress display over a run's ``rows`` (:func:`progress_bar`)."""
    return progress_bar(rows, "row", desc, file=file)
