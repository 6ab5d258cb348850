"""The detector as nanoBragg.c places it: size, beam centre, convention, pivot, vectors.

Follows nanoBragg.c's ``main`` from "fill in blanks" (line 1112) through the
conventions (line 1162), the straightening of the vectors (line 1262) and the
detector placement (line 1690).  Vectors are C's 4-element form
``[length, x, y, z]`` (:mod:`nbnumba.geometry`); lengths are in metres.
Nothing here prints: :mod:`nbnumba.setup.report` words the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .. import geometry as g
from ..config import Options
from ..constants import DBL_MIN
from ..geometry import Vec
from . import rules

__all__ = ["BeamCentre", "Detector", "resolve_detector"]

# C's (beam, fdet, sdet, odet, twotheta axis, polarization axis, spindle) per convention
_MOSFLM_VECTORS = ([1, 0, 0], [0, 0, 1], [0, -1, 0], [1, 0, 0], [0, 0, -1], [0, 0, 1], [0, 0, 1])
_ADXV_VECTORS = ([0, 0, 1], [1, 0, 0], [0, -1, 0], [0, 0, 1], [-1, 0, 0], [1, 0, 0], [1, 0, 0])


@dataclass
class BeamCentre:
    """Where the beam and the sample's normal meet the detector (m), as C settles them.

    ``Xbeam``/``Ybeam``/``Xclose``/``Yclose`` are the user-frame values C
    reports; ``Fbeam``/``Sbeam``/``Fclose``/``Sclose`` are along the fast and
    slow axes, recomputed from ``pix0_vector`` once the detector is in place
    (line 1730).  While C resolves them, NaN means not given.
    """

    Xbeam: float
    Ybeam: float
    Xclose: float
    Yclose: float
    Fbeam: float
    Sbeam: float
    Fclose: float
    Sclose: float


@dataclass
class Detector:
    """The detector after C's rules (all lengths in m, angles in rad).

    ``distance`` and ``close_distance`` are recomputed from ``pix0_vector``
    after the detector is rotated into place (line 1730), as C does.
    ``polar_vector`` is as C reports it (before the kernel's re-unitizing
    settles it).
    """

    convention: str
    pivot: Literal["BEAM", "SAMPLE"]
    fpixels: int
    spixels: int
    detsize_f: float
    detsize_s: float
    pixel_size: float
    centre: BeamCentre
    ORGX: float  # pixels
    ORGY: float  # pixels
    distance: float
    close_distance: float
    twotheta: float
    fdet_vector: Vec
    sdet_vector: Vec
    odet_vector: Vec
    pix0_vector: Vec
    beam_vector: Vec
    polar_vector: Vec
    vert_vector: Vec
    spindle_vector: Vec
    twotheta_axis: Vec
    dials_origin: tuple[float, float, float]  # mm
    roi: tuple[int, int, int, int]  # C's roi_xmin, roi_xmax, roi_ymin, roi_ymax
    odet_generated: bool  # -odet_vector was zero: C made it fdet × sdet and warned


def resolve_detector(o: Options) -> Detector:
    """Size, beam centre, convention, vectors and placement of the detector (lines 1112-1760).

    Parameters
    ----------
    o : Options
        Parsed flags in C's internal units.

    Returns
    -------
    Detector
    """
    detsize_f, detsize_s, fpixels, spixels = rules.detector_size(o)
    centre = _centre_defaults(o, detsize_f, detsize_s)
    vectors = [g.vec(*v) for v in (o.beam_vector, o.fdet_vector, o.sdet_vector, o.odet_vector,
                                   o.twotheta_axis, o.polar_vector, o.spindle_vector)]
    pivot = _apply_convention(o.beam_convention, o.detector_pivot, centre, vectors,
                              o.pixel_size, detsize_f, detsize_s)
    beam, fdet, sdet, odet, twotheta_axis, polar, spindle = vectors
    odet_generated, vert = _straighten(vectors)
    placed = _place(o, pivot, centre, beam, fdet, sdet, odet, twotheta_axis)
    pix0, distance, close_distance = placed
    roi = (0 if o.roi_xmin < 0 else o.roi_xmin, fpixels if o.roi_xmax < 0 else o.roi_xmax,
           0 if o.roi_ymin < 0 else o.roi_ymin, spixels if o.roi_ymax < 0 else o.roi_ymax)
    return Detector(
        convention=o.beam_convention, pivot=pivot, fpixels=fpixels, spixels=spixels,
        detsize_f=detsize_f, detsize_s=detsize_s, pixel_size=o.pixel_size,
        centre=centre,
        ORGX=centre.Fclose / o.pixel_size + 0.5, ORGY=centre.Sclose / o.pixel_size + 0.5,
        distance=distance, close_distance=close_distance, twotheta=o.detector_twotheta,
        fdet_vector=fdet, sdet_vector=sdet, odet_vector=odet, pix0_vector=pix0,
        beam_vector=beam, polar_vector=polar, vert_vector=vert, spindle_vector=spindle,
        twotheta_axis=twotheta_axis,
        dials_origin=(1000.0 * g.dot_product(pix0, g.vec(0, 0, 1)),
                      1000.0 * g.dot_product(pix0, g.vec(0, 1, 0)),
                      1000.0 * g.dot_product(pix0, g.vec(-1, 0, 0))),
        roi=roi, odet_generated=odet_generated)


def _centre_defaults(o: Options, detsize_f: float, detsize_s: float) -> BeamCentre:
    """-ORGX/-ORGY, then the detector centre, for whatever was not given (line 1130)."""
    nan = math.isnan
    Fclose = Sclose = math.nan
    if not nan(o.ORGX):
        Fclose = (o.ORGX - 0.5) * o.pixel_size
    if not nan(o.ORGY):
        Sclose = (o.ORGY - 0.5) * o.pixel_size
    if nan(Fclose):
        Fclose = (detsize_f - 0 * o.pixel_size) / 2.0
    if nan(Sclose):
        Sclose = (detsize_s + 0 * o.pixel_size) / 2.0
    Xclose = Fclose if nan(o.Xclose) else o.Xclose
    Yclose = Sclose if nan(o.Yclose) else o.Yclose
    return BeamCentre(Xbeam=o.Xbeam, Ybeam=o.Ybeam, Xclose=Xclose, Yclose=Yclose,
                   Fbeam=Fclose, Sbeam=Sclose, Fclose=Fclose, Sclose=Sclose)


def _apply_convention(conv: str, pivot: str, c: BeamCentre, vectors: list[list[float]],
                      pixel_size: float, detsize_f: float, detsize_s: float) -> str:
    """C's beam conventions (line 1162): axes, beam centre, pivot; returns the pivot.

    ``vectors`` (beam, fdet, sdet, odet, twotheta axis, polarization, spindle)
    are replaced in place for every convention but CUSTOM.
    """
    nan = math.isnan

    def set_vectors(values) -> None:
        for v, new in zip(vectors, values, strict=True):
            v[1:] = new

    if conv == "ADXV":
        if nan(c.Xbeam):
            c.Xbeam = (detsize_f + pixel_size) / 2.0
        if nan(c.Ybeam):
            c.Ybeam = (detsize_s - pixel_size) / 2.0
        set_vectors(_ADXV_VECTORS)
        c.Fbeam = c.Xbeam
        c.Sbeam = detsize_s - c.Ybeam
        pivot = "BEAM"
    if conv in ("MOSFLM", "DENZO"):
        # DENZO is MOSFLM without the half-pixel shift of the beam centre
        half_pixel = 0.5 if conv == "MOSFLM" else 0.0
        if nan(c.Xbeam):
            c.Xbeam = (detsize_s + pixel_size) / 2.0
        if nan(c.Ybeam):
            c.Ybeam = (detsize_f + pixel_size) / 2.0
        set_vectors(_MOSFLM_VECTORS)
        c.Fbeam = c.Ybeam + half_pixel * pixel_size
        c.Sbeam = c.Xbeam + half_pixel * pixel_size
        pivot = "BEAM"
    if conv in ("XDS", "DIALS"):
        if nan(c.Xbeam):
            c.Xbeam = c.Xclose
        if nan(c.Ybeam):
            c.Ybeam = c.Yclose
        # the two differ only in the rotation axes (twotheta, polarization, spindle)
        axis = [1, 0, 0] if conv == "XDS" else [0, 1, 0]
        set_vectors(([0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], axis, axis, axis))
        c.Fbeam = c.Xbeam
        c.Sbeam = c.Ybeam
        pivot = "SAMPLE"
    if conv == "CUSTOM":
        if nan(c.Xbeam):
            c.Xbeam = c.Xclose
        if nan(c.Ybeam):
            c.Ybeam = c.Yclose
        c.Fbeam = c.Xbeam
        c.Sbeam = c.Ybeam
        c.Fclose = c.Xbeam
        c.Sclose = c.Ybeam
    for v in vectors:
        for i in (1, 2, 3):
            v[i] = float(v[i])
    return pivot


def _straighten(vectors: list[list[float]]) -> tuple[bool, list[float]]:
    """Unit vectors, odet made from fdet × sdet when zero, and the vertical (line 1262).

    Returns whether odet was generated and C's ``vert_vector`` (beam × polarization).
    """
    beam, fdet, sdet, odet, _twotheta_axis, polar, spindle = vectors
    g.unitize(beam, beam)
    g.unitize(fdet, fdet)
    g.unitize(sdet, sdet)
    generated = g.unitize(odet, odet) != 1.0
    if generated:
        g.cross_product(fdet, sdet, odet)
        g.unitize(odet, odet)
    g.unitize(polar, polar)
    g.unitize(spindle, spindle)
    vert = g.cross_product(beam, polar, g.vec(0, 0, 0))
    g.unitize(vert, vert)
    return generated, vert


def _place(o: Options, pivot: str, c: BeamCentre, beam, fdet, sdet, odet,
           twotheta_axis) -> tuple[list[float], float, float]:
    """Rotate the detector into place around the sample or the beam spot (line 1690).

    Rotates ``fdet``/``sdet``/``odet`` in place, then recomputes C's
    Fclose/Sclose/Fbeam/Sbeam in ``c`` from ``pix0_vector``.  Returns
    ``(pix0_vector, distance, close_distance)``.
    """
    rotx, roty, rotz = o.detector_rotx, o.detector_roty, o.detector_rotz
    twotheta = o.detector_twotheta
    vector = g.rotate(odet, g.vec(0, 0, 0), rotx, roty, rotz)
    ratio = g.dot_product(beam, vector)
    if ratio == 0.0:
        ratio = DBL_MIN
    close_distance = o.close_distance
    if math.isnan(close_distance):
        close_distance = abs(ratio * o.distance)
    distance = close_distance / ratio

    pix0 = g.vec(0, 0, 0)
    if pivot == "SAMPLE":
        for i in (1, 2, 3):
            pix0[i] = -c.Fclose * fdet[i] - c.Sclose * sdet[i] + close_distance * odet[i]
        g.rotate(pix0, pix0, rotx, roty, rotz)
        g.rotate_axis(pix0, pix0, twotheta_axis, twotheta)
    for v in (fdet, sdet, odet):
        g.rotate(v, v, rotx, roty, rotz)
    for v in (fdet, sdet, odet):
        g.rotate_axis(v, v, twotheta_axis, twotheta)
    if pivot == "BEAM":
        for i in (1, 2, 3):
            pix0[i] = -c.Fbeam * fdet[i] - c.Sbeam * sdet[i] + distance * beam[i]

    c.Fclose = -g.dot_product(pix0, fdet)
    c.Sclose = -g.dot_product(pix0, sdet)
    close_distance = g.dot_product(pix0, odet)
    newvector = g.vec(0, 0, 0)
    for i in (1, 2, 3):
        newvector[i] = close_distance / ratio * beam[i] - pix0[i]
    c.Fbeam = g.dot_product(fdet, newvector)
    c.Sbeam = g.dot_product(sdet, newvector)
    return pix0, close_distance / ratio, close_distance
