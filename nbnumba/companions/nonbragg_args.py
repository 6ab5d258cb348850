"""nonBragg.c's command line, parsed the way nonBragg.c parses it.

``parse_nonbragg_args(argv)`` returns a :class:`NonBraggOptions` holding C's
variables as they stand after C's argv loops (nonBragg.c lines 299-786), plus
one-line warnings where C's parsing surprises.  The port is literal:

* a pre-pass finds ``-img`` (line 299) and reads that SMV header's geometry
  first, so later flags override it;
* every ``argv[i]`` starting with ``-`` is tested against every ``if`` of the
  main loop with ``strstr`` (substring match), in C's order, so one argument
  can fire several flags (``-twotheta_axis`` also sets ``-twotheta``);
* guards ``argc > i+k`` silently skip a flag that lacks values; values are not
  consumed (a value starting with ``-`` is scanned as an option too);
* numbers go through C's ``atof``/``atoi`` (:func:`nbnumba.io.c_atof`).

Values are in C's internal units (metres, radians, g/m^3); file names are kept
as typed.  See ``specs/nonbragg.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Any

from ..cargs import WarningList, numeric_note, unknown_keywords_error
from ..constants import M_PI, RTD
from ..io import c_atof, c_atoi, wrap_int32

__all__ = ["NonBraggOptions", "parse_nonbragg_args", "BEAM", "SAMPLE", "PROG_C",
           "KEYWORD_FLAGS", "keywords_to_argv"]

BEAM = "BEAM"
SAMPLE = "SAMPLE"
PROG_C = "nonBragg.c"
NAN = math.nan
Vec3 = tuple[float, float, float]


@dataclass
class NonBraggOptions:
    """Every variable nonBragg.c's command line can set, with C's initial values.

    Field names are C's variable names; units are C's internal ones (metres,
    radians, m^-1, g/m^3, photons/m^2); C's 4-vectors are 3-tuples of
    ``v[1..3]``.  ``seed`` is C's already-negated value (``-N`` for ``-seed N``).
    """

    # files (lines 104-118)
    stolfilename: str | None = None
    stol_file_mult: float = 1.0e10
    imginfilename: str | None = None
    stoloutfilename: str = "output.stol"
    sourcefilename: str | None = None
    floatfilename: str = "floatimage.bin"
    intfilename: str = "intimage.img"
    pgmfilename: str = "image.pgm"
    noisefilename: str = "noiseimage.img"
    # progress and printing
    progress_meter: int = 1
    printout: int = 0
    printout_fpixel: int = -1
    printout_spixel: int = -1
    # beam
    beam_vector: Vec3 = (1.0, 0.0, 0.0)
    coherent: int = 0
    round_div: int = 1
    dispersion: float = 0.0
    dispsteps: int = -1
    lambda0: float = 1.0e-10
    source_distance: float = 10.0
    hdivstep: float = -1.0
    hdivrange: float = -1.0
    vdivstep: float = -1.0
    vdivrange: float = -1.0
    hdivsteps: int = -1
    vdivsteps: int = -1
    fluence: float = 125932015286227086360700780544.0
    flux: float = 0.0
    exposure: float = 1.0
    beamsize: float = 1e-4
    # sample
    sample_x: float = 1e-4
    sample_y: float = 1e-4
    sample_z: float = 1e-4
    density: float = 1.0e6
    molecular_weight: float = 18.0
    molecules: float = 0.0
    # detector
    pixel_size: float = 0.1e-3
    fpixels: int = 0
    spixels: int = 0
    distance: float = 100.0e-3
    detsize_x: float = 102.4e-3
    detsize_y: float = 102.4e-3
    fdet_vector: Vec3 = (0.0, 0.0, 1.0)
    sdet_vector: Vec3 = (0.0, -1.0, 0.0)
    odet_vector: Vec3 = (1.0, 0.0, 0.0)
    pix0_vector: Vec3 = (0.0, 0.0, 0.0)
    detector_rotx: float = 0.0
    detector_roty: float = 0.0
    detector_rotz: float = 0.0
    twotheta_axis: Vec3 = (0.0, 1.0, 0.0)
    detector_pivot: str = BEAM
    detector_twotheta: float = 0.0
    curved_detector: int = 0
    point_pixel: int = 0
    Fmap_pixel: int = 0
    Xbeam: float = NAN
    Ybeam: float = NAN
    Xclose: float = NAN
    Yclose: float = NAN
    close_distance: float = NAN
    ORGX: float = NAN
    ORGY: float = NAN
    quantum_gain: float = 1.0
    adc_offset: float = 40.0
    # polarization
    polar_vector: Vec3 = (0.0, 0.0, 1.0)
    polarization: float = 0.0
    nopolar: int = 0
    # sampling
    roi_xmin: int = -1
    roi_xmax: int = -1
    roi_ymin: int = -1
    roi_ymax: int = -1
    oversample: int = -1
    # spindle (header only)
    phi0: float = 0.0
    phistep: float = -1.0
    osc: float = -1.0
    phisteps: int = -1
    spindle_vector: Vec3 = (0.0, 0.0, 1.0)
    # -img
    ignore_value: list[int] = field(default_factory=list)
    header_twotheta: float = NAN  # TWOTHETA of the -img header: stored, never used
    img: Any = None  # the -img file as read (nonbragg_setup.ImgInput)
    # outputs
    calculate_noise: int = 1
    output_pgm: int = 1
    reject_outliers: int = 0
    intfile_scale: float = 0.0
    pgm_scale: float = 0.0
    seed: int = field(default_factory=lambda: -int(time.time()))
    # what the argv named explicitly (for the API's write() defaults and warnings)
    given: set[str] = field(default_factory=set)

    def outputs(self) -> list[tuple[str, str]]:
        """(flag, path) of each file the run writes, in C's order."""
        out = [("-floatfile", self.floatfilename), ("-intfile", self.intfilename)]
        if self.output_pgm:
            out.append(("-pgmfile", self.pgmfilename))
        if self.calculate_noise:
            out.append(("-noisefile", self.noisefilename))
        if self.imginfilename is not None:
            out.insert(0, ("-stolout", self.stoloutfilename))
        return out

    def input_flag(self, path: str) -> str | None:
        """The flag that named input file ``path``, for error messages."""
        for flag, name in (("-stol", self.stolfilename), ("-sourcefile", self.sourcefilename),
                           ("-img", self.imginfilename)):
            if name is not None and name == path:
                return flag
        return None


