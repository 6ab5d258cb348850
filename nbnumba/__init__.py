"""nbnumba: nanoBragg.c reimplemented with Numba kernels.

The heavy modules (numba, the kernels) are imported lazily so that
``nanobragg-nb`` starts quickly and error paths stay cheap.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # imported on first use, so that ``import nbnumba`` never loads Dask
    if name in ("series", "tiles"):
        import importlib

        module = importlib.import_module("nbnumba.series")
        # the module itself is callable as series(); it also holds tiles()
        return module if name == "series" else module.tiles
    raise AttributeError(f"module 'nbnumba' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "series", "tiles"])
