"""nonBragg.c's rules between its argv loop and its pixel loop, written once.

:func:`read_img_header` applies an ``-img`` SMV header (nonBragg.c lines
313-358) before the argv loop's values; :func:`setup` resolves the options
into a :class:`NonBraggScene` (detector size, sample, sampling, detector
geometry, the F(stol) table, the sources; lines 789-1407) and prints C's
stdout up to the pixel loop through ``out``.  Geometry uses
:mod:`nbnumba.geometry` (C's vector helpers) and
:func:`nbnumba.setup.rules.pick_steps` (the divergence/dispersion rules nonBragg.c
shares with nanoBragg.c).  Line numbers refer to nonBragg.c (bl831/nanoBragg,
4-22-18 header).
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import geometry as g
from ..cnum import c_div
from ..constants import AVOGADRO, DBL_MIN, R_E_SQR, RTD
from ..errors import InputFileError, InputFileOpenError, SetupExit, UsageError
from ..inputs import read_input
from ..io import c_format_g as _g
from ..io import read_smv, read_text_file
from ..setup.rules import pick_steps, switched_off
from ..setup.sources import divergence_grid, source_positions, wavelengths
from .nonbragg_args import SAMPLE, NonBraggOptions

__all__ = ["NonBraggScene", "read_img_header", "setup", "BANNER", "USAGE"]

BANNER = ("nonBragg amorphous material diffraction simulator - James Holton and "
          "Ken Frankel 3-19-16\n")
USAGE = (
    "usage: nonBragg -stol water.stol\n"
    "options:\n"
    "\t-stol filename.stol\ttext file containing sin(theta)/lambda and F for one molecule\n"
    "\t-thickness\tthickness of the sample in mm\n"
    "\t-samplesize\tlinear dimension of the (cube shaped) sample in mm\n"
    "\t-density\tdensity of the sample in g/cm^3\n"
    "\t-MW\tmolecular weight of the sample material in g/mol\n"
    "\t-hdivrange\thorizontal angular spread of source points in mrad\n"
    "\t-vdivrange\tvertical angular spread of source points in mrad\n"
    "\t-hdivstep\tnumber of source points in the horizontal\n"
    "\t-vdivstep\tnumber of source points in the vertical\n"
    "\t-distance\tdistance from origin to detector center in mm\n"
    "\t-detsize\tdetector size in mm\n"
    "\t-pixel\tdetector pixel size in mm\n"
    "\t-oversample\tnumber of sub-pixels per pixel\n"
    "\t-lambda\tincident x-ray wavelength in Angstrom\n"
    "\t-dispersion\tspectral dispersion: delta-lambda/lambda in percent\n"
    "\t-dispsteps\tnumber of wavelengths in above range\n"
    "\t-fluence\tintegrated beam intensity in photons/m^2\n"
    "\t-flux\t beam intensity in photons/s\n"
    "\t-exposure\t exposure time in s\n"
    "\t-beamsize\t linear dimension of the (square) beam profile in mm\n"
    "\t-sourcefile filename.txt\ttext file containing source positions in mm\n"
    "\t-floatfile\tname of binary output file (4-byte floats)\n"
    "\t-intfile\tname of smv-formatted output file (arbitrary scale)\n"
    "\t-pgmfile\tname of pgm-formatted output file (arbitrary scale)\n"
    "\t-noisefile\tname of smv-formatted output file (with Poisson noise)\n"
    "\t-Xbeam\timage X coordinate of direct-beam spot (mm)\n"
    "\t-Ybeam\timage Y coordinate of direct-beam spot (mm)\n"
    "\t-printout\tprint pixel values out to the screen\n"
    "\t-noprogress\tturn off the progress meter\n"
)
MAX_IGNORE = 69999  # C: unsigned short ignore_value[70000], filled from index 1
MAX_SOURCES = 1_000_000
MAX_PIXELS = 1 << 31


@dataclass
class ImgInput:
    """The ``-img`` file as GetFrame read it: header text and pixels (uint16, flat)."""

    path: str
    header: str
    pixels: np.ndarray
    pointer: int  # where the pixels live, for C's "mmap(...) = %p" line


@dataclass
class NonBraggScene:
    """Everything the pixel loop and the writers need, in C's internal units (SI)."""

    fpixels: int
    spixels: int
    pixel_size: float
    subpixel_size: float
    oversample: int
    steps: int
    detsize_x: float
    detsize_y: float
    distance: float
    close_distance: float
    Xbeam: float
    Ybeam: float
    Xclose: float
    Yclose: float
    lambda0: float
    phi0: float
    osc: float
    detector_twotheta: float
    fdet: tuple[float, float, float]
    sdet: tuple[float, float, float]
    odet: tuple[float, float, float]
    pix0: tuple[float, float, float]
    beam: tuple[float, float, float]
    polar_axis: tuple[float, float, float]  # as polarization_factor re-unitizes it
    polarization: float
    nopolar: bool
    curved: bool
    point_pixel: bool
    fmap: bool
    roi: tuple[int, int, int, int]  # xmin xmax ymin ymax, inclusive (C's defaults)
    fluence: float
    molecules: float
    stol_of: np.ndarray  # (stols + 1,) padded table, m^-1, NaN after the end as C's malloc
    F_of: np.ndarray  # (stols + 1,)
    stols: int
    stol_file_mult: float
    table_increasing: bool  # strictly: the interpolation index is a pure function of stol
    sources: np.ndarray  # (n, 8): incident unit (x,y,z), re-unitized (x,y,z), lambda, weight
    last_weight: float  # C's I after the source listing (printed by -printout)
    divsteps: int
    r_e_sqr: float = R_E_SQR
    img: ImgInput | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def pixels(self) -> int:
        return self.fpixels * self.spixels


