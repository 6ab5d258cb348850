"""The crystal as nanoBragg.c builds it: unit cell, orientation, size, mosaic domains, φ.

Follows nanoBragg.c's ``main``: the cell from -cell or -mat with the misset
(line 1790), the crystal size and oversampling (line 2075), the mosaic domain
rotations (line 2440) and the rotated cell vectors per φ step that C computes
inside its pixel loop (line 2600), hoisted out of it.  Vectors are C's
4-element form ``[length, x, y, z]``.  Nothing here prints:
:mod:`nbnumba.setup.report` words the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .. import geometry as g
from ..config import Options
from ..constants import AVOGADRO, DBL_MIN
from ..geometry import Vec
from . import rules

__all__ = ["Cell", "CrystalSize", "Checks", "SetupRandom", "build_cell", "crystal_size",
           "mosaic_umats", "cell_tables", "ODDBALL_LIMIT"]

# C warns of "oddball" angles when a sine or cosine is outside ±ODDBALL_LIMIT
ODDBALL_LIMIT = 1.0000001

Checks = list[tuple[str, float]]  # (C's label, value) of the sines and cosines C checks


class SetupRandom(Protocol):
    """The part of C's generators the setup draws from (:class:`nbnumba.rng.RandomStreams`)."""

    mosaic_seed: np.ndarray
    misset_seed: np.ndarray

    def mosaic_rotation_umat(self, mosaicity: float, seed: np.ndarray) -> np.ndarray: ...

    def umat2misset(self, umat) -> tuple[float, float, float]: ...


@dataclass
class Cell:
    """The oriented unit cell (lines 1790-2070).

    C's 4-vectors ``[length, x, y, z]``: ``a``, ``b``, ``c`` are the
    real-space vectors in m (what the kernel rotates), ``a_angstrom`` etc. the
    same in Å as C prints them, ``a_star_per_angstrom`` etc. the reciprocal
    vectors in 1/Å.  Angles in rad.  The other fields record what C warned
    about, for the report.
    """

    a: Vec
    b: Vec
    c: Vec
    a_star_per_angstrom: Vec
    b_star_per_angstrom: Vec
    c_star_per_angstrom: Vec
    a_angstrom: Vec
    b_angstrom: Vec
    c_angstrom: Vec
    angles: tuple[float, float, float]  # alpha, beta, gamma
    reciprocal_angles: tuple[float, float, float]  # alpha*, beta*, gamma*
    volume_angstrom3: float
    cell_checks: Checks
    reciprocal_checks: Checks
    user_cell_checks: Checks | None = None  # -cell: the reciprocal angles C first derives
    impossible_volume: float | None = None  # -cell: a volume ≤ 0 that C replaced
    impossible_reciprocal: tuple[float, float, float] | None = None  # lengths ≤ 0
    matfilename: str | None = None
    random_missets: tuple[float, float, float] | None = None  # rad, -misset random
    # a*, b*, c* (1/Å, rows) once oriented (after -mat's scaling and the misset), before
    # C regenerates real and reciprocal vectors from each other: what models.Crystal holds
    oriented_reciprocal: tuple[tuple[float, float, float], ...] | None = None


@dataclass
class CrystalSize:
    """Unit cells per axis, the crystal's size and the pixel oversampling (line 2075)."""

    Na: float
    Nb: float
    Nc: float
    xtalsize: tuple[float, float, float]  # m
    reciprocal_pixel_size: float  # m
    recommended_oversample: int
    oversample: int
    oversample_auto: bool  # no -oversample: C picked the recommended one
    molecular_weight: float  # Da, C's "approximate MW"
    sample_clipped: tuple[bool, bool]  # -beamsize smaller than the sample (height, width)

    @property
    def xtalsize_max(self) -> float:
        return max(self.xtalsize)


