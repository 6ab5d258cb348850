"""The run's detector, beam and spindle in well-defined frames, for the image writers.

:class:`DetectorGeometry` is a small immutable record of everything the processing
formats (miniCBF, NXmx, XDS.INP, pyFAI PONI) need, taken from a prepared
:class:`nbnumba.setup.scene.Scene` after C's rules have resolved conventions, pivots,
rotations and two-theta (nanoBragg.c lines 1162-1770). Vectors are in nanoBragg's lab
frame (the one ``-trace_pixel`` prints), lengths in metres, angles in degrees where the
name says so.

Pixel ``(slow, fast)`` (0-based) has its centre at::

    pix0 + (fast + 0.5) * pixel_size * fdet + (slow + 0.5) * pixel_size * sdet

(a flat detector; nanoBragg.c's pixel loop with one sub-pixel), so ``pix0`` is the outer
corner of pixel (0, 0). ``specs/formats.md`` gives the frame conversions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["DetectorGeometry", "adc_baseline", "lab_to_dxtbx", "lab_to_mcstas",
           "saturation_of", "silicon_mu_per_mm", "NOMINAL_SENSOR_THICKNESS_M", "MCSTAS_TO_DXTBX"]

Vec3 = tuple[float, float, float]

# nanoBragg lab -> McStas for each nominal beam direction (beam along +z afterwards);
# signed permutations, so the conversion is exact. +x (MOSFLM/DENZO/CUSTOM default)
# gives McStas (-z, y, x): the spindle (0,0,1) becomes (-1,0,0), as at DLS, and the
# McStas -> imgCIF turn that dxtbx makes (x, z negated) gives nanoBragg's DIALS_ORIGIN.
_NOMINAL = {
    (0, +1): ((0, 0, -1), (0, 1, 0), (1, 0, 0)),
    (0, -1): ((0, 0, 1), (0, 1, 0), (-1, 0, 0)),
    (1, +1): ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
    (1, -1): ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    (2, +1): ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    (2, -1): ((-1, 0, 0), (0, 1, 0), (0, 0, -1)),
}


def _nominal_mcstas(beam: Vec3) -> np.ndarray:
    """A rotation taking ``beam`` onto McStas +z that ignores the spindle (fallback)."""
    b = np.asarray(beam, dtype=np.float64)
    k = int(np.argmax(np.abs(b)))
    sign = 1 if b[k] > 0 else -1
    R = np.array(_NOMINAL[(k, sign)], dtype=np.float64)
    v = R @ b
    if v[0] == 0.0 and v[1] == 0.0:
        return R
    # Rodrigues: the rotation about v x z taking v onto z (angle < 90 degrees here)
    v = v / np.linalg.norm(v)
    axis = np.cross(v, (0.0, 0.0, 1.0))
    s = float(np.linalg.norm(axis))
    c = float(v[2])
    axis /= s
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    Q = np.eye(3) + s * K + (1.0 - c) * (K @ K)
    return Q @ R


# dxtbx's lab frame is McStas turned 180 degrees about y (dxtbx.nexus.MCSTAS_TO_IMGCIF):
# a proper rotation that is its own inverse
MCSTAS_TO_DXTBX = np.diag([-1.0, 1.0, -1.0])


def lab_to_dxtbx(beam: Vec3, spindle: Vec3 | None = None) -> np.ndarray:
    """THE proper rotation (3×3, det +1) taking nanoBragg lab vectors to dxtbx's lab frame.

    dxtbx (imgCIF): the beam travels along -z (``Beam.direction``, sample to source, is
    +z), the rotation axis along +x. The rows of the result are dxtbx's x, y, z written
    in nanoBragg's frame: z = -beam, x = the spindle's part perpendicular to the beam
    (normalised), y = z × x. Every writer that dxtbx reads (NXmx through McStas, the
    miniCBF's fixed frame, the ``.expt``) uses this one mapping, so their detectors,
    axes and crystals agree; a miniCBF-describable geometry (fast axis along the spindle,
    detector facing the beam) lands exactly on dxtbx's CBF frame (fast +x, slow -y).
    Axis-aligned vectors map exactly (signed permutations). When the spindle is missing
    or parallel to the beam, :func:`_nominal_mcstas`'s choice (turned into dxtbx's
    frame) is used.

    Parameters
    ----------
    beam : 3 floats, unit vector (nanoBragg's ``beam_vector``, direction of travel)
    spindle : 3 floats, optional (nanoBragg's ``spindle_vector``)

    Returns
    -------
    ndarray (3, 3), float64; ``dxtbx = R @ lab``; ``R.T`` maps back.
    """
    b = np.asarray(beam, dtype=np.float64)
    b = b / np.linalg.norm(b)
    if spindle is not None:
        a = np.asarray(spindle, dtype=np.float64)
        perp = a - float(np.dot(a, b)) * b
        norm = float(np.linalg.norm(perp))
        if norm > 1e-9 * max(float(np.linalg.norm(a)), 1e-300):
            x = perp / norm
            z = -b
            y = np.cross(z, x)
            return np.array([x, y, z])
    return MCSTAS_TO_DXTBX @ _nominal_mcstas(beam)


def lab_to_mcstas(beam: Vec3, spindle: Vec3 | None = None) -> np.ndarray:
    """The proper rotation (3×3) taking nanoBragg lab vectors to the McStas (NeXus) frame.

    McStas: z along the beam, y up, x completing a right-handed set. It is
    :func:`lab_to_dxtbx` followed by dxtbx's fixed McStas turn (x and z negated), so an
    NXmx file read by dxtbx gives exactly :func:`lab_to_dxtbx`'s vectors.

    Returns
    -------
    ndarray (3, 3), float64; ``mcstas = R @ lab``.
    """
    return MCSTAS_TO_DXTBX @ lab_to_dxtbx(beam, spindle)


# A sensor for the files when the run has none (-detector_thick 0, C's thin detector):
# dxtbx's parallax model needs t > 0 (DXTBX_ASSERT(t0 > 0)). One micrometre of silicon
# moves no pixel's dxtbx position by more than 0.5 um * tan(2theta) (< 0.01 pixel for
# 2theta < 80 deg and pixels >= 50 um), and the simulation is not touched.
NOMINAL_SENSOR_THICKNESS_M = 1e-6

# Silicon's X-ray mass attenuation coefficient (cm^2/g; NIST XCOM/FFAST, with coherent
# scattering) above its K edge, for dxtbx's ``mu`` of the nominal sensor; density 2.33.
_SI_MU_RHO = ((2.0, 2777.0), (3.0, 978.4), (4.0, 452.9), (5.0, 245.1), (6.0, 147.0),
              (8.0, 64.68), (10.0, 33.89), (15.0, 10.34), (20.0, 4.464), (30.0, 1.436),
              (40.0, 0.7012), (50.0, 0.4385), (60.0, 0.3207), (80.0, 0.2228),
              (100.0, 0.1835))
_SI_DENSITY = 2.33
_HC_KEV_ANGSTROM = 12.398419843320026


def silicon_mu_per_mm(wavelength_m: float) -> float:
    """Silicon's linear attenuation coefficient (1/mm) at a wavelength (m).

    Log-log interpolation of :data:`_SI_MU_RHO` (2-100 keV; clamped outside), close to
    cctbx's table that dxtbx uses (a few per cent).
    """
    energy = _HC_KEV_ANGSTROM / (wavelength_m * 1e10)
    e = np.log([p[0] for p in _SI_MU_RHO])
    m = np.log([p[1] for p in _SI_MU_RHO])
    mu_rho = math.exp(float(np.interp(math.log(energy), e, m)))
    return mu_rho * _SI_DENSITY / 10.0


def adc_baseline(adc_offset: float) -> int:
    """The integer our counted formats subtract from C's pixels: ``adc`` rounded (half up)."""
    return int(math.floor(adc_offset + 0.5))


def saturation_of(adc_offset: float) -> int:
    """The largest count of an int/noise image after the ADC offset is subtracted.

    nanoBragg.c clips its 16-bit images at 65535 (lines 3150, 3250); our counted
    formats store ``value - adc_baseline(adc)``, which saturates at this value.
    """
    return 65535 - adc_baseline(adc_offset)


def _t(v: Any) -> Vec3:
    return (float(v[0]), float(v[1]), float(v[2]))


@dataclass(frozen=True)
class DetectorGeometry:
    """A run's detector, beam and rotation, resolved as nanoBragg.c resolves them.

    Attributes
    ----------
    fast_pixels, slow_pixels : int
        Image size (C's ``fpixels``, ``spixels``); data arrays are [slow, fast].
    pixel_size_m : float
        Square pixels (m).
    fdet, sdet, odet : 3 floats
        Unit fast, slow and normal vectors in nanoBragg's lab frame (after rotations
        and two-theta; nanoBragg.c line 1724).
    pix0_m : 3 floats
        Lab position (m) of the outer corner of pixel (0, 0) (C's ``pix0_vector``).
    beam : 3 floats
        Unit direction of travel of the incident beam (C's ``beam_vector``).
    spindle : 3 floats
        Unit rotation axis; φ rotates the crystal right-handedly about it.
    polar : 3 floats
        Unit polarization (E-vector) direction.
    wavelength_m : float
        Central wavelength (m).
    phi_start_deg, osc_deg : float
        Start angle of the first image and the angle one image covers (deg).
    exposure_s : float
        Exposure time of one image (s), C's ``-exposure``.
    adc_offset : float
        C's ``-adc`` (ADU added to every int/noise pixel).
    thickness_m : float
        Sensor thickness (m); 0 for a thin detector.
    curved : bool
        C's ``-curved_det`` (pixels on a sphere: no flat-panel format describes it).
    convention, pivot : str
        C's beam convention and detector pivot (for the record).
    twotheta_deg : float
        Detector two-theta (deg), for the record.
    kahn_factor : float
        C's ``-polar`` (Kahn factor: 0 unpolarized, 1 fully polarized along ``polar``).
    nopolar : bool
        C's ``-nopolar`` (no polarization factor at all).
    detector_mu_per_m : float
        Sensor attenuation coefficient (1/m) C uses with ``thickness_m > 0``
        (``-detector_abs``, else C's ``1/thickness``); 0 for a thin detector.
    """

    fast_pixels: int
    slow_pixels: int
    pixel_size_m: float
    fdet: Vec3
    sdet: Vec3
    odet: Vec3
    pix0_m: Vec3
    beam: Vec3
    spindle: Vec3
    polar: Vec3
    wavelength_m: float
    phi_start_deg: float
    osc_deg: float
    exposure_s: float = 1.0
    adc_offset: float = 40.0
    thickness_m: float = 0.0
    curved: bool = False
    convention: str = "MOSFLM"
    pivot: str = "BEAM"
    twotheta_deg: float = 0.0
    kahn_factor: float = 0.0
    nopolar: bool = False
    detector_mu_per_m: float = 0.0

    # ------------------------------------------------------------------ building

    @classmethod
    def from_scene(cls, scene, *, phi_start_deg: float | None = None,
                   osc_deg: float | None = None) -> DetectorGeometry:
        """The geometry of a prepared :class:`~nbnumba.setup.scene.Scene`.

        ``phi_start_deg``/``osc_deg`` default to the scene's ``-phi`` and C's frame
        oscillation (``header["osc"]``, the φ range of one image).
        """
        from ..constants import RTD

        o = scene.opts
        det = np.asarray(scene.det, dtype=np.float64)
        h = scene.header
        spindle = getattr(scene, "spindle_vector", None)
        if spindle is None:
            spindle = o.spindle_vector
        return cls(
            fast_pixels=int(scene.fpixels), slow_pixels=int(scene.spixels),
            pixel_size_m=float(scene.params.pixel_size),
            fdet=_t(det[0]), sdet=_t(det[1]), odet=_t(det[2]), pix0_m=_t(det[3]),
            beam=_t(det[4]), polar=_t(det[5]), spindle=_t(spindle),
            wavelength_m=float(h["lambda0"]),
            phi_start_deg=float(h["phi0"] * RTD if phi_start_deg is None else phi_start_deg),
            osc_deg=float(h["osc"] * RTD if osc_deg is None else osc_deg),
            exposure_s=float(o.exposure), adc_offset=float(o.adc_offset),
            thickness_m=float(scene.params.detector_thick),
            curved=bool(scene.params.curved_detector), convention=str(o.beam_convention),
            pivot=str(o.detector_pivot), twotheta_deg=float(h["detector_twotheta"] * RTD),
            kahn_factor=float(o.polarization), nopolar=bool(o.nopolar),
            detector_mu_per_m=float(scene.params.detector_mu)
            if float(scene.params.detector_thick) > 0 else 0.0)

    def with_phi(self, phi_start_deg: float) -> DetectorGeometry:
        """The same geometry for an image starting at another φ (deg)."""
        d = self.to_dict()
        d["phi_start_deg"] = float(phi_start_deg)
        return DetectorGeometry.from_dict(d)

    def to_dict(self) -> dict:
        """JSON-ready (lists for vectors); :meth:`from_dict` inverts it exactly."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> DetectorGeometry:
        names = set(cls.__dataclass_fields__)
        kw = {k: (_t(v) if isinstance(v, (list, tuple)) else v) for k, v in d.items()
              if k in names}
        return cls(**kw)

    # --------------------------------------------------------------- derived

    @property
    def normal(self) -> np.ndarray:
        """fdet × sdet (unit for orthonormal axes): the normal the formats use."""
        return np.cross(self.fdet, self.sdet)

    @property
    def close_distance_m(self) -> float:
        """Signed distance from the sample to the detector plane along :attr:`normal`."""
        return float(np.dot(self.pix0_m, self.normal))

    @property
    def orgx(self) -> float:
        """Foot of the perpendicular from the sample, XDS pixel units (C's ORGX)."""
        return -float(np.dot(self.pix0_m, self.fdet)) / self.pixel_size_m + 0.5

    @property
    def orgy(self) -> float:
        return -float(np.dot(self.pix0_m, self.sdet)) / self.pixel_size_m + 0.5

    def beam_spot_m(self) -> tuple[float, float]:
        """Where the beam meets the detector plane: (fast, slow) in m from pixel (0, 0)'s
        outer corner (C's Fbeam, Sbeam); nan when the beam misses the plane."""
        n = self.normal
        b = np.asarray(self.beam)
        bn = float(np.dot(b, n))
        if bn == 0.0:
            return math.nan, math.nan
        hit = b * (self.close_distance_m / bn) - np.asarray(self.pix0_m)
        return float(np.dot(hit, self.fdet)), float(np.dot(hit, self.sdet))

    def pixel_centres(self, slow: Any, fast: Any) -> np.ndarray:
        """Lab positions (m) of pixel centres; ``slow``/``fast`` broadcast, result (..., 3).

        Flat detector only (the formats' model); see :meth:`flat_problems`.
        """
        s = np.asarray(slow, dtype=np.float64)[..., None]
        f = np.asarray(fast, dtype=np.float64)[..., None]
        px = self.pixel_size_m
        return (np.asarray(self.pix0_m) + (f + 0.5) * px * np.asarray(self.fdet)
                + (s + 0.5) * px * np.asarray(self.sdet))

    def two_theta(self, slow: Any, fast: Any) -> np.ndarray:
        """Scattering angle (rad) of pixel centres."""
        p = self.pixel_centres(slow, fast)
        b = np.asarray(self.beam)
        # atan2(|p x b|, p.b): accurate near the beam, where acos loses digits
        return np.arctan2(np.linalg.norm(np.cross(p, b), axis=-1), p @ b)

    def mcstas(self) -> np.ndarray:
        """:func:`lab_to_mcstas` for this beam and spindle."""
        return lab_to_mcstas(self.beam, self.spindle)

    def dxtbx(self) -> np.ndarray:
        """:func:`lab_to_dxtbx` for this beam and spindle (the one lab → dxtbx mapping)."""
        return lab_to_dxtbx(self.beam, self.spindle)

    @property
    def sensor_thickness_m(self) -> float:
        """The sensor thickness the files state: the run's, else
        :data:`NOMINAL_SENSOR_THICKNESS_M` (silicon)."""
        return self.thickness_m if self.thickness_m > 0 else NOMINAL_SENSOR_THICKNESS_M

    @property
    def sensor_mu_per_mm(self) -> float:
        """The sensor's attenuation coefficient (1/mm): the run's (C's ``detector_mu``)
        with a thick detector, else silicon's at the wavelength
        (:func:`silicon_mu_per_mm`)."""
        if self.thickness_m > 0 and self.detector_mu_per_m > 0:
            return self.detector_mu_per_m / 1000.0
        return silicon_mu_per_mm(self.wavelength_m)

    @property
    def polarization_fraction(self) -> float:
        """dxtbx's ``polarization_fraction`` (XDS's convention) for C's Kahn factor:
        ``(1 + K) / 2`` (0.5 unpolarized); ``-nopolar`` gives 0.5, the nearest."""
        return 0.5 if self.nopolar else 0.5 * (1.0 + self.kahn_factor)

    def flat_problems(self) -> list[str]:
        """Why a flat-panel format (NXmx, XDS, PONI) cannot describe this detector exactly."""
        problems = []
        if self.curved:
            problems.append("-curved_det places pixels on a sphere; the file describes "
                            "the flat detector before curving")
        f, s = np.asarray(self.fdet), np.asarray(self.sdet)
        if abs(float(np.dot(f, s))) > 1e-12:
            problems.append("the fast and slow axes are not perpendicular")
        return problems

    def minicbf_problems(self) -> list[str]:
        """Why a miniCBF header (perpendicular detector, fast axis along the spindle,
        slow axis down, dxtbx's and XDS's reading) cannot describe this geometry."""
        problems = self.flat_problems()
        b = np.asarray(self.beam)
        n = self.normal
        if abs(float(np.dot(np.asarray(self.fdet), b))) > 1e-12 or \
                abs(float(np.dot(np.asarray(self.sdet), b))) > 1e-12 or float(np.dot(n, b)) <= 0:
            problems.append("the detector is not perpendicular to the beam with fast x slow "
                            "along it (rotations or two-theta)")
        elif float(np.dot(np.asarray(self.spindle), np.asarray(self.fdet))) < 1.0 - 1e-12:
            problems.append("the rotation axis is not the fast pixel direction")
        return problems
