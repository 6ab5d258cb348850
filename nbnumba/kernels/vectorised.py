"""Fast CPU kernel: C's per-pixel sums, restructured so the hot loops vectorise.

``render_vectorised`` has ``render_exact``'s signature and contract.  Per detector
row it walks C's loops in C's order (layer, sub-pixel, source, φ, mosaic) but
with the row's pixels innermost, so every pixel receives its terms in the
same order as in ``pixel_intensity`` and the per-pixel state C keeps (solid
angle, capture fraction, polarization, the re-normalised diffracted vector,
the interpolation switch-off) evolves identically.  Two things differ from
the exact engine, both far below the parity tolerances
(tests/test_vectorised_engine.py holds them to 1e-9 of the image maximum):

- the parallelepiped lattice factor uses ``sincg_reduced_parts`` (an exact
  reduction of sin(Nπh)/sin(πh) and a polynomial sine) instead of libm's
  sin on the full argument;
- ``fastmath`` lets LLVM contract products into FMAs.

The loops over a row's pixels are branch-free where C's flags allow (flat
detector, Kahn factor 0, square crystal, nearest-neighbour F), so LLVM
compiles them to AVX2 vector code; the F lookup is a separate gather loop
because a gather next to a store defeats LLVM's alias analysis.  Other
features use scalar loops calling the same physics helpers as the exact
kernel.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from .physics import (
    DET_BEAM,
    DET_FDET,
    DET_ODET,
    DET_PIX0,
    DET_POLAR,
    DET_SDET,
    SQUARE,
    dot3,
    interp_out_of_range,
    lattice_factor,
    nearest_F,
    pixel_skipped,
    polarization_factor,
    polarization_factor_unpolarized,
    polin3,
    rotate_axis3,
    sincg_reduced,
    sincg_reduced_parts,
    unitize3,
)

# Numba's cache key ignores fastmath flags: every function here uses this one set.
# Only FMA contraction: sums keep C's order, libm calls and divisions stay exact,
# and NaN/inf behave as in C.  error_model="numpy": x/0 gives inf as in C, and no
# zero-division check blocks vectorisation.
FASTMATH = {"contract"}
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy")


# ---------------------------------------------------------------- geometry


@njit(**JIT)
def _subpixel_flat(P, det, fcols, sub_f, sdet, odet, dx, dy, dz, omega, omega_sum):
    """Diffracted unit vectors and C's solid-angle bookkeeping for one sub-pixel, flat detector.

    ``fcols`` are the pixels' columns (as floats); vectorises.
    """
    fdx, fdy, fdz = det[DET_FDET, 0], det[DET_FDET, 1], det[DET_FDET, 2]
    sdx, sdy, sdz = det[DET_SDET, 0], det[DET_SDET, 1], det[DET_SDET, 2]
    odx, ody, odz = det[DET_ODET, 0], det[DET_ODET, 1], det[DET_ODET, 2]
    p0x, p0y, p0z = det[DET_PIX0, 0], det[DET_PIX0, 1], det[DET_PIX0, 2]
    oversample = P.oversample
    subpixel_size = P.subpixel_size
    for p in range(fcols.shape[0]):
        # columns as floats: exact, and the conversion vectorises
        fdet = subpixel_size * (fcols[p] * oversample + sub_f) + subpixel_size / 2.0
        px = fdet * fdx + sdet * sdx + odet * odx + p0x
        py = fdet * fdy + sdet * sdy + odet * ody + p0y
        pz = fdet * fdz + sdet * sdz + odet * odz + p0z
        ux, uy, uz, airpath = unitize3(px, py, pz)
        dx[p] = ux
        dy[p] = uy
        dz[p] = uz
        new_omega = P.pixel_size * P.pixel_size / airpath / airpath * P.close_distance / airpath
        point_omega = 1.0 / airpath / airpath
        new_omega = point_omega if P.point_pixel else new_omega
        old_omega = omega[p]
        omega[p] = new_omega if (old_omega == 0.0) | P.oversample_omega else old_omega
        omega_sum[p] += omega[p]


@njit(**JIT)
def _subpixel_curved(P, det, fcols, sub_f, sdet, odet, dx, dy, dz, omega, omega_sum):
    """``_subpixel_flat`` for C's curved detector (every pixel at the same distance)."""
    fdx, fdy, fdz = det[DET_FDET, 0], det[DET_FDET, 1], det[DET_FDET, 2]
    sdx, sdy, sdz = det[DET_SDET, 0], det[DET_SDET, 1], det[DET_SDET, 2]
    odx, ody, odz = det[DET_ODET, 0], det[DET_ODET, 1], det[DET_ODET, 2]
    p0x, p0y, p0z = det[DET_PIX0, 0], det[DET_PIX0, 1], det[DET_PIX0, 2]
    vx = P.distance * det[DET_BEAM, 0]
    vy = P.distance * det[DET_BEAM, 1]
    vz = P.distance * det[DET_BEAM, 2]
    oversample = P.oversample
    subpixel_size = P.subpixel_size
    for p in range(fcols.shape[0]):
        # columns as floats: exact, and the conversion vectorises
        fdet = subpixel_size * (fcols[p] * oversample + sub_f) + subpixel_size / 2.0
        px = fdet * fdx + sdet * sdx + odet * odx + p0x
        py = fdet * fdy + sdet * sdy + odet * ody + p0y
        pz = fdet * fdz + sdet * sdz + odet * odz + p0z
        nx, ny, nz = rotate_axis3(vx, vy, vz, sdx, sdy, sdz, py / P.distance)
        px, py, pz = rotate_axis3(nx, ny, nz, fdx, fdy, fdz, pz / P.distance)
        ux, uy, uz, airpath = unitize3(px, py, pz)
        dx[p] = ux
        dy[p] = uy
        dz[p] = uz
        if omega[p] == 0.0 or P.oversample_omega:
            omega[p] = P.pixel_size * P.pixel_size / airpath / airpath * P.close_distance / airpath
            if P.point_pixel:
                omega[p] = 1.0 / airpath / airpath
        omega_sum[p] += omega[p]


