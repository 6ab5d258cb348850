"""Per-pixel physics of nanoBragg.c as small allocation-free Numba functions.

Every function here is ``@njit(inline="always")`` and uses only ``math`` and
scalar tuples, so the CPU kernel (``njit(parallel=True)``), the CUDA kernel
(``cuda.jit``) and the one-pixel tracer all call the same code.  Expressions
keep C's operand order (``a*b*c`` is ``(a*b)*c``) because the goal is the
same float64 rounding as serial nanoBragg.c, and with it the same float32
image.  Line numbers refer to nanoBragg.c (bl831/nanoBragg, 8-10-25 header).
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, njit, types
from numba.extending import intrinsic

# crystal shapes, as C's shapetype enum order (nanoBragg.c line 163)
SQUARE = 0
ROUND = 1
GAUSS = 2
TOPHAT = 3

# rows of the packed detector-vector array ``det``
DET_FDET = 0
DET_SDET = 1
DET_ODET = 2
DET_PIX0 = 3
DET_BEAM = 4
DET_POLAR = 5


if config.DISABLE_JIT:

    def as_float(value, like):
        """``value`` in the float type of ``like`` (pure Python when JIT is off)."""
        return type(like)(value)

else:

    @intrinsic
    def as_float(typingctx, value, like):
        """``value`` in the float type of ``like``.

        Literals are float64 in Numba and would promote float32 arithmetic
        (``-precision single`` on the GPU) back to float64; written through
        this, the same functions specialise to either precision.  For float64
        it is exactly the conversion Python's promotion does.
        """
        target = like if isinstance(like, types.Float) else types.float64

        def codegen(context, builder, signature, args):
            return context.cast(builder, args[0], signature.args[0], target)

        return target(value, like), codegen


@njit(inline="always", cache=True)
def dot3(ax, ay, az, bx, by, bz):
    """Dot product in C's order (x, then y, then z)."""
    return ax * bx + ay * by + az * bz


@njit(inline="always", cache=True)
def cross3(ax, ay, az, bx, by, bz):
    """Cross product a × b (C's cross_product, line 4038)."""
    return ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx


@njit(inline="always", cache=True)
def unitize3(x, y, z):
    """Unit vector and magnitude; zero vector stays zero (C's unitize, line 3981)."""
    mag = math.sqrt(x * x + y * y + z * z)
    if mag != 0.0:
        return x / mag, y / mag, z / mag, mag
    zero = as_float(0.0, mag)
    return zero, zero, zero, mag


@njit(inline="always", cache=True)
def rotate_axis3(vx, vy, vz, ax, ay, az, phi):
    """Rotate v about the unit axis by phi radians (Rodrigues; C's rotate_axis, line 3366)."""
    sinphi = math.sin(phi)
    cosphi = math.cos(phi)
    dot = (ax * vx + ay * vy + az * vz) * (as_float(1.0, cosphi) - cosphi)
    nx = ax * dot + vx * cosphi + (-az * vy + ay * vz) * sinphi
    ny = ay * dot + vy * cosphi + (+az * vx - ax * vz) * sinphi
    nz = az * dot + vz * cosphi + (-ay * vx + ax * vy) * sinphi
    return nx, ny, nz


@njit(inline="always", cache=True)
def sincg(x, n):
    """Lattice transform sin(N x)/sin(x) (C's sincg, line 3291)."""
    if x == 0.0:
        return n
    return math.sin(x * n) / math.sin(x)


@njit(inline="always", cache=True)
def sinc3(x):
    """Sphere transform 3(sin x/x − cos x)/x² (C's sinc3, line 3298)."""
    if x == 0.0:
        return as_float(1.0, x)
    return as_float(3.0, x) * (math.sin(x) / x - math.cos(x)) / (x * x)