def build_cell(o: Options, rng: SetupRandom, reciprocal: np.ndarray | None = None) -> Cell:
    """Unit cell from -cell or -mat, misset applied, direct and reciprocal (line 1790).

    Parameters
    ----------
    o : Options
        Parsed flags (cell lengths in Å, angles in rad; ``lambda0`` in m, by
        which an -mat file's vectors are divided).
    rng : SetupRandom
        C's generators; ``-misset random`` draws one orientation from them.
    reciprocal : (3, 3) float, optional
        a*, b*, c* as rows (1/Å) in place of a -mat file's (already scaled:
        C's ``1e-10/lambda`` is not applied); the misset still is.

    Returns
    -------
    Cell

    Raises
    ------
    InputFileError
        An unreadable -mat file.
    """
    a = g.vec(0, 0, 0)
    b = g.vec(0, 0, 0)
    c = g.vec(0, 0, 0)
    a[0], b[0], c[0] = o.cell_a, o.cell_b, o.cell_c
    a_star = g.vec(0, 0, 0)
    b_star = g.vec(0, 0, 0)
    c_star = g.vec(0, 0, 0)
    cell = Cell(a=a, b=b, c=c, a_star_per_angstrom=a_star, b_star_per_angstrom=b_star,
                c_star_per_angstrom=c_star, a_angstrom=[], b_angstrom=[], c_angstrom=[],
                angles=(0.0, 0.0, 0.0), reciprocal_angles=(0.0, 0.0, 0.0), volume_angstrom3=0.0,
                cell_checks=[], reciprocal_checks=[])
    V_cell = 0.0
    if o.user_cell:
        V_cell = _reciprocal_from_cell(o, cell)
    if reciprocal is not None:
        r = np.asarray(reciprocal, dtype=np.float64).reshape(3, 3)
        a_star[1:], b_star[1:], c_star[1:] = ([float(v) for v in r[i]] for i in range(3))
    elif o.matfilename is not None:
        from ..io import read_mat

        cell.matfilename = o.matfilename
        astar, bstar, cstar = read_mat(o.matfilename)
        a_star[1:], b_star[1:], c_star[1:] = list(astar), list(bstar), list(cstar)
        scale = 1e-10 / o.lambda0
        g.vector_scale(a_star, a_star, scale)
        g.vector_scale(b_star, b_star, scale)
        g.vector_scale(c_star, c_star, scale)

    misset_flag = o.misset_flag
    missets = list(o.misset_angles)
    if misset_flag == -1:
        umat = rng.mosaic_rotation_umat(90.0, rng.misset_seed)
        missets = list(rng.umat2misset(umat))
        cell.random_missets = (missets[0], missets[1], missets[2])
        misset_flag = 1
    if misset_flag > 0:
        for v in (a_star, b_star, c_star):
            g.rotate(v, v, missets[0], missets[1], missets[2])
    cell.oriented_reciprocal = tuple((v[1], v[2], v[3]) for v in (a_star, b_star, c_star))
    _real_from_reciprocal(o, cell, V_cell)
    cell.a_angstrom, cell.b_angstrom, cell.c_angstrom = list(a), list(b), list(c)
    g.vector_scale(a, a, 1e-10)
    g.vector_scale(b, b, 1e-10)
    g.vector_scale(c, c, 1e-10)
    return cell


