"""File input and output, byte for byte as nanoBragg.c does it.

Writers: raw float image, SMV (ADSC) int/noise images, PGM, the ``Fdump.bin`` cache.
Readers: SMV headers and pixels (``-img``, ``-mask``), hkl files, ``Fdump.bin``, mosflm
matrices, multi-column text files (``-sourcefile``, ``-stol``), and C's ``atof``/``atoi``.

Readers reproduce what C's ``fscanf``/``strtod`` (glibc) make of a file, including
the odd cases; where C would crash, exit or read out of bounds they raise
:class:`InputFileError` instead. Line numbers in comments refer to nanoBragg.c
(bl831/nanoBragg, 8-10-25 header); ``specs/io.md`` describes the formats and quirks.
All writers go through :func:`atomic_write`. Only numpy is imported here.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from .constants import RTD
from .errors import InputFileError, InputFileOpenError, ResourceError, shown
from .inputs import read_input

__all__ = [
    "InputFileError",
    "InputFileOpenError",
    "HKLTable",
    "SMVFrame",
    "atomic_write",
    "put_in_place",
    "recording_writes",
    "fsync_folder",
    "c_atof",
    "c_atoi",
    "c_strtod",
    "c_strtol",
    "wrap_int32",
    "c_int_from_double",
    "c_format_g",
    "write_float_image",
    "smv_header",
    "write_smv",
    "write_pgm",
    "read_smv",
    "smv_value",
    "read_hkl",
    "write_fdump",
    "read_fdump",
    "read_mat",
    "read_text_file",
    "comment_lines",
]

PathLike = Union[str, "os.PathLike[str]"]

INT_MIN = -(2**31)
SMV_MAGIC = b"{\nHEADER_BYT"  # GetFrame compares only the first 12 bytes (line 4150)
# larger hkl tables than this (2 GiB of doubles) are refused rather than attempted
MAX_TABLE_ELEMENTS = 1 << 28


def _read_bytes(path: PathLike, messages: list[str] | None = None,
                stop_at_nul: bool = False) -> bytes:
    """An input file's bytes, read once per run and bounded (:mod:`nbnumba.inputs`)."""
    return read_input(path, stop_at_nul=stop_at_nul, messages=messages)


# --------------------------------------------------------------- C number parsing

_STRTOD = re.compile(
    rb"""[ \t\n\v\f\r]*(?P<sign>[+-]?)(?:
      (?P<hex>0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)
    | (?P<dec>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)
    | (?P<nan>[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)
    )""",
    re.X,
)
_STRTOL = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def _as_bytes(s: str | bytes) -> bytes:
    if isinstance(s, str):
        # non-ASCII never belongs to a C number, any encoding keeps that
        return s.encode("utf-8", "surrogateescape")
    return bytes(s)


def _strtod_at(data: bytes, pos: int = 0) -> tuple[float, int]:
    """glibc strtod on ``data[pos:]``: (value, end); end == pos when nothing converts."""
    m = _STRTOD.match(data, pos)
    if m is None:
        return 0.0, pos
    neg = m.group("sign") == b"-"
    if m.group("dec") is not None:
        # Python's float() and glibc's strtod both round correctly
        value = float(m.group("dec"))
    elif m.group("hex") is not None:
        try:
            value = float.fromhex(m.group("hex").decode("ascii"))
        except OverflowError:
            value = math.inf
    elif m.group("inf") is not None:
        value = math.inf
    else:
        value = math.nan  # NaN payloads from "nan(...)" are not reproduced
    return (-value if neg else value), m.end()


def c_strtod(s: str | bytes) -> tuple[float, int]:
    """C ``strtod``: the value and how many bytes of ``s`` (as UTF-8) it used (0: none)."""
    return _strtod_at(_as_bytes(s), 0)


def c_atof(s: str | bytes) -> float:
    """C ``atof``: strtod of the longest valid prefix, 0.0 when there is none.

    Leading C whitespace, a sign, decimal or hex (``0x1p3``) numbers, ``inf``,
    ``infinity`` and ``nan`` in any case are taken; the rest of the string is ignored.
    """
    return _strtod_at(_as_bytes(s), 0)[0]


def wrap_int32(v: int) -> int:
    """Wrap to a C ``int`` (two's complement, as gcc does)."""
    return (v + 2**31) % 2**32 - 2**31


def _strtol_to_int(digits: bytes) -> int:
    # glibc: strtol saturates at the long range, then the cast to int wraps
    v = max(-(2**63), min(2**63 - 1, int(digits)))
    return wrap_int32(v)


def c_atoi(s: str | bytes) -> int:
    """C ``atoi`` (glibc: ``(int) strtol(s, NULL, 10)``): leading base-10 integer, else 0.

    Out-of-range values behave as on x86-64 glibc: strtol saturates at ±2**63 and the
    cast to int keeps the low 32 bits (``atoi("3000000000") == -1294967296``).
    """
    return c_strtol(s)[0]