def read_img_header(o: NonBraggOptions, out: Callable[[str], None]) -> None:
    """Apply the ``-img`` header as C's pre-pass does (lines 313-358).

    C reads the header before its argv loop, so flags override it; here it is
    applied before the loop's values by re-parsing (see
    :func:`nbnumba.companions.nonbragg.parse_with_img`).  Prints GetFrame's
    two lines.  Raises :class:`InputFileError` where C would go on with an
    uninitialised frame (file missing or not an ADSC frame).
    """
    path = o.imginfilename
    if path is None:
        return
    try:
        frame = read_smv(path, allow_short=True)
    except InputFileOpenError:
        raise
    except OSError as exc:
        raise InputFileOpenError(path, exc) from None
    except InputFileError as exc:
        raise InputFileError(path, exc.message + " (nonBragg.c then reads an uninitialised "
                             "frame)", messages=exc.messages) from None
    o.fpixels = int(frame.width)
    o.spixels = int(frame.height)

    def val(key: str) -> float:
        from ..io import smv_value

        return smv_value(frame.header, key)

    t = val("PIXEL_SIZE")
    if not math.isnan(t):
        o.pixel_size = t / 1000.0
    o.detsize_x = o.pixel_size * o.fpixels
    o.detsize_y = o.pixel_size * o.spixels
    t = val("DISTANCE")  # the LAST "DISTANCE": CLOSE_DISTANCE's value in nonBragg's headers
    if not math.isnan(t):
        o.distance = t / 1000.0
    t = val("CLOSE_DISTANCE")
    if not math.isnan(t):
        o.close_distance = t / 1000.0
    t = val("WAVELENGTH")
    if not math.isnan(t):
        o.lambda0 = t / 1e10
    t = val("BEAM_CENTER_X")
    if not math.isnan(t):
        o.Xbeam = t / 1000.0
    t = val("BEAM_CENTER_Y")
    if not math.isnan(t):
        o.Ybeam = o.detsize_y - t / 1000.0
    t = val("ORGX")
    if not math.isnan(t):
        o.ORGX = t
    t = val("ORGY")
    if not math.isnan(t):
        o.ORGY = t
    t = val("PHI")
    if not math.isnan(t):
        o.phi0 = t / RTD
    t = val("OSC_RANGE")
    if not math.isnan(t):
        o.osc = t / RTD
    t = val("TWOTHETA")
    if not math.isnan(t):
        o.header_twotheta = t / RTD
    data = np.ascontiguousarray(np.asarray(frame.data, dtype=np.uint16).reshape(-1))
    o.img = ImgInput(path=path, header=frame.header, pixels=data,
                     pointer=int(data.ctypes.data))
    out(f"reading {path}\n")
    out(f"mmap({path}) = 0x{int(data.ctypes.data):x}\n")


def _steps(steps: int, span: float, step: float) -> tuple[int, float, float]:
    """pick_steps, with C's (int)ceil of a NaN/inf ratio (INT_MIN: then one step)."""
    try:
        return pick_steps(steps, span, step, 1.0)
    except (ValueError, OverflowError):
        return -(2**31), span, step


