"""C's sequential effects around a parallel pixel loop, for every engine.

An engine's renderer computes pixels in parallel; everything that is
sequential in C (the φ=0 carry-over of the first pass, the global switch-off
of interpolation) is reproduced here on the host in C's pixel order, so the
result does not depend on the thread count or on the engine's order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engines import Renderer
from .setup.scene import Scene


@dataclass
class Rendered:
    """The float image and what C accumulates alongside it."""

    image: np.ndarray  # float32 [slow, fast]
    omega_sum: float  # sr, summed over sub-pixels and layers
    fallback: tuple[float, float, float] | None  # h, k, l where interpolation gave up


def serial_pixels(scene: Scene):
    """Pixels in C's order: row-major over the ROI, masked pixels skipped."""
    row_lo, row_hi = scene.row_range
    col_lo, col_hi = scene.col_range
    for s in range(row_lo, row_hi):
        for f in range(col_lo, col_hi):
            if scene.mask.size and scene.mask[s * scene.fpixels + f] == 0:
                continue
            yield s, f


# The CPU kernel's work is cut into slices of about this many seconds (see render)
SLICE_SECONDS = 0.5
# sub-pixel evaluations per second and thread, before a slice has measured it
# (the fast kernel does 2-5e7 on a 2020s core; a low guess makes the first slice short)
ASSUMED_RATE = 1e7
# a row whose pixels need more evaluations than this is computed in column chunks
CHUNK_WORK = ASSUMED_RATE * SLICE_SECONDS