def c_strtol(s: str | bytes) -> tuple[int, int]:
    """``(int) strtol(s, NULL, 10)`` and how many bytes of ``s`` (as UTF-8) it used (0: none)."""
    m = _STRTOL.match(_as_bytes(s))
    return (_strtol_to_int(m.group(1)), m.end()) if m else (0, 0)


def c_int_from_double(x: float) -> int:
    """(int)x as gcc emits it on x86-64 (cvttsd2si): truncate; NaN/out of range → INT_MIN."""
    if x != x or math.isinf(x):
        return INT_MIN
    t = math.trunc(x)
    return t if INT_MIN <= t < 2**31 else INT_MIN


def c_format_g(x: float) -> str:
    """printf ``%g``; Python's ``%g`` matches glibc except for the sign of NaN."""
    x = float(x)
    if x != x:
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return f"{x:g}"


_g = c_format_g

# ------------------------------------------------------- glibc fscanf conversions

_WS = re.compile(rb"[ \t\n\v\f\r]*")
# The characters glibc's scanf collects for %lg before calling strtod on them.
_LG_TEXT = rb"""[+-]?(?:
      [nN][aA][nN]
    | [iI][nN][fF](?:[iI][nN][iI][tT][yY]|(?![iI]))
    | 0[xX](?:(?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]*)?|\.?)
    | (?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]*)?
    | \.?
    )"""
_WS_TEXT = rb"[ \t\n\v\f\r]*"
_SCAN_LG = re.compile(_LG_TEXT, re.X)
# whole hkl records: every part may match empty, so greedy matching never backtracks
_REC_LG4 = re.compile(4 * (_WS_TEXT + b"(" + _LG_TEXT + b")"), re.X)
_REC_D3LG = re.compile(3 * (_WS_TEXT + rb"([+-]?[0-9]*)") + _WS_TEXT + b"(" + _LG_TEXT + b")",
                       re.X)
_SCAN_D = re.compile(rb"[+-]?([0-9]*)")


def _lg_value(text: bytes) -> float | None:
    """The value glibc's %lg gives the characters it collected, None if strtod takes none."""
    try:
        return float(text)  # the common case; same correctly rounded result as strtod
    except ValueError:
        pass
    if text.lstrip(b"+-") in (b"0x", b"0X"):
        return None  # glibc refuses a bare hex prefix before strtod sees it
    # "1e+" → 1, "0x1p3" → 8, "." → nothing
    value, used = _strtod_at(text, 0)
    return value if used else None


def _scan_lg(data: bytes, pos: int) -> tuple[float | None, int]:
    """One ``%lg`` of glibc's fscanf at ``pos``: (value, new pos), value None on failure.

    Where it fails the stream position is not reproduced (no caller reads on).
    """
    pos = _WS.match(data, pos).end()
    end = _SCAN_LG.match(data, pos).end()
    value = _lg_value(data[pos:end])
    return (None, pos) if value is None else (value, end)


def _scan_d(data: bytes, pos: int) -> tuple[int | None, int]:
    """One ``%d`` of glibc's fscanf: optional sign and decimal digits, else failure."""
    pos = _WS.match(data, pos).end()
    m = _SCAN_D.match(data, pos)
    if not m.group(1):
        return None, pos
    return _strtol_to_int(data[pos:m.end()]), m.end()


# ------------------------------------------------------------------------ writing


def _umask() -> int:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no other portable way to read it
    os.umask(mask)
    return mask


# Called with (path, (st_dev, st_ino)) just before atomic_write renames a complete
# file into place: the CLI's clean-up after a failure removes a path only while it
# still is the file this run put there (nbnumba.cli.common.Outputs)
_placing: ContextVar[Callable[[str, tuple[int, int]], None] | None] = ContextVar(
    "nbnumba_atomic_write_placing", default=None)


@contextlib.contextmanager
def recording_writes(callback: Callable[[str, tuple[int, int]], None]) -> Iterator[None]:
    """Within the block, each file :func:`atomic_write` puts in place is reported to
    ``callback(path, (st_dev, st_ino))`` before the rename (``path`` resolved through
    symlinks); files written in place (devices, FIFOs) are not reported."""
    token = _placing.set(callback)
    try:
        yield
    finally:
        _placing.reset(token)


def put_in_place(tmp: PathLike, path: PathLike) -> None:
    """Rename the finished file ``tmp`` to ``path``, as :func:`atomic_write` does: a
    symlink is written through, and the rename is reported to :func:`recording_writes`
    (so a failed run removes it again). For writers that fill their own temporary
    file (HDF5 through h5py). ``path`` must not be a device or FIFO (it would be
    replaced by the file)."""
    target = os.fspath(path)
    if os.path.islink(target):
        target = os.path.realpath(target)
    placing = _placing.get()
    if placing is not None:
        st = os.stat(tmp)
        placing(target, (st.st_dev, st.st_ino))
    os.replace(tmp, target)


