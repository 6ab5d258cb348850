"""The ``tiles`` engine: one image computed as rows × columns of tiles on a Dask cluster.

Each tile is computed on a worker by the engine :func:`nbnumba.engines.select` picks
there for the run's ``-device``/``-c_parity``/``-precision``; the stitched image goes
through :func:`nbnumba.simulate.render`'s sequential effects on the client like any
engine's, so files and stdout equal a single-process run.  ``distributed`` is
imported only when a tile is computed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import UsageError

__all__ = ["TiledRenderer", "tile_counts", "numba_threads_for", "use_numba_threads",
           "count_cores", "scheduler_info"]


def count_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def numba_threads_for(client) -> int:
    """Numba threads per task so that on every host tasks × threads ≤ cores."""
    workers = scheduler_info(client).get("workers", {})
    if not workers:
        return 1
    cores = client.run(count_cores)
    per_host: dict[str, list[int]] = {}
    for address, w in workers.items():
        per_host.setdefault(w.get("host", address), []).append(address)
    threads = []
    for addresses in per_host.values():
        host_cores = max(cores.get(a, 1) for a in addresses)
        slots = sum(int(workers[a].get("nthreads", 1)) for a in addresses)
        threads.append(max(1, host_cores // max(1, slots)))
    return min(threads)


def scheduler_info(client) -> dict:
    import inspect

    try:
        every = "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        every = False
    # some versions list only the first few workers unless asked for all
    return client.scheduler_info(n_workers=-1) if every else client.scheduler_info()


def use_numba_threads(threads: int | None) -> None:
    # numba.set_num_threads is per calling thread: set it in the task itself
    if not threads:
        return
    import numba

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def _render_tile(payload: tuple, interpolate: bool, rows: tuple[int, int],
                 cols: tuple[int, int], start_index: int, shape: tuple[int, int],
                 device: str, precision: str, numba_threads: int | None, exact: bool,
                 select: Callable[..., Any]):
    """Worker task: one tile with the engine a single run on this worker would choose
    (``select``: :func:`nbnumba.engines.select`, passed in to keep the layers one-way)."""
    use_numba_threads(numba_threads)
    P, det, sources, cells, a_star, fhkl, mask = payload
    # the full-size array is only touched in the tile's rows (untouched pages cost nothing)
    image = np.zeros(shape, dtype=np.float32)
    omega = np.zeros(shape[0], dtype=np.float64)
    fell = np.full(shape[0], -1, dtype=np.int64)
    kernel = select("auto", device=device, exact=exact, precision=precision).load(precision)
    kernel(P, det, sources, cells, a_star, fhkl, mask, interpolate, rows[0], rows[1],
           cols[0], cols[1], start_index, image, omega, fell)
    r = slice(*rows)
    return image[r, slice(*cols)].copy(), omega[r].copy(), fell[r].copy()


def _bounds(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    edges = [lo + (hi - lo) * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def tile_counts(tiles_rc: Sequence[int]) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in tiles_rc)
    except (TypeError, ValueError) as exc:
        raise UsageError("--tiles needs two counts, rows and columns") from exc
    if rows < 1 or cols < 1:
        raise UsageError("--tiles needs two counts of at least 1")
    return rows, cols


class TiledRenderer:
    """The ``tiles`` engine: a row-rectangle renderer (``render_exact``'s contract) that
    computes the rectangle as ``rows × cols`` tiles on a Dask cluster.

    Parameters
    ----------
    precision : {"double", "single"}
    client : distributed.Client
        The cluster.
    tiles : (int, int)
        Rows and columns of tiles.
    select : callable
        :func:`nbnumba.engines.select` (the registry passes it in).
    device, exact : str, bool
        ``-device`` and ``-c_parity``: each tile is computed by the engine
        ``select`` picks for them on its worker.
    progress : bool
        A progress bar of tiles on stderr.

    Notes
    -----
    :func:`nbnumba.simulate.render` applies its sequential effects to the stitched
    image exactly as in one process. A row's solid angle is the sum of its tiles'
    partial sums, in column order.
    """

    def __init__(self, precision: str = "double", *, select: Callable[..., Any], client=None,
                 tiles: Sequence[int] = (2, 2), device: str = "auto", exact: bool = False,
                 progress: bool = False):
        if client is None:
            raise UsageError("the tiles engine needs a Dask client (client=...)")
        self.rows, self.cols = tile_counts(tiles)
        self.client = client
        self.device = device
        self.precision = precision
        self.exact = exact
        self.select = select
        self.numba_threads = numba_threads_for(client)
        self.progress = progress
        self._payload: tuple[tuple, Any] | None = None

    def _scattered(self, arrays: tuple) -> Any:
        # render passes the same arrays on every call: send them to the workers once
        if self._payload is not None and all(
                a is b for a, b in zip(self._payload[0], arrays, strict=True)):
            return self._payload[1]
        # hash=False: a fresh key, so that releasing an earlier run's identical
        # arrays cannot take these away ("lost dependencies")
        (future,) = self.client.scatter([arrays], broadcast=True, hash=False)
        self._payload = (arrays, future)
        return future

    def __call__(self, P, det, sources, cells, a_star, fhkl, mask, interpolate, row_lo,
                 row_hi, col_lo, col_hi, start_index, image, omega_rows, fell_back) -> None:
        from distributed import as_completed

        spixels, fpixels = image.shape
        payload = self._scattered((P, det, sources, cells, a_star, fhkl, mask))
        row_bands = _bounds(row_lo, row_hi, self.rows)
        col_bands = _bounds(col_lo, col_hi, self.cols)
        futures = {}
        for rows in row_bands:
            for cols in col_bands:
                if (rows[1] - 1) * fpixels + cols[1] - 1 < start_index:
                    continue  # every pixel before start_index: the kernel would skip it
                futures[self.client.submit(
                    _render_tile, payload, bool(interpolate), rows, cols, int(start_index),
                    (spixels, fpixels), self.device, self.precision, self.numba_threads,
                    self.exact, self.select, pure=False,
                    retries=2, priority=-(rows[0] * fpixels + cols[0]))] = (rows, cols)
        bar = None
        if self.progress and futures:
            from ..progress import progress_bar

            bar = progress_bar(len(futures), "tile", "tiles")
        results = {}
        try:
            for future in as_completed(list(futures)):
                results[futures[future]] = future.result()
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        for rows in row_bands:
            r = slice(*rows)
            omega = np.zeros(rows[1] - rows[0], dtype=np.float64)
            fell = np.full(rows[1] - rows[0], -1, dtype=np.int64)
            for cols in col_bands:  # column order, as the kernel walks a row
                got = results.get((rows, cols))
                if got is None:
                    continue
                tile, tile_omega, tile_fell = got
                omega = omega + tile_omega
                fell = np.where(fell < 0, tile_fell, fell)
                target = image[r, slice(*cols)]
                index = (np.arange(*rows)[:, None] * fpixels + np.arange(*cols)[None, :])
                computed = index >= start_index
                if mask.size:
                    computed &= mask[index] != 0
                np.copyto(target, tile, where=computed)
            omega_rows[r] = omega
            fell_back[r] = fell
