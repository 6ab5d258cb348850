"""Sum raw float32 images before noise, as bl831's ``float_add`` does (not in nanoBragg).

The pipeline's combine rule (``../shared/companions/README.md``): ``((a + b) + c)`` in
float32, left to right, element by element. Used by ``nb-float-add``, by
``noisify-nb -add FILE`` and by ``Noisify.run(image=[a, b, c])``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputFileError, UsageError, shown
from ..inputs import input_size, read_input

__all__ = ["float_add", "read_float_image", "float_add_files", "FloatAddOptions",
           "FloatAddResult", "parse_float_add_args", "run_float_add", "FLOAT_ADD_USAGE"]


def float_add(images: Sequence[np.ndarray]) -> np.ndarray:
    """Element-wise float32 sum ``((images[0] + images[1]) + ...)``, in order.

    Parameters
    ----------
    images : sequence of arrays, all of one shape
        photons/pixel; converted to float32 first (as C reads them).

    Returns
    -------
    numpy.ndarray
        float32, the common shape.

    Raises
    ------
    UsageError
        No images, shapes that differ, or values that are not real numbers.
    """
    if len(images) == 0:
        raise UsageError("float_add needs at least one image")
    shapes = {np.shape(a) for a in images}
    if len(shapes) != 1:
        raise UsageError(f"float_add: images of different shapes {sorted(shapes)}")
    for a in images:
        kind = np.asarray(a).dtype.kind
        if kind not in "biuf":  # complex would lose its imaginary part, objects/strings fail
            raise UsageError(f"float_add: images must hold real numbers (photons/pixel), "
                             f"not dtype {np.asarray(a).dtype}")
    total = np.array(images[0], dtype=np.float32, copy=True)
    for other in images[1:]:
        total += np.asarray(other, dtype=np.float32)  # float32 + float32, rounded each step
    return total


def _as_floats(path: str | os.PathLike, data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise InputFileError(path, f"{len(data)} bytes is not a whole number of float32 values")
    return np.frombuffer(data, dtype="<f4").copy()


def read_float_image(path: str | os.PathLike, max_bytes: int | None = None) -> np.ndarray:
    """A raw float32 little-endian file as a flat array, read once and bounded
    (:func:`nbnumba.inputs.read_input`; ``max_bytes``: at most that many bytes).

    Raises :class:`~nbnumba.errors.InputFileError` (a folder, a pipe or device without
    end, a length that is not a multiple of 4)."""
    return _as_floats(path, read_input(path, max_bytes=max_bytes))


def float_add_files(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """Read and sum float images (all the same byte length), in order.

    The first image fixes the length; of the others no more than one byte past it
    is read, so a device or an endless pipe among them ends in a size error at once."""
    first = read_input(paths[0])
    size = len(first)
    images = [_as_floats(paths[0], first)]
    for p in paths[1:]:
        other = input_size(p)  # a regular file's size, None for a pipe or device
        data = read_input(p, max_bytes=size + 1) if other in (None, size) else b""
        held = other if other not in (None, size) else len(data)
        if held != size:
            said = f"more than {size}" if held > size and other is None else f"{held}"
            raise InputFileError(p, f"holds {said} bytes, {os.fspath(paths[0])} holds "
                                    f"{size}: images must have the same size")
        images.append(_as_floats(p, data))
    return float_add(images)


# ------------------------------------------------- bl831 float_add's command line

FLOAT_ADD_USAGE = (
    "usage: float_add file1.bin file2.bin [outfile.bin] -scale1 1.0 -scale2 1.0 -offset 40 "
    "-header 512\n"
    "options:\n"
    "\t-scale1 \tscale factor for first file\n"
    "\t-scale2 \tscale factor for second file\n"
    "\t-offset \tinteger offset to be subtracted from each file before applying scale\n"
    "\t-outoffset\tinteger offset to be added to the output file after all scaling\n"
    "\t-header \tnumber of bytes to ignore in header of each file\n"
    "\t-normalize \toutput relative difference instead of difference\n"
    "\t-histogram \tprint out a histogram of output values\n"
    "\t-binsize \tsize of the bins to use for the histogram\n"
    "\t-epsilon \tmaximum difference between values to be considered equal\n"
    "\t-ignore \tflag particular values as bad pixels, kept in output\n"
    "\t-reject \treject outliers from printed statistics\n"
)


@dataclass
class FloatAddOptions:
    """bl831 float_add.c's variables after its argv loop (floats are C ``float``)."""

    input1: str | None = None
    input2: str | None = None
    output: str = "output.bin"
    scale1: float = 1.0
    scale2: float = 1.0
    outscale: float = 1.0
    offset: float = 0.0
    outoffset: float = 0.0
    header: int = 0
    normalize: bool = False
    histogram: bool = False
    binsize: float = 1.0
    reject: bool = False
    nostats: bool = False
    ignore: list[float] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)  # what C prints in its argv loop
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why): perror
    # "warning: ..." lines on what C ignores or reads as 0 without a word: an unknown
    # option, an argument that is neither a .bin/.map name nor an option's value, a
    # number atof reads only in part
    warnings: list[str] = field(default_factory=list)


