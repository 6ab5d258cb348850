"""nanoBragg.c's setup stdout, rendered from the resolved setup.

C prints these lines while it resolves its setup (``main``, lines 1110-2525);
here they are rendered afterwards, section by section in C's order, from the
values :func:`nbnumba.setup.prepare.prepare` settled.  The text is part of the
contract with C: the golden tests compare it line for line.
"""

from __future__ import annotations

from .. import geometry as g
from ..constants import RTD
from .crystal import ODDBALL_LIMIT, Checks
from .scene import ResolvedSetup

__all__ = ["setup_report", "BANNER", "SHAPE_WORDS"]

BANNER = "nanoBragg nanocrystal diffraction simulator - James Holton and Ken Frankel 5-17-17\n"
SHAPE_WORDS = {"ROUND": "ellipsoidal", "SQUARE": "parallelpiped", "GAUSS": "gaussian",
               "TOPHAT": "tophat-spot"}
_MOSAIC_WORDS = {
    "upped": "WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains\n",
    "no_spread": "WARNING: no mosaic spread specified.  setting mosaic_domains = 1\n",
    "zero_spread": "WARNING: zero mosaic spread specified.  setting mosaic_domains = 1\n",
}


def setup_report(r: ResolvedSetup) -> str:
    """What nanoBragg.c prints before its pixel loop, exactly, newlines included.

    Parameters
    ----------
    r : ResolvedSetup
        The setup :func:`nbnumba.setup.prepare.resolve` resolved (a scene's
        ``resolved``).

    Returns
    -------
    str
    """
    lines: list[str] = []
    for section in (_inputs, _geometry_warnings, _sampling_warnings, _placement,
                    _interpolation, _cell,
                    _crystal_size, _structure_factors, _steps, _sources, _summary, _noise):
        lines.extend(section(r))
    return "".join(lines)


def _g3(v) -> str:
    return f"{v[1]:g} {v[2]:g} {v[3]:g}"


def _inputs(r: ResolvedSetup) -> list[str]:
    # C's GetFrame announces the -mask and -img files before anything else
    o = r.options
    return [f"reading {name}\n" for name in (o.maskfilename, o.imginfilename) if name is not None]


def _geometry_warnings(r: ResolvedSetup) -> list[str]:
    o = r.options
    clip_height, clip_width = r.crystal.sample_clipped
    lines = []
    if clip_height:
        lines.append(f"WARNING: clipping sample ({o.sample_y:g} m high) with beam "
                     f"({o.beamsize:g} m)\n")
    if clip_width:
        lines.append(f"WARNING: clipping sample ({o.sample_z:g} m wide) with beam "
                     f"({o.beamsize:g} m)\n")
    if r.detector.odet_generated:
        lines.append("WARNING: auto-generating odet_vector\n")
    lines.append(BANNER)
    return lines


def _sampling_warnings(r: ResolvedSetup) -> list[str]:
    s = r.sampling
    lines = []
    if s.mu_from_thickness:
        lines.append(f"WARNING: setting detector attenuation depth to {s.detector_mu:g} m\n")
    if s.mosaic_adjusted is not None:
        lines.append(_MOSAIC_WORDS[s.mosaic_adjusted])
    return lines


def _placement(r: ResolvedSetup) -> list[str]:
    d = r.detector
    lines = [d.convention.lower() + " convention selected.\n"]
    if d.pivot == "SAMPLE":
        lines.append("pivoting detector around sample\n")
    elif d.pivot == "BEAM":
        lines.append("pivoting detector around direct beam spot\n")
    beam = d.beam_vector
    lines.append(f"XDS incident beam: {g.dot_product(beam, d.fdet_vector):g} "
                 f"{g.dot_product(beam, d.sdet_vector):g} "
                 f"{g.dot_product(beam, d.odet_vector):g}\n")
    return lines


def _interpolation(r: ResolvedSetup) -> list[str]:
    if r.interpolation_auto == "tricubic":
        return ["auto-selected tricubic interpolation of structure factors\n"]
    if r.interpolation_auto == "none":
        return ["auto-selected no interpolation\n"]
    return []


def _oddball(title: str, checks: Checks) -> list[str]:
    if any(v > ODDBALL_LIMIT or v < -ODDBALL_LIMIT for _, v in checks):
        return [title] + [f"{label}{v:.25g}\n" for label, v in checks]
    return []


