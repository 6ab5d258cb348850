"""nonBragg.c (amorphous scatter: water, air, ice) as a Python API.

    >>> from nbnumba import NonBragg
    >>> water = NonBragg(stol="water.stol", distance=100, detpixels=256, pixel=0.2,
    ...                  flux=1e12, exposure=1, beamsize=0.1, thick=1, nonoise=True).run()
    >>> water.image.shape, water.image.dtype          # photons/pixel, [slow, fast]
    ((256, 256), dtype('float32'))
    >>> water.write(floatfile="water.bin")             # byte-identical to nonbragg-nb's

``NonBragg.from_args(argv)`` takes nonBragg.c's command line;
``NonBragg(**flags)`` one keyword per C flag in C's user units, turned into that
command line so both go through the same C-faithful parser
(:mod:`nbnumba.companions.nonbragg_args`).  ``run()`` returns a
:class:`NonBraggResult`.  Line numbers refer to nonBragg.c (bl831/nanoBragg).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..cargs import WarningList
from ..constants import M_PI, RTD
from ..errors import UsageError, write_error
from ..errors import warn as issue_warnings
from ..io import atomic_write, c_format_g, write_float_image, write_pgm, write_smv
from .nonbragg_args import NonBraggOptions, keywords_to_argv, parse_nonbragg_args
from .nonbragg_setup import NonBraggScene, read_img_header, setup

__all__ = ["NonBragg", "NonBraggResult", "nonbragg_smv_header"]

_g = c_format_g


def _fmt_nan_aware(x: float, spec: str) -> str:
    """printf of a double with ``spec`` (e.g. ``%.0f``), NaN printed as glibc does."""
    if x != x:
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return spec % x


def nonbragg_smv_header(scene: NonBraggScene) -> tuple[bytes, dict[str, object]]:
    """nonBragg.c's SMV header (lines 1751-1765): 512 bytes, and its fields as a dict."""
    px = scene.pixel_size
    fields: dict[str, object] = {
        "HEADER_BYTES": 512, "DIM": 2, "BYTE_ORDER": "little_endian",
        "TYPE": "unsigned_short", "SIZE1": scene.fpixels, "SIZE2": scene.spixels,
        "PIXEL_SIZE": px * 1000.0, "DISTANCE": scene.distance * 1000.0,
        "WAVELENGTH": scene.lambda0 * 1e10, "BEAM_CENTER_X": scene.Xbeam * 1000.0,
        "BEAM_CENTER_Y": (scene.detsize_y - scene.Ybeam) * 1000,
        "ORGX": scene.Xclose / px, "ORGY": scene.Yclose / px,
        "CLOSE_DISTANCE": scene.close_distance * 1000.0, "PHI": scene.phi0 * RTD,
        "OSC_START": scene.phi0 * RTD, "OSC_RANGE": scene.osc * RTD,
        "TWOTHETA": scene.detector_twotheta * RTD, "DETECTOR_SN": "000", "BEAMLINE": "fake",
    }
    text = "{\n" + "".join(
        f"{k}={_g(v) if isinstance(v, float) else v};\n" for k, v in fields.items()) + "}\f"
    raw = text.encode("ascii")
    return raw + b" " * max(0, 512 - len(raw)), fields


