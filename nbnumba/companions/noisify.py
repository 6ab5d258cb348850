"""noisify.c: ideal photons/pixel in, detector images out (noise, PSF, gain, ADC).

Three layers, as for the spot simulator:

* :func:`parse_args` ports noisify.c's argv loop (lines 161-320) literally: ``strstr``
  substring matching, argv order, values not consumed, any argument containing
  ``floatimage.bin`` taken as the input. Our one extension, ``-add FILE`` (repeatable),
  is taken out first, so C's loop never sees it: the files are added to the input in
  float32, in argument order, before anything else (C's ``float_add``).
* :func:`run` is C's ``main`` after the loop (lines 322-666): size rules, photon scale,
  PSF, integer images, shot/flicker/calibration/read noise with C's generators in C's
  order of draws; it returns a :class:`NoisifyResult` (arrays, header, C's stdout lines,
  warnings) and writes nothing.
* :class:`Noisify` is the Python API: ``Noisify.from_args(argv)`` or
  ``Noisify(**keywords)``, then ``.run(image=None)`` and ``result.write()``.

Line numbers refer to noisify.c (bl831/nanoBragg HEAD 455534a, "6-28-21");
``specs/noisify.md`` lists every flag, quirk and refusal.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..cargs import numeric_note, unknown_keywords_error
from ..cnum import c_div
from ..constants import R_E_SQR
from ..errors import (
    InputFileError,
    InputFileOpenError,
    ResourceError,
    SetupExit,
    UsageError,
    raise_if_signalled,
    write_error,
)
from ..errors import warn as issue_warnings
from ..inputs import input_size, read_input
from ..io import (
    atomic_write,
    c_atof,
    c_atoi,
    c_format_g,
    c_int_from_double,
    read_smv,
    smv_value,
    wrap_int32,
)
from .floatadd import float_add

__all__ = ["NoisifyOptions", "NoisifyResult", "Noisify", "parse_args", "run",
           "noisify_header", "KEYWORDS", "OWN_FLAGS", "USAGE"]

C_NAME = "noisify.c"
BANNER = "noisify - add noise to pixels - James Holton 3-19-16\n"
UNKNOWN, FIBER, GAUSS = 0, 1, 2  # C's psf_type enum (line 72)
PSF_NAMES = {UNKNOWN: "none", FIBER: "fiber", GAUSS: "gauss"}
DEFAULT_FLUENCE = 125932015286227086360700780544.0  # fluence*r_e^2 == 1.0 exactly
FWHM_TO_G = 0.652383013252053  # apply_psf (line 729)
OWN_FLAGS = ("-add",)
# the largest PSF kernel C can index with its int arithmetic
MAX_KERNEL_ELEMENTS = 2**31 - 1

USAGE = """usage: noisify -floatfile floatimage.bin
options:
\tfloatimage.bin\t nearBragg-style binary dump file
\t-scale\tscale factor to put floatimage.bin in photons/pixel
\t-gain\tpixel units per photon
\t-readout_noise\tgaussian noise added to every pixel
\t-flicker\t fractional 1/f noise in source
\t-calibration\t static fractional error per pixel
\t-calib_seed\t change seed for calibration error
\t-seed\t specify seed for all non-calibration errors
\t-gain\t pixel units per photon
\t-adc\t offset added to each pixel after noise
\t-distance\t distance from origin to detector center in mm
\t-detsize\t detector size in mm
\t-pixel\t detector pixel size in mm
\t-psf gauss|fiber\t point spread function type (gaussian or fiber)
\t-psf_fwhm\t point spread function size in um
\t-psf_radius\t radius to render PSF in pixels (default automatic)
\t-lambda\t incident x-ray wavelength in Angstrom
\t-intfile\t name of smv-formatted output file (arbitrary scale)
\t-pgmfile\tname of pgm-formatted output file (arbitrary scale)
\t-noisefile\t name of smv-formatted output file (with noise)
\t-Xbeam\t image X coordinate of direct-beam spot (mm)
\t-Ybeam\t image Y coordinate of direct-beam spot (mm)
\t-header\t import 512-byte header from specified SMV file
"""

Out = Callable[[str], None]


# ------------------------------------------------------------------------- options

@dataclass
class NoisifyOptions:
    """noisify.c's variables after its argv loop, in C's internal units (metres).

    ``lambda0`` stays in Angstrom as typed (C copies it into the header only);
    ``psf_fwhm`` is a float32 in metres as C's ``float``; ``seed`` None means C's
    ``-time(0)``, resolved when the run starts.
    """

    floatfilename: str | None = None  # the last input named (C fopen()s each, keeps the last)
    floatfile_flag: str = ""  # the argument that named it, for messages
    add_files: list[str] = field(default_factory=list)  # our -add extension
    headerfilename: str | None = None
    distance: float = 100.0e-3
    detsize_x: float = 102.4e-3
    detsize_y: float = 102.4e-3
    pixel: float = 0.1e-3
    Xbeam: float = -1e99
    Ybeam: float = -1e99
    xpixels: int = 0
    ypixels: int = 0
    lambda0: float = 1.0
    psftype: int = UNKNOWN
    psf_fwhm: np.float32 = field(default_factory=lambda: np.float32(46e-6))
    psf_radius: int = 0
    intimage_bits: int = 16
    intfilename: str = "intimage.img"
    pgmfilename: str = "image.pgm"
    noisefilename: str = "noiseimage.img"
    calculate_noise: bool = True
    write_pgm: bool = True
    readout_noise: float = 0.0
    flicker_noise: float = 0.0
    calibration_noise: float = 0.03
    adc_offset: float = 40.0
    quantum_gain: float = 1.0
    phi0: float = 0.0
    osc: float = 1.0
    fluence: float = DEFAULT_FLUENCE
    photon_scale: float = 1.0
    seed: int | None = None
    calib_seed: int = 123456789  # positive: the first ran1 call with it re-seeds it to 1
    badpix_seed: int = 1234  # parsed, never used (as in C)
    hotpix_seed: int = 5678
    parse_stdout: list[str] = field(default_factory=list)  # lines C prints inside its loop
    given: set[str] = field(default_factory=set)  # the value flags the command line set

    def outputs(self) -> list[tuple[str, str]]:
        """(flag, path) of each file the run writes, in C's order (int, PGM, noise)."""
        out = [("-intfile", self.intfilename)]
        if self.write_pgm:
            out.append(("-pgmfile", self.pgmfilename))
        if self.calculate_noise:
            out.append(("-noisefile", self.noisefilename))
        return out

    def inputs(self) -> list[tuple[str, str]]:
        """(flag, path) of each file the run reads."""
        flag = self.floatfile_flag if self.floatfile_flag not in ("", "input") else \
            "-floatfile"
        named = [(flag, self.floatfilename),
                 ("-header", self.headerfilename)] + [("-add", p) for p in self.add_files]
        return [(flag, path) for flag, path in named if path]


