"""The crystal: unit cell or orientation matrix, structure factors, size, shape, mosaicity.

Lengths of the cell in Å (as nanoBragg.c's ``-cell`` takes them), angles in
radians, sizes in metres; reciprocal vectors in 1/Å in nanoBragg's lab frame.
Structure factors are held in memory: h, k, l and F arrays or a dense table
(the library reads no ``Fdump.bin`` for them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Crystal", "StructureFactorTable", "SHAPES"]

SHAPES = ("square", "round", "gauss", "tophat")  # C's -square_xtal ... -tophat_xtal
RTD = 180.0 / math.pi  # C's RTD: degrees = radians * RTD


@dataclass(frozen=True, eq=False)
class StructureFactorTable:
    """Structure factor amplitudes as a dense table indexed from ``origin``.

    Parameters
    ----------
    dense : (nh, nk, nl) float
        ``dense[i, j, k]`` is F of ``(h, k, l) = origin + (i, j, k)`` (electrons).
    origin : (int, int, int)
        The smallest h, k, l.

    Notes
    -----
    Equivalent to listing every cell as h, k, l, F (see :meth:`as_arrays`),
    which is what nanoBragg.c reads from an hkl file.
    """

    dense: np.ndarray
    origin: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        d = np.asarray(self.dense, dtype=np.float64)
        if d.ndim != 3 or 0 in d.shape:
            raise ValueError(f"a dense F table is a non-empty 3-d array, got shape {d.shape}")
        object.__setattr__(self, "dense", d)
        object.__setattr__(self, "origin", tuple(int(v) for v in self.origin))

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(h, k, l, F)``, one entry per cell of the table (int64, int64, int64, float64)."""
        idx = np.indices(self.dense.shape).reshape(3, -1)
        return (idx[0] + self.origin[0], idx[1] + self.origin[1], idx[2] + self.origin[2],
                self.dense.reshape(-1).copy())


