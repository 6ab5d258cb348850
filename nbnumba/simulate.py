"""Run a prepared scene on the CPU kernel and write C's outputs.

The pixel loop runs in parallel; everything that is sequential in C (the
φ=0 carry-over of the first pass, the global switch-off of interpolation,
the running statistics, Poisson noise) is reproduced around it on the host
in C's pixel order, so the result does not depend on the thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from . import io as nbio
from .config import Options
from .prepare import Scene, prepare


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


def _serial_pixels(scene: Scene):
    """Pixels in C's order: row-major over the ROI, masked pixels skipped."""
    row_lo, row_hi = scene.row_range
    col_lo, col_hi = scene.col_range
    for s in range(row_lo, row_hi):
        for f in range(col_lo, col_hi):
            if scene.mask.size and scene.mask[s * scene.fpixels + f] == 0:
                continue
            yield s, f


def _cuda_driver_present() -> bool:
    """Whether a CUDA driver library loads (or numba's CUDA simulator is on): cheap."""
    import os

    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return True
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def rows_backend(device: str, precision: str = "double", params=None, exact: bool = False):
    """The row-rectangle renderer for ``device`` (``precision`` applies to the GPU only).

    ``exact`` (set by ``-c_parity``) picks the faithful ``render_cpu`` on the CPU,
    which reproduces serial nanoBragg.c bit for bit; the default vectorised
    kernel agrees with it to ~1e-12 of the maximum, a few dozen pixels in the
    last bit on the supervisor image.

    Every backend has ``render_cpu``'s signature and contract (see
    ``nbnumba.kernels.cpu.render_cpu``), so the sequential effects below are
    shared by all of them.  On the CPU that is the vectorised
    ``nbnumba.kernels.fast.render_fast``, which handles every scene, so
    ``params`` (the scene's ``KernelParams``, optional) does not change the
    choice; the faithful ``render_cpu`` stays the reference it is tested
    against (``using_rows_backend(render_cpu)`` runs it).
    """
    # importing numba.cuda costs a few tenths of a second: "auto" skips it when
    # no CUDA driver can be loaded
    if device == "cuda" or (device == "auto" and _cuda_driver_present()):
        try:
            from .kernels import cuda as cuda_kernels

            if cuda_kernels.available():
                return cuda_kernels.renderer(precision)
        except ImportError:
            pass
        if device == "cuda":
            raise RuntimeError("-device cuda: no usable CUDA GPU (numba-cuda not installed "
                               "or no GPU visible)")
    if exact:
        from .kernels.cpu import render_cpu

        return render_cpu
    from .kernels.fast import render_fast

    return render_fast


# A row-rectangle renderer with render_cpu's contract that replaces
# rows_backend(device) inside render, so a distributed backend (the Dask tiles
# of nbnumba.series) gets exactly the sequential effects below
_rows_backend_override: ContextVar[Callable | None] = ContextVar("rows_backend_override",
                                                                 default=None)


@contextmanager
def using_rows_backend(backend: Callable) -> Iterator[None]:
    """Within the block, :func:`render` computes pixels with ``backend``."""
    token = _rows_backend_override.set(backend)
    try:
        yield
    finally:
        _rows_backend_override.reset(token)


def render(scene: Scene, progress: bool = False, device: str = "cpu") -> Rendered:
    """Compute the float image of ``scene`` with the kernel for ``device``."""
    from numba import get_num_threads

    from .kernels import fast
    from .kernels.cpu import render_cpu as cpu_kernel
    from .kernels.cpu import render_one

    render_cpu = (_rows_backend_override.get()
                  or rows_backend(device, scene.opts.precision, scene.params,
                                 exact=scene.opts.c_parity))

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
        sliced = bar is None and render_cpu in (cpu_kernel, fast.render_fast)
        least = 4 * get_num_threads()  # rows enough to keep every thread busy
        step = max(1, (row_hi - row_lo) // 50) if bar is not None else (
            least if sliced else row_hi - row_lo)
        lo = row_lo
        while lo < row_hi:
            hi = min(lo + step, row_hi)
            started = time.perf_counter()
            render_cpu(*args, scene.mask, interpolate, lo, hi, col_lo, col_hi, start_index,
                       image, omega, fell)
            if bar is not None:
                bar.update(hi - lo)
            elif sliced:
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
        for s, f in _serial_pixels(scene):
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


def _g(x: float) -> str:
    """C's %g."""
    return f"{x:g}"


