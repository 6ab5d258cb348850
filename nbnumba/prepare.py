"""From parsed options to the arrays a kernel needs, printing what nanoBragg.c prints.

This follows nanoBragg.c's ``main`` from the end of the argv loop (line 1110)
to the start of the pixel loop (line 2525) step by step and in the same
order, because the stdout summary is part of the contract and because many
settings depend on the order C resolves them in.  Line numbers refer to
nanoBragg.c (bl831/nanoBragg, 8-10-25 header).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import geometry as g
from . import rules
from .config import Options
from .constants import AVOGADRO, DBL_MIN, R_E_SQR, RTD, WATER_F, WATER_MW
from .errors import SetupExit
from .kernels.params import KernelParams

SHAPES = {"SQUARE": 0, "ROUND": 1, "GAUSS": 2, "TOPHAT": 3}
SHAPE_WORDS = {"ROUND": "ellipsoidal", "SQUARE": "parallelpiped", "GAUSS": "gaussian",
               "TOPHAT": "tophat-spot"}


@dataclass
class Scene:
    """Everything the kernel and the writers need, resolved as C resolves it."""

    params: KernelParams
    det: np.ndarray  # (6, 3) fdet, sdet, odet, pix0, beam, polar vectors
    sources: np.ndarray  # (n, 4) unit source direction X, Y, Z and lambda (m)
    cells: np.ndarray  # (2, phisteps, mosaic_domains, 3, 3) real cell vectors (m)
    a_star: np.ndarray  # (3, 3) unrotated reciprocal vectors (1/Å), for round/gauss/tophat
    fhkl: np.ndarray  # (h_range+1, k_range+1, l_range+1) structure factors
    mask: np.ndarray  # flat uint16 mask, or empty
    interpolate: bool
    fpixels: int
    spixels: int
    roi: tuple[int, int, int, int]  # C's roi_xmin, roi_xmax, roi_ymin, roi_ymax
    header: dict  # SMV header geometry (C's internal units)
    opts: Options
    phi_values: list[float] = field(default_factory=list)  # rad
    first_pass_differs: bool = False
    spindle_vector: tuple = (0.0, 0.0, 1.0)  # unit rotation axis after C's conventions

    @property
    def row_range(self) -> tuple[int, int]:
        return max(self.roi[2], 0), min(self.roi[3], self.spixels - 1) + 1

    @property
    def col_range(self) -> tuple[int, int]:
        return max(self.roi[0], 0), min(self.roi[1], self.fpixels - 1) + 1


def prepare(o: Options, out: Callable[[str], None], warn: Callable[[str], None],
            rng=None) -> Scene:
    """Resolve options into a :class:`Scene`, printing C's stdout lines through ``out``."""
    from .inputs import stream_warnings

    for line in stream_warnings([("-hkl", o.hklfilename), ("-sourcefile", o.sourcefilename),
                                 ("-stol", o.stolfilename)]):
        warn(line)
    pixel_size = o.pixel_size
    # fill in blanks (line 1112)
    detsize_f, detsize_s, fpixels, spixels = rules.detector_size(o)

    beamsize = o.beamsize
    sample_x, sample_y, sample_z = o.sample_x, o.sample_y, o.sample_z
    fluence = rules.fluence(o)
    if beamsize >= 0:
        if beamsize < sample_y:
            out(f"WARNING: clipping sample ({sample_y:g} m high) with beam ({beamsize:g} m)\n")
            sample_y = beamsize
        if beamsize < sample_z:
            out(f"WARNING: clipping sample ({sample_z:g} m wide) with beam ({beamsize:g} m)\n")
            sample_z = beamsize

    nan = math.isnan
    Xbeam, Ybeam = o.Xbeam, o.Ybeam
    Xclose, Yclose = o.Xclose, o.Yclose
    ORGX, ORGY = o.ORGX, o.ORGY
    Fclose = Sclose = Fbeam = Sbeam = math.nan
    if not nan(ORGX):
        Fclose = (ORGX - 0.5) * pixel_size
    if not nan(ORGY):
        Sclose = (ORGY - 0.5) * pixel_size
    if nan(Fclose):
        Fclose = (detsize_f - 0 * pixel_size) / 2.0
    if nan(Sclose):
        Sclose = (detsize_s + 0 * pixel_size) / 2.0
    if nan(Xclose):
        Xclose = Fclose
    if nan(Yclose):
        Yclose = Sclose
    if nan(Fbeam):
        Fbeam = Fclose
    if nan(Sbeam):
        Sbeam = Sclose
    roi_xmin, roi_xmax, roi_ymin, roi_ymax = o.roi_xmin, o.roi_xmax, o.roi_ymin, o.roi_ymax
    if roi_xmin < 0:
        roi_xmin = 0
    if roi_xmax < 0:
        roi_xmax = fpixels
    if roi_ymin < 0:
        roi_ymin = 0
    if roi_ymax < 0:
        roi_ymax = spixels

    beam_vector = g.vec(*o.beam_vector)
    fdet_vector = g.vec(*o.fdet_vector)
    sdet_vector = g.vec(*o.sdet_vector)
    odet_vector = g.vec(*o.odet_vector)
    twotheta_axis = g.vec(*o.twotheta_axis)
    polar_vector = g.vec(*o.polar_vector)
    spindle_vector = g.vec(*o.spindle_vector)
    detector_pivot = o.detector_pivot
    conv = o.beam_convention

    def set_vectors(beam, fdet, sdet, odet, twotheta, polar, spindle):
        beam_vector[1:] = beam
        fdet_vector[1:] = fdet
        sdet_vector[1:] = sdet
        odet_vector[1:] = odet
        twotheta_axis[1:] = twotheta
        polar_vector[1:] = polar
        spindle_vector[1:] = spindle

    # conventions (line 1162)
    if conv == "ADXV":
        if nan(Xbeam):
            Xbeam = (detsize_f + pixel_size) / 2.0
        if nan(Ybeam):
            Ybeam = (detsize_s - pixel_size) / 2.0
        set_vectors([0, 0, 1], [1, 0, 0], [0, -1, 0], [0, 0, 1], [-1, 0, 0], [1, 0, 0],
                    [1, 0, 0])
        Fbeam = Xbeam
        Sbeam = detsize_s - Ybeam
        detector_pivot = "BEAM"
    if conv in ("MOSFLM", "DENZO"):
        # DENZO is MOSFLM without the half-pixel shift of the beam centre
        half_pixel = 0.5 if conv == "MOSFLM" else 0.0
        if nan(Xbeam):
            Xbeam = (detsize_s + pixel_size) / 2.0
        if nan(Ybeam):
            Ybeam = (detsize_f + pixel_size) / 2.0
        set_vectors([1, 0, 0], [0, 0, 1], [0, -1, 0], [1, 0, 0], [0, 0, -1], [0, 0, 1],
                    [0, 0, 1])
        Fbeam = Ybeam + half_pixel * pixel_size
        Sbeam = Xbeam + half_pixel * pixel_size
        detector_pivot = "BEAM"
    if conv in ("XDS", "DIALS"):
        if nan(Xbeam):
            Xbeam = Xclose
        if nan(Ybeam):
            Ybeam = Yclose
        # the two differ only in the rotation axes (twotheta, polarization, spindle)
        axis = [1, 0, 0] if conv == "XDS" else [0, 1, 0]
        set_vectors([0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], axis, axis, axis)
        Fbeam = Xbeam
        Sbeam = Ybeam
        detector_pivot = "SAMPLE"
    if conv == "CUSTOM":
        if nan(Xbeam):
            Xbeam = Xclose
        if nan(Ybeam):
            Ybeam = Yclose
        Fbeam = Xbeam
        Sbeam = Ybeam
        Fclose = Xbeam
        Sclose = Ybeam
    for v in (beam_vector, fdet_vector, sdet_vector, odet_vector, twotheta_axis, polar_vector,
              spindle_vector):
        for i in (1, 2, 3):
            v[i] = float(v[i])

    # straighten up vectors (line 1262)
    g.unitize(beam_vector, beam_vector)
    g.unitize(fdet_vector, fdet_vector)
    g.unitize(sdet_vector, sdet_vector)
    if g.unitize(odet_vector, odet_vector) != 1.0:
        out("WARNING: auto-generating odet_vector\n")
        g.cross_product(fdet_vector, sdet_vector, odet_vector)
        g.unitize(odet_vector, odet_vector)
    g.unitize(polar_vector, polar_vector)
    g.unitize(spindle_vector, spindle_vector)
    vert_vector = g.cross_product(beam_vector, polar_vector, g.vec(0, 0, 0))
    g.unitize(vert_vector, vert_vector)

    out("nanoBragg nanocrystal diffraction simulator - James Holton and Ken Frankel 5-17-17\n")

    # where do structure factors come from (line 1277)
    default_F = o.default_F
    dump_exists = False
    if o.hklfilename is None:
        dump_exists = os.path.isfile(o.dumpfilename) and os.access(o.dumpfilename, os.R_OK)
        if not dump_exists and default_F == 0.0:
            # C prints its usage right after this, without a newline; we end the line
            out("ERROR: no hkl file and no dump file to read.\n")
    if ((o.hklfilename is None and not dump_exists and default_F == 0.0)
            or (o.matfilename is None and o.cell_a == 0.0)):
        raise SetupExit("need -hkl (or a Fdump.bin, or -default_F) and -mat (or -cell); "
                        "nanobragg-nb -h lists every flag")

    # phi sampling (line 1389)
    phi0 = o.phi0
    phisteps, osc, phistep = rules.phi_sampling(o.phisteps, o.osc, o.phistep)

    hdivsteps, hdivrange, hdivstep = rules.pick_steps(o.hdivsteps, o.hdivrange, o.hdivstep, 1.0)
    vdivsteps, vdivrange, vdivstep = rules.pick_steps(o.vdivsteps, o.vdivrange, o.vdivstep, 1.0)
    # C has no flag for the dispersion step: it stays at its initial -1 (line 198)
    dispsteps, dispersion, dispstep = rules.pick_steps(o.dispsteps, o.dispersion, -1.0, 1.0)

    # detector thickness sampling (line 1580): differs from the others in two places
    thicksteps, thick, thickstep = rules.thickness_sampling(
        o.detector_thicksteps, o.detector_thick, o.detector_thickstep)
    detector_mu = o.detector_mu
    if thick > 0.0 and detector_mu < 0.0:
        detector_mu = 1.0 / thick
        out(f"WARNING: setting detector attenuation depth to {detector_mu:g} m\n")

    mosaic_spread, mosaic_domains, message = rules.mosaic_sampling(o.mosaic_spread,
                                                                   o.mosaic_domains)
    if message:
        out(message)

    # sanity checks (line 1660)
    if hdivrange <= 0.0 or hdivstep <= 0.0 or hdivsteps <= 0:
        hdivsteps, hdivrange, hdivstep = 1, 0.0, 0.0
    if vdivrange <= 0.0 or vdivstep <= 0.0 or vdivsteps <= 0:
        vdivsteps, vdivrange, vdivstep = 1, 0.0, 0.0
    if dispersion <= 0.0 or dispstep <= 0.0 or dispsteps <= 0:
        dispsteps, dispersion, dispstep = 1, 0.0, 0.0
    if thick <= 0.0 or thickstep <= 0.0 or thicksteps <= 0:
        thicksteps, thick, thickstep = 1, 0.0, 0.0

    out(conv.lower() + " convention selected.\n")

    # detector placement (line 1690)
    detector_rotx, detector_roty, detector_rotz = (o.detector_rotx, o.detector_roty,
                                                   o.detector_rotz)
    detector_twotheta = o.detector_twotheta
    distance = o.distance
    close_distance = o.close_distance
    vector = g.rotate(odet_vector, g.vec(0, 0, 0), detector_rotx, detector_roty, detector_rotz)
    ratio = g.dot_product(beam_vector, vector)
    if ratio == 0.0:
        ratio = DBL_MIN
    if nan(close_distance):
        close_distance = abs(ratio * distance)
    distance = close_distance / ratio

    pix0_vector = g.vec(0, 0, 0)
    if detector_pivot == "SAMPLE":
        out("pivoting detector around sample\n")
        for i in (1, 2, 3):
            pix0_vector[i] = (-Fclose * fdet_vector[i] - Sclose * sdet_vector[i]
                              + close_distance * odet_vector[i])
        g.rotate(pix0_vector, pix0_vector, detector_rotx, detector_roty, detector_rotz)
        g.rotate_axis(pix0_vector, pix0_vector, twotheta_axis, detector_twotheta)
    for v in (fdet_vector, sdet_vector, odet_vector):
        g.rotate(v, v, detector_rotx, detector_roty, detector_rotz)
    for v in (fdet_vector, sdet_vector, odet_vector):
        g.rotate_axis(v, v, twotheta_axis, detector_twotheta)
    if detector_pivot == "BEAM":
        out("pivoting detector around direct beam spot\n")
        for i in (1, 2, 3):
            pix0_vector[i] = (-Fbeam * fdet_vector[i] - Sbeam * sdet_vector[i]
                              + distance * beam_vector[i])

    Fclose = -g.dot_product(pix0_vector, fdet_vector)
    Sclose = -g.dot_product(pix0_vector, sdet_vector)
    close_distance = g.dot_product(pix0_vector, odet_vector)
    newvector = g.vec(0, 0, 0)
    for i in (1, 2, 3):
        newvector[i] = close_distance / ratio * beam_vector[i] - pix0_vector[i]
    Fbeam = g.dot_product(fdet_vector, newvector)
    Sbeam = g.dot_product(sdet_vector, newvector)
    distance = close_distance / ratio

    ORGX = Fclose / pixel_size + 0.5
    ORGY = Sclose / pixel_size + 0.5
    dials_origin = [
        1000.0 * g.dot_product(pix0_vector, g.vec(0, 0, 1)),
        1000.0 * g.dot_product(pix0_vector, g.vec(0, 1, 0)),
        1000.0 * g.dot_product(pix0_vector, g.vec(-1, 0, 0)),
    ]
    xb = g.dot_product(beam_vector, fdet_vector)
    yb = g.dot_product(beam_vector, sdet_vector)
    zb = g.dot_product(beam_vector, odet_vector)
    out(f"XDS incident beam: {xb:g} {yb:g} {zb:g}\n")

    Na, Nb, Nc = float(o.Na), float(o.Nb), float(o.Nc)
    interpolate = o.interpolate
    if interpolate > 1:
        if Na <= 2 or Nb <= 2 or Nc <= 2:
            out("auto-selected tricubic interpolation of structure factors\n")
            interpolate = 1
        else:
            out("auto-selected no interpolation\n")
            interpolate = 0

    lambda0 = o.lambda0
    cell = _build_cell(o, lambda0, out, rng)
    a, b, c, a_star, b_star, c_star = cell

    # crystal size (line 2075)
    if sample_x > 0:
        Na = float(math.ceil(sample_x / a[0]))
    if sample_y > 0:
        Nb = float(math.ceil(sample_y / b[0]))
    if sample_z > 0:
        Nc = float(math.ceil(sample_z / c[0]))
    if Na <= 1.0:
        Na = 1.0
    if Nb <= 1.0:
        Nb = 1.0
    if Nc <= 1.0:
        Nc = 1.0
    xtalsize_a = a[0] * Na
    xtalsize_b = b[0] * Nb
    xtalsize_c = c[0] * Nc
    out(f"crystal is {xtalsize_a * 1e6:g} x {xtalsize_b * 1e6:g} x {xtalsize_c * 1e6:g} "
        "microns\n")
    xtalsize_max = max(xtalsize_a, xtalsize_b, xtalsize_c)
    reciprocal_pixel_size = lambda0 * distance / pixel_size
    recommended_oversample = rules.c_int_ceil(3.0 * xtalsize_max, reciprocal_pixel_size)
    if recommended_oversample <= 0:
        recommended_oversample = 1
    oversample = o.oversample
    if oversample <= 0:
        oversample = recommended_oversample
        out(f"auto-selected {oversample}-fold oversampling\n")
    if oversample < recommended_oversample:
        out(f"WARNING: maximum dimension of sample is {xtalsize_max * 1e10:g} A\n")
        out(f"         but reciprocal pixel size is {reciprocal_pixel_size * 1e10:g} A\n")
        out("         intensity may vary significantly across a pixel!\n")
        out(f"         recommend -oversample {recommended_oversample} to work around this\n")

    volume = xtalsize_a * xtalsize_b * xtalsize_c
    molecules = Na * Nb * Nc
    molecular_weight = volume * 1.2e6 * AVOGADRO / molecules
    out(f"approximate MW = {molecular_weight:g}\n")

    table = _load_structure_factors(o, default_F, dump_exists, out, warn)
    if table.hkls == 0:
        interpolate = 0

    if o.stolfilename is not None:
        from .io import read_text_file

        out(f"reading {o.stolfilename}\n")
        columns = read_text_file(o.stolfilename, 2, skip_comments=not o.c_parity)
        if len(columns[0]) == 0:
            raise SetupExit(f"no data in input file {o.stolfilename}")
        warn("warning: -stol/-4stol/-Q data is read but, as in nanoBragg.c, "
             "not used by the simulation")

    for thick_tic in range(thicksteps):
        out(f"thick{thick_tic} = {thickstep * thick_tic * 1e6:g} um\n")
    phi_values = []
    for phi_tic in range(phisteps):
        phi = phi0 + phistep * phi_tic
        phi_values.append(phi)
        out(f"phi{phi_tic} = {phi * RTD:g}\n")

    sources, divsteps = _build_sources(o, beam_vector, polar_vector, vert_vector, lambda0,
                                       hdivsteps, hdivrange, hdivstep, vdivsteps, vdivrange,
                                       vdivstep, dispsteps, dispersion, dispstep, out)

    umats = _mosaic_umats(o, mosaic_spread, mosaic_domains, rng)
    out(f"  created a total of {mosaic_domains} mosaic domains\n")

    if oversample <= 0:
        oversample = 1
    steps = len(sources) * mosaic_domains * phisteps * oversample * oversample
    subpixel_size = pixel_size / oversample

    out(f"  {table.hkls} initialized hkls (all others ={default_F:g})\n")
    out(f"  {SHAPE_WORDS[o.xtal_shape]} xtal: {Na:.0f}x{Nb:.0f}x{Nc:.0f} cells\n")
    out(f"  wave={lambda0:g} meters +/- {dispersion * 100:g}% in {dispsteps} steps\n")
    if o.nopolar:
        out("  polarization effect disabled\n")
    else:
        out(f"  Kahn polarization factor: {o.polarization:f}\n")
    if o.curved_detector:
        out("  curved detector: all pixels same distance from origin\n")
    if o.point_pixel:
        out("  pixel obliquity effect disabled\n")
    out(f"  incident fluence: {fluence:g} photons/m^2\n")
    out(f"  distance={distance:g} detsize={detsize_f:g}x{detsize_s:g}  pixel={pixel_size:g} "
        f"meters ({fpixels}x{spixels} pixels)\n")
    out(f"  sensor is {thick:g} m thick in {thicksteps} layers with mu= {detector_mu:g}\n")
    out(f"  Xbeam={Xbeam:g} Ybeam={Ybeam:g}\n")
    out(f"  Fbeam={Fbeam:g} Sbeam={Sbeam:g}\n")
    out(f"  Xclose={Xclose:g} Yclose={Yclose:g}\n")
    out(f"  Fclose={Fclose:g} Sclose={Sclose:g}\n")
    out(f"  DIRECTION_OF_DETECTOR_X-AXIS= {_g3(fdet_vector)}\n")
    out(f"  DIRECTION_OF_DETECTOR_Y-AXIS= {_g3(sdet_vector)}\n")
    out(f"  DIRECTION_OF_DETECTOR_Z-AXIS= {_g3(odet_vector)}\n")
    out(f"  INCIDENT_BEAM_DIRECTION= {_g3(beam_vector)}\n")
    out(f"  spindle ROTATION_AXIS= {_g3(spindle_vector)}\n")
    pnormal = g.cross_product(beam_vector, polar_vector, g.vec(0, 0, 0))
    out(f"  POLARIZATION_PLANE_NORMAL= {_g3(pnormal)}\n")
    out(f"  dials origin= {dials_origin[0]:g} {dials_origin[1]:g} {dials_origin[2]:g}\n")
    out(f"  roi: {roi_xmin} < x < {roi_xmax} && {roi_ymin} < y < {roi_ymax}\n")
    out(f"  hdivrange={hdivrange:g} hdivstep={hdivstep:g}  radians\n")
    out(f"  vdivrange={vdivrange:g} vdivstep={vdivstep:g}  radians\n")
    out(f"  {divsteps} divergence steps\n")
    out(f"  {len(sources)} sources\n")
    out(f"  {mosaic_domains} mosaic domains over mosaic spread of {mosaic_spread * RTD:g} "
        "degrees\n")
    out(f"  {phisteps} phi steps from {phi0 * RTD:g} to {(phi0 + osc) * RTD:g} degrees\n")
    extra = ((" +thick" if o.oversample_thick else "") + (" +polar" if o.oversample_polar else "")
             + (" +omega" if o.oversample_omega else ""))
    out(f"  {oversample}x{oversample} pixel oversample steps{extra}\n")
    mask = np.zeros(0, dtype=np.uint16)
    if o.mask_image is not None:
        out(f"  skipping zero-flagged pixels in {o.maskfilename}\n")
        mask = np.ascontiguousarray(o.mask_image, dtype=np.uint16).reshape(-1)
    if o.calculate_noise:
        out("\n  noise image paramters:\n")
        out(f"  seed: {o.seed}\n")
        out(f"  water droplet size: {o.water_size:g} m\n")

    I_bg = (WATER_F * WATER_F * R_E_SQR * fluence * o.water_size * o.water_size * o.water_size
            * 1e6 * AVOGADRO / WATER_MW)

    # C re-unitizes the polarization axis on every call; settle it to its fixed point
    for _ in range(4):
        g.unitize(polar_vector, polar_vector)

    cells, first_pass_differs = _cell_tables(a, b, c, spindle_vector, phi_values, umats,
                                             mosaic_spread, o.c_parity)
    det = np.array([fdet_vector[1:], sdet_vector[1:], odet_vector[1:], pix0_vector[1:],
                    beam_vector[1:], polar_vector[1:]], dtype=np.float64)
    params = KernelParams(
        oversample=int(oversample), subpixel_size=subpixel_size, pixel_size=pixel_size,
        distance=distance, close_distance=close_distance, detector_thicksteps=int(thicksteps),
        detector_thickstep=thickstep, detector_thick=thick, detector_mu=detector_mu,
        curved_detector=bool(o.curved_detector), point_pixel=bool(o.point_pixel),
        oversample_thick=bool(o.oversample_thick), oversample_polar=bool(o.oversample_polar),
        oversample_omega=bool(o.oversample_omega), nopolar=bool(o.nopolar),
        polarization=o.polarization, dmin=o.dmin, phisteps=int(phisteps),
        mosaic_domains=int(mosaic_domains), xtal_shape=SHAPES[o.xtal_shape], Na=Na, Nb=Nb,
        Nc=Nc, fudge=o.fudge, default_F=default_F, hkls=int(table.hkls),
        h_min=int(table.h_min), h_max=int(table.h_max), h_range=int(table.h_range),
        k_min=int(table.k_min), k_max=int(table.k_max), k_range=int(table.k_range),
        l_min=int(table.l_min), l_max=int(table.l_max), l_range=int(table.l_range),
        water_size=o.water_size, I_bg=I_bg, r_e_sqr=R_E_SQR, fluence=fluence, steps=int(steps))
    a_star_arr = np.array([a_star[1:], b_star[1:], c_star[1:]], dtype=np.float64)
    header = dict(fpixels=fpixels, spixels=spixels, pixel_size=pixel_size, distance=distance,
                  lambda0=lambda0, Xbeam=Xbeam, Ybeam=Ybeam, Fbeam=Fbeam, Sbeam=Sbeam,
                  detsize_s=detsize_s, dials_origin=tuple(dials_origin), ORGX=ORGX, ORGY=ORGY,
                  close_distance=close_distance, phi0=phi0, osc=osc,
                  detector_twotheta=detector_twotheta)
    return Scene(params=params, det=det, sources=np.asarray(sources, dtype=np.float64),
                 cells=cells, a_star=a_star_arr, fhkl=table.fhkl, mask=mask,
                 interpolate=bool(interpolate), fpixels=int(fpixels), spixels=int(spixels),
                 roi=(roi_xmin, roi_xmax, roi_ymin, roi_ymax), header=header, opts=o,
                 phi_values=phi_values, first_pass_differs=first_pass_differs,
                 spindle_vector=tuple(float(v) for v in spindle_vector[1:]))


