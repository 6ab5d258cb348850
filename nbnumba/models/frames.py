"""Other programs' lab frames, mapped onto nanoBragg's, each by one proper rotation.

nanoBragg's lab frame (MOSFLM convention, the frame ``-trace_pixel`` prints and every
:class:`~nbnumba.models.Panel` is in): the beam travels along **+x**, **+y** points up
(towards the ceiling), **+z = x × y** (horizontal, to the right when looking along the
beam; MOSFLM's default spindle).

- **CrystFEL** (``crystfel_geometry(5)``, "laboratory coordinate system"): +z along the
  beam (away from the source), +y up, +x completing a right-handed set (to the left when
  looking along the beam). This is NeXus's McStas frame.
- **dxtbx / DIALS** (imgCIF): +z points from the sample towards the source (the beam
  travels along −z), +y up, +x completing a right-handed set (along the usual horizontal
  rotation axis).

Each mapping sends the file's beam direction to +x and its "up" to +y; both are proper
rotations (determinant +1: no mirror), so handedness, every pixel position, 2θ and
azimuth survive. A mirror would keep distances and 2θ and only show when an indexer
meets the data, which is why :func:`check_proper` runs on every matrix here at import,
and why readers map vectors only through :func:`to_lab` / :func:`from_lab`.

The matrices act on column vectors: ``lab = R @ v_file``; their inverses are their
transposes. ``specs/models.md`` states the same in prose.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CRYSTFEL_TO_LAB", "DXTBX_TO_LAB", "FRAMES", "check_proper", "from_lab", "to_lab"]

#: CrystFEL (x, y, z) -> nanoBragg lab: lab = (z, y, -x). A 90° rotation about +y.
CRYSTFEL_TO_LAB = np.array([[0.0, 0.0, 1.0],
                            [0.0, 1.0, 0.0],
                            [-1.0, 0.0, 0.0]])

#: dxtbx/imgCIF (x, y, z) -> nanoBragg lab: lab = (-z, y, x). A −90° rotation about +y.
DXTBX_TO_LAB = np.array([[0.0, 0.0, -1.0],
                         [0.0, 1.0, 0.0],
                         [1.0, 0.0, 0.0]])

#: frame name -> its rotation onto nanoBragg's lab frame
FRAMES = {"crystfel": CRYSTFEL_TO_LAB, "dxtbx": DXTBX_TO_LAB, "lab": np.eye(3)}


def check_proper(R, what: str = "frame mapping") -> np.ndarray:
    """``R`` as a float (3, 3) array if it is a proper rotation, else ``ValueError``.

    Proper: orthonormal to 1e-12 and determinant +1. A determinant of −1 (a mirror,
    e.g. one axis negated or two swapped) is refused by name: it keeps every distance
    and 2θ but inverts the handedness of the crystal an indexer would find.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise ValueError(f"{what}: not a finite 3x3 matrix")
    if not np.allclose(R @ R.T, np.eye(3), rtol=0.0, atol=1e-12):
        raise ValueError(f"{what}: not orthonormal")
    det = float(np.linalg.det(R))
    if det < 0:
        raise ValueError(f"{what}: determinant {det:+.3f}, a mirror (improper rotation)")
    return R


for _name, _R in FRAMES.items():
    check_proper(_R, f"the {_name} frame mapping")


def to_lab(v, frame: str) -> np.ndarray:
    """Vectors ``v`` (..., 3) given in ``frame`` ("crystfel", "dxtbx", "lab"), in
    nanoBragg's lab frame; positions and directions alike (the origins coincide: all
    three frames put the sample at 0)."""
    return np.asarray(v, dtype=np.float64) @ FRAMES[frame].T


def from_lab(v, frame: str) -> np.ndarray:
    """The inverse of :func:`to_lab`: lab vectors (..., 3) in ``frame``."""
    return np.asarray(v, dtype=np.float64) @ FRAMES[frame]