def _printf_f0(x: float) -> str:
    """printf ``%.0f`` as glibc prints it: NaN keeps its sign (``-nan``)."""
    if x != x:
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return f"{x:.0f}"


def _one_plus_ceil_to_int(x: float) -> int:
    """C's ``(int)(1 + ceil(x))``: INT_MIN (gcc's x86-64 conversion) for NaN, inf and out
    of range, where Python's math.ceil would raise."""
    return c_int_from_double(1.0 + math.ceil(x) if math.isfinite(x) else x)


def _cdiv_int(a: int, b: int) -> int:
    """C's int division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _take_own_flags(argv: list[str], o: NoisifyOptions) -> list[str]:
    """Remove ``-add FILE`` (exact name) from argv; C's loop never sees it."""
    rest: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "-add":
            if i + 1 >= len(argv):
                raise UsageError("-add needs a float image file (summed onto the input)")
            o.add_files.append(argv[i + 1])
            i += 2
            continue
        rest.append(argv[i])
        i += 1
    return rest


_INPUT_FLAGS = ("-floatfile", "-floatimage", "-bin")
_VALUE_FLAGS = ("-lambda", "-Xbeam", "-Ybeam", "-distance", "-detsize", "-detpixels", "-pixel",
                "-psf", "-fluence", "-header", "-pgmfile", "-pgmimage", "-intfile", "-intimage",
                "-bits", "-noisefile", "-noiseimage", "-readout", "-readnoi", "-flicker",
                "-calibration", "-scale", "-seed", "-adc", "-gain", "-phi", "-osc")


def parse_args(argv: Sequence[str]) -> tuple[NoisifyOptions, list[str]]:
    """noisify.c's argv loop (lines 161-320): options and warnings about C's surprises.

    ``argv`` excludes the program name. Never fails on C's own flags (C never does);
    ``-add`` without a file raises :class:`UsageError`.
    """
    o = NoisifyOptions()
    warnings: list[str] = []

    def warn(text: str) -> None:
        if text not in warnings:
            warnings.append(text)

    args = [C_NAME] + _take_own_flags([os.fsdecode(a) for a in argv], o)
    argc = len(args)
    fwhm_flag = ""  # the last -psf_fwhm given, with its value
    inputs: list[str] = []
    matched_any: set[int] = set()

    for i in range(1, argc):
        a = args[i]
        if "floatimage.bin" in a:  # line 163: taken as the input, then `continue`
            prev = args[i - 1] if i > 1 else ""
            if prev.startswith("-") and any(f in prev for f in _VALUE_FLAGS) \
                    and not any(f in prev for f in _INPUT_FLAGS):
                warn(f"warning: {a}: noisify.c takes any argument containing "
                     f"'floatimage.bin' as its input, even as the value of {prev}")
            o.floatfilename = a
            o.floatfile_flag = "input"
            inputs.append(a)
            continue
        if not a.startswith("-"):
            continue
        have = argc > i + 1  # C's `argc > (i+1)`

        def f(k: int = 1, a: str = a, i: int = i) -> float:
            v = c_atof(args[i + k])
            note = numeric_note(a, args[i + k], "atof", v, C_NAME)
            if note:
                warn(note)
            return v

        def n(k: int = 1, a: str = a, i: int = i) -> int:
            v = c_atoi(args[i + k])
            note = numeric_note(a, args[i + k], "atoi", v, C_NAME)
            if note:
                warn(note)
            return v

        hits: list[str] = []
        short: list[str] = []

        def m(sub: str, length: int | None = None, a: str = a) -> bool:
            return sub in a and (length is None or len(a) == length)

        def take(sub: str, hit: bool, have: bool = have, short: list = short,
                 hits: list = hits) -> bool:
            if hit and not have:
                short.append(sub)
                return False
            if hit:
                hits.append(sub)
            return hit

        if take("-lambda", m("-lambda")):
            o.lambda0 = f()
        if take("-Xbeam", m("-Xbeam")):
            o.Xbeam = f() / 1000.0
        if take("-Ybeam", m("-Ybeam")):
            o.Ybeam = f() / 1000.0
        if take("-distance", m("-distance")):
            o.distance = f() / 1000.0
        if take("-detsize", m("-detsize", 8)):
            o.detsize_x = o.detsize_y = f() / 1000.0
        if take("-detsize_x", m("-detsize_x")):
            o.detsize_x = f() / 1000.0
        if take("-detsize_y", m("-detsize_y")):
            o.detsize_y = f() / 1000.0
        if take("-detpixels", m("-detpixels", 10)):
            o.xpixels = o.ypixels = n()
        if take("-detpixels_x", m("-detpixels_x")):
            o.xpixels = n()
        if take("-detpixels_y", m("-detpixels_y")):
            o.ypixels = n()
        if take("-pixel", m("-pixel")):
            o.pixel = f() / 1000.0
        if m("-psf", 4):
            # line 218 tests argc >= i+1 (always true): as the last argument C reads
            # argv[argc] (NULL) and crashes; what it meant is argc > i+1
            if have:
                hits.append("-psf")
                value = args[i + 1]
                o.psftype = UNKNOWN
                if "gauss" in value:
                    o.psftype = GAUSS
                if "fiber" in value:
                    o.psftype = FIBER
                if o.psftype == UNKNOWN:
                    o.parse_stdout.append(f"WARNING: unknown psf type: {value}\n")
                    # C's line goes to stdout and the run goes on: say it where warnings go
                    warn(f"warning: -psf {value}: neither 'gauss' nor 'fiber' in it; "
                         "noisify.c turns the PSF off")
            else:
                short.append("")  # counted as matched, warned below
                warn("warning: -psf is the last argument: noisify.c would crash here "
                     "(it reads past argv); ignored")
        if take("-psf_rad", m("-psf_rad")):
            o.psf_radius = c_int_from_double(f())  # int psf_radius = atof(...)
        if take("-psf_fwhm", m("-psf_si") or m("-psf_fw") or m("-psf_wi")):
            with np.errstate(over="ignore"):  # C's float: beyond 3.4e38 it is inf
                o.psf_fwhm = np.float32(f() / 1e6)
            fwhm_flag = f"{a} {args[i + 1]}"
        if take("-fluence", m("-fluence")):
            o.fluence = f()
        if take("-floatfile", m("-floatfile") or m("-floatimage") or m("-bin")):
            o.floatfilename = args[i + 1]
            o.floatfile_flag = a
            inputs.append(args[i + 1])
        if take("-header", m("-header")):
            o.headerfilename = args[i + 1]
        if take("-pgmfile", m("-pgmfile") or m("-pgmimage")):
            o.pgmfilename = args[i + 1]
        if take("-intfile", m("-intfile") or m("-intimage")):
            o.intfilename = args[i + 1]
        if take("-bits", m("-bits")):
            o.intimage_bits = n()
        if take("-noisefile", m("-noisefile") or m("-noiseimage")):
            o.noisefilename = args[i + 1]
        if m("-nonoise"):
            hits.append("-nonoise")
            o.calculate_noise = False
        if m("-nopgm"):
            hits.append("-nopgm")
            o.write_pgm = False
        if take("-readout", m("-readout") or m("-readnoi")):
            o.readout_noise = f()
        if take("-flicker", m("-flicker")):
            o.flicker_noise = f()
        if take("-calibration", m("-calibration")):
            o.calibration_noise = f()
        if take("-scale", m("-scale")):
            o.photon_scale = f()
        if take("-seed", m("-seed")):
            o.seed = wrap_int32(-n())
        if take("-calib_seed", m("-calib_seed")):
            o.calib_seed = wrap_int32(-n())
        if take("-badpix_seed", m("-badpix_seed")):
            o.badpix_seed = wrap_int32(-n())
            warn("warning: -badpix_seed has no effect in noisify.c")
        if take("-hotpix_seed", m("-hotpix_seed")):
            o.hotpix_seed = wrap_int32(-n())
            warn("warning: -hotpix_seed has no effect in noisify.c")
        if take("-adc", m("-adc")):
            o.adc_offset = f()
        if take("-gain", m("-gain")):
            o.quantum_gain = f()
        if take("-phi", m("-phi")):
            o.phi0 = f()
        if take("-osc", m("-osc")):
            o.osc = f()

        o.given.update(hits)
        if hits or short:
            matched_any.add(i)
        for sub in filter(None, short):
            warn(f"warning: {a} is the last argument: noisify.c ignores it ({sub} needs a value)")
        if len(hits) > 1:
            warn(f"warning: {a} matches several noisify.c flags ({', '.join(hits)}); "
                 "C applies all of them")
        if any(h.startswith("-detsize") for h in hits):
            warn(f"warning: {a}: noisify.c resets the detector size to pixel size times "
                 "pixel count; -detsize only matters where the pixel count is not known")

    # arguments that are neither a flag C knows nor a value of one
    for i in range(1, argc):
        a = args[i]
        if a.startswith("-") and i not in matched_any and "floatimage.bin" not in a:
            prev = args[i - 1] if i > 1 else ""
            if not (i - 1 in matched_any and prev != "-nonoise" and prev != "-nopgm"):
                warn(f"warning: {a}: not a noisify.c flag; ignored")
    if fwhm_flag and not o.psf_fwhm > 0:  # C blurs only `if(psf_fwhm > 0.0)` (593)
        warn(f"warning: {fwhm_flag}: noisify.c applies no PSF unless its FWHM is above 0 um")
    if len(set(inputs)) > 1:
        warn(f"warning: noisify.c reads only the last input it is given ({inputs[-1]}); "
             "use -add FILE to sum several float images")
    return o, warnings


