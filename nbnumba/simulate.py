"""C's sequential effects around a parallel pixel loop, for every engine.

An engine's renderer computes pixels in parallel; everything that is
sequential in C (the φ=0 carry-over of the first pass, the global switch-off
of interpolation) is reproduced here on the host in C's pixel order, so the
result does not depend on the thread count or on the engine's order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .config import Options
from .engines import Renderer
from .prepare import Scene


@dataclass
class Rendered:
    """The float image and what C accumulates alongside it."""

    image: np.ndarray  # float32 [slow, fast]
    omega_sum: float  # sr, summed over sub-pixels and layers
    fallback: tuple[float, float, float] | None  # h, k, l where interpolation gave up


class RandomStreams:
    """C's three seeds sharing one generator state, as in nanoBragg.c."""

    def __init__(self, opts: Options):
        from .rng import CRandom

        self.gen = CRandom()
        self.seed = np.array([opts.seed], dtype=np.int64)
        self.mosaic_seed = np.array([opts.mosaic_seed], dtype=np.int64)
        self.misset_seed = np.array([opts.misset_seed], dtype=np.int64)

    def mosaic_rotation_umat(self, mosaicity: float, seed: np.ndarray) -> np.ndarray:
        return self.gen.mosaic_rotation_umat(mosaicity, seed)

    def umat2misset(self, umat) -> tuple[float, float, float]:
        return self.gen.umat2misset(umat)


def serial_pixels(scene: Scene):
    """Pixels in C's order: row-major over the ROI, masked pixels skipped."""
    row_lo, row_hi = scene.row_range
    col_lo, col_hi = scene.col_range
    for s in range(row_lo, row_hi):
        for f in range(col_lo, col_hi):
            if scene.mask.size and scene.mask[s * scene.fpixels + f] == 0:
                continue
            yield s, f


def render(scene: Scene, renderer: Renderer, *, sliced: bool = False,
           progress: bool = False) -> Rendered:
    """Compute the float image of ``scene`` with ``renderer``, with C's sequential effects.

    Parameters
    ----------
    scene : Scene
        The resolved setup (:func:`nbnumba.prepare.prepare`).
    renderer : Renderer
        A row-rectangle renderer (:mod:`nbnumba.engines`), e.g. ``Engine.load()``.
    sliced : bool
        Call ``renderer`` in slices of about a second (CPU engines), so that
        SIGINT/SIGTERM, seen between calls, stop a long run promptly.
    progress : bool
        Show a progress bar (tqdm) on stderr.

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
        # On the CPU kernels, slices of about a second: Ctrl-C or SIGTERM (seen between
        # calls) then stop a long run promptly; the progress bar wants 50 updates
        sliced_here = bar is None and sliced
        least = 4 * get_num_threads()  # rows enough to keep every thread busy
        step = max(1, (row_hi - row_lo) // 50) if bar is not None else (
            least if sliced_here else row_hi - row_lo)
        lo = row_lo
        while lo < row_hi:
            hi = min(lo + step, row_hi)
            started = time.perf_counter()
            render_exact(*args, scene.mask, interpolate, lo, hi, col_lo, col_hi, start_index,
                       image, omega, fell)
            if bar is not None:
                bar.update(hi - lo)
            elif sliced_here:
                step = max(least, int((hi - lo) / max(time.perf_counter() - started, 1e-3)))
            lo = hi

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=max(row_hi - row_lo, 0), unit="row", desc="nanobragg-nb",
                   leave=False)
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
