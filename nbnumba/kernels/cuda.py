"""CUDA kernel: C's pixel loop on the GPU, one thread per pixel (numba-cuda).

The kernel calls ``pixel_intensity`` from ``physics.py``, the function the CPU
kernel calls, so there is one copy of the physics.  A ``CudaRenderer`` has
``render_exact``'s signature and contract, which lets ``simulate.render`` wrap
either engine in the same host-side sequential effects (``-c_parity``
first pass, C's global interpolation switch-off).

Only the engine registry (``nbnumba.engines``) imports this module,
never ``import nbnumba``; any failure to load numba.cuda means "no GPU", so
the CPU path needs no CUDA at all.  Under ``NUMBA_ENABLE_CUDASIM=1`` the
kernel runs in numba's CUDA simulator.
"""

from __future__ import annotations

import functools
import os
import time
import typing

import numpy as np

from .params import KernelParams
from .physics import pixel_intensity, pixel_skipped

# threads per block: x runs along a detector row so neighbouring threads write
# neighbouring pixels; pixel_intensity needs many registers, so keep blocks small
BLOCK = (32, 4)

# per pixel on the device: float32 image + float64 solid angle + uint8 fell-back flag
_BYTES_PER_PIXEL = 4 + 8 + 1
# per row: float64 solid-angle sum + int64 first fell-back column
_BYTES_PER_ROW = 8 + 8

PRECISIONS = {"double": np.float64, "single": np.float32}


def simulator_enabled() -> bool:
    """True when numba runs CUDA kernels in its simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba import config

    return bool(getattr(config, "ENABLE_CUDASIM", False))


def _simulator_pixel(spixel, fpixel, P, det, sources, cells, a_star, fhkl, interpolate,
                     first_pass):
    """Simulator only: ``pixel_intensity`` (compiled, via ``render_one``) on the simulator's arrays.

    The simulator runs the kernel as Python and hands it wrapped arrays that
    compiled functions cannot take; unwrap them and call the same physics.
    """
    from .exact import render_one

    return render_one(P, _host(det), _host(sources), _host(cells), _host(a_star), _host(fhkl),
                      interpolate, spixel, fpixel, first_pass)


def _host(array):
    return getattr(array, "_ary", array)


try:
    from numba import cuda
except Exception:  # noqa: BLE001 - numba-cuda missing or broken: the CPU path needs none
    cuda = None

_SIMULATOR = simulator_enabled()
# what the kernel calls per pixel: the shared physics, or under the simulator
# the same physics compiled for the CPU (see _simulator_pixel)
_pixel = _simulator_pixel if _SIMULATOR else pixel_intensity
_skipped = pixel_skipped.py_func if _SIMULATOR else pixel_skipped

if cuda is not None:

    @cuda.jit(cache=not _SIMULATOR)
    def pixels_kernel(P, det, sources, cells, a_star, fhkl, mask, use_mask, interpolate,
                      row_lo, col_lo, fpixels, start_index, image, omega, fell):
        """One thread per pixel of the tile ``image`` (its [0, 0] is pixel (row_lo, col_lo))."""
        c, r = cuda.grid(2)
        rows, cols = image.shape
        if r >= rows or c >= cols:
            return
        omega[r, c] = 0.0
        fell[r, c] = 0
        spixel = row_lo + r
        fpixel = col_lo + c
        if _skipped(spixel * fpixels + fpixel, start_index, use_mask, mask):
            return
        value, omega_pixel, fell_back, _, _, _, _ = _pixel(
            spixel, fpixel, P, det, sources, cells, a_star, fhkl, interpolate, False)
        image[r, c] = np.float32(value)
        omega[r, c] = omega_pixel
        if fell_back:
            fell[r, c] = 1

    @cuda.jit(cache=not _SIMULATOR)
    def rows_kernel(omega, fell, col_lo, omega_rows, fell_rows):
        """Per tile row: solid-angle sum in column order (as render_exact adds), first fall-back."""
        r = cuda.grid(1)
        if r >= omega.shape[0]:
            return
        total = 0.0
        first = -1
        for c in range(omega.shape[1]):
            total += omega[r, c]
            if first < 0 and fell[r, c] != 0:
                first = col_lo + c
        omega_rows[r] = total
        fell_rows[r] = first


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """True when a CUDA GPU is usable, or when the CUDA simulator is enabled (asked once)."""
    if cuda is None:
        return False
    try:
        return _SIMULATOR or bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - any failure to reach CUDA means "no GPU"
        return False


def kernel_params(P: KernelParams, precision: str = "double") -> KernelParams:
    """``P`` with every field converted to its declared kind, floats to ``precision``.

    Ints stay int and flags bool, so the kernel's argument types never depend
    on how the host built ``P``.
    """
    ftype = PRECISIONS[precision]
    kinds = typing.get_type_hints(KernelParams)
    convert = {float: ftype, int: int, bool: bool}
    return KernelParams(*(convert[kinds[name]](v) for name, v in zip(P._fields, P, strict=True)))


def example_params() -> KernelParams:
    """A ``KernelParams`` of placeholder values with the declared types (for compiling)."""
    kinds = typing.get_type_hints(KernelParams)
    return KernelParams(*(kinds[name](1) for name in KernelParams._fields))


def kernel_arrays(det, sources, cells, a_star, fhkl, mask, precision: str = "double"):
    """The host input arrays as the kernel takes them: contiguous, in the kernel's float type.

    An empty mask becomes one element (zero-size device arrays are avoided);
    the kernel gets ``use_mask`` separately.
    """
    ftype = PRECISIONS[precision]
    floats = tuple(np.ascontiguousarray(a, dtype=ftype) for a in (det, sources, cells, a_star,
                                                                  fhkl))
    mask_arr = np.ascontiguousarray(mask, dtype=np.uint16).reshape(-1)
    if mask_arr.size == 0:
        mask_arr = np.ones(1, dtype=np.uint16)
    return floats + (mask_arr,)


def kernel_signature(P: KernelParams, precision: str = "double") -> tuple:
    """numba types of ``pixels_kernel``'s arguments as ``CudaRenderer`` launches it."""
    from numba import typeof

    kp = kernel_params(P, precision)
    arrays = kernel_arrays(np.zeros((6, 3)), np.zeros((1, 4)), np.zeros((2, 1, 1, 3, 3)),
                           np.zeros((3, 3)), np.zeros((1, 1, 1)), np.zeros(0, np.uint16),
                           precision)
    ints = typeof(0)
    return ((typeof(kp),) + tuple(typeof(a) for a in arrays)
            + (typeof(True), typeof(True), ints, ints, ints, ints,
               typeof(np.zeros((1, 1), np.float32)), typeof(np.zeros((1, 1), np.float64)),
               typeof(np.zeros((1, 1), np.uint8))))