def _cell(r: ResolvedSetup) -> list[str]:
    cell = r.cell
    lines = []
    if cell.impossible_volume is not None:
        lines.append(f"WARNING: impossible unit cell volume: {cell.impossible_volume:g}\n")
    if cell.impossible_reciprocal is not None:
        lengths = " ".join(f"{v:g}" for v in cell.impossible_reciprocal)
        lines.append(f"WARNING: impossible reciprocal cell lengths: {lengths}\n")
    if cell.user_cell_checks is not None:
        lines += _oddball("WARNING: oddball reciprocal cell angles:\n", cell.user_cell_checks)
    if cell.matfilename is not None:
        lines.append(f"reading {cell.matfilename}\n")
    if cell.random_missets is not None:
        x, y, z = (angle * RTD for angle in cell.random_missets)
        lines.append(f"random orientation misset angles: {x:f} {y:f} {z:f} deg\n")
    lines += _oddball("WARNING: oddball cell angles:\n", cell.cell_checks)
    lines += _oddball("WARNING: oddball reciprocal cell angles:\n", cell.reciprocal_checks)
    a, b, c = cell.a_angstrom, cell.b_angstrom, cell.c_angstrom
    a_star, b_star, c_star = (cell.a_star_per_angstrom, cell.b_star_per_angstrom,
                              cell.c_star_per_angstrom)
    alpha, beta, gamma = (angle * RTD for angle in cell.angles)
    alpha_star, beta_star, gamma_star = (angle * RTD for angle in cell.reciprocal_angles)
    lines.append(f"Unit Cell: {a[0]:g} {b[0]:g} {c[0]:g} {alpha:g} {beta:g} {gamma:g}\n")
    lines.append(f"Recp Cell: {a_star[0]:g} {b_star[0]:g} {c_star[0]:g} {alpha_star:g} "
                 f"{beta_star:g} {gamma_star:g}\n")
    lines.append(f"volume = {cell.volume_angstrom3:g} A^3\n")
    lines.append("real-space cell vectors (Angstrom):\n")
    lines.append(f"     {'a':<10}  {'b':<10}  {'c':<10}\n")
    for i, axis in ((1, "X"), (2, "Y"), (3, "Z")):
        lines.append(f"{axis}: {a[i]:11.8f} {b[i]:11.8f} {c[i]:11.8f}\n")
    lines.append("reciprocal-space cell vectors (Angstrom^-1):\n")
    lines.append(f"     {'a_star':<10}  {'b_star':<10}  {'c_star':<10}\n")
    for i, axis in ((1, "X"), (2, "Y"), (3, "Z")):
        lines.append(f"{axis}: {a_star[i]:11.8f} {b_star[i]:11.8f} {c_star[i]:11.8f}\n")
    return lines


def _crystal_size(r: ResolvedSetup) -> list[str]:
    x = r.crystal
    size_a, size_b, size_c = (size * 1e6 for size in x.xtalsize)
    lines = [f"crystal is {size_a:g} x {size_b:g} x {size_c:g} microns\n"]
    if x.oversample_auto:
        lines.append(f"auto-selected {x.oversample}-fold oversampling\n")
    if x.oversample < x.recommended_oversample:
        lines += [
            f"WARNING: maximum dimension of sample is {x.xtalsize_max * 1e10:g} A\n",
            f"         but reciprocal pixel size is {x.reciprocal_pixel_size * 1e10:g} A\n",
            "         intensity may vary significantly across a pixel!\n",
            f"         recommend -oversample {x.recommended_oversample} to work around this\n"]
    lines.append(f"approximate MW = {x.molecular_weight:g}\n")
    return lines


def _structure_factors(r: ResolvedSetup) -> list[str]:
    sf = r.structure_factors
    lines = []
    if sf.origin == "dump":
        lines.append(f"reading Fs from {sf.dumpfilename}\n")
    elif sf.origin == "hkl":
        lines += sf.table.messages
        if not r.options.fdump:
            pass  # the library was not asked for C's cache file (no line: C would print one)
        elif sf.dump_written:
            lines.append(f"writing dump file for next time: {sf.dumpfilename}\n")
        else:
            lines.append(f"WARNING: unable to open dump file: {sf.dumpfilename}\n")
    if r.stol_read:
        lines.append(f"reading {r.options.stolfilename}\n")
    return lines


def _steps(r: ResolvedSetup) -> list[str]:
    s = r.sampling
    lines = [f"thick{tic} = {s.thickstep * tic * 1e6:g} um\n" for tic in range(s.thicksteps)]
    lines += [f"phi{tic} = {phi * RTD:g}\n" for tic, phi in enumerate(s.phi_values)]
    return lines