def _g3(v) -> str:
    return f"{v[1]:g} {v[2]:g} {v[3]:g}"


def _build_cell(o: Options, lambda0: float, out, rng):
    """Unit cell from -cell or -mat, misset applied, direct and reciprocal (line 1790)."""
    a = g.vec(0, 0, 0)
    b = g.vec(0, 0, 0)
    c = g.vec(0, 0, 0)
    a[0], b[0], c[0] = o.cell_a, o.cell_b, o.cell_c
    alpha, beta, gamma = o.alpha, o.beta, o.gamma
    a_star = g.vec(0, 0, 0)
    b_star = g.vec(0, 0, 0)
    c_star = g.vec(0, 0, 0)
    V_cell = 0.0
    sin, cos = math.sin, math.cos
    if o.user_cell:
        if b[0] <= 0.0:
            b[0] = a[0]
        if c[0] <= 0.0:
            c[0] = a[0]
        if alpha <= 0.0:
            alpha = math.pi / 2
        if beta <= 0.0:
            beta = math.pi / 2
        if gamma <= 0.0:
            gamma = math.pi / 2
        aavg = (alpha + beta + gamma) / 2
        skew = sin(aavg) * sin(aavg - alpha) * sin(aavg - beta) * sin(aavg - gamma)
        if skew < 0.0:
            skew = -skew
        V_cell = 2.0 * a[0] * b[0] * c[0] * math.sqrt(skew)
        if V_cell <= 0.0:
            out(f"WARNING: impossible unit cell volume: {V_cell:g}\n")
            V_cell = DBL_MIN
        V_star = 1.0 / V_cell
        a_star[0] = b[0] * c[0] * sin(alpha) * V_star
        b_star[0] = c[0] * a[0] * sin(beta) * V_star
        c_star[0] = a[0] * b[0] * sin(gamma) * V_star
        if a_star[0] <= 0.0 or b_star[0] <= 0.0 or c_star[0] <= 0.0:
            out(f"WARNING: impossible reciprocal cell lengths: {a_star[0]:g} {b_star[0]:g} "
                f"{c_star[0]:g}\n")
            for v in (a_star, b_star, c_star):
                v[0] = abs(v[0])
                if v[0] <= 0.0:
                    v[0] = DBL_MIN
        sin_alpha_star = a[0] * V_star / b_star[0] / c_star[0]
        sin_beta_star = b[0] * V_star / a_star[0] / c_star[0]
        sin_gamma_star = c[0] * V_star / a_star[0] / b_star[0]
        cos_alpha_star = (cos(beta) * cos(gamma) - cos(alpha)) / (sin(beta) * sin(gamma))
        cos_beta_star = (cos(gamma) * cos(alpha) - cos(beta)) / (sin(gamma) * sin(alpha))
        cos_gamma_star = (cos(alpha) * cos(beta) - cos(gamma)) / (sin(alpha) * sin(beta))
        _oddball(out, "WARNING: oddball reciprocal cell angles:\n",
                 [("sin(alpha_star) = ", sin_alpha_star), ("cos(alpha_star) = ", cos_alpha_star),
                  ("sin(beta_star)  = ", sin_beta_star), ("cos(beta_star)  = ", cos_beta_star),
                  ("sin(gamma_star) = ", sin_gamma_star),
                  ("cos9gamma_star) = ", cos_gamma_star)])
        sin_gamma_star = min(max(sin_gamma_star, -1.0), 1.0)
        if cos_alpha_star * cos_alpha_star > 1.0:
            cos_alpha_star = 1.0
        if cos_beta_star * cos_beta_star > 1.0:
            cos_beta_star = 1.0
        if cos_gamma_star * cos_gamma_star > 1.0:
            cos_gamma_star = 1.0
        a_star[1] = a_star[0]
        b_star[1] = b_star[0] * cos_gamma_star
        c_star[1] = c_star[0] * cos_beta_star
        a_star[2] = 0.0
        b_star[2] = b_star[0] * sin_gamma_star
        c_star[2] = (c_star[0] * (cos_alpha_star - cos_beta_star * cos_gamma_star)
                     / sin_gamma_star)
        a_star[3] = 0.0
        b_star[3] = 0.0
        c_star[3] = c_star[0] * V_cell / (a[0] * b[0] * c[0] * sin_gamma_star)

    if o.matfilename is not None:
        from .io import read_mat

        out(f"reading {o.matfilename}\n")
        astar, bstar, cstar = read_mat(o.matfilename)
        a_star[1:], b_star[1:], c_star[1:] = list(astar), list(bstar), list(cstar)
        scale = 1e-10 / lambda0
        g.vector_scale(a_star, a_star, scale)
        g.vector_scale(b_star, b_star, scale)
        g.vector_scale(c_star, c_star, scale)

    misset_flag = o.misset_flag
    missets = list(o.misset_angles)
    if misset_flag == -1:
        umat = rng.mosaic_rotation_umat(90.0, rng.misset_seed)
        missets = list(rng.umat2misset(umat))
        out("random orientation misset angles: "
            f"{missets[0] * RTD:f} {missets[1] * RTD:f} {missets[2] * RTD:f} deg\n")
        misset_flag = 1
    if misset_flag > 0:
        for v in (a_star, b_star, c_star):
            g.rotate(v, v, missets[0], missets[1], missets[2])

    a_star_cross_b_star = g.cross_product(a_star, b_star, g.vec(0, 0, 0))
    b_star_cross_c_star = g.cross_product(b_star, c_star, g.vec(0, 0, 0))
    c_star_cross_a_star = g.cross_product(c_star, a_star, g.vec(0, 0, 0))
    V_star = g.dot_product(a_star, b_star_cross_c_star)
    if o.user_cell:
        g.vector_rescale(b_star_cross_c_star, b_star_cross_c_star, a[0] / V_cell)
        g.vector_rescale(c_star_cross_a_star, c_star_cross_a_star, b[0] / V_cell)
        g.vector_rescale(a_star_cross_b_star, a_star_cross_b_star, c[0] / V_cell)
        V_star = 1.0 / V_cell
    V_cell = 1.0 / V_star
    g.vector_scale(b_star_cross_c_star, a, V_cell)
    g.vector_scale(c_star_cross_a_star, b, V_cell)
    g.vector_scale(a_star_cross_b_star, c, V_cell)
    a_cross_b = g.cross_product(a, b, g.vec(0, 0, 0))
    b_cross_c = g.cross_product(b, c, g.vec(0, 0, 0))
    c_cross_a = g.cross_product(c, a, g.vec(0, 0, 0))
    g.vector_scale(b_cross_c, a_star, V_star)
    g.vector_scale(c_cross_a, b_star, V_star)
    g.vector_scale(a_cross_b, c_star, V_star)

    sin_alpha = a_star[0] * V_cell / b[0] / c[0]
    sin_beta = b_star[0] * V_cell / a[0] / c[0]
    sin_gamma = c_star[0] * V_cell / a[0] / b[0]
    cos_alpha = g.dot_product(b, c) / b[0] / c[0]
    cos_beta = g.dot_product(a, c) / a[0] / c[0]
    cos_gamma = g.dot_product(a, b) / a[0] / b[0]
    _oddball(out, "WARNING: oddball cell angles:\n",
             [("sin_alpha = ", sin_alpha), ("cos_alpha = ", cos_alpha), ("sin_beta  = ", sin_beta),
              ("cos_beta  = ", cos_beta), ("sin_gamma = ", sin_gamma),
              ("cos_gamma = ", cos_gamma)])
    alpha, beta, gamma = (_angle(sin_alpha, cos_alpha), _angle(sin_beta, cos_beta),
                          _angle(sin_gamma, cos_gamma))
    sin_alpha_star = a[0] * V_star / b_star[0] / c_star[0]
    sin_beta_star = b[0] * V_star / a_star[0] / c_star[0]
    sin_gamma_star = c[0] * V_star / a_star[0] / b_star[0]
    cos_alpha_star = g.dot_product(b_star, c_star) / b_star[0] / c_star[0]
    cos_beta_star = g.dot_product(a_star, c_star) / a_star[0] / c_star[0]
    cos_gamma_star = g.dot_product(a_star, b_star) / a_star[0] / b_star[0]
    _oddball(out, "WARNING: oddball reciprocal cell angles:\n",
             [("sin(alpha_star) = ", sin_alpha_star), ("cos(alpha_star) = ", cos_alpha_star),
              ("sin(beta_star)  = ", sin_beta_star), ("cos(beta_star)  = ", cos_beta_star),
              ("sin(gamma_star) = ", sin_gamma_star), ("cos(gamma_star) = ", cos_gamma_star)])
    alpha_star = _angle(sin_alpha_star, cos_alpha_star)
    beta_star = _angle(sin_beta_star, cos_beta_star)
    gamma_star = _angle(sin_gamma_star, cos_gamma_star)

    out(f"Unit Cell: {a[0]:g} {b[0]:g} {c[0]:g} {alpha * RTD:g} {beta * RTD:g} "
        f"{gamma * RTD:g}\n")
    out(f"Recp Cell: {a_star[0]:g} {b_star[0]:g} {c_star[0]:g} {alpha_star * RTD:g} "
        f"{beta_star * RTD:g} {gamma_star * RTD:g}\n")
    out(f"volume = {V_cell:g} A^3\n")
    out("real-space cell vectors (Angstrom):\n")
    out(f"     {'a':<10}  {'b':<10}  {'c':<10}\n")
    for i, axis in ((1, "X"), (2, "Y"), (3, "Z")):
        out(f"{axis}: {a[i]:11.8f} {b[i]:11.8f} {c[i]:11.8f}\n")
    out("reciprocal-space cell vectors (Angstrom^-1):\n")
    out(f"     {'a_star':<10}  {'b_star':<10}  {'c_star':<10}\n")
    for i, axis in ((1, "X"), (2, "Y"), (3, "Z")):
        out(f"{axis}: {a_star[i]:11.8f} {b_star[i]:11.8f} {c_star[i]:11.8f}\n")

    g.vector_scale(a, a, 1e-10)
    g.vector_scale(b, b, 1e-10)
    g.vector_scale(c, c, 1e-10)
    return a, b, c, a_star, b_star, c_star


