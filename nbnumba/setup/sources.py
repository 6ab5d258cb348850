"""nanoBragg.c's X-ray sources: a -sourcefile, or a divergence grid × a wavelength spread.

Follows nanoBragg.c's ``main`` at line 2290.  Nothing here prints:
:mod:`nbnumba.setup.report` words the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import geometry as g
from ..cnum import c_div
from ..config import Options
from ..errors import SetupExit
from ..geometry import Vec
from .detector import Detector
from .sampling import Sampling

__all__ = ["Sources", "build_sources", "divergence_grid", "wavelengths", "source_positions",
           "SOURCE_DISTANCE"]

# C places generated sources 10 m upstream of the sample
SOURCE_DISTANCE = 10.0


@dataclass
class Sources:
    """The sources as C lists them.

    ``rows``: ``(X, Y, Z, intensity, lambda)`` per source as C prints them
    (position in m, wavelength in m); ``directions``: shape (n, 4), the unit
    direction and the wavelength (m) the kernel uses.  For a generated grid,
    ``deviations`` are the (horizontal, vertical) divergence angles (rad) kept
    by the round cut and ``lambdas`` the wavelengths; both are empty for a
    -sourcefile.  ``divsteps`` is C's count of divergence steps (-1, C's
    initial value, for a -sourcefile).
    """

    rows: list[tuple[float, float, float, float, float]]
    directions: np.ndarray
    deviations: list[tuple[float, float]] = field(default_factory=list)
    lambdas: list[float] = field(default_factory=list)
    divsteps: int = -1


def build_sources(o: Options, sampling: Sampling, detector: Detector,
                  lambdas: tuple[float, ...] | None = None) -> Sources:
    """Source directions and wavelengths: -sourcefile or divergence × dispersion (line 2290).

    Parameters
    ----------
    o : Options
        Parsed flags: ``sourcefilename``, ``round_div``, ``c_parity``,
        ``lambda0`` (the central wavelength, m).
    sampling : Sampling
        Divergence and dispersion steps as C settled them.
    detector : Detector
        Its beam, polarization and vertical (beam × polarization) vectors
        orient the divergence grid.
    lambdas : tuple of float, optional
        Wavelengths (m) in place of C's dispersion steps: every divergence
        direction gets each of them (a spectrum given in memory).

    Returns
    -------
    Sources

    Raises
    ------
    SetupExit
        An empty -sourcefile, or a divergence grid the round cut empties
        (C goes on and writes a NaN image).
    """
    rows: list[tuple[float, float, float, float, float]] = []
    if o.sourcefilename is not None:
        rows = _read_sourcefile(o, detector.beam_vector, o.lambda0)
    sources = Sources(rows=rows, directions=np.zeros((0, 4)))
    if not rows:
        _grid(o, sampling, detector.beam_vector, detector.polar_vector, detector.vert_vector,
              o.lambda0, sources, lambdas)
    if not sources.rows:
        raise SetupExit("-hdivsteps/-vdivsteps/-divsteps with -hdivrange/-vdivrange/-divergence: "
                        "the round divergence cut (-round_div, the default) leaves no source "
                        "direction; use -square_div or other steps")
    directions = []
    for X, Y, Z, _inten, lam in sources.rows:
        v = g.vec(X, Y, Z)
        g.unitize(v, v)
        directions.append([v[1], v[2], v[3], lam])
    sources.directions = np.asarray(directions, dtype=np.float64)
    return sources


def _read_sourcefile(o: Options, beam_vector, lambda0: float) -> list:
    """-sourcefile rows; missing columns take C's defaults (upstream on the beam, 1, λ0)."""
    from ..io import read_text_file

    cols = read_text_file(o.sourcefilename, 5, skip_comments=not o.c_parity)
    if len(cols[0]) == 0:
        raise SetupExit(f"reading source definition file {o.sourcefilename}: no data")
    rows = []
    for X, Y, Z, inten, lam in zip(*cols, strict=True):
        X = -SOURCE_DISTANCE * beam_vector[1] if math.isnan(X) else float(X)
        Y = -SOURCE_DISTANCE * beam_vector[2] if math.isnan(Y) else float(Y)
        Z = -SOURCE_DISTANCE * beam_vector[3] if math.isnan(Z) else float(Z)
        inten = 1.0 if math.isnan(inten) else float(inten)
        lam = lambda0 if math.isnan(lam) else float(lam)
        rows.append((X, Y, Z, inten, lam))
    return rows


