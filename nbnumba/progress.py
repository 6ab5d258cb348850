"""The progress display of a run: honest about compiling, silent in logs.

nanoBragg.c prints ``N% done`` lines on stdout; we keep stdout for C's summary
and show a tqdm bar on stderr, but only on a terminal (no bar and no carriage
returns in a log file or a pipe).  The first run on a machine compiles the
Numba kernels (tens of seconds, once: they are cached); that happens before
the bar starts, so the bar's ETA is measured on real rows, and a one-line
notice says what the wait is.
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


def row_bar(rows: int, desc: str = "nanobragg-nb"):
    """A tqdm bar over ``rows`` on a terminal; None (no bar) when stderr is not one."""
    if not stderr_is_terminal():
        return None
    from tqdm import tqdm

    return tqdm(total=rows, unit="row", desc=desc, leave=False)
