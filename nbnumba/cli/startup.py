"""Start-up costs the programs' processes can skip (the library leaves them alone).

Numba's CPU target, on its first compile or cache load, imports
``numba.np.arraymath``, whose import probes for SciPy's BLAS
(``import scipy.linalg.cython_blas``) only to decide whether ``np.correlate`` and
``np.convolve`` in jitted code call BLAS. No kernel here uses them, and the probe
imports SciPy (with NumPy's f2py through SciPy's array-API layer): 0.1-0.25 s of CPU,
a large part of a small run's start-up when SciPy is installed (pyFAI brings it).
:func:`skip_numba_blas_probe` makes that one probe find no BLAS in the programs'
processes; every other import of SciPy works as usual.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

PROBE = "numba.np.arraymath"
SKIPPED = "scipy.linalg"  # what the probe imports first (scipy itself is cheap)


class _ProbeWithoutScipy(importlib.abc.MetaPathFinder):
    """While ``numba.np.arraymath`` runs, an import of ``scipy.linalg`` (or below) fails
    as if SciPy had no BLAS; once that module has run, this finder leaves
    ``sys.meta_path`` and imports work as usual."""

    def __init__(self) -> None:
        self.probing = False

    def find_spec(self, name, path=None, target=None):
        if self.probing and (name == SKIPPED or name.startswith(SKIPPED + ".")):
            raise ModuleNotFoundError(f"{name}: skipped during Numba's start-up", name=name)
        if name != PROBE:
            return None
        self.leave()
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module
        sys.meta_path.insert(0, self)  # back in front for the probe's own imports

        def exec_module(module):
            self.probing = True
            try:
                run(module)
            finally:
                self.probing = False
                self.leave()

        spec.loader.exec_module = exec_module
        return spec

    def leave(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def skip_numba_blas_probe() -> None:
    """Let Numba's start-up find no SciPy BLAS (see the module docstring); a no-op once
    Numba's target is loaded."""
    if PROBE in sys.modules:
        return
    if not any(isinstance(f, _ProbeWithoutScipy) for f in sys.meta_path):
        sys.meta_path.insert(0, _ProbeWithoutScipy())