def _oddball(out, title: str, values: list[tuple[str, float]]) -> None:
    if any(v > 1.0000001 or v < -1.0000001 for _, v in values):
        out(title)
        for label, v in values:
            out(f"{label}{v:.25g}\n")


def _angle(s: float, c: float) -> float:
    """C's clamping of a (sin, cos) pair before atan2."""
    s = min(max(s, -1.0), 1.0)
    if c * c > 1.0:
        c = 1.0
    return math.atan2(s, c)


# a dump file this large is written only after a warning that says so
FDUMP_WARN_BYTES = 256 * 2**20


def _load_structure_factors(o: Options, default_F: float, dump_exists: bool, out, warn):
    """Fhkl from -hkl (then Fdump.bin written) or from an earlier Fdump.bin (line 2104)."""
    from . import io as nbio

    if o.hklfilename is None:
        if dump_exists:
            out(f"reading Fs from {o.dumpfilename}\n")
            warn(f"warning: no -hkl given: structure factors come from {o.dumpfilename} "
                 "left by an earlier run (nanoBragg.c does this silently)")
            table = nbio.read_fdump(o.dumpfilename)
            for line in table.warnings:
                warn(line)
            return table
        return nbio.HKLTable.empty()
    table = nbio.read_hkl(o.hklfilename, default_F)
    for line in table.messages:
        out(line)
    for line in table.warnings:
        warn(line)
    size = table.fhkl.nbytes
    if size >= FDUMP_WARN_BYTES:
        warn(f"warning: writing the {size / 2**30:.2f} GiB hkl table to {o.dumpfilename} "
             "for later runs, as nanoBragg.c does (-dump /dev/null skips it)")
    try:
        nbio.write_fdump(o.dumpfilename, table)
        out(f"writing dump file for next time: {o.dumpfilename}\n")
    except OSError:
        out(f"WARNING: unable to open dump file: {o.dumpfilename}\n")
    return table