def _reciprocal_from_cell(o: Options, cell: Cell) -> float:
    """Reciprocal vectors from -cell's lengths and angles (line 1800); returns V_cell (Å³)."""
    sin, cos = math.sin, math.cos
    a, b, c = cell.a, cell.b, cell.c
    a_star, b_star, c_star = cell.a_star_per_angstrom, cell.b_star_per_angstrom, \
        cell.c_star_per_angstrom
    alpha, beta, gamma = o.alpha, o.beta, o.gamma
    if b[0] <= 0.0:
        b[0] = a[0]
    if c[0] <= 0.0:
        c[0] = a[0]
    if alpha <= 0.0:
        alpha = math.pi / 2
    if beta <= 0.0:
        beta = math.pi / 2
    if gamma <= 0.0:
        gamma = math.pi / 2
    aavg = (alpha + beta + gamma) / 2
    skew = sin(aavg) * sin(aavg - alpha) * sin(aavg - beta) * sin(aavg - gamma)
    if skew < 0.0:
        skew = -skew
    V_cell = 2.0 * a[0] * b[0] * c[0] * math.sqrt(skew)
    if V_cell <= 0.0:
        cell.impossible_volume = V_cell
        V_cell = DBL_MIN
    V_star = 1.0 / V_cell
    a_star[0] = b[0] * c[0] * sin(alpha) * V_star
    b_star[0] = c[0] * a[0] * sin(beta) * V_star
    c_star[0] = a[0] * b[0] * sin(gamma) * V_star
    if a_star[0] <= 0.0 or b_star[0] <= 0.0 or c_star[0] <= 0.0:
        cell.impossible_reciprocal = (a_star[0], b_star[0], c_star[0])
        for v in (a_star, b_star, c_star):
            v[0] = abs(v[0])
            if v[0] <= 0.0:
                v[0] = DBL_MIN
    sin_alpha_star = a[0] * V_star / b_star[0] / c_star[0]
    sin_beta_star = b[0] * V_star / a_star[0] / c_star[0]
    sin_gamma_star = c[0] * V_star / a_star[0] / b_star[0]
    cos_alpha_star = (cos(beta) * cos(gamma) - cos(alpha)) / (sin(beta) * sin(gamma))
    cos_beta_star = (cos(gamma) * cos(alpha) - cos(beta)) / (sin(gamma) * sin(alpha))
    cos_gamma_star = (cos(alpha) * cos(beta) - cos(gamma)) / (sin(alpha) * sin(beta))
    # C's label has a typo ("cos9gamma_star)"): its stdout is the contract
    cell.user_cell_checks = [
        ("sin(alpha_star) = ", sin_alpha_star), ("cos(alpha_star) = ", cos_alpha_star),
        ("sin(beta_star)  = ", sin_beta_star), ("cos(beta_star)  = ", cos_beta_star),
        ("sin(gamma_star) = ", sin_gamma_star), ("cos9gamma_star) = ", cos_gamma_star)]
    sin_gamma_star = min(max(sin_gamma_star, -1.0), 1.0)
    if cos_alpha_star * cos_alpha_star > 1.0:
        cos_alpha_star = 1.0
    if cos_beta_star * cos_beta_star > 1.0:
        cos_beta_star = 1.0
    if cos_gamma_star * cos_gamma_star > 1.0:
        cos_gamma_star = 1.0
    a_star[1] = a_star[0]
    b_star[1] = b_star[0] * cos_gamma_star
    c_star[1] = c_star[0] * cos_beta_star
    a_star[2] = 0.0
    b_star[2] = b_star[0] * sin_gamma_star
    c_star[2] = c_star[0] * (cos_alpha_star - cos_beta_star * cos_gamma_star) / sin_gamma_star
    a_star[3] = 0.0
    b_star[3] = 0.0
    c_star[3] = c_star[0] * V_cell / (a[0] * b[0] * c[0] * sin_gamma_star)
    return V_cell