@dataclass
class NonBraggResult:
    """What one nonBragg run makes.

    Attributes
    ----------
    image : numpy.ndarray
        float32 [slow, fast], photons/pixel (F with ``-Fmap``); NaN where C's
        interpolation divides by zero.
    header : dict
        SMV header fields of the int and noise images (C's values and units).
    summary : list of str
        C's stdout lines (without the ``% done`` progress lines).
    warnings : list of str
        One-line warnings (parsing, C quirks met).
    options, scene
        The parsed options and the resolved setup.
    """

    image: np.ndarray
    header: dict[str, object]
    header_bytes: bytes
    summary: list[str]
    warnings: list[str]
    options: NonBraggOptions
    scene: NonBraggScene
    intfile_scale: float
    pgm_scale: float
    stol_table: str | None = None
    _int: np.ndarray | None = field(default=None, repr=False)
    _pgm: np.ndarray | None = field(default=None, repr=False)
    _noise: np.ndarray | None = field(default=None, repr=False)

    def int_image(self) -> np.ndarray:
        """uint16 [slow, fast]: ``floorf(photons·scale + adc + 0.5)`` clamped (line 1729)."""
        return self._int

    def pgm_image(self) -> np.ndarray:
        """uint8 [slow, fast]: the PGM's pixels (line 1797)."""
        return self._pgm

    def noise_image(self) -> np.ndarray | None:
        """uint16 [slow, fast]: Poisson image + adc (line 1837); None with ``-nonoise``."""
        return self._noise

    def write(self, floatfile: str | os.PathLike | None = None,
              intfile: str | os.PathLike | None = None,
              noisefile: str | os.PathLike | None = None,
              pgmfile: str | os.PathLike | None = None,
              stolout: str | os.PathLike | None = None,
              warn: Callable[[str], None] | None = None) -> list[str]:
        """Write files atomically, byte-identical to ``nonbragg-nb``'s.

        With no argument, writes what the command line asked for (C's names
        and defaults; the PGM unless ``-nopgm``); with arguments, only those.
        ``warn`` receives the note about C's PGM size (also kept in ``warnings`` and
        issued as a :class:`~nbnumba.errors.NbnumbaWarning`).
        Returns the paths written.  Raises ``ValueError`` for a noise image
        of a ``-nonoise`` run or a stol table without ``-img``, and
        :class:`~nbnumba.errors.OutputPathError` (exit code 3, 4 for a full disk)
        naming the file that could not be written.
        """
        o = self.options
        if all(p is None for p in (floatfile, intfile, noisefile, pgmfile, stolout)):
            names = dict(o.outputs())
            stolout = names.get("-stolout")
            floatfile, intfile = names["-floatfile"], names["-intfile"]
            pgmfile, noisefile = names.get("-pgmfile"), names.get("-noisefile")
        written: list[str] = []

        def put(path: str | os.PathLike, write: Callable[[], None]) -> None:
            try:
                write()
            except OSError as exc:  # names the file (not its temporary); full disk: exit 4
                raise write_error(path, exc) from exc
            written.append(os.fspath(path))

        if stolout is not None:
            if self.stol_table is None:
                raise ValueError("no stol table: the run had no -img")
            table = self.stol_table.encode("ascii")
            put(stolout, lambda: atomic_write(stolout, table))
        if floatfile is not None:
            put(floatfile, lambda: write_float_image(floatfile, self.image))
        if intfile is not None:
            put(intfile, lambda: write_smv(intfile, self.header_bytes, self._int))
        if pgmfile is not None:
            text = (f"warning: nonBragg.c writes {2 * self.scene.pixels} pixel bytes to its "
                    f"PGM, the second half uninitialised memory (fwrite with sizeof(unsigned "
                    f"short), line 1829); writing the {self.scene.pixels} it meant")
            if text not in self.warnings:
                self.warnings.append(text)
                issue_warnings(text)
                if warn is not None:
                    warn(text)
            put(pgmfile, lambda: write_pgm(pgmfile, self._pgm, self.scene.fpixels,
                                           self.scene.spixels, self.pgm_scale))
        if noisefile is not None:
            if self._noise is None:
                raise ValueError("no noise image: the run had -nonoise")
            put(noisefile, lambda: write_smv(noisefile, self.header_bytes, self._noise))
        return written


