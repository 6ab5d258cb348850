"""Datasets of many runs: serial-crystallography stills (:mod:`nbnumba.datasets.stills`)
and their Dask runner (:mod:`nbnumba.datasets.runner`). ``specs/stills.md``."""
