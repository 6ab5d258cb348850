"""Checks on a parsed command line before anything is computed or written.

nanoBragg.c accepts almost anything and then prints NaN images, divides by
zero, reads past the end of its arrays or fails at the very end when it
cannot open an output file.  :func:`validate` runs after
:func:`nbnumba.cargs.parse_args` and before :func:`nbnumba.setup.prepare.prepare`
and refuses, with one line naming the flag or file, every input that would
make C misbehave.  Inputs on which C computes a meaningful image are kept
(``-N 0`` runs as N = 1, as in C), at most with a warning.

Errors carry their exit code (see ``README.md``, "Errors and exit codes"):
:class:`UsageError` 2, :class:`OutputPathError` 3, :class:`ResourceError` 4;
problems inside an input file raise :class:`nbnumba.io.InputFileError` (3).
Only numpy is imported here, so that bad input is refused quickly.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import io as nbio
from .config import CUSTOM, SQUARE, Options
from .constants import RTD
from .errors import (
    EXIT_FILE,
    EXIT_RESOURCES,
    EXIT_USAGE,
    NbError,
    OutputPathError,
    ResourceError,
    UsageError,
    shown,
)
from .inputs import read_input

__all__ = [
    "EXIT_USAGE",
    "EXIT_FILE",
    "EXIT_RESOURCES",
    "ValidationError",
    "UsageError",
    "OutputPathError",
    "ResourceError",
    "validate",
    "check_parse_warnings",
    "check_options",
    "check_input_files",
    "check_outputs",
    "check_outputs_not_inputs",
    "check_memory",
    "check_scene_finite",
    "nonfinite_as_usage",
    "not_finite_error",
    "nonfinite_flags",
    "nonfinite_kernel_inputs",
    "check_crystal",
    "estimate_work",
    "check_work",
    "output_paths",
    "check_output_files",
    "estimate_bytes",
    "mat_problem",
    "memory_parts",
    "available_bytes",
    "detector_shape",
    "resolved_phisteps",
]

# Peak bytes per detector pixel: the float32 image, the uint16 int image, the
# float64 temporaries of scaling, PGM and noise (measured: ~33 on a 2048² run).
BYTES_PER_PIXEL = 40
# Python and Numba themselves, before any image is allocated.
BASE_BYTES = 300 * 2**20


# kept as a name for the checks' errors: every one of them is an NbError
ValidationError = NbError


# ------------------------------------------------------------ parse warnings

def check_parse_warnings(warnings: list[str]) -> None:
    """Nothing to refuse: a flag value that is not a number runs as C's atof/atoi reads it.

    ``-N abc`` is N = 0 in nanoBragg.c, which runs; the parser has already
    warned (``... reads 'abc' as 0``), and the value checks below refuse the
    zeros with which C itself cannot compute (``-pixel abc`` is a zero pixel).
    Kept so that callers need not change.
    """
    del warnings


# ------------------------------------------------------------------- options

def _mm(x: float) -> str:
    return f"{x * 1000.0:g} mm"


def _from(o: Options, flags: str) -> str:
    """The flags (and header) a value can come from, for messages."""
    heads = [f"the {flag} header" for flag, name in (("-img", o.imginfilename),
                                                      ("-mask", o.maskfilename)) if name]
    return " or ".join([flags, *heads])


# (field, flags that set it, what NaN means): C's sentinels are NaN ("not
# given") or -1 ("choose automatically"); every other non-finite value is garbage.
_FINITE = (
    ("mosaic_spread", "-mosaic", True), ("dispersion", "-dispersion", False),
    ("hdivstep", "-hdivstep", False), ("hdivrange", "-hdivrange/-divergence", False),
    ("vdivstep", "-vdivstep", False), ("vdivrange", "-vdivrange/-divergence", False),
    ("fluence", "-fluence", False), ("flux", "-flux", False),
    ("exposure", "-exposure", False), ("beamsize", "-beamsize", False),
    ("fudge", "-fudge", False), ("sample_x", "-xtalsize/-xtal_x/-sample_x", False),
    ("sample_y", "-xtalsize/-xtal_y/-sample_y", False),
    ("sample_z", "-xtalsize/-xtal_z/-sample_z", False),
    ("water_size", "-water", False), ("cell_a", "-cell", False), ("cell_b", "-cell", False),
    ("cell_c", "-cell", False), ("alpha", "-cell", False), ("beta", "-cell", False),
    ("gamma", "-cell", False), ("detsize_f", "-detsize/-detsize_f", False),
    ("detsize_s", "-detsize/-detsize_s", False),
    ("detector_thick", "-detector_thick", False), ("detector_rotx", "-detector_rotx", False),
    ("detector_roty", "-detector_roty", False), ("detector_rotz", "-detector_rotz", False),
    ("detector_twotheta", "-twotheta", False),
    ("polarization", "-polar", False), ("phi0", "-phi", False),
    ("phistep", "-phistep", False), ("osc", "-osc", False), ("default_F", "-default_F", False),
    ("Xbeam", "-Xbeam", True), ("Ybeam", "-Ybeam", True), ("Xclose", "-Xclose", True),
    ("Yclose", "-Yclose", True), ("close_distance", "-close_distance", True),
    ("ORGX", "-ORGX", True), ("ORGY", "-ORGY", True),
)
_VECTORS = (
    ("beam_vector", "-beam_vector"), ("fdet_vector", "-fdet_vector"),
    ("sdet_vector", "-sdet_vector"), ("odet_vector", "-odet_vector"),
    ("polar_vector", "-polar_vector"), ("spindle_vector", "-spindle_axis"),
    ("twotheta_axis", "-twotheta_axis"), ("misset_angles", "-misset"),
)
# vectors that must not be zero under the CUSTOM convention (the others replace them)
_NONZERO_VECTORS = ("beam_vector", "fdet_vector", "sdet_vector", "polar_vector",
                    "spindle_vector")
_COUNTS = (
    ("phisteps", "-phisteps"), ("mosaic_domains", "-mosaic_dom"), ("dispsteps", "-dispsteps"),
    ("hdivsteps", "-hdivsteps/-divsteps"), ("vdivsteps", "-vdivsteps/-divsteps"),
    ("detector_thicksteps", "-thicksteps"), ("oversample", "-oversample"),
)
# C's int loop counters: more steps than this cannot be what anyone meant
MAX_COUNT = 2**31 - 1


def resolved_phisteps(o: Options) -> float:
    """The number of φ steps C's rules give (nanoBragg.c line 1389); float, may be huge."""
    from .setup.rules import phi_sampling

    if o.phisteps < 0 and o.osc >= 0.0 and o.phistep > 0.0 and o.osc / o.phistep >= 2.0**62:
        return math.inf  # what C's ceil would give is past any count we could run
    return phi_sampling(o.phisteps, o.osc, o.phistep)[0]


