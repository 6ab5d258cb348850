"""The optional parts of nbnumba and the one error when one is not installed.

``pip install nbnumba`` brings the CPU engines, the API and the four C programs'
own files (SMV, raw float, PGM); the extras bring the rest::

    pip install "nbnumba[formats]"   # miniCBF, EDF, NXmx/HDF5 writers (fabio, h5py, hdf5plugin)
    pip install "nbnumba[dask]"      # series and tiles on a Dask cluster (+ formats)
    pip install "nbnumba[cuda]"      # the CUDA engine (numba-cuda with the CUDA 13 wheels)
    pip install "nbnumba[compare]"   # nb-compare's PNGs (matplotlib)

A feature whose packages are missing is refused before any work with one line naming
the extra (:func:`require`), as a :class:`~nbnumba.errors.ResourceError` (exit code 4).
"""

from __future__ import annotations

import importlib.util

from .errors import ResourceError

__all__ = ["EXTRAS", "missing", "require"]

# extra -> the modules it brings (import names); pyproject.toml lists the distributions
EXTRAS: dict[str, tuple[str, ...]] = {
    "formats": ("fabio", "h5py", "hdf5plugin"),
    "dask": ("dask", "distributed", "fabio", "h5py", "hdf5plugin"),
    "cuda": ("numba_cuda",),
    "compare": ("matplotlib",),
}


def missing(*modules: str) -> list[str]:
    """The modules among ``modules`` that cannot be imported here (cheap: no import)."""
    gone = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent missing, or blocked in sys.modules
            found = False
        if not found:
            gone.append(name)
    return gone


def require(what: str, extra: str, *modules: str) -> None:
    """Refuse ``what`` unless ``modules`` (default: all of ``extra``'s) are installed.

    Raises
    ------
    ResourceError
        One line: ``"{what} needs fabio, which is not installed: pip install
        'nbnumba[formats]'"`` (exit code 4).
    """
    gone = missing(*(modules or EXTRAS[extra]))
    if gone:
        names = ", ".join(gone)
        verb = "is" if len(gone) == 1 else "are"
        raise ResourceError(f"{what} needs {names}, which {verb} not installed: "
                            f"pip install 'nbnumba[{extra}]'")