@njit(inline="always", cache=True)
def sin_pi_reduced(r):
    """sin(π r) for |r| ≤ ½ as an odd polynomial of degree 15 (relative error < 5e-16).

    A least-squares fit of sin(πr)/r in r² at Chebyshev nodes (≈ minimax), in
    Horner form; branch-free and free of libm calls so that pixel loops vectorise.
    """
    r2 = r * r
    p = -2.1132668785692753e-05
    p = p * r2 + 0.00046598658308504704
    p = p * r2 - 0.0073703643620833745
    p = p * r2 + 0.08214587886582754
    p = p * r2 - 0.5992645288351804
    p = p * r2 + 2.550164039862668
    p = p * r2 - 5.16771278004981
    p = p * r2 + 3.141592653589793
    return r * p


@njit(inline="always", cache=True)
def sincg_reduced(d, n):
    """±sincg(π h, n) from d = h − round(h) for integer n (C's sincg, exactly reduced).

    sin(nπh)/sin(πh) = ±sin(nπd)/sin(πd), and n·d is reduced to [−½, ½] the
    same way; the sign cancels in F_latt².  Gives n at d = 0, as C does at h = 0.
    """
    nd = n * d
    m = nd - np.floor(nd + 0.5)  # np.floor stays a float: vectorises
    den = sin_pi_reduced(d)
    at_node = d == 0.0
    ratio = sin_pi_reduced(m) / (1.0 if at_node else den)
    return n if at_node else ratio


@njit(inline="always", cache=True)
def sincg_reduced_parts(d, n):
    """``sincg_reduced`` as (numerator, denominator) for n > 1, never dividing.

    Lets a caller form F_latt with one division for three axes; both sines
    are computed and then selected, so the code stays branch-free.
    """
    nd = n * d
    m = nd - np.floor(nd + 0.5)  # np.floor stays a float: vectorises
    num = sin_pi_reduced(m)
    den = sin_pi_reduced(d)
    at_node = d == 0.0
    return (n if at_node else num), (1.0 if at_node else den)


@njit(inline="always", cache=True)
def polarization_factor(kahn, ix, iy, iz, dx, dy, dz, px, py, pz):
    """Kahn polarization factor (C line 4053).

    C unitizes ``incident`` and ``diffracted`` in place; the re-unitized
    diffracted vector is what later sources of the same sub-pixel see, so it
    is returned as well: ``(factor, dx, dy, dz)``.
    """
    ix, iy, iz, _ = unitize3(ix, iy, iz)
    dx, dy, dz, _ = unitize3(dx, dy, dz)
    return polarization_of_unit_vectors(kahn, ix, iy, iz, dx, dy, dz, px, py, pz), dx, dy, dz


@njit(inline="always", cache=True)
def polarization_of_unit_vectors(kahn, ix, iy, iz, dx, dy, dz, px, py, pz):
    """C's polarization factor once its in-place unitizes are done (line 4053).

    ``(ix, iy, iz)`` and ``(dx, dy, dz)`` are the unit incident and diffracted
    vectors, ``(px, py, pz)`` the E-vector normal.  With ``kahn == 0`` psi is 0
    (C's is uninitialised there; the term vanishes either way).
    """
    cos2theta = dot3(ix, iy, iz, dx, dy, dz)
    cos2theta_sqr = cos2theta * cos2theta
    one = as_float(1.0, cos2theta)
    sin2theta_sqr = one - cos2theta_sqr
    psi = as_float(0.0, cos2theta)
    if kahn != 0.0:
        bx, by, bz = cross3(px, py, pz, ix, iy, iz)
        bx, by, bz, _ = unitize3(bx, by, bz)
        ex, ey, ez = cross3(ix, iy, iz, bx, by, bz)
        ex, ey, ez, _ = unitize3(ex, ey, ez)
        e_out = dot3(dx, dy, dz, ex, ey, ez)
        b_out = dot3(dx, dy, dz, bx, by, bz)
        psi = -math.atan2(b_out, e_out)
    return (as_float(0.5, psi) * (one + cos2theta_sqr
                                  - kahn * math.cos(as_float(2.0, psi) * psi) * sin2theta_sqr))