def detector_shape(o: Options) -> tuple[int, int]:
    """(fpixels, spixels) as C resolves them from pixel counts or detector size (line 1112);
    unlike :func:`nbnumba.setup.rules.detector_size` never raises: NaN gives 0 pixels and
    a count past 2**62 is capped there, for the checks to word."""
    from .setup.rules import detector_extent

    shape = []
    for size in detector_extent(o):
        n = size / o.pixel_size - 0.5
        if math.isnan(n):
            n = 0.0
        shape.append(math.ceil(n) if abs(n) < 2.0**62 else int(math.copysign(2**62, n)))
    return shape[0], shape[1]


def _mosaic_domains(o: Options) -> int:
    from .setup.rules import mosaic_sampling

    return mosaic_sampling(o.mosaic_spread, o.mosaic_domains)[1]


def _source_count(o: Options) -> float:
    """An upper bound on the number of sources (divergence grid × wavelengths, line 2290)."""
    if o.sourcefilename is not None:
        return 1.0
    from .setup.rules import pick_steps, switched_off

    counts = []
    for steps, span, step in ((o.hdivsteps, o.hdivrange, o.hdivstep),
                              (o.vdivsteps, o.vdivrange, o.vdivstep),
                              (o.dispsteps, o.dispersion, -1.0)):
        if steps <= 0 and span >= 0.0 and step > 0.0 and span / step >= 2.0**62:
            return math.inf
        counts.append(switched_off(*pick_steps(steps, span, step, 1.0))[0])
    return float(counts[0]) * counts[1] * counts[2]


def nonfinite_flags(o: Options) -> list[tuple[str, float]]:
    """The flags given a value C cannot compute with as such (inf, or NaN where NaN does
    not mean "not given"): ``(flag text, value)`` pairs, for :func:`check_scene_finite`."""
    found = []
    for name, flags, nan_is_unset in _FINITE:
        v = getattr(o, name)
        if math.isinf(v) or (math.isnan(v) and not nan_is_unset):
            found.append((_from(o, flags), v))
    return found


def nonfinite_kernel_inputs(scene) -> list[str]:
    """The inputs of the pixel loop that are not finite and that this run's loop uses.

    ``scene`` is a :class:`nbnumba.setup.scene.Scene`.  The polarization axis and
    factor count only with polarization on, the crystal-shape fudge only for a
    non-square shape; the sensor's attenuation is judged by :func:`check_options`.
    """
    import numpy as np

    p, o = scene.params, scene.opts
    det = scene.det[:5] if o.nopolar else scene.det
    bad = [name for name, array in (("detector vectors", det), ("sources", scene.sources),
                                    ("cell vectors", scene.cells),
                                    ("reciprocal cell", scene.a_star))
           if not np.isfinite(array).all()]
    names = ["subpixel_size", "pixel_size", "distance", "close_distance", "Na", "Nb", "Nc",
             "fluence", "I_bg", "default_F"]
    if p.detector_thick != 0.0:  # C: capture fraction 1 for a zero thickness (line 2686)
        names += ["detector_thick", "detector_thickstep"]
    if not p.nopolar:
        names.append("polarization")
    if o.xtal_shape != SQUARE:
        names.append("fudge")
    return bad + [name for name in names if not math.isfinite(getattr(p, name))]


def check_scene_finite(scene, suspects: list[tuple[str, float]]) -> list[str]:
    """Refuse a run whose non-finite flag values reach C's pixel loop (its image would be
    NaN or inf); the others run as C runs them, each with a warning.

    Raises
    ------
    UsageError
        Naming the flags, when :func:`nonfinite_kernel_inputs` finds any.
    """
    if not suspects:
        return []
    reached = nonfinite_kernel_inputs(scene)
    if reached:
        raise not_finite_error(suspects, f"it reaches nanoBragg.c's pixel loop "
                                         f"({', '.join(reached)}), so C's image would be "
                                         "NaN or inf")
    return [f"warning: {flag} {v:g}: not a finite number, but nothing this run's pixel loop "
            "uses depends on it; run as nanoBragg.c runs it" for flag, v in suspects]


