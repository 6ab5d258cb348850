"""Structure factors from an atomic model (mmCIF/PDB) or an MTZ file, through gemmi.

nanoBragg.c takes amplitudes for every reflection it meets, in P1: it applies
no symmetry and no Friedel law (an hkl file must list every mate it needs).
These readers give exactly that: amplitudes of the space group's asymmetric
unit (computed from the model with gemmi's X-ray form factors, or read from an
MTZ amplitude column) expanded with every symmetry operation and their
Friedel mates, as h, k, l and F arrays for :class:`nbnumba.models.Crystal`
(``miller=``, ``amplitudes=``).  gemmi is an optional extra
(``pip install nbnumba[gemmi]``) imported only here.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..models import Crystal

__all__ = ["expand_to_p1", "structure_factors_from_model", "structure_factors_from_mtz",
           "crystal_from_file"]

RTD = 180.0 / math.pi


def _gemmi() -> Any:
    try:
        import gemmi
    except ImportError:
        raise ImportError("reading models and MTZ files needs gemmi: "
                          "pip install 'nbnumba[gemmi]'") from None
    return gemmi


def expand_to_p1(hkl, F, spacegroup: str, friedel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every symmetry mate (and Friedel mate) of each reflection, with its amplitude.

    Parameters
    ----------
    hkl : (n, 3) int
        Reflections (usually one asymmetric unit).
    F : (n,) float
        Their amplitudes; a mate gets the amplitude of the reflection it came
        from (|F| is the same for symmetry mates; Friedel's law without
        anomalous scattering).
    spacegroup : str
        A space-group name gemmi knows (``"P 21 21 21"``, ``"C 2"``...).
    friedel : bool
        Add ``-h -k -l`` of every mate.

    Returns
    -------
    hkl : (m, 3) int64
        Each index once (the first reflection that reaches it wins), sorted.
    F : (m,) float64
    """
    gemmi = _gemmi()
    sg = gemmi.find_spacegroup_by_name(spacegroup)
    if sg is None:
        raise ValueError(f"unknown space group {spacegroup!r}")
    hkl = np.asarray(hkl, dtype=np.int64).reshape(-1, 3)
    F = np.asarray(F, dtype=np.float64).reshape(-1)
    parts, amps = [], []
    for op in sg.operations():
        # gemmi's Op.apply_to_hkl: h' = h · R / DEN (the rotation part only)
        rot = np.array(op.rot, dtype=np.int64)
        parts.append(hkl @ rot // gemmi.Op.DEN)
        amps.append(F)
    if friedel:
        parts += [-p for p in parts]
        amps += list(amps)
    all_hkl = np.concatenate(parts)
    all_F = np.concatenate(amps)
    uniq, first = np.unique(all_hkl, axis=0, return_index=True)
    return uniq.astype(np.int64), all_F[first]


def structure_factors_from_model(path: str | os.PathLike, d_min_A: float,
                                 model_index: int = 0) -> tuple[np.ndarray, np.ndarray, Any]:
    """|F| of an atomic model to ``d_min_A``, expanded to P1 with Friedel mates.

    Parameters
    ----------
    path : path
        mmCIF or PDB file (its CRYST1/cell and space group are used).
    d_min_A : float
        Resolution limit (Å).
    model_index : int
        Which model of the file.

    Returns
    -------
    hkl : (m, 3) int64
    F : (m,) float64
        Electrons; gemmi's X-ray (IT92) form factors with each atom's
        occupancy and B, summed over the unit cell's symmetry images.
    structure : gemmi.Structure
        The model read (its ``cell`` and ``spacegroup_hm``).

    Raises
    ------
    ValueError
        A non-positive resolution, or a file without a unit cell.
    """
    gemmi = _gemmi()
    if not d_min_A > 0:
        raise ValueError(f"d_min_A must be > 0, got {d_min_A}")
    st = gemmi.read_structure(os.fspath(path))
    if not st.cell.is_crystal():
        raise ValueError(f"{os.fspath(path)}: no unit cell (CRYST1/_cell) in the file")
    st.setup_cell_images()
    sg = gemmi.find_spacegroup_by_name(st.spacegroup_hm or "P 1")
    asu = gemmi.make_miller_array(st.cell, sg, float(d_min_A))
    calc = gemmi.StructureFactorCalculatorX(st.cell)
    model = st[model_index]
    F = np.array([abs(calc.calculate_sf_from_model(model, [int(h), int(k), int(l)]))
                  for h, k, l in asu], dtype=np.float64)
    hkl, F = expand_to_p1(asu, F, sg.hm)
    return hkl, F, st


def structure_factors_from_mtz(path: str | os.PathLike,
                               column: str | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
    """Amplitudes of an MTZ column, expanded to P1 with Friedel mates.

    Parameters
    ----------
    path : path
        MTZ file.
    column : str, optional
        The amplitude column's label; default: the first column of type F.

    Returns
    -------
    hkl, F, mtz
        Reflections with a value (missing ones dropped), and the gemmi Mtz
        (``cell``, ``spacegroup``).

    Raises
    ------
    ValueError
        No such column, or no amplitude column.
    """
    gemmi = _gemmi()
    mtz = gemmi.read_mtz_file(os.fspath(path))
    if column is None:
        amplitude = [c.label for c in mtz.columns if c.type == "F"]
        if not amplitude:
            raise ValueError(f"{os.fspath(path)}: no amplitude (type F) column")
        column = amplitude[0]
    col = mtz.column_with_label(column)
    if col is None:
        raise ValueError(f"{os.fspath(path)}: no column {column!r}")
    hkl = np.asarray(mtz.make_miller_array(), dtype=np.int64)
    F = np.asarray(col.array, dtype=np.float64)
    keep = np.isfinite(F)
    hkl, F = expand_to_p1(hkl[keep], F[keep], mtz.spacegroup.hm)
    return hkl, F, mtz


def crystal_from_file(path: str | os.PathLike, d_min_A: float | None = None,
                      column: str | None = None, **crystal: Any) -> Crystal:
    """A :class:`~nbnumba.models.Crystal` with the file's unit cell and P1 amplitudes.

    ``.mtz`` files are read with :func:`structure_factors_from_mtz`, anything
    else as a model with :func:`structure_factors_from_model` (``d_min_A``
    needed).  The cell is oriented as nanoBragg.c's ``-cell`` orients it
    (pass ``misset_rad`` or use ``reciprocal_vectors_per_angstrom`` to
    orient it otherwise); ``crystal`` holds the other ``Crystal`` fields
    (``N_cells``, ``mosaic_spread_rad``, ...).
    """
    if os.fspath(path).lower().endswith(".mtz"):
        hkl, F, src = structure_factors_from_mtz(path, column)
    else:
        if d_min_A is None:
            raise ValueError("a model file needs d_min_A (the resolution to compute F to)")
        hkl, F, src = structure_factors_from_model(path, d_min_A)
    c = src.cell
    return Crystal.from_cell((c.a, c.b, c.c, c.alpha, c.beta, c.gamma), miller=hkl,
                             amplitudes=F, **crystal)
