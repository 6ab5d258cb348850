"""nbnumba: nanoBragg.c (James Holton and Ken Frankel) reimplemented with Numba kernels.

The Python API::

    import nbnumba as nb
    sim = nb.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=100, N=5,
                        lambda_=1.0, detpixels=256, pixel=0.1, distance=100, seed=1)
    res = sim.run()            # nb.Result: .image, .stats, .header, .write(...)
    nb.engines()               # the registry: exact, vectorised, cuda, tiles
                               # (the nbnumba.engines module, callable)

Everything is imported on first use, so that ``import nbnumba`` stays cheap
(no numba, no Dask): ``Simulation``, ``Result``, ``Options``, ``engines``,
``select_engine``, ``errors``, ``NbError``, ``NbnumbaWarning`` (the base of
the library's warnings, issued with :func:`warnings.warn`; ``Result.warnings``
keeps them as lines), ``CParityWarning``, ``NonBragg``/``NonBraggResult`` (nonBragg.c's
amorphous scatter), ``series``/``tiles`` (Dask distributed), ``stills`` (serial crystallography),
and the models
(``Experiment``, ``Beam``, ``Spectrum``, ``Crystal``, ``StructureFactorTable``,
``Detector``, ``Panel``, ``Goniometer``, ``Scan``) for ``Simulation.from_models``.
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
    # the registry module, callable: nb.engines() lists the engines whichever way it was
    # imported (a submodule import rebinds the package attribute to the module)
    "engines": ("nbnumba.engines", None),
    "select_engine": ("nbnumba.engines", "select"),
    "Engine": ("nbnumba.engines", "Engine"),
    "errors": ("nbnumba.errors", None),
    "NbError": ("nbnumba.errors", "NbError"),
    "NbnumbaWarning": ("nbnumba.errors", "NbnumbaWarning"),  # every library warning's base
    "CParityWarning": ("nbnumba.errors", "CParityWarning"),  # result differs from C's files
    "NonBragg": ("nbnumba.companions.nonbragg", "NonBragg"),
    "NonBraggResult": ("nbnumba.companions.nonbragg", "NonBraggResult"),
    "series": ("nbnumba.distributed", "series"),
    "tiles": ("nbnumba.distributed", "tiles"),
    "stills": ("nbnumba.datasets.runner", "stills"),  # serial crystallography (Dask)
    "Noisify": ("nbnumba.companions.noisify", "Noisify"),  # noisify.c (noisify-nb)
    # the experiment's models (Simulation.from_models)
    "models": ("nbnumba.models", None),
    "Experiment": ("nbnumba.models", "Experiment"),
    "Beam": ("nbnumba.models", "Beam"),
    "Spectrum": ("nbnumba.models", "Spectrum"),
    "Crystal": ("nbnumba.models", "Crystal"),
    "StructureFactorTable": ("nbnumba.models", "StructureFactorTable"),
    "Detector": ("nbnumba.models", "Detector"),
    "Panel": ("nbnumba.models", "Panel"),
    "Goniometer": ("nbnumba.models", "Goniometer"),
    "Scan": ("nbnumba.models", "Scan"),
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