def check_options(o: Options) -> list[str]:
    """Refuse values with which C computes garbage; returns warnings for kept oddities."""
    warnings: list[str] = []
    # a non-finite flag value is judged once the setup is resolved (check_scene_finite):
    # many reach nothing C computes in a given run (-fudge for a square crystal, -beamsize
    # without -flux, -ORGX under a beam pivot, a negative infinity for "not given")
    # C parses -density and -MW but overwrites both before use (lines 2098-2100)
    for name, flag in (("density", "-density"), ("molecular_weight", "-MW")):
        if not math.isfinite(getattr(o, name)):
            warnings.append(f"warning: {flag} {getattr(o, name):g}: nanoBragg.c reads it but "
                            "never uses it (it computes its own density and MW)")
    # -dmin cuts pixels where dmin > 0.5/stol (line 2763): NaN and -inf cut nothing, inf
    # cuts every pixel with stol > 0; the image stays finite either way
    if math.isnan(o.dmin) or o.dmin == math.inf:
        what = "cuts nothing" if math.isnan(o.dmin) else "leaves only stol = 0 pixels"
        warnings.append(f"warning: -dmin {o.dmin * 1e10:g}: nanoBragg.c's resolution cut "
                        f"{what}")
    if not math.isfinite(o.detector_mu):
        from .setup.rules import thickness_sampling

        steps, thick, step = thickness_sampling(o.detector_thicksteps, o.detector_thick,
                                                o.detector_thickstep)
        layered = thick > 0.0 and step > 0.0 and steps > 0
        # the attenuation enters each layer's capture fraction (lines 2686-2738): NaN gives
        # a NaN image, and so does +inf when it is recomputed per sub-pixel (0 x inf)
        if layered and (math.isnan(o.detector_mu)
                        or (o.detector_mu > 0.0 and o.oversample_thick)):
            raise UsageError(f"{_from(o, '-detector_abs')}: an attenuation length giving "
                             f"mu = {o.detector_mu:g} makes nanoBragg.c's image NaN with a "
                             "sensor thickness; give a finite positive length")
        if not layered:
            warnings.append(f"warning: -detector_abs: mu = {o.detector_mu:g} is not used "
                            "without a sensor thickness (-detector_thick), as in nanoBragg.c")
        else:
            warnings.append(f"warning: -detector_abs: mu = {o.detector_mu:g}: nanoBragg.c "
                            "computes the sensor's capture fraction with it as it is")
    for name, flag, pixels in (("intfile_scale", "-scale", "int"), ("pgm_scale", "-pgmscale",
                                                                     "PGM")):
        v = getattr(o, name)
        # C tests `scale <= 0.0` (lines 3135, 3191) and keeps the rest: only the integer
        # images see it, and C's conversions make NaN pixels 0 and inf ones saturate
        if math.isnan(v):
            warnings.append(f"warning: {flag} {v:g}: nanoBragg.c keeps it (it tests <= 0), "
                            f"so every {pixels} pixel is 0")
        elif v == math.inf:
            warnings.append(f"warning: {flag} inf: every lit {pixels} pixel saturates and "
                            "the unlit ones are 0 (0 x inf is NaN), as in nanoBragg.c")
    for name, flag in _VECTORS:
        v = getattr(o, name)
        if not all(math.isfinite(x) for x in v):
            raise UsageError(f"{flag}: {' '.join(f'{x:g}' for x in v)} is not a finite vector")
    if o.beam_convention == CUSTOM:
        for name in _NONZERO_VECTORS:
            if not any(getattr(o, name)):
                # C's unitize leaves a zero vector zero (line 3981): finite, if odd
                flag = dict(_VECTORS)[name]
                warnings.append(f"warning: {flag} 0 0 0: a zero direction; nanoBragg.c "
                                "computes with the zero vector")

    if not (math.isfinite(o.pixel_size) and o.pixel_size != 0.0):
        # C divides the detector size by it and converts the inf/NaN to an int (undefined)
        raise UsageError(f"{_from(o, '-pixel')}: the pixel size must be a finite non-zero "
                         f"number, not {_mm(o.pixel_size)}")
    if o.pixel_size < 0.0:
        warnings.append(f"warning: {_from(o, '-pixel')}: negative pixel size "
                        f"{_mm(o.pixel_size)}; nanoBragg.c computes it as given")
    if math.isnan(o.close_distance):
        distance, flag = o.distance, _from(o, "-distance")
    else:
        distance, flag = o.close_distance, _from(o, "-close_distance")
    if not math.isfinite(distance):
        raise UsageError(f"{flag}: the detector distance must be a finite number, "
                         f"not {_mm(distance)}")
    if distance <= 0.0:
        # C computes it: a zero distance gives an all-zero image, a negative one puts
        # the detector behind the crystal
        warnings.append(f"warning: {flag}: detector distance {_mm(distance)}; nanoBragg.c "
                        "computes it as given (0 gives an empty image)")
    if not (math.isfinite(o.lambda0) and o.lambda0 != 0.0):
        # 1/lambda: every scattering vector is inf or NaN and so is the image
        raise UsageError(f"{_from(o, '-lambda/-energy')}: the wavelength must be a finite "
                         f"non-zero number, not {o.lambda0 * 1e10:g} A (nanoBragg.c divides "
                         "by it and writes a NaN image)")
    if o.lambda0 < 0.0:
        warnings.append(f"warning: {_from(o, '-lambda/-energy')}: negative wavelength "
                        f"{o.lambda0 * 1e10:g} A; nanoBragg.c computes it as given")
    if o.dispersion >= 2.0:
        warnings.append(f"warning: -dispersion {o.dispersion * 100:g}: 200% or more makes "
                        "some wavelengths <= 0; nanoBragg.c computes them as given")
    negative = [f"{name} {getattr(o, name):.0f}" for name in ("Na", "Nb", "Nc")
                if getattr(o, name) < 0]
    if negative:
        warnings.append(f"warning: -N/-Na/-Nb/-Nc: {', '.join(negative)}: a negative number "
                        "of unit cells; nanoBragg.c's lattice factor then counts 1 cell")
    if o.water_size < 0.0:
        warnings.append(f"warning: -water {o.water_size * 1e6:g}: a negative droplet size; "
                        "nanoBragg.c subtracts its scatter from the image")
    if any(getattr(o, name, None) for name in ("cbffilename", "geometry_out", "expt_out",
                                                 "nxmx_out", "crystfel_out")) \
            and not math.isfinite(o.adc_offset):
        # nanoBragg.c runs with it (every count clips to 65535 or 0); our processing
        # formats subtract the ADC baseline, which must be a number
        raise UsageError(f"-adc {o.adc_offset:g} with -cbffile/-geometry_out/-expt_out/"
                         "-nxmx_out/-crystfel_out: the ADC offset must be finite to be "
                         "recorded in a processing format")
    if o.user_cell:
        _check_cell(o)
    if o.flux != 0.0 and o.exposure > 0.0 and o.beamsize == 0.0:
        raise UsageError("-beamsize 0 with -flux and -exposure: the fluence would be "
                         "flux*exposure/0")
    from .setup.rules import fluence as resolved_fluence

    fluence = resolved_fluence(o)
    if not math.isfinite(fluence):
        raise UsageError(f"-fluence/-flux/-exposure/-beamsize: the fluence would be "
                         f"{fluence:g} photons/m^2; it must be finite")
    if fluence < 0.0:
        warnings.append(f"warning: -fluence/-flux/-exposure/-beamsize: a negative fluence "
                        f"({fluence:g} photons/m^2); nanoBragg.c writes a negative image")

    if o.printout:
        which = (f"-printout_pixel {o.printout_fpixel} {o.printout_spixel}"
                 if o.printout_fpixel >= 0 else "-printout")
        hint = (f"-trace_pixel {o.printout_spixel} {o.printout_fpixel}"
                if o.printout_fpixel >= 0 else "-trace_pixel SLOW FAST")
        warnings.append(f"warning: {which} is ignored: nanoBragg.c prints pixel values during "
                        f"the run, nbnumba does not (use {hint})")
    if o.stoloutfilename != "output.stol":
        warnings.append(f"warning: -stolout {o.stoloutfilename} is ignored, as in nanoBragg.c "
                        "(it reads the name and writes nothing)")
    for name, flag in _COUNTS:
        v = getattr(o, name)
        if v <= 0 and v != -1:
            warnings.append(f"warning: {flag} {v}: not a positive count; nanoBragg.c then "
                            "chooses the number itself")
    if o.osc == 0.0 and o.phistep > 0.0 and o.phisteps < 0:
        raise UsageError(f"-osc 0 with -phistep {o.phistep * RTD:g}: that is 0 phi steps "
                         "(nanoBragg.c would divide by zero); give -phisteps or a non-zero -osc")
    phisteps = resolved_phisteps(o)
    if phisteps > MAX_COUNT:
        raise UsageError(f"-osc {o.osc * RTD:g} / -phistep {o.phistep * RTD:g}: "
                         f"{phisteps:g} phi steps is too many")
    if o.sourcefilename is None and _source_count(o) > MAX_COUNT:
        raise UsageError("-hdivrange/-hdivstep, -vdivrange/-vdivstep, -dispersion/-dispsteps: "
                         "too many source points")

    fpixels, spixels = detector_shape(o)
    if fpixels < 1 or spixels < 1:
        raise UsageError(f"{_from(o, '-detpixels/-detsize')}: the detector would have "
                         f"{fpixels}x{spixels} pixels")
    if o.mask_image is not None and o.mask_image.size:
        if o.mask_image.size < fpixels * spixels:
            raise UsageError(f"-mask {o.maskfilename}: the mask has {o.mask_image.size} pixels "
                             f"but the detector {fpixels}x{spixels}; nanoBragg.c would read "
                             "past the end of its mask")
        if o.mask_image.size > fpixels * spixels or (o.mask_fpixels and o.mask_fpixels != fpixels):
            warnings.append(f"warning: -mask {o.maskfilename}: the mask is "
                            f"{o.mask_fpixels}x{o.mask_image.size // max(o.mask_fpixels, 1)} "
                            f"but the detector {fpixels}x{spixels}; as nanoBragg.c, its first "
                            f"{fpixels * spixels} values are used as a {fpixels}-wide image")
    if o.trace_pixel is not None:
        s, f = o.trace_pixel
        if s >= spixels or f >= fpixels:
            raise UsageError(f"-trace_pixel {s} {f}: outside the {spixels}x{fpixels} "
                             "(slow x fast) detector")
    return warnings


