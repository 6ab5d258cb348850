"""From parsed options to the scene an engine renders: nanoBragg.c's setup, step by step.

This follows nanoBragg.c's ``main`` from the end of the argv loop (line 1110)
to the start of the pixel loop (line 2525) in C's order, because several
settings depend on the order C resolves them in and because two steps draw
from C's random number generators (a random misset, then the mosaic domains).
Each step returns a record (most are functions of their own module:
detector, sampling, crystal, structure_factors, sources); the stdout C prints
along the way is rendered afterwards from those records by
:mod:`nbnumba.setup.report`.  Line numbers refer to nanoBragg.c
(bl831/nanoBragg, 8-10-25 header).
"""

from __future__ import annotations

import numpy as np

from .. import config
from .. import geometry as g
from ..config import Options
from ..constants import AVOGADRO, DBL_MIN, R_E_SQR, WATER_F, WATER_MW
from ..errors import SetupExit
from ..kernels import physics
from ..kernels.params import KernelParams
from ..models import Panel
from . import rules
from .crystal import SetupRandom, build_cell, cell_tables, crystal_size, mosaic_umats
from .detector import resolve_detector
from .sampling import resolve_sampling
from .scene import InMemory, ResolvedSetup, Scene
from .sources import build_sources
from .structure_factors import (
    Origin,
    StructureFactors,
    interpolation,
    load_structure_factors,
    read_stol,
    structure_factor_origin,
    table_from_arrays,
)

__all__ = ["prepare", "resolve", "pack", "pack_panel", "SHAPE_CODES"]

# -square_xtal, -round_xtal, -gauss_xtal, -tophat_xtal as the kernels number them
SHAPE_CODES = {config.SQUARE: physics.SQUARE, config.ROUND: physics.ROUND,
               config.GAUSS: physics.GAUSS, config.TOPHAT: physics.TOPHAT}


def prepare(o: Options, rng: SetupRandom, memory: InMemory | None = None,
            structure_factors: StructureFactors | None = None) -> Scene:
    """Resolve options into the :class:`Scene` an engine renders (lines 1110-2525).

    Reads the input files (-hkl or ``Fdump.bin``, -mat, -sourcefile, -stol)
    and writes ``Fdump.bin`` after reading -hkl, as C does.  C's stdout for
    this part is ``setup_report(scene.resolved)``; our notes on C's quirks are
    ``scene.resolved.warnings``.

    Parameters
    ----------
    o : Options
        Parsed flags (:func:`nbnumba.cargs.parse_args`), C's internal units.
    rng : SetupRandom
        C's generators (:class:`nbnumba.rng.RandomStreams`); a random misset
        and the mosaic domains draw from it, in C's order.
    memory : InMemory, optional
        Inputs given as arrays instead of files or draws (from the models).
    structure_factors : StructureFactors, optional
        The table these options would read, already read (a stills dataset
        reads it once per process); None: read as C does (and ``Fdump.bin``
        written).

    Returns
    -------
    Scene

    Raises
    ------
    SetupExit
        No structure factors or no cell given, an empty -sourcefile or -stol
        file, or a divergence grid with no direction left (C: usage or NaN).
    InputFileError, ResourceError
        Unreadable or impossibly large input files.
    """
    return pack(resolve(o, rng, memory, structure_factors))


def resolve(o: Options, rng: SetupRandom, memory: InMemory | None = None,
            structure_factors: StructureFactors | None = None) -> ResolvedSetup:
    """C's setup rules in C's order, each a named step (lines 1110-2525).

    Parameters, errors: as :func:`prepare`.

    Returns
    -------
    ResolvedSetup
        The records of every step, our warnings on C's quirks among them.
    """
    from ..inputs import stream_warnings

    warnings = stream_warnings([("-hkl", o.hklfilename), ("-sourcefile", o.sourcefilename),
                                ("-stol", o.stolfilename)])
    memory = memory or InMemory()
    detector = resolve_detector(o)
    origin = "memory" if memory.hkl is not None else structure_factor_origin(o)
    _require_crystal(o, origin, memory.reciprocal_vectors_per_angstrom is not None)
    sampling = resolve_sampling(o)
    interpolate, interpolation_auto = interpolation(o)
    cell = build_cell(o, rng, memory.reciprocal_vectors_per_angstrom)
    crystal = crystal_size(o, cell, detector.distance, detector.pixel_size)
    if structure_factors is not None:
        pass  # read once already (the shots of a stills dataset share it)
    elif origin == "memory":
        structure_factors = StructureFactors(table_from_arrays(memory.hkl, memory.F,
                                                               o.default_F),
                                             "memory", o.dumpfilename)
    else:
        structure_factors = load_structure_factors(o, origin)
    warnings += structure_factors.warnings
    if structure_factors.table.hkls == 0:
        interpolate = 0
    stol_warnings = read_stol(o)
    warnings += stol_warnings
    sources = build_sources(o, sampling, detector, memory.wavelengths_m)
    if memory.domain_matrices is not None:
        umats = [list(map(float, m)) for m in memory.domain_matrices]
        if len(umats) != sampling.mosaic_domains:
            raise ValueError(f"{len(umats)} domain matrices for {sampling.mosaic_domains} "
                             "mosaic domains")
    else:
        umats = mosaic_umats(sampling.mosaic_spread, sampling.mosaic_domains, rng)
    return ResolvedSetup(
        options=o, detector=detector, sampling=sampling, cell=cell, crystal=crystal,
        structure_factors=structure_factors, sources=sources, interpolate=interpolate,
        interpolation_auto=interpolation_auto, fluence=rules.fluence(o), umats=umats,
        stol_read=o.stolfilename is not None, warnings=warnings, memory=memory)