@njit(inline="always", cache=True)
def polarization_of_unit_vectors_kahn0(kahn, ix, iy, iz, dx, dy, dz):
    """:func:`polarization_of_unit_vectors` where ``kahn == 0``: the same value, without
    the ``cos(2·psi·psi)`` call (psi is 0 there, cos(0) is exactly 1 and ``kahn·1`` is
    ``kahn``), so that a loop over pixels using it vectorises."""
    cos2theta = dot3(ix, iy, iz, dx, dy, dz)
    cos2theta_sqr = cos2theta * cos2theta
    one = as_float(1.0, cos2theta)
    sin2theta_sqr = one - cos2theta_sqr
    return as_float(0.5, cos2theta) * (one + cos2theta_sqr - kahn * sin2theta_sqr)


@njit(inline="always", cache=True)
def polarization_factor_unpolarized(ix, iy, iz, dx, dy, dz):
    """``polarization_factor`` for a Kahn factor of 0, without its cos(0) call.

    Same operations and result as ``polarization_factor(0.0, ...)``; having
    no libm call, a pixel loop using it vectorises.  Returns ``(factor, dx, dy, dz)``.
    """
    ix, iy, iz, _ = unitize3(ix, iy, iz)
    dx, dy, dz, _ = unitize3(dx, dy, dz)
    cos2theta = dot3(ix, iy, iz, dx, dy, dz)
    cos2theta_sqr = cos2theta * cos2theta
    one = as_float(1.0, cos2theta)
    sin2theta_sqr = one - cos2theta_sqr
    # kahn * cos(2 psi) * sin2theta_sqr with kahn = 0 and psi = 0
    zero = as_float(0.0, cos2theta)
    return (as_float(0.5, cos2theta) * (one + cos2theta_sqr - zero * one * sin2theta_sqr),
            dx, dy, dz)


@njit(inline="always", cache=True)
def polint4(x0, x1, x2, x3, y0, y1, y2, y3, x):
    """Cubic Lagrange interpolation through four points (C's polint, line 3807)."""
    t0 = (x - x1) * (x - x2) * (x - x3) * y0 / ((x0 - x1) * (x0 - x2) * (x0 - x3))
    t1 = (x - x0) * (x - x2) * (x - x3) * y1 / ((x1 - x0) * (x1 - x2) * (x1 - x3))
    t2 = (x - x0) * (x - x1) * (x - x3) * y2 / ((x2 - x0) * (x2 - x1) * (x2 - x3))
    t3 = (x - x0) * (x - x1) * (x - x2) * y3 / ((x3 - x0) * (x3 - x1) * (x3 - x2))
    return t0 + t1 + t2 + t3


@njit(inline="always", cache=True)
def polin2_row(fhkl, ih, k0f, l0f, kmin, lmin, k, l):
    """C's polin2 over the 4×4 (k, l) neighbourhood of one h plane index ``ih``."""
    one = as_float(1.0, l)
    two = as_float(2.0, l)
    three = as_float(3.0, l)
    kx0 = as_float(k0f, l) - one
    lx0 = as_float(l0f, l) - one
    ik = int(k0f) - 1 - kmin
    il = int(l0f) - 1 - lmin
    r0 = polint4(lx0, lx0 + one, lx0 + two, lx0 + three, fhkl[ih, ik, il], fhkl[ih, ik, il + 1],
                 fhkl[ih, ik, il + 2], fhkl[ih, ik, il + 3], l)
    r1 = polint4(lx0, lx0 + one, lx0 + two, lx0 + three, fhkl[ih, ik + 1, il],
                 fhkl[ih, ik + 1, il + 1], fhkl[ih, ik + 1, il + 2], fhkl[ih, ik + 1, il + 3], l)
    r2 = polint4(lx0, lx0 + one, lx0 + two, lx0 + three, fhkl[ih, ik + 2, il],
                 fhkl[ih, ik + 2, il + 1], fhkl[ih, ik + 2, il + 2], fhkl[ih, ik + 2, il + 3], l)
    r3 = polint4(lx0, lx0 + one, lx0 + two, lx0 + three, fhkl[ih, ik + 3, il],
                 fhkl[ih, ik + 3, il + 1], fhkl[ih, ik + 3, il + 2], fhkl[ih, ik + 3, il + 3], l)
    return polint4(kx0, kx0 + one, kx0 + two, kx0 + three, r0, r1, r2, r3, k)


