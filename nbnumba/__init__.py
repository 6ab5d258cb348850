"""nbnumba: nanoBragg.c reimplemented with Numba kernels.

The heavy modules (numba, the kernels) are imported lazily so that
``nanobragg-nb`` starts quickly and error paths stay cheap.
"""

__version__ = "0.1.0"