# ------------------------------------------------------------------ argv loop

# Arguments that legitimately match two C patterns.
_EXPECTED_PAIRS = {("-printout_pixel", "-printout")}


class _Parser:
    def __init__(self, argv: list[str], o: NonBraggOptions, warn: WarningList) -> None:
        self.args = ["nonBragg", *argv]
        self.argc = len(self.args)
        self.o = o
        self.warn = warn
        self.consumed: set[int] = set()
        self.i = 0
        self.a = ""
        self.labels: list[str] = []
        self.short: dict[str, int] = {}

    # C's strstr(argv[i], sub) [&& strlen(argv[i]) == length]
    def m(self, sub: str, length: int | None = None) -> str | None:
        if sub in self.a and (length is None or len(self.a) == length):
            return sub
        return None

    # C's argc > i+k
    def need(self, k: int, label: str) -> bool:
        if self.argc > self.i + k:
            return True
        self.short[label] = k
        return False

    def s(self, k: int) -> str:
        return self.args[self.i + k]

    def f(self, k: int) -> float:
        text = self.s(k)
        v = c_atof(text)
        note = numeric_note(self.a, text, "atof", v, PROG_C)
        if note:
            self.warn(note)
        return v

    def n(self, k: int) -> int:
        text = self.s(k)
        v = c_atoi(text)
        note = numeric_note(self.a, text, "atoi", v, PROG_C)
        if note:
            self.warn(note)
        return v

    def hit(self, label: str, nvals: int, **changes: object) -> None:
        for name, v in changes.items():
            setattr(self.o, name, v)
        self.o.given.add(label)
        self.labels.append(label)
        self.consumed.update(range(self.i + 1, self.i + 1 + nvals))

    def prepass(self) -> None:
        """Line 299: ``-img`` is found before anything else."""
        for i in range(1, self.argc):
            a = self.args[i]
            if a.startswith("-") and "-img" in a and self.argc > i + 1:
                self.o.imginfilename = self.args[i + 1]

    def run(self) -> None:
        for i in range(1, self.argc):
            a = self.args[i]
            if not a.startswith("-"):
                if i not in self.consumed:
                    self.warn(f"warning: argument {a!r} is not the value of any option; "
                              f"{PROG_C} ignores it")
                continue
            self.i, self.a = i, a
            self.labels, self.short = [], {}
            self._flags()
            self._settle()

    def _settle(self) -> None:
        a, labels = self.a, list(dict.fromkeys(self.labels))
        for label, k in self.short.items():
            if label not in labels and (a == label or a.startswith(label)):
                have = self.argc - 1 - self.i
                self.warn(f"warning: {a} needs {k} argument{'s' if k > 1 else ''} after it "
                          f"but {have} follow{'s' if have == 1 else ''}; {PROG_C} ignores it")
                return
        if not labels:
            if self.i not in self.consumed and not self.short:
                self.warn(f"warning: {a} matches no {PROG_C} option; {PROG_C} ignores it")
            return
        primary = a if a in labels else max(labels, key=lambda lab: (a.startswith(lab), len(lab)))
        for lab in labels:
            if lab != primary and (primary, lab) not in _EXPECTED_PAIRS:
                self.warn(f"warning: {a} also matched {lab} ({PROG_C} substring matching)"
                          + (": twotheta becomes the first axis component in degrees"
                             if lab == "-twotheta" else ""))

    def _flags(self) -> None:  # one branch per C ``if``, in C's order (lines 362-786)
        m, need, f, n, s, hit = self.m, self.need, self.f, self.n, self.s, self.hit
        a = self.a
        if (lab := m("-samplesize") or m("-sample_size")) and need(1, lab):
            v = f(1) / 1000
            hit(lab, 1, sample_x=v, sample_y=v, sample_z=v)
        if (lab := m("-sample_thick") or m("-sample_x") or m("-thick")) and need(1, lab):
            hit(lab, 1, sample_x=f(1) / 1000)
        if (lab := m("-sample_width") or m("-sample_y") or m("-width")) and need(1, lab):
            hit(lab, 1, sample_y=f(1) / 1000)
        if (lab := m("-sample_heigh") or m("-sample_z") or m("-heigh")) and need(1, lab):
            hit(lab, 1, sample_z=f(1) / 1000)
        if (lab := m("-density") or m("-sample_den")) and need(1, lab):
            hit(lab, 1, density=f(1) * 1e6)
        if (lab := m("-molecules") or m("-sample_molecules")) and need(1, lab):
            hit(lab, 1, molecules=f(1))
        if (lab := ("-MW" if a == "-MW" else None) or m("-molecular")) and need(1, lab):
            hit(lab, 1, molecular_weight=f(1))
        if (lab := m("-Xbeam")) and need(1, lab):
            hit(lab, 1, Xbeam=f(1) / 1000.0, detector_pivot=BEAM)
        if (lab := m("-Ybeam")) and need(1, lab):
            hit(lab, 1, Ybeam=f(1) / 1000.0, detector_pivot=BEAM)
        if (lab := m("-Xclose")) and need(1, lab):
            hit(lab, 1, Xclose=f(1) / 1000.0, detector_pivot=SAMPLE)
        if (lab := m("-Yclose")) and need(1, lab):
            hit(lab, 1, Yclose=f(1) / 1000.0, detector_pivot=SAMPLE)
        if (lab := m("-ORGX")) and need(1, lab):
            hit(lab, 1, ORGX=f(1), detector_pivot=SAMPLE)
        if (lab := m("-ORGY")) and need(1, lab):
            hit(lab, 1, ORGY=f(1), detector_pivot=SAMPLE)
        if (lab := m("-pivot")) and need(1, lab):
            changes = {}
            if "sample" in s(1):
                changes["detector_pivot"] = SAMPLE
            if "beam" in s(1):
                changes["detector_pivot"] = BEAM
            if not changes:
                self.warn(f"warning: {a} {s(1)}: {PROG_C} only acts on a value containing "
                          f"'sample' or 'beam'; the pivot is unchanged")
            hit(lab, 1, **changes)
        for lab0, name in (("-fdet_vector", "fdet_vector"), ("-sdet_vector", "sdet_vector"),
                           ("-odet_vector", "odet_vector"), ("-beam_vector", "beam_vector"),
                           ("-polar_vector", "polar_vector"), ("-spindle_axis", "spindle_vector"),
                           ("-twotheta_axis", "twotheta_axis"), ("-pix0_vector", "pix0_vector")):
            if m(lab0) and need(3, lab0):
                hit(lab0, 3, **{name: (f(1), f(2), f(3))})
        if (lab := m("-distance")) and need(1, lab):
            hit(lab, 1, distance=f(1) / 1000.0, detector_pivot=BEAM)
        if (lab := m("-close_distance")) and need(1, lab):
            hit(lab, 1, close_distance=f(1) / 1000.0, detector_pivot=SAMPLE)
        if (lab := m("-source_distance")) and need(1, lab):
            hit(lab, 1, source_distance=f(1) / 1000.0)
        if (lab := m("-twotheta")) and need(1, lab):
            hit(lab, 1, detector_twotheta=f(1) / RTD, detector_pivot=SAMPLE)
        for lab0, name in (("-detector_rotx", "detector_rotx"), ("-detector_roty", "detector_roty"),
                           ("-detector_rotz", "detector_rotz")):
            if m(lab0) and need(1, lab0):
                hit(lab0, 1, **{name: f(1) / RTD})
        if (lab := m("-detsize", 8)) and need(1, lab):
            v = f(1) / 1000.0
            hit(lab, 1, detsize_x=v, detsize_y=v)
        if (lab := m("-detsize_x")) and need(1, lab):
            hit(lab, 1, detsize_x=f(1) / 1000.0)
        if (lab := m("-detsize_y")) and need(1, lab):
            hit(lab, 1, detsize_y=f(1) / 1000.0)
        if (lab := m("-detpixels", 10)) and need(1, lab):
            v = n(1)
            hit(lab, 1, fpixels=v, spixels=v)
        if (lab := m("-detpixels_f") or m("-detpixels_x")) and need(1, lab):
            hit(lab, 1, fpixels=n(1))
        if (lab := m("-detpixels_s") or m("-detpixels_y")) and need(1, lab):
            hit(lab, 1, spixels=n(1))
        if (lab := m("-curved_det")) and need(1, lab):
            hit(lab, 0, curved_detector=1)  # C wants an argument after it but reads none
        if (lab := m("-pixel")) and need(1, lab):
            hit(lab, 1, pixel_size=f(1) / 1000.0)
        if lab := m("-point_pixel"):
            hit(lab, 0, point_pixel=1)
        if lab := m("-Fmap"):
            hit(lab, 0, Fmap_pixel=1)
        if (lab := m("-polar", 6)) and need(1, lab):
            hit(lab, 1, polarization=f(1), nopolar=0)
        if lab := m("-nopolar"):
            hit(lab, 0, nopolar=1)
        if (lab := m("-oversample")) and need(1, lab):
            hit(lab, 1, oversample=n(1))
        if (lab := m("-roi")) and need(4, lab):
            hit(lab, 4, roi_xmin=n(1), roi_xmax=n(2), roi_ymin=n(3), roi_ymax=n(4))
        if (lab := m("-lambda") or m("-wave")) and need(1, lab):
            hit(lab, 1, lambda0=f(1) / 1.0e10)
        if (lab := m("-energy")) and need(1, lab):
            e = f(1)
            lam = 12398.42 / e if e != 0.0 else math.inf
            hit(lab, 1, lambda0=lam / 1.0e10)
        if (lab := m("-fluence")) and need(1, lab):
            hit(lab, 1, fluence=f(1))
        if (lab := m("-flux")) and need(1, lab):
            hit(lab, 1, flux=f(1))
        if (lab := m("-exposure")) and need(1, lab):
            hit(lab, 1, exposure=f(1))
        if (lab := m("-beamsize")) and need(1, lab):
            hit(lab, 1, beamsize=f(1) / 1000)
        if (lab := m("-dispersion")) and need(1, lab):
            hit(lab, 1, dispersion=f(1) / 100.0)
        if (lab := m("-dispsteps")) and need(1, lab):
            hit(lab, 1, dispsteps=n(1))
        if (lab := m("-divergence")) and need(1, lab):
            v = f(1) / 1000.0
            hit(lab, 1, hdivrange=v, vdivrange=v)
        if (lab := m("-hdivrange")) and need(1, lab):
            hit(lab, 1, hdivrange=f(1) / 1000.0)
        if (lab := m("-vdivrange")) and need(1, lab):
            hit(lab, 1, vdivrange=f(1) / 1000.0)
        if (lab := m("-hdivstep", 9)) and need(1, lab):
            hit(lab, 1, hdivstep=f(1) / 1000.0)
        if (lab := m("-hdivsteps")) and need(1, lab):
            hit(lab, 1, hdivsteps=n(1))
        if (lab := m("-vdivstep", 9)) and need(1, lab):
            hit(lab, 1, vdivstep=f(1) / 1000.0)
        if (lab := m("-vdivsteps")) and need(1, lab):
            hit(lab, 1, vdivsteps=n(1))
        if (lab := m("-divsteps")) and need(1, lab):
            v = n(1)
            hit(lab, 1, hdivsteps=v, vdivsteps=v)
        if lab := m("-round_div"):
            hit(lab, 0, round_div=1)
        if lab := m("-square_div"):
            hit(lab, 0, round_div=0)
        if (lab := m("-adc")) and need(1, lab):
            hit(lab, 1, adc_offset=f(1))
        if (lab := m("-gain")) and need(1, lab):
            hit(lab, 1, quantum_gain=f(1))
        if (lab := m("-phi", 4)) and need(1, lab):
            hit(lab, 1, phi0=f(1) / RTD)
        if (lab := m("-osc")) and need(1, lab):
            hit(lab, 1, osc=f(1) / RTD)
        if (lab := m("-phistep", 8)) and need(1, lab):
            hit(lab, 1, phistep=f(1) / RTD)
        if (lab := m("-phisteps")) and need(1, lab):
            hit(lab, 1, phisteps=n(1))
        if (lab := m("-img")) and need(1, lab):
            hit(lab, 1, imginfilename=s(1))
        if (lab := m("-ignore")) and need(1, lab):
            v = f(1)
            # C: ignore_value[++ignore_values] = atof(...) into an unsigned short
            self.o.ignore_value.append(_to_ushort(v))
            hit(lab, 1)
        if "-stolout" in a and len(a) > 7 and need(1, "-stolout"):
            hit("-stolout", 1, stoloutfilename=s(1))
        if (lab := m("-stol", 5)) and need(1, lab):
            hit(lab, 1, stolfilename=s(1), stol_file_mult=1e10)
        if (lab := m("-4stol", 6)) and need(1, lab):
            hit(lab, 1, stolfilename=s(1), stol_file_mult=1e10 / 4)
        if (lab := m("-Q", 2)) and need(1, lab):
            hit(lab, 1, stolfilename=s(1), stol_file_mult=1e10 / M_PI / 4)
        if (lab := m("-sourcefile")) and need(1, lab):
            hit(lab, 1, sourcefilename=s(1))
        if (lab := m("-floatfile") or m("-floatimage")) and need(1, lab):
            hit(lab, 1, floatfilename=s(1))
        if (lab := m("-intfile") or m("-intimage")) and need(1, lab):
            hit(lab, 1, intfilename=s(1))
        if (lab := m("-pgmfile") or m("-pgmimage")) and need(1, lab):
            hit(lab, 1, pgmfilename=s(1))
        if (lab := m("-noisefile") or m("-noiseimage")) and need(1, lab):
            hit(lab, 1, noisefilename=s(1), calculate_noise=1)
        if lab := m("-nonoise"):
            hit(lab, 0, calculate_noise=0)
        if lab := m("-nopgm"):
            hit(lab, 0, output_pgm=0)
        if lab := m("-noreject"):
            hit(lab, 0, reject_outliers=0)
        if (lab := m("-scale")) and need(1, lab):
            hit(lab, 1, intfile_scale=f(1))
        if (lab := m("-pgmscale")) and need(1, lab):
            hit(lab, 1, pgm_scale=f(1))
        if lab := m("-coherent"):
            hit(lab, 0, coherent=1)
        if lab := m("-printout"):
            hit(lab, 0, printout=1)
        if lab := m("-noprogress"):
            hit(lab, 0, progress_meter=0)
        if lab := m("-progress"):
            hit(lab, 0, progress_meter=1)
        if (lab := m("-printout_pixel")) and need(2, lab):
            hit(lab, 2, printout_fpixel=n(1), printout_spixel=n(2))
        if (lab := m("-seed")) and need(1, lab):
            hit(lab, 1, seed=wrap_int32(-n(1)))