def _osc_for_header(o: NonBraggOptions) -> float:
    """The phi sampling logic (lines 893-940): only osc reaches the output (header)."""
    osc, phistep, phisteps = o.osc, o.phistep, o.phisteps
    if phisteps < 0:
        if osc < 0.0:
            osc = 0.0 if phistep <= 0.0 else phistep
    else:
        if osc < 0.0:
            osc = 1.0 / RTD if phistep <= 0.0 else phistep
    return osc


def read_columns(path: str, nargs: int) -> list[np.ndarray]:
    """C's read_text_file (nonBragg.c line 2201), fast for plain two-number rows.

    The bytes are read once (:func:`nbnumba.inputs.read_input`). When every line is
    ``number delimiters number [anything]`` or blank (what the shipped tables are), a
    compiled scanner (:func:`nbnumba.textscan.scan_two_columns`) gives exactly what C's
    atof gives, in one pass without Python objects per line; otherwise
    :func:`nbnumba.io.read_text_file` reproduces C's tokenizer line by line.
    """
    if nargs == 2:
        from ..textscan import scan_two_columns

        scanned = scan_two_columns(read_input(path))  # once per run: pipes, FIFOs
        if scanned is not None:
            return list(scanned)
    return read_text_file(path, nargs)


def shipped_table(path: str) -> str | None:
    """The name of the shipped table (:mod:`nbnumba.data`) a missing ``-stol`` file is named
    after (``water.stol``, ``../air.stol``, ``ice``), else None."""
    from ..data import STOL_TABLES

    stem = os.path.basename(os.fspath(path)).lower().removesuffix(".stol")
    return stem if stem in STOL_TABLES else None


def _columns(reader: Callable[[str, int], list[np.ndarray]], path: str,
             ncols: int) -> list[np.ndarray]:
    """``reader(path, ncols)``, an OSError becoming :class:`InputFileOpenError` (exit 3)."""
    try:
        return reader(path, ncols)
    except InputFileError:
        raise
    except OSError as exc:
        raise InputFileOpenError(path, exc) from None


def _read_table(o: NonBraggOptions, out) -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """The F(stol) table, padded as C pads it (lines 1226-1256)."""
    warns: list[str] = []
    out(f"reading {o.stolfilename}\n")
    try:
        cols = _columns(read_columns, o.stolfilename, 2)
    except InputFileOpenError as error:
        shipped = shipped_table(o.stolfilename)
        if shipped and error.errno == errno.ENOENT:
            error.message += (f" (nbnumba ships {shipped}.stol: -stol \"$(python -m "
                              f"nbnumba.data {shipped})\", or stol=nbnumba.data.stol_path"
                              f"({shipped!r}) in Python)")
        raise
    x, f = cols
    rows = len(x)
    if rows == 0:
        # C: perror("no data in input file"); exit(9)
        raise InputFileError(o.stolfilename, "no data in input file (nonBragg.c exits)")
    fvalid = f[~np.isnan(f)]
    if fvalid.size == 0:
        raise InputFileError(o.stolfilename, "no F values (second column): nonBragg.c would "
                             "pad the table with an uninitialised value")
    stols = rows + 4
    stol_of = np.full(stols + 1, np.nan)
    F_of = np.full(stols + 1, np.nan)
    mult = o.stol_file_mult
    stol_of[2:stols - 2] = x * mult  # same double product as C's stol_of[i-2]*stol_file_mult
    F_of[2:stols - 2] = np.where(np.isnan(f), 0.0, f)
    F_low = float(fvalid[0])
    F_high = float(fvalid[-1])
    stol_of[0], stol_of[1] = -1e99, -1e98
    F_of[0] = F_of[1] = F_low
    stol_of[stols - 2], stol_of[stols - 1] = 1e98, 1e99
    F_of[stols - 2] = F_of[stols - 1] = F_high
    body = stol_of[:stols]
    if np.any(np.isnan(body)) or np.any(np.diff(body) == 0.0):
        dup = int(np.sum(np.diff(body) == 0.0))
        if dup:
            from ..io import comment_lines

            why = (" (nonBragg.c reads each '#' line as a row stol=0, F=0)"
                   if comment_lines(read_input(o.stolfilename)) else "")
            warns.append(
                f"warning: {o.stolfilename} has {dup} repeated stol value"
                f"{'s' if dup > 1 else ''}{why}: pixels whose 4-point interpolation window "
                "spans a repeat divide by zero (NaN or inf), as in nonBragg.c (polint, "
                "lines 1510 and 2181)")
    return stol_of, F_of, stols, warns