def atomic_write(path: PathLike, data: bytes | Iterable[bytes], durable: bool | None = None
                 ) -> None:
    """Write ``data`` (bytes-like, or an iterable of bytes-like chunks) to ``path`` atomically.

    The bytes go to ``.NAME.XXXX.tmp`` in the target's folder, then the temporary
    replaces ``path``; on any exception (KeyboardInterrupt included) the temporary is
    removed and the exception re-raised. Readers see the old file or the whole new one.
    ``durable`` also fsyncs the file and the folder, so the rename survives a crash of
    the machine (default: the environment variable ``NBNUMBA_FSYNC=1``; off as in C,
    where it costs about 60 ms of a supervisor run). As with C's fopen, a symlink is
    written through and a new file gets mode 0666 & ~umask (an existing one keeps its
    mode). Non-regular targets such as ``/dev/null`` are written in place.
    """
    if durable is None:
        durable = os.environ.get("NBNUMBA_FSYNC", "") not in ("", "0")
    target = os.fspath(path)
    if os.path.islink(target):
        target = os.path.realpath(target)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    try:
        chunks: Iterable = (memoryview(data),)
    except TypeError:
        chunks = data
    if st is not None and not stat.S_ISREG(st.st_mode):
        # a device or FIFO must not be replaced by a regular file
        try:
            with open(target, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, target) from exc
        return
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    folder, name = os.path.split(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            ident = os.fstat(f.fileno())
            try:
                for chunk in chunks:
                    f.write(chunk)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            except OSError as exc:
                if exc.filename is not None:
                    raise
                # "No space left on device" says which file it could not write
                raise OSError(exc.errno, exc.strerror, target) from exc
        os.chmod(tmp, mode)
        placing = _placing.get()
        if placing is not None:
            placing(target, (ident.st_dev, ident.st_ino))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_folder(folder)


def fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable; quietly nothing where that is not possible."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _contiguous(arr: np.ndarray, dtype: str) -> memoryview:
    return memoryview(np.ascontiguousarray(arr, dtype=dtype)).cast("B")


def write_float_image(path: PathLike, image: np.ndarray, durable: bool | None = None) -> None:
    """The ``-floatfile``: raw float32 little-endian, row-major [slow, fast] (line 3128).

    Non-float32 input is rounded to float32 as C's ``(float)`` cast would;
    ``durable`` as for :func:`atomic_write`.
    """
    atomic_write(path, (_contiguous(np.asarray(image), "<f4"),), durable=durable)


def smv_header(*, fpixels: int, spixels: int, pixel_size: float, distance: float,
               lambda0: float, Xbeam: float, Ybeam: float, Fbeam: float, Sbeam: float,
               detsize_s: float, dials_origin, ORGX: float, ORGY: float,
               close_distance: float, phi0: float, osc: float, detector_twotheta: float,
               noise: bool = False) -> bytes:
    """The SMV header nanoBragg.c writes (lines 3167-3182 int, 3266-3281 noise image).

    Inputs in C's internal units: meters (lengths), radians (angles); ``dials_origin``
    in mm, as (x, y, z) or C's 1-based 4-vector. ``noise`` picks the noise image's
    variant, which differs from the int image's only for -0.0 beam centres
    (DENZO_*: ``Sbeam+0.0*pixel`` versus ``Sbeam-0.0*pixel``). Padded with spaces to
    512 bytes after ``}\\f``; a longer header is left longer, as C does.
    """
    d = list(dials_origin)
    if len(d) == 4:
        d = d[1:]
    if len(d) != 3:
        raise ValueError("dials_origin needs 3 components (or C's 4-vector)")
    zero = 0.0 * pixel_size
    if noise:
        denzo_x, denzo_y = (Sbeam + zero) * 1000.0, (Fbeam + zero) * 1000.0
    else:
        denzo_x, denzo_y = (Sbeam - zero) * 1000.0, (Fbeam - zero) * 1000.0
    text = (
        "{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
        f"SIZE1={int(fpixels)};\nSIZE2={int(spixels)};\n"
        f"PIXEL_SIZE={_g(pixel_size * 1000.0)};\nDISTANCE={_g(distance * 1000.0)};\n"
        f"WAVELENGTH={_g(lambda0 * 1e10)};\n"
        f"BEAM_CENTER_X={_g(Xbeam * 1000.0)};\nBEAM_CENTER_Y={_g(Ybeam * 1000)};\n"
        f"ADXV_CENTER_X={_g(Fbeam * 1000.0)};\nADXV_CENTER_Y={_g((detsize_s - Sbeam) * 1000)};\n"
        f"MOSFLM_CENTER_X={_g((Sbeam - 0.5 * pixel_size) * 1000.0)};\n"
        f"MOSFLM_CENTER_Y={_g((Fbeam - 0.5 * pixel_size) * 1000)};\n"
        f"DENZO_X_BEAM={_g(denzo_x)};\nDENZO_Y_BEAM={_g(denzo_y)};\n"
        # C prints no ';' after DIALS_ORIGIN
        f"DIALS_ORIGIN={_g(d[0])},{_g(d[1])},{_g(d[2])}\n"
        f"XDS_ORGX={_g(ORGX)};\nXDS_ORGY={_g(ORGY)};\n"
        f"CLOSE_DISTANCE={_g(close_distance * 1000.0)};\n"
        f"PHI={_g(phi0 * RTD)};\nOSC_START={_g(phi0 * RTD)};\nOSC_RANGE={_g(osc * RTD)};\n"
        f"TWOTHETA={_g(detector_twotheta * RTD)};\n"
        "DETECTOR_SN=000;\nBEAMLINE=fake;\n}\f"
    )
    raw = text.encode("ascii")
    return raw + b" " * max(0, 512 - len(raw))


def write_smv(path: PathLike, header_bytes: bytes, image_uint16: np.ndarray,
              durable: bool | None = None) -> None:
    """An SMV file: ``header_bytes`` then the uint16 pixels, little-endian, row-major;
    ``durable`` as for :func:`atomic_write`."""
    image = np.asarray(image_uint16)
    if image.dtype != np.uint16:
        raise TypeError(f"SMV pixels must be uint16, not {image.dtype}")
    atomic_write(path, (bytes(header_bytes), _contiguous(image, "<u2")), durable=durable)


def write_pgm(path: PathLike, pixels_uint8: np.ndarray, fpixels: int, spixels: int,
              pgm_scale: float) -> None:
    """The ``-pgmfile``: binary PGM with C's comment line (lines 3220-3223)."""
    pixels = np.asarray(pixels_uint8)
    if pixels.dtype != np.uint8:
        raise TypeError(f"PGM pixels must be uint8, not {pixels.dtype}")
    if pixels.size != int(fpixels) * int(spixels):
        raise ValueError(f"{pixels.size} PGM pixels for a {fpixels}x{spixels} image")
    head = f"P5\n{int(fpixels)} {int(spixels)}\n# pixels scaled by {_g(pgm_scale)}\n255\n"
    atomic_write(path, (head.encode("ascii"), _contiguous(pixels, "u1")))


# --------------------------------------------------------------------------- SMV


@dataclass
class SMVFrame:
    """An SMV file as C's GetFrame sees it (lines 4124-4232).

    ``header``: the first ``header_size`` bytes (latin-1); ``data``: uint16 pixels,
    shape (height, width), native (little-endian) order: C never swaps bytes even
    when ``swap_bytes`` says it should. ``missing_bytes``: zero bytes added for a
    short file (only with ``allow_short``).
    """

    path: str
    header: str
    header_size: int
    width: int
    height: int
    data: np.ndarray
    swap_bytes: bool = False
    missing_bytes: int = 0


def _c_string(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return text.split("\0", 1)[0]  # C's string functions stop at the first NUL


def _last_after(header: str, keyword: str) -> int:
    """Index just past the last match of ``keyword``, scanning forward as C's strstr loop."""
    pos = -1
    i = header.find(keyword)
    while i >= 0:
        pos = i + len(keyword)
        i = header.find(keyword, pos)  # restarts after the match: no overlaps
    return pos


def smv_value(header: str | bytes | SMVFrame, keyword: str) -> float:
    """C's ValueOf (line 4236): atof after the first '=' following the LAST ``keyword``.

    NaN when ``keyword`` is absent, 0.0 when no '=' follows it. Plain substring
    search: "DISTANCE" finds the "DISTANCE" inside "CLOSE_DISTANCE" when that comes later.
    """
    if not keyword:
        raise ValueError("empty keyword (C's ValueOf would loop forever)")
    text = _c_string(header.header if isinstance(header, SMVFrame) else header)
    pos = _last_after(text, keyword)
    if pos < 0:
        return math.nan
    eq = text.find("=", pos)
    if eq < 0:
        return 0.0
    return c_atof(text[eq + 1:])


def _header_int(path: PathLike, header: str, keyword: str) -> int:
    value = smv_value(header, keyword)
    if value != value:
        raise InputFileError(path, f"SMV header has no {keyword}")
    return c_int_from_double(value)


def read_smv(path: PathLike, *, allow_short: bool = False) -> SMVFrame:
    """Read an SMV (ADSC) file as nanoBragg.c's GetFrame does, for ``-img`` and ``-mask``.

    Raises :class:`InputFileError` where C would exit or crash: fewer than 512 bytes,
    first 12 bytes not ``{\\nHEADER_BYT``, bad HEADER_BYTES/SIZE, no BYTE_ORDER. A file
    too short for its pixels raises too, unless ``allow_short`` (C's calloc zero-fill).
    """
    name = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 512:
        raise InputFileError(path, f"SMV file is only {len(raw)} bytes, shorter than 512")
    if raw[:12] != SMV_MAGIC:
        raise InputFileError(path, "does not look like an ADSC frame",
                             messages=[f"ERROR: {name} does not look like an ADSC frame!\n"])
    header = raw[:512].decode("latin-1")
    header_size = _header_int(path, header, "HEADER_BYTES")
    if header_size <= 0:
        raise InputFileError(path, f"HEADER_BYTES={header_size} is not a usable size")
    if header_size != 512:
        if len(raw) < header_size:
            raise InputFileError(path, f"file ends inside its {header_size}-byte header")
        header = raw[:header_size].decode("latin-1")
    cheader = _c_string(header)
    order_at = _last_after(cheader, "BYTE_ORDER=")
    if order_at < 0:
        raise InputFileError(path, "SMV header has no BYTE_ORDER= (C would crash)")
    # strncmp(byte_order, string, 10) against this machine's "little_endian"
    swap = cheader[order_at:order_at + 10] != "little_end"
    width = _header_int(path, header, "SIZE1")
    height = _header_int(path, header, "SIZE2")
    if width == 0:
        width = height = _header_int(path, header, "DETECTOR_DIMENSIONS")
    if width < 0 or height < 0:
        raise InputFileError(path, f"SMV size {width}x{height} is negative")
    if 2 * width * height + header_size > 2**31 - 1:
        raise InputFileError(path, f"SMV size {width}x{height} overflows C's int")
    # C reads the whole file from offset 0 into unsigned shorts and starts the pixels
    # at index header_size/2, so an odd header size rounds down
    start = (header_size // 2) * 2
    need = start + 2 * width * height
    missing = max(0, need - len(raw))
    if missing and not allow_short:
        raise InputFileError(path, f"SMV file is {missing} bytes too short for "
                                   f"{width}x{height} pixels after {header_size} header bytes")
    body = raw[start:need] + b"\0" * missing
    data = np.frombuffer(body, dtype="<u2").reshape(height, width).copy()
    return SMVFrame(path=name, header=header, header_size=header_size, width=width,
                    height=height, data=data, swap_bytes=swap, missing_bytes=missing)


# --------------------------------------------------------------------- hkl tables


@dataclass
class HKLTable:
    """Structure factors as C holds them: ``fhkl[h-h_min, k-k_min, l-l_min]``.

    ``fhkl`` has shape (h_range+1, k_range+1, l_range+1) like C's calloc'd arrays;
    ``hkls`` is C's count (records in an hkl file; h_range*k_range*l_range for a dump).
    ``messages``: lines C prints while reading, newline included, in order;
    ``warnings``: our own notes on C quirks that hit this file (C prints none of them).
    """

    fhkl: np.ndarray
    h_min: int
    h_max: int
    k_min: int
    k_max: int
    l_min: int
    l_max: int
    h_range: int
    k_range: int
    l_range: int
    hkls: int
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls) -> HKLTable:
        """No hkl file and no dump: C leaves hkls = 0, so only default_F is used."""
        return cls(np.zeros((1, 1, 1)), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def _alloc_table(path: PathLike, hr: int, kr: int, lr: int,
                 messages: list[str]) -> np.ndarray:
    n = (hr + 1) * (kr + 1) * (lr + 1)
    what = f"{os.fspath(path)}: an hkl table of {hr + 1}x{kr + 1}x{lr + 1} doubles"
    if n > MAX_TABLE_ELEMENTS:
        raise ResourceError(f"{what} ({n * 8 / 2**30:.1f} GiB) is too large: nbnumba holds "
                            f"at most {MAX_TABLE_ELEMENTS * 8 / 2**30:.0f} GiB")
    try:
        return np.zeros((hr + 1, kr + 1, lr + 1), dtype=np.float64)
    except MemoryError:
        raise ResourceError(f"{what} ({n * 8 / 2**30:.1f} GiB) needs more memory than "
                            "is available") from None


_NUMBER_BYTES = b"0123456789+-.eE"
_SPACE_BYTES = b" \t\n\v\f\r"
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[list(_SPACE_BYTES)] = True

_STREAM_NOTE = ("nanoBragg.c reads hkl files as a stream of h k l F records, "
                "so {} shift later records")


def _column_warnings(name: str, data: bytes) -> list[str]:
    """Our notes on the first line with more, and the first with fewer, than 4 fields."""
    buf = np.frombuffer(data, dtype=np.uint8)
    space = _IS_SPACE[buf]
    starts = ~space
    starts[1:] &= space[:-1]
    line_of = np.cumsum(buf == 10)
    counts = np.bincount(line_of[starts], minlength=1)
    out = []
    for bad, what, extra in ((counts > 4, "more", "extra"), ((counts > 0) & (counts < 4),
                                                             "fewer", "missing")):
        if bad.any():
            out.append(f"warning: {name} line {int(np.argmax(bad)) + 1} has {what} than four "
                       f"columns; " + _STREAM_NOTE.format(f"{extra} columns"))
    return out


def _hkl_fast(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Both passes' records at once, when every token is a plain decimal number (as
    %lg reads it whole) and every h, k, l one a plain integer (as %d reads it whole):
    then fscanf's records are simply the tokens taken four at a time."""
    if data.translate(None, _NUMBER_BYTES + _SPACE_BYTES):
        return None
    from .textscan import scan_decimals

    # float()'s values at compiled speed, or None for tokens it leaves to float()
    scanned = scan_decimals(data)
    if scanned is not None:
        values, integer = scanned
        n = values.size // 4
        # leftover tokens count too: %d would split a "1.0" there into a fourth conversion
        if not (integer[0:4 * n:4].all() and integer[1:4 * n:4].all()
                and integer[2:4 * n:4].all() and integer[4 * n:].all()):
            return None
    else:
        tokens = data.split()
        try:
            # within these bytes float() accepts exactly the tokens %lg reads whole
            values = np.fromiter(map(float, tokens), dtype=np.float64, count=len(tokens))
        except ValueError:
            return None
        n = len(tokens) // 4
        hkl_text = b"".join(tokens[0:4 * n:4] + tokens[1:4 * n:4] + tokens[2:4 * n:4]
                            + tokens[4 * n:])
        if hkl_text.translate(None, b"0123456789+-"):
            return None
    values = values[:4 * n].reshape(n, 4)
    if n and np.abs(values[:, :3]).max() >= 2**31:
        return None  # %d would wrap: leave it to the faithful scanner
    return values, values[:, :3].astype(np.int64)


def _noninteger_messages(hkl: np.ndarray) -> list[str]:
    """C's pass-1 warnings, test ``x != ceil(x-0.4)`` (true for NaN, false for ±inf)."""
    with np.errstate(invalid="ignore"):
        flag = np.isnan(hkl) | (np.isfinite(hkl) & (hkl != np.ceil(hkl - 0.4)))
    return [f"WARNING: non-integer value for {'hkl'[j]} ({_g(hkl[n, j])}) at line {n}\n"
            for n, j in zip(*np.nonzero(flag), strict=True)]


def _pass1_ranges(hkl: np.ndarray) -> tuple[list[int], list[int]]:
    """C's ``if(h_min > h) h_min = h;`` over pass 1, the double truncated into an int."""
    mins, maxs = [], []
    for j in range(3):
        x = hkl[:, j]
        x = x[~np.isnan(x)]  # NaN compares false: never taken
        lo, hi = 10**9, -(10**9)
        if x.size and np.abs(x).max() < 2**31:
            # truncation is monotonic here, so the result is that of the extremes
            if x.min() < lo:
                lo = c_int_from_double(float(x.min()))
            if x.max() > hi:
                hi = c_int_from_double(float(x.max()))
        else:
            for v in x.tolist():  # ±inf and huge values become INT_MIN in order
                if lo > v:
                    lo = c_int_from_double(v)
                if hi < v:
                    hi = c_int_from_double(v)
        mins.append(lo)
        maxs.append(hi)
    return mins, maxs


def _hkl_pass1(data: bytes) -> list[tuple[float, float, float, float]]:
    """C's counting pass: fscanf("%lg%lg%lg%lg") until it converts fewer than 4."""
    records = []
    pos = 0
    match = _REC_LG4.match
    while True:
        m = match(data, pos)
        rec = tuple(_lg_value(t) for t in m.groups())
        if None in rec:
            return records
        records.append(rec)
        pos = m.end()


def _hkl_pass2(data: bytes) -> list[tuple[int, int, int, float]]:
    """C's reading pass: fscanf("%d%d%d%lg") until it converts fewer than 4."""
    records = []
    pos = 0
    match = _REC_D3LG.match
    while True:
        m = match(data, pos)
        h, k, l, F = m.groups()
        if not (h.lstrip(b"+-") and k.lstrip(b"+-") and l.lstrip(b"+-")):
            return records
        value = _lg_value(F)
        if value is None:
            return records
        records.append((_strtol_to_int(h), _strtol_to_int(k), _strtol_to_int(l), value))
        pos = m.end()


def read_hkl(path: PathLike, default_F: float, *, faithful: bool = False) -> HKLTable:
    """Read an hkl file exactly as nanoBragg.c does (lines 2139-2222).

    Pass 1 reads the file as a stream of ``%lg%lg%lg%lg`` records (not lines) to count
    them and find index ranges (doubles truncated into ints); pass 2 rereads it with
    ``%d%d%d%lg`` and stores F, stopping at the first record that does not convert
    (e.g. an h, k or l written "1.5"). Cells of [0,h_range)x[0,k_range)x[0,l_range)
    start at ``default_F`` when it is nonzero; the extra +1 planes stay 0.
    ``faithful`` skips the numpy fast path (the results are identical).
    """
    name = os.fspath(path)
    # fscanf never reads past a NUL byte: what follows it cannot matter (nor be read)
    data = _read_bytes(path, [f"ERROR: unable to open {name}."], stop_at_nul=True)
    messages = [f"counting entries in {name}\n"]

    warnings = _column_warnings(name, data)

    fast = None if faithful else _hkl_fast(data)
    if fast is not None:
        values, idx2 = fast
        F2 = values[:, 3]
    else:
        values = np.array(_hkl_pass1(data), dtype=np.float64).reshape(-1, 4)
        recs2 = _hkl_pass2(data)
        idx2 = np.array([r[:3] for r in recs2], dtype=np.int64).reshape(-1, 3)
        F2 = np.array([r[3] for r in recs2], dtype=np.float64)
    hkls = len(values)
    messages += _noninteger_messages(values[:, :3])
    mins, maxs = _pass1_ranges(values[:, :3])

    ranges = [wrap_int32(maxs[j] - mins[j] + 1) for j in range(3)]
    if min(ranges) < 0:
        for j, axis in enumerate("hkl"):
            messages.append(f"{axis}: {mins[j]} - {maxs[j]}\n")
        messages.append(f"ERROR: not enough HKL indices in {name}\n")
        raise InputFileError(path, "not enough HKL indices", messages=messages)
    hr, kr, lr = ranges
    fhkl = _alloc_table(path, hr, kr, lr, messages)
    if default_F != 0.0:
        messages.append(f"initializing to default_F = {_g(default_F)}:\n")
        fhkl[:hr, :kr, :lr] = default_F
        messages.append("done initializing:\n")
    messages.append(f"re-reading {name}\n")

    ih, ik, il = (idx2[:, j] - mins[j] for j in range(3))
    bad = (ih < 0) | (ih > hr) | (ik < 0) | (ik > kr) | (il < 0) | (il > lr)
    if bad.any():
        n = int(np.argmax(bad))
        h, k, l = (int(v) for v in idx2[n])
        raise InputFileError(path, f"record {n + 1} ({h} {k} {l}) of the second pass lies "
                             "outside the ranges of the counting pass; nanoBragg.c would "
                             "write outside its table", line=n + 1, messages=messages)
    n2 = len(F2)
    if n2 < hkls:
        keep = "default_F" if default_F != 0.0 else "F = 0"
        warnings.append(f"warning: nanoBragg.c's second pass over {name} (fscanf "
                        f"\"%d%d%d%lg\") stops after {n2} of {hkls} records; the other "
                        f"reflections keep {keep}")
    elif n2 > hkls or not (np.array_equal(idx2, values[:, :3])
                           and np.array_equal(F2, values[:, 3], equal_nan=True)):
        warnings.append(f"warning: nanoBragg.c's second pass over {name} (fscanf "
                        f"\"%d%d%d%lg\") reads {n2} records that differ from the {hkls} "
                        "of its counting pass")
    if len(F2):
        flat = (ih * (kr + 1) + ik) * (lr + 1) + il
        # C assigns in file order, so a repeated hkl keeps its last F
        uniq, first = np.unique(flat[::-1], return_index=True)
        fhkl.reshape(-1)[uniq] = F2[::-1][first]

    return HKLTable(fhkl, mins[0], maxs[0], mins[1], maxs[1], mins[2], maxs[2],
                    hr, kr, lr, hkls, messages, warnings)


# ---------------------------------------------------------------------- Fdump.bin


def write_fdump(path: PathLike, table: HKLTable) -> None:
    """C's dump file (lines 2227-2240): "%d %d %d %d %d %d\\n\\f" then fhkl as float64 LE."""
    shape = (table.h_range + 1, table.k_range + 1, table.l_range + 1)
    fhkl = np.asarray(table.fhkl)
    if fhkl.shape != shape:
        raise ValueError(f"fhkl has shape {fhkl.shape}, the ranges say {shape}")
    head = (f"{table.h_min} {table.h_max} {table.k_min} {table.k_max} "
            f"{table.l_min} {table.l_max}\n\f")
    atomic_write(path, (head.encode("ascii"), _contiguous(fhkl, "<f8")))


def read_fdump(path: PathLike) -> HKLTable:
    """Read a dump file as nanoBragg.c does (lines 2109-2128).

    C reads the header with ``fscanf("%d%d%d%d%d%d\\n\\f")``, whose whitespace directives
    skip every whitespace byte that follows, so a table whose first double starts with
    bytes 09-0d or 20 is read shifted (the end zero-filled); that is reproduced, with a
    warning. A file too short for its table raises :class:`InputFileError`.
    """
    name = os.fspath(path)
    data = _read_bytes(path)
    ints = []
    pos = 0
    for _ in range(6):
        value, pos = _scan_d(data, pos)
        if value is None:
            raise InputFileError(path, f"dump header has {len(ints)} of its 6 integers")
        ints.append(value)
    h_min, h_max, k_min, k_max, l_min, l_max = ints
    hr = wrap_int32(h_max - h_min + 1)
    kr = wrap_int32(k_max - k_min + 1)
    lr = wrap_int32(l_max - l_min + 1)
    if min(hr, kr, lr) < 0:
        raise InputFileError(path, f"dump header ranges {hr} {kr} {lr} are negative")
    warnings: list[str] = []
    fhkl = _alloc_table(path, hr, kr, lr, [])
    need = fhkl.size * 8
    nominal = pos + 2 if data[pos:pos + 2] == b"\n\f" else pos
    start = _WS.match(data, pos).end()
    if len(data) - nominal < need:
        raise InputFileError(path, f"dump file is {need - (len(data) - nominal)} bytes "
                                   f"too short for its {hr + 1}x{kr + 1}x{lr + 1} table")
    if start > nominal:
        warnings.append(f"warning: {name}: the table starts with {start - nominal} "
                        "whitespace byte(s), which nanoBragg.c's fscanf(\"...\\n\\f\") skips; "
                        "as in C, every value is read shifted by that many bytes")
    body = data[start:start + need]
    body += b"\0" * (need - len(body))  # fread into calloc'd rows: the tail stays 0
    fhkl[...] = np.frombuffer(body, dtype="<f8").reshape(fhkl.shape)
    hkls = wrap_int32(hr * kr * lr)
    return HKLTable(fhkl, h_min, h_max, k_min, k_max, l_min, l_max, hr, kr, lr, hkls,
                    [], warnings)


# ------------------------------------------------------------------ text inputs


def read_mat(path: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A mosflm matrix as C reads it (line 1885): (a_star, b_star, c_star), each [x, y, z].

    Three ``fscanf("%lg%lg%lg")`` calls fill the x, then y, then z components of the
    three vectors from the first nine numbers of the stream; the rest of the file is
    ignored. Units as in the file (mosflm's A matrix includes the wavelength: C divides
    by lambda/1Å afterwards). Fewer than nine numbers raise :class:`InputFileError`.
    """
    data = _read_bytes(path, stop_at_nul=True)  # fscanf stops at a NUL, as here
    rows = []
    pos = 0
    for _ in range(3):
        row = []
        for _ in range(3):
            value, pos = _scan_lg(data, pos)
            if value is None:
                got = 3 * len(rows) + len(row)
                rest = data[pos:].split(None, 1)
                if not rest:
                    raise InputFileError(path, f"the file ends after {got} numbers; a "
                                               "matrix needs 9 (truncated matrix)")
                raise InputFileError(path, f"{shown(rest[0])} is not a number (after {got} "
                                           "numbers; a matrix needs 9)",
                                     line=data.count(b"\n", 0, pos) + 1)
            row.append(value)
        rows.append(row)
    m = np.array(rows, dtype=np.float64)
    return m[:, 0].copy(), m[:, 1].copy(), m[:, 2].copy()


_DELIMS = re.compile(rb"[ \t,;:!]*")
_NON_DELIMS = re.compile(rb"[^ \t,;:!]*")
_NUMBERSTUFF = re.compile(rb"[-0-9+.EGeg]*")
_FGETS_MAX = 10239  # fgets into char text[10240]


def _fgets_lines(data: bytes) -> list[bytes]:
    """The strings successive fgets calls return, each cut at its first NUL."""
    lines = []
    pos, n = 0, len(data)
    while pos < n:
        nl = data.find(b"\n", pos, pos + _FGETS_MAX)
        end = nl + 1 if nl >= 0 else min(pos + _FGETS_MAX, n)
        lines.append(data[pos:end].split(b"\0", 1)[0])
        pos = end
    return lines


def comment_lines(data: bytes) -> list[int]:
    """Line numbers (from 1) of the lines C's read_text_file sees whose first
    non-separator byte is ``#``: C reads each as a data line of zeros."""
    found = []
    for number, text in enumerate(_fgets_lines(data), start=1):
        if text[_DELIMS.match(text).end():].startswith(b"#"):
            found.append(number)
    return found


def read_text_file(path: PathLike, nargs: int, *, skip_comments: bool = False
                   ) -> list[np.ndarray]:
    """C's read_text_file (line 3867): ``nargs`` float64 columns, one entry per data line.

    Fields are separated by runs of `` \\t,;:!``; each is read with atof. Lines that
    are empty after leading separators are skipped; a line with fewer fields leaves NaN,
    except a last line without a newline, where C's loop fills the rest with 0.0.
    Lines over 10239 bytes are split as fgets splits them.  ``skip_comments`` also
    skips lines starting with ``#`` (after separators), which C reads as zeros
    (``atof("#...")``): our default; ``-c_parity`` reads them as C does.
    """
    if nargs < 1:
        raise ValueError("nargs must be at least 1")
    data = _read_bytes(path)
    rows: list[list[float]] = []
    for text in _fgets_lines(data):
        t = _DELIMS.match(text).end()
        if text[t:] == b"\n" or (skip_comments and text[t:t + 1] == b"#"):
            continue
        row = [math.nan] * nargs
        i = 0
        while True:
            row[i] = _strtod_at(text, t)[0]
            t = _NUMBERSTUFF.match(text, t).end()
            if text[t:] == b"\n":
                break
            t = _NON_DELIMS.match(text, t).end()
            t = _DELIMS.match(text, t).end()
            if text[t:] == b"\n":
                break
            i += 1
            if i >= nargs:
                break
        rows.append(row)
    table = np.array(rows, dtype=np.float64).reshape(len(rows), nargs)
    return [table[:, j].copy() for j in range(nargs)]