def _check_cell(o: Options) -> None:
    """The -cell values as C completes them (line 1800) must give a positive volume."""
    if not o.cell_a > 0.0:
        raise UsageError(f"-cell: the cell edge a must be > 0, not {o.cell_a:g} A")
    edges = [o.cell_a, o.cell_b if o.cell_b > 0.0 else o.cell_a,
             o.cell_c if o.cell_c > 0.0 else o.cell_a]
    angles = [x if x > 0.0 else math.pi / 2 for x in (o.alpha, o.beta, o.gamma)]
    alpha, beta, gamma = angles
    aavg = (alpha + beta + gamma) / 2
    skew = abs(math.sin(aavg) * math.sin(aavg - alpha) * math.sin(aavg - beta)
               * math.sin(aavg - gamma))
    volume = 2.0 * edges[0] * edges[1] * edges[2] * math.sqrt(skew)
    if not (volume > 0.0 and math.isfinite(volume)):
        shown = " ".join([f"{x:g}" for x in edges] + [f"{x * RTD:g}" for x in angles])
        raise UsageError(f"-cell {shown}: these edges and angles give no unit cell "
                         f"(volume {volume:g} A^3)")


def _cell_edges(o: Options) -> list[float] | None:
    """Real-space cell edges in Å from -cell, else from the -mat matrix (None if neither)."""
    if o.user_cell:
        return [o.cell_a, o.cell_b if o.cell_b > 0.0 else o.cell_a,
                o.cell_c if o.cell_c > 0.0 else o.cell_a]
    if o.matfilename is None:
        return None
    rows = np.array(nbio.read_mat(o.matfilename)) / (o.lambda0 * 1e10)  # 1/Å
    v_star = abs(float(np.linalg.det(rows)))
    return [float(np.linalg.norm(np.cross(rows[(i + 1) % 3], rows[(i + 2) % 3]))) / v_star
            for i in range(3)]


def _crystal_sizes(o: Options) -> list[float] | None:
    """Crystal edges in m as C sets them from N or -xtalsize (line 2075); None if unknown."""
    edges = _cell_edges(o)
    if edges is None:
        return None
    sizes = []
    for edge, sample, n, axis in zip(edges, (o.sample_x, o.sample_y, o.sample_z),
                                     (o.Na, o.Nb, o.Nc), "xyz", strict=True):
        if sample > 0.0:
            n = sample / (edge * 1e-10)
            if not n <= MAX_COUNT:
                raise UsageError(f"-xtalsize/-xtal_{axis} {sample * 1000:g}: {n:.3g} unit "
                                 f"cells along {axis} is too many")
            n = math.ceil(n)
        sizes.append(edge * 1e-10 * max(n, 1.0))
    return sizes


