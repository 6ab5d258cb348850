"""nbnumba: nanoBragg.c (James Holton and Ken Frankel) reimplemented with Numba kernels.

The Python API::

    import nbnumba as nb
    sim = nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=5,
                        lambda_=1.0, detpixels=256, pixel=0.1, distance=100, seed=1)
    res = sim.run()            # nb.Result: .image, .stats, .header, .write(...)
    nb.engines()               # the registry: exact, vectorised, cuda, tiles

Everything is imported on first use, so that ``import nbnumba`` stays cheap
(no numba, no Dask): ``Simulation``, ``Result``, ``Options``, ``engines``,
``select_engine``, ``errors``, ``NonBragg``/``NonBraggResult`` (nonBragg.c's
amorphous scatter), ``series``/``tiles`` (Dask distributed) and ``stills``
(serial crystallography).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> (module, attribute); None: the module itself
_LAZY = {
    "Simulation": ("nbnumba.api", "Simulation"),
    "Result": ("nbnumba.api", "Result"),
    "Options": ("nbnumba.config", "Options"),
    "engines": ("nbnumba.engines", "engines"),
    "select_engine": ("nbnumba.engines", "select"),
    "Engine": ("nbnumba.engines", "Engine"),
    "errors": ("nbnumba.errors", None),
    "NbError": ("nbnumba.errors", "NbError"),
    "NonBragg": ("nbnumba.companions.nonbragg", "NonBragg"),
    "NonBraggResult": ("nbnumba.companions.nonbragg", "NonBraggResult"),
    "series": ("nbnumba.distributed", "series"),
    "tiles": ("nbnumba.distributed", "tiles"),
    "stills": ("nbnumba.datasets.runner", "stills"),  # serial crystallography (Dask)
    "Noisify": ("nbnumba.companions.noisify", "Noisify"),  # noisify.c (noisify-nb)
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'nbnumba' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
