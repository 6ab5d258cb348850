"""CUDA kernel: C's pixel loop on the GPU, one thread per pixel (numba-cuda).

The kernel calls ``pixel_intensity`` from ``physics.py``, the function the CPU
kernel calls, so there is one copy of the physics.  ``render_cuda`` has
``render_cpu``'s signature and contract, which lets ``simulate.render`` wrap
either backend in the same host-side sequential effects (``-c_parity``
first pass, C's global interpolation switch-off).

Only ``simulate.rows_backend`` imports this module (for ``-device cuda|auto``),
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

# device memory the image tiles may use per call (bytes); None: the
# NBNUMBA_CUDA_MEMORY_MB environment variable, else half of the free memory
memory_budget_bytes: int | None = None

# seconds spent in the last render_cuda call: "kernel" (CUDA events around the
# launches) and "call" (the whole call, transfers included); for bench/gpu_check.py
last_timing: dict[str, float] = {"kernel": 0.0, "call": 0.0, "tiles": 0}

# per pixel on the device: float32 image + float64 solid angle + uint8 fell-back flag
_BYTES_PER_PIXEL = 4 + 8 + 1
# per row: float64 solid-angle sum + int64 first fell-back column
_BYTES_PER_ROW = 8 + 8

PRECISIONS = {"double": np.float64, "single": np.float32}

_state: dict = {}


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
    from .cpu import render_one

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
        """Per tile row: solid-angle sum in column order (as render_cpu adds), first fall-back."""
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


def available() -> bool:
    """True when a CUDA GPU is usable, or when the CUDA simulator is enabled."""
    if "available" not in _state:
        ok = False
        if cuda is not None:
            try:
                ok = _SIMULATOR or bool(cuda.is_available())
            except Exception:  # noqa: BLE001 - any failure to reach CUDA means "no GPU"
                ok = False
        _state["available"] = ok
    return _state["available"]


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
    """numba types of ``pixels_kernel``'s arguments as ``render_cuda`` launches it."""
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


def _device_inputs(P, det, sources, cells, a_star, fhkl, mask, precision: str):
    """Inputs in device memory, kept while the same host arrays come back.

    ``simulate.render`` calls the backend once per row band (progress bar) and
    again after an interpolation switch-off, always with the same scene arrays,
    so they are transferred once per scene rather than once per call.
    """
    key = (precision, P, tuple(id(a) for a in (det, sources, cells, a_star, fhkl, mask)))
    cached = _state.get("inputs")
    if cached is not None and cached[0] == key:
        return cached[2]
    host = kernel_arrays(det, sources, cells, a_star, fhkl, mask, precision)
    device = (kernel_params(P, precision),) + tuple(cuda.to_device(a) for a in host) + (
        mask.size > 0,)
    # the host arrays are kept alive with the entry so their ids cannot be reused
    _state["inputs"] = (key, (det, sources, cells, a_star, fhkl, mask), device)
    return device


def release() -> None:
    """Free the device copies of the last scene's inputs."""
    _state.pop("inputs", None)


def _tile_rows(cols: int, rows: int) -> int:
    """Rows per tile so that one tile's device buffers fit the memory budget."""
    budget = memory_budget_bytes
    if budget is None:
        env = os.environ.get("NBNUMBA_CUDA_MEMORY_MB")
        if env:
            budget = int(float(env) * 2**20)
    if budget is None:
        free, _ = cuda.current_context().get_memory_info()
        budget = int(min(free / 2, 2**62))
    per_row = cols * _BYTES_PER_PIXEL + _BYTES_PER_ROW
    return max(1, min(rows, budget // per_row))


def render_cuda(P, det, sources, cells, a_star, fhkl, mask, interpolate, row_lo, row_hi,
                col_lo, col_hi, start_index, image, omega_rows, fell_back,
                precision: str = "double"):
    """``render_cpu`` on the GPU: same arguments, same results (see ``cpu.render_cpu``).

    Fills ``image`` (float32, [slow, fast]) for rows ``row_lo:row_hi`` and
    columns ``col_lo:col_hi``, pixels with row-major index ``>= start_index``
    and a non-zero mask only; ``omega_rows[s]`` gets the row's solid-angle sum
    (sr, added in column order) and ``fell_back[s]`` the first column where
    interpolation left the table, or -1.  ``precision="single"`` runs the
    physics in float32.  Rows are split into tiles that fit the device-memory
    budget; each tile is copied back once.
    """
    t_call = time.perf_counter()
    last_timing.update(kernel=0.0, call=0.0, tiles=0)
    if row_hi <= row_lo or col_hi <= col_lo:
        return
    kp, d_det, d_sources, d_cells, d_a_star, d_fhkl, d_mask, use_mask = _device_inputs(
        P, det, sources, cells, a_star, fhkl, mask, precision)
    fpixels = image.shape[1]
    cols = col_hi - col_lo
    tile = _tile_rows(cols, row_hi - row_lo)
    stream = cuda.stream()
    kernel_s = 0.0
    for lo in range(row_lo, row_hi, tile):
        hi = min(lo + tile, row_hi)
        rows = hi - lo
        host_tile = image[lo:hi, col_lo:col_hi]
        if not use_mask and lo * fpixels + col_lo >= start_index:
            d_image = cuda.device_array((rows, cols), dtype=np.float32, stream=stream)
        else:
            # pixels the kernel skips keep their values, as render_cpu leaves them
            d_image = cuda.to_device(np.ascontiguousarray(host_tile), stream=stream)
        d_omega = cuda.device_array((rows, cols), dtype=np.float64, stream=stream)
        d_fell = cuda.device_array((rows, cols), dtype=np.uint8, stream=stream)
        d_omega_rows = cuda.device_array(rows, dtype=np.float64, stream=stream)
        d_fell_rows = cuda.device_array(rows, dtype=np.int64, stream=stream)
        grid = ((cols + BLOCK[0] - 1) // BLOCK[0], (rows + BLOCK[1] - 1) // BLOCK[1])
        start, stop = cuda.event(), cuda.event()
        start.record(stream)
        pixels_kernel[grid, BLOCK, stream](kp, d_det, d_sources, d_cells, d_a_star, d_fhkl,
                                           d_mask, use_mask, bool(interpolate), lo, col_lo,
                                           fpixels, start_index, d_image, d_omega, d_fell)
        stop.record(stream)
        rows_kernel[(rows + 127) // 128, 128, stream](d_omega, d_fell, col_lo, d_omega_rows,
                                                      d_fell_rows)
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
        last_timing["tiles"] += 1
    last_timing["kernel"] = kernel_s
    last_timing["call"] = time.perf_counter() - t_call


def renderer(precision: str = "double"):
    """``render_cuda`` bound to ``precision`` ("double" or "single")."""
    if precision == "double":
        return render_cuda
    return functools.partial(render_cuda, precision=precision)