def _real_from_reciprocal(o: Options, cell: Cell, V_cell: float) -> None:
    """Real-space vectors, volume and angles from the oriented reciprocal ones (line 1990)."""
    a, b, c = cell.a, cell.b, cell.c
    a_star, b_star, c_star = cell.a_star_per_angstrom, cell.b_star_per_angstrom, \
        cell.c_star_per_angstrom
    a_star_cross_b_star = g.cross_product(a_star, b_star, g.vec(0, 0, 0))
    b_star_cross_c_star = g.cross_product(b_star, c_star, g.vec(0, 0, 0))
    c_star_cross_a_star = g.cross_product(c_star, a_star, g.vec(0, 0, 0))
    V_star = g.dot_product(a_star, b_star_cross_c_star)
    if o.user_cell:
        # -cell's lengths win over what the (possibly rotated) vectors give
        g.vector_rescale(b_star_cross_c_star, b_star_cross_c_star, a[0] / V_cell)
        g.vector_rescale(c_star_cross_a_star, c_star_cross_a_star, b[0] / V_cell)
        g.vector_rescale(a_star_cross_b_star, a_star_cross_b_star, c[0] / V_cell)
        V_star = 1.0 / V_cell
    V_cell = 1.0 / V_star
    g.vector_scale(b_star_cross_c_star, a, V_cell)
    g.vector_scale(c_star_cross_a_star, b, V_cell)
    g.vector_scale(a_star_cross_b_star, c, V_cell)
    a_cross_b = g.cross_product(a, b, g.vec(0, 0, 0))
    b_cross_c = g.cross_product(b, c, g.vec(0, 0, 0))
    c_cross_a = g.cross_product(c, a, g.vec(0, 0, 0))
    g.vector_scale(b_cross_c, a_star, V_star)
    g.vector_scale(c_cross_a, b_star, V_star)
    g.vector_scale(a_cross_b, c_star, V_star)

    sin_alpha = a_star[0] * V_cell / b[0] / c[0]
    sin_beta = b_star[0] * V_cell / a[0] / c[0]
    sin_gamma = c_star[0] * V_cell / a[0] / b[0]
    cos_alpha = g.dot_product(b, c) / b[0] / c[0]
    cos_beta = g.dot_product(a, c) / a[0] / c[0]
    cos_gamma = g.dot_product(a, b) / a[0] / b[0]
    cell.cell_checks = [("sin_alpha = ", sin_alpha), ("cos_alpha = ", cos_alpha),
                        ("sin_beta  = ", sin_beta), ("cos_beta  = ", cos_beta),
                        ("sin_gamma = ", sin_gamma), ("cos_gamma = ", cos_gamma)]
    cell.angles = (_angle(sin_alpha, cos_alpha), _angle(sin_beta, cos_beta),
                   _angle(sin_gamma, cos_gamma))
    sin_alpha_star = a[0] * V_star / b_star[0] / c_star[0]
    sin_beta_star = b[0] * V_star / a_star[0] / c_star[0]
    sin_gamma_star = c[0] * V_star / a_star[0] / b_star[0]
    cos_alpha_star = g.dot_product(b_star, c_star) / b_star[0] / c_star[0]
    cos_beta_star = g.dot_product(a_star, c_star) / a_star[0] / c_star[0]
    cos_gamma_star = g.dot_product(a_star, b_star) / a_star[0] / b_star[0]
    cell.reciprocal_checks = [
        ("sin(alpha_star) = ", sin_alpha_star), ("cos(alpha_star) = ", cos_alpha_star),
        ("sin(beta_star)  = ", sin_beta_star), ("cos(beta_star)  = ", cos_beta_star),
        ("sin(gamma_star) = ", sin_gamma_star), ("cos(gamma_star) = ", cos_gamma_star)]
    cell.reciprocal_angles = (_angle(sin_alpha_star, cos_alpha_star),
                              _angle(sin_beta_star, cos_beta_star),
                              _angle(sin_gamma_star, cos_gamma_star))
    cell.volume_angstrom3 = V_cell


def _angle(s: float, c: float) -> float:
    """C's clamping of a (sin, cos) pair before atan2."""
    s = min(max(s, -1.0), 1.0)
    if c * c > 1.0:
        c = 1.0
    return math.atan2(s, c)


def crystal_size(o: Options, cell: Cell, distance: float, pixel_size: float) -> CrystalSize:
    """Cells per axis (from -N or the sample size) and the oversampling (line 2075).

    Parameters
    ----------
    o : Options
        Parsed flags: -N/-Na/-Nb/-Nc, the sample size, -beamsize, -oversample.
        A -beamsize smaller than the sample clips the sample first (lines
        1134-1140).
    cell : Cell
        The unit cell (:func:`build_cell`).
    distance, pixel_size : float
        Detector distance and pixel size (m): with λ they give the reciprocal
        pixel size that C's recommended oversampling compares with the
        crystal's largest size.

    Returns
    -------
    CrystalSize
    """
    sample_x, sample_y, sample_z = o.sample_x, o.sample_y, o.sample_z
    clipped = (0.0 <= o.beamsize < sample_y, 0.0 <= o.beamsize < sample_z)
    if clipped[0]:
        sample_y = o.beamsize
    if clipped[1]:
        sample_z = o.beamsize
    Na, Nb, Nc = float(o.Na), float(o.Nb), float(o.Nc)
    a, b, c = cell.a, cell.b, cell.c
    if sample_x > 0:
        Na = float(math.ceil(sample_x / a[0]))
    if sample_y > 0:
        Nb = float(math.ceil(sample_y / b[0]))
    if sample_z > 0:
        Nc = float(math.ceil(sample_z / c[0]))
    Na, Nb, Nc = max(Na, 1.0), max(Nb, 1.0), max(Nc, 1.0)
    xtalsize = (a[0] * Na, b[0] * Nb, c[0] * Nc)
    reciprocal_pixel_size = o.lambda0 * distance / pixel_size
    recommended = rules.c_int_ceil(3.0 * max(xtalsize), reciprocal_pixel_size)
    if recommended <= 0:
        recommended = 1
    oversample = o.oversample if o.oversample > 0 else recommended
    volume = xtalsize[0] * xtalsize[1] * xtalsize[2]
    return CrystalSize(
        Na=Na, Nb=Nb, Nc=Nc, xtalsize=xtalsize, reciprocal_pixel_size=reciprocal_pixel_size,
        recommended_oversample=recommended, oversample=oversample,
        oversample_auto=o.oversample <= 0,
        molecular_weight=volume * 1.2e6 * AVOGADRO / (Na * Nb * Nc), sample_clipped=clipped)