# float_add.c's options (matched by substring, as its strstr); those that read argv[i+1]
FLOAT_ADD_VALUE_FLAGS = ("-scale1", "-scale2", "-outscale", "-outfile", "-output", "-bin",
                         "-offset", "-ignore", "-epsilon", "-outoffset", "-header")
FLOAT_ADD_SWITCHES = ("-normalize", "-histogram", "-reject", "-nostats")
# the numbers among them (atof); -outfile/-output take a name
_NUMBER_FLAGS = tuple(f for f in FLOAT_ADD_VALUE_FLAGS if f not in ("-outfile", "-output"))


def _f32(x: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.float32(x))


def parse_float_add_args(argv: Sequence[str]) -> FloatAddOptions:
    """float_add.c's argv loop: an argument ending in ``.bin`` or ``.map`` is input 1,
    input 2, then the output (each input is the first such name C can open); options
    start with ``-`` and match by substring, their value is the next argument
    (``-outfile``/``-output`` take it, the others leave it to be looked at again).

    Where C would drop something without a word, ``warnings`` says so (an unknown
    option, an argument that is neither a ``.bin``/``.map`` name nor an option's value,
    a number ``atof`` reads only in part, e.g. ``-scale1 abc`` read as 0).

    Raises
    ------
    UsageError
        An option without its value at the end (C reads ``argv[argc]``, a NULL pointer),
        or a second output name (a third ``.bin``/``.map`` name after another one or
        ``-outfile``: C keeps the last and drops the other without a word; this form
        sums two inputs, ``nb-float-add A B C ... -o SUM`` sums any number).
    """
    from ..cargs import numeric_note
    from ..io import c_atof, c_int_from_double

    o = FloatAddOptions()
    argv = list(argv)
    output_named: str | None = None  # the output named so far (a .bin name or -outfile)
    value_of: str | None = None  # the option whose value argv[i] is
    i = 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        is_value, value_of = value_of, None
        if len(a) > 4 and (a.endswith(".bin") or a.endswith(".map")):
            line = f"filename: {a} "
            if o.input1 is None or o.input2 is None:
                why = _unopenable(a)
                if why:
                    o.skipped.append((a, why))
                elif o.input1 is None:
                    o.input1, line = a, line + " input1"
                else:
                    o.input2, line = a, line + " input2"
            else:
                _second_output(output_named, a)
                o.output, line, output_named = a, line + " output", a
            o.stdout.append(line + "\n")
        elif not a.startswith("-") and is_value is None:
            o.warnings.append(f"warning: {shown(a)}: not a .bin or .map name nor an "
                              "option's value; float_add ignores it (nb-float-add A B C "
                              "... -o SUM sums files of any name)")
        if a.startswith("-"):
            takes = [f for f in FLOAT_ADD_VALUE_FLAGS if f in a]
            if not takes and not any(f in a for f in FLOAT_ADD_SWITCHES) and is_value is None:
                o.warnings.append(f"warning: {shown(a)}: not a float_add option; float_add "
                                  "ignores it")
            if takes and nxt is None:
                raise UsageError(f"{a} needs a value (float_add would read past its "
                                 "arguments and crash)")
            if takes:
                value_of = a
                if any(f in a for f in _NUMBER_FLAGS):
                    note = numeric_note(a, nxt, "atof", c_atof(nxt), prog="float_add")
                    if note is not None:
                        o.warnings.append(note)
            val = c_atof(nxt) if nxt is not None else 0.0
            if "-scale1" in a:
                o.scale1 = _f32(val)
            if "-scale2" in a:
                o.scale2 = _f32(val)
            if "-outscale" in a:
                o.outscale = _f32(val)
            if ("-outfile" in a or "-output" in a) and nxt is not None:
                _second_output(output_named, nxt)
                o.output = output_named = nxt
                value_of = None  # the name is skipped, as C's ++i
                i += 2
                continue
            if "-normalize" in a:
                o.normalize = True
            if "-histogram" in a:
                o.histogram = True
            if "-bin" in a:
                o.binsize = _f32(val)
            if "-reject" in a:
                o.reject = True
            if "-nostats" in a:
                o.nostats = True
            if "-offset" in a:
                o.offset = o.outoffset = _f32(val)
            if "-ignore" in a:
                o.ignore.append(_f32(val))
            if "-outoffset" in a:
                o.outoffset = _f32(val)
            if "-header" in a:
                o.header = c_int_from_double(val)
        i += 1
    return o


