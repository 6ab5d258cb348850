"""The X-ray beam: direction, polarization, divergence, spectrum and fluence.

Vectors are in nanoBragg's lab frame (MOSFLM convention: the beam along +x);
lengths in metres, angles in radians.  The fields are what nanoBragg.c's
beam flags set (``-beam_vector``, ``-polar_vector``, ``-polar``,
``-hdivrange``/``-vdivrange`` and steps, ``-lambda``/``-dispersion``,
``-fluence``), resolved as C resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detector import unit_vector

__all__ = ["Beam", "Spectrum"]


@dataclass(frozen=True)
class Spectrum:
    """Wavelengths and their weights.

    Parameters
    ----------
    wavelengths_m : (n,) float
        Wavelengths (m), each > 0.
    weights : (n,) float, optional
        Relative weights (default: all 1).  nanoBragg.c's pixel loop weighs
        every source equally (it reads a -sourcefile's intensities and does not
        use them); :meth:`nbnumba.Simulation.from_models` therefore refuses
        unequal weights rather than ignore them (repeat a wavelength to weigh it
        more).

    Raises
    ------
    ValueError
        No wavelength, a non-positive or non-finite one, or weights of another
        length.
    """

    wavelengths_m: tuple[float, ...]
    weights: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        lam = np.atleast_1d(np.asarray(self.wavelengths_m, dtype=float))
        if lam.ndim != 1 or lam.size == 0:
            raise ValueError("a spectrum needs at least one wavelength")
        if not np.all(np.isfinite(lam) & (lam > 0)):
            raise ValueError(f"wavelengths must be finite and > 0 m, got {lam.tolist()}")
        w = np.ones_like(lam) if len(self.weights) == 0 else \
            np.atleast_1d(np.asarray(self.weights, dtype=float))
        if w.shape != lam.shape or not np.all(np.isfinite(w) & (w >= 0)):
            raise ValueError("weights: one finite, non-negative weight per wavelength")
        object.__setattr__(self, "wavelengths_m", tuple(float(x) for x in lam))
        object.__setattr__(self, "weights", tuple(float(x) for x in w))

    def __len__(self) -> int:
        return len(self.wavelengths_m)

    @property
    def uniform(self) -> bool:
        """Whether every weight is the same (what nanoBragg.c's kernel assumes)."""
        return len(set(self.weights)) == 1


@dataclass(frozen=True)
class Beam:
    """The incident beam.

    Parameters
    ----------
    wavelength_m : float
        Central wavelength (m): C's ``lambda0`` (``-lambda`` Å, ``-energy`` eV).
    direction : (3,) float
        Unit propagation direction, from the source towards the sample (C's
        ``beam_vector``; +x in the MOSFLM convention).
    polarization_axis : (3,) float
        Unit E-vector axis (C's ``polar_vector``).
    polarization : float
        Kahn polarization factor (C's ``-polar``; 0 is C's default).
    nopolar : bool
        Switch the polarization factor off (C's ``-nopolar``).
    divergence_h_rad, divergence_v_rad : float
        Full horizontal / vertical divergence ranges (C's ``hdivrange``,
        ``vdivrange``); -1 for C's "not given".
    divergence_steps_h, divergence_steps_v : int
        Grid steps across each range (C's ``hdivsteps``, ``vdivsteps``); -1
        for "not given".
    divergence_step_h_rad, divergence_step_v_rad : float
        Angle between grid steps (C's ``hdivstep``, ``vdivstep``); -1 for
        "not given".
    round_divergence : bool
        Cut the divergence grid to an ellipse (C's default ``-round_div``).
    dispersion : float
        Spectral width as a fraction of ``wavelength_m`` (C's ``-dispersion``).
    dispersion_steps : int
        Wavelengths across it (C's ``-dispsteps``); -1 for "not given".
    spectrum : Spectrum or None
        Explicit wavelengths: replaces ``wavelength_m``/``dispersion`` (each
        divergence direction gets every wavelength).
    fluence_photons_per_m2 : float
        Integrated photons per m² (C's ``fluence``).

    Raises
    ------
    ValueError
        Non-unit-able vectors or a non-positive wavelength.
    """

    wavelength_m: float = 1.0e-10
    direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    polarization_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    polarization: float = 0.0
    nopolar: bool = False
    divergence_h_rad: float = -1.0
    divergence_v_rad: float = -1.0
    divergence_steps_h: int = -1
    divergence_steps_v: int = -1
    divergence_step_h_rad: float = -1.0
    divergence_step_v_rad: float = -1.0
    round_divergence: bool = True
    dispersion: float = 0.0
    dispersion_steps: int = -1
    spectrum: Spectrum | None = None
    fluence_photons_per_m2: float = 125932015286227086360700780544.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.wavelength_m) and self.wavelength_m > 0):
            raise ValueError(f"wavelength_m must be finite and > 0, got {self.wavelength_m}")
        object.__setattr__(self, "direction", unit_vector(self.direction, "direction"))
        object.__setattr__(self, "polarization_axis",
                           unit_vector(self.polarization_axis, "polarization_axis"))

    @property
    def energy_eV(self) -> float:
        """Photon energy (eV) of ``wavelength_m`` (C's 12398.42 eV·Å)."""
        return 12398.42 / (self.wavelength_m * 1e10)