def _auto_oversample(o: Options, sizes: list[float]) -> float:
    """C's recommended oversampling, 3 x crystal size / reciprocal pixel size (line 2091)."""
    distance = o.distance if math.isnan(o.close_distance) else o.close_distance
    from .setup.rules import c_int_ceil

    return max(1.0, c_int_ceil(3.0 * max(sizes), o.lambda0 * distance / o.pixel_size))


def check_crystal(o: Options) -> None:
    """The crystal size must give a sane number of cells and of automatic sub-pixels."""
    sizes = _crystal_sizes(o)
    if sizes is None or o.oversample > 0:
        return
    recommended = _auto_oversample(o, sizes)
    if not recommended <= MAX_COUNT:
        raise UsageError(f"a crystal {max(sizes) * 1e6:g} um across needs {recommended:.3g}-fold "
                         "oversampling (more than nanoBragg.c's int holds); give -oversample")


def estimate_work(o: Options) -> float:
    """Sub-pixel evaluations of the run: pixels x sources x mosaic x phi x oversample² x layers.

    Call after :func:`validate`; an upper bound (the ROI, the mask and the round
    divergence cut are ignored).
    """
    fpixels, spixels = detector_shape(o)
    oversample = float(o.oversample)
    if oversample <= 0:
        sizes = _crystal_sizes(o)
        oversample = _auto_oversample(o, sizes) if sizes is not None else 1.0
    layers = 1
    if o.detector_thick > 0.0:
        layers = o.detector_thicksteps if o.detector_thicksteps > 0 else 2
    return (float(fpixels) * spixels * _source_count(o) * _mosaic_domains(o)
            * resolved_phisteps(o) * oversample**2 * layers)


# sub-pixel evaluations per second and thread of the CPU kernel (bench: 2-5e7);
# the low end, so that the time said is not less than the time taken
EVALUATIONS_PER_THREAD_S = 2e7
# a run estimated to take longer than this gets a warning that says how long
LONG_RUN_S = 600.0


def _duration(seconds: float) -> str:
    for unit, scale in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= 2 * scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def check_work(o: Options, threads: int | None = None) -> list[str]:
    """A warning (not a refusal) with the estimated time when the run is enormous."""
    if o.device == "cuda":
        return []  # the GPU's speed is not known here
    if threads is None:
        try:
            threads = int(os.environ.get("NUMBA_NUM_THREADS", "0")) or \
                len(os.sched_getaffinity(0))
        except (ValueError, AttributeError, OSError):
            threads = os.cpu_count() or 1
    try:
        work = estimate_work(o)
    except NbError:
        return []
    seconds = work / (EVALUATIONS_PER_THREAD_S * max(1, threads))
    if not seconds > LONG_RUN_S:
        return []
    fpixels, spixels = detector_shape(o)
    why = ""
    sizes = _crystal_sizes(o) if o.oversample <= 0 else None
    if sizes is not None and (auto := _auto_oversample(o, sizes)) > 1:
        why = (f"; the oversample is nanoBragg.c's automatic {auto:g} for a "
               f"{max(sizes) * 1e6:.3g} um crystal (-oversample 2 makes it "
               f"{auto * auto / 4:.3g} times faster)")
    return [f"warning: this run computes about {work:.3g} sub-pixel terms ({fpixels}x{spixels} "
            f"pixels x sources x mosaic domains x phi steps x oversample^2 x layers): "
            f"about {_duration(seconds)} on {threads} CPU thread(s){why}; Ctrl-C stops it"]


# --------------------------------------------------------------- input files

_TEXT_DELIMS = re.compile(rb"[ \t,;:!\r\n\v\f]+")  # read_text_file's separators, and line ends
_PLAIN_NUMBER_BYTES = b"0123456789+-.eE \t\n\v\f\r"


def _tokens(line: bytes, text_file: bool) -> list[bytes]:
    return [t for t in (_TEXT_DELIMS.split(line) if text_file else line.split()) if t]


def _bad_token(token: bytes) -> str | None:
    """Why ``token`` is not one finite number as strtod reads it, or None."""
    value, used = nbio.c_strtod(token)
    if used != len(token):
        return "is not a number"
    if not math.isfinite(value):
        return "is not a finite number"
    return None




def _plain_decimal_count(path: str) -> int | None:
    """How many numbers the file holds when every token is a plain finite decimal
    (nbnumba.textscan, exact and fast), else None: then check it line by line."""
    try:
        data = read_input(path, stop_at_nul=True)  # fscanf reads nothing after a NUL
    except (OSError, NbError):
        return None  # the line-by-line check reports it
    if data.translate(None, _PLAIN_NUMBER_BYTES):
        return None
    from .textscan import scan_decimals

    scanned = scan_decimals(data)
    return None if scanned is None else scanned[0].size


def _check_hkl(path: str) -> list[str]:
    """An hkl file as C's fscanf reads it: records up to the first word that is not a
    number (C stops there: a warning), none of them NaN or inf (C's image would be),
    and at least one h k l F record (else C exits: "not enough HKL indices")."""
    count = _plain_decimal_count(path)
    warnings: list[str] = []
    stopped = ""
    if count is None:
        count = 0
        data = read_input(path, stop_at_nul=True)  # fscanf reads nothing after a NUL
        for number, line in enumerate(data.split(b"\n"), start=1):
            for token in _tokens(line, text_file=False):
                why = _bad_token(token)
                if why == "is not a number":
                    stopped = f"line {number}: {shown(token)} is not a number"
                    warnings.append(f"warning: -hkl {path} {stopped}; nanoBragg.c stops reading "
                                    f"the file there ({count // 4} records read)")
                    break
                if why:
                    raise nbio.InputFileError(path, f"{shown(token)} {why} (nanoBragg.c's image "
                                              "would be NaN)", line=number)
                count += 1
            else:
                continue
            break
    if count < 4:
        why = "holds no h k l F record" if count == 0 else \
            f"holds only {count} number(s), not one h k l F record"
        # C's fscanf stops at the word: its table is empty and it exits (line 2174)
        raise nbio.InputFileError(path, why + (f" (nanoBragg.c stops at {stopped})"
                                               if stopped else ""))
    return warnings