def _require_crystal(o: Options, origin: Origin, lattice_given: bool = False) -> None:
    """C prints its usage and stops without structure factors or a cell (line 1277)."""
    if (origin == "default" and o.default_F == 0.0) or (o.matfilename is None
                                                         and o.cell_a == 0.0
                                                         and not lattice_given):
        raise SetupExit("need -hkl (or a Fdump.bin, or -default_F) and -mat (or -cell); "
                        "nanobragg-nb -h lists every flag")


def pack(r: ResolvedSetup) -> Scene:
    """The resolved setup as the few arrays and scalars an engine takes.

    Parameters
    ----------
    r : ResolvedSetup
        From :func:`resolve`.

    Returns
    -------
    Scene
        ``scene.resolved`` is ``r``.
    """
    o, d, s, x, sf = r.options, r.detector, r.sampling, r.crystal, r.structure_factors
    table = sf.table
    I_bg = (WATER_F * WATER_F * R_E_SQR * r.fluence * o.water_size * o.water_size
            * o.water_size * 1e6 * AVOGADRO / WATER_MW)
    # C re-unitizes the polarization axis on every call; settle it to its fixed point
    polar_vector = list(d.polar_vector)
    for _ in range(4):
        g.unitize(polar_vector, polar_vector)
    phi_values = s.phi_values
    cells, first_pass_differs = cell_tables(r.cell.a, r.cell.b, r.cell.c, d.spindle_vector,
                                            phi_values, r.umats, s.mosaic_spread, o.c_parity)
    det = np.array([d.fdet_vector[1:], d.sdet_vector[1:], d.odet_vector[1:],
                    d.pix0_vector[1:], d.beam_vector[1:], polar_vector[1:]], dtype=np.float64)
    oversample = x.oversample  # >= 1: C's recommendation is at least 1
    steps = len(r.sources.rows) * s.mosaic_domains * s.phisteps * oversample * oversample
    params = KernelParams(
        oversample=int(oversample), subpixel_size=d.pixel_size / oversample,
        pixel_size=d.pixel_size, distance=d.distance, close_distance=d.close_distance,
        detector_thicksteps=int(s.thicksteps), detector_thickstep=s.thickstep,
        detector_thick=s.thick, detector_mu=s.detector_mu,
        curved_detector=bool(o.curved_detector), point_pixel=bool(o.point_pixel),
        oversample_thick=bool(o.oversample_thick), oversample_polar=bool(o.oversample_polar),
        oversample_omega=bool(o.oversample_omega), nopolar=bool(o.nopolar),
        polarization=o.polarization, dmin=o.dmin, phisteps=int(s.phisteps),
        mosaic_domains=int(s.mosaic_domains), xtal_shape=SHAPE_CODES[o.xtal_shape], Na=x.Na,
        Nb=x.Nb, Nc=x.Nc, fudge=o.fudge, default_F=o.default_F, hkls=int(table.hkls),
        h_min=int(table.h_min), h_max=int(table.h_max), h_range=int(table.h_range),
        k_min=int(table.k_min), k_max=int(table.k_max), k_range=int(table.k_range),
        l_min=int(table.l_min), l_max=int(table.l_max), l_range=int(table.l_range),
        water_size=o.water_size, I_bg=I_bg, r_e_sqr=R_E_SQR, fluence=r.fluence,
        steps=int(steps))
    a_star = np.array([r.cell.a_star_per_angstrom[1:], r.cell.b_star_per_angstrom[1:],
                       r.cell.c_star_per_angstrom[1:]], dtype=np.float64)
    c = d.centre
    header = dict(fpixels=d.fpixels, spixels=d.spixels, pixel_size=d.pixel_size,
                  distance=d.distance, lambda0=o.lambda0, Xbeam=c.Xbeam, Ybeam=c.Ybeam,
                  Fbeam=c.Fbeam, Sbeam=c.Sbeam, detsize_s=d.detsize_s,
                  dials_origin=tuple(d.dials_origin), ORGX=d.ORGX, ORGY=d.ORGY,
                  close_distance=d.close_distance, phi0=s.phi0, osc=s.osc,
                  detector_twotheta=d.twotheta)
    mask = np.zeros(0, dtype=np.uint16)
    if o.mask_image is not None:
        mask = np.ascontiguousarray(o.mask_image, dtype=np.uint16).reshape(-1)
    return Scene(params=params, det=det, sources=r.sources.directions, cells=cells,
                 a_star=a_star, fhkl=table.fhkl, mask=mask, interpolate=bool(r.interpolate),
                 fpixels=int(d.fpixels), spixels=int(d.spixels), roi=d.roi, header=header,
                 opts=o, phi_values=phi_values, first_pass_differs=first_pass_differs,
                 spindle_vector=tuple(float(v) for v in d.spindle_vector[1:]), resolved=r)


