"""``-geom FILE.geom`` and ``-expt FILE.expt``: another program's file on nanoBragg's flags.

The file's models replace the detector flags, and the beam, crystal and scan flags where
the file holds them; a flag given *after* ``-geom``/``-expt`` still applies where it makes
sense (``specs/models.md``, "Flags"):

========================  ==========================================================
flags                     with a model file
========================  ==========================================================
detector geometry         ignored, one warning naming them (the panels come from the
(-distance -pixel         file); ``-distance``/``-close_distance`` *after* ``-geom``
-Xbeam -detpixels -roi    set CrystFEL's ``clen`` (every panel's z is clen + coffset)
-twotheta -curved_det     ``-mosflm``... conventions: ignored (the file's frame is
-beam_vector ...)         mapped by :mod:`nbnumba.models.frames`)
-lambda / -energy         the file's photon energy / wavelength wins, unless given after
-polar                    ``.expt``: the file's polarization fraction wins, unless after
-cell / -mat / -misset    ``.expt`` with a crystal: the file's crystal wins, unless after
-phi / -osc               ``.expt`` with a scan: the file's scan wins, unless after
-spindle_axis             ``.expt`` with a goniometer: the file's axis wins, unless after
-detector_thick           as usual: a ``.expt``'s sensor thickness/mu is not applied
(-detector_abs)           (one note says so when the file's sensor is thicker than 0)
everything else           applies as usual (N, mosaic, hkl, oversampling, noise ...)
========================  ==========================================================

:func:`read_model_file` reads the file; :func:`settle_options` puts the ignored flags back
to C's defaults (so that the flags' own one-panel setup still resolves) and returns the
warnings; :func:`combine` puts the file's models into the experiment the remaining flags
resolve to. :class:`nbnumba.Simulation` strings them together.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..config import CUSTOM, MOSFLM, Options
from ..errors import UsageError
from ..models import Experiment, Goniometer
from ..readers.crystfel_geom import CrystFELGeometry, read_geom
from ..readers.dials_expt import DialsExperiment, read_expt

__all__ = ["DETECTOR_FIELDS", "ModelFile", "read_model_file", "settle_options", "flags_only",
           "combine"]

#: Options fields of the flags' one detector: a model file's panels replace them
DETECTOR_FIELDS = (
    "pixel_size", "fpixels", "spixels", "distance", "close_distance", "detsize_f",
    "detsize_s", "fdet_vector", "sdet_vector", "odet_vector", "pix0_vector",
    "pix0_vector_given", "beam_vector", "detector_rotx", "detector_roty", "detector_rotz",
    "twotheta_axis", "detector_pivot", "detector_twotheta", "curved_detector", "Xbeam",
    "Ybeam", "Xclose", "Yclose", "ORGX", "ORGY", "roi_xmin", "roi_xmax", "roi_ymin",
    "roi_ymax",
)


@dataclass(frozen=True)
class ModelFile:
    """What ``-geom``/``-expt`` read: one of ``geom``/``expt``, and the flag for messages."""

    flag: str
    geom: CrystFELGeometry | None = None
    expt: DialsExperiment | None = None

    @property
    def detector(self):
        return self.geom.detector if self.geom is not None else self.expt.detector

    @property
    def notes(self) -> tuple[str, ...]:
        return (self.geom or self.expt).notes


def _after(o: Options, name: str) -> bool:
    """Whether the last flag that set ``name`` comes after ``-geom``/``-expt``."""
    at = o.set_by.get(name)
    return at is not None and at[0] >= o.model_file_at


def read_model_file(o: Options) -> ModelFile:
    """Read ``o.model_file`` (``-geom``: CrystFEL, ``-expt``: DIALS).

    ``-distance``/``-close_distance`` after ``-geom`` give CrystFEL's ``clen``.

    Raises
    ------
    InputFileError
        The file cannot be read or is malformed (exit 3).
    UsageError
        An experiment list without a detector.
    """
    flag = f"-{o.model_kind} {o.model_file}"
    if o.model_kind == "geom":
        clen = None
        for name in ("close_distance", "distance"):
            if _after(o, name) and math.isfinite(getattr(o, name)):
                clen = float(getattr(o, name))
                break
        return ModelFile(flag=flag, geom=read_geom(o.model_file, clen_m=clen))
    expt = read_expt(o.model_file)
    if expt.detector is None:
        raise UsageError(f"{flag}: the experiment has no detector")
    return ModelFile(flag=flag, expt=expt)


def settle_options(o: Options, mf: ModelFile) -> list[str]:
    """Put the flags a model file replaces back to C's defaults (in place); the warnings.

    Raises
    ------
    UsageError
        ``-img``/``-mask`` (one detector's header and pixels), ``-sourcefile`` (its
        positions are not part of the beam model yet).
    """
    if o.maskfilename is not None or o.imginfilename is not None:
        raise UsageError(f"{mf.flag}: -img/-mask describe one detector's header and pixels; "
                         "with a model file the detector comes from the file")
    if o.sourcefilename is not None:
        raise UsageError(f"{mf.flag}: -sourcefile cannot be combined with -geom/-expt yet")
    defaults = Options(seed=o.seed)
    ignored: dict[str, None] = {}
    for name in DETECTOR_FIELDS:
        at = o.set_by.get(name)
        if at is None:
            continue
        if name in ("distance", "close_distance", "detector_pivot") and mf.geom is not None \
                and _after(o, "distance" if name == "detector_pivot" else name):
            pass  # became clen
        else:
            ignored[at[1]] = None
        setattr(o, name, getattr(defaults, name))
    if o.beam_convention not in (MOSFLM, CUSTOM):
        at = o.set_by.get("beam_convention")
        ignored[at[1] if at else o.beam_convention] = None
        o.beam_convention = MOSFLM
        # the convention's beam/polarization/spindle vectors go with it
        for name in ("polar_vector", "spindle_vector"):
            if name not in o.set_by:
                setattr(o, name, getattr(defaults, name))
    warnings = []
    if ignored:
        warnings.append(f"warning: {', '.join(ignored)} ignored: the detector comes from "
                        f"{mf.flag}")
    warnings += [f"warning: {mf.flag}: {note}" for note in mf.notes]
    if mf.expt is not None:
        e = mf.expt
        sensors = {(p.thickness_m, p.material) for p in e.detector.panels
                   if p.thickness_m > 0}
        if sensors and "detector_thick" not in o.set_by:
            said = ", ".join(f"{t * 1e3:g} mm {m}" for t, m in sorted(sensors))
            warnings.append(f"note: {mf.flag}: the file's sensor ({said}) is not applied as "
                            "detector absorption (nanoBragg's thin detector); give "
                            "-detector_thick/-detector_abs to model it")
        later = []
        if e.wavelength_m is not None and not _after(o, "lambda0") and "lambda0" in o.set_by:
            later.append(o.set_by["lambda0"][1])
        if e.real_space_m is not None:
            later += [o.set_by[n][1] for n in ("user_cell", "matfilename", "misset_flag")
                      if n in o.set_by and not _after(o, n)]
        if e.osc_deg is not None:
            later += [o.set_by[n][1] for n in ("phi0", "osc")
                      if n in o.set_by and not _after(o, n)]
        if later:
            warnings.append(f"warning: {', '.join(dict.fromkeys(later))} replaced by "
                            f"{mf.flag} (give them after it to keep them)")
    elif mf.geom is not None and mf.geom.wavelength_m is not None and \
            "lambda0" in o.set_by and not _after(o, "lambda0"):
        warnings.append(f"warning: {o.set_by['lambda0'][1]} replaced by the photon energy of "
                        f"{mf.flag} (give it after it to keep it)")
    return warnings


def flags_only(o: Options, mf: ModelFile) -> Options:
    """A copy of ``o`` without the model file, to resolve what the flags say.

    When the file holds the crystal and no flag gives a lattice, the copy gets the file's
    cell (lengths and angles of its a, b, c) as ``-cell``: C's setup wants one, and
    ``-xtal_size`` then counts cells with the file's lengths; :func:`combine` puts the
    file's orientation in place.
    """
    import copy

    out = copy.deepcopy(o)
    out.model_file = None
    e = mf.expt
    if e is not None and e.real_space_m is not None and out.matfilename is None \
            and out.cell_a == 0.0:
        abc = np.asarray(e.real_space_m) * 1e10
        lengths = [float(np.linalg.norm(v)) for v in abc]

        def angle(u, v):
            return math.acos(float(np.dot(u, v)) / (np.linalg.norm(u) * np.linalg.norm(v)))

        out.user_cell = 1
        out.cell_a, out.cell_b, out.cell_c = lengths
        out.alpha, out.beta, out.gamma = (angle(abc[1], abc[2]), angle(abc[0], abc[2]),
                                          angle(abc[0], abc[1]))
    return out


def combine(base: Experiment, o: Options, mf: ModelFile) -> Experiment:
    """The experiment of the remaining flags (``base``) with the file's models in it.

    ``base`` comes from the flags after :func:`settle_options` (its detector is the
    flags' default one and is dropped).
    """
    beam, crystal, scan = base.beam, base.crystal, base.scan
    if mf.geom is not None:
        g = mf.geom
        # CrystFEL's beam runs along its +z: nanoBragg's +x (models.frames)
        beam = dataclasses.replace(beam, direction=(1.0, 0.0, 0.0))
        if g.wavelength_m is not None and not _after(o, "lambda0"):
            # as -energy computes it: (12398.42 / E) / 1e10
            beam = dataclasses.replace(beam, wavelength_m=g.wavelength_m)
        return dataclasses.replace(base, beam=beam, detector=g.detector)
    e = mf.expt
    if e.beam_direction is not None:
        kw: dict = {"direction": e.beam_direction}
        if not _after(o, "lambda0"):
            kw["wavelength_m"] = e.wavelength_m
        if e.polarization_normal is not None and not _after(o, "polar_vector"):
            axis = np.cross(e.beam_direction, e.polarization_normal)
            if np.linalg.norm(axis) > 0:
                kw["polarization_axis"] = tuple(axis / np.linalg.norm(axis))
        if e.polarization_fraction is not None and not _after(o, "polarization"):
            kw["polarization"] = 2.0 * e.polarization_fraction - 1.0  # Kahn factor
        beam = dataclasses.replace(beam, **kw)
    lattice_after = any(_after(o, n) for n in ("user_cell", "matfilename"))
    if e.real_space_m is not None and not lattice_after:
        recip = np.linalg.inv(np.asarray(e.real_space_m) * 1e10).T  # rows a*, b*, c* (1/Å)
        misset = tuple(o.misset_angles) if (_after(o, "misset_flag") and
                                            o.misset_flag == 1) else None
        crystal = dataclasses.replace(crystal, cell_angstrom=None, misset_rad=misset,
                                      reciprocal_vectors_per_angstrom=recip)
    if e.osc_deg is not None or e.spindle is not None:
        kw = {}
        if e.osc_deg is not None:
            if not _after(o, "phi0"):
                kw["phi_start_rad"] = math.radians(e.phi_start_deg)
            if not _after(o, "osc"):
                kw["oscillation_rad"] = math.radians(e.osc_deg)
                if e.osc_deg == 0.0 and scan.phi_steps < 0 and scan.phi_step_rad < 0:
                    kw["phi_steps"] = 1  # a still: one φ step (C would take two of 0)
        if e.spindle is not None and not _after(o, "spindle_vector"):
            kw["goniometer"] = Goniometer(e.spindle)
        scan = dataclasses.replace(scan, **kw)
    # The file's sensor describes the real detector (dxtbx needs a thickness > 0, and our
    # own -expt_out writes a nominal one): nanoBragg's detector absorption comes from
    # -detector_thick/-detector_abs only, as without a model file (specs/models.md).
    thick = max(float(o.detector_thick), 0.0)
    detector = dataclasses.replace(e.detector, panels=tuple(
        dataclasses.replace(p, thickness_m=thick) for p in e.detector.panels))
    return dataclasses.replace(base, beam=beam, crystal=crystal, scan=scan, detector=detector)