def compile_ptx(P: KernelParams, precision: str = "double", cc: tuple[int, int] = (9, 0)) -> str:
    """PTX of ``pixels_kernel`` for compute capability ``cc`` (needs numba-cuda, not a GPU)."""
    if cuda is None or _SIMULATOR:
        raise RuntimeError("compiling PTX needs numba-cuda and the real CUDA target")
    ptx, _ = cuda.compile_ptx(pixels_kernel.py_func, kernel_signature(P, precision), cc=cc)
    return ptx


def _tile_rows(cols: int, rows: int, budget: int | None) -> int:
    """Rows per tile so that one tile's device buffers fit the memory budget (bytes).

    ``budget`` None: the NBNUMBA_CUDA_MEMORY_MB environment variable, else half of
    the free device memory.
    """
    if budget is None:
        env = os.environ.get("NBNUMBA_CUDA_MEMORY_MB")
        if env:
            budget = int(float(env) * 2**20)
    if budget is None:
        free, _ = cuda.current_context().get_memory_info()
        budget = int(min(free / 2, 2**62))
    per_row = cols * _BYTES_PER_PIXEL + _BYTES_PER_ROW
    return max(1, min(rows, budget // per_row))


class CudaRenderer:
    """``render_exact`` on the GPU: same arguments, same results (see ``cpu.render_exact``).

    Parameters
    ----------
    precision : {"double", "single"}
        The physics runs in float64 or float32.
    memory_budget_bytes : int, optional
        Device memory the image tiles may use per call; default: the
        NBNUMBA_CUDA_MEMORY_MB environment variable, else half of the free memory.

    Attributes
    ----------
    last_timing : dict
        Seconds spent in the last call: ``"kernel"`` (CUDA events around the
        launches), ``"call"`` (the whole call, transfers included) and the
        number of ``"tiles"``; for ``bench/gpu_check.py``.

    Notes
    -----
    Each call fills ``image`` (float32, [slow, fast]) for rows ``row_lo:row_hi``
    and columns ``col_lo:col_hi``, pixels with row-major index ``>= start_index``
    and a non-zero mask only; ``omega_rows[s]`` gets the row's solid-angle sum
    (sr, added in column order) and ``fell_back[s]`` the first column where
    interpolation left the table, or -1.  Rows are split into tiles that fit the
    memory budget; each tile is copied back once.  The scene's input arrays are
    sent to the device once per renderer (``render`` calls it several times with
    the same arrays).
    """

    def __init__(self, precision: str = "double", memory_budget_bytes: int | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self.memory_budget_bytes = memory_budget_bytes
        self.last_timing: dict[str, float] = {"kernel": 0.0, "call": 0.0, "tiles": 0}
        self._inputs: tuple | None = None

    def _device_inputs(self, P, det, sources, cells, a_star, fhkl, mask):
        key = (P, tuple(id(a) for a in (det, sources, cells, a_star, fhkl, mask)))
        if self._inputs is not None and self._inputs[0] == key:
            return self._inputs[2]
        host = kernel_arrays(det, sources, cells, a_star, fhkl, mask, self.precision)
        device = (kernel_params(P, self.precision),) + tuple(cuda.to_device(a) for a in host) \
            + (mask.size > 0,)
        # the host arrays are kept alive with the entry so their ids cannot be reused
        self._inputs = (key, (det, sources, cells, a_star, fhkl, mask), device)
        return device

    def release(self) -> None:
        """Free the device copies of the last scene's inputs."""
        self._inputs = None

    def __call__(self, P, det, sources, cells, a_star, fhkl, mask, interpolate, row_lo,
                 row_hi, col_lo, col_hi, start_index, image, omega_rows, fell_back) -> None:
        t_call = time.perf_counter()
        timing = self.last_timing
        timing.update(kernel=0.0, call=0.0, tiles=0)
        if row_hi <= row_lo or col_hi <= col_lo:
            return
        kp, d_det, d_sources, d_cells, d_a_star, d_fhkl, d_mask, use_mask = \
            self._device_inputs(P, det, sources, cells, a_star, fhkl, mask)
        fpixels = image.shape[1]
        cols = col_hi - col_lo
        tile = _tile_rows(cols, row_hi - row_lo, self.memory_budget_bytes)
        stream = cuda.stream()
        kernel_s = 0.0
        for lo in range(row_lo, row_hi, tile):
            hi = min(lo + tile, row_hi)
            rows = hi - lo
            host_tile = image[lo:hi, col_lo:col_hi]
            if not use_mask and lo * fpixels + col_lo >= start_index:
                d_image = cuda.device_array((rows, cols), dtype=np.float32, stream=stream)
            else:
                # pixels the kernel skips keep their values, as render_exact leaves them
                d_image = cuda.to_device(np.ascontiguousarray(host_tile), stream=stream)
            d_omega = cuda.device_array((rows, cols), dtype=np.float64, stream=stream)
            d_fell = cuda.device_array((rows, cols), dtype=np.uint8, stream=stream)
            d_omega_rows = cuda.device_array(rows, dtype=np.float64, stream=stream)
            d_fell_rows = cuda.device_array(rows, dtype=np.int64, stream=stream)
            grid = ((cols + BLOCK[0] - 1) // BLOCK[0], (rows + BLOCK[1] - 1) // BLOCK[1])
            start, stop = cuda.event(), cuda.event()
            start.record(stream)
            pixels_kernel[grid, BLOCK, stream](kp, d_det, d_sources, d_cells, d_a_star,
                                               d_fhkl, d_mask, use_mask, bool(interpolate), lo,
                                               col_lo, fpixels, start_index, d_image, d_omega,
                                               d_fell)
            stop.record(stream)
            rows_kernel[(rows + 127) // 128, 128, stream](d_omega, d_fell, col_lo,
                                                          d_omega_rows, d_fell_rows)
            tile_image = d_image.copy_to_host(stream=stream)
            tile_omega = d_omega_rows.copy_to_host(stream=stream)
            tile_fell = d_fell_rows.copy_to_host(stream=stream)
            stream.synchronize()
            try:
                kernel_s += cuda.event_elapsed_time(start, stop) / 1000.0
            except Exception:  # noqa: BLE001 - the simulator records no times
                pass
            host_tile[...] = tile_image
            omega_rows[lo:hi] = tile_omega
            fell_back[lo:hi] = tile_fell
            timing["tiles"] += 1
        timing["kernel"] = kernel_s
        timing["call"] = time.perf_counter() - t_call
