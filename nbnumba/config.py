"""Run options: every variable nanoBragg.c's command line can set, as C stores it.

Field names are nanoBragg.c's variable names, defaults are C's initial values
(nanoBragg.c lines 137-150 and 181-397) and values are in C's internal units
after the argv loop's conversion (metres, radians, m^-1 ...), so code ported
from C can read them unchanged.  C's 4-element vectors ``v[0..3]`` become
3-tuples of ``v[1..3]``.  C's int flags stay ints (``interpolate`` has three
states).  The post-loop logic (conventions overriding vectors and pivot, phi
and oversampling defaults) is not applied here; see ``specs/cli.md``.

Each field's ``metadata["unit"]`` names its unit ("" for dimensionless,
"flag", "path", ...).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is only needed for the annotation
    import numpy as np

# C enum values, kept as plain strings so they print and compare simply.
SAMPLE = "SAMPLE"
BEAM = "BEAM"
PIVOTS = (SAMPLE, BEAM)

CUSTOM = "CUSTOM"
ADXV = "ADXV"
MOSFLM = "MOSFLM"
XDS = "XDS"
DIALS = "DIALS"
DENZO = "DENZO"
CONVENTIONS = (CUSTOM, ADXV, MOSFLM, XDS, DIALS, DENZO)

SQUARE = "SQUARE"
ROUND = "ROUND"
GAUSS = "GAUSS"
TOPHAT = "TOPHAT"
SHAPES = (SQUARE, ROUND, GAUSS, TOPHAT)

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("single", "double")

NAN = math.nan
Vec3 = tuple[float, float, float]


def _f(default: Any, unit: str) -> Any:
    """A dataclass field with its unit recorded in the metadata."""
    return field(default=default, metadata={"unit": unit})


def _time_seed() -> int:
    # C: seed = -time((time_t *)0);
    return -int(time.time())


@dataclass
class Options:
    """nanoBragg.c's command-line state after the -img/-mask pre-read and the argv loop."""

    # progress and console output
    progress_meter: int = _f(1, "flag")
    printout: int = _f(0, "flag")
    printout_fpixel: int = _f(-1, "pixel")
    printout_spixel: int = _f(-1, "pixel")

    # x-ray beam
    beam_vector: Vec3 = _f((1.0, 0.0, 0.0), "unit vector")
    coherent: int = _f(0, "flag")
    round_div: int = _f(1, "flag")
    mosaic_spread: float = _f(-1.0, "rad")
    dispersion: float = _f(0.0, "fraction (delta-lambda/lambda)")
    lambda0: float = _f(1.0e-10, "m")
    hdivstep: float = _f(-1.0, "rad")
    hdivrange: float = _f(-1.0, "rad")
    vdivstep: float = _f(-1.0, "rad")
    vdivrange: float = _f(-1.0, "rad")
    divsteps: int = _f(-1, "count")  # declared by C, never set by a flag
    hdivsteps: int = _f(-1, "count")
    vdivsteps: int = _f(-1, "count")
    dispsteps: int = _f(-1, "count")
    mosaic_domains: int = _f(-1, "count")
    fluence: float = _f(125932015286227086360700780544.0, "photons/m^2")
    flux: float = _f(0.0, "photons/s")
    exposure: float = _f(1.0, "s")
    beamsize: float = _f(1e-4, "m")

    # crystal
    Na: float = _f(1.0, "unit cells")
    Nb: float = _f(1.0, "unit cells")
    Nc: float = _f(1.0, "unit cells")
    xtal_shape: str = _f(SQUARE, "enum")
    fudge: float = _f(1.0, "")
    sample_x: float = _f(0.0, "m")
    sample_y: float = _f(0.0, "m")
    sample_z: float = _f(0.0, "m")
    density: float = _f(1.0e6, "g/m^3")
    molecular_weight: float = _f(18.0, "g/mol")
    water_size: float = _f(0.0, "m")
    user_cell: int = _f(0, "flag")
    cell_a: float = _f(0.0, "Angstrom")  # C's a[0]
    cell_b: float = _f(0.0, "Angstrom")  # C's b[0]
    cell_c: float = _f(0.0, "Angstrom")  # C's c[0]
    alpha: float = _f(0.0, "rad")
    beta: float = _f(0.0, "rad")
    gamma: float = _f(0.0, "rad")
    misset_flag: int = _f(0, "0 none, 1 angles, -1 random")  # C's misset[0]
    misset_angles: Vec3 = _f((0.0, 0.0, 0.0), "rad")  # C's misset[1..3]

    # detector
    pixel_size: float = _f(0.1e-3, "m")
    fpixels: int = _f(0, "pixels")
    spixels: int = _f(0, "pixels")
    distance: float = _f(100.0e-3, "m")
    detsize_f: float = _f(102.4e-3, "m")
    detsize_s: float = _f(102.4e-3, "m")
    detector_mu: float = _f(-1.0, "1/m")
    detector_thick: float = _f(0.0, "m")
    detector_thickstep: float = _f(-1.0, "m")  # never set by a flag
    detector_thicksteps: int = _f(-1, "count")
    fdet_vector: Vec3 = _f((0.0, 0.0, 1.0), "unit vector")
    sdet_vector: Vec3 = _f((0.0, -1.0, 0.0), "unit vector")
    odet_vector: Vec3 = _f((1.0, 0.0, 0.0), "unit vector")
    pix0_vector: Vec3 = _f((0.0, 0.0, 0.0), "m (as given; C recomputes it)")
    pix0_vector_given: bool = _f(False, "flag")  # C's pix0_vector[0]
    detector_rotx: float = _f(0.0, "rad")
    detector_roty: float = _f(0.0, "rad")
    detector_rotz: float = _f(0.0, "rad")
    twotheta_axis: Vec3 = _f((0.0, 1.0, 0.0), "unit vector")
    detector_pivot: str = _f(BEAM, "enum")
    beam_convention: str = _f(MOSFLM, "enum")
    detector_twotheta: float = _f(0.0, "rad")
    curved_detector: int = _f(0, "flag")
    point_pixel: int = _f(0, "flag")
    Xbeam: float = _f(NAN, "m")
    Ybeam: float = _f(NAN, "m")
    Xclose: float = _f(NAN, "m")
    Yclose: float = _f(NAN, "m")
    close_distance: float = _f(NAN, "m")
    ORGX: float = _f(NAN, "pixels")
    ORGY: float = _f(NAN, "pixels")
    adc_offset: float = _f(40.0, "ADU")

    # diffraction, polarization, sampling
    dmin: float = _f(0.0, "m")
    polar_vector: Vec3 = _f((0.0, 0.0, 1.0), "unit vector")
    polarization: float = _f(0.0, "Kahn factor")
    nopolar: int = _f(0, "flag")
    roi_xmin: int = _f(-1, "pixel")
    roi_xmax: int = _f(-1, "pixel")
    roi_ymin: int = _f(-1, "pixel")
    roi_ymax: int = _f(-1, "pixel")
    oversample: int = _f(-1, "sub-pixels per pixel edge")
    oversample_thick: int = _f(0, "flag")
    oversample_polar: int = _f(0, "flag")
    oversample_omega: int = _f(0, "flag")

    # spindle
    phi0: float = _f(0.0, "rad")
    phistep: float = _f(-1.0, "rad")
    osc: float = _f(-1.0, "rad")
    phisteps: int = _f(-1, "count")
    spindle_vector: Vec3 = _f((0.0, 0.0, 1.0), "unit vector")

    # structure factors
    default_F: float = _f(0.0, "electrons")
    stol_file_mult: float = _f(1.0e10, "1/m per file unit")
    interpolate: int = _f(2, "0 off, 1 on, 2 auto")

    # output scaling
    intfile_scale: float = _f(0.0, "")
    pgm_scale: float = _f(0.0, "")
    calculate_noise: int = _f(1, "flag")
    write_pgm: int = _f(1, "flag")

    # random seeds (C negates the user's value)
    seed: int = field(default_factory=_time_seed, metadata={"unit": "seed"})
    mosaic_seed: int = _f(-12345678, "seed")
    misset_seed: int | None = _f(None, "seed")  # None: copy of seed, as C does

    # file names (nanoBragg.c lines 137-150)
    matfilename: str | None = _f(None, "path")
    hklfilename: str | None = _f(None, "path")
    dumpfilename: str = _f("Fdump.bin", "path")
    stolfilename: str | None = _f(None, "path")
    stoloutfilename: str = _f("output.stol", "path")
    imginfilename: str | None = _f(None, "path")
    maskfilename: str | None = _f(None, "path")
    sourcefilename: str | None = _f(None, "path")
    floatfilename: str = _f("floatimage.bin", "path")
    intfilename: str = _f("intimage.img", "path")
    pgmfilename: str = _f("image.pgm", "path")
    noisefilename: str = _f("noiseimage.img", "path")

    # -mask pixels (flat, fpixels*spixels of the mask file; 0 = skip pixel), or None
    mask_image: np.ndarray | None = field(default=None, repr=False, compare=False,
                                          metadata={"unit": "uint16"})
    # the mask file's width (SIZE1), to say when its layout differs from the detector's
    mask_fpixels: int = field(default=0, repr=False, compare=False, metadata={"unit": "pixel"})

    # our own options (not nanoBragg.c's)
    c_parity: bool = _f(False, "flag")
    device: str = _f("auto", "enum")
    precision: str = _f("double", "enum")
    engine: str = _f("auto", "enum")  # nbnumba.engines: auto, exact, vectorised, cuda
    trace_pixel: tuple[int, int] | None = _f(None, "pixel (slow, fast)")
    quiet: bool = _f(False, "flag")
    geometry_out: str | None = _f(None, "path prefix (NAME.XDS.INP, NAME.poni)")
    cbffilename: str | None = _f(None, "path (miniCBF image)")
    expt_out: str | None = _f(None, "path (DIALS experiment list, .expt)")

    def __post_init__(self) -> None:
        # C: long misset_seed = seed;  (taken before argv is read)
        if self.misset_seed is None:
            self.misset_seed = self.seed


def unit_of(name: str) -> str:
    """The unit recorded for an Options field."""
    for f in fields(Options):
        if f.name == name:
            return f.metadata.get("unit", "")
    raise KeyError(name)