def _build_sources(o: NonBraggOptions, beam, polar, vert, lambda0, hdivsteps, hdivrange,
                   hdivstep, vdivsteps, vdivrange, vdivstep, dispsteps, dispersion, dispstep,
                   out):
    """Sources from -sourcefile or divergence × dispersion (lines 1262-1370)."""
    source_distance = o.source_distance
    rows: list[list[float]] = []
    divsteps = -1  # C's initial value, printed as is with a source file
    if o.sourcefilename is not None:
        cols = _columns(read_text_file, o.sourcefilename, 5)
        if len(cols[0]) == 0:
            raise InputFileError(o.sourcefilename, "no data (nonBragg.c: reading source "
                                 "definition file, exits)")
        for X, Y, Z, inten, lam in zip(*cols, strict=True):
            X = -source_distance * beam[1] if math.isnan(X) else float(X)
            Y = -source_distance * beam[2] if math.isnan(Y) else float(Y)
            Z = -source_distance * beam[3] if math.isnan(Z) else float(Z)
            inten = 1.0 if math.isnan(inten) else float(inten)
            lam = lambda0 if math.isnan(lam) else float(lam)
            rows.append([X, Y, Z, inten, lam])
    if not rows:
        # nonBragg.c's grid is nanoBragg.c's code (weights 1 here, C's source_distance)
        grid = divergence_grid(hdivsteps, hdivrange, hdivstep, vdivsteps, vdivrange, vdivstep,
                               o.round_div)
        divsteps = len(grid)
        for hdiv, vdiv in grid:
            out(f"divergence deviation: {_g(hdiv)} {_g(vdiv)}\n")
        lambdas = wavelengths(lambda0, dispsteps, dispersion, dispstep)
        for disp_tic, lam in enumerate(lambdas):
            out(f"lambda{disp_tic} = {lam:.15g}\n")
        for X, Y, Z in source_positions(grid, beam, polar, vert, source_distance):
            for lam in lambdas:
                rows.append([X, Y, Z, 1.0, lam])
    out(f"  created a total of {len(rows)} sources:\n")
    for X, Y, Z, inten, lam in rows:
        out(f"{_g(X)} {_g(Y)} {_g(Z)}   {_g(inten)} {_g(lam)}\n")
    return rows, divsteps


def default_beam_warning(Xbeam: float, Ybeam: float, pixel: float,
                         about_sample: bool = False) -> str:
    """The warning for a run that leaves the beam centre to nonBragg.c's default (line 849).

    nonBragg.c puts the beam at ``((detsize_x - pixel)/2, (detsize_y + pixel)/2)`` from
    the first pixel's corner along fast/slow; nanoBragg.c's default (MOSFLM) puts it at
    ``detsize/2 + pixel`` on both axes, noisify.c's header at ``detsize/2``: an image
    added to another program's is off by that much. nanoBragg.c's MOSFLM ``-Xbeam`` is
    along slow and ``-Ybeam`` along fast, each half a pixel short of the point. A detector
    rotated about the sample (``-twotheta``, ``-pivot sample`` with rotations) has that
    point as its closest one, the beam elsewhere, and no MOSFLM flags to match it (that
    convention pivots about the beam): then the warning says only that the defaults
    differ.

    Parameters
    ----------
    Xbeam, Ybeam : float
        nonBragg.c's default beam centre (``Xclose``, ``Yclose``) along fast and slow, m.
    pixel : float
        Pixel size, m.
    about_sample : bool
        The detector is rotated about the sample.
    """
    where = (f"-Xbeam {_g(Xbeam * 1000)} -Ybeam {_g(Ybeam * 1000)} mm, fast/slow from the "
             "first pixel's corner")
    if about_sample:
        return ("warning: no -Xbeam/-Ybeam: nonBragg.c's default puts the detector's closest "
                f"point at {where.replace('-Xbeam', '-Xclose').replace('-Ybeam', '-Yclose')}, "
                "rotated about the sample: not nanoBragg.c's default geometry; before adding "
                "or noisifying images give every program the same geometry")
    half = pixel / 2.0
    return (f"warning: no -Xbeam/-Ybeam: nonBragg.c's default beam centre ({where}) is 1.5 "
            "px (fast) and 0.5 px (slow) from nanoBragg.c's default and half a pixel from "
            "noisify.c's header's; before adding or noisifying images give every program the "
            f"same beam (nanobragg-nb's MOSFLM -Xbeam {_g((Ybeam - half) * 1000)} -Ybeam "
            f"{_g((Xbeam - half) * 1000)} is this point)")