def _grid(o: Options, s: Sampling, beam_vector, polar_vector, vert_vector, lambda0: float,
          sources: Sources, lambdas: tuple[float, ...] | None = None) -> None:
    """The divergence grid (cut round unless -square_div) times the wavelengths."""
    sources.deviations = divergence_grid(s.hdivsteps, s.hdivrange, s.hdivstep, s.vdivsteps,
                                         s.vdivrange, s.vdivstep, o.round_div)
    sources.divsteps = len(sources.deviations)
    if lambdas is None:
        sources.lambdas = wavelengths(lambda0, s.dispsteps, s.dispersion, s.dispstep)
    else:
        sources.lambdas = [float(v) for v in lambdas]
    n = sources.divsteps * len(sources.lambdas)
    weight = 1.0 / n if n else math.inf
    for X, Y, Z in source_positions(sources.deviations, beam_vector, polar_vector, vert_vector,
                                    SOURCE_DISTANCE):
        for lam in sources.lambdas:
            sources.rows.append((X, Y, Z, weight, lam))


def divergence_grid(hdivsteps: int, hdivrange: float, hdivstep: float, vdivsteps: int,
                    vdivrange: float, vdivstep: float,
                    round_div: bool) -> list[tuple[float, float]]:
    """The divergence angles C keeps, in C's order (nanoBragg.c line 2300, nonBragg.c 1290).

    Parameters
    ----------
    hdivsteps, vdivsteps : int
        Grid points across the horizontal and vertical range.
    hdivrange, hdivstep, vdivrange, vdivstep : float
        Ranges and steps (rad), as C's sampling rules settled them.
    round_div : bool
        Keep only the points inside the ellipse of the two ranges (with C's
        10 % slack); otherwise the whole rectangle.

    Returns
    -------
    list of (float, float)
        (horizontal, vertical) deviation (rad) of each kept point.
    """
    def keep(hdiv: float, vdiv: float) -> bool:
        # with no divergence C divides 0 by 0: the NaN makes the test false
        test = c_div(c_div(hdiv * hdiv - hdivstep * hdivstep / 4.0 * (1 - hdivsteps % 2),
                           hdivrange), hdivrange)
        test += c_div(c_div(vdiv * vdiv - vdivstep * vdivstep / 4.0 * (1 - vdivsteps % 2),
                            vdivrange), vdivrange)
        return not (round_div and test * 4.0 > 1.1)

    grid = []
    for hdiv_tic in range(hdivsteps):
        for vdiv_tic in range(vdivsteps):
            hdiv = hdivstep * hdiv_tic - hdivrange / 2.0
            vdiv = vdivstep * vdiv_tic - vdivrange / 2.0
            if keep(hdiv, vdiv):
                grid.append((hdiv, vdiv))
    return grid


def wavelengths(lambda0: float, dispsteps: int, dispersion: float,
                dispstep: float) -> list[float]:
    """C's wavelengths (m): ``lambda0·(1 + dispstep·i − dispersion/2)`` for each step.

    ``lambda0`` in m; ``dispersion`` and ``dispstep`` are fractions of it.
    """
    return [lambda0 * (1.0 + dispstep * disp_tic - dispersion / 2.0)
            for disp_tic in range(dispsteps)]


def source_positions(deviations: list[tuple[float, float]], beam_vector: Vec,
                     polar_vector: Vec, vert_vector: Vec,
                     distance: float) -> list[tuple[float, float, float]]:
    """Source positions ``distance`` (m) upstream, tilted by each divergence deviation.

    C turns the upstream point about the polarization axis by the vertical
    angle, then about beam × polarization (``vert_vector``) by the horizontal
    one.  Returns one (X, Y, Z) in m per deviation.
    """
    positions = []
    for hdiv, vdiv in deviations:
        vector = g.vec(-distance * beam_vector[1], -distance * beam_vector[2],
                       -distance * beam_vector[3])
        newvector = g.rotate_axis(vector, g.vec(0, 0, 0), polar_vector, vdiv)
        g.rotate_axis(newvector, vector, vert_vector, hdiv)
        positions.append((vector[1], vector[2], vector[3]))
    return positions
