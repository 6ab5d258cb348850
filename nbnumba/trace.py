"""``-trace_pixel S F``: every quantity of one pixel's loop, as the instrumented C prints it.

The instrumented nanoBragg.c (hoidn/nanoBragg, golden_suite_generator) prints
``TRACE_C:`` lines from inside its pixel loop.  :func:`trace_lines` walks the
same loop for one pixel in plain Python, calling the same small Numba
functions as the kernel (``nbnumba.kernels.physics``), and prints the same
names, in the same order and at the same loop iterations, prefixed
``TRACE_PY:``.  It is a separate code path, so the kernel never tests a trace
flag.  ``specs/trace.md`` says which iteration each key reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .constants import RTD
from .kernels.physics import (
    DET_BEAM,
    DET_FDET,
    DET_ODET,
    DET_PIX0,
    DET_POLAR,
    DET_SDET,
    SQUARE,
    add_term,
    dot3,
    interp_out_of_range,
    lattice_factor,
    nearest_F,
    pixel_value,
    polarization_factor,
    polin3,
    rotate_axis3,
    sincg,
    unitize3,
)
from .setup.scene import Scene

PREFIX = "TRACE_PY:"
PHI_PREFIX = "TRACE_PY_PHI"
SKIP_PREFIX = "TRACE_PY_SKIP"  # ours: C prints nothing for a pixel it skips


def _g(x: float) -> str:
    """C's %.15g."""
    return f"{float(x):.15g}"


def _v(x: float, y: float, z: float) -> str:
    return f"{_g(x)} {_g(y)} {_g(z)}"


@dataclass
class PixelTrace:
    """One pixel walked as C walks it: the trace lines and what the kernel returns."""

    lines: list[str] = field(default_factory=list)
    value: float = 0.0  # photons, the float-image value before the float32 store
    omega_sum: float = 0.0  # sr
    fell_back: bool = False  # interpolation left the F table inside this pixel
    first_pass_used: bool = False


def skip_reason(scene: Scene, slow: int, fast: int) -> str | None:
    """Why C never enters the loop body for this pixel (it then prints no TRACE_C lines)."""
    if not (0 <= slow < scene.spixels and 0 <= fast < scene.fpixels):
        return "outside_detector"
    row_lo, row_hi = scene.row_range
    col_lo, col_hi = scene.col_range
    if not (row_lo <= slow < row_hi and col_lo <= fast < col_hi):
        return "outside_roi"
    if scene.mask.size and scene.mask[slow * scene.fpixels + fast] == 0:
        return "masked"
    return None


def c_state_at(scene: Scene, slow: int, fast: int) -> tuple[bool, bool]:
    """C's run-wide state when its loop reaches this pixel: ``(interpolate, first_pass)``.

    Mirrors ``simulate.render``: with ``-c_parity`` the first pass through the φ
    loop (in serial pixel order) uses the stale first-pass table, and C turns
    interpolation off for good at the first pixel whose stencil leaves the
    table.  Costs a render of the rows up to ``slow`` only when interpolation
    is on.
    """
    from .kernels.exact import render_exact, render_one
    from .simulate import serial_pixels

    args = (scene.params, scene.det, scene.sources, scene.cells, scene.a_star, scene.fhkl)
    target = slow * scene.fpixels + fast
    first_pass = False
    first_fell = None
    if scene.first_pass_differs:
        for s, f in serial_pixels(scene):
            if (s, f) == (slow, fast):
                first_pass = True
                break
            _, _, fell, used, _, _, _ = render_one(*args, scene.interpolate, s, f, True)
            if fell and first_fell is None:
                first_fell = s * scene.fpixels + f
            if used:
                break
    if not scene.interpolate:
        return False, first_pass
    row_lo, _ = scene.row_range
    col_lo, col_hi = scene.col_range
    scratch = np.zeros((scene.spixels, scene.fpixels), dtype=np.float32)
    omega_rows = np.zeros(scene.spixels, dtype=np.float64)
    fell_rows = np.full(scene.spixels, -1, dtype=np.int64)
    render_exact(*args, scene.mask, True, row_lo, slow + 1, col_lo, col_hi, 0, scratch,
               omega_rows, fell_rows)
    candidates = [s * scene.fpixels + int(fell_rows[s]) for s in range(row_lo, slow + 1)
                  if fell_rows[s] >= 0][:1]
    if first_fell is not None:
        candidates.append(first_fell)
    # the pixel where it happens still starts with interpolation on
    interpolate = not candidates or min(candidates) >= target
    return interpolate, first_pass