@njit(**JIT)
def _capture(P, det, thick_tic, dx, dy, dz, capture):
    """C's sensor-layer capture fraction, computed when unset or with ``-oversample_thick``."""
    odx, ody, odz = det[DET_ODET, 0], det[DET_ODET, 1], det[DET_ODET, 2]
    for p in range(dx.shape[0]):
        if capture[p] == 0.0 or P.oversample_thick:
            parallax = dot3(dx[p], dy[p], dz[p], odx, ody, odz)
            capture[p] = (
                math.exp(-thick_tic * P.detector_thickstep * P.detector_mu / parallax)
                - math.exp(-(thick_tic + 1) * P.detector_thickstep * P.detector_mu / parallax))


@njit(**JIT)
def _scatter_unpolarized(P, ix, iy, iz, lam, dx, dy, dz, sx, sy, sz, active, polar):
    """Scattering vectors for one source, C's -dmin cut, polarization with Kahn factor 0.

    Branch-free: vectorises.  ``polar`` and the diffracted vectors are updated
    where C would call its polarization function.
    """
    dmin = P.dmin
    for p in range(dx.shape[0]):
        ux = dx[p]
        uy = dy[p]
        uz = dz[p]
        sxp = (ux - ix) / lam
        syp = (uy - iy) / lam
        szp = (uz - iz) / lam
        sx[p] = sxp
        sy[p] = syp
        sz[p] = szp
        stol = 0.5 * math.sqrt(sxp * sxp + syp * syp + szp * szp)
        keep = not ((dmin > 0.0) & (stol > 0.0) & (dmin > 0.5 / stol))
        active[p] = keep
        factor, vx, vy, vz = polarization_factor_unpolarized(ix, iy, iz, ux, uy, uz)
        update = keep & ((polar[p] == 0.0) | P.oversample_polar)
        polar[p] = factor if update else polar[p]
        dx[p] = vx if update else ux
        dy[p] = vy if update else uy
        dz[p] = vz if update else uz


