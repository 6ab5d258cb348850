"""nanoBragg.c's resolution rules, written once: used by the setup and by the input checks.

Each function follows one block of nanoBragg.c's ``main`` after the argv loop
(line numbers of bl831/nanoBragg's nanoBragg.c) and takes the values as the
parser leaves them (:class:`nbnumba.config.Options`, C's internal units).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from ..config import Options
from ..constants import RTD

__all__ = ["c_int_ceil", "detector_extent", "detector_size", "fluence", "phi_sampling",
           "pick_steps", "switched_off", "mosaic_sampling", "MosaicAdjustment",
           "thickness_sampling", "fdump_to_read"]


def detector_size(o: Options) -> tuple[float, float, int, int]:
    """``(detsize_f, detsize_s, fpixels, spixels)``: C's "fill in blanks" (line 1112).

    Pixel counts given win over detector sizes; the counts are then
    ``ceil(size/pixel - 0.5)``.  Raises ``ValueError``/``OverflowError`` for
    sizes that give no integer count (NaN, inf); the checks catch those first.
    """
    detsize_f, detsize_s = detector_extent(o)
    fpixels = math.ceil(detsize_f / o.pixel_size - 0.5)
    spixels = math.ceil(detsize_s / o.pixel_size - 0.5)
    return detsize_f, detsize_s, fpixels, spixels


def detector_extent(o: Options) -> tuple[float, float]:
    """``(detsize_f, detsize_s)`` in m: pixel counts given win over detector sizes (line 1112)."""
    detsize_f, detsize_s = o.detsize_f, o.detsize_s
    if o.fpixels:
        detsize_f = o.pixel_size * o.fpixels
    if o.spixels:
        detsize_s = o.pixel_size * o.spixels
    return detsize_f, detsize_s


def fdump_to_read(o: Options) -> str | None:
    """The ``Fdump.bin`` (``-dump``) C would read its structure factors from, else None.

    C reads it when no -hkl is given and it can be opened (line 1277); the
    library does only where ``o.fdump`` is set (the command line and
    ``Simulation.from_args``), never silently from ``Simulation(**flags)``.
    """
    import os

    if not o.fdump or o.hklfilename is not None or not o.dumpfilename:
        return None
    if os.path.isfile(o.dumpfilename) and os.access(o.dumpfilename, os.R_OK):
        return o.dumpfilename
    return None


def fluence(o: Options) -> float:
    """Photons/m² on the sample: ``flux·exposure/beamsize²`` when all are given (line 1121)."""
    if o.flux != 0.0 and o.exposure > 0.0 and o.beamsize >= 0:
        return o.flux * o.exposure / o.beamsize / o.beamsize
    return o.fluence


def phi_sampling(phisteps: int, osc: float, phistep: float) -> tuple[int, float, float]:
    """``(phisteps, osc, phistep)`` from -phisteps/-osc/-phistep as C picks them (line 1389).

    The count may be huge for tiny steps: callers that only estimate should
    check ``osc / phistep`` first.
    """
    if phisteps < 0:
        if osc < 0.0:
            if phistep <= 0.0:
                return 1, 0.0, 0.0
            return 2, phistep, phistep
        if phistep <= 0.0:
            return 2, osc, osc / 2.0
        return math.ceil(osc / phistep), osc, phistep
    if phisteps == 0:
        phisteps = 1
    if osc < 0.0:
        if phistep <= 0.0:
            osc = 1.0 / RTD
            return phisteps, osc, osc / phisteps
        return 2, phistep, phistep
    if phistep < 0.0:
        phistep = osc / phisteps
    return phisteps, osc, phistep


def pick_steps(steps: int, span: float, step: float,
               default_span: float) -> tuple[int, float, float]:
    """C's auto-selection of (steps, range, step) for divergence and dispersion (line 1440)."""
    if steps <= 0:
        if span < 0.0:
            if step <= 0.0:
                return 1, 0.0, 0.0
            return 2, step, step
        if step <= 0.0:
            return 2, span, span
        return math.ceil(span / step), span, step
    if span < 0.0:
        if step <= 0.0:
            span = default_span
            return steps, span, span / steps
        return 2, step, step
    if step <= 0.0:
        if steps <= 1:
            steps = 2
        return steps, span, span / (steps - 1)
    return steps, span, step


def switched_off(steps: int, span: float, step: float) -> tuple[int, float, float]:
    """C's sanity check (nanoBragg.c line 1660, nonBragg.c 1150): a sampling whose count,
    range or step is not positive becomes one step of nothing, ``(1, 0.0, 0.0)``."""
    if span <= 0.0 or step <= 0.0 or steps <= 0:
        return 1, 0.0, 0.0
    return steps, span, step


def thickness_sampling(thicksteps: int, thick: float,
                       thickstep: float) -> tuple[int, float, float]:
    """``(thicksteps, thick, thickstep)`` of the detector layers (line 1580); differs from
    :func:`pick_steps` in two places (C's 0.5 µm default, ``thick/thicksteps``)."""
    if thicksteps <= 0:
        if thick < 0.0:
            if thickstep <= 0.0:
                return 1, 0.0, 0.0
            return 2, thickstep, thickstep
        if thickstep <= 0.0:
            return 2, thick, thick / 2
        return math.ceil(thick / thickstep), thick, thickstep
    if thick < 0.0:
        if thickstep <= 0.0:
            thick = 0.5e-6
            return thicksteps, thick, thick / thicksteps
        return 2, thickstep, thickstep
    if thickstep <= 0.0:
        if thicksteps <= 1:
            thicksteps = 2
        thickstep = thick / (thicksteps - 1)
    return thicksteps, thick, thickstep


MosaicAdjustment = Literal["upped", "no_spread", "zero_spread"]


def mosaic_sampling(spread: float,
                    domains: int) -> tuple[float, int, MosaicAdjustment | None]:
    """``(mosaic_spread, mosaic_domains, why)`` as C settles them (line 1620).

    ``why`` says which of C's adjustments warned (the report words it):
    ``"upped"`` (a spread with no domain count: 10 domains), ``"no_spread"``
    (domains without a spread: one domain), ``"zero_spread"`` (domains with a
    zero spread: one domain), or ``None``.
    """
    if domains <= 0:
        if spread < 0.0:
            return 0.0, 1, None
        if spread == 0.0:
            return spread, 1, None
        return spread, 10, "upped"
    if spread < 0.0:
        return 0.0, 1, "no_spread"
    if spread == 0.0:
        return spread, 1, "zero_spread"
    return spread, domains, None


def c_int_ceil(num: float, den: float) -> int:
    """C's ``(int) ceil(num/den)`` with IEEE division (recommended oversampling, line 2079);
    a quotient an int cannot hold (inf, NaN: a zero distance) gives INT_MIN, as x86's
    conversion does, which C then raises to 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(num) / np.float64(den))
    if math.isfinite(ratio) and abs(ratio) < 2.0**31 - 1:
        return math.ceil(ratio)
    return -(2**31)