def pack_panel(scene: Scene, panel: Panel, keep_roi: bool = False,
               bad_pixels: np.ndarray | None = None) -> Scene:
    """The scene of one panel: the crystal, sources and F table of ``scene``, the panel's rows.

    A panel is what nanoBragg.c calls the detector: its ``fdet``, ``sdet``,
    ``odet`` and ``pix0`` vectors replace the first four ``det`` rows (the beam
    and polarization rows are shared), and the per-detector scalars are
    derived from them as C derives them once the detector is in place (line
    1730): ``close_distance = pix0·odet``, ``distance = close_distance /
    (beam·odet)``; the oversampling C recommends (when ``-oversample`` is not
    given) is recomputed from that distance and the panel's pixel size (line
    2079).

    Parameters
    ----------
    scene : Scene
        The scene of the whole setup (:func:`pack`).
    panel : nbnumba.models.Panel
        One panel.
    keep_roi : bool
        Keep ``scene``'s ROI and mask (a one-panel detector the size of the
        flags' one); else the whole panel, no mask.
    bad_pixels : ndarray of bool, shape (spixels, fpixels), optional
        True where the pixel is skipped as nanoBragg.c skips a pixel whose
        ``-mask`` value is 0 (line 2655): left at 0 in the float image and out
        of the statistics' sums (a ``.geom``'s bad regions, ``no_index`` panels,
        ``mask_edge_pixels``).  Combined with ``scene``'s mask when ``keep_roi``.

    Returns
    -------
    Scene
        For a panel taken from the flags' own detector
        (:func:`nbnumba.setup.experiment.experiment_from_setup`) without
        ``-twotheta``, the same ``det`` rows and scalars as ``scene``.
    """
    import dataclasses

    r = scene.resolved
    beam = g.vec(*(float(v) for v in scene.det[4]))
    odet = g.vec(*panel.odet)
    pix0 = g.vec(*panel.pix0_m)
    ratio = g.dot_product(beam, odet)
    if ratio == 0.0:
        ratio = DBL_MIN
    close_distance = g.dot_product(pix0, odet)
    distance = close_distance / ratio
    x = crystal_size(r.options, r.cell, distance, panel.pixel_m)
    P = scene.params
    steps = (len(scene.sources) * r.sampling.mosaic_domains * r.sampling.phisteps
             * x.oversample * x.oversample)
    params = P._replace(oversample=int(x.oversample), subpixel_size=panel.pixel_m / x.oversample,
                        pixel_size=panel.pixel_m, distance=distance,
                        close_distance=close_distance, steps=int(steps))
    det = np.array([panel.fdet, panel.sdet, panel.odet, panel.pix0_m, scene.det[4],
                    scene.det[5]], dtype=np.float64)
    if keep_roi:
        roi, mask = scene.roi, scene.mask
    else:
        roi, mask = (0, panel.fpixels, 0, panel.spixels), np.zeros(0, dtype=np.uint16)
    if bad_pixels is not None and np.any(bad_pixels):
        bad = np.asarray(bad_pixels, dtype=bool)
        if bad.shape != (panel.spixels, panel.fpixels):
            raise ValueError(f"panel {panel.name!r}: bad-pixel mask of shape {bad.shape}, "
                             f"expected {(panel.spixels, panel.fpixels)}")
        # C's -mask convention: 0 = skipped
        keep = (~bad).reshape(-1).astype(np.uint16)
        mask = keep if mask.size == 0 else (mask != 0).astype(np.uint16) * keep
    return dataclasses.replace(scene, params=params, det=det, fpixels=panel.fpixels,
                               spixels=panel.spixels, roi=roi, mask=mask)