def _build_sources(o: Options, beam_vector, polar_vector, vert_vector, lambda0,
                   hdivsteps, hdivrange, hdivstep, vdivsteps, vdivrange, vdivstep,
                   dispsteps, dispersion, dispstep, out):
    """Source directions and wavelengths: -sourcefile or divergence × dispersion (line 2290)."""
    source_distance = 10.0
    rows: list[list[float]] = []
    divsteps = -1  # C's initial value, printed as is when sources come from a file
    if o.sourcefilename is not None:
        from .io import read_text_file

        cols = read_text_file(o.sourcefilename, 5, skip_comments=not o.c_parity)
        if len(cols[0]) == 0:
            raise SetupExit(f"reading source definition file {o.sourcefilename}: no data")
        for X, Y, Z, inten, lam in zip(*cols, strict=True):
            X = -source_distance * beam_vector[1] if math.isnan(X) else float(X)
            Y = -source_distance * beam_vector[2] if math.isnan(Y) else float(Y)
            Z = -source_distance * beam_vector[3] if math.isnan(Z) else float(Z)
            inten = 1.0 if math.isnan(inten) else float(inten)
            lam = lambda0 if math.isnan(lam) else float(lam)
            rows.append([X, Y, Z, inten, lam])
    if not rows:
        def div_ok(hdiv: float, vdiv: float) -> bool:
            # with no divergence C divides 0 by 0: the NaN makes the test false
            test = _cdiv(hdiv * hdiv - hdivstep * hdivstep / 4.0 * (1 - hdivsteps % 2),
                         hdivrange)
            test += _cdiv(vdiv * vdiv - vdivstep * vdivstep / 4.0 * (1 - vdivsteps % 2),
                          vdivrange)
            return not (o.round_div and test * 4.0 > 1.1)

        grid = []
        divsteps = 0
        for hdiv_tic in range(hdivsteps):
            for vdiv_tic in range(vdivsteps):
                hdiv = hdivstep * hdiv_tic - hdivrange / 2.0
                vdiv = vdivstep * vdiv_tic - vdivrange / 2.0
                if not div_ok(hdiv, vdiv):
                    continue
                divsteps += 1
                out(f"divergence deviation: {hdiv:g} {vdiv:g}\n")
                grid.append((hdiv, vdiv))
        lambdas = []
        for disp_tic in range(dispsteps):
            lam = lambda0 * (1.0 + dispstep * disp_tic - dispersion / 2.0)
            lambdas.append(lam)
            out(f"lambda{disp_tic} = {lam:.15g}\n")
        n = divsteps * dispsteps
        weight = 1.0 / n if n else math.inf
        for hdiv, vdiv in grid:
            vector = g.vec(-source_distance * beam_vector[1], -source_distance * beam_vector[2],
                           -source_distance * beam_vector[3])
            newvector = g.rotate_axis(vector, g.vec(0, 0, 0), polar_vector, vdiv)
            g.rotate_axis(newvector, vector, vert_vector, hdiv)
            for lam in lambdas:
                rows.append([vector[1], vector[2], vector[3], weight, lam])
    out(f"  created a total of {len(rows)} sources:\n")
    if not rows:
        # C goes on with zero steps and writes a NaN image
        raise SetupExit("-hdivsteps/-vdivsteps/-divsteps with -hdivrange/-vdivrange/-divergence: "
                        "the round divergence cut (-round_div, the default) leaves no source "
                        "direction; use -square_div or other steps")
    sources = []
    for X, Y, Z, inten, lam in rows:
        v = g.vec(X, Y, Z)
        g.unitize(v, v)
        sources.append([v[1], v[2], v[3], lam])
        out(f"{X:g} {Y:g} {Z:g}   {inten:g} {lam:g}\n")
    return sources, divsteps