def _sources(r: ResolvedSetup) -> list[str]:
    src = r.sources
    lines = [f"divergence deviation: {hdiv:g} {vdiv:g}\n" for hdiv, vdiv in src.deviations]
    lines += [f"lambda{tic} = {lam:.15g}\n" for tic, lam in enumerate(src.lambdas)]
    lines.append(f"  created a total of {len(src.rows)} sources:\n")
    lines += [f"{X:g} {Y:g} {Z:g}   {inten:g} {lam:g}\n" for X, Y, Z, inten, lam in src.rows]
    lines.append(f"  created a total of {r.sampling.mosaic_domains} mosaic domains\n")
    return lines


def _summary(r: ResolvedSetup) -> list[str]:
    o, d, s, x = r.options, r.detector, r.sampling, r.crystal
    c = d.centre
    lines = [f"  {r.structure_factors.table.hkls} initialized hkls (all others "
             f"={o.default_F:g})\n",
             f"  {SHAPE_WORDS[o.xtal_shape]} xtal: {x.Na:.0f}x{x.Nb:.0f}x{x.Nc:.0f} cells\n",
             f"  wave={o.lambda0:g} meters +/- {s.dispersion * 100:g}% in {s.dispsteps} steps\n"]
    if o.nopolar:
        lines.append("  polarization effect disabled\n")
    else:
        lines.append(f"  Kahn polarization factor: {o.polarization:f}\n")
    if o.curved_detector:
        lines.append("  curved detector: all pixels same distance from origin\n")
    if o.point_pixel:
        lines.append("  pixel obliquity effect disabled\n")
    pnormal = g.cross_product(d.beam_vector, d.polar_vector, g.vec(0, 0, 0))
    oversample = x.oversample
    extra = ((" +thick" if o.oversample_thick else "") + (" +polar" if o.oversample_polar else "")
             + (" +omega" if o.oversample_omega else ""))
    roi_xmin, roi_xmax, roi_ymin, roi_ymax = d.roi
    lines += [
        f"  incident fluence: {r.fluence:g} photons/m^2\n",
        f"  distance={d.distance:g} detsize={d.detsize_f:g}x{d.detsize_s:g}  "
        f"pixel={d.pixel_size:g} meters ({d.fpixels}x{d.spixels} pixels)\n",
        f"  sensor is {s.thick:g} m thick in {s.thicksteps} layers with mu= {s.detector_mu:g}\n",
        f"  Xbeam={c.Xbeam:g} Ybeam={c.Ybeam:g}\n",
        f"  Fbeam={c.Fbeam:g} Sbeam={c.Sbeam:g}\n",
        f"  Xclose={c.Xclose:g} Yclose={c.Yclose:g}\n",
        f"  Fclose={c.Fclose:g} Sclose={c.Sclose:g}\n",
        f"  DIRECTION_OF_DETECTOR_X-AXIS= {_g3(d.fdet_vector)}\n",
        f"  DIRECTION_OF_DETECTOR_Y-AXIS= {_g3(d.sdet_vector)}\n",
        f"  DIRECTION_OF_DETECTOR_Z-AXIS= {_g3(d.odet_vector)}\n",
        f"  INCIDENT_BEAM_DIRECTION= {_g3(d.beam_vector)}\n",
        f"  spindle ROTATION_AXIS= {_g3(d.spindle_vector)}\n",
        f"  POLARIZATION_PLANE_NORMAL= {_g3(pnormal)}\n",
        f"  dials origin= {d.dials_origin[0]:g} {d.dials_origin[1]:g} {d.dials_origin[2]:g}\n",
        f"  roi: {roi_xmin} < x < {roi_xmax} && {roi_ymin} < y < {roi_ymax}\n",
        f"  hdivrange={s.hdivrange:g} hdivstep={s.hdivstep:g}  radians\n",
        f"  vdivrange={s.vdivrange:g} vdivstep={s.vdivstep:g}  radians\n",
        f"  {r.sources.divsteps} divergence steps\n",
        f"  {len(r.sources.rows)} sources\n",
        f"  {s.mosaic_domains} mosaic domains over mosaic spread of "
        f"{s.mosaic_spread * RTD:g} degrees\n",
        f"  {s.phisteps} phi steps from {s.phi0 * RTD:g} to {(s.phi0 + s.osc) * RTD:g} degrees\n",
        f"  {oversample}x{oversample} pixel oversample steps{extra}\n"]
    if o.mask_image is not None:
        lines.append(f"  skipping zero-flagged pixels in {o.maskfilename}\n")
    return lines


def _noise(r: ResolvedSetup) -> list[str]:
    o = r.options
    if not o.calculate_noise:
        return []
    return ["\n  noise image paramters:\n", f"  seed: {o.seed}\n",
            f"  water droplet size: {o.water_size:g} m\n"]