class NonBragg:
    """nonBragg.c's simulation of amorphous scatter, ready to run.

    Parameters
    ----------
    **flags
        One keyword per nonBragg.c flag, without the dash, in C's user units
        (mm, Angstrom, degrees, mrad, percent): ``stol="water.stol"``,
        ``distance=100``, ``detpixels=256``, ``roi=(40, 200, 60, 180)``,
        ``nonoise=True``.  ``lambda_`` (or ``wavelength``) is ``-lambda`` and
        ``four_stol`` is ``-4stol``.  Keyword order is argv order (C's later
        flags win).  See :data:`~nbnumba.companions.nonbragg_args.KEYWORD_FLAGS`.

    Raises
    ------
    TypeError
        Unknown keywords (all named) or a wrong number of values.
    """

    def __init__(self, **flags: object) -> None:
        self.argv = keywords_to_argv(flags)
        self.options, self.parse_warnings = parse_nonbragg_args(self.argv)

    @classmethod
    def from_args(cls, argv: list[str] | str) -> NonBragg:
        """From nonBragg.c's command line (a list, or one string split on whitespace)."""
        self = cls.__new__(cls)
        self.argv = argv.split() if isinstance(argv, str) else list(argv)
        self.options, self.parse_warnings = parse_nonbragg_args(self.argv)
        return self

    def run(self, out: Callable[[str], None] | None = None,
            warn: Callable[[str], None] | None = None) -> NonBraggResult:
        """Render the image and everything derived from it.

        Parameters
        ----------
        out : callable, optional
            Receives C's stdout text as it is produced (the CLI prints it).
        warn : callable, optional
            Receives each warning line once, as it arises (each is also issued once
            with :func:`warnings.warn` as a :class:`~nbnumba.errors.NbnumbaWarning`, and
            kept in the result's ``warnings``).

        Returns
        -------
        NonBraggResult

        Raises
        ------
        nbnumba.errors.NbError
            :class:`~nbnumba.errors.SetupExit` without ``-stol``,
            :class:`~nbnumba.errors.InputFileError` for unusable input files,
            :class:`~nbnumba.errors.UsageError` where nonBragg.c would crash,
            read out of bounds or write an all-NaN image.
        """
        from ..inputs import run_inputs

        with run_inputs():  # each input file read once: pipes and FIFOs work
            return self._run(out, warn)

    def _run(self, out: Callable[[str], None] | None,
             warn: Callable[[str], None] | None) -> NonBraggResult:
        chunks: list[str] = []
        warnings = WarningList()

        def emit(text: str) -> None:
            chunks.append(text)
            if out is not None:
                out(text)

        def note(text: str) -> None:
            if text not in warnings.items:
                issue_warnings(text)  # the Python way (NbnumbaWarning)
                if warn is not None:
                    warn(text)
            warnings(text)

        if self.options.imginfilename is not None:
            o, parse_warnings = parse_nonbragg_args(
                self.argv, read_img=lambda opts: read_img_header(opts, emit))
        else:
            o, parse_warnings = self.options, self.parse_warnings
        for w in parse_warnings:
            note(w)
        try:
            scene = setup(o, emit, note)
        except ValueError as exc:
            if type(exc) is not ValueError or "math domain" not in str(exc):
                raise
            # Python's sin/cos refuse inf where C returns NaN
            raise UsageError("an infinite angle (-twotheta, -detector_rot*, divergence) makes "
                             "nonBragg.c's geometry NaN and its image NaN; give finite "
                             "angles") from None
        return _render_and_finish(o, scene, emit, note, chunks, warnings)


def _pack(scene: NonBraggScene) -> tuple[np.ndarray, np.ndarray]:
    from ..kernels import nonbragg as k

    geom = np.zeros(k.G_LEN)
    geom[k.G_FDET:k.G_FDET + 3] = scene.fdet
    geom[k.G_SDET:k.G_SDET + 3] = scene.sdet
    geom[k.G_PIX0:k.G_PIX0 + 3] = scene.pix0
    geom[k.G_BEAM:k.G_BEAM + 3] = scene.beam
    geom[k.G_AXIS:k.G_AXIS + 3] = scene.polar_axis
    geom[k.G_DISTANCE] = scene.distance
    geom[k.G_CLOSE] = scene.close_distance
    geom[k.G_PIXEL] = scene.pixel_size
    geom[k.G_SUBPIXEL] = scene.subpixel_size
    geom[k.G_KAHN] = scene.polarization
    geom[k.G_SCALE_RE] = scene.r_e_sqr
    geom[k.G_FLUENCE] = scene.fluence
    geom[k.G_MOLECULES] = scene.molecules
    flags = np.zeros(k.F_LEN, dtype=np.int64)
    flags[k.F_OVERSAMPLE] = scene.oversample
    flags[k.F_CURVED] = scene.curved
    flags[k.F_POINT] = scene.point_pixel
    flags[k.F_NOPOLAR] = scene.nopolar
    flags[k.F_FMAP] = scene.fmap
    flags[k.F_XMIN:k.F_YMAX + 1] = scene.roi
    flags[k.F_STOLS] = scene.stols
    flags[k.F_STEPS] = scene.steps
    return geom, flags


def render(scene: NonBraggScene, keep_detail: bool = False
           ) -> tuple[np.ndarray, np.ndarray]:
    """The float image (float32 [slow, fast]) and, with ``keep_detail``, per-pixel
    last stol/polar/omega/nearest/position (``(pixels, 7)`` float64)."""
    from ..kernels import nonbragg as k

    geom, flags = _pack(scene)
    image = np.zeros((scene.spixels, scene.fpixels), dtype=np.float32)
    detail = np.zeros((scene.pixels if keep_detail else 1, k.D_LEN))
    den = k.polint_denominators(scene.stol_of)
    args = (geom, flags, scene.sources, scene.stol_of, scene.F_of, den, image, detail,
            keep_detail)
    from ..simulate import interruptible

    # the (nogil) kernel runs in a helper thread while this one waits in short joins:
    # SIGINT/SIGTERM end a run of any size within a second (interruptible)
    with np.errstate(all="ignore"):
        if scene.table_increasing:
            interruptible(k.render_parallel, *args,
                          k.index_buckets(scene.stol_of, scene.stols))
        else:
            interruptible(k.render_serial, *args)
    return image, detail


