"""How finely nanoBragg.c samples φ, divergence, dispersion, sensor depth and mosaicity.

Applies the rules of :mod:`nbnumba.setup.rules` in C's order (lines 1389-1680)
and C's sanity checks that switch a sampling off when its range or step is
not positive.  Nothing here prints: :mod:`nbnumba.setup.report` words it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Options
from . import rules

__all__ = ["Sampling", "resolve_sampling"]


@dataclass
class Sampling:
    """Step counts, ranges (rad, m or fraction) and steps, as C leaves them."""

    phi0: float  # rad
    phisteps: int
    osc: float  # rad
    phistep: float  # rad
    hdivsteps: int
    hdivrange: float  # rad
    hdivstep: float  # rad
    vdivsteps: int
    vdivrange: float  # rad
    vdivstep: float  # rad
    dispsteps: int
    dispersion: float  # fraction of lambda0
    dispstep: float
    thicksteps: int
    thick: float  # m
    thickstep: float  # m
    detector_mu: float  # 1/m
    mu_from_thickness: bool  # no -detector_abs: C set mu = 1/thickness and warned
    mosaic_spread: float  # rad
    mosaic_domains: int
    mosaic_adjusted: rules.MosaicAdjustment | None  # why C changed the domains, or None

    @property
    def phi_values(self) -> list[float]:
        """φ of each step (rad): ``phi0 + phistep·i`` (line 2240)."""
        return [self.phi0 + self.phistep * phi_tic for phi_tic in range(self.phisteps)]


def resolve_sampling(o: Options) -> Sampling:
    """C's sampling rules in C's order (lines 1389-1680).

    Parameters
    ----------
    o : Options
        Parsed flags in C's internal units.

    Returns
    -------
    Sampling
    """
    phisteps, osc, phistep = rules.phi_sampling(o.phisteps, o.osc, o.phistep)
    hdivsteps, hdivrange, hdivstep = rules.pick_steps(o.hdivsteps, o.hdivrange, o.hdivstep, 1.0)
    vdivsteps, vdivrange, vdivstep = rules.pick_steps(o.vdivsteps, o.vdivrange, o.vdivstep, 1.0)
    # C has no flag for the dispersion step: it stays at its initial -1 (line 198)
    dispsteps, dispersion, dispstep = rules.pick_steps(o.dispsteps, o.dispersion, -1.0, 1.0)
    # detector thickness sampling (line 1580): differs from the others in two places
    thicksteps, thick, thickstep = rules.thickness_sampling(
        o.detector_thicksteps, o.detector_thick, o.detector_thickstep)
    detector_mu = o.detector_mu
    mu_from_thickness = thick > 0.0 and detector_mu < 0.0
    if mu_from_thickness:
        detector_mu = 1.0 / thick
    mosaic_spread, mosaic_domains, mosaic_adjusted = rules.mosaic_sampling(o.mosaic_spread,
                                                                           o.mosaic_domains)
    # sanity checks (line 1660): a sampling with no range or step is switched off
    hdivsteps, hdivrange, hdivstep = rules.switched_off(hdivsteps, hdivrange, hdivstep)
    vdivsteps, vdivrange, vdivstep = rules.switched_off(vdivsteps, vdivrange, vdivstep)
    dispsteps, dispersion, dispstep = rules.switched_off(dispsteps, dispersion, dispstep)
    thicksteps, thick, thickstep = rules.switched_off(thicksteps, thick, thickstep)
    return Sampling(
        phi0=o.phi0, phisteps=phisteps, osc=osc, phistep=phistep,
        hdivsteps=hdivsteps, hdivrange=hdivrange, hdivstep=hdivstep,
        vdivsteps=vdivsteps, vdivrange=vdivrange, vdivstep=vdivstep,
        dispsteps=dispsteps, dispersion=dispersion, dispstep=dispstep,
        thicksteps=thicksteps, thick=thick, thickstep=thickstep, detector_mu=detector_mu,
        mu_from_thickness=mu_from_thickness, mosaic_spread=mosaic_spread,
        mosaic_domains=mosaic_domains, mosaic_adjusted=mosaic_adjusted)
