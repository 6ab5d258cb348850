"""The engines that compute a float image, and the one rule that chooses among them.

Every engine loads a *row-rectangle renderer*: a function with the signature
and contract of :func:`nbnumba.kernels.exact.render_exact`::

    renderer(P, det, sources, cells, a_star, fhkl, mask, interpolate,
             row_lo, row_hi, col_lo, col_hi, start_index,
             image, omega_rows, fell_back) -> None

so that C's sequential effects (the φ=0 first pass of ``-c_parity``, the
global interpolation switch-off, statistics in C's order, noise) are applied
once, by :func:`nbnumba.simulate.render`, whichever engine computed the pixels.

The registry follows pyFAI's method registry: small records saying what each
engine is (device, bit-exactness, precisions), a cheap availability test and a
lazy loader, and one :func:`select` that turns a request into an engine or an
error.  Impossible requests raise; nothing falls back silently.

=============  ======  =====  ================  ==========================================
name           device  exact  precisions        what it is
=============  ======  =====  ================  ==========================================
``exact``      cpu     yes    double            serial C's loops, parallel over rows
                                                (``kernels/exact.py``): bit for bit C
``vectorised`` cpu     no     double            C's loops reordered so they vectorise
                                                (``kernels/vectorised.py``): ~1e-12 of the max
``cuda``       cuda    no     double, single    one GPU thread per pixel
                                                (``kernels/cuda.py``)
``tiles``      dask    (*)    (*)               tiles on a Dask cluster, each computed by
                                                the engine a single run would choose
=============  ======  =====  ================  ==========================================

(*) as the engine its tiles use.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ResourceError, UsageError

__all__ = ["Engine", "Renderer", "register", "engines", "get", "select", "parity_note",
           "DEVICES", "PRECISIONS"]

Renderer = Callable[..., None]
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("double", "single")


@dataclass(frozen=True)
class Engine:
    """One way to compute the float image.

    Attributes
    ----------
    name : str
        What ``engine=`` and ``-engine`` call it.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"dask"``.
    exact : bool
        Bit for bit serial nanoBragg.c (``-c_parity`` needs such an engine).
    precisions : tuple of str
        The floating-point precisions the physics can run in.
    available : callable
        ``available() -> bool``: cheap (no heavy import when the answer is no).
    load : callable
        ``load(precision, **options) -> Renderer``: imports and returns the renderer.
    sliced : bool
        The renderer runs on this process's CPU: the host calls it in slices of
        about a second so that SIGINT/SIGTERM stop a long run promptly.
    description : str
        One line for listings.
    """

    name: str
    device: str
    exact: bool
    precisions: tuple[str, ...]
    available: Callable[[], bool]
    load: Callable[..., Renderer]
    sliced: bool = False
    description: str = ""
    options: tuple[str, ...] = field(default=())  # keyword options ``load`` accepts


_REGISTRY: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Add (or replace) an engine in the registry; returns it."""
    _REGISTRY[engine.name] = engine
    return engine


def engines() -> list[Engine]:
    """Every registered engine, in registration order."""
    return list(_REGISTRY.values())