@njit(inline="always", cache=True)
def polin3(fhkl, h, k, l, hmin, kmin, lmin):
    """Tricubic interpolation of F at fractional (h, k, l) (C's polin3, line 3833).

    The nodes are floor(index)-1 … floor(index)+2; the caller has checked
    they lie inside the table, as C does before calling it.
    """
    h0f = math.floor(h)
    k0f = math.floor(k)
    l0f = math.floor(l)
    ih = int(h0f) - 1 - hmin
    one = as_float(1.0, h)
    hx0 = as_float(h0f, h) - one
    y0 = polin2_row(fhkl, ih, k0f, l0f, kmin, lmin, k, l)
    y1 = polin2_row(fhkl, ih + 1, k0f, l0f, kmin, lmin, k, l)
    y2 = polin2_row(fhkl, ih + 2, k0f, l0f, kmin, lmin, k, l)
    y3 = polin2_row(fhkl, ih + 3, k0f, l0f, kmin, lmin, k, l)
    return polint4(hx0, hx0 + one, hx0 + as_float(2.0, h), hx0 + as_float(3.0, h), y0, y1, y2, y3,
                   h)


@njit(inline="always", cache=True)
def lattice_factor(P, a_star, h, k, l, h0, k0, l0):
    """F_latt for the crystal shape (C lines 2862-2905)."""
    if P.xtal_shape == SQUARE:
        f_latt = as_float(1.0, h)
        pi = as_float(math.pi, h)
        if P.Na > 1:
            f_latt *= sincg(pi * h, P.Na)
        if P.Nb > 1:
            f_latt *= sincg(pi * k, P.Nb)
        if P.Nc > 1:
            f_latt *= sincg(pi * l, P.Nc)
        return f_latt
    dh = h - as_float(h0, h)
    dk = k - as_float(k0, k)
    dl = l - as_float(l0, l)
    dx_star = dh * a_star[0, 0] + dk * a_star[1, 0] + dl * a_star[2, 0]
    dy_star = dh * a_star[0, 1] + dk * a_star[1, 1] + dl * a_star[2, 1]
    dz_star = dh * a_star[0, 2] + dk * a_star[1, 2] + dl * a_star[2, 2]
    rad_star_sqr = ((dx_star * dx_star + dy_star * dy_star + dz_star * dz_star)
                    * P.Na * P.Na * P.Nb * P.Nb * P.Nc * P.Nc)
    if P.xtal_shape == ROUND:
        hrad_sqr = dh * dh * P.Na * P.Na + dk * dk * P.Nb * P.Nb + dl * dl * P.Nc * P.Nc
        return (P.Na * P.Nb * P.Nc * as_float(0.723601254558268, h)
                * sinc3(as_float(math.pi, h) * math.sqrt(hrad_sqr * P.fudge)))
    if P.xtal_shape == GAUSS:
        return P.Na * P.Nb * P.Nc * math.exp(-(rad_star_sqr / as_float(0.63, h) * P.fudge))
    inside = as_float(1.0 if rad_star_sqr * P.fudge < 0.3969 else 0.0, h)
    return P.Na * P.Nb * P.Nc * inside


@njit(inline="always", cache=True)
def interp_out_of_range(P, h, k, l):
    """True where the 4-point stencil would leave the table (C line 2953)."""
    return ((h - P.h_min + 3) > P.h_range or (h - 2 < P.h_min)
            or (k - P.k_min + 3) > P.k_range or (k - 2 < P.k_min)
            or (l - P.l_min + 3) > P.l_range or (l - 2 < P.l_min))


@njit(inline="always", cache=True)
def nearest_F(P, fhkl, h0, k0, l0):
    """F of the nearest lattice point, or default_F outside the table (C line 2998)."""
    if (P.hkls != 0 and h0 <= P.h_max and h0 >= P.h_min and k0 <= P.k_max
            and k0 >= P.k_min and l0 <= P.l_max and l0 >= P.l_min):
        return fhkl[h0 - P.h_min, k0 - P.k_min, l0 - P.l_min]
    return P.default_F