def column_chunks(col_lo: int, col_hi: int, pixel_work: float) -> list[tuple[int, int]]:
    """Column ranges of about :data:`CHUNK_WORK` evaluations (one range when a row is less):
    fixed by the work per pixel alone, not by the machine or its thread count."""
    per_chunk = max(1, int(CHUNK_WORK // max(pixel_work, 1.0)))
    if per_chunk >= col_hi - col_lo:
        return [(col_lo, col_hi)]
    return [(c, min(c + per_chunk, col_hi)) for c in range(col_lo, col_hi, per_chunk)]


_abandoned: list = []  # a kernel slice left running by an interrupted render


def interruptible(kernel: Callable, *args) -> Any:
    """``kernel(*args)`` (a nogil Numba kernel) in a helper thread while the main thread
    waits in short joins, so that a signal's handler (KeyboardInterrupt, Terminated)
    runs at once; the interrupted slice is left to end by itself, and the next call
    waits for it first (two kernels never run at once). Off the main thread: a call.
    Returns what the kernel returns."""
    import threading

    from .errors import raise_if_signalled

    while _abandoned:
        _abandoned[0].join()
        _abandoned.pop(0)
    if threading.current_thread() is not threading.main_thread():
        return kernel(*args)
    raise_if_signalled()  # a program's signal whose exception a callback swallowed
    from numba import get_num_threads, set_num_threads

    failure: list[BaseException] = []
    result: list[Any] = []
    threads = get_num_threads()  # per calling thread in Numba: pass it on

    def target() -> None:
        try:
            set_num_threads(threads)
            result.append(kernel(*args))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            failure.append(exc)

    worker = threading.Thread(target=target, name="nbnumba-kernel", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.05)
    except BaseException:
        _abandoned.append(worker)
        raise
    if failure:
        raise failure[0]
    return result[0] if result else None


CPU_ENGINE_MODULES = ("nbnumba.kernels.vectorised", "nbnumba.kernels.exact")


def render(scene: Scene, renderer: Renderer, *, sliced: bool = False,
           progress: bool = False) -> Rendered:
    """Compute the float image of ``scene`` with ``renderer``, with C's sequential effects.

    Parameters
    ----------
    scene : Scene
        The resolved setup (:func:`nbnumba.setup.prepare.prepare`).
    renderer : Renderer
        A row-rectangle renderer (:mod:`nbnumba.engines`), e.g. ``Engine.load()``.
    sliced : bool
        Call ``renderer`` (a nogil CPU kernel) in slices sized by their work, in a
        helper thread while the main thread waits (:func:`interruptible`), so that
        SIGINT/SIGTERM/SIGHUP stop a long run at once whatever the flags.
    progress : bool
        Show progress on stderr (:func:`nbnumba.progress.row_bar`: a bar on a terminal
        or in a notebook, plain lines in a log).

    Returns
    -------
    Rendered
        The float32 image [slow, fast] in photons/pixel, the solid-angle sum and
        where interpolation gave up.

    Notes
    -----
    Whatever the engine, this reproduces what is sequential in C around the
    parallel pixel loop: the stale-vector first pass under ``-c_parity``
    (nanoBragg.c's φ loop, lines 2600-2700), and the global switch-off of
    interpolation at the first pixel (in C's order) that leaves the table.
    """
    from numba import get_num_threads

    from .errors import raise_if_signalled

    raise_if_signalled()  # a program's signal whose exception a callback swallowed

    from .kernels.exact import render_one

    render_exact = renderer

    P = scene.params
    image = np.zeros((scene.spixels, scene.fpixels), dtype=np.float32)
    omega_rows = np.zeros(scene.spixels, dtype=np.float64)
    fell_rows = np.full(scene.spixels, -1, dtype=np.int64)
    row_lo, row_hi = scene.row_range
    col_lo, col_hi = scene.col_range
    args = (P, scene.det, scene.sources, scene.cells, scene.a_star, scene.fhkl)

    def run_rows(interpolate: bool, start_index: int, omega, fell, bar=None) -> None:
        if row_hi <= row_lo or col_hi <= col_lo:
            return
        # On the CPU kernels, slices sized by work (about SLICE_SECONDS each, and
        # column chunks when one row is more than that): Ctrl-C, SIGTERM or SIGHUP,
        # seen while the main thread waits for a slice, then stop a long run at once,
        # and an abandoned slice ends soon after. The progress bar wants 50 updates.
        if not sliced:
            render_exact(*args, scene.mask, interpolate, row_lo, row_hi, col_lo, col_hi,
                       start_index, image, omega, fell)
            if bar is not None:
                bar.update(row_hi - row_lo)
            return
        threads = get_num_threads()
        pixel_work = float(max(1, P.steps)) * max(1, P.detector_thicksteps)
        chunks = column_chunks(col_lo, col_hi, pixel_work)
        row_work = (col_hi - col_lo) * pixel_work
        rate = ASSUMED_RATE * threads  # sub-pixel evaluations per second, until measured
        lo = row_lo
        while lo < row_hi:
            step = max(threads, int(SLICE_SECONDS * rate / row_work)) if len(chunks) == 1 \
                else threads
            if bar is not None:
                step = min(step, max(1, (row_hi - row_lo) // 50))
            hi = min(lo + step, row_hi)
            started = time.perf_counter()
            if len(chunks) == 1:
                interruptible(render_exact, *args, scene.mask, interpolate, lo, hi, col_lo,
                              col_hi, start_index, image, omega, fell)
            else:
                # a row is more than a slice: column chunks fixed by the work alone (so
                # the row sums do not depend on the speed or thread count), summed in
                # column order as the tiles engine does
                omega[lo:hi] = 0.0
                fell[lo:hi] = -1
                for c_lo, c_hi in chunks:
                    part_omega = np.zeros_like(omega)
                    part_fell = np.full_like(fell, -1)
                    interruptible(render_exact, *args, scene.mask, interpolate, lo, hi, c_lo,
                                  c_hi, start_index, image, part_omega, part_fell)
                    omega[lo:hi] += part_omega[lo:hi]
                    fell[lo:hi] = np.where(fell[lo:hi] < 0, part_fell[lo:hi], fell[lo:hi])
            elapsed = max(time.perf_counter() - started, 1e-3)
            rate = max(1.0, (hi - lo) * row_work / elapsed)
            if bar is not None:
                bar.update(hi - lo)
            lo = hi

    bar = None
    if progress:
        from .progress import compile_with_notice, row_bar

        # a CPU engine compiles (or loads) its kernel on no pixels first: no made-up
        # ETA meanwhile (the GPU and tiles engines do nothing for an empty rectangle)
        if getattr(renderer, "__module__", "") in CPU_ENGINE_MODULES:
            compile_with_notice(lambda: renderer(*args, scene.mask, scene.interpolate, row_lo,
                                                 row_lo, col_lo, col_lo, 0, image, omega_rows,
                                                 fell_rows))
        bar = row_bar(max(row_hi - row_lo, 0))
    try:
        run_rows(scene.interpolate, 0, omega_rows, fell_rows, bar)
    finally:
        if bar is not None:
            bar.close()

    # C's first pass through the φ loop sees stale vectors (-c_parity): redo the
    # first pixels serially until that pass has happened
    first_fell = None
    if scene.first_pass_differs:
        for s, f in serial_pixels(scene):
            value, _, fell, used, fh, fk, fl = render_one(*args, scene.interpolate, s, f, True)
            image[s, f] = np.float32(value)
            if fell and first_fell is None:
                first_fell = (s * scene.fpixels + f, (fh, fk, fl))
            if used:
                break

    fallback = None
    fell_index = [s * scene.fpixels + int(fell_rows[s]) for s in range(row_lo, row_hi)
                  if fell_rows[s] >= 0]
    candidates = fell_index[:1]
    if first_fell is not None:
        candidates.append(first_fell[0])
    if candidates:
        # C switches interpolation off for good at the first pixel (in its
        # order) that leaves the table: every later pixel is nearest-neighbour
        index = min(candidates)
        s, f = divmod(index, scene.fpixels)
        if first_fell is not None and first_fell[0] == index:
            fallback = first_fell[1]
        else:
            _, _, _, _, fh, fk, fl = render_one(*args, True, s, f, False)
            fallback = (fh, fk, fl)
        run_rows(False, index + 1, np.zeros_like(omega_rows), np.zeros_like(fell_rows))
    omega_sum = 0.0
    for s in range(row_lo, row_hi):
        omega_sum += float(omega_rows[s])
    return Rendered(image=image, omega_sum=omega_sum, fallback=fallback)