def _to_ushort(v: float) -> int:
    """C's conversion of a double to ``unsigned short`` (modulo 2^16 via int, as gcc does)."""
    if v != v or math.isinf(v):
        return 0
    return int(math.trunc(v)) & 0xFFFF


def parse_nonbragg_args(argv: list[str], read_img=None) -> tuple[NonBraggOptions, list[str]]:
    """Parse nonBragg.c's command line (without the program name).

    Parameters
    ----------
    argv : list of str
        The arguments as typed.
    read_img : callable, optional
        ``read_img(options)`` applies the ``-img`` header found by C's pre-pass
        (line 299) before the main loop, as C does; may raise
        :class:`~nbnumba.errors.InputFileError`.

    Returns
    -------
    (NonBraggOptions, list of str)
        C's variables after its argv loops and one-line warnings, each starting
        with ``"warning: "``.  C's flags never fail to parse.
    """
    o = NonBraggOptions()
    warn = WarningList()
    p = _Parser(list(argv), o, warn)
    p.prepass()
    if o.imginfilename is not None and read_img is not None:
        read_img(o)
    p.run()
    return o, warn.items


# ------------------------------------------------------------ keyword API

# keyword -> (flag, number of values; 0 for a switch).  One entry per C flag.
KEYWORD_FLAGS: dict[str, tuple[str, int]] = {
    "stol": ("-stol", 1), "four_stol": ("-4stol", 1), "Q": ("-Q", 1),
    "img": ("-img", 1), "stolout": ("-stolout", 1), "ignore": ("-ignore", 1),
    "sourcefile": ("-sourcefile", 1), "source_distance": ("-source_distance", 1),
    "floatfile": ("-floatfile", 1), "intfile": ("-intfile", 1), "pgmfile": ("-pgmfile", 1),
    "noisefile": ("-noisefile", 1), "nonoise": ("-nonoise", 0), "nopgm": ("-nopgm", 0),
    "samplesize": ("-samplesize", 1), "thick": ("-thick", 1), "width": ("-width", 1),
    "height": ("-height", 1), "density": ("-density", 1), "molecules": ("-molecules", 1),
    "MW": ("-MW", 1), "Xbeam": ("-Xbeam", 1), "Ybeam": ("-Ybeam", 1),
    "Xclose": ("-Xclose", 1), "Yclose": ("-Yclose", 1), "ORGX": ("-ORGX", 1),
    "ORGY": ("-ORGY", 1), "pivot": ("-pivot", 1), "fdet_vector": ("-fdet_vector", 3),
    "sdet_vector": ("-sdet_vector", 3), "odet_vector": ("-odet_vector", 3),
    "beam_vector": ("-beam_vector", 3), "polar_vector": ("-polar_vector", 3),
    "spindle_axis": ("-spindle_axis", 3), "twotheta_axis": ("-twotheta_axis", 3),
    "pix0_vector": ("-pix0_vector", 3), "distance": ("-distance", 1),
    "close_distance": ("-close_distance", 1), "twotheta": ("-twotheta", 1),
    "detector_rotx": ("-detector_rotx", 1), "detector_roty": ("-detector_roty", 1),
    "detector_rotz": ("-detector_rotz", 1), "detsize": ("-detsize", 1),
    "detsize_x": ("-detsize_x", 1), "detsize_y": ("-detsize_y", 1),
    "detpixels": ("-detpixels", 1), "detpixels_f": ("-detpixels_f", 1),
    "detpixels_s": ("-detpixels_s", 1), "curved_det": ("-curved_det", 0),
    "pixel": ("-pixel", 1), "point_pixel": ("-point_pixel", 0), "Fmap": ("-Fmap", 0),
    "polar": ("-polar", 1), "nopolar": ("-nopolar", 0), "oversample": ("-oversample", 1),
    "roi": ("-roi", 4), "lambda_": ("-lambda", 1), "wavelength": ("-lambda", 1),
    "energy": ("-energy", 1), "fluence": ("-fluence", 1), "flux": ("-flux", 1),
    "exposure": ("-exposure", 1), "beamsize": ("-beamsize", 1),
    "dispersion": ("-dispersion", 1), "dispsteps": ("-dispsteps", 1),
    "divergence": ("-divergence", 1), "hdivrange": ("-hdivrange", 1),
    "vdivrange": ("-vdivrange", 1), "hdivstep": ("-hdivstep", 1),
    "vdivstep": ("-vdivstep", 1), "hdivsteps": ("-hdivsteps", 1),
    "vdivsteps": ("-vdivsteps", 1), "divsteps": ("-divsteps", 1),
    "round_div": ("-round_div", 0), "square_div": ("-square_div", 0),
    "adc": ("-adc", 1), "gain": ("-gain", 1), "phi": ("-phi", 1), "osc": ("-osc", 1),
    "phistep": ("-phistep", 1), "phisteps": ("-phisteps", 1), "scale": ("-scale", 1),
    "pgmscale": ("-pgmscale", 1), "coherent": ("-coherent", 0), "noreject": ("-noreject", 0),
    "printout": ("-printout", 0), "printout_pixel": ("-printout_pixel", 2),
    "noprogress": ("-noprogress", 0), "progress": ("-progress", 0), "seed": ("-seed", 1),
}