# ------------------------------------------------------------------------- results

def noisify_header(bits: int, xpixels: int, ypixels: int, pixel: float, distance: float,
                   lambda0: float, Xbeam: float, Ybeam: float, detsize_y: float,
                   phi0: float, osc: float) -> bytes:
    """noisify.c's own SMV header (lines 531-539): lengths in metres, ``lambda0`` in
    Angstrom, angles in degrees as typed. ``bits`` other than 16 and 32 drops the
    ``{``/HEADER_BYTES/DIM/BYTE_ORDER/TYPE lines, as C does. Spaces pad it to 512 bytes."""
    g = c_format_g
    text = ""
    if bits == 16:
        text += "{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
    if bits == 32:
        text += "{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=long_integer;\n"
    text += (f"SIZE1={xpixels};\nSIZE2={ypixels};\nPIXEL_SIZE={g(pixel * 1000.0)};\n"
             f"DISTANCE={g(distance * 1000.0)};\n"
             f"WAVELENGTH={g(lambda0)};\nBEAM_CENTER_X={g(Xbeam * 1000.0)};\n"
             f"BEAM_CENTER_Y={g((detsize_y - Ybeam) * 1000)};\n"
             f"PHI={g(phi0)};\nOSC_START={g(phi0)};\nOSC_RANGE={g(osc)};\n"
             "DETECTOR_SN=000;\nBEAMLINE=fake;\n}\f")
    raw = text.encode("ascii")
    return raw + b" " * max(0, 512 - len(raw))


@dataclass
class NoisifyResult:
    """What a noisify run makes. Arrays are [slow, fast] = (ypixels, xpixels).

    ``photons``: float32 photons/pixel after the scale (and the PSF with -nonoise);
    ``int_image``: the noiseless image (uint32 with -bits 32, else uint16);
    ``noise_image``: the noisy image, same dtype (None with -nonoise);
    ``noise_photons``: float32 Poisson counts after the PSF, before gain/ADC/read noise;
    ``pgm_image``: uint8 (None with -nopgm); ``header``: the bytes before the pixels of
    both SMV files; ``summary``: C's stdout lines; ``warnings``: our notes on C's quirks.
    """

    options: NoisifyOptions
    photons: np.ndarray
    int_image: np.ndarray
    noise_image: np.ndarray | None
    noise_photons: np.ndarray | None
    pgm_image: np.ndarray | None
    header: bytes
    summary: list[str]
    warnings: list[str]
    overloads: int = 0
    seed: int = 0
    xpixels: int = 0  # C's sizes (the SMV/PGM headers); arrays are flat if one is negative
    ypixels: int = 0
    # what the SMV headers took from noisify.c's defaults, as a warning ("" when nothing
    # did or -header gave the header): said where the files are written
    header_note: str = ""

    @property
    def image(self) -> np.ndarray:
        """The final detector image: the noise image, or the int image with -nonoise."""
        return self.noise_image if self.noise_image is not None else self.int_image

    @property
    def stdout(self) -> str:
        """C's stdout as one string."""
        return "".join(line + "\n" for line in self.summary)

    def _smv_bytes(self, image: np.ndarray) -> list:
        bits = self.options.intimage_bits
        if bits == 16:
            return [self.header, np.ascontiguousarray(image, dtype="<u2").tobytes()]
        if bits == 32:
            return [self.header, np.ascontiguousarray(image, dtype="<u4").tobytes()]
        return [self.header]  # C writes the header and no pixels

    def files(self, intfile: str | None = None, noisefile: str | None = None,
              pgmfile: str | None = None) -> list[tuple[str, list]]:
        """(path, chunks) of every file C writes, in C's order (int, PGM, noise)."""
        o = self.options
        out = [(intfile or o.intfilename, self._smv_bytes(self.int_image))]
        if self.pgm_image is not None:
            xp, yp = self.xpixels, self.ypixels
            head = f"P5\n{xp} {yp}\n# pixels scaled by {c_format_g(1.0)}\n255\n"
            out.append((pgmfile or o.pgmfilename,
                        [head.encode("ascii"), np.ascontiguousarray(self.pgm_image).tobytes()]))
        if self.noise_image is not None:
            out.append((noisefile or o.noisefilename, self._smv_bytes(self.noise_image)))
        return out

    def write(self, folder: str | os.PathLike | None = None, *, intfile: str | None = None,
              noisefile: str | None = None, pgmfile: str | None = None) -> list[str]:
        """Write C's files (byte-identical to noisify-nb's), each atomically.

        Names default to the run's -intfile/-pgmfile/-noisefile; relative names are taken
        in ``folder`` when given (created if missing). Returns the paths written.
        """
        if self.header_note:
            issue_warnings(self.header_note)
        if folder is not None:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:  # a file of that name, no permission, ...
                raise write_error(folder, exc) from exc
        written = []
        for path, chunks in self.files(intfile, noisefile, pgmfile):
            if folder is not None and not os.path.isabs(path):
                path = os.path.join(os.fspath(folder), path)
            try:
                atomic_write(path, chunks)
            except OSError as exc:
                raise write_error(path, exc) from exc
            written.append(path)
        return written