def mat_problem(matrix: Any) -> str | None:
    """What makes a mosflm A matrix unusable, or None.

    Parameters
    ----------
    matrix : array_like, shape (3, 3)
        The nine numbers (any order of rows/columns: only finiteness and the determinant
        are judged).

    Returns
    -------
    str or None
        "the matrix holds NaN or inf", "the reciprocal cell vectors are coplanar
        (singular matrix)" (nanoBragg.c divides by the cell volume: inf/NaN everywhere),
        or None for a usable matrix.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if not np.isfinite(m).all():
        return "the matrix holds NaN or inf"
    if np.linalg.det(m) == 0.0:
        return "the reciprocal cell vectors are coplanar (singular matrix)"
    return None


def _check_mat(path: str) -> list[str]:
    """A mosflm matrix: nine finite numbers that are not a singular matrix."""
    why = mat_problem(np.array(nbio.read_mat(path)))
    if why:
        raise nbio.InputFileError(path, why)
    return []


def _comment_note(flag: str, path: str, o: Options, what: str) -> list[str]:
    """The warning for '#' comment lines of a text input (None when there are none)."""
    lines = nbio.comment_lines(read_input(path))
    if not lines:
        return []
    numbers = ", ".join(str(n) for n in lines[:3]) + (", ..." if len(lines) > 3 else "")
    count = f"{len(lines)} comment line{'s' if len(lines) > 1 else ''} (line {numbers})"
    if o.c_parity:
        return [f"warning: {flag} {path}: {count} read as nanoBragg.c reads them (-c_parity): "
                f"{what}"]
    return [f"warning: {flag} {path}: {count} skipped; nanoBragg.c reads each as {what} "
            "(-c_parity does that too)"]


def _hkl_independent(o: Options) -> bool:
    """Whether C's pixel value ignores h, k, l: a 1-cell square crystal with default_F only."""
    from .setup.rules import fdump_to_read

    no_table = o.hklfilename is None and fdump_to_read(o) is None
    return (no_table and o.xtal_shape == SQUARE and o.Na <= 1 and o.Nb <= 1
            and o.Nc <= 1)


def _check_sources(path: str, o: Options) -> list[str]:
    """A -sourcefile read as prepare reads it (C's reader; '#' lines skipped unless
    -c_parity).  A wavelength of 0 (or NaN/inf after C's defaults) makes C's scattering
    vectors infinite: refused where the image then depends on h, k, l (NaN image, or C
    indexes its F table with NaN)."""
    warnings = _comment_note("-sourcefile", path, o, "a source at the origin with "
                             "wavelength 0 and weight 0")
    columns = nbio.read_text_file(path, 5, skip_comments=not o.c_parity)
    if len(columns[0]) == 0:
        raise nbio.InputFileError(path, "holds no source lines (nanoBragg.c exits: \"reading "
                                  "source definition file\")")
    lam = np.where(np.isnan(columns[4]), o.lambda0, columns[4])
    bad = ~np.isfinite(lam) | (lam == 0.0)
    for axis in columns[:3]:
        bad |= np.isinf(axis)
    if bad.any() and not (o.dmin > 0.0 or _hkl_independent(o)):
        row = int(np.argmax(bad)) + 1
        raise nbio.InputFileError(path, f"source {row} has wavelength {lam[row - 1]:g} m (or "
                                  "an infinite position): nanoBragg.c's image would be NaN")
    if bad.any():
        warnings.append(f"warning: -sourcefile {path}: {int(bad.sum())} source(s) with "
                        "wavelength 0; nanoBragg.c computes them (finite here)")
    return warnings


def _check_stol(path: str, o: Options) -> list[str]:
    """A -stol/-4stol/-Q table: C exits when it holds no data line; the values are not used."""
    warnings = _comment_note("-stol/-4stol/-Q", path, o, "a data line stol 0, F 0")
    if not len(nbio.read_text_file(path, 2, skip_comments=not o.c_parity)[0]):
        raise nbio.InputFileError(path, "holds no data lines (nanoBragg.c exits: \"no data "
                                  "in input file\")")
    return warnings


_HEADER_KEYS = ("PIXEL_SIZE", "DISTANCE", "CLOSE_DISTANCE", "WAVELENGTH", "BEAM_CENTER_X",
                "BEAM_CENTER_Y", "ORGX", "ORGY", "PHI", "OSC_RANGE")


def _check_smv(path: str, o: Options) -> list[str]:
    """An -img/-mask file: an SMV header C can read, whose geometry values are finite.

    A file shorter than its pixels is kept: C reads -img for its header only and
    zero-fills both (cargs warns)."""
    frame = nbio.read_smv(path, allow_short=True)  # C zero-fills a short file
    header = frame.header.split("\0", 1)[0]
    for key in _HEADER_KEYS:
        if key in header:
            value = nbio.smv_value(header, key)
            if not math.isfinite(value):
                raise nbio.InputFileError(path, f"header value {key} is not a finite number")
    return []


def _flag_files(o: Options) -> list[tuple[str, str]]:
    files = [("-mask", o.maskfilename), ("-img", o.imginfilename), ("-mat", o.matfilename),
             ("-hkl", o.hklfilename), ("-sourcefile", o.sourcefilename),
             ("-stol", o.stolfilename)]
    return [(flag, name) for flag, name in files if name is not None]


def input_flag(o: Options, path: str) -> str | None:
    """The flag that named input file ``path``, for messages."""
    for flag, name in _flag_files(o):
        if os.fspath(name) == path:
            return flag
    if path == o.dumpfilename:
        return "-dump"
    return None