def _second_output(before: str | None, name: str) -> None:
    """Refuse a second output name: C would keep the last and drop the other silently."""
    if before is not None:
        raise UsageError(f"{shown(name)}: a second output after {shown(before)}; bl831 "
                         "float_add sums two inputs (A.bin B.bin [OUT.bin]) and would "
                         "drop one of these names: to sum more images use nb-float-add "
                         "A B C ... -o SUM")


def _unopenable(path: str) -> str:
    """Why C's ``fopen(path, "r")`` would fail ('' if it would not), without opening it
    (a FIFO's writer must meet the one real read)."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not os.access(path, os.R_OK):
        return os.strerror(13)
    return ""


@dataclass
class FloatAddResult:
    """float_add.c's output file (``data``: its bytes) and stdout lines."""

    data: bytes
    stdout: list[str]
    pixels: int


def run_float_add(o: FloatAddOptions) -> FloatAddResult:
    """float_add.c's main after its argv loop: read, combine, statistics, the output bytes.

    ``out = outscale·(scale1·(a − offset) + scale2·(b − offset)) + outoffset`` in double,
    stored as float (``-normalize``: ``outscale·(d/avg)`` with the difference ``d`` and
    the mean ``avg`` of the two scaled terms). The first ``header`` bytes of input 1 are
    copied. Input 2 is read for input 1's length (missing bytes are 0, as C's calloc).

    Raises :class:`~nbnumba.errors.SetupExit` without an input (C: usage, exit 9),
    :class:`UsageError` for ``-reject`` (not reproduced) and a header longer than the
    file, :class:`InputFileError` from the reads.
    """
    from ..errors import SetupExit
    from ..io import c_format_g as g

    if o.input1 is None:
        raise SetupExit("no input file ending in .bin or .map that can be opened "
                        "(float_add prints its usage and exits)")
    if o.reject:
        raise UsageError("-reject (float_add's median/mean outlier rejection) is not "
                         "reproduced by nb-float-add; drop it")
    data1 = read_input(o.input1)
    n = len(data1)
    data2 = read_input(o.input2, max_bytes=n) if o.input2 is not None else b""
    if o.header < 0 or o.header > n:
        raise UsageError(f"-header {o.header}: {o.input1} has {n} bytes (float_add reads "
                         "outside its buffers)")
    words = (n + 3) // 4
    img1 = np.zeros(words + 1, np.float32)
    img1.view(np.uint8)[:n] = np.frombuffer(data1, np.uint8)
    img2 = np.zeros(words + 1, np.float32)
    img2.view(np.uint8)[:len(data2)] = np.frombuffer(data2, np.uint8)
    hw = o.header // 4
    pixels = (n - o.header) // 4
    out = np.zeros(words + 1, np.float32)
    out[:hw + 1] = img1[:hw + 1]  # C copies header/4 + 1 floats of the header
    sel = slice(hw, hw + pixels)
    f1 = img1[sel].astype(np.float64)
    f2 = img2[sel].astype(np.float64)
    s1, s2, off = float(o.scale1), float(o.scale2), float(o.offset)
    with np.errstate(all="ignore"):
        t1, t2 = s1 * (f1 - off), s2 * (f2 - off)
        if o.normalize:
            result = o.outscale * ((t1 - t2) / ((t1 + t2) / 2.0))
        else:
            result = o.outscale * (t1 + t2)
        outf = (result + o.outoffset).astype(np.float32)
    invalid = np.isnan(outf)
    overflows = int(np.count_nonzero(np.isinf(outf)))
    underflows = int(np.count_nonzero(~np.isfinite(outf)))
    ignored = np.zeros(pixels, dtype=bool)
    for value in o.ignore:  # the first -ignore value a pixel holds (in 1, then 2) stays
        v = np.float32(value)
        hit = img1[sel] == v
        if o.input2 is not None:
            hit |= img2[sel] == v
        outf = np.where(hit & ~ignored, v, outf)
        ignored |= hit
    invalid |= ignored
    out[sel] = outf
    valid = ~invalid
    nvalid = int(np.count_nonzero(valid))
    r = result[valid]
    x, y = f1[valid], f2[valid]
    lines: list[str] = [f"header = {o.header} bytes pixel zero offset = {g(o.offset)} "
                        f"({g(o.outoffset)} in output)\n"]
    lines += [f"ignoring value {g(v)} in both files\n" for v in o.ignore]

    def seq(v: np.ndarray) -> float:  # C's running double sums, in order
        return float(np.cumsum(v)[-1]) if v.size else 0.0

    with np.errstate(all="ignore"):
        nv = np.float64(nvalid)
        total, sumsq = seq(r), seq(r * r)
        sumx, sumy, sumxy, sumxx, sumyy = seq(x), seq(y), seq(x * y), seq(x * x), seq(y * y)
        avg = np.float64(total) / nv
        rms = np.sqrt(np.float64(sumsq) / nv)
        for label, syy, sa, sb in (("xy", sumxx, sumx, sumy), ("yx", sumyy, sumy, sumx)):
            denom = syy * nvalid - sa * sa
            if denom == 0 or nvalid < 2:
                scale = offset = 0.0
            else:
                scale = (sumxy * nvalid - sumx * sumy) / denom
                offset = (syy * sb - sa * sumxy) / denom
            lines.append(f"{label} lsq scale= {g(scale)} offset= {g(offset)}\n")
        diff = out[sel][valid].astype(np.float64) - float(o.outoffset) - avg
        sumdsq, sumd3, sumd4 = seq(diff * diff), seq(diff * diff * diff), \
            seq(diff * diff * diff * diff)
        rmsd = np.sqrt(np.float64(sumdsq) / nv)
        skew = np.float64(sumd3) / nv / (rmsd * rmsd * rmsd)
        kurt = np.float64(sumd4) / nv / (rmsd * rmsd * rmsd * rmsd)
        top = float(r.max()) if r.size else math.nan
        low = float(r.min()) if r.size else math.nan
        if o.histogram:
            lines += _histogram(r.astype(np.float32), o.binsize, float(rmsd), low, top)
        ax, ay, axy, axx, ayy = (np.float64(s) / nv for s in (sumx, sumy, sumxy, sumxx, sumyy))
        if ayy < ay * ay:
            ayy = ay * ay
        cc = 0.0 if axx < ax * ax else (axy - ax * ay) / (np.sqrt(axx - ax * ax)
                                                          * np.sqrt(ayy - ay * ay))
    counted = f"{pixels - nvalid} invalid of " if o.ignore else ""
    left = f"( {nvalid} left)" if o.ignore else ""
    if not o.nostats:
        lines.append(f"{counted}{pixels} pixels {left}\n")
        lines.append(f"{overflows} overflows, {underflows} underflows\n")
        lines.append(f"max = {g(top)} min = {g(low)}\n")
        lines.append(f"mean = {g(avg)} rms = {g(rms)} rmsd = {g(rmsd)} skewness = {g(skew)} "
                     f"kurtosis = {g(kurt)}\n")
        cc = float(cc)
        lines.append(f"CC = {g(cc) if cc != cc else f'{cc:.12g}'}\n")
    else:
        lines = lines[:1 + len(o.ignore)]
    lines.append(f"writing {o.output} as a {o.header}-byte header with {pixels} 4-byte "
                 "floats\n")
    return FloatAddResult(out.view(np.uint8)[:n].tobytes(), o.stdout + lines, pixels)


def _histogram(values: np.ndarray, binsize: float, rmsd: float, low: float,
               top: float) -> list[str]:
    """float_add.c's ``-histogram`` lines: bins of ``binsize`` (≤ 0: rmsd/3, then 1)
    from the minimum, at most 100000, each printed as ``%g %ld`` when not empty."""
    from ..io import c_format_g as g

    size = np.float32(binsize)
    if size <= 0:
        size = np.float32(rmsd / 3.0)
    if not size > 0:
        size = np.float32(1.0)
    with np.errstate(all="ignore"):
        bins = min(int(math.ceil((top - low + 2) / float(size))), 100000)
        index = (np.ceil((values.astype(np.float64) - low) / float(size)) - 0.5).astype(
            np.int64)
    index = index[(index >= 0) & (index <= bins)]
    counts = np.bincount(index, minlength=bins + 1)
    lines = ["histogram:\n"]
    for b in np.flatnonzero(counts):
        lines.append(f"{g(float(np.float32(size * np.float32(b))) + low)} {counts[b]}\n")
    return lines