# ------------------------------------------------------------------------------ run



def _check_array_size(data: np.ndarray, shape2d: tuple[int, ...] | None, xpixels: int,
                      ypixels: int, pixels: int, header: str | None) -> None:
    """An in-memory image must have the size the flags give: noisify.c reads a file of
    another size in memory order (a longer one cut, a shorter one padded with zeros),
    which for an array is a mistake to report, not to reproduce.

    Raises
    ------
    UsageError
        ``data`` holds another number of pixels than ``xpixels*ypixels``, or is 2-D with
        another shape than ``(ypixels, xpixels)`` ([slow, fast]).
    """
    source = f"-header {header}" if header is not None else "-detpixels/-detsize/-pixel"
    wanted = f"{xpixels}x{ypixels} (fast x slow) pixels as {source} give"
    if shape2d is not None and xpixels > 0 and ypixels > 0 \
            and tuple(shape2d) != (ypixels, xpixels):
        raise UsageError(f"image: a {shape2d[1]}x{shape2d[0]} (fast x slow) array, not the "
                         f"{wanted}: pass an array of shape ({ypixels}, {xpixels}), or leave "
                         f"the size flags out to take the array's")
    if data.size != pixels:
        raise UsageError(f"image: {data.size} values, not the {pixels} of the {wanted}")


