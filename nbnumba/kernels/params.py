"""The scalars a kernel sees, packed on the host (kernels never see flags)."""

from __future__ import annotations

from typing import NamedTuple


class KernelParams(NamedTuple):
    """Per-run scalars of the pixel loop, in C's internal units (m, rad, Å for hkl space)."""

    oversample: int
    subpixel_size: float  # m
    pixel_size: float  # m
    distance: float  # m
    close_distance: float  # m
    detector_thicksteps: int
    detector_thickstep: float  # m
    detector_thick: float  # m
    detector_mu: float  # 1/m
    curved_detector: bool
    point_pixel: bool
    oversample_thick: bool
    oversample_polar: bool
    oversample_omega: bool
    nopolar: bool
    polarization: float  # Kahn factor
    dmin: float  # m
    phisteps: int
    mosaic_domains: int
    xtal_shape: int
    Na: float
    Nb: float
    Nc: float
    fudge: float
    default_F: float
    hkls: int
    h_min: int
    h_max: int
    h_range: int
    k_min: int
    k_max: int
    k_range: int
    l_min: int
    l_max: int
    l_range: int
    water_size: float  # m
    I_bg: float  # photons/sr before scaling
    r_e_sqr: float  # m^2
    fluence: float  # photons/m^2
    steps: int
