"""The Numba kernels (CPU: ``exact``, ``vectorised``; GPU: ``cuda``; shared: ``physics``).

Numba's on-disk cache (``cache=True``) checks a compiled kernel against the file
that defines it only; ``vectorised.py`` inlines ``physics.py``, so an edit of
``physics.py`` (or an upgrade that changes it alone) would keep the old compiled
physics. Importing this package first puts :class:`KernelSourcesLocator` in
front of Numba's cache locators: for functions defined here the cache's source
stamp also holds a digest of every kernel source file, so a change to any of
them recompiles every kernel. The cache files stay where Numba puts them.
"""

from __future__ import annotations

import functools
import hashlib
import os

from numba.core import caching as _caching

__all__ = ["KERNEL_DIR", "sources_digest", "KernelSourcesLocator"]

KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))

# numba >= 0.62 names them without the underscore
_CacheImplBase = getattr(_caching, "CacheImpl", None) or _caching._CacheImpl
_LocatorBase = _caching._CacheLocator


@functools.lru_cache(maxsize=1)
def sources_digest() -> str:
    """sha256 over the names and bytes of every ``.py`` file of the kernels package
    (but this one, which holds no kernel code)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(KERNEL_DIR)):
        if name.endswith(".py") and name != "__init__.py":
            digest.update(name.encode() + b"\0")
            with open(os.path.join(KERNEL_DIR, name), "rb") as f:
                digest.update(f.read())
            digest.update(b"\0")
    return digest.hexdigest()


class KernelSourcesLocator(_LocatorBase):
    """Numba's own locator for a kernel function, with every kernel source in its stamp."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return (self._inner.get_source_stamp(), "nbnumba-kernel-sources", sources_digest())

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            if os.path.dirname(os.path.abspath(py_file)) != KERNEL_DIR:
                return None
        except (TypeError, ValueError):
            return None
        for other in _CacheImplBase._locator_classes:
            if other is cls:
                continue
            inner = other.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None


if KernelSourcesLocator not in _CacheImplBase._locator_classes:
    _CacheImplBase._locator_classes.insert(0, KernelSourcesLocator)
