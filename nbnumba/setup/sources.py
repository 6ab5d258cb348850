"""nanoBragg.c's X-ray sources: a -sourcefile, or a divergence grid × a wavelength spread.

Follows nanoBragg.c's ``main`` at line 2290.  Nothing here prints:
:mod:`nbnumba.setup.report` words the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import geometry as g
from ..config import Options
from ..errors import SetupExit
from .sampling import Sampling

__all__ = ["Sources", "build_sources", "SOURCE_DISTANCE"]

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


def build_sources(o: Options, sampling: Sampling, beam_vector, polar_vector, vert_vector,
                  lambda0: float) -> Sources:
    """Source directions and wavelengths: -sourcefile or divergence × dispersion (line 2290).

    Parameters
    ----------
    o : Options
        Parsed flags: ``sourcefilename``, ``round_div``, ``c_parity``.
    sampling : Sampling
        Divergence and dispersion steps as C settled them.
    beam_vector, polar_vector, vert_vector : list of float
        C's 4-vectors of the beam, the polarization axis and beam × polarization.
    lambda0 : float
        Central wavelength (m).

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
        rows = _read_sourcefile(o, beam_vector, lambda0)
    sources = Sources(rows=rows, directions=np.zeros((0, 4)))
    if not rows:
        _grid(o, sampling, beam_vector, polar_vector, vert_vector, lambda0, sources)
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
          sources: Sources) -> None:
    """The divergence grid (cut round unless -square_div) times the wavelengths."""
    def div_ok(hdiv: float, vdiv: float) -> bool:
        # with no divergence C divides 0 by 0: the NaN makes the test false
        test = _cdiv(hdiv * hdiv - s.hdivstep * s.hdivstep / 4.0 * (1 - s.hdivsteps % 2),
                     s.hdivrange)
        test += _cdiv(vdiv * vdiv - s.vdivstep * s.vdivstep / 4.0 * (1 - s.vdivsteps % 2),
                      s.vdivrange)
        return not (o.round_div and test * 4.0 > 1.1)

    for hdiv_tic in range(s.hdivsteps):
        for vdiv_tic in range(s.vdivsteps):
            hdiv = s.hdivstep * hdiv_tic - s.hdivrange / 2.0
            vdiv = s.vdivstep * vdiv_tic - s.vdivrange / 2.0
            if div_ok(hdiv, vdiv):
                sources.deviations.append((hdiv, vdiv))
    sources.divsteps = len(sources.deviations)
    sources.lambdas = [lambda0 * (1.0 + s.dispstep * disp_tic - s.dispersion / 2.0)
                       for disp_tic in range(s.dispsteps)]
    n = sources.divsteps * s.dispsteps
    weight = 1.0 / n if n else math.inf
    for hdiv, vdiv in sources.deviations:
        vector = g.vec(-SOURCE_DISTANCE * beam_vector[1], -SOURCE_DISTANCE * beam_vector[2],
                       -SOURCE_DISTANCE * beam_vector[3])
        newvector = g.rotate_axis(vector, g.vec(0, 0, 0), polar_vector, vdiv)
        g.rotate_axis(newvector, vector, vert_vector, hdiv)
        for lam in sources.lambdas:
            sources.rows.append((vector[1], vector[2], vector[3], weight, lam))


def _cdiv(num: float, den: float) -> float:
    """``num/den/den`` with C's IEEE semantics (x/0 gives ±inf or NaN, no exception)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den) / np.float64(den))
