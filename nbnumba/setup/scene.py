"""What the setup hands on: the resolved setup (for the report), the packed scene (engines)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..config import Options
from ..kernels.params import KernelParams
from .crystal import Cell, CrystalSize
from .detector import Detector
from .sampling import Sampling
from .sources import Sources
from .structure_factors import StructureFactors

__all__ = ["InMemory", "ResolvedSetup", "Scene"]


@dataclass
class InMemory:
    """Inputs handed over as arrays (from :mod:`nbnumba.models`) instead of files or draws.

    Each replaces one of nanoBragg.c's inputs; None keeps C's.

    Attributes
    ----------
    reciprocal_vectors_per_angstrom : (3, 3) float or None
        a*, b*, c* as rows (1/Å), in place of a ``-mat`` file's vectors scaled
        by ``1e-10/lambda`` (C's misset still applies).
    hkl, F : (n, 3) int and (n,) float, or None
        Structure factors in place of ``-hkl``/``Fdump.bin`` (the table C would
        build from a file listing them: :func:`nbnumba.setup.structure_factors.table_from_arrays`).
    domain_matrices : list of 9-lists or None
        Mosaic domain rotations (row-major) in place of C's random draw.
    wavelengths_m : tuple of float or None
        The wavelengths of every source direction, in place of C's
        ``-lambda``/``-dispersion`` steps.
    """

    reciprocal_vectors_per_angstrom: np.ndarray | None = None
    hkl: np.ndarray | None = None
    F: np.ndarray | None = None
    domain_matrices: list[list[float]] | None = None
    wavelengths_m: tuple[float, ...] | None = None


@dataclass
class ResolvedSetup:
    """Every value nanoBragg.c settles before its pixel loop, grouped by what it describes.

    :func:`nbnumba.setup.report.setup_report` renders C's stdout from it;
    :func:`nbnumba.setup.prepare.pack` turns it into a :class:`Scene`.
    """

    options: Options
    detector: Detector
    sampling: Sampling
    cell: Cell
    crystal: CrystalSize
    structure_factors: StructureFactors
    sources: Sources
    interpolate: int
    interpolation_auto: Literal["tricubic", "none"] | None  # what C chose, if it did
    fluence: float  # photons/m²
    umats: list[list[float]]  # mosaic domain rotations (row-major 3×3)
    stol_read: bool  # a -stol/-4stol/-Q file was read (and, as in C, not used)
    warnings: list[str] = field(default_factory=list)  # our notes on C's quirks (stderr)
    memory: InMemory | None = None  # what was handed over in memory instead of files


@dataclass
class Scene:
    """Everything the engines and the writers need, resolved as C resolves it.

    Arrays are in C's internal units: m for positions and wavelengths, 1/Å for
    the reciprocal cell.  ``resolved`` keeps the setup it was packed from.
    """

    params: KernelParams
    det: np.ndarray  # (6, 3) fdet, sdet, odet, pix0, beam, polar vectors
    sources: np.ndarray  # (n, 4) unit source direction X, Y, Z and lambda (m)
    cells: np.ndarray  # (2, phisteps, mosaic_domains, 3, 3) real cell vectors (m)
    a_star: np.ndarray  # (3, 3) unrotated reciprocal vectors (1/Å), for round/gauss/tophat
    fhkl: np.ndarray  # (h_range+1, k_range+1, l_range+1) structure factors
    mask: np.ndarray  # flat uint16 mask, or empty
    interpolate: bool
    fpixels: int
    spixels: int
    roi: tuple[int, int, int, int]  # C's roi_xmin, roi_xmax, roi_ymin, roi_ymax
    header: dict  # SMV header geometry (C's internal units)
    opts: Options
    resolved: ResolvedSetup
    phi_values: list[float] = field(default_factory=list)  # rad
    first_pass_differs: bool = False
    spindle_vector: tuple = (0.0, 0.0, 1.0)  # unit rotation axis after C's conventions

    @property
    def row_range(self) -> tuple[int, int]:
        """Rows ``[start, stop)`` inside the region of interest."""
        return max(self.roi[2], 0), min(self.roi[3], self.spixels - 1) + 1

    @property
    def col_range(self) -> tuple[int, int]:
        """Columns ``[start, stop)`` inside the region of interest."""
        return max(self.roi[0], 0), min(self.roi[1], self.fpixels - 1) + 1
