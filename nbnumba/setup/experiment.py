"""nanoBragg.c's flags as models, and models as what the setup takes.

Two directions, both through nanoBragg.c's existing rules:

* :func:`experiment_from_setup`: the resolved setup of a command line (C's
  conventions, pivots, misset, mosaic draws, hkl table) as an
  :class:`nbnumba.models.Experiment`, e.g. to take a flags-defined detector
  panel into a multi-panel detector.
* :func:`apply_experiment`: models onto parsed options (C's variables) plus
  the inputs that only exist in memory (:class:`nbnumba.setup.scene.InMemory`),
  so that :func:`nbnumba.setup.prepare.resolve` settles the rest with C's
  rules; :func:`nbnumba.setup.prepare.pack_panel` then packs each panel.
"""

from __future__ import annotations

import math

import numpy as np

from .. import config
from ..config import Options
from ..models import Beam, Crystal, Detector, Experiment, Goniometer, Panel, Scan
from ..models.crystal import StructureFactorTable
from .scene import InMemory, ResolvedSetup

__all__ = ["experiment_from_setup", "apply_experiment", "SHAPE_NAMES"]

# Crystal.shape <-> Options.xtal_shape
SHAPE_NAMES = {config.SQUARE: "square", config.ROUND: "round", config.GAUSS: "gauss",
               config.TOPHAT: "tophat"}


def experiment_from_setup(r: ResolvedSetup) -> Experiment:
    """The resolved setup of one nanoBragg.c command line as models.

    Parameters
    ----------
    r : ResolvedSetup
        From :func:`nbnumba.setup.prepare.resolve`.

    Returns
    -------
    Experiment
        One panel named ``"detector"`` with C's ``fdet/sdet/odet/pix0``
        vectors; the beam (C's resolved beam and polarization vectors); the
        crystal (``-cell`` with its misset, or the oriented reciprocal vectors
        of ``-mat``; N per axis as C settled it; the mosaic domains C drew; the
        hkl table as a dense table); the φ sampling and spindle axis.

    Raises
    ------
    ValueError
        A ``-sourcefile`` (source positions are not part of :class:`Beam`).

    Notes
    -----
    ``Simulation.from_models`` of this experiment (with the remaining flags:
    oversampling, water, ``-c_parity``...) renders what the command line
    renders.
    """
    o, d, s = r.options, r.detector, r.sampling
    if o.sourcefilename is not None:
        raise ValueError("-sourcefile: source positions have no place in models.Beam yet")
    panel = Panel(name="detector", fdet=d.fdet_vector[1:], sdet=d.sdet_vector[1:],
                  odet=d.odet_vector[1:], pix0_m=d.pix0_vector[1:], pixel_m=d.pixel_size,
                  fpixels=d.fpixels, spixels=d.spixels,
                  thickness_m=max(float(s.thick), 0.0))
    beam = Beam(wavelength_m=o.lambda0, direction=d.beam_vector[1:],
                polarization_axis=d.polar_vector[1:], polarization=o.polarization,
                nopolar=bool(o.nopolar), divergence_h_rad=o.hdivrange,
                divergence_v_rad=o.vdivrange, divergence_steps_h=o.hdivsteps,
                divergence_steps_v=o.vdivsteps, divergence_step_h_rad=o.hdivstep,
                divergence_step_v_rad=o.vdivstep, round_divergence=bool(o.round_div),
                dispersion=o.dispersion, dispersion_steps=o.dispsteps,
                fluence_photons_per_m2=r.fluence)
    table = r.structure_factors.table
    sf = None
    if table.hkls:
        sf = StructureFactorTable(
            dense=table.fhkl[:table.h_range, :table.k_range, :table.l_range],
            origin=(table.h_min, table.k_min, table.l_min))
    mosaic = dict(mosaic_spread_rad=s.mosaic_spread, mosaic_domains=s.mosaic_domains)
    if s.mosaic_spread > 0.0:
        mosaic["domain_matrices"] = np.asarray(r.umats, dtype=np.float64).reshape(-1, 3, 3)
    size = dict(N_cells=(r.crystal.Na, r.crystal.Nb, r.crystal.Nc),
                shape=SHAPE_NAMES[o.xtal_shape], default_F=o.default_F, table=sf, **mosaic)
    if o.user_cell and o.matfilename is None:
        missets = None
        if r.cell.random_missets is not None:
            missets = r.cell.random_missets
        elif o.misset_flag > 0:
            missets = tuple(o.misset_angles)
        crystal = Crystal(cell_angstrom=(o.cell_a, o.cell_b, o.cell_c),
                          angles_rad=(o.alpha, o.beta, o.gamma), misset_rad=missets, **size)
    else:
        recip = np.array(r.cell.oriented_reciprocal, dtype=np.float64)
        crystal = Crystal(reciprocal_vectors_per_angstrom=recip, **size)
    scan = Scan(phi_start_rad=o.phi0, phi_step_rad=o.phistep, phi_steps=o.phisteps,
                oscillation_rad=o.osc, goniometer=Goniometer(d.spindle_vector[1:]))
    return Experiment(beam=beam, detector=Detector((panel,)), crystal=crystal, scan=scan)