def _text(v: object) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def keywords_to_argv(flags: dict[str, object]) -> list[str]:
    """C's argv for keyword arguments (in their order), so the C parser converts them.

    Each keyword is a C flag without its dash, in C's user units (mm, Angstrom,
    degrees, mrad, percent); ``lambda_``/``wavelength`` stand for ``-lambda`` and
    ``four_stol`` for ``-4stol``.  A switch takes ``True`` (given) or ``False``
    (left out); a flag with several values takes a sequence; ``ignore`` may be a
    sequence of values (one ``-ignore`` each).

    Raises
    ------
    TypeError
        For unknown keywords (all named) or a wrong number of values.
    """
    unknown = [k for k in flags if k not in KEYWORD_FLAGS]
    if unknown:
        raise unknown_keywords_error("NonBragg", unknown, KEYWORD_FLAGS)
    argv: list[str] = []
    for key, value in flags.items():
        flag, nvals = KEYWORD_FLAGS[key]
        if value is None:
            continue
        if nvals == 0:
            if value:
                argv.append(flag)
            continue
        if key == "ignore" and isinstance(value, (list, tuple)):
            for v in value:
                argv += [flag, _text(v)]
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(values) != nvals:
            raise TypeError(f"NonBragg() keyword {key} needs {nvals} value"
                            f"{'s' if nvals > 1 else ''}, got {len(values)}")
        argv += [flag, *(_text(v) for v in values)]
    return argv


def option_names() -> list[str]:
    """The fields of :class:`NonBraggOptions`."""
    return [f.name for f in fields(NonBraggOptions)]