def walk_pixel(scene: Scene, slow: int, fast: int, interpolate: bool,
               first_pass: bool) -> PixelTrace:
    """C's per-pixel loop (nanoBragg.c lines 2663-3039) for one pixel, with its trace lines.

    Same arithmetic, in the same order, as ``physics.pixel_intensity``; lines
    are printed where the instrumented C prints them (source 0, φ step 0,
    mosaic domain 0 of every sub-pixel and sensor layer; final values once).
    """
    P = scene.params
    det = scene.det
    cells = scene.cells
    sources = scene.sources
    out = PixelTrace()
    emit = out.lines.append

    fdx, fdy, fdz = (float(x) for x in det[DET_FDET])
    sdx, sdy, sdz = (float(x) for x in det[DET_SDET])
    odx, ody, odz = (float(x) for x in det[DET_ODET])
    p0x, p0y, p0z = (float(x) for x in det[DET_PIX0])
    pvx, pvy, pvz = (float(x) for x in det[DET_POLAR])
    bx, by, bz = (float(x) for x in det[DET_BEAM])

    intensity = P.I_bg
    polar = 1.0 if P.nopolar else 0.0
    omega_pixel = 0.0
    omega_sum = 0.0
    capture_fraction = 0.0
    # C's variables as its loops leave them, for the final lines
    incident = (0.0, 0.0, 0.0)
    diffracted = (0.0, 0.0, 0.0)

    for thick_tic in range(P.detector_thicksteps):
        odet = thick_tic * P.detector_thickstep
        capture_fraction = 1.0 if P.detector_thick == 0.0 else 0.0
        for sub_s in range(P.oversample):
            for sub_f in range(P.oversample):
                fdet = P.subpixel_size * (fast * P.oversample + sub_f) + P.subpixel_size / 2.0
                sdet = P.subpixel_size * (slow * P.oversample + sub_s) + P.subpixel_size / 2.0
                px = fdet * fdx + sdet * sdx + odet * odx + p0x
                py = fdet * fdy + sdet * sdy + odet * ody + p0y
                pz = fdet * fdz + sdet * sdz + odet * odz + p0z
                if P.curved_detector:
                    nx, ny, nz = rotate_axis3(P.distance * bx, P.distance * by,
                                              P.distance * bz, sdx, sdy, sdz, py / P.distance)
                    px, py, pz = rotate_axis3(nx, ny, nz, fdx, fdy, fdz, pz / P.distance)
                dx, dy, dz, airpath = unitize3(px, py, pz)

                if omega_pixel == 0.0 or P.oversample_omega:
                    omega_pixel = (P.pixel_size * P.pixel_size / airpath / airpath
                                   * P.close_distance / airpath)
                    if P.point_pixel:
                        omega_pixel = 1.0 / airpath / airpath
                omega_sum += omega_pixel

                if capture_fraction == 0.0 or P.oversample_thick:
                    parallax = dot3(dx, dy, dz, odx, ody, odz)
                    capture_fraction = (
                        math.exp(-thick_tic * P.detector_thickstep * P.detector_mu / parallax)
                        - math.exp(-(thick_tic + 1) * P.detector_thickstep * P.detector_mu
                                   / parallax))

                for source in range(sources.shape[0]):
                    ix = -float(sources[source, 0])
                    iy = -float(sources[source, 1])
                    iz = -float(sources[source, 2])
                    lam = float(sources[source, 3])
                    incident = (ix, iy, iz)
                    sx = (dx - ix) / lam
                    sy = (dy - iy) / lam
                    sz = (dz - iz) / lam
                    traced = source == 0
                    if traced:
                        emit(f"{PREFIX} pix0_vector_meters {_v(p0x, p0y, p0z)}")
                        emit(f"{PREFIX} fdet_vec {_v(fdx, fdy, fdz)}")
                        emit(f"{PREFIX} sdet_vec {_v(sdx, sdy, sdz)}")
                        emit(f"{PREFIX} pixel_pos_meters {_v(px, py, pz)}")
                        emit(f"{PREFIX} R_distance_meters {_g(airpath)}")
                        emit(f"{PREFIX} omega_pixel_sr {_g(omega_pixel)}")
                        emit(f"{PREFIX} close_distance_meters {_g(P.close_distance)}")
                        emit(f"{PREFIX} obliquity_factor {_g(P.close_distance / airpath)}")
                        emit(f"{PREFIX} diffracted_vec {_v(dx, dy, dz)}")
                        emit(f"{PREFIX} incident_vec {_v(ix, iy, iz)}")
                        emit(f"{PREFIX} lambda_meters {_g(lam)}")
                        emit(f"{PREFIX} lambda_angstroms {_g(lam * 1e10)}")
                        emit(f"{PREFIX} scattering_vec_A_inv {_v(sx, sy, sz)}")
                    stol = 0.5 * math.sqrt(sx * sx + sy * sy + sz * sz)
                    if P.dmin > 0.0 and stol > 0.0 and P.dmin > 0.5 / stol:
                        diffracted = (dx, dy, dz)
                        continue
                    if polar == 0.0 or P.oversample_polar:
                        polar, dx, dy, dz = polarization_factor(
                            P.polarization, ix, iy, iz, dx, dy, dz, pvx, pvy, pvz)
                        # C's polarization_factor unitizes incident in place as well
                        incident = unitize3(ix, iy, iz)[:3]
                    diffracted = (dx, dy, dz)

                    table = 0
                    if first_pass:
                        table = 1
                        first_pass = False
                        out.first_pass_used = True
                    for phi_tic in range(P.phisteps):
                        for mos_tic in range(P.mosaic_domains):
                            a = [float(x) for x in cells[table, phi_tic, mos_tic, 0]]
                            b = [float(x) for x in cells[table, phi_tic, mos_tic, 1]]
                            c = [float(x) for x in cells[table, phi_tic, mos_tic, 2]]
                            h = dot3(a[0], a[1], a[2], sx, sy, sz)
                            k = dot3(b[0], b[1], b[2], sx, sy, sz)
                            l = dot3(c[0], c[1], c[2], sx, sy, sz)
                            h0 = int(math.ceil(h - 0.5))
                            k0 = int(math.ceil(k - 0.5))
                            l0 = int(math.ceil(l - 0.5))
                            first_term = traced and mos_tic == 0 and phi_tic == 0
                            if first_term:
                                ast = scene.a_star
                                emit(f"{PREFIX} rot_a_angstroms "
                                     f"{_v(a[0] * 1e10, a[1] * 1e10, a[2] * 1e10)}")
                                emit(f"{PREFIX} rot_b_angstroms "
                                     f"{_v(b[0] * 1e10, b[1] * 1e10, b[2] * 1e10)}")
                                emit(f"{PREFIX} rot_c_angstroms "
                                     f"{_v(c[0] * 1e10, c[1] * 1e10, c[2] * 1e10)}")
                                emit(f"{PREFIX} rot_a_star_A_inv {_v(*ast[0])}")
                                emit(f"{PREFIX} rot_b_star_A_inv {_v(*ast[1])}")
                                emit(f"{PREFIX} rot_c_star_A_inv {_v(*ast[2])}")
                                emit(f"{PREFIX} hkl_frac {_v(h, k, l)}")
                                emit(f"{PREFIX} hkl_rounded {h0} {k0} {l0}")

                            f_latt = lattice_factor(P, scene.a_star, h, k, l, h0, k0, l0)
                            if P.xtal_shape == SQUARE:
                                f_a = sincg(math.pi * h, P.Na) if P.Na > 1 else 1.0
                                f_b = sincg(math.pi * k, P.Nb) if P.Nb > 1 else 1.0
                                f_c = sincg(math.pi * l, P.Nc) if P.Nc > 1 else 1.0
                                if first_term:
                                    emit(f"{PREFIX} F_latt_a {_g(f_a)}")
                                    emit(f"{PREFIX} F_latt_b {_g(f_b)}")
                                    emit(f"{PREFIX} F_latt_c {_g(f_c)}")
                                    emit(f"{PREFIX} F_latt {_g(f_latt)}")
                                if traced and mos_tic == 0:
                                    phi_deg = scene.phi_values[phi_tic] * RTD
                                    emit(f"{PHI_PREFIX} phi_tic={phi_tic} phi_deg={_g(phi_deg)} "
                                         f"k_frac={_g(k)} F_latt_b={_g(f_b)} "
                                         f"F_latt={_g(f_latt)}")
                            if f_latt == 0.0 and P.water_size == 0.0:
                                continue

                            if interpolate and interp_out_of_range(P, h, k, l):
                                interpolate = False
                                out.fell_back = True
                            if interpolate:
                                f_cell = polin3(scene.fhkl, h, k, l, P.h_min, P.k_min, P.l_min)
                            else:
                                f_cell = nearest_F(P, scene.fhkl, h0, k0, l0)
                            if first_term:
                                emit(f"{PREFIX} F_cell {_g(f_cell)}")

                            intensity = add_term(P, intensity, f_cell, f_latt,
                                                 capture_fraction, polar, omega_pixel)

    value = pixel_value(P, intensity, capture_fraction, polar, omega_pixel)

    emit(f"{PREFIX} I_before_scaling {_g(intensity)}")
    emit(f"{PREFIX} r_e_meters {_g(math.sqrt(P.r_e_sqr))}")
    emit(f"{PREFIX} r_e_sqr {_g(P.r_e_sqr)}")
    emit(f"{PREFIX} fluence_photons_per_m2 {_g(P.fluence)}")
    emit(f"{PREFIX} steps {P.steps}")
    emit(f"{PREFIX} oversample_thick {int(P.oversample_thick)}")
    emit(f"{PREFIX} oversample_polar {int(P.oversample_polar)}")
    emit(f"{PREFIX} oversample_omega {int(P.oversample_omega)}")
    emit(f"{PREFIX} capture_fraction {_g(capture_fraction)}")
    emit(f"{PREFIX} polar {_g(polar)}")
    emit(f"{PREFIX} omega_pixel {_g(omega_pixel)}")
    emit(f"{PREFIX} cos_2theta {_g(dot3(*incident, *diffracted))}")
    emit(f"{PREFIX} I_pixel_final {_g(value)}")
    # the float image starts at zero, so C's += is one float32 store
    emit(f"{PREFIX} floatimage_accumulated {_g(np.float32(value))}")
    out.value = value
    out.omega_sum = omega_sum
    return out


def trace_lines(scene: Scene, slow: int, fast: int) -> list[str]:
    """The ``-trace_pixel`` output for pixel (slow, fast) of a prepared scene."""
    lines = [f"TRACE_CONFIG: tracing pixel (spixel={slow}, fpixel={fast})"]
    reason = skip_reason(scene, slow, fast)
    if reason is not None:
        lines.append(f"{SKIP_PREFIX} reason={reason}")
        return lines
    interpolate, first_pass = c_state_at(scene, slow, fast)
    lines.extend(walk_pixel(scene, slow, fast, interpolate, first_pass).lines)
    return lines