def finish(scene: Scene, rendered: Rendered, rng: RandomStreams | None,
           out: Callable[[str], None]) -> None:
    """Statistics, stdout summary and output files, in C's order (lines 3097-3288)."""
    from .kernels.cpu import image_stats, roi_deviation_sqr
    from .kernels.fast import noise_counts, pgm_levels, smv_counts

    o = scene.opts
    P = scene.params
    image = rendered.image
    row_lo, row_hi = scene.row_range
    col_lo, col_hi = scene.col_range
    if rendered.fallback is not None:
        h, k, l = rendered.fallback
        h0, k0, l0 = (math.ceil(h - 0.5), math.ceil(k - 0.5), math.ceil(l - 0.5))
        out("WARNING: out of range for three point interpolation: h,k,l,h0,k0,l0: "
            f"{_g(h)},{_g(k)},{_g(l)},{h0},{k0},{l0} \n")
        out("WARNING: further warnings will not be printed! ")
    out("\n")
    steps = P.steps
    out(f"solid angle subtended by detector = {_g(rendered.omega_sum / steps)} steradian "
        f"( {_g(100 * rendered.omega_sum / steps / 4 / math.pi)}% sphere)\n")

    total, total_sqr, sumn, max_I, max_index = image_stats(image, scene.mask, row_lo, row_hi,
                                                           col_lo, col_hi)
    if sumn <= 0:
        sumn = 1
    avg = total / sumn
    if sumn <= 1:
        sumn = 2
    rms = math.sqrt(total_sqr / (sumn - 1))
    dev_sqr, n_roi = roi_deviation_sqr(image, avg, row_lo, row_hi, col_lo, col_hi)
    if n_roi <= 1:
        n_roi = 2
    rmsd = math.sqrt(dev_sqr / (n_roi - 1))

    pixels = scene.fpixels * scene.spixels
    out(f"writing {o.floatfilename} as {pixels} 4-byte floats\n")
    nbio.write_float_image(o.floatfilename, image)

    max_I_x = max_I_y = 0.0
    if max_index >= 0:
        s, f = divmod(int(max_index), scene.fpixels)
        last = P.oversample - 1
        max_I_x = P.subpixel_size * (f * P.oversample + last) + P.subpixel_size / 2.0
        max_I_y = P.subpixel_size * (s * P.oversample + last) + P.subpixel_size / 2.0
    out(f"max_I = {_g(max_I)}  at {_g(max_I_x)} {_g(max_I_y)}\n")
    out(f"mean= {_g(avg)} rms= {_g(rms)} rmsd= {_g(rmsd)}\n")
    intfile_scale = o.intfile_scale
    if intfile_scale <= 0.0:
        intfile_scale = 1.0
        if max_I > 0.0:
            intfile_scale = 55000.0 / max_I
    out(f"intfile_scale = {_g(intfile_scale)}\n")

    roi = (slice(row_lo, row_hi), slice(col_lo, col_hi))
    intimage = np.zeros((scene.spixels, scene.fpixels), dtype=np.uint16)
    smv_counts(image, intfile_scale, o.adc_offset, row_lo, row_hi, col_lo, col_hi, intimage)
    header = nbio.smv_header(**scene.header)
    out(f"writing {o.intfilename} as 2-byte integers\n")
    nbio.write_smv(o.intfilename, header, intimage)

    if o.write_pgm:
        pgm_scale = o.pgm_scale
        if pgm_scale <= 0.0:
            pgm_scale = intfile_scale
            if rmsd > 0.0:
                pgm_scale = 250.0 / (5.0 * rmsd)
        out(f"pgm_scale = {_g(pgm_scale)}\n")
        pgm = np.zeros((scene.spixels, scene.fpixels), dtype=np.uint8)
        pgm_levels(image, pgm_scale, row_lo, row_hi, col_lo, col_hi, pgm)
        out(f"writing {o.pgmfilename} as 1-byte integers\n")
        nbio.write_pgm(o.pgmfilename, pgm, scene.fpixels, scene.spixels, pgm_scale)

    if not o.calculate_noise:
        return
    values = np.ascontiguousarray(image[roi]).reshape(-1)
    photons = rng.gen.poisson_noise(values, rng.seed)
    # C's running double sum in pixel order, the overloads and the counts, in one pass
    total, overloads = noise_counts(photons, o.adc_offset, row_lo, row_hi, col_lo, col_hi,
                                    intimage)
    out(f"{total:.0f} photons on noise image ({overloads} overloads)\n")
    out(f"writing {o.noisefilename} as 2-byte integers\n")
    # C's noise header differs from the int one only in a signed zero (DENZO_X_BEAM)
    nbio.write_smv(o.noisefilename, nbio.smv_header(**scene.header, noise=True), intimage)


def run(opts: Options, out: Callable[[str], None], warn: Callable[[str], None],
        progress: bool = False, trace_out: Callable[[str], None] | None = None) -> Scene:
    """The whole program for parsed options: prepare, render, write.

    ``out`` gets C's stdout, ``warn`` the warnings, ``trace_out`` (default ``out``)
    the -trace_pixel lines."""
    rng = RandomStreams(opts)
    scene = prepare(opts, out, warn, rng)
    rendered = render(scene, progress=progress, device=opts.device)
    if opts.trace_pixel is not None:
        from .trace import trace_lines

        for line in trace_lines(scene, *opts.trace_pixel):
            (trace_out or out)(line + "\n")
    finish(scene, rendered, rng, out)
    return scene