def check_input_files(o: Options) -> list[str]:
    """Every input file can be read and holds what C needs (raises InputFileError);
    returns warnings about what C reads differently from what the file means."""
    checks = {"-mask": _check_smv, "-img": _check_smv, "-mat": _check_mat,
              "-hkl": _check_hkl, "-sourcefile": _check_sources, "-stol": _check_stol}
    warnings: list[str] = []
    for flag, name in _flag_files(o):
        if not name:
            raise UsageError(f"{flag}: empty file name")
        if os.path.isdir(name):
            raise nbio.InputFileError(name, "is a folder, not a file")
        check = checks[flag]
        if flag in ("-img", "-mask") and not os.access(name, os.R_OK):
            continue  # C: perror() and runs without it (line 4226); cargs has warned
        warnings += check(name, o) if check in (_check_sources, _check_stol, _check_smv) \
            else check(name)
    return warnings


# --------------------------------------------------------------- output files

def output_paths(o: Options) -> list[tuple[str, str]]:
    """(flag, path) of every image file the run writes, in C's order."""
    paths = [("-floatfile", o.floatfilename), ("-intfile", o.intfilename)]
    if o.write_pgm:
        paths.append(("-pgmfile", o.pgmfilename))
    if o.calculate_noise:
        paths.append(("-noisefile", o.noisefilename))
    return paths


def check_outputs(o: Options) -> list[str]:
    """Each output can be created in its folder, and its writer is installed; refuses
    before the long computation."""
    if getattr(o, "cbffilename", None):
        from .extras import require

        require("-cbffile", "formats", "fabio")
    return check_output_files(output_paths(o))


def check_output_files(outputs: list[tuple[str, str]], program: str = "nanoBragg.c"
                       ) -> list[str]:
    """Each (flag, path) output can be created in its folder: not a folder, its folder
    exists and is writable. Raises :class:`OutputPathError` (exit 3) or
    :class:`UsageError` (an empty name); returns warnings for outputs named twice.
    Every program calls it before computing anything."""
    warnings: list[str] = []
    seen: dict[str, str] = {}
    for flag, path in outputs:
        if not path:
            raise UsageError(f"{flag}: empty file name")
        if path.endswith(os.sep) or os.path.isdir(path):
            raise OutputPathError(f"{flag} {path}: is a folder, not a file name")
        real = os.path.realpath(path)
        folder = os.path.dirname(real)
        if not os.path.isdir(folder):
            if os.path.islink(path):  # C's fopen writes through the link
                raise OutputPathError(f"{flag} {path}: a symlink to {os.readlink(path)}, "
                                      f"whose folder {folder} does not exist")
            raise OutputPathError(f"{flag} {path}: folder {os.path.dirname(path) or '.'} "
                                  "does not exist")
        if os.path.exists(real) and not os.path.isfile(real):
            if not os.access(real, os.W_OK):
                raise OutputPathError(f"{flag} {path}: not writable")
        elif not os.access(folder, os.W_OK | os.X_OK):
            raise OutputPathError(f"{flag} {path}: folder {os.path.dirname(path) or '.'} "
                                  "is not writable")
        if real in seen and not (os.path.exists(real) and not os.path.isfile(real)):
            warnings.append(f"warning: {flag} {path} is also the {seen[real]} file; "
                            f"as in {program} the {flag} image overwrites it")
        seen.setdefault(real, flag)
    return warnings


def check_outputs_not_inputs(o: Options) -> None:
    """No output may be an input file of the run, however it is spelled (links,
    ``..``, hard links): nanoBragg.c would overwrite the matrix or hkl file, ours the
    ``-geom``/``-expt`` file. Our outputs (:func:`nbnumba.formats.single.extra_outputs`,
    ``-crystfel_out``'s ``NAME.geom`` included) are checked too, and none of them may be
    one of C's image files (it would replace that image). Raises :class:`UsageError`."""
    from .formats.single import extra_outputs
    from .inputs import same_file

    inputs = list(_flag_files(o))
    if o.model_file:
        inputs.append((f"-{o.model_kind}", o.model_file))
    c_outputs = list(output_paths(o))
    ours = extra_outputs(o)
    outputs = c_outputs + ours
    from .setup.rules import fdump_to_read

    if o.hklfilename is not None and o.fdump:
        outputs.append(("-dump", o.dumpfilename))  # C writes the table there
    elif fdump_to_read(o) is not None:
        inputs.append(("-dump", o.dumpfilename))  # C reads the table from there
    for oflag, opath in outputs:
        for iflag, ipath in inputs:
            if opath and ipath and (oflag, opath) != (iflag, ipath) and same_file(opath, ipath):
                raise UsageError(f"{_output_named(o, oflag, opath)}: that is the {iflag} "
                                 f"input file {ipath}; an output must not overwrite an input "
                                 "of the run")
    for oflag, opath in ours:
        for cflag, cpath in c_outputs:
            if opath and cpath and _one_file(opath, cpath):
                raise UsageError(f"{_output_named(o, oflag, opath)}: that is the {cflag} "
                                 f"output file {cpath}; two outputs must not write one file")


def _output_named(o: Options, flag: str, path: str) -> str:
    """How a message names an output: ``-crystfel_out NAME.h5 (its NAME.geom)`` for the
    geometry file the user did not name."""
    if flag == "-crystfel_out" and path != o.crystfel_out:
        return f"{flag} {o.crystfel_out} (its {path})"
    if flag == "-geometry_out":
        return f"{flag} {o.geometry_out} (its {path})"
    return f"{flag} {path}"


def _one_file(a: str, b: str) -> bool:
    """Whether two output names write one regular file (existing or not); a device such
    as /dev/null may be named twice."""
    from .inputs import same_file

    ra, rb = os.path.realpath(a), os.path.realpath(b)
    if ra == rb:
        return not (os.path.exists(ra) and not os.path.isfile(ra))
    return same_file(a, b)


# -------------------------------------------------------------------- memory