def _cdiv(num: float, den: float) -> float:
    """``num/den/den`` with C's IEEE semantics (x/0 gives ±inf or NaN, no exception)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den) / np.float64(den))


def _mosaic_umats(o: Options, mosaic_spread: float, mosaic_domains: int, rng) -> list:
    """Mosaic domain rotations from C's generator; domain 0 is forced to identity (line 2440)."""
    umats = []
    for mos_tic in range(mosaic_domains):
        umat = list(rng.mosaic_rotation_umat(mosaic_spread, rng.mosaic_seed))
        if mos_tic == 0:
            umat = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        umats.append(umat)
    return umats


def _cell_tables(a, b, c, spindle, phi_values, umats, mosaic_spread, c_parity):
    """Rotated cell vectors per φ step and mosaic domain, hoisted out of the pixel loop.

    Table 0 is what every pass through C's φ loop uses; table 1 is for the very
    first pass.  They differ only with ``c_parity``: serial C rotates only when
    φ ≠ 0 and otherwise keeps the last rotation it computed (see
    ../shared/golden/README.md), which is the unrotated cell on the first pass
    and the last φ ≠ 0 step of the previous pass afterwards.
    """
    nphi = len(phi_values)
    nmos = len(umats)
    rotated = []
    for phi in phi_values:
        rotated.append([g.rotate_axis(v, g.vec(0, 0, 0), spindle, phi) for v in (a, b, c)])
    unrotated = [list(a), list(b), list(c)]
    tables = [list(rotated), list(rotated)]
    differs = False
    if c_parity:
        nonzero = [i for i, phi in enumerate(phi_values) if phi != 0.0]
        for which in (0, 1):
            carry = unrotated if (which == 1 or not nonzero) else rotated[nonzero[-1]]
            for i, phi in enumerate(phi_values):
                if phi != 0.0:
                    carry = rotated[i]
                else:
                    tables[which][i] = carry
        differs = any(tables[0][i] is not tables[1][i] for i in range(nphi))
    cells = np.zeros((2, nphi, nmos, 3, 3), dtype=np.float64)
    for which in (0, 1):
        for i in range(nphi):
            for m, umat in enumerate(umats):
                for axis, vp in enumerate(tables[which][i]):
                    if mosaic_spread > 0.0:
                        v = g.rotate_umat(vp, g.vec(0, 0, 0), umat)
                    else:
                        v = vp
                    cells[which, i, m, axis] = v[1:4]
    return cells, differs
