"""The rotation: a goniometer axis and the φ range one image integrates over.

A still is a scan with one step and no oscillation.  Angles in radians (C's
``-phi``, ``-osc``, ``-phistep`` are in degrees on the command line).
"""

from __future__ import annotations

from dataclasses import dataclass

from .detector import unit_vector

__all__ = ["Goniometer", "Scan"]


@dataclass(frozen=True)
class Goniometer:
    """The rotation axis (C's ``spindle_vector``, unit, lab frame; +z in MOSFLM)."""

    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", unit_vector(self.axis, "axis"))


@dataclass(frozen=True)
class Scan:
    """φ of one image: ``phi_steps`` steps of ``phi_step_rad`` from ``phi_start_rad``.

    Parameters
    ----------
    phi_start_rad : float
        C's ``phi0``.
    phi_step_rad : float
        C's ``phistep``; -1: "not given" (C derives it from the oscillation).
    phi_steps : int
        C's ``phisteps``; -1: "not given" (C's default rule).
    oscillation_rad : float
        C's ``osc`` (the image's φ range); -1: "not given".
    goniometer : Goniometer
        The axis.

    Notes
    -----
    The -1 values are C's own "unset" markers, settled by nanoBragg.c's rules
    (:mod:`nbnumba.setup.sampling`) exactly as for the flags.
    """

    phi_start_rad: float = 0.0
    phi_step_rad: float = -1.0
    phi_steps: int = -1
    oscillation_rad: float = -1.0
    goniometer: Goniometer = Goniometer()

    @classmethod
    def still(cls, phi_rad: float = 0.0, axis=(0.0, 0.0, 1.0)) -> Scan:
        """One φ step, no oscillation."""
        return cls(phi_start_rad=float(phi_rad), phi_step_rad=0.0, phi_steps=1,
                   oscillation_rad=0.0, goniometer=Goniometer(axis))
