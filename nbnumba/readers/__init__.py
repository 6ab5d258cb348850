"""Readers of other programs' experiment files, producing :mod:`nbnumba.models`.

- :mod:`.crystfel_geom`: CrystFEL geometry files (``.geom``): panels, slab layout,
  bad regions as a mask, photon energy and ADU scale where given.
- :mod:`.dials_expt`: DIALS/dxtbx experiment lists (``.expt``/``.json``): beam,
  multi-panel detector (hierarchies flattened), crystal, goniometer, scan.

Neither imports CrystFEL or dxtbx. Every vector is mapped into nanoBragg's lab frame with
:mod:`nbnumba.models.frames` (one proper rotation per program; ``specs/models.md``).
"""

from __future__ import annotations

__all__ = ["crystfel_geom", "dials_expt"]