@njit(inline="always", cache=True)
def pixel_skipped(index, start_index, use_mask, mask):
    """Whether C leaves pixel ``index`` (slow·fpixels + fast) out: masked by ``-mask``
    (C line 2658), or before ``start_index`` when rows are re-run from C's switch-off of
    interpolation."""
    return index < start_index or (use_mask and mask[index] == 0)


@njit(inline="always", cache=True)
def add_term(P, intensity, f_cell, f_latt, capture_fraction, polar, omega_pixel):
    """C's running sum plus one term F²·F_latt² (line 3013); a factor whose
    ``-oversample_*`` flag is on multiplies the whole running sum, as in C (3016-3018)."""
    intensity += f_cell * f_cell * f_latt * f_latt
    if P.oversample_thick:
        intensity *= capture_fraction
    if P.oversample_polar:
        intensity *= polar
    if P.oversample_omega:
        intensity *= omega_pixel
    return intensity


@njit(inline="always", cache=True)
def pixel_value(P, intensity, capture_fraction, polar, omega_pixel):
    """Photons in a pixel from its summed intensity (C lines 3033-3038): r_e²·fluence/steps,
    times the last sub-pixel's factors whose ``-oversample_*`` flag is off."""
    value = P.r_e_sqr * P.fluence * intensity / as_float(P.steps, intensity)
    if not P.oversample_thick:
        value *= capture_fraction
    if not P.oversample_polar:
        value *= polar
    if not P.oversample_omega:
        value *= omega_pixel
    return value