def _render_and_finish(o: NonBraggOptions, scene: NonBraggScene, emit, note,
                       chunks: list[str], warnings: WarningList) -> NonBraggResult:
    from ..kernels import nonbragg as k
    from ..output import int_scale, max_position, noise_counts, smv_counts
    from ..output import pgm_scale as output_pgm_scale

    keep = scene.img is not None or bool(o.printout)
    image, detail = render(scene, keep_detail=keep)
    geom, flags = _pack(scene)
    xmin, xmax, ymin, ymax = scene.roi
    fpixels, spixels = scene.fpixels, scene.spixels

    if o.printout:
        _printout(o, scene, image, detail, emit)
    emit("\n")
    from ..simulate import interruptible

    omega_total = interruptible(k.omega_sum, geom, flags, fpixels, spixels)
    emit(f"solid angle subtended by detector = {_g(omega_total)} steradian "
         f"( {_g(100 * omega_total / 4 / M_PI)}% sphere)\n")

    mask = roi_mask(scene)
    total, sumsqr, max_I, max_index, n = image_stats(image, mask)
    stol_table = None
    if scene.img is not None:
        stol_table, n = _stol_table(o, scene, detail, emit)

    # stats (line 1684)
    if n <= 0:
        n = 1
    avg = total / n
    if n <= 1:
        n = 2
    rms = math.sqrt(sumsqr / (n - 1)) if sumsqr == sumsqr else sumsqr
    # C's rmsd loop (line 1690) increments j first: pixel j+1 (the last reads the zero pad)
    shifted = np.zeros(scene.pixels + 1, dtype=np.float32)
    shifted[:scene.pixels] = image.reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is C's NaN, silently
        dev = shifted[1:][mask.reshape(-1)].astype(np.float64) - avg
        dev2 = dev * dev
    sumsqr2, n2 = _sequential_sum(dev2), int(dev.size)
    if n2 <= 1:
        n2 = 2
    rmsd = math.sqrt(sumsqr2 / (n2 - 1)) if sumsqr2 == sumsqr2 else sumsqr2

    if math.isfinite(avg) and avg > OVERLOAD_PHOTONS:
        note(f"warning: a mean of {_g(avg)} photons/pixel overloads a 16-bit detector (the "
             f"noise image stops at {OVERLOAD_PHOTONS}): the fluence is {_g(scene.fluence)} "
             "photons/m^2 (nonBragg.c's default 1.26e+29; -flux 1e12 -exposure 1 -beamsize "
             "0.1 give 1e+20): give -flux, -exposure and -beamsize, or -fluence")
    infs = int(np.count_nonzero(np.isinf(image)))
    if infs:
        note(f"warning: {infs} pixel{'s are' if infs > 1 else ' is'} infinite (beyond "
             "float32's 3.4e38 photons), as in nonBragg.c, whose stats then print inf or "
             "-nan and whose automatic -scale becomes 0")
    nans = int(np.count_nonzero(np.isnan(image)))
    if nans:
        body = scene.stol_of[:scene.stols]
        if np.any(np.diff(body) == 0.0):
            why = (f"their interpolation window in {o.stolfilename} spans repeated stol "
                   "values (division by zero in polint)")
        else:  # -distance nan, -pixel 1e300, -polar nan, ...: NaN from the numbers given
            why = "the geometry or the numbers given make them NaN"
        note(f"warning: {nans} pixel{'s are' if nans > 1 else ' is'} NaN, as in nonBragg.c: "
             f"{why}; the int image gets 0 there")

    emit(f"writing {o.floatfilename} as {scene.pixels} 4-byte floats\n")
    max_x, max_y = max_position(max_index, fpixels, scene.oversample, scene.subpixel_size)
    emit(f"max_I = {_g(max_I)}  at {_g(max_x)} {_g(max_y)}\n")
    emit(f"mean= {_g(avg)} rms= {_g(rms)} rmsd= {_g(rmsd)}\n")
    intfile_scale = int_scale(o.intfile_scale, max_I)
    for name, value in (("-scale", o.intfile_scale), ("-pgmscale", o.pgm_scale)):
        if value != value:
            note(f"warning: {name} nan: nonBragg.c keeps it (its automatic scale is taken "
                 f"only for {name} <= 0), so that image's pixels are all 0")
    emit(f"intfile_scale = {_g(intfile_scale)}\n")
    rows = (max(ymin, 0), min(ymax, spixels - 1) + 1)
    cols = (max(xmin, 0), min(xmax, fpixels - 1) + 1)
    int_image = np.zeros((spixels, fpixels), dtype=np.uint16)
    if rows[0] < rows[1] and cols[0] < cols[1]:
        smv_counts(image, intfile_scale, o.adc_offset, *rows, *cols, int_image)
    emit(f"writing {o.intfilename} as 2-byte integers\n")
    header_bytes, header = nonbragg_smv_header(scene)

    pgm_scale = output_pgm_scale(o.pgm_scale, intfile_scale, rmsd)
    emit(f"pgm_scale = {_g(pgm_scale)}\n")
    pgm = pgm_pixels(image, pgm_scale, mask)
    emit(f"writing {o.pgmfilename} as 1-byte integers\n")
    if o.output_pgm:
        if np.any(image < 0):
            note("warning: negative pixels in the PGM: nonBragg.c's conversion is undefined; "
                 "written as gcc's x86-64 code does (low byte of the integer part)")
    else:
        note(f"warning: -nopgm: nonBragg.c ignores it (its output_pgm is never read) and "
             f"writes {o.pgmfilename} anyway; not writing it, as the flag means")

    noise = None
    if o.calculate_noise:
        from ..rng import CRandom, make_seed

        noise = np.zeros((spixels, fpixels), dtype=np.uint16)
        photons, overloads = 0.0, 0
        if rows[0] < rows[1] and cols[0] < cols[1]:
            # one poidev per ROI pixel in C's order, with a fresh generator state (line 1849)
            values = np.ascontiguousarray(image[rows[0]:rows[1], cols[0]:cols[1]]).reshape(-1)
            counts = CRandom().poisson_noise(values, make_seed(o.seed))
            photons, overloads = noise_counts(counts, o.adc_offset, *rows, *cols, noise)
        emit(f"{_fmt_nan_aware(photons, '%.0f')} photons on noise image "
             f"({overloads} overloads)\n")
        emit(f"writing {o.noisefilename} as 2-byte integers\n")

    summary = "".join(chunks).split("\n")
    if summary and summary[-1] == "":
        summary.pop()
    return NonBraggResult(image=image, header=header, header_bytes=header_bytes,
                          summary=summary, warnings=list(warnings.items), options=o,
                          scene=scene, intfile_scale=intfile_scale, pgm_scale=pgm_scale,
                          stol_table=stol_table, _int=int_image, _pgm=pgm, _noise=noise)