def mosaic_umats(mosaic_spread: float, mosaic_domains: int,
                 rng: SetupRandom) -> list[list[float]]:
    """Mosaic domain rotations from C's generator (line 2440).

    Parameters
    ----------
    mosaic_spread : float
        Spread (rad).
    mosaic_domains : int
        How many domains.
    rng : SetupRandom
        C's generators; C draws every domain's rotation, even for a zero
        spread, and then forces domain 0 to the identity.

    Returns
    -------
    list of list of float
        ``mosaic_domains`` row-major 3×3 rotation matrices.
    """
    umats = []
    for mos_tic in range(mosaic_domains):
        umat = list(rng.mosaic_rotation_umat(mosaic_spread, rng.mosaic_seed))
        if mos_tic == 0:
            umat = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        umats.append(umat)
    return umats


def cell_tables(a: Vec, b: Vec, c: Vec, spindle: Vec, phi_values: list[float],
                umats: list[list[float]], mosaic_spread: float,
                c_parity: bool) -> tuple[np.ndarray, bool]:
    """Rotated cell vectors per φ step and mosaic domain, hoisted out of the pixel loop.

    Parameters
    ----------
    a, b, c : Vec
        Real-space cell vectors (m).
    spindle : Vec
        Unit rotation axis.
    phi_values : list of float
        φ of each step (rad).
    umats : list of list of float
        Mosaic rotations (:func:`mosaic_umats`).
    mosaic_spread : float
        Spread (rad); zero leaves the vectors unrotated, as C does.
    c_parity : bool
        Reproduce serial C's φ=0 carry-over (see below).

    Returns
    -------
    cells : ndarray, shape (2, phisteps, mosaic_domains, 3, 3)
        ``cells[table, φ, domain, axis]`` (m).  Table 0 is what every pass
        through C's φ loop uses; table 1 is for the very first pass.  They
        differ only with ``c_parity``: serial C rotates only when φ ≠ 0 and
        otherwise keeps the last rotation it computed (see
        ../shared/golden/README.md), which is the unrotated cell on the first
        pass and the last φ ≠ 0 step of the previous pass afterwards.
    first_pass_differs : bool
        Whether the two tables differ.
    """
    nphi = len(phi_values)
    nmos = len(umats)
    rotated = []
    for phi in phi_values:
        rotated.append([g.rotate_axis(v, g.vec(0, 0, 0), spindle, phi) for v in (a, b, c)])
    unrotated = [list(a), list(b), list(c)]
    tables = [list(rotated), list(rotated)]
    differs = False
    if c_parity:
        nonzero = [i for i, phi in enumerate(phi_values) if phi != 0.0]
        for which in (0, 1):
            carry = unrotated if (which == 1 or not nonzero) else rotated[nonzero[-1]]
            for i, phi in enumerate(phi_values):
                if phi != 0.0:
                    carry = rotated[i]
                else:
                    tables[which][i] = carry
        differs = any(tables[0][i] is not tables[1][i] for i in range(nphi))
    cells = np.zeros((2, nphi, nmos, 3, 3), dtype=np.float64)
    for which in (0, 1):
        for i in range(nphi):
            for m, umat in enumerate(umats):
                for axis, vp in enumerate(tables[which][i]):
                    if mosaic_spread > 0.0:
                        v = g.rotate_umat(vp, g.vec(0, 0, 0), umat)
                    else:
                        v = vp
                    cells[which, i, m, axis] = v[1:4]
    return cells, differs