def _as_float32(data: bytes | np.ndarray, pixels: int, path: str, out_warn: Out) -> np.ndarray:
    """C's ``fread(floatimage, pixels, 4, f)`` into a zeroed buffer (line 443)."""
    if isinstance(data, np.ndarray):
        raw = data.reshape(-1)
        nbytes = raw.size * 4
    else:
        raw = None
        nbytes = len(data)
    if nbytes < pixels:
        raise InputFileError(path, f"holds {nbytes} bytes, fewer than the {pixels} noisify.c "
                                   "needs to read anything (it exits: 'reading input file')")
    img = np.zeros(pixels, dtype=np.float32)
    have = min(pixels, nbytes // 4)
    if raw is None:
        img[:have] = np.frombuffer(data, dtype="<f4", count=have)
    else:
        img[:have] = raw[:have]
    if have < pixels:
        out_warn(f"warning: {path}: {nbytes} bytes hold {have} of the {pixels} pixels; "
                 "noisify.c reads them and leaves the rest 0")
    return img


def _image_of(value: object) -> object:
    """A simulation's result (``NonBragg(...).run()``, ``Simulation(...).run()``) stands for
    its float image."""
    if not isinstance(value, np.ndarray) and isinstance(getattr(value, "image", None),
                                                          np.ndarray):
        return value.image
    return value


def _images(image: object) -> list:
    """The images ``run(image=...)`` was given: an array (or a simulation's result: its
    ``.image``) is one image; a list or tuple of them is several (summed); nested lists of
    numbers are one image (``w.tolist()`` of a 2-D image is that image, not its rows), a
    3-deep nesting several."""
    if not isinstance(image, (list, tuple)):
        return [_image_of(image)]
    image = [_image_of(a) for a in image]
    if image and all(isinstance(a, np.ndarray) for a in image):
        return list(image)
    try:
        nested = np.asarray(image)
    except ValueError:  # ragged: let the shape check below name it
        return list(image)
    if nested.dtype == object or nested.ndim > 3:
        return list(image)
    return list(nested) if nested.ndim == 3 else [nested]


def _apply_psf(image: np.ndarray, xpixels: int, ypixels: int, psftype: int,
               fwhm_pixels: float, user_radius: int, out: Out, warn: Out) -> np.ndarray:
    """apply_psf (lines 716-924): a new float32 image, blurred, lost photons added back."""
    from ..kernels import noisify as k
    from ..simulate import interruptible  # a kernel in a helper thread: signals are seen

    g = fwhm_pixels * FWHM_TO_G
    pixels = xpixels * ypixels
    if pixels == 0:
        out("ERROR: apply_psf image has zero size\n")
        return image
    if fwhm_pixels <= 0.0:
        out("WARNING: apply_psf function has zero size\n")
        return image
    radius = user_radius
    below_001 = False  # gauss, automatic radius: sqrt of a negative number
    if radius <= 0:
        finite = image[~np.isnan(image)]
        max_I = max(0.0, float(finite.max())) if finite.size else 0.0
        out(f"  maximum input photon/pixel: {c_format_g(max_I)}\n")
        if max_I <= 0.0:
            out("WARNING: no photons, PSF skipped\n")
            warn("warning: no photons above 0 for the PSF: noisify.c returns an all-zero image")
            return np.zeros(pixels, dtype=np.float32)
        lost = math.sqrt(max_I) / 10.0
        with np.errstate(all="ignore"):
            if psftype == GAUSS:
                arg = -math.log(lost / max_I) / math.log(4) / 2
                below_001 = not arg >= 0
                radius = _one_plus_ceil_to_int(math.sqrt(arg) * fwhm_pixels
                                               if arg >= 0 else math.nan)
            else:
                radius = _one_plus_ceil_to_int(g * (max_I / lost))
        out(f"  auto-selected psf_radius = {radius} pixels\n")
        if radius == 0:
            radius = 1
    maxwidth = max(xpixels, ypixels)
    if radius > maxwidth:
        radius = maxwidth
    if radius < 0:
        # The automatic radius is not an int (INT_MIN): sqrt of a negative number (gauss,
        # every pixel below 0.01 photons) or an infinite/huge width (-pixel 0, a huge
        # -psf_fwhm). C's kernel_size overflows to 1 and every pixel's own radius is
        # INT_MIN too, so no pixel renders: the image is the lost photons spread evenly.
        radii, lost_arr, used = interruptible(k.psf_radii, image, psftype,
                                               float(fwhm_pixels), float(g), int(user_radius),
                                               int(maxwidth))
        total_lost = float(k.psf_lost_total(lost_arr, used))
        if below_001:
            warn("warning: automatic Gaussian PSF radius of an image below 0.01 "
                 "photons/pixel: undefined in noisify.c (sqrt of a negative number); the "
                 "photons vanish as in gcc's build")
        else:
            warn(f"warning: a PSF {c_format_g(fwhm_pixels)} pixels wide has no int "
                 "rendering radius in noisify.c (INT_MIN): nothing is rendered, only its "
                 "'lost photons' are added back evenly, as in gcc's build")
        out(f"adding back {c_format_g(total_lost)} lost photons\n")
        with np.errstate(over="ignore", invalid="ignore"):
            return np.full(pixels, np.float32(total_lost / pixels), dtype=np.float32)
    size = 2 * radius + 1
    if size * size > MAX_KERNEL_ELEMENTS:
        raise ResourceError(f"PSF radius {radius} px: the {size}x{size} kernel overflows "
                            "noisify.c's int indexing")
    kernel = k.psf_kernel(psftype, float(fwhm_pixels), float(g), radius)
    radii, lost_arr, used = interruptible(k.psf_radii, image, psftype, float(fwhm_pixels),
                                           float(g), int(user_radius), int(maxwidth))
    if user_radius == 0 and psftype == GAUSS and bool(np.any(radii[used] < 0)):
        warn("warning: automatic Gaussian PSF radius of a pixel with 0 < I < 0.01: undefined "
             "in noisify.c (sqrt of a negative number); its photons vanish as in gcc's build")
    total_lost = float(k.psf_lost_total(lost_arr, used))
    uniform = user_radius > 0
    # the wrap (line 901 tests x > xpixels): taps at x == xpixels land on column 0 below
    if k.psf_wraps(radii, used, int(xpixels), int(ypixels)):
        warn("warning: noisify.c's PSF bounds test (line 901) lets taps one column past the "
             "right edge land on column 0 of the next row; reproduced")
    result = interruptible(k.psf_apply, image, int(xpixels), int(ypixels), kernel,
                            int(radius), radii, used, uniform, total_lost / pixels)
    out(f"adding back {c_format_g(total_lost)} lost photons\n")
    return result


def run(options: NoisifyOptions, image: np.ndarray | Sequence[np.ndarray] | None = None,
        out: Out | None = None, warn: Out | None = None) -> NoisifyResult:
    """noisify.c's main after the argv loop (lines 322-666), without writing files.

    Parameters
    ----------
    options : NoisifyOptions
        From :func:`parse_args`.
    image : array or sequence of arrays, optional
        float32 photons/pixel given in memory instead of the input file ([slow, fast],
        or flat; a sequence is summed in float32 in order). A 2-D array without
        -detpixels/-header gives the image size (C would guess it from the pixel count).
    out, warn : callables, optional
        Receive C's stdout text and our warning lines as they come (the result keeps
        both anyway; each warning is also issued once with :func:`warnings.warn` as a
        :class:`~nbnumba.errors.NbnumbaWarning`).

    Raises
    ------
    SetupExit
        No input at all (C prints its usage and exits 9).
    InputFileError
        An input or -header file C cannot use (C exits or crashes).
    UsageError
        A size C cannot allocate (C crashes).
    """
    from ..kernels import noisify as k
    from ..rng import make_seed, new_state

    o = options
    summary: list[str] = []
    warnings: list[str] = []

    def say(text: str) -> None:
        summary.append(text)
        if out is not None:
            out(text)

    def note(text: str) -> None:
        if text not in warnings:
            warnings.append(text)
            issue_warnings(text)  # the Python way (NbnumbaWarning)
            if warn is not None:
                warn(text)

    seed = o.seed if o.seed is not None else wrap_int32(-int(time.time()))
    for line in o.parse_stdout:
        say(line)
    say(BANNER)

    # the input (lines 324-351, 353-357)
    name = o.floatfilename
    if image is None:
        if name is None:
            for line in USAGE.splitlines(keepends=True):
                say(line)
            raise SetupExit("no input float image: give -floatfile FILE (noisify.c prints "
                            "its usage and exits)")
        # C's ftell gives the size of a file (line 355); the pixels are read only once
        # their count is known, and only the bytes they need (fread, line 443), so a
        # device or an endless pipe works with -detpixels or -header, as in C
        data: bytes | np.ndarray | None = None
        try:
            file_size = input_size(name)
            if file_size is None and not (o.headerfilename is not None
                                          or (o.xpixels and o.ypixels)):
                data = read_input(name)  # a pipe's length is the only size it has
                file_size = len(data)
        except InputFileOpenError as exc:  # C's fopen gave NULL: its usage, exit 9
            exc.messages = USAGE.splitlines(keepends=True)
            raise
        nbytes = file_size or 0  # a stream sized by the flags: C's ftell gives no size
        shape2d = None
    else:
        arrays = _images(image)
        if not arrays:
            raise UsageError("image: an empty sequence of arrays")
        shapes = {np.shape(a) for a in arrays}
        if len(shapes) != 1:
            raise UsageError(f"image: arrays of different shapes {sorted(shapes)}")
        data = np.ascontiguousarray(float_add(arrays), dtype=np.float32)
        nbytes = data.size * 4
        file_size = None
        shape2d = data.shape if data.ndim == 2 else None
        name = "(in-memory image)"
    if nbytes >= 2**31:
        raise InputFileError(name, f"{nbytes} bytes: too large for noisify.c's int byte count")
    pixels = nbytes // 4

    xpixels, ypixels = o.xpixels, o.ypixels
    pixel, distance, lambda0 = o.pixel, o.distance, o.lambda0
    detsize_x, detsize_y, Xbeam, Ybeam = o.detsize_x, o.detsize_y, o.Xbeam, o.Ybeam
    header_bytes = None
    if o.headerfilename is not None:  # lines 359-393
        say(f"taking header from {o.headerfilename}\n")
        frame = read_smv(o.headerfilename, allow_short=True)
        say(f"reading {o.headerfilename}\n")
        header_bytes = frame.header.encode("latin-1")
        xpixels, ypixels = frame.width, frame.height
        pixels = wrap_int32(xpixels * ypixels)
        test = smv_value(frame, "PIXEL_SIZE")
        if not math.isnan(test):
            pixel = test / 1000.0
        detsize_x = pixel * xpixels
        detsize_y = pixel * ypixels
        test = smv_value(frame, "DISTANCE")  # the LAST "DISTANCE": CLOSE_DISTANCE if later
        if not math.isnan(test):
            distance = test / 1000.0
        test = smv_value(frame, "WAVELENGTH")
        if not math.isnan(test):
            lambda0 = test / 1e10
        test = smv_value(frame, "BEAM_CENTER_X")
        if not math.isnan(test):
            Xbeam = test / 1000.0
        test = smv_value(frame, "BEAM_CENTER_Y")
        if not math.isnan(test):
            Ybeam = detsize_y - test / 1000.0
    elif shape2d is not None and not xpixels and not ypixels:
        ypixels, xpixels = int(shape2d[0]), int(shape2d[1])

    if not xpixels and not ypixels:  # lines 396-410
        say("WARNING: guessing xy pixel dimensions.\n")
        if pixels == 0:
            raise InputFileError(name, "is empty: noisify.c divides by zero guessing its size")
        xpixels = int(math.sqrt(pixels))
        ypixels = pixels // xpixels
        while pixels != xpixels * ypixels and xpixels > 0:
            xpixels -= 1
            ypixels = pixels // xpixels
        if pixels != xpixels * ypixels:
            xpixels, ypixels = pixels, 1
        if xpixels * ypixels == pixels and ypixels != xpixels:
            note(f"warning: noisify.c guessed {xpixels}x{ypixels} (fast x slow) pixels from "
                 f"{pixels} values; give -detpixels_x/-detpixels_y if that is wrong")
    if xpixels and not ypixels:
        ypixels = _cdiv_int(pixels, xpixels)
    if not xpixels and ypixels:
        xpixels = _cdiv_int(pixels, ypixels)
    with np.errstate(all="ignore"):
        if xpixels:
            detsize_x = pixel * xpixels
        else:
            xpixels = c_int_from_double(math.ceil(c_div(detsize_x, pixel) - 0.5)
                                        if _finite(c_div(detsize_x, pixel)) else math.nan)
        if ypixels:
            detsize_y = pixel * ypixels
        else:
            ypixels = c_int_from_double(math.ceil(c_div(detsize_y, pixel) - 0.5)
                                        if _finite(c_div(detsize_y, pixel)) else math.nan)
    pixels = wrap_int32(xpixels * ypixels)
    if pixels <= 0 or xpixels * ypixels != pixels:
        raise UsageError(f"a {xpixels}x{ypixels} pixel image: noisify.c cannot allocate or "
                         "read it (it crashes or reads nothing)")
    if o.psftype != UNKNOWN and (xpixels < 0 or ypixels < 0):
        raise UsageError(f"a {xpixels}x{ypixels} pixel image with a PSF: noisify.c would "
                         "index outside its images")

    if image is not None:
        _check_array_size(data, shape2d, xpixels, ypixels, pixels, o.headerfilename)
    say(f"importing {pixels} pixel intensites: {name}\n")
    if data is None:
        data = read_input(name, max_bytes=4 * pixels)
    floatimage = _as_float32(data, pixels, name, note)
    if image is None and file_size is not None and file_size // 4 > pixels:
        note(f"warning: {name}: {file_size} bytes hold {file_size // 4} floats; noisify.c "
             f"reads the first {pixels} ({xpixels}x{ypixels} pixels) and ignores the rest")
    if o.add_files:
        if image is not None:
            raise UsageError("-add works on the input file; in memory pass a list of arrays")
        images = [floatimage]
        want = len(data)
        for path in o.add_files:
            # regular files: the same byte length; a pipe or device: the bytes the
            # input gave (what is read of the input, C's fread of its known size)
            size, have = input_size(path), file_size
            if size is None or have is None:
                more = read_input(path, max_bytes=want)
                size, have = len(more), want
            if size != have:
                raise InputFileError(path, f"holds {size} bytes, the input {name} holds "
                                           f"{have}: -add needs images of the same size")
            more = read_input(path, max_bytes=want)
            images.append(_as_float32(more, pixels, path, note))
        floatimage = float_add(images)

    if Xbeam <= -1e99:
        Xbeam = detsize_x / 2.0
    if Ybeam <= -1e99:
        Ybeam = detsize_y / 2.0
    calibration, readout, flicker = o.calibration_noise, o.readout_noise, o.flicker_noise
    if not o.calculate_noise:
        calibration = readout = flicker = 0.0

    g = c_format_g
    say(f"  distance={g(distance)} detsize={g(detsize_x)}x{g(detsize_y)}  pixel={g(pixel)} "
        f"meters ({xpixels}x{ypixels} pixels)\n")
    say(f"  Xbeam={g(Xbeam)} Ybeam={g(Ybeam)}\n")
    psf_fwhm = float(o.psf_fwhm)
    if o.psftype == GAUSS:
        say(f"  Gaussian PSF fwhm = {g(psf_fwhm * 1e6)} um ")
    if o.psftype == FIBER:
        say(f"  fiber PSF fwhm = {g(psf_fwhm * 1e6)} um ")
    if o.psftype != UNKNOWN and o.psf_radius == 0:
        say("  with automatic rendering radius\n")
    if o.psftype != UNKNOWN and o.psf_radius >= 0:
        say(f"  with rendering radius: {o.psf_radius}\n")
    say(f"  seed: {seed}\n")
    say(f"  calibration noise seed: {o.calib_seed}\n")
    say(f"  calibration_noise = {g(calibration * 100)} %\n")
    say(f"  input file scale = {g(o.photon_scale)}\n")
    say(f"  readout_noise = {g(readout)} ADU\n")
    say(f"  flicker_noise = {g(flicker * 100)} %\n")
    say(f"  quantum_gain = {g(o.quantum_gain)} ADU/photon\n")
    say(f"  adc_offset = {g(o.adc_offset)} ADU\n")
    say("\n")

    # photon scale (lines 481-491)
    negative = np.flatnonzero(floatimage < 0)
    for idx in negative:
        say(f"WARNING: negative intensity in {name}: {g(float(floatimage[idx]))}\n")
    if negative.size:
        note(f"warning: {negative.size} negative pixels in the input (noisify.c prints one "
             "WARNING line for each)")
    if bool(np.isnan(floatimage).any()):
        note("warning: NaN pixels in the input: noisify.c's integer conversion makes them 0")
    finite = floatimage[~np.isnan(floatimage)]
    max_I = max(0.0, float(finite.max())) if finite.size else 0.0
    factor = (o.fluence * R_E_SQR) * o.photon_scale
    photons = k.photon_scale(floatimage, float(factor))
    say(f"maximum value in input file: {g(max_I)} "
        f"( {g(max_I * o.photon_scale * o.fluence * R_E_SQR)} on photon scale)\n")

    psf_on = o.psftype != UNKNOWN and psf_fwhm > 0.0
    fwhm_pixels = c_div(psf_fwhm, pixel)
    if not o.calculate_noise and psf_on:  # lines 495-504
        say(f"  applying PSF to noiseless image width = {g(fwhm_pixels)} pixels\n")
        photons = _apply_psf(photons, xpixels, ypixels, o.psftype, fwhm_pixels, o.psf_radius,
                             say, note)

    # noise draws (lines 571-590) only read the photons: they run in a thread (the
    # kernel releases the GIL) while the noiseless images are made
    state = new_state()
    seed_cell = make_seed(seed)
    calib_cell = make_seed(o.calib_seed)
    raise_if_signalled()  # a program's signal whose exception a callback swallowed
    pool = ThreadPoolExecutor(max_workers=1) if o.calculate_noise else None
    shot = None
    if pool is not None:
        shot = pool.submit(k.shot_noise, photons, float(flicker), float(calibration),
                           seed_cell, calib_cell, state)
    try:
        result = _finish(o, say, note, photons, pixels, xpixels, ypixels, pixel, distance,
                         lambda0, Xbeam, Ybeam, detsize_y, header_bytes, summary, warnings,
                         seed, psf_on, fwhm_pixels, readout, state, seed_cell, shot, pool)
    finally:
        if pool is not None:  # after a signal: do not wait for the noise draws
            pool.shutdown(wait=sys.exc_info()[0] is None, cancel_futures=True)
    # one line per element, without newlines, as NonBraggResult.summary and
    # nbnumba.Result.summary (say() collected C's printf chunks)
    result.summary = "".join(summary).splitlines()
    return result


def _finish(o, say, note, photons, pixels, xpixels, ypixels, pixel, distance, lambda0, Xbeam,
            Ybeam, detsize_y, header_bytes, summary, warnings, seed, psf_on, fwhm_pixels,
            readout, state, seed_cell, shot, pool) -> NoisifyResult:
    """run() from the noiseless images on (lines 508-666)."""
    from ..kernels import noisify as k

    g = c_format_g
    psf_fwhm = float(o.psf_fwhm)
    # noiseless integer images and PGM (lines 508-563)
    gain, adc, bits = float(o.quantum_gain), float(o.adc_offset), o.intimage_bits
    int32, int16 = k.noiseless_int(photons, gain, adc)
    if bits == 16:
        say(f"writing {o.intfilename} as {pixels} 2-byte integers\n")
    elif bits == 32:
        say(f"writing {o.intfilename} as {pixels} 4-byte integers\n")
    else:
        note(f"warning: -bits {bits}: noisify.c writes SMV files with a partial header and "
             "no pixels (only 16 and 32 are formats)")
    _check_negative_adu(photons, gain, adc, 0.0, note)
    pgm = None
    if o.write_pgm:
        pgm = np.minimum(int16, 255).astype(np.uint8)
        say(f"writing {o.pgmfilename} as 1-byte integers\n")
    header_note = ""
    if header_bytes is None:
        header_bytes = noisify_header(bits, xpixels, ypixels, pixel, distance, lambda0,
                                      Xbeam, Ybeam, detsize_y, o.phi0, o.osc)
        header_note = header_defaults_note(o, Xbeam, Ybeam, detsize_y)
    elif bits == 32:
        note("warning: -header with -bits 32: noisify.c copies the header (its TYPE "
             "included) verbatim and writes 4-byte pixels after it")
    shape = (ypixels, xpixels) if xpixels > 0 and ypixels > 0 else (pixels,)
    if len(shape) == 1:
        note(f"warning: a {xpixels}x{ypixels} pixel image: noisify.c writes these sizes into "
             "its headers as they are; the arrays here are flat")
    int_image = (int32 if bits == 32 else int16).reshape(shape)

    result = NoisifyResult(options=o, photons=photons.reshape(shape), int_image=int_image,
                           noise_image=None, noise_photons=None,
                           pgm_image=None if pgm is None else pgm.reshape(shape),
                           header=header_bytes, summary=summary, warnings=warnings, seed=seed,
                           xpixels=xpixels, ypixels=ypixels, header_note=header_note)
    if not o.calculate_noise:
        return result

    # noise (lines 571-638): the draws in C's order from one shared generator state
    noisy, total = shot.result()
    # the read-noise draws (line 617) continue the same stream and do not depend on the
    # PSF: they are drawn in the thread while the PSF runs
    reads = pool.submit(k.gauss_draws, pixels, seed_cell, state) if readout > 0.0 else None
    if psf_on:
        say(f"{_printf_f0(total)} photons on noise image before PSF\n")
        say(f"  applying PSF width = {g(psf_fwhm * 1e6)} um\n")
        noisy = _apply_psf(noisy, xpixels, ypixels, o.psftype, fwhm_pixels, o.psf_radius,
                           say, note)
    total = float(k.serial_sum(noisy))
    draws = reads.result() if reads is not None else np.zeros(0, dtype=np.float32)
    n32, n16, overloads = k.quantise(noisy, gain, adc, float(readout), draws, bits)
    _check_negative_adu(noisy, gain, adc, readout, note)
    say(f"{_printf_f0(total)} photons on noise image ({int(overloads)} overloads)\n")
    if bits == 16:
        say(f"writing {o.noisefilename} as 2-byte integers\n")
    elif bits == 32:
        say(f"writing {o.noisefilename} as 4-byte integers\n")
    result.noise_image = (n32 if bits == 32 else n16).reshape(shape)
    result.noise_photons = noisy.reshape(shape)
    result.overloads = int(overloads)
    return result


def _finite(x: float) -> bool:
    return math.isfinite(x)


def header_defaults_note(o: NoisifyOptions, Xbeam: float, Ybeam: float,
                         detsize_y: float) -> str:
    """The warning for SMV headers that carry noisify.c's defaults (lines 449-452, 534):
    a float image says nothing of its geometry, so the beam centre (the detector's
    centre), the distance, pixel, wavelength and the oscillation (1 degree) are
    noisify.c's own unless flags give them. "" when every one was given."""
    g = c_format_g
    items = []
    beam = []
    if "-Xbeam" not in o.given:
        beam.append(f"BEAM_CENTER_X={g(Xbeam * 1000.0)}")
    if "-Ybeam" not in o.given:
        beam.append(f"BEAM_CENTER_Y={g((detsize_y - Ybeam) * 1000)}")
    if beam:
        items.append(" ".join(beam) + " (the detector's centre)")
    for flag, key, value in (("-distance", "DISTANCE", o.distance * 1000.0),
                             ("-pixel", "PIXEL_SIZE", o.pixel * 1000.0),
                             ("-lambda", "WAVELENGTH", o.lambda0),
                             ("-osc", "OSC_RANGE", o.osc)):
        if flag not in o.given:
            items.append(f"{key}={g(value)}")
    if not items:
        return ""
    return ("warning: noisify.c's SMV headers take " + ", ".join(items) + " from its "
            "defaults, not from the simulation: give -header SIM.img (the simulator's SMV "
            "image: noisify.c copies its header and takes the size, pixel, distance, "
            "wavelength and beam centre from it) or those flags (its BEAM_CENTER_X/Y are "
            "-Xbeam and the detector height minus -Ybeam, not nanoBragg.c's MOSFLM centre)")


def _check_negative_adu(photons: np.ndarray, gain: float, adc: float, readout: float,
                        note: Out) -> None:
    """Warn where C converts a negative ADU value to unsigned (line 515, 630)."""
    finite = photons[np.isfinite(photons)]
    low = float(finite.min()) * gain + adc if finite.size else 0.0
    if low - (6 * readout if readout > 0 else 0.0) < 0:
        note("warning: ADU values below 0 (no -adc offset with read noise, or negative "
             "photons): noisify.c's unsigned conversion wraps them (e.g. -1 -> 65535), "
             "reproduced as gcc's x86-64 build does")


# ------------------------------------------------------------------------------ API

# Python keyword -> (C flag, kind): "value" (one argument), "switch" (True gives the flag)
KEYWORDS: dict[str, tuple[str, str]] = {
    "floatfile": ("-floatfile", "value"),
    "add": ("-add", "list"),
    "header": ("-header", "value"),
    "detpixels": ("-detpixels", "value"),
    "detpixels_x": ("-detpixels_x", "value"),
    "detpixels_y": ("-detpixels_y", "value"),
    "pixel": ("-pixel", "value"),
    "distance": ("-distance", "value"),
    "lambda_": ("-lambda", "value"),
    "Xbeam": ("-Xbeam", "value"),
    "Ybeam": ("-Ybeam", "value"),
    "detsize": ("-detsize", "value"),
    "detsize_x": ("-detsize_x", "value"),
    "detsize_y": ("-detsize_y", "value"),
    "phi": ("-phi", "value"),
    "osc": ("-osc", "value"),
    "scale": ("-scale", "value"),
    "fluence": ("-fluence", "value"),
    "gain": ("-gain", "value"),
    "adc": ("-adc", "value"),
    "readout": ("-readout", "value"),
    "flicker": ("-flicker", "value"),
    "calibration": ("-calibration", "value"),
    "seed": ("-seed", "value"),
    "calib_seed": ("-calib_seed", "value"),
    "psf": ("-psf", "value"),
    "psf_radius": ("-psf_radius", "value"),
    "psf_fwhm": ("-psf_fwhm", "value"),
    "bits": ("-bits", "value"),
    "intfile": ("-intfile", "value"),
    "noisefile": ("-noisefile", "value"),
    "pgmfile": ("-pgmfile", "value"),
    "nonoise": ("-nonoise", "switch"),
    "nopgm": ("-nopgm", "switch"),
}


def _value_text(name: str, v: object) -> str:
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: a flag's value cannot be a bool (the switches are "
                        "nonoise and nopgm)")
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):  # numpy floats too, written so that atof reads them back
        v = float(v)
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, str):
        return v
    raise TypeError(f"{name}: {type(v).__name__} is not a flag value (give a number, a "
                    "string or a path)")