def _hkl_table_bytes(o: Options) -> tuple[float, str]:
    """Bytes of the structure-factor table (held twice: the table and the kernel's flat
    copy) and of the hkl file's text; 0 when the file is not plain numbers."""
    if o.hklfilename is None:
        try:
            from .setup.rules import fdump_to_read

            if fdump_to_read(o) is not None:
                return 2.0 * os.path.getsize(o.dumpfilename), f"the {o.dumpfilename} table"
        except OSError:
            pass
        return 0.0, ""
    try:
        data = read_input(o.hklfilename, stop_at_nul=True)
    except (OSError, NbError):
        return 0.0, ""
    if data.translate(None, _PLAIN_NUMBER_BYTES):
        return float(len(data)), f"the -hkl file {o.hklfilename}"
    from .textscan import scan_decimals

    scanned = scan_decimals(data)
    n = 0 if scanned is None else scanned[0].size // 4
    if n == 0:
        return float(len(data)), f"the -hkl file {o.hklfilename}"
    hkl = scanned[0][:4 * n].reshape(n, 4)[:, :3]
    spans = np.trunc(hkl.max(axis=0)) - np.trunc(hkl.min(axis=0)) + 2.0  # C's range+1
    cells = float(np.prod(spans))
    shape = "x".join(f"{x:.0f}" for x in spans)
    return 2 * 8 * cells + len(data), f"the {shape} -hkl table of {o.hklfilename}"


def memory_parts(o: Options) -> dict[str, float]:
    """What the run's memory goes to, in bytes, by what to blame (flags, files)."""
    fpixels, spixels = detector_shape(o)
    nphi = resolved_phisteps(o)
    nmos = _mosaic_domains(o)
    nsrc = _source_count(o)
    table, table_what = _hkl_table_bytes(o)
    parts = {
        f"a {fpixels}x{spixels}-pixel detector": float(fpixels) * spixels * BYTES_PER_PIXEL,
        f"{nphi:g} phi step(s) x {nmos} mosaic domain(s) (-phisteps/-osc, -mosaic_dom)":
            nphi * nmos * 2 * 9 * 8 + nmos * 400.0 + nphi * 600.0,
        f"{nsrc:g} source(s) (-divsteps/-dispsteps)": nsrc * 600.0,
    }
    if table_what:
        parts[table_what] = table
    return parts


def estimate_bytes(o: Options) -> int:
    """Peak memory a run needs, in bytes (pixels dominate; φ × mosaic, sources and the
    hkl table add)."""
    total = BASE_BYTES + sum(memory_parts(o).values())
    return int(min(total, 2.0**62))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """What is left under a cgroup v2 memory limit (containers), if there is one."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((line.split(":", 2)[2].strip() for line in f
                        if line.startswith("0::")), None)
        if rel is None:
            return None
        base = os.path.join("/sys/fs/cgroup", rel.lstrip("/"))
        with open(os.path.join(base, "memory.max")) as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(base, "memory.current")) as f:
            current = int(f.read().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError, StopIteration):
        return None


def available_bytes() -> int | None:
    """Memory this process can still get, in bytes (None when unknown)."""
    values = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(values) if values else None


def _size(n: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 2**10:.1f} KiB"


def check_memory(o: Options) -> None:
    """Refuse a run whose images would not fit in the memory available now."""
    need = estimate_bytes(o)
    have = available_bytes()
    if have is not None and need > have:
        parts = memory_parts(o)
        blame = max(parts, key=parts.__getitem__)  # what the memory goes to, mostly
        raise ResourceError(f"the run needs about {need} bytes ({_size(need)}, mostly for "
                            f"{blame}: {_size(parts[blame])}) but only {have} bytes "
                            f"({_size(have)}) of memory are available")


# ----------------------------------------------------------------------- all

def check_device(o: Options, engine: str = "auto") -> list[str]:
    """An engine exists for the request (:func:`nbnumba.engines.select`): ``-device cuda``
    needs a usable GPU, ``-precision single`` a GPU engine, ``-c_parity`` an exact one
    (or, on the GPU, a warning); returns that warning, if any."""
    from .engines import parity_note, select

    if engine == "auto":
        engine = o.engine
    chosen = select(engine, device=o.device, exact=bool(o.c_parity), precision=o.precision)
    note = parity_note(chosen, bool(o.c_parity))
    return [note] if note else []


def validate(o: Options, parse_warnings: list[str], engine: str = "auto") -> list[str]:
    """All checks, cheapest first; returns extra warnings, raises on the first error.

    Raises :class:`ValidationError` (its ``exit_code``) or
    :class:`nbnumba.io.InputFileError` (exit code 3).
    """
    warnings = validate_inputs(o, parse_warnings)
    with nonfinite_as_usage(o):
        warnings += check_outputs(o)
        check_outputs_not_inputs(o)
        check_memory(o)
        warnings += check_device(o, engine)
    return warnings


def validate_inputs(o: Options, parse_warnings: list[str]) -> list[str]:
    """The checks of the flags' values and the input files, not of outputs, memory or GPU:
    what a series makes once on the client before any frame is sent to a worker."""
    check_parse_warnings(parse_warnings)
    warnings = check_input_files(o)
    with nonfinite_as_usage(o):
        warnings += check_options(o)
        check_crystal(o)
        return warnings + check_work(o)


@contextlib.contextmanager
def nonfinite_as_usage(o: Options) -> Iterator[None]:
    """A check or setup step that fails on an inf/NaN flag value (math domain, overflow)
    raises the non-finite usage error instead (:func:`not_finite_error`)."""
    try:
        yield
    except (ValueError, ArithmeticError) as exc:
        suspects = nonfinite_flags(o)
        if not suspects or isinstance(exc, NbError):
            raise
        raise not_finite_error(suspects, "nanoBragg.c's setup cannot use it") from None


def not_finite_error(suspects: list[tuple[str, float]], why: str) -> UsageError:
    """The error for flags given inf/NaN (:func:`nonfinite_flags`), with the reason."""
    given = ", ".join(f"{flag}: {v:g}" for flag, v in suspects)
    return UsageError(f"{given} is not a finite number; {why}")