@dataclass(frozen=True, eq=False)
class Crystal:
    """One crystal: lattice, orientation, structure factors, size, shape and mosaicity.

    Give the lattice either as ``cell_angstrom`` + ``angles_rad`` (then C's
    ``-misset`` angles orient it, as ``-cell`` does) or as
    ``reciprocal_vectors_per_angstrom`` (rows a*, b*, c* in the lab frame,
    1/Å: the transpose of dxtbx's A = UB; what C makes of a ``-mat`` file).

    Parameters
    ----------
    cell_angstrom : (3,) float or None
        a, b, c (Å).
    angles_rad : (3,) float
        α, β, γ (rad); default 90°.
    misset_rad : (3,) float or None
        Rotations about x, y, z (rad), applied to the reciprocal vectors as C's
        ``-misset`` does.
    reciprocal_vectors_per_angstrom : (3, 3) float or None
        a*, b*, c* as rows (1/Å).
    miller : (n, 3) int or tuple of three (n,) int arrays, optional
        h, k, l of each amplitude.
    amplitudes : (n,) float, optional
        |F| for each ``miller`` index (electrons).
    table : StructureFactorTable, optional
        A dense table instead of ``miller``/``amplitudes``.
    default_F : float
        F of every reflection not listed (C's ``-default_F``); 0: none.
    N_cells : (3,) float or None
        Unit cells along a, b, c (C's ``-Na -Nb -Nc``).
    size_m : (3,) float or None
        Crystal size along a, b, c (m; C's ``-xtal_size_x/y/z`` in mm): the cell
        counts are ``ceil(size / cell length)``.
    shape : {"square", "round", "gauss", "tophat"}
        C's lattice-transform shape.
    mosaic_spread_rad : float
        Mosaic spread (rad); 0 or less: no mosaicity.
    mosaic_domains : int
        Domains drawn from C's generator (``-mosaic_dom``); -1: C's default.
    domain_matrices : (m, 3, 3) float or None
        Explicit domain rotations (row-major), used as given in place of C's
        random draw (the first one is not forced to the identity).

    Raises
    ------
    ValueError
        Neither or both lattice forms, ``miller`` without ``amplitudes`` (or of
        another length), both ``miller`` and ``table``, an unknown shape, or
        domain matrices that are not (m, 3, 3).
    """

    cell_angstrom: tuple[float, float, float] | None = None
    angles_rad: tuple[float, float, float] = (math.pi / 2, math.pi / 2, math.pi / 2)
    misset_rad: tuple[float, float, float] | None = None
    reciprocal_vectors_per_angstrom: np.ndarray | None = None
    miller: np.ndarray | None = None
    amplitudes: np.ndarray | None = None
    table: StructureFactorTable | None = None
    default_F: float = 0.0
    N_cells: tuple[float, float, float] | None = None
    size_m: tuple[float, float, float] | None = None
    shape: Literal["square", "round", "gauss", "tophat"] = "square"
    mosaic_spread_rad: float = 0.0
    mosaic_domains: int = -1
    domain_matrices: np.ndarray | None = None

    def __post_init__(self) -> None:
        has_cell = self.cell_angstrom is not None
        has_recip = self.reciprocal_vectors_per_angstrom is not None
        if has_cell == has_recip:
            raise ValueError("give the lattice as cell_angstrom (+ angles_rad) or as "
                             "reciprocal_vectors_per_angstrom, one of the two")
        if has_cell:
            object.__setattr__(self, "cell_angstrom",
                               tuple(float(v) for v in self.cell_angstrom))
        if has_recip:
            r = np.asarray(self.reciprocal_vectors_per_angstrom, dtype=np.float64)
            if r.shape != (3, 3) or not np.all(np.isfinite(r)):
                raise ValueError("reciprocal_vectors_per_angstrom: a finite 3x3 array")
            object.__setattr__(self, "reciprocal_vectors_per_angstrom", r)
        object.__setattr__(self, "angles_rad", tuple(float(v) for v in self.angles_rad))
        if (self.miller is None) != (self.amplitudes is None):
            raise ValueError("miller and amplitudes go together")
        if self.miller is not None:
            if self.table is not None:
                raise ValueError("give miller/amplitudes or a dense table, not both")
            m = np.asarray(self.miller)
            if m.ndim == 2 and m.shape[0] == 3 and m.shape[1] != 3:
                m = m.T
            if isinstance(self.miller, (tuple, list)) and len(self.miller) == 3 \
                    and np.ndim(self.miller[0]) == 1:
                m = np.stack([np.asarray(v) for v in self.miller], axis=1)
            if m.ndim != 2 or m.shape[1] != 3:
                raise ValueError(f"miller: (n, 3) indices or three (n,) arrays, got {m.shape}")
            if not np.array_equal(m, np.round(m)):
                raise ValueError("miller indices must be whole numbers")
            F = np.asarray(self.amplitudes, dtype=np.float64).reshape(-1)
            if F.shape[0] != m.shape[0]:
                raise ValueError(f"{m.shape[0]} miller indices but {F.shape[0]} amplitudes")
            object.__setattr__(self, "miller", m.astype(np.int64))
            object.__setattr__(self, "amplitudes", F)
        if self.shape not in SHAPES:
            raise ValueError(f"shape {self.shape!r}: one of {', '.join(SHAPES)}")
        if self.domain_matrices is not None:
            d = np.asarray(self.domain_matrices, dtype=np.float64)
            if d.ndim != 3 or d.shape[1:] != (3, 3) or d.shape[0] == 0:
                raise ValueError(f"domain_matrices: (m, 3, 3), got {d.shape}")
            object.__setattr__(self, "domain_matrices", d)

    @classmethod
    def from_cell(cls, cell: tuple[float, float, float, float, float, float],
                  **kwargs) -> Crystal:
        """A crystal from ``(a, b, c, α, β, γ)`` in Å and degrees, converted as C's ``-cell``
        converts them (``atof(angle)/RTD``)."""
        a, b, c, al, be, ga = (float(v) for v in cell)
        return cls(cell_angstrom=(a, b, c), angles_rad=(al / RTD, be / RTD, ga / RTD),
                   **kwargs)

    @property
    def A_matrix_per_angstrom(self) -> np.ndarray | None:
        """dxtbx's A = UB (columns a*, b*, c*, 1/Å) when the lattice was given that way."""
        r = self.reciprocal_vectors_per_angstrom
        return None if r is None else r.T.copy()

    def structure_factor_arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(hkl (n, 3) int64, F (n,) float64)`` in memory, or None when none are given."""
        if self.miller is not None:
            return self.miller, self.amplitudes
        if self.table is not None:
            h, k, l, F = self.table.as_arrays()
            return np.stack([h, k, l], axis=1), F
        return None