def keywords_to_argv(flags: dict[str, object]) -> list[str]:
    """noisify.c's argv for Python keywords in C's user units (mm, um, Angstrom, deg).

    Raises TypeError naming the unknown keywords.
    """
    unknown = sorted(set(flags) - set(KEYWORDS))
    if unknown:
        raise unknown_keywords_error("Noisify", unknown, KEYWORDS)
    argv: list[str] = []
    for name, value in flags.items():
        flag, kind = KEYWORDS[name]
        if value is None:
            continue
        if kind == "switch":
            if value:
                argv.append(flag)
        elif kind == "list":
            items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
            for item in items:
                argv += [flag, _value_text(name, item)]
        else:
            argv += [flag, _value_text(name, value)]
    return argv


class Noisify:
    """noisify.c as a Python object: ``Noisify.from_args(argv)`` or ``Noisify(**keywords)``.

    Keywords are C's flags without the dash, values in C's user units (``pixel`` mm,
    ``psf_fwhm`` um, ``lambda_`` Angstrom, ``nonoise=True``...); they are turned into
    C's argv and parsed by the same parser as ``noisify-nb``. ``add`` takes a list of
    float images to sum onto the input. See :data:`KEYWORDS`.

    Examples
    --------
    >>> result = Noisify(detpixels=256, pixel=0.2, readout=3, seed=1).run(image=photons)
    >>> result.noise_image            # uint16 [slow, fast]
    >>> result.write("out/")          # intimage.img, image.pgm, noiseimage.img
    """

    def __init__(self, **flags: object) -> None:
        self._setup(keywords_to_argv(flags))

    @classmethod
    def from_args(cls, argv: Iterable[str]) -> Noisify:
        """From noisify.c's command line (without the program name)."""
        if isinstance(argv, (str, bytes)):
            raise TypeError("from_args takes the arguments as a list (e.g. "
                            "shlex.split(command_line)), not one string")
        obj = cls.__new__(cls)
        obj._setup([os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in argv])
        return obj

    def _setup(self, argv: list[str]) -> None:
        self.argv = argv
        self.options, self.warnings = parse_args(argv)
        issue_warnings(self.warnings)  # C's parsing surprises, at the line that made it

    def run(self, image: np.ndarray | Sequence[np.ndarray] | None = None) -> NoisifyResult:
        """Run; ``image`` (float32 photons/pixel [slow, fast], or a list of such arrays
        summed in float32 in order) replaces the input file. Returns a
        :class:`NoisifyResult`; writes nothing. Raises :class:`~nbnumba.errors.NbError`
        subclasses where noisify.c would exit or crash."""
        result = run(self.options, image=image)
        result.warnings[:0] = [w for w in self.warnings if w not in result.warnings]
        return result