def setup(o: NonBraggOptions, out: Callable[[str], None],
          warn: Callable[[str], None]) -> NonBraggScene:
    """Resolve options into a scene, printing C's stdout up to the pixel loop.

    Parameters
    ----------
    o : NonBraggOptions
        From :func:`~nbnumba.companions.nonbragg_args.parse_nonbragg_args` (and
        :func:`read_img_header` when ``-img`` is given).
    out, warn : callable
        Receive C's stdout text and our one-line warnings.

    Raises
    ------
    SetupExit
        No ``-stol`` (C prints its usage and exits 9).
    UsageError
        Where C would crash, read out of bounds or write a NaN/inf image for
        every pixel (zero-size detector, no source left, a wavelength of 0 or
        not finite; a negative one runs, as in C, with a warning).
    InputFileError
        A table or source file C cannot use.
    """
    out(BANNER)
    if o.stolfilename is None:
        out(USAGE)
        raise SetupExit("no -stol FILE given: nonBragg.c needs an F-versus-sin(theta)/lambda "
                        "table (-stol, -4stol or -Q); it prints its usage and exits")
    if len(o.ignore_value) > MAX_IGNORE:
        raise UsageError(f"{len(o.ignore_value)} -ignore values: nonBragg.c has room for "
                         f"{MAX_IGNORE} and writes past its array after that")

    # detector size (line 828)
    pixel_size = o.pixel_size
    detsize_x, detsize_y = o.detsize_x, o.detsize_y
    if o.fpixels:
        detsize_x = pixel_size * o.fpixels
    if o.spixels:
        detsize_y = pixel_size * o.spixels
    fx, fy = c_div(detsize_x, pixel_size), c_div(detsize_y, pixel_size)
    if not (math.isfinite(fx) and math.isfinite(fy)) or pixel_size == 0.0:
        raise UsageError(f"-pixel {pixel_size * 1000:g} mm with a {detsize_x * 1000:g} x "
                         f"{detsize_y * 1000:g} mm detector: nonBragg.c's pixel count is "
                         "undefined; give a pixel size > 0")
    if pixel_size < 0.0:  # with -detpixels the count is as for |pixel|: C runs it
        warn(f"warning: -pixel {pixel_size * 1000:g} mm is negative: nonBragg.c runs it as "
             "given (a negative detector size, pixels stepping the other way); "
             "reproduced")
    fpixels, spixels = math.ceil(fx), math.ceil(fy)
    if fpixels <= 0 or spixels <= 0:
        raise UsageError(f"the detector has {fpixels} x {spixels} pixels: nonBragg.c writes "
                         "empty or garbage images; give -detpixels or -detsize > 0")
    if fpixels * spixels >= MAX_PIXELS:
        raise UsageError(f"{fpixels} x {spixels} pixels overflow nonBragg.c's int pixel count")

    # defaults (line 845)
    nan = math.isnan
    Xclose, Yclose, Xbeam, Ybeam = o.Xclose, o.Yclose, o.Xbeam, o.Ybeam
    if not nan(o.ORGX):
        Xclose = o.ORGX * pixel_size
    if not nan(o.ORGY):
        Yclose = o.ORGY * pixel_size
    if nan(Xclose):
        Xclose = (detsize_x - pixel_size) / 2.0
    if nan(Yclose):
        Yclose = (detsize_y + pixel_size) / 2.0
    if nan(Xbeam):
        Xbeam = Xclose
    if nan(Ybeam):
        Ybeam = Yclose
    default_beam = all(nan(v) for v in (o.Xclose, o.Yclose, o.Xbeam, o.Ybeam, o.ORGX,
                                         o.ORGY))
    rotated = any(v != 0.0 for v in (o.detector_rotx, o.detector_roty, o.detector_rotz,
                                     o.detector_twotheta))
    default_beam_note = default_beam_warning(
        Xbeam, Ybeam, pixel_size, about_sample=rotated and o.detector_pivot == SAMPLE
    ) if default_beam else ""
    roi_xmin = 0 if o.roi_xmin < 0 else o.roi_xmin
    roi_xmax = fpixels if o.roi_xmax < 0 else o.roi_xmax
    roi_ymin = 0 if o.roi_ymin < 0 else o.roi_ymin
    roi_ymax = spixels if o.roi_ymax < 0 else o.roi_ymax
    # C computes only pixels inside the -roi (line 1460): with none, no NaN/inf can reach
    # the image, whatever the numbers, and C writes zeros
    roi_empty = not (max(roi_xmin, 0) <= min(roi_xmax, fpixels - 1)
                     and max(roi_ymin, 0) <= min(roi_ymax, spixels - 1))

    # beam and sample (line 858)
    fluence, beamsize = o.fluence, o.beamsize
    sample_x, sample_y, sample_z = o.sample_x, o.sample_y, o.sample_z
    if o.flux != 0.0 and o.exposure > 0.0 and beamsize >= 0:
        fluence = c_div(c_div(o.flux * o.exposure, beamsize), beamsize)
    if beamsize >= 0:
        if beamsize < sample_y:
            out(f"WARNING: clipping sample ({_g(sample_y)} m high) with beam ({_g(beamsize)} m)\n")
            sample_y = beamsize
        if beamsize < sample_z:
            out(f"WARNING: clipping sample ({_g(sample_z)} m wide) with beam ({_g(beamsize)} m)\n")
            sample_z = beamsize
    volume = sample_x * sample_y * sample_z
    density, molecules = o.density, o.molecules
    if molecules != 0:
        density = c_div(c_div(molecules, volume), AVOGADRO) * o.molecular_weight
    molecules = c_div(volume * density * AVOGADRO, o.molecular_weight)
    if (not o.Fmap_pixel and not roi_empty
            and not (math.isfinite(fluence) and math.isfinite(molecules))):
        raise UsageError(f"fluence {_g(fluence)} photons/m^2 and {_g(molecules)} molecules: "
                         "nonBragg.c scales every pixel by their product and writes an inf/NaN "
                         "image; check -flux/-fluence/-beamsize and -density/-MW/-molecules")

    # vectors (line 881)
    beam = g.vec(*o.beam_vector)
    fdet = g.vec(*o.fdet_vector)
    sdet = g.vec(*o.sdet_vector)
    odet = g.vec(0, 0, 0)
    polar = g.vec(*o.polar_vector)
    g.unitize(beam, beam)
    g.unitize(fdet, fdet)
    g.unitize(sdet, sdet)
    g.cross_product(fdet, sdet, odet)
    g.unitize(odet, odet)
    g.unitize(polar, polar)
    vert = g.cross_product(beam, polar, g.vec(0, 0, 0))
    g.unitize(vert, vert)
    osc = _osc_for_header(o)

    # sampling (lines 943-1163)
    hdivsteps, hdivrange, hdivstep = _steps(o.hdivsteps, o.hdivrange, o.hdivstep)
    vdivsteps, vdivrange, vdivstep = _steps(o.vdivsteps, o.vdivrange, o.vdivstep)
    dispsteps, dispersion, dispstep = _steps(o.dispsteps, o.dispersion, -1.0)
    hdivsteps, hdivrange, hdivstep = switched_off(hdivsteps, hdivrange, hdivstep)
    vdivsteps, vdivrange, vdivstep = switched_off(vdivsteps, vdivrange, vdivstep)
    dispsteps, dispersion, dispstep = switched_off(dispsteps, dispersion, dispstep)
    if hdivsteps * vdivsteps * dispsteps > MAX_SOURCES:
        raise UsageError(f"{hdivsteps} x {vdivsteps} divergence x {dispsteps} wavelength steps "
                         f"is more than {MAX_SOURCES} sources; use fewer steps")

    # detector geometry (line 1173)
    vector = g.rotate(odet, g.vec(0, 0, 0), o.detector_rotx, o.detector_roty, o.detector_rotz)
    ratio = g.dot_product(beam, vector)
    if ratio == 0.0:
        ratio = DBL_MIN
    close_distance = o.close_distance
    if nan(close_distance):
        close_distance = ratio * o.distance
    distance = close_distance / ratio
    pix0 = g.vec(*o.pix0_vector)
    twotheta_axis = g.vec(*o.twotheta_axis)  # not normalised, as in C
    if o.detector_pivot == SAMPLE:
        out("pivoting detector around sample\n")
        for k in (1, 2, 3):
            pix0[k] = -Xclose * fdet[k] - Yclose * sdet[k] + close_distance * odet[k]
        g.rotate(pix0, pix0, o.detector_rotx, o.detector_roty, o.detector_rotz)
        g.rotate_axis(pix0, pix0, twotheta_axis, o.detector_twotheta)
    for v in (fdet, sdet, odet):
        g.rotate(v, v, o.detector_rotx, o.detector_roty, o.detector_rotz)
    for v in (fdet, sdet, odet):
        g.rotate_axis(v, v, twotheta_axis, o.detector_twotheta)
    if o.detector_pivot != SAMPLE:
        out("pivoting detector around direct beam spot\n")
        for k in (1, 2, 3):
            pix0[k] = -Xbeam * fdet[k] - Ybeam * sdet[k] + distance * beam[k]
    Xclose = -g.dot_product(pix0, fdet)
    Yclose = -g.dot_product(pix0, sdet)
    close_distance = g.dot_product(pix0, odet)
    newvector = g.vec(0, 0, 0)
    for k in (1, 2, 3):
        newvector[k] = close_distance / ratio * beam[k] - pix0[k]
    Xbeam = g.dot_product(fdet, newvector)
    Ybeam = g.dot_product(sdet, newvector)
    distance = close_distance / ratio

    # tables and sources (lines 1226-1370)
    stol_of, F_of, stols, table_warnings = _read_table(o, out)
    if default_beam_note:  # said once the table is read: a run that fails says only why
        warn(default_beam_note)
    for w in table_warnings:
        warn(w)
    lambda0 = o.lambda0
    rows, divsteps = _build_sources(o, beam, polar, vert, lambda0, hdivsteps, hdivrange,
                                    hdivstep, vdivsteps, vdivrange, vdivstep, dispsteps,
                                    dispersion, dispstep, out)
    from ..inputs import is_stream

    for flag, path, what in (("-stol", o.stolfilename, "the table is NaN"),
                             ("-sourcefile", o.sourcefilename, "every source is NaN")):
        if path and is_stream(path):  # C's read_text_file counts, rewinds, reads again
            warn(f"warning: {flag} {path} is a pipe or device: nonBragg.c reads it twice "
                 f"(rewind) and its second pass reads nothing, so {what}; nbnumba reads it "
                 "once and uses it all")
    if not rows and not roi_empty:
        raise UsageError("the round divergence cut (-round_div, the default) leaves no source "
                         "direction, so nonBragg.c divides by zero steps and writes a NaN "
                         "image; use -square_div or other divergence steps")
    sources = np.zeros((len(rows), 8))
    negative = infinite = False
    for i, (X, Y, Z, inten, lam) in enumerate(rows):
        # (d - i)/0 is inf or NaN; an infinite wavelength (-energy 0) gives stol = 0
        # everywhere, a finite image of F(0), which C writes
        if (lam == 0.0 or math.isnan(lam)) and not roi_empty:
            raise UsageError(f"source {i + 1} has wavelength {_g(lam)} m: nonBragg.c divides "
                             "by it and writes a NaN/inf image; give -lambda/-energy > 0")
        infinite = infinite or math.isinf(lam)
        negative = negative or lam < 0.0
        inc = g.vec(-X, -Y, -Z)
        g.unitize(inc, inc)  # C: source_path = unitize(incident, incident)
        again = list(inc)
        g.unitize(again, again)  # polarization_factor unitizes it once more
        sources[i] = (inc[1], inc[2], inc[3], again[1], again[2], again[3], lam, inten)
    if infinite:
        warn("warning: an infinite wavelength (-energy 0, -lambda inf): nonBragg.c's "
             "sin(theta)/lambda is 0 at every pixel (the image is that of F at stol = 0); "
             "reproduced")
    if negative:
        # stol = |(d - i)/lambda|/2 (line 1503): the sign drops out, C renders |lambda|
        warn("warning: a negative wavelength (-lambda, -energy, -dispersion or a -sourcefile "
             "row): nonBragg.c's sin(theta)/lambda takes its magnitude, so the image is "
             "that of |lambda|")
    oversample = o.oversample if o.oversample > 0 else 1
    steps = len(rows) * oversample * oversample
    subpixel_size = pixel_size / oversample

    out(f"  {stols} initialized F points (will cubic-spline interpolate between them)\n")
    out(f"  wave={_g(lambda0)} meters +/- {_g(dispersion * 100)}% in {dispsteps} steps\n")
    if o.nopolar:
        out("  polarization effect disabled\n")
    else:
        kahn = o.polarization
        if kahn != kahn:  # glibc's %f prints the sign of a NaN
            text = "-nan" if math.copysign(1.0, kahn) < 0 else "nan"
        else:
            text = f"{kahn:f}"
        out(f"  Kahn polarization factor: {text}\n")
    if o.curved_detector:
        out("  curved detector: all pixels same distance from origin\n")
    if o.point_pixel:
        out("  pixel obliquity effect disabled\n")
    if o.Fmap_pixel:
        out("  Fmap mode: plotting structure factor at every pixel\n")
    out(f"  incident fluence: {_g(fluence)} photons/m^2\n")
    out(f"  sample is {_g(sample_x)} m thick x {_g(sample_y)} m high x {_g(sample_z)} m wide, "
        f"{_g(density / 1e6)} g/cm^3 and {_g(o.molecular_weight)} g/mol "
        f"({_g(molecules)} molecules)\n")
    out(f"  distance={_g(distance)} detsize={_g(detsize_x)}x{_g(detsize_y)}  "
        f"pixel={_g(pixel_size)} meters ({fpixels}x{spixels} pixels)\n")
    out(f"  Xbeam={_g(Xbeam)} Ybeam={_g(Ybeam)}\n")
    out(f"  detector origin: {_g(pix0[1])} {_g(pix0[2])} {_g(pix0[3])}\n")
    out(f"  DIRECTION_OF_DETECTOR_X-AXIS= {_g(fdet[1])} {_g(fdet[2])} {_g(fdet[3])}\n")
    out(f"  DIRECTION_OF_DETECTOR_Y-AXIS= {_g(sdet[1])} {_g(sdet[2])} {_g(sdet[3])}\n")
    out(f"  INCIDENT_BEAM_DIRECTION= {_g(beam[1])} {_g(beam[2])} {_g(beam[3])}\n")
    out(f"  POLARIZATION_PLANE_NORMAL= {_g(polar[1])} {_g(polar[2])} {_g(polar[3])}\n")
    out(f"  roi: {roi_xmin} < x < {roi_xmax} && {roi_ymin} < y < {roi_ymax}\n")
    out(f"  hdivrange={_g(hdivrange)} hdivstep={_g(hdivstep)}  radians\n")
    out(f"  vdivrange={_g(vdivrange)} vdivstep={_g(vdivstep)}  radians\n")
    out(f"  {divsteps} divergence steps\n")
    out(f"  {len(rows)} sources\n")
    out(f"  {oversample} pixel oversample steps\n")
    if o.calculate_noise:
        out("\n  noise image paramters:\n")
        out(f"  seed: {o.seed}\n")

    # polarization_factor unitizes its axis in place at every call (line 2398)
    axis = list(polar)
    g.unitize(axis, axis)
    body = stol_of[:stols]
    increasing = bool(np.all(np.diff(body) > 0.0))

    img = o.img
    if img is not None and fpixels * spixels > img.pixels.size + 10:
        raise UsageError(f"{fpixels} x {spixels} pixels but the -img file {img.path} has only "
                         f"{img.pixels.size}: nonBragg.c reads past its copy of that image")
    return NonBraggScene(
        fpixels=fpixels, spixels=spixels, pixel_size=pixel_size, subpixel_size=subpixel_size,
        oversample=oversample, steps=steps, detsize_x=detsize_x, detsize_y=detsize_y,
        distance=distance, close_distance=close_distance, Xbeam=Xbeam, Ybeam=Ybeam,
        Xclose=Xclose, Yclose=Yclose, lambda0=lambda0, phi0=o.phi0, osc=osc,
        detector_twotheta=o.detector_twotheta,
        fdet=tuple(fdet[1:4]), sdet=tuple(sdet[1:4]), odet=tuple(odet[1:4]),
        pix0=tuple(pix0[1:4]), beam=tuple(beam[1:4]), polar_axis=tuple(axis[1:4]),
        polarization=o.polarization, nopolar=bool(o.nopolar), curved=bool(o.curved_detector),
        point_pixel=bool(o.point_pixel), fmap=bool(o.Fmap_pixel),
        roi=(roi_xmin, roi_xmax, roi_ymin, roi_ymax), fluence=fluence, molecules=molecules,
        stol_of=stol_of, F_of=F_of, stols=stols, stol_file_mult=o.stol_file_mult,
        table_increasing=increasing, sources=sources,
        last_weight=float(rows[-1][3]) if rows else 0.0,  # C's I: never set without sources
        divsteps=divsteps, img=img)