@njit(**JIT)
def _scatter_kahn(P, det, ix, iy, iz, lam, dx, dy, dz, sx, sy, sz, active, polar):
    """``_scatter_unpolarized`` for a nonzero Kahn factor (scalar: atan2 and cos)."""
    pvx, pvy, pvz = det[DET_POLAR, 0], det[DET_POLAR, 1], det[DET_POLAR, 2]
    for p in range(dx.shape[0]):
        sxp = (dx[p] - ix) / lam
        syp = (dy[p] - iy) / lam
        szp = (dz[p] - iz) / lam
        sx[p] = sxp
        sy[p] = syp
        sz[p] = szp
        stol = 0.5 * math.sqrt(sxp * sxp + syp * syp + szp * szp)
        skip = P.dmin > 0.0 and stol > 0.0 and P.dmin > 0.5 / stol
        active[p] = not skip
        if not skip and (polar[p] == 0.0 or P.oversample_polar):
            factor, ux, uy, uz = polarization_factor(P.polarization, ix, iy, iz, dx[p], dy[p],
                                                     dz[p], pvx, pvy, pvz)
            polar[p] = factor
            dx[p] = ux
            dy[p] = uy
            dz[p] = uz


# ------------------------------------------------------------------- terms


@njit(**JIT)
def _lattice_terms(cell, sx, sy, sz, dims, mins, strides, outside, Na, Nb, Nc, f_latt,
                   f_index):
    """F_latt and the F-table index of one (source, φ, mosaic) term for a row's pixels.

    Square crystal with N > 1 on every axis, nearest-neighbour F.  Branch-free
    and gather-free: it vectorises.  ``cell`` holds the rotated a, b, c (m);
    ``s`` the scattering vectors (1/m); ``dims``/``mins`` the extent C's
    nearest_F accepts, ``strides`` the h and k strides of the flat F table;
    pixels outside get index ``outside``, where the table holds default_F.
    """
    ax, ay, az = cell[0, 0], cell[0, 1], cell[0, 2]
    bx, by, bz = cell[1, 0], cell[1, 1], cell[1, 2]
    cx, cy, cz = cell[2, 0], cell[2, 1], cell[2, 2]
    h_lo, k_lo, l_lo = mins[0], mins[1], mins[2]
    h_n, k_n, l_n = dims[0], dims[1], dims[2]
    stride_h = strides[0]
    stride_k = strides[1]
    for p in range(f_latt.shape[0]):
        h = dot3(ax, ay, az, sx[p], sy[p], sz[p])
        k = dot3(bx, by, bz, sx[p], sy[p], sz[p])
        l = dot3(cx, cy, cz, sx[p], sy[p], sz[p])
        # C's ceil(h - 0.5), kept a float: no scalar double-to-int64 conversions
        h0 = np.ceil(h - 0.5)
        k0 = np.ceil(k - 0.5)
        l0 = np.ceil(l - 0.5)
        num_a, den_a = sincg_reduced_parts(h - h0, Na)
        num_b, den_b = sincg_reduced_parts(k - k0, Nb)
        num_c, den_c = sincg_reduced_parts(l - l0, Nc)
        f_latt[p] = (num_a * num_b * num_c) / (den_a * den_b * den_c)
        ih = h0 - h_lo
        ik = k0 - k_lo
        il = l0 - l_lo
        inside = ((ih >= 0.0) & (ih < h_n) & (ik >= 0.0) & (ik < k_n)
                  & (il >= 0.0) & (il < l_n))
        index = np.int32(ih * stride_h + ik * stride_k + il)
        f_index[p] = index if inside else outside


@njit(**JIT)
def _gather_F(table, f_index, f_cell):
    """``f_cell[p] = table[f_index[p]]``: the gather on its own (a scalar loop), so that
    the arithmetic around it vectorises."""
    for p in range(f_cell.shape[0]):
        f_cell[p] = table[f_index[p]]