def get(name: str) -> Engine:
    """The engine called ``name`` (:class:`UsageError` naming the known ones if none)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UsageError(f"no engine called {name!r} (known: {known})") from None


def select(engine: str | Engine = "auto", *, device: str = "auto", exact: bool = False,
           precision: str = "double") -> Engine:
    """The engine for a request, or an error saying why there is none.

    Parameters
    ----------
    engine : str or Engine
        ``"auto"`` (choose by the rules below), an engine's name, or an
        :class:`Engine`.
    device : {"auto", "cpu", "cuda"}
        ``-device``. ``"auto"`` uses a GPU when one is usable.
    exact : bool
        ``-c_parity``: only a bit-exact engine will do, on every device.
    precision : {"double", "single"}
        ``-precision``.

    Returns
    -------
    Engine

    Raises
    ------
    UsageError
        An unknown engine, a precision the engine cannot give (``-precision
        single`` without a GPU engine), ``-c_parity`` with an inexact CPU engine.
    ResourceError
        The engine asked for is not usable here (``-device cuda`` without a GPU).

    Notes
    -----
    ``auto`` chooses, in order: ``exact`` when ``exact`` is set and the device
    is ``auto`` or ``cpu`` (whatever GPU there is: ``-c_parity`` gives serial C
    bit for bit); ``cuda`` for ``-device cuda``, or for ``-device auto`` when a
    GPU is usable; else ``vectorised``.  ``-c_parity -device cuda`` is the one
    way to run C's φ=0 behaviour on the GPU: within the golden tolerances, not
    bit for bit (:func:`parity_note` gives the warning to print).
    """
    if device not in DEVICES:
        raise UsageError(f"-device {device}: use one of {', '.join(DEVICES)}")
    if precision not in PRECISIONS:
        raise UsageError(f"-precision {precision}: use one of {', '.join(PRECISIONS)}")
    if not isinstance(engine, Engine) and engine != "auto":
        engine = get(engine)
    if isinstance(engine, Engine):
        return _check(engine, device, exact, precision)
    if exact and device != "cuda":
        return _check(get("exact"), device, exact, precision)
    if device == "cuda" or (device == "auto" and get("cuda").available()):
        return _check(get("cuda"), device, exact, precision)
    return _check(get("vectorised"), device, exact, precision)


def parity_note(engine: Engine, exact: bool) -> str | None:
    """The warning for ``-c_parity`` on an engine that is not bit-exact, else None."""
    if exact and not engine.exact:
        return (f"warning: -c_parity on the {engine.name} engine reproduces nanoBragg.c's "
                f"phi=0 behaviour within the golden tolerances, not bit for bit (only the "
                f"exact CPU engine is; drop -device {engine.device} for it)")
    return None


def _check(engine: Engine, device: str, exact: bool, precision: str) -> Engine:
    # -c_parity on a GPU asked for by name: C's phi=0 behaviour, not bit for bit (the
    # caller warns; see gpu_parity_note); any other inexact engine cannot honour it
    if exact and not engine.exact and engine.device != "cuda":
        raise UsageError(f"-c_parity needs a bit-exact engine; {engine.name!r} is not one "
                         f"(use 'exact')")
    if device != "auto" and engine.device in ("cpu", "cuda") and engine.device != device:
        raise UsageError(f"engine {engine.name!r} runs on {engine.device}, not on -device "
                         f"{device}")
    if precision not in engine.precisions:
        where = "the CPU" if engine.device == "cpu" else f"engine {engine.name!r}"
        raise UsageError(f"-precision {precision} is not available on {where} (it has "
                         f"{', '.join(engine.precisions)}; single precision needs a GPU)")
    if not engine.available():
        if engine.device == "cuda":
            raise ResourceError("-device cuda: no usable CUDA GPU (numba-cuda not installed: "
                                "pip install 'nbnumba[cuda]'; or no GPU visible)")
        if engine.device == "dask":
            raise ResourceError(f"engine {engine.name!r} needs Dask (distributed), which is "
                                f"not installed: pip install 'nbnumba[dask]'")
        raise ResourceError(f"engine {engine.name!r} is not available here")
    return engine


# ----------------------------------------------------------------- the engines


def _always() -> bool:
    return True


def _passive_openmp_threads() -> None:
    # GNU OpenMP (Numba's default threading layer here) spins idle threads between
    # parallel regions; on a busy machine they take the core the working thread needs.
    # Read when Numba starts its threads, i.e. at the first parallel call, after this.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def _load_exact(precision: str = "double", **options: Any) -> Renderer:
    _passive_openmp_threads()
    from .kernels.exact import render_exact

    return render_exact


def _load_vectorised(precision: str = "double", **options: Any) -> Renderer:
    _passive_openmp_threads()
    from .kernels.vectorised import render_vectorised

    return render_vectorised


def cuda_driver_present() -> bool:
    """Whether a CUDA driver library loads (or numba's CUDA simulator is on): cheap."""
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


def _cuda_available() -> bool:
    # importing numba.cuda costs a few tenths of a second: skip it without a driver
    if not cuda_driver_present():
        return False
    try:
        from .kernels import cuda as cuda_kernels
    except ImportError:
        return False
    return cuda_kernels.available()


def _load_cuda(precision: str = "double", **options: Any) -> Renderer:
    from .kernels import cuda as cuda_kernels

    return cuda_kernels.CudaRenderer(precision, **options)


def _dask_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("distributed") is not None


def _load_tiles(precision: str = "double", **options: Any) -> Renderer:
    from .kernels.tiles import TiledRenderer

    return TiledRenderer(precision=precision, select=select, **options)


register(Engine("exact", "cpu", True, ("double",), _always, _load_exact, sliced=True,
                description="serial nanoBragg.c's loops, parallel over rows: bit for bit C"))
register(Engine("vectorised", "cpu", False, ("double",), _always, _load_vectorised,
                sliced=True,
                description="C's loops reordered to vectorise: within ~1e-12 of the maximum"))
register(Engine("cuda", "cuda", False, ("double", "single"), _cuda_available, _load_cuda,
                description="one GPU thread per pixel (numba-cuda)",
                options=("memory_budget_bytes",)))
register(Engine("tiles", "dask", True, ("double", "single"), _dask_available, _load_tiles,
                description="tiles on a Dask cluster, each by the engine a single run "
                            "would choose", options=("client", "tiles", "device", "exact",
                                                     "progress")))


class _RegistryModule(types.ModuleType):
    """This module, callable: ``nb.engines()`` lists the engines.

    ``nbnumba.engines`` is both this module and the package's ``engines()``
    listing.  Importing a submodule binds it as the package's attribute (the
    import system does so after every first import), which used to replace the
    function and break ``nb.engines()`` once anything had run.  Making the
    module callable keeps every spelling working: ``nb.engines()``,
    ``from nbnumba import engines; engines.select(...)`` and
    ``nbnumba.engines.engines()``.
    """

    def __call__(self) -> list[Engine]:
        return engines()


sys.modules[__name__].__class__ = _RegistryModule
