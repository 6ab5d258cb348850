"""Image and geometry files that processing programs read (DIALS, XDS, pyFAI, fabio).

- :mod:`.geometry`: :class:`DetectorGeometry`, the run's geometry in defined frames.
- :mod:`.cbf`: miniCBF images (``PILATUS_1.2`` header).
- :mod:`.nxmx`: NXmx HDF5 master files (bitshuffle/LZ4).
- :mod:`.geometry_files`: XDS.INP fragment and pyFAI PONI.
- :mod:`.expt`: DIALS experiment lists (``.expt``): the true models beside the images.

fabio, h5py and hdf5plugin are imported only by the writers that need them.
``specs/formats.md`` describes every key.
"""

from __future__ import annotations

from .geometry import DetectorGeometry, lab_to_dxtbx, lab_to_mcstas, saturation_of

__all__ = ["DetectorGeometry", "lab_to_dxtbx", "lab_to_mcstas", "saturation_of"]