@njit(**JIT)
def _accumulate(f_latt, f_cell, active, keep_zero, plain, mult_thick, mult_polar, mult_omega,
                intensity):
    """Add F²·F_latt² to each pixel's sum as C does; F_latt = 0 skips unless there is water.

    Unless ``plain``, the sum is then multiplied by ``mult_*``, which are 1.0
    unless the matching ``-oversample_*`` flag is on.  Vectorises.
    """
    if plain:
        for p in range(intensity.shape[0]):
            fl = f_latt[p]
            summed = intensity[p] + f_cell[p] * f_cell[p] * fl * fl
            take = active[p] & ((fl != 0.0) | keep_zero)
            intensity[p] = summed if take else intensity[p]
        return
    for p in range(intensity.shape[0]):
        fl = f_latt[p]
        summed = intensity[p] + f_cell[p] * f_cell[p] * fl * fl
        summed *= mult_thick[p]
        summed *= mult_polar[p]
        summed *= mult_omega[p]
        take = active[p] & ((fl != 0.0) | keep_zero)
        intensity[p] = summed if take else intensity[p]


@njit(**JIT)
def _terms_general(P, cell, a_star, fhkl, sx, sy, sz, active, intensity, interp_on, fell,
                   capture, polar, omega, reduce_sincg):
    """Add one (source, φ, mosaic) term per pixel: any shape, tricubic F allowed.

    The per-term code of ``pixel_intensity`` (with ``sincg_reduced`` for the
    square crystal when ``reduce_sincg``, i.e. integer N), including C's
    per-pixel switch-off of interpolation.
    """
    ax, ay, az = cell[0, 0], cell[0, 1], cell[0, 2]
    bx, by, bz = cell[1, 0], cell[1, 1], cell[1, 2]
    cx, cy, cz = cell[2, 0], cell[2, 1], cell[2, 2]
    for p in range(intensity.shape[0]):
        if not active[p]:
            continue
        h = dot3(ax, ay, az, sx[p], sy[p], sz[p])
        k = dot3(bx, by, bz, sx[p], sy[p], sz[p])
        l = dot3(cx, cy, cz, sx[p], sy[p], sz[p])
        h0 = int(math.ceil(h - 0.5))
        k0 = int(math.ceil(k - 0.5))
        l0 = int(math.ceil(l - 0.5))
        if P.xtal_shape == SQUARE and reduce_sincg:
            f_latt = 1.0
            if P.Na > 1:
                f_latt *= sincg_reduced(h - h0, P.Na)
            if P.Nb > 1:
                f_latt *= sincg_reduced(k - k0, P.Nb)
            if P.Nc > 1:
                f_latt *= sincg_reduced(l - l0, P.Nc)
        else:
            f_latt = lattice_factor(P, a_star, h, k, l, h0, k0, l0)
        if f_latt == 0.0 and P.water_size == 0.0:
            continue
        if interp_on[p] and interp_out_of_range(P, h, k, l):
            interp_on[p] = False
            fell[p] = True
        if interp_on[p]:
            f_cell = polin3(fhkl, h, k, l, P.h_min, P.k_min, P.l_min)
        else:
            f_cell = nearest_F(P, fhkl, h0, k0, l0)
        value = intensity[p] + f_cell * f_cell * f_latt * f_latt
        if P.oversample_thick:
            value *= capture[p]
        if P.oversample_polar:
            value *= polar[p]
        if P.oversample_omega:
            value *= omega[p]
        intensity[p] = value


# --------------------------------------------------------------------- rows
# One row kernel per variant of the scene (general or fast terms, curved or flat
# detector, Kahn factor or none, sensor capture or none).  The variant is fixed by
# closure constants, so Numba prunes the branches of the other variants and never
# compiles their helpers: a first run compiles only what its scene uses (the
# general terms alone were a third of the cold start).  The row kernels release
# the GIL and render_vectorised runs row blocks on a thread pool, so no parallel=True
# (parfor) lowering is compiled either.  Numba's cache key includes the closure
# constants, so each variant is cached on its own.