@njit(inline="always", cache=True)
def pixel_intensity(spixel, fpixel, P, det, sources, cells, a_star, fhkl, interpolate,
                    first_pass):
    """Photons in one pixel, following C's per-pixel loop (lines 2663-3045).

    Loops thickness × sub-pixels × sources × φ × mosaic and divides by
    ``steps``.  ``cells[pass, phi, mos, axis, xyz]`` holds the rotated real
    cell vectors (m); ``pass`` 1 is used by the first pass through the φ loop
    when ``first_pass`` is set (C's φ=0 carry-over, ``-c_parity``), 0 otherwise.

    Returns ``(value, omega_sum, interp_fell_back, first_pass_used, h, k, l)``:
    the float-image value, this pixel's share of the solid-angle sum, whether
    interpolation left the table (C then turns it off for the rest of the
    run) and the fractional indices where it did, and whether the first-pass
    table was used.
    """
    fdx = det[DET_FDET, 0]
    fdy = det[DET_FDET, 1]
    fdz = det[DET_FDET, 2]
    sdx = det[DET_SDET, 0]
    sdy = det[DET_SDET, 1]
    sdz = det[DET_SDET, 2]
    odx = det[DET_ODET, 0]
    ody = det[DET_ODET, 1]
    odz = det[DET_ODET, 2]
    p0x = det[DET_PIX0, 0]
    p0y = det[DET_PIX0, 1]
    p0z = det[DET_PIX0, 2]
    pvx = det[DET_POLAR, 0]
    pvy = det[DET_POLAR, 1]
    pvz = det[DET_POLAR, 2]

    oversample = P.oversample
    subpixel_size = P.subpixel_size
    intensity = P.I_bg
    # float constants in the kernel's precision (see as_float)
    zero = as_float(0.0, subpixel_size)
    one = as_float(1.0, subpixel_size)
    polar = zero
    if P.nopolar:
        polar = one
    omega_pixel = zero
    omega_sum = zero
    capture_fraction = zero
    fell_back = False
    fell_h = zero
    fell_k = zero
    fell_l = zero
    used_first = False

    for thick_tic in range(P.detector_thicksteps):
        odet = as_float(thick_tic, subpixel_size) * P.detector_thickstep
        capture_fraction = zero
        if P.detector_thick == 0.0:
            capture_fraction = one
        for sub_s in range(oversample):
            for sub_f in range(oversample):
                fdet = (subpixel_size * as_float(fpixel * oversample + sub_f, subpixel_size)
                        + subpixel_size / as_float(2.0, subpixel_size))
                sdet = (subpixel_size * as_float(spixel * oversample + sub_s, subpixel_size)
                        + subpixel_size / as_float(2.0, subpixel_size))
                px = fdet * fdx + sdet * sdx + odet * odx + p0x
                py = fdet * fdy + sdet * sdy + odet * ody + p0y
                pz = fdet * fdz + sdet * sdz + odet * odz + p0z
                if P.curved_detector:
                    vx = P.distance * det[DET_BEAM, 0]
                    vy = P.distance * det[DET_BEAM, 1]
                    vz = P.distance * det[DET_BEAM, 2]
                    nx, ny, nz = rotate_axis3(vx, vy, vz, sdx, sdy, sdz, py / P.distance)
                    px, py, pz = rotate_axis3(nx, ny, nz, fdx, fdy, fdz, pz / P.distance)
                dx, dy, dz, airpath = unitize3(px, py, pz)

                if omega_pixel == 0.0 or P.oversample_omega:
                    omega_pixel = (P.pixel_size * P.pixel_size / airpath / airpath
                                   * P.close_distance / airpath)
                    if P.point_pixel:
                        omega_pixel = one / airpath / airpath
                omega_sum += omega_pixel

                if capture_fraction == 0.0 or P.oversample_thick:
                    parallax = dot3(dx, dy, dz, odx, ody, odz)
                    capture_fraction = (
                        math.exp(as_float(-thick_tic, parallax) * P.detector_thickstep
                                 * P.detector_mu / parallax)
                        - math.exp(as_float(-(thick_tic + 1), parallax) * P.detector_thickstep
                                   * P.detector_mu / parallax))

                for source in range(sources.shape[0]):
                    ix = -sources[source, 0]
                    iy = -sources[source, 1]
                    iz = -sources[source, 2]
                    lam = sources[source, 3]
                    sx = (dx - ix) / lam
                    sy = (dy - iy) / lam
                    sz = (dz - iz) / lam
                    stol = as_float(0.5, sx) * math.sqrt(sx * sx + sy * sy + sz * sz)
                    if P.dmin > 0.0 and stol > 0.0:
                        if P.dmin > 0.5 / stol:
                            continue
                    if polar == 0.0 or P.oversample_polar:
                        polar, dx, dy, dz = polarization_factor(
                            P.polarization, ix, iy, iz, dx, dy, dz, pvx, pvy, pvz)

                    table = 0
                    if first_pass:
                        table = 1
                        first_pass = False
                        used_first = True
                    for phi_tic in range(P.phisteps):
                        for mos_tic in range(P.mosaic_domains):
                            h = dot3(cells[table, phi_tic, mos_tic, 0, 0],
                                     cells[table, phi_tic, mos_tic, 0, 1],
                                     cells[table, phi_tic, mos_tic, 0, 2], sx, sy, sz)
                            k = dot3(cells[table, phi_tic, mos_tic, 1, 0],
                                     cells[table, phi_tic, mos_tic, 1, 1],
                                     cells[table, phi_tic, mos_tic, 1, 2], sx, sy, sz)
                            l = dot3(cells[table, phi_tic, mos_tic, 2, 0],
                                     cells[table, phi_tic, mos_tic, 2, 1],
                                     cells[table, phi_tic, mos_tic, 2, 2], sx, sy, sz)
                            h0 = int(math.ceil(h - 0.5))
                            k0 = int(math.ceil(k - 0.5))
                            l0 = int(math.ceil(l - 0.5))

                            f_latt = lattice_factor(P, a_star, h, k, l, h0, k0, l0)
                            if f_latt == 0.0 and P.water_size == 0.0:
                                continue

                            if interpolate and interp_out_of_range(P, h, k, l):
                                interpolate = False
                                fell_back = True
                                fell_h = h
                                fell_k = k
                                fell_l = l
                            if interpolate:
                                f_cell = polin3(fhkl, h, k, l, P.h_min, P.k_min, P.l_min)
                            else:
                                f_cell = nearest_F(P, fhkl, h0, k0, l0)

                            intensity = add_term(P, intensity, f_cell, f_latt,
                                                 capture_fraction, polar, omega_pixel)

    value = pixel_value(P, intensity, capture_fraction, polar, omega_pixel)
    return value, omega_sum, fell_back, used_first, fell_h, fell_k, fell_l