OVERLOAD_PHOTONS = 65535  # counts of C's 16-bit noise image


def roi_mask(scene: NonBraggScene) -> np.ndarray:
    """bool [slow, fast]: the pixels C renders (ROI bounds inclusive, line 1421)."""
    xmin, xmax, ymin, ymax = scene.roi
    f = np.arange(scene.fpixels)
    sl = np.arange(scene.spixels)
    return ((sl >= ymin) & (sl <= ymax))[:, None] & ((f >= xmin) & (f <= xmax))[None, :]


def _sequential_sum(values: np.ndarray) -> float:
    """``sum += v`` in order from 0.0, as C's loops add (np.cumsum is sequential)."""
    if values.size == 0:
        return 0.0
    with np.errstate(all="ignore"):  # inf - inf is C's NaN, silently (no numpy line)
        return float(np.cumsum(values, dtype=np.float64)[-1])


def image_stats(image: np.ndarray, mask: np.ndarray) -> tuple[float, float, float, int, int]:
    """C's sum, sum of squares, max_I and its flat index over the ROI (line 1578).

    The index is -1 when no pixel exceeds 0 (C's max_I starts at 0 and NaN
    never compares greater).
    """
    values32 = image[mask]
    total = _sequential_sum(values32.astype(np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        # C squares the float pixel in float (it can overflow to inf), then adds in double
        sumsqr = _sequential_sum((values32 * values32).astype(np.float64))
    index = -1
    max_I = 0.0
    if values32.size:
        masked = np.where(mask, image, np.float32(-np.inf)).reshape(-1)
        masked = np.where(np.isnan(masked), np.float32(-np.inf), masked)
        j = int(np.argmax(masked))  # the first maximum, as C's strict >
        if masked[j] > 0.0:
            index, max_I = j, float(masked[j])
    return total, sumsqr, max_I, index, int(values32.size)


def pgm_pixels(image: np.ndarray, scale: float, mask: np.ndarray) -> np.ndarray:
    """C's PGM bytes (line 1797): ``(unsigned char) min(value·scale, 255)``.

    Negative and NaN values (undefined in C) convert as gcc's x86-64 code does,
    through a 32-bit int: NaN → 0, -3.7 → 253.
    """
    with np.errstate(all="ignore"):
        test = image.astype(np.float64) * scale
        test = np.where(test > 255.0, 255.0, test)
        bad = np.isnan(test) | (test <= -2147483648.0) | ~mask
        t = np.trunc(np.where(bad, 0.0, test)).astype(np.int64)
    return (t & 0xFF).astype(np.uint8)


def _printout(o: NonBraggOptions, scene: NonBraggScene, image, detail, emit) -> None:
    """C's -printout lines (line 1586) for the chosen pixel, or every pixel."""
    from ..kernels import nonbragg as k

    xmin, xmax, ymin, ymax = scene.roi
    for sp in range(scene.spixels):
        for fp in range(scene.fpixels):
            if fp < xmin or fp > xmax or sp < ymin or sp > ymax:
                continue
            if not ((fp == o.printout_fpixel and sp == o.printout_spixel)
                    or o.printout_fpixel < 0):
                continue
            j = sp * scene.fpixels + fp
            x, y, z = detail[j, k.D_POS:k.D_POS + 3]
            twotheta = math.atan2(math.sqrt(y * y + z * z), x)
            test = math.sin(twotheta / 2.0) / (scene.lambda0 * 1e10)
            weight = scene.last_weight
            emit(f"{fp:4d} {sp:4d} : stol = {_g(detail[j, k.D_STOL])} or {_g(test)}\n")
            emit(f" F={_g(0.0)}    I = {_g(weight)}\n")  # C prints an uninitialised F: 0
            emit(f"I/steps {weight / scene.steps:15.10g}\n")
            emit(f"polar   {detail[j, k.D_POLAR]:15.10g}\n")
            emit(f"omega   {detail[j, k.D_OMEGA]:15.10g}\n")
            emit(f"pixel   {float(image[sp, fp]):15.10g}\n")


def _stol_table(o: NonBraggOptions, scene: NonBraggScene, detail, emit) -> tuple[str, int]:
    """-img: F per pixel binned by stol → the -stolout text (lines 1547-1676).

    Returns the text and C's ``n`` afterwards (the last bin's count), which C's
    mean/rms then use.
    """
    from ..kernels import nonbragg as k

    xmin, xmax, ymin, ymax = scene.roi
    ignore = np.array(o.ignore_value, dtype=np.float32)
    Fimage, bin_of, pixels_in = k.img_bins(
        scene.img.pixels, detail, scene.fpixels, scene.spixels, xmin, xmax, ymin, ymax,
        ignore, o.adc_offset, o.quantum_gain, scene.fluence, scene.r_e_sqr, scene.molecules,
        float(scene.steps), scene.stol_of, scene.stols)
    buf, start = k.bin_storage(Fimage, bin_of, pixels_in, scene.stols)
    if buf.size == 0:
        raise UsageError("-img with -roi: nonBragg.c's bin of skipped pixels runs past its "
                         "buffer (lines 1626-1650, a write out of bounds); drop -roi")
    lines: list[str] = []
    n = 0
    mult = scene.stol_file_mult
    for b in range(2, scene.stols - 2):
        n = int(pixels_in[b])
        avg, rmsd = k.fmean_float32(buf[start[b]:start[b] + n])
        stol = scene.stol_of[b] / mult
        if n > 100:
            lines.append(f"{_g(stol)} {_g(float(avg))} {_g(float(rmsd))}   {_g(0.0)} "
                         f"{_g(0.0)}  {n}\n")
        else:
            emit(f"WARNING: not enough pixels in bin= {b} n={n} stol= {_g(stol)} "
                 f"median= {_g(0.0)} avg_arej= {_g(float(avg))}\n")
    emit(f"wrote {o.stoloutfilename} as {len(lines)} lines of text\n")
    return "".join(lines), n