def _make_rows_kernel(general: bool, curved: bool, kahn: bool, capture_on: bool):
    """The row kernel of one variant: fills rows [row_lo, row_hi) as ``render_vectorised``."""

    @njit(nogil=True, **JIT)
    def rows_kernel(P, det, sources, cells, a_star, fhkl, table, dims, mins, strides, mask,
                    interpolate, row_lo, row_hi, col_lo, col_hi, start_index, image,
                    omega_rows, fell_back):
        fpixels = image.shape[1]
        use_mask = mask.size > 0
        n_max = max(col_hi - col_lo, 0)
        oversample = P.oversample
        subpixel_size = P.subpixel_size
        outside = np.int32(table.shape[0] - 1)
        # the exact sincg reduction needs integer N (C's -N flags are integers,
        # -xtalsize rounds up)
        reduce_sincg = (P.Na == math.floor(P.Na) and P.Nb == math.floor(P.Nb)
                        and P.Nc == math.floor(P.Nc))
        keep_zero = P.water_size != 0.0
        plain = not (P.oversample_thick or P.oversample_polar or P.oversample_omega)
        for spixel in range(row_lo, row_hi):
            cols = np.empty(n_max, dtype=np.int64)
            n = 0
            for fpixel in range(col_lo, col_hi):
                if pixel_skipped(spixel * fpixels + fpixel, start_index, use_mask, mask):
                    continue
                cols[n] = fpixel
                n += 1
            fcols = cols[:n].astype(np.float64)
            intensity = np.full(n, P.I_bg)
            polar = np.full(n, 1.0 if P.nopolar else 0.0)
            omega = np.zeros(n)
            omega_sum = np.zeros(n)
            capture = np.empty(n)
            interp_on = np.full(n, interpolate)
            fell = np.zeros(n, dtype=np.bool_)
            dx = np.empty(n)
            dy = np.empty(n)
            dz = np.empty(n)
            sx = np.empty(n)
            sy = np.empty(n)
            sz = np.empty(n)
            active = np.empty(n, dtype=np.bool_)
            ones = np.ones(n)
            f_latt = np.empty(n)
            f_index = np.empty(n, dtype=np.int32)
            f_cell = np.empty(n)
            mult_thick = capture if P.oversample_thick else ones
            mult_polar = polar if P.oversample_polar else ones
            mult_omega = omega if P.oversample_omega else ones

            for thick_tic in range(P.detector_thicksteps):
                odet = thick_tic * P.detector_thickstep
                capture[:] = 1.0 if P.detector_thick == 0.0 else 0.0
                for sub_s in range(oversample):
                    sdet = subpixel_size * (spixel * oversample + sub_s) + subpixel_size / 2.0
                    for sub_f in range(oversample):
                        if curved:
                            _subpixel_curved(P, det, fcols, sub_f, sdet, odet, dx, dy, dz,
                                             omega, omega_sum)
                        else:
                            _subpixel_flat(P, det, fcols, sub_f, sdet, odet, dx, dy, dz,
                                           omega, omega_sum)
                        if capture_on:
                            _capture(P, det, thick_tic, dx, dy, dz, capture)
                        for source in range(sources.shape[0]):
                            ix = -sources[source, 0]
                            iy = -sources[source, 1]
                            iz = -sources[source, 2]
                            lam = sources[source, 3]
                            if kahn:
                                _scatter_kahn(P, det, ix, iy, iz, lam, dx, dy, dz, sx, sy, sz,
                                              active, polar)
                            else:
                                _scatter_unpolarized(P, ix, iy, iz, lam, dx, dy, dz, sx, sy,
                                                     sz, active, polar)
                            for phi_tic in range(P.phisteps):
                                for mos_tic in range(P.mosaic_domains):
                                    cell = cells[0, phi_tic, mos_tic]
                                    if general:
                                        _terms_general(P, cell, a_star, fhkl, sx, sy, sz,
                                                       active, intensity, interp_on, fell,
                                                       capture, polar, omega, reduce_sincg)
                                    else:
                                        _lattice_terms(cell, sx, sy, sz, dims, mins, strides,
                                                       outside, P.Na, P.Nb, P.Nc, f_latt,
                                                       f_index)
                                        _gather_F(table, f_index, f_cell)
                                        _accumulate(f_latt, f_cell, active, keep_zero, plain,
                                                    mult_thick, mult_polar, mult_omega,
                                                    intensity)

            omega_row = 0.0
            first_fell = -1
            for p in range(n):
                value = P.r_e_sqr * P.fluence * intensity[p] / P.steps
                if not P.oversample_thick:
                    value *= capture[p]
                if not P.oversample_polar:
                    value *= polar[p]
                if not P.oversample_omega:
                    value *= omega[p]
                image[spixel, cols[p]] = np.float32(value)
                omega_row += omega_sum[p]
                if fell[p] and first_fell < 0:
                    first_fell = cols[p]
            omega_rows[spixel] = omega_row
            fell_back[spixel] = first_fell

    return rows_kernel