def apply_experiment(e: Experiment, o: Options) -> InMemory:
    """Put the models into ``o`` (C's variables, in place); return what only exists in memory.

    The models win over flags for what they hold; flags set the rest
    (oversampling, water, seeds, ``-c_parity``...).  The beam, polarization
    and spindle vectors are taken as given (C's CUSTOM convention); the flags'
    detector becomes the first panel (placed with ``-pivot sample``), which C's
    report and the SMV header describe; every panel is packed on its own
    (:func:`nbnumba.setup.prepare.pack_panel`).

    Raises
    ------
    ValueError
        A spectrum with unequal weights (C's pixel loop weighs every source
        equally), domain matrices without a positive mosaic spread, or panels of
        different sensor thickness.
    """
    b, c, s, det = e.beam, e.crystal, e.scan, e.detector
    memory = InMemory()
    # beam
    o.lambda0 = float(b.wavelength_m)
    o.beam_convention = config.CUSTOM
    o.beam_vector = tuple(b.direction)
    o.polar_vector = tuple(b.polarization_axis)
    o.polarization = float(b.polarization)
    o.nopolar = int(bool(b.nopolar))
    o.hdivrange, o.vdivrange = float(b.divergence_h_rad), float(b.divergence_v_rad)
    o.hdivsteps, o.vdivsteps = int(b.divergence_steps_h), int(b.divergence_steps_v)
    o.hdivstep, o.vdivstep = float(b.divergence_step_h_rad), float(b.divergence_step_v_rad)
    o.round_div = int(bool(b.round_divergence))
    o.dispersion, o.dispsteps = float(b.dispersion), int(b.dispersion_steps)
    o.fluence, o.flux = float(b.fluence_photons_per_m2), 0.0
    if b.spectrum is not None:
        if not b.spectrum.uniform:
            raise ValueError("a spectrum with unequal weights: nanoBragg.c's pixel loop weighs "
                             "every source equally (repeat a wavelength to weigh it more)")
        memory.wavelengths_m = tuple(b.spectrum.wavelengths_m)
    # crystal
    if c.cell_angstrom is not None:
        o.user_cell = 1
        o.cell_a, o.cell_b, o.cell_c = c.cell_angstrom
        o.alpha, o.beta, o.gamma = c.angles_rad
        o.matfilename = None
    else:
        o.user_cell = 0
        o.cell_a = o.cell_b = o.cell_c = 0.0
        o.matfilename = None
        memory.reciprocal_vectors_per_angstrom = np.array(c.reciprocal_vectors_per_angstrom)
    if c.misset_rad is not None:
        o.misset_flag, o.misset_angles = 1, tuple(float(v) for v in c.misset_rad)
    else:
        o.misset_flag, o.misset_angles = 0, (0.0, 0.0, 0.0)
    if c.N_cells is not None:
        o.Na, o.Nb, o.Nc = (float(v) for v in c.N_cells)
    if c.size_m is not None:
        o.sample_x, o.sample_y, o.sample_z = (float(v) for v in c.size_m)
    o.xtal_shape = {v: k for k, v in SHAPE_NAMES.items()}[c.shape]
    o.default_F = float(c.default_F)
    o.mosaic_spread, o.mosaic_domains = float(c.mosaic_spread_rad), int(c.mosaic_domains)
    if c.domain_matrices is not None:
        if not c.mosaic_spread_rad > 0.0:
            raise ValueError("domain_matrices need a mosaic_spread_rad > 0 (nanoBragg.c applies "
                             "the domains only with a spread)")
        o.mosaic_domains = int(c.domain_matrices.shape[0])
        memory.domain_matrices = [list(map(float, m.reshape(9))) for m in c.domain_matrices]
    arrays = c.structure_factor_arrays()
    if arrays is not None:
        memory.hkl, memory.F = arrays
        o.hklfilename = None
    # scan
    o.phi0, o.phistep, o.phisteps = float(s.phi_start_rad), float(s.phi_step_rad), \
        int(s.phi_steps)
    o.osc = float(s.oscillation_rad)
    o.spindle_vector = tuple(s.goniometer.axis)
    # detector: the first panel stands for the flags' detector (report, SMV header)
    thick = {p.thickness_m for p in det.panels}
    if len(thick) > 1:
        raise ValueError("panels of different sensor thickness are not supported yet")
    if o.detector_thick <= 0.0 and thick.pop() > 0.0:
        o.detector_thick = float(det.panels[0].thickness_m)
    p0 = det.panels[0]
    o.fdet_vector, o.sdet_vector, o.odet_vector = p0.fdet, p0.sdet, p0.odet
    o.pixel_size = float(p0.pixel_m)
    o.fpixels, o.spixels = p0.fpixels, p0.spixels
    pix0 = np.asarray(p0.pix0_m)
    o.Xclose = float(-pix0 @ np.asarray(p0.fdet))
    o.Yclose = float(-pix0 @ np.asarray(p0.sdet))
    o.close_distance = float(pix0 @ np.asarray(p0.odet))
    o.Xbeam = o.Ybeam = math.nan
    o.detector_pivot = config.SAMPLE
    o.detector_rotx = o.detector_roty = o.detector_rotz = o.detector_twotheta = 0.0
    o.pix0_vector_given = False
    return memory
