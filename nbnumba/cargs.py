"""nanoBragg.c's command line, parsed the way nanoBragg.c parses it.

``parse_args(argv)`` returns an :class:`~nbnumba.config.Options` holding C's
variables as they stand after C's argv loop, plus warnings about the places
where C's parsing is surprising.  The port is literal, flag by flag and in C's
order (nanoBragg.c lines 399-1116):

* every ``argv[i]`` that starts with ``-`` is tested against every ``if`` of the
  loop with ``strstr`` (substring match), so one argument can trigger several
  flags; a few flags ``continue`` to the next argument;
* guards such as ``argc > i+1`` silently skip a flag that lacks values;
* numbers go through C's ``atof``/``atoi`` (longest numeric prefix, else 0).

Our own flags (``-c_parity -device -precision -trace_pixel -quiet -geometry_out
-cbffile -expt_out -nxmx_out -crystfel_out -geom -expt -panels_out``) are taken out
first, so C's loop never sees them.  See ``specs/cli.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from .cnum import c_div
from .config import (
    ADXV,
    BEAM,
    CUSTOM,
    DENZO,
    DEVICES,
    DIALS,
    GAUSS,
    MOSFLM,
    PRECISIONS,
    ROUND,
    SAMPLE,
    SQUARE,
    TOPHAT,
    XDS,
    Options,
    unit_of,
)
from .constants import M_PI, RTD
from .errors import TOKEN_CHARS, UsageError, shown
from .io import c_atof, c_atoi, c_strtod, c_strtol, wrap_int32

__all__ = ["ParseError", "parse_args", "OWN_FLAGS", "WarningList", "numeric_note"]


OWN_FLAGS = ("-c_parity", "-device", "-precision", "-engine", "-trace_pixel", "-quiet",
             "-geometry_out", "-cbffile", "-expt_out", "-nxmx_out", "-crystfel_out",
             "-geom", "-expt", "-panels_out")
# our processing-format flags -> the Options field holding the file name
_FORMAT_FLAGS = {"-geometry_out": "geometry_out", "-cbffile": "cbffilename",
                 "-expt_out": "expt_out", "-nxmx_out": "nxmx_out",
                 "-crystfel_out": "crystfel_out"}
# -engine's words: the single-process engines of nbnumba.engines ("tiles" is the
# ``tiles`` subcommand's)
ENGINE_WORDS = ("auto", "exact", "vectorised", "cuda")


class ParseError(UsageError):
    """A bad value for one of our own flags (C's flags never fail to parse)."""


# ---------------------------------------------------------------- C numbers

def numeric_note(flag: str, s: str, kind: str, value: float,
                 prog: str = "nanoBragg.c") -> str | None:
    """A warning when C's atof/atoi does not read all of ``s`` (``prog``: the C program)."""
    used = (c_strtod if kind == "atof" else c_strtol)(s)[1]
    read_as = f"{value:g}" if kind == "atof" else str(value)
    # a huge value makes a short line (errors.shown)
    typed = s if len(s) <= TOKEN_CHARS else s[:TOKEN_CHARS] + "..."
    if not used:
        return f"warning: {flag} {typed}: {prog}'s {kind}() reads {shown(s)} as {read_as}"
    rest = s.encode("utf-8", "surrogateescape")[used:].decode("utf-8", "surrogateescape")
    if rest.strip(" \t\n\v\f\r"):
        return (f"warning: {flag} {typed}: {prog}'s {kind}() reads {shown(s)} as {read_as} "
                f"(ignores {shown(rest)})")
    return None


# ------------------------------------------------------------- bookkeeping

def _describe(name: str, v: object) -> str:
    unit = unit_of(name)
    if isinstance(v, tuple):
        text = "(" + ", ".join(f"{x:g}" for x in v) + ")"
    elif isinstance(v, float):
        text = f"{v:g}"
    elif isinstance(v, str):
        text = v
    else:
        text = str(v)
    if unit == "rad":
        if isinstance(v, tuple):
            return f"{name} = {text} rad ({', '.join(f'{x * RTD:g}' for x in v)} deg)"
        return f"{name} = {text} rad ({v * RTD:g} deg)"
    if unit in ("m", "1/m", "s", "Angstrom", "g/m^3", "g/mol", "photons/s", "photons/m^2"):
        return f"{name} = {text} {unit}"
    return f"{name} = {text}"


@dataclass
class _Hit:
    label: str  # the C pattern that matched, e.g. "-seed"
    line: int  # nanoBragg.c line of the ``if``
    desc: str
    notes: list[str] = field(default_factory=list)


@dataclass
class _Set:
    arg: str  # the argument as typed
    label: str
    value: object


# Fields where a later flag can silently undo an earlier one, and the flags that
# set them on purpose (an explicit flag overriding an earlier one is no surprise).
_TRACKED = ("detector_pivot", "beam_convention", "write_pgm", "calculate_noise", "nopolar")
_CONVENTION_FLAGS = ("-mosflm", "-xds", "-adxv", "-denzo", "-dials")
_EXPLICIT = {
    "detector_pivot": ("-pivot", *_CONVENTION_FLAGS),
    "beam_convention": _CONVENTION_FLAGS,
    "write_pgm": ("-nopgm",),
    "calculate_noise": ("-nonoise",),
    "nopolar": ("-nopolar",),
}
# Conventions other than CUSTOM overwrite detector_pivot after the loop.
_FORCED_PIVOT = {ADXV: (BEAM, 1186), MOSFLM: (BEAM, 1202), DENZO: (BEAM, 1217),
                 XDS: (SAMPLE, 1232), DIALS: (SAMPLE, 1247)}
# One argument matching both of these is intended (-printout_pixel needs printout).
_EXPECTED_PAIRS = {("-printout_pixel", "-printout")}


class WarningList:
    """One-line warnings in order, each kept once; call it with a line to add one."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._seen: set[str] = set()

    def __call__(self, text: str) -> None:
        if text not in self._seen:
            self._seen.add(text)
            self.items.append(text)


# ------------------------------------------------------------ our own flags

def _take_own_flags(argv: list[str], o: Options) -> list[str]:
    """Remove our flags (exact names) from argv, setting them on ``o``."""
    rest: list[str] = []
    i = 0
    n = len(argv)

    def values(flag: str, k: int, what: str) -> list[str]:
        if i + k >= n:
            raise ParseError(f"{flag} needs {what}")
        return argv[i + 1:i + 1 + k]

    while i < n:
        a = argv[i]
        if a == "-c_parity":
            o.c_parity = True
        elif a == "-quiet":
            o.quiet = True
        elif a == "-device":
            (v,) = values(a, 1, "a value: " + ", ".join(DEVICES))
            v = v.lower()
            if v == "gpu":
                v = "cuda"
            if v not in DEVICES:
                raise ParseError(f"-device: expected one of {', '.join(DEVICES)}, "
                                 f"got {shown(argv[i + 1])}")
            o.device = v
            i += 1
        elif a == "-precision":
            (v,) = values(a, 1, "a value: single or double")
            if v not in PRECISIONS:
                raise ParseError(f"-precision: expected single or double, got {shown(v)}")
            o.precision = v
            i += 1
        elif a == "-engine":
            (v,) = values(a, 1, "a value: " + ", ".join(ENGINE_WORDS))
            v = {"vectorized": "vectorised"}.get(v, v)
            if v not in ENGINE_WORDS:
                raise ParseError(f"-engine: expected one of {', '.join(ENGINE_WORDS)}, "
                                 f"got {argv[i + 1]!r}")
            o.engine = v
            i += 1
        elif a == "-trace_pixel":
            vs = values(a, 2, "two values: slow fast (pixel indices)")
            try:
                s, f = (int(x, 10) for x in vs)
            except ValueError:
                raise ParseError(f"-trace_pixel: expected two integer pixel indices (slow fast), "
                                 f"got {shown(' '.join(vs))}") from None
            if s < 0 or f < 0:
                raise ParseError(f"-trace_pixel: pixel indices must be >= 0, got {s} {f}")
            o.trace_pixel = (s, f)
            i += 2
        elif a in _FORMAT_FLAGS:  # nbnumba.formats (specs/formats.md)
            (v,) = values(a, 1, "a file name")
            if not v:
                raise ParseError(f"{a}: empty file name")
            setattr(o, _FORMAT_FLAGS[a], v)
            i += 1
        elif a in ("-geom", "-expt", "-panels_out"):  # nbnumba.readers (specs/models.md)
            (v,) = values(a, 1, "a file name")
            if not v:
                raise ParseError(f"{a}: empty file name")
            if a == "-panels_out":
                o.panels_out = v
            else:
                if o.model_file is not None and o.model_kind != a[1:]:
                    raise ParseError(f"{a} {shown(v)}: -geom and -expt both given; give one")
                o.model_file, o.model_kind = v, a[1:]
                o.model_file_at = len(rest) + 1  # C's argv index of the next C argument
            i += 1
        else:
            rest.append(a)
        i += 1
    return rest


# ------------------------------------------------------------- C's argv loop

class _CParser:
    """nanoBragg.c's -img/-mask pre-pass, header reads and argv loop."""

    def __init__(self, argv: list[str], o: Options, warn: WarningList):
        self.args = ["nanoBragg", *argv]  # indices as C's argv
        self.argc = len(self.args)
        self.o = o
        self.warn = warn
        self.consumed: set[int] = set()
        self.cwd: str | None = None  # where relative input paths are read from
        self.setters: dict[str, list[_Set]] = {k: [] for k in _TRACKED}
        self.prepass: dict[int, list[_Hit]] = {}
        self.prepass_short: dict[int, int] = {}
        self.close_src: str | None = None  # what set close_distance
        self.distance_flag: str | None = None  # the -distance argument, if any
        self.ybeam_src: str | None = None
        # per-argument state
        self.i = 0
        self.a = ""
        self.hits: list[_Hit] = []
        self.shorts: dict[str, int] = {}
        self.crash: dict[str, int] = {}
        self.pending: list[str] = []

    # -- helpers for one argument ---------------------------------------
    def m(self, sub: str, length: int | None = None) -> str | None:
        """C's ``strstr(argv[i], sub)`` (and ``strlen(argv[i]) == length``)."""
        if sub in self.a and (length is None or len(self.a) == length):
            return sub
        return None

    def need(self, k: int, label: str) -> bool:
        """C's ``argc > i+k``; remembers a flag that is too close to the end."""
        if self.argc > self.i + k:
            return True
        self.shorts[label] = max(self.shorts.get(label, 0), k)
        return False

    def need_ge(self, label: str, line: int) -> bool:
        """C's ``argc >= i+1``: always true, and C then reads argv[argc] (NULL)."""
        if self.argc > self.i + 1:
            return True
        self.crash[label] = line
        return False

    def s(self, k: int) -> str:
        return self.args[self.i + k]

    def f(self, k: int) -> float:
        text = self.s(k)
        v = c_atof(text)
        note = numeric_note(self.a, text, "atof", v)
        if note:
            self.pending.append(note)
        return v

    def n(self, k: int) -> int:
        text = self.s(k)
        v = c_atoi(text)
        note = numeric_note(self.a, text, "atoi", v)
        if note:
            self.pending.append(note)
        return v

    def note(self, text: str) -> None:
        self.pending.append(text)

    def hit(self, label: str, line: int, nvals: int, **changes: object) -> None:
        """A flag took effect: apply ``changes`` to the options and record it."""
        for name, v in changes.items():
            setattr(self.o, name, v)
            self.o.set_by[name] = (self.i, self.a)
            if name in self.setters:
                self.setters[name].append(_Set(self.a, label, v))
        desc = ", ".join(_describe(k, v) for k, v in changes.items()) or "no effect"
        self.hits.append(_Hit(label, line, desc, self.pending))
        self.pending = []
        self.consumed.update(range(self.i + 1, self.i + 1 + nvals))

    # -- pre-pass and headers (lines 399-503) ---------------------------
    def prepass_and_headers(self) -> None:
        o = self.o
        for i in range(1, self.argc):
            a = self.args[i]
            if not a.startswith("-"):
                continue
            for sub, attr in (("-img", "imginfilename"), ("-mask", "maskfilename")):
                if sub in a:
                    if self.argc > i + 1:
                        setattr(o, attr, self.args[i + 1])
                        self.prepass.setdefault(i, []).append(
                            _Hit(sub, 405 if sub == "-img" else 409,
                                 _describe(attr, self.args[i + 1])))
                    else:
                        self.prepass_short[i] = 1
        if o.maskfilename is not None:
            self._read_header(o.maskfilename, mask=True)
        if o.imginfilename is not None:
            self._read_header(o.imginfilename, mask=False)

    def _read_header(self, path: str, mask: bool) -> None:
        """C lines 418-459 (mask) and 461-503 (img): take geometry from an SMV header."""
        import numpy as np

        from . import io as nbio

        o = self.o
        flag = "-mask" if mask else "-img"
        try:
            # C's GetFrame zero-fills a short file (calloc, then a partial fread)
            frame = nbio.read_smv(path if self.cwd is None else os.path.join(self.cwd, path),
                                  allow_short=True)
        except OSError as exc:
            # C: perror(filename) and goes on as if the flag were not given
            self.warn(f"warning: {flag} {path}: cannot read it ({exc.strerror or exc}); "
                      f"nanoBragg.c goes on without it")
            return
        except ValueError as exc:
            self.warn(f"warning: {flag} {path}: not a readable SMV file ({exc}); "
                      f"nanoBragg.c's behaviour is undefined here, ignoring the file")
            return
        if frame.header_size <= 0:
            return
        if frame.missing_bytes:
            if mask:
                self.warn(f"warning: -mask {path}: the file ends {frame.missing_bytes} bytes "
                          f"short of its {frame.width}x{frame.height} pixels; as in "
                          "nanoBragg.c the missing mask values are 0 (pixels skipped)")
            elif frame.missing_bytes < 2 * frame.width * frame.height:
                self.warn(f"warning: -img {path}: the file ends {frame.missing_bytes} bytes "
                          "short of its pixels; nanoBragg.c reads -img for its header only")
        o.fpixels = int(frame.width)
        o.spixels = int(frame.height)
        pixels = o.fpixels * o.spixels

        def val(key: str) -> float:
            return nbio.smv_value(frame.header, key)

        t = val("PIXEL_SIZE")
        if not math.isnan(t):
            o.pixel_size = t / 1000.0
        o.detsize_f = o.pixel_size * o.fpixels
        o.detsize_s = o.pixel_size * o.spixels
        t = val("DISTANCE")
        if not math.isnan(t):
            o.distance = t / 1000.0
        t = val("CLOSE_DISTANCE")
        if not math.isnan(t):
            o.close_distance = t / 1000.0
            self.close_src = f"CLOSE_DISTANCE in the {flag} header"
        t = val("WAVELENGTH")
        if not math.isnan(t):
            o.lambda0 = t / 1e10
        t = val("BEAM_CENTER_X")
        if not math.isnan(t):
            o.Xbeam = t / 1000.0
        t = val("BEAM_CENTER_Y")
        if not math.isnan(t):
            # C reads the mask's value from the other edge, the img's as is
            o.Ybeam = o.detsize_s - t / 1000.0 if mask else t / 1000.0
            self.ybeam_src = flag
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
        if not math.isnan(t) and t != 0.0:
            self.warn(f"warning: TWOTHETA={t:g} in the {flag} header {path} is ignored: "
                      f"nanoBragg.c stores it in an unused variable (line "
                      f"{450 if mask else 493}); use -twotheta")
        if mask:
            image = np.zeros(pixels, dtype=np.uint16)  # C: calloc, so short files pad with 0
            data = np.asarray(frame.data).reshape(-1)[:pixels]
            image[:data.size] = data
            o.mask_image = image
            o.mask_fpixels = o.fpixels

    # -- the main loop (lines 505-1116) ---------------------------------
    def run(self) -> None:
        for i in range(1, self.argc):
            a = self.args[i]
            if not a.startswith("-"):
                if i not in self.consumed:
                    self.warn(f"warning: argument {a!r} is not the value of any option; "
                              f"nanoBragg.c ignores it")
                continue
            self.i, self.a = i, a
            self.hits = list(self.prepass.get(i, []))
            if self.hits:
                self.consumed.add(i + 1)
            self.shorts = {"-mask": 1} if i in self.prepass_short and "-mask" in a else {}
            self.crash = {}
            self.pending = []
            self._flags()
            self._settle()
        self._after_loop()

    def _settle(self) -> None:
        """Warnings about one argument, once every ``if`` has seen it."""
        a, hits = self.a, self.hits
        hit_labels = [h.label for h in hits]
        intended = self._intended([*hit_labels, *self.shorts, *self.crash])
        if intended is not None and intended not in hit_labels:
            # the flag the user meant was skipped by its guard
            if intended in self.crash:
                self.warn(f"warning: {a} is the last argument: nanoBragg.c reads past the end "
                          f"of argv here (line {self.crash[intended]}, a crash); ignored")
            else:
                k = self.shorts[intended]
                have = self.argc - 1 - self.i
                self.warn(f"warning: {a} needs {k} argument{'s' if k > 1 else ''} after it "
                          f"but {have} follow{'s' if have == 1 else ''}; nanoBragg.c ignores it")
        if not hits:
            if intended is None and self.i not in self.consumed:
                self.warn(f"warning: {a} matches no nanoBragg.c option; nanoBragg.c ignores it")
            return
        primary = intended if intended in hit_labels else hit_labels[0]
        for h in hits:
            if h.label == primary:
                for text in h.notes:
                    self.warn(text)
        seen = {primary}
        for h in hits:
            if h.label in seen:
                continue  # the same C pattern in two ifs (-width, -heigh, -img)
            seen.add(h.label)
            if (primary, h.label) in _EXPECTED_PAIRS:
                continue
            self.warn(f"warning: {a} also matched {h.label} (nanoBragg.c substring matching, "
                      f"line {h.line}): {h.desc}")

    def _intended(self, labels: list[str]) -> str | None:
        """The flag the user most likely meant: an exact match, else the longest prefix."""
        if not labels:
            return None
        if self.a in labels:
            return self.a
        prefixed = [lab for lab in labels if self.a.startswith(lab)]
        if prefixed:
            return max(prefixed, key=len)
        return labels[0]

    def _flags(self) -> None:  # one branch per C ``if``, in C's order
        o, m, need, f, n, s, hit = self.o, self.m, self.need, self.f, self.n, self.s, self.hit
        a = self.a

        if (lab := m("-Na")) and need(1, lab):
            hit(lab, 511, 1, Na=float(n(1)))
            return
        if (lab := m("-Nb")) and need(1, lab):
            hit(lab, 516, 1, Nb=float(n(1)))
            return
        if (lab := m("-Nc")) and need(1, lab):
            hit(lab, 521, 1, Nc=float(n(1)))
            return
        if a == "-N" and need(1, "-N"):
            v = float(n(1))
            hit("-N", 526, 1, Na=v, Nb=v, Nc=v)
            return
        if (lab := m("-cell")) and need(1, lab):
            names = ("cell_a", "cell_b", "cell_c", "alpha", "beta", "gamma")
            changes: dict[str, object] = {"user_cell": 1}
            for k, name in enumerate(names, start=1):
                if self.argc <= self.i + k or s(k).startswith("-"):
                    break
                v = f(k)
                changes[name] = v if k <= 3 else v / RTD
            got = len(changes) - 1
            if got < 6:
                self.note(f"warning: {a} read only {got} of 6 values (nanoBragg.c stops at "
                          f"the first argument starting with '-'); the rest stay 0")
            hit(lab, 531, got, **changes)
            if got < 6:
                return  # C's continue
        if (lab := m("-misset")) and need(1, lab):
            if "rand" in s(1):
                hit(lab, 553, 1, misset_flag=-1)
                return
        if (lab := m("-misset")) and need(3, lab):
            hit(lab, 561, 3, misset_flag=1,
                misset_angles=(f(1) / RTD, f(2) / RTD, f(3) / RTD))
        if (lab := m("-samplesize") or m("-sample_size")) and need(1, lab):
            v = f(1) / 1000
            hit(lab, 568, 1, sample_x=v, sample_y=v, sample_z=v)
        if (lab := m("-sample_thick") or m("-sample_x")) and need(1, lab):
            hit(lab, 574, 1, sample_x=f(1) / 1000)
        if (lab := m("-sample_width") or m("-sample_y") or m("-width")) and need(1, lab):
            hit(lab, 578, 1, sample_y=f(1) / 1000)
        if (lab := m("-sample_heigh") or m("-sample_z") or m("-heigh")) and need(1, lab):
            hit(lab, 582, 1, sample_z=f(1) / 1000)
        if (lab := m("-xtalsize") or m("-xtal_size")) and need(1, lab):
            v = f(1) / 1000
            hit(lab, 586, 1, sample_x=v, sample_y=v, sample_z=v)
        if (lab := m("-xtal_thick") or m("-xtal_x")) and need(1, lab):
            hit(lab, 592, 1, sample_x=f(1) / 1000)
        if (lab := m("-xtal_width") or m("-xtal_y") or m("-width")) and need(1, lab):
            hit(lab, 596, 1, sample_y=f(1) / 1000)
        if (lab := m("-xtal_heigh") or m("-xtal_z") or m("-heigh")) and need(1, lab):
            hit(lab, 600, 1, sample_z=f(1) / 1000)
        if (lab := m("-density") or m("-sample_den")) and need(1, lab):
            hit(lab, 604, 1, density=f(1) * 1e6)
        if (lab := ("-MW" if a == "-MW" else None) or m("-molec")) and need(1, lab):
            hit(lab, 608, 1, molecular_weight=f(1))
        if (lab := m("-Xbeam")) and need(1, lab):
            hit(lab, 612, 1, Xbeam=f(1) / 1000.0, detector_pivot=BEAM)
        if (lab := m("-Ybeam")) and need(1, lab):
            self.ybeam_src = lab
            hit(lab, 617, 1, Ybeam=f(1) / 1000.0, detector_pivot=BEAM)
        if (lab := m("-Xclose")) and need(1, lab):
            hit(lab, 622, 1, Xclose=f(1) / 1000.0, detector_pivot=SAMPLE)
        if (lab := m("-Yclose")) and need(1, lab):
            hit(lab, 627, 1, Yclose=f(1) / 1000.0, detector_pivot=SAMPLE)
        if (lab := m("-ORGX")) and need(1, lab):
            hit(lab, 632, 1, ORGX=f(1), detector_pivot=SAMPLE)
        if (lab := m("-ORGY")) and need(1, lab):
            hit(lab, 637, 1, ORGY=f(1), detector_pivot=SAMPLE)
        if (lab := m("-pivot")) and need(1, lab):
            changes = {}
            if "sample" in s(1):
                changes["detector_pivot"] = SAMPLE
            if "beam" in s(1):
                changes["detector_pivot"] = BEAM
            if not changes:
                self.note(f"warning: {a} {s(1)}: nanoBragg.c only acts on a value containing "
                          f"'sample' or 'beam'; the pivot is unchanged")
            hit(lab, 642, 1, **changes)
        for lab0, line, conv, piv in (("-mosflm", 647, MOSFLM, BEAM), ("-xds", 652, XDS, SAMPLE),
                                      ("-adxv", 657, ADXV, BEAM), ("-denzo", 662, DENZO, BEAM),
                                      ("-dials", 667, DIALS, BEAM)):
            if m(lab0):
                hit(lab0, line, 0, beam_convention=conv, detector_pivot=piv)
        for lab0, line, name in (("-fdet_vector", 672, "fdet_vector"),
                                 ("-sdet_vector", 679, "sdet_vector"),
                                 ("-odet_vector", 686, "odet_vector"),
                                 ("-beam_vector", 693, "beam_vector"),
                                 ("-polar_vector", 700, "polar_vector"),
                                 ("-spindle_axis", 707, "spindle_vector"),
                                 ("-twotheta_axis", 714, "twotheta_axis")):
            if m(lab0) and need(3, lab0):
                hit(lab0, line, 3, beam_convention=CUSTOM, **{name: (f(1), f(2), f(3))})
        if (lab := m("-pix0_vector")) and need(3, lab):
            self.note(f"warning: {a} values are ignored: nanoBragg.c selects the CUSTOM "
                      f"convention and recomputes pix0 from the detector pivot "
                      f"(lines 1719 and 1740)")
            if a != lab:
                self.note(f"warning: {a} is read as {lab} (nanoBragg.c substring matching): "
                          f"its values are not converted from mm")
            hit(lab, 721, 3, beam_convention=CUSTOM, pix0_vector_given=True,
                pix0_vector=(f(1), f(2), f(3)))
        if (lab := m("-distance")) and need(1, lab):
            self.distance_flag = a
            hit(lab, 729, 1, distance=f(1) / 1000.0, detector_pivot=BEAM)
        if (lab := m("-close_distance")) and need(1, lab):
            self.close_src = a
            hit(lab, 734, 1, close_distance=f(1) / 1000.0, detector_pivot=SAMPLE)
        if (lab := m("-detector_abs")) and self.need_ge(lab, 743):
            x = 0.0
            if "inf" in s(1) or (x := f(1)) == 0.0:
                if o.detector_thick != 0.0:
                    self.note(f"warning: {a} {s(1)} comes after -detector_thick and resets "
                              f"detector_thick to 0 (nanoBragg.c line 746)")
                hit(lab, 743, 1, detector_thick=0.0, detector_mu=0.0)
            else:
                hit(lab, 743, 1, detector_mu=c_div(1.0, x * 1e-6))
        if (lab := m("-detector_thick", 15)) and self.need_ge(lab, 752):
            hit(lab, 752, 1, detector_thick=f(1) * 1e-6)
        if (lab := m("-detector_thicksteps")) and self.need_ge(lab, 756):
            hit(lab, 756, 1, detector_thicksteps=n(1))
        if (lab := m("-thicksteps")) and self.need_ge(lab, 760):
            hit(lab, 760, 1, detector_thicksteps=n(1))
        if (lab := m("-twotheta")) and need(1, lab):
            hit(lab, 764, 1, detector_twotheta=f(1) / RTD, detector_pivot=SAMPLE)
        for lab0, line, name in (("-detector_rotx", 769, "detector_rotx"),
                                 ("-detector_roty", 773, "detector_roty"),
                                 ("-detector_rotz", 777, "detector_rotz")):
            if m(lab0) and need(1, lab0):
                hit(lab0, line, 1, **{name: f(1) / RTD})
        if (lab := m("-detsize", 8)) and need(1, lab):
            v = f(1) / 1000.0
            hit(lab, 781, 1, detsize_f=v, detsize_s=v)
        if (lab := m("-detsize_f")) and need(1, lab):
            hit(lab, 786, 1, detsize_f=f(1) / 1000.0)
        if (lab := m("-detsize_s")) and need(1, lab):
            hit(lab, 790, 1, detsize_s=f(1) / 1000.0)
        if (lab := m("-detpixels", 10)) and need(1, lab):
            v = n(1)
            hit(lab, 794, 1, fpixels=v, spixels=v)
        if (lab := m("-detpixels_f") or m("-detpixels_x")) and need(1, lab):
            hit(lab, 798, 1, fpixels=n(1))
        if (lab := m("-detpixels_s") or m("-detpixels_y")) and need(1, lab):
            hit(lab, 802, 1, spixels=n(1))
        if (lab := m("-curved_det")) and need(1, lab):
            hit(lab, 806, 0, curved_detector=1)  # C wants an argument after it, reads none
        if (lab := m("-pixel")) and need(1, lab):
            hit(lab, 810, 1, pixel_size=f(1) / 1000.0)
        if lab := m("-point_pixel"):
            hit(lab, 814, 0, point_pixel=1)
        if (lab := m("-polar", 6)) and need(1, lab):
            hit(lab, 818, 1, polarization=f(1), nopolar=0)
        if lab := m("-nopolar"):
            hit(lab, 823, 0, nopolar=1)
        if lab := m("-oversample_thick"):
            hit(lab, 827, 0, oversample_thick=1)
            return
        if lab := m("-oversample_polar"):
            hit(lab, 832, 0, oversample_polar=1)
            return
        if lab := m("-oversample_omega"):
            hit(lab, 837, 0, oversample_omega=1)
            return
        if (lab := m("-oversample")) and need(1, lab):
            hit(lab, 842, 1, oversample=n(1))
        if (lab := m("-roi")) and need(4, lab):
            hit(lab, 846, 4, roi_xmin=n(1), roi_xmax=n(2), roi_ymin=n(3), roi_ymax=n(4))
        if (lab := m("-lambda") or m("-wave")) and need(1, lab):
            hit(lab, 853, 1, lambda0=f(1) / 1.0e10)
        if (lab := m("-energy")) and need(1, lab):
            hit(lab, 857, 1, lambda0=c_div(12398.42, f(1)) / 1.0e10)
        if (lab := m("-fluence")) and need(1, lab):
            hit(lab, 861, 1, fluence=f(1))
        if (lab := m("-flux")) and need(1, lab):
            hit(lab, 865, 1, flux=f(1))
        if (lab := m("-exposure")) and need(1, lab):
            hit(lab, 869, 1, exposure=f(1))
        if (lab := m("-beamsize")) and need(1, lab):
            hit(lab, 873, 1, beamsize=f(1) / 1000)
        if (lab := m("-mosaic", 7) or m("-mosaici") or m("-mosaic_spr")) and need(1, lab):
            hit(lab, 877, 1, mosaic_spread=f(1) / RTD)
        if (lab := m("-mosaic_dom")) and need(1, lab):
            hit(lab, 881, 1, mosaic_domains=n(1))
        if (lab := m("-dispersion")) and need(1, lab):
            hit(lab, 885, 1, dispersion=f(1) / 100.0)
        if (lab := m("-dispsteps")) and need(1, lab):
            hit(lab, 889, 1, dispsteps=n(1))
        if (lab := m("-divergence")) and need(1, lab):
            v = f(1) / 1000.0
            hit(lab, 893, 1, hdivrange=v, vdivrange=v)
        if (lab := m("-hdivrange")) and need(1, lab):
            hit(lab, 897, 1, hdivrange=f(1) / 1000.0)
        if (lab := m("-vdivrange")) and need(1, lab):
            hit(lab, 901, 1, vdivrange=f(1) / 1000.0)
        if (lab := m("-hdivstep", 9)) and need(1, lab):
            hit(lab, 905, 1, hdivstep=f(1) / 1000.0)
        if (lab := m("-hdivsteps")) and need(1, lab):
            hit(lab, 909, 1, hdivsteps=n(1))
        if (lab := m("-vdivstep", 9)) and need(1, lab):
            hit(lab, 913, 1, vdivstep=f(1) / 1000.0)
        if (lab := m("-vdivsteps")) and need(1, lab):
            hit(lab, 917, 1, vdivsteps=n(1))
        if (lab := m("-divsteps")) and need(1, lab):
            v = n(1)
            hit(lab, 921, 1, hdivsteps=v, vdivsteps=v)
        if lab := m("-round_div"):
            hit(lab, 925, 0, round_div=1)
        if lab := m("-square_div"):
            hit(lab, 930, 0, round_div=0)
        if (lab := m("-adc")) and need(1, lab):
            hit(lab, 935, 1, adc_offset=f(1))
        if (lab := m("-phi", 4)) and need(1, lab):
            hit(lab, 939, 1, phi0=f(1) / RTD)
        if (lab := m("-osc")) and need(1, lab):
            hit(lab, 943, 1, osc=f(1) / RTD)
        if (lab := m("-phistep", 8)) and need(1, lab):
            hit(lab, 947, 1, phistep=f(1) / RTD)
        if (lab := m("-phisteps")) and need(1, lab):
            hit(lab, 951, 1, phisteps=n(1))
        if (lab := m("-dmin")) and need(1, lab):
            hit(lab, 955, 1, dmin=f(1) * 1e-10)
        if (lab := m("-mat")) and need(1, lab):
            hit(lab, 959, 1, matfilename=s(1))
        if (lab := m("-hkl")) and need(1, lab):
            hit(lab, 963, 1, hklfilename=s(1))
        if (lab := m("-default_F")) and need(1, lab):
            hit(lab, 967, 1, default_F=f(1))
        if (lab := m("-dump")) and need(1, lab):
            hit(lab, 971, 1, dumpfilename=s(1))
        if (lab := m("-img")) and need(1, lab):
            hit(lab, 975, 1, imginfilename=s(1))  # the header was read in the pre-pass
        if "-stolout" in a and len(a) > 7 and need(1, "-stolout"):
            hit("-stolout", 979, 1, stoloutfilename=s(1))
        if (lab := m("-stol", 5)) and need(1, lab):
            hit(lab, 983, 1, stolfilename=s(1), stol_file_mult=1e10)
        if (lab := m("-4stol", 6)) and need(1, lab):
            hit(lab, 988, 1, stolfilename=s(1), stol_file_mult=1e10 / 4)
        if (lab := m("-Q", 2)) and need(1, lab):
            hit(lab, 993, 1, stolfilename=s(1), stol_file_mult=1e10 / M_PI / 4)
        if (lab := m("-sourcefile")) and need(1, lab):
            hit(lab, 998, 1, sourcefilename=s(1))
        if (lab := m("-floatfile") or m("-floatimage")) and need(1, lab):
            hit(lab, 1002, 1, floatfilename=s(1))
        if (lab := m("-intfile") or m("-intimage")) and need(1, lab):
            hit(lab, 1006, 1, intfilename=s(1))
        if (lab := m("-pgmfile") or m("-pgmimage")) and need(1, lab):
            hit(lab, 1010, 1, pgmfilename=s(1), write_pgm=1)
        if (lab := m("-noisefile") or m("-noiseimage")) and need(1, lab):
            hit(lab, 1015, 1, noisefilename=s(1), calculate_noise=1)
        if lab := m("-nonoise"):
            hit(lab, 1020, 0, calculate_noise=0)
        if lab := m("-nopgm"):
            hit(lab, 1025, 0, write_pgm=0)
        if (lab := m("-scale")) and need(1, lab):
            hit(lab, 1029, 1, intfile_scale=f(1))
        if (lab := m("-pgmscale")) and need(1, lab):
            hit(lab, 1034, 1, pgm_scale=f(1), write_pgm=1)
        if lab := m("-coherent"):
            hit(lab, 1040, 0, coherent=1)
        if lab := m("-printout"):
            hit(lab, 1045, 0, printout=1)
        if lab := m("-noprogress"):
            hit(lab, 1050, 0, progress_meter=0)
        if lab := m("-progress"):
            hit(lab, 1055, 0, progress_meter=1)
        if lab := m("-interpolate"):
            hit(lab, 1060, 0, interpolate=1)
        if lab := m("-nointerpolate"):
            hit(lab, 1065, 0, interpolate=0)
        if lab := m("-round_xtal"):
            hit(lab, 1070, 0, xtal_shape=ROUND)
        if lab := m("-square_xtal"):
            hit(lab, 1075, 0, xtal_shape=SQUARE)
        if lab := m("-gauss_xtal"):
            hit(lab, 1080, 0, xtal_shape=GAUSS)
        if lab := m("-binary_spots") or m("-tophat_spots"):
            hit(lab, 1085, 0, xtal_shape=TOPHAT)
        if (lab := m("-fudge")) and need(1, lab):
            hit(lab, 1090, 1, fudge=f(1))
        if (lab := m("-printout_pixel")) and need(2, lab):
            hit(lab, 1094, 2, printout_fpixel=n(1), printout_spixel=n(2))
        if (lab := m("-seed")) and need(1, lab):
            hit(lab, 1099, 1, seed=wrap_int32(-n(1)))
        if (lab := m("-mosaic_seed")) and need(1, lab):
            hit(lab, 1103, 1, mosaic_seed=wrap_int32(-n(1)))
        if (lab := m("-misset_seed")) and need(1, lab):
            hit(lab, 1107, 1, misset_seed=wrap_int32(-n(1)))
        if (lab := m("-water")) and need(1, lab):
            hit(lab, 1111, 1, water_size=f(1) / 1e6)

    # -- order effects visible only after the whole loop ----------------
    def _after_loop(self) -> None:
        o, warn = self.o, self.warn
        conv_set = self.setters["beam_convention"]
        forced = _FORCED_PIVOT.get(o.beam_convention)
        if forced is not None:
            pivot, line = forced
            last = self.setters["detector_pivot"][-1] if self.setters["detector_pivot"] else None
            # A BEAM side effect (-distance, -Xbeam) undone by XDS/DIALS is what those
            # users expect; a SAMPLE request or an explicit -pivot undone is not.
            if last is not None and o.detector_pivot != pivot and (
                    last.label == "-pivot" or o.detector_pivot == SAMPLE):
                by = last.arg
                how = "" if conv_set else " (the default)"
                warn(f"warning: detector pivot is {pivot}, not {o.detector_pivot} as set by "
                     f"{by}: the {o.beam_convention} convention{how} forces pivot {pivot} "
                     f"after parsing (nanoBragg.c line {line})")
            vec_args = [st.arg for st in conv_set if st.label not in _CONVENTION_FLAGS]
            if vec_args:
                warn(f"warning: the values of {', '.join(dict.fromkeys(vec_args))} are "
                     f"replaced by the {o.beam_convention} convention's vectors after parsing, "
                     f"because {conv_set[-1].arg} comes after them (nanoBragg.c lines 1172-1247)")
        else:
            self._override("detector_pivot", "detector pivot is {v} because {by} comes after "
                           "{prev} (which set {pv})")
        self._override("beam_convention", "beam convention is {v} because {by} comes after "
                       "{prev} (which selected {pv})")
        self._override("write_pgm", "PGM output is back on because {by} comes after {prev}")
        self._override("calculate_noise", "the noise image is back on because {by} comes "
                       "after {prev}")
        self._override("nopolar", "polarization correction is back on because {by} comes "
                       "after {prev}")

        if self.distance_flag is not None and not math.isnan(o.close_distance):
            warn(f"warning: {self.distance_flag} has no effect: close_distance is set (by "
                 f"{self.close_src}) and nanoBragg.c derives distance from it (line 1714)")
        if self.ybeam_src == "-mask":
            warn("warning: Ybeam comes from BEAM_CENTER_Y in the -mask header, which "
                 "nanoBragg.c measures from the far edge (Ybeam = detsize_s - value, line 440), "
                 "unlike an -img header")

    def _override(self, name: str, template: str) -> None:
        sets = self.setters[name]
        if len(sets) < 2 or sets[-1].label in _EXPLICIT[name]:
            return
        last = sets[-1]
        for prev in reversed(sets[:-1]):
            if prev.value != last.value:
                self.warn("warning: " + template.format(v=last.value, by=last.arg,
                                                        prev=prev.arg, pv=prev.value))
                return


def parse_args(argv: list[str], cwd: str | os.PathLike | None = None
               ) -> tuple[Options, list[str]]:
    """Parse nanoBragg.c's command line (without the program name).

    Returns the options as C holds them after its argv loop (metres, radians,
    ...) and one-line warnings, each starting with ``"warning: "``.  Raises
    :class:`ParseError` only for bad values of our own flags.  The ``-img`` and
    ``-mask`` headers C reads during the loop are read relative to ``cwd``
    (default: the current folder); the paths in the options stay as typed.
    """
    o = Options()
    warn = WarningList()
    rest = _take_own_flags(list(argv), o)
    p = _CParser(rest, o, warn)
    p.cwd = None if cwd is None else os.fspath(cwd)
    p.prepass_and_headers()
    p.run()
    return o, warn.items


def unknown_keywords_error(owner: str, unknown: Iterable[str],
                           known: Iterable[str]) -> TypeError:
    """The TypeError for keywords a class does not take, each with a "did you mean" where a
    known keyword is close (``NonBragg(thikc=1)``: ``thikc (did you mean thick?)``)."""
    import difflib

    known = list(known)
    names = sorted(unknown)
    shown = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
        shown.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return TypeError(f"{owner}() got unexpected keyword argument{'s' if len(names) > 1 else ''}"
                     f": {', '.join(shown)}")