_ROWS_KERNELS: dict[tuple[bool, bool, bool, bool], object] = {}


def rows_kernel(variant: tuple[bool, bool, bool, bool]):
    """The compiled row kernel of one :func:`scene_variant` (made once per process)."""
    kernel = _ROWS_KERNELS.get(variant)
    if kernel is None:
        kernel = _ROWS_KERNELS[variant] = _make_rows_kernel(*variant)
    return kernel


def _f_table(P, fhkl: np.ndarray):
    """The flat F table with default_F appended (index -1), and nearest_F's extent:
    "no table" is an empty extent."""
    if P.hkls != 0 and fhkl.size > 0:
        table = np.empty(fhkl.size + 1)
        table[:-1] = fhkl.ravel()
        # nearest_F's [min, max], which excludes the table's extra +1 planes
        dims = np.array([min(P.h_max - P.h_min + 1, fhkl.shape[0]),
                         min(P.k_max - P.k_min + 1, fhkl.shape[1]),
                         min(P.l_max - P.l_min + 1, fhkl.shape[2])], dtype=np.float64)
        mins = np.array([P.h_min, P.k_min, P.l_min], dtype=np.float64)
        strides = np.array([fhkl.shape[1] * fhkl.shape[2], fhkl.shape[2]], dtype=np.float64)
    else:
        table = np.empty(1)
        dims = np.zeros(3)
        mins = np.zeros(3)
        strides = np.zeros(2)
    table[-1] = P.default_F
    return table, dims, mins, strides


def scene_variant(P, interpolate: bool, table_size: int) -> tuple[bool, bool, bool, bool]:
    """(general terms, curved detector, Kahn factor, sensor capture) of a scene."""
    reduce_sincg = all(float(x) == math.floor(x) for x in (P.Na, P.Nb, P.Nc))
    fast_terms = (P.xtal_shape == SQUARE and not interpolate and reduce_sincg and P.Na > 1.0
                  and P.Nb > 1.0 and P.Nc > 1.0 and table_size < 2**31 - 1)
    # with no sensor thickness C's capture fraction stays 1 unless -oversample_thick
    capture_on = bool(P.detector_thick != 0.0 or P.oversample_thick)
    return (not fast_terms, bool(P.curved_detector), P.polarization != 0.0, capture_on)


def render_vectorised(P, det, sources, cells, a_star, fhkl, mask, interpolate, row_lo, row_hi,
                col_lo, col_hi, start_index, image, omega_rows, fell_back):
    """Fill ``image`` (float32, [slow, fast]) for the rectangle of pixels given.

    Same contract as ``nbnumba.kernels.exact.render_exact``: pixels with a
    row-major index ``< start_index`` or a zero in ``mask`` are left alone,
    ``omega_rows[s]`` gets the row's solid-angle sum and ``fell_back[s]`` the
    first column (or -1) where interpolation left the table.  Rows run on
    ``numba.get_num_threads()`` threads (the row kernels release the GIL); each
    row is computed by one thread, so the result does not depend on the count.
    """
    from numba import get_num_threads

    table, dims, mins, strides = _f_table(P, fhkl)
    kernel = rows_kernel(scene_variant(P, bool(interpolate), table.shape[0]))
    args = (P, det, sources, cells, a_star, fhkl, table, dims, mins, strides, mask,
            bool(interpolate))
    tail = (col_lo, col_hi, start_index, image, omega_rows, fell_back)
    rows = max(row_hi - row_lo, 0)
    threads = min(get_num_threads(), rows)
    if threads <= 1:
        kernel(*args, row_lo, max(row_hi, row_lo), *tail)
        return
    # blocks of a few rows, dealt to the threads as they come free
    block = max(1, rows // (8 * threads))
    starts = range(row_lo, row_hi, block)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done in [pool.submit(kernel, *args, lo, min(lo + block, row_hi), *tail)
                     for lo in starts]:
            done.result()
