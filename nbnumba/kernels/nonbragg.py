"""nonBragg.c's pixel loop (lines 1409-1617) as Numba kernels.

One pixel is :func:`pixel_intensity`: sub-pixels × sources (the detector
thickness loop always runs once in nonBragg.c), each source giving
``sign·F²·polar·Ω·weight`` with F interpolated from the F(stol) table by C's
4-point Lagrange ``polint``.  Expressions keep C's operand order so that the
float64 sums, and the float32 image, match serial C.  Per-source invariants
are hoisted into the packed ``sources`` array: C's unit incident vector and
the same vector unitized once more (what ``polarization_factor`` makes of it);
the polint denominators depend only on the table index and are precomputed
with C's own operations, so every division sees the same operands.

C keeps the interpolation index ``nearest`` from pixel to pixel.  For a
strictly increasing table its walk ends on the same index from any start, so
rows run in parallel (``prange``), each starting at 0 like C; otherwise
(repeated stol values: nanoice.stol) the image is rendered serially in C's
order with the index carried.  Results never depend on the thread count.
All kernels use ``error_model="numpy"``: a zero denominator gives NaN as in C.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .physics import (
    polarization_of_unit_vectors,
    polarization_of_unit_vectors_kahn0,
    rotate_axis3,
    unitize3,
)

# rows of the packed geometry array
G_FDET = 0
G_SDET = 3
G_PIX0 = 6
G_BEAM = 9
G_AXIS = 12
G_DISTANCE = 15
G_CLOSE = 16
G_PIXEL = 17
G_SUBPIXEL = 18
G_KAHN = 19
G_SCALE_RE = 20  # r_e^2
G_FLUENCE = 21
G_MOLECULES = 22
G_LEN = 23
# flags array
F_OVERSAMPLE = 0
F_CURVED = 1
F_POINT = 2
F_NOPOLAR = 3
F_FMAP = 4
F_XMIN = 5
F_XMAX = 6
F_YMIN = 7
F_YMAX = 8
F_STOLS = 9
F_STEPS = 10
F_LEN = 11
# per-pixel detail (for -img and -printout): last stol, polar, omega, nearest, pixel_pos xyz
D_STOL = 0
D_POLAR = 1
D_OMEGA = 2
D_NEAREST = 3
D_POS = 4
D_LEN = 7


def polint_denominators(stol_of: np.ndarray) -> np.ndarray:
    """C's polint denominators for a window starting at each table index (line 2181).

    Row ``n`` holds the four products polint divides by for ``xa = stol_of[n:n+4]``,
    computed with C's operations and order, so dividing by them is C's division.
    """
    n = stol_of.size
    den = np.full((n, 4), np.nan)
    if n < 4:
        return den
    # the same IEEE operations in the same order as C's, a whole column at a time
    x0, x1, x2, x3 = stol_of[:-3], stol_of[1:-2], stol_of[2:-1], stol_of[3:]
    with np.errstate(all="ignore"):
        den[:n - 3, 0] = (x0 - x1) * (x0 - x2) * (x0 - x3)
        den[:n - 3, 1] = (x1 - x0) * (x1 - x2) * (x1 - x3)
        den[:n - 3, 2] = (x2 - x0) * (x2 - x1) * (x2 - x3)
        den[:n - 3, 3] = (x3 - x0) * (x3 - x1) * (x3 - x2)
    return den


@njit(inline="always", cache=True, error_model="numpy")
def polint_window(stol_of, F_of, den, n, x):
    """C's polint through stol_of[n..n+3] (line 2181), with precomputed denominators."""
    x0 = stol_of[n]
    x1 = stol_of[n + 1]
    x2 = stol_of[n + 2]
    x3 = stol_of[n + 3]
    t0 = (x - x1) * (x - x2) * (x - x3) * F_of[n] / den[n, 0]
    t1 = (x - x0) * (x - x2) * (x - x3) * F_of[n + 1] / den[n, 1]
    t2 = (x - x0) * (x - x1) * (x - x3) * F_of[n + 2] / den[n, 2]
    t3 = (x - x0) * (x - x1) * (x - x2) * F_of[n + 3] / den[n, 3]
    return t0 + t1 + t2 + t3


@njit(inline="always", cache=True, error_model="numpy")
def nearest_index(stol_of, stols, stol, nearest):
    """C's walk to the table row below ``stol`` (lines 1506-1507), from ``nearest``."""
    while stol > stol_of[nearest] and nearest <= stols:
        nearest += 1
    while stol < stol_of[nearest] and nearest >= 2:
        nearest -= 1
    return nearest


def index_buckets(stol_of: np.ndarray, stols: int) -> tuple[np.ndarray, float, float]:
    """A lookup table for :func:`table_index`: ``(bucket, lo, 1/width)``.

    Bucket ``b`` holds the last table row at or below ``lo + b·width``; the
    kernel corrects the guess by walking, so the result does not depend on
    the buckets' rounding.
    """
    body = stol_of[:stols]
    lo, hi = float(body[2]), float(body[stols - 3])
    nb = max(1, 4 * (stols - 4))
    width = (hi - lo) / nb if hi > lo else 1.0
    edges = lo + np.arange(nb) * width
    bucket = (np.searchsorted(body, edges, side="right") - 1).astype(np.int64)
    return np.maximum(bucket, 1), lo, 1.0 / width


@njit(inline="always", cache=True, error_model="numpy")
def table_index(stol_of, bucket, lo, width, stol, hint):
    """C's walk result for a strictly increasing table, in O(1).

    For such a table C's walk (lines 1506-1507) ends, from any start, on the
    last row ``n >= 1`` with ``stol_of[n] <= stol``; a bucket guess and a
    short walk find the same row.  A NaN stol leaves the index alone, as in C.
    """
    if stol != stol:
        return hint
    nb = bucket.size
    t = (stol - lo) * width
    b = 0
    if t >= nb:
        b = nb - 1
    elif t > 0.0:
        b = int(t)
    n = bucket[b]
    while n > 1 and stol_of[n] > stol:
        n -= 1
    while stol_of[n + 1] <= stol:
        n += 1
    return n


@njit(inline="always", cache=True, error_model="numpy")
def subpixel_position(geom, curved, fdet_mm, sdet_mm):
    """Lab position of a sub-pixel centre (lines 1437-1462), m."""
    px = fdet_mm * geom[G_FDET] + sdet_mm * geom[G_SDET] + geom[G_PIX0]
    py = fdet_mm * geom[G_FDET + 1] + sdet_mm * geom[G_SDET + 1] + geom[G_PIX0 + 1]
    pz = fdet_mm * geom[G_FDET + 2] + sdet_mm * geom[G_SDET + 2] + geom[G_PIX0 + 2]
    if curved:
        d = geom[G_DISTANCE]
        vx = d * geom[G_BEAM]
        vy = d * geom[G_BEAM + 1]
        vz = d * geom[G_BEAM + 2]
        nx, ny, nz = rotate_axis3(vx, vy, vz, geom[G_SDET], geom[G_SDET + 1], geom[G_SDET + 2],
                                  py / d)
        px, py, pz = rotate_axis3(nx, ny, nz, geom[G_FDET], geom[G_FDET + 1], geom[G_FDET + 2],
                                  pz / d)
    return px, py, pz


@njit(inline="always", cache=True, error_model="numpy")
def pixel_omega(geom, point_pixel, airpath):
    """Solid angle of the pixel seen from the sample (lines 1466-1469)."""
    pixel = geom[G_PIXEL]
    if point_pixel:
        return 1.0 / airpath / airpath
    return pixel * pixel / airpath / airpath * geom[G_CLOSE] / airpath


@njit(inline="always", cache=True, error_model="numpy")
def loop_settings(geom, flags):
    """What the sub-pixel and source loops read from ``geom``/``flags``: (oversample,
    curved, point_pixel, nopolar, sub-pixel size (m), Kahn factor, polarization axis x,
    y, z)."""
    return (flags[F_OVERSAMPLE], flags[F_CURVED], flags[F_POINT], flags[F_NOPOLAR],
            geom[G_SUBPIXEL], geom[G_KAHN], geom[G_AXIS], geom[G_AXIS + 1], geom[G_AXIS + 2])


@njit(inline="always", cache=True, error_model="numpy")
def source_stol(dx, dy, dz, ix, iy, iz, lam):
    """stol = |(diffracted - incident unit vector) / lambda| / 2 (C's scattering vector,
    lines 1497-1503), in 1/m."""
    sx = (dx - ix) / lam
    sy = (dy - iy) / lam
    sz = (dz - iz) / lam
    return 0.5 * math.sqrt(sx * sx + sy * sy + sz * sz)


@njit(inline="always", cache=True, error_model="numpy")
def pixel_value(geom, flags, Ibg, Fbg):
    """The float32 pixel: C's floatimage[j] += Ibg*r_e_sqr*fluence*molecules/steps (line
    1541), or the last F with -Fmap."""
    # onto a calloc'd +0.0: the 0.0 + makes a -0.0 product (F = 0, negative molecules) +0.0
    value = 0.0 + Ibg * geom[G_SCALE_RE] * geom[G_FLUENCE] * geom[G_MOLECULES] / flags[F_STEPS]
    if flags[F_FMAP]:
        value = Fbg
    return np.float32(value)


@njit(inline="always", cache=True, error_model="numpy")
def source_term(F, polar, omega, weight):
    """One source's share of a sub-pixel: C's ``sign·F²·polar·Ω·weight`` in C's order
    (line 1529, whose capture_fraction is 1; sign = −1 for a negative F from the table's
    overshoot)."""
    sign = 1.0
    if F < 0.0:
        sign = -1.0
    return sign * F * F * polar * omega * weight


@njit(cache=True, error_model="numpy")
def pixel_intensity(fpixel, spixel, geom, flags, sources, stol_of, F_of, den, nearest,
                    per_source, bucket, lo, width):
    """One pixel: (Ibg, last F, last stol, last polar, last omega, x, y, z, last index).

    ``Ibg`` is C's unscaled sum over sub-pixels and sources; the others are
    the values C's variables hold after the loops (for ``-Fmap``, ``-img`` and
    ``-printout``).  ``nearest`` (int64 array) holds the interpolation index
    to start from and is updated: one per source when ``per_source`` (valid
    for strictly increasing tables, where the walk's end does not depend on
    its start: :func:`table_index`), else C's single shared index and walk in
    ``nearest[0]``.
    """
    n_over, curved, point_pixel, nopolar, sub, kahn, ax, ay, az = loop_settings(geom, flags)
    stols = flags[F_STOLS]
    nsrc = sources.shape[0]
    Ibg = 0.0
    Fbg = 0.0
    stol = 0.0
    n = nearest[0]
    polar = 1.0
    omega = 0.0
    px = 0.0
    py = 0.0
    pz = 0.0
    for subS in range(n_over):
        Sdet = sub * (spixel * n_over + subS) + sub / 2.0
        for subF in range(n_over):
            Fdet = sub * (fpixel * n_over + subF) + sub / 2.0
            px, py, pz = subpixel_position(geom, curved, Fdet, Sdet)
            dx, dy, dz, airpath = unitize3(px, py, pz)
            omega = pixel_omega(geom, point_pixel, airpath)
            # polarization_factor re-unitizes C's diffracted vector in place at every
            # source; once that is a fixed point (the usual case) it stays one
            ux, uy, uz, _ = unitize3(dx, dy, dz)
            vx, vy, vz, _ = unitize3(ux, uy, uz)
            fixed = vx == ux and vy == uy and vz == uz
            for s in range(nsrc):
                ix = sources[s, 0]
                iy = sources[s, 1]
                iz = sources[s, 2]
                lam = sources[s, 6]
                stol = source_stol(dx, dy, dz, ix, iy, iz, lam)
                if per_source:
                    n = table_index(stol_of, bucket, lo, width, stol, nearest[s])
                    nearest[s] = n
                else:
                    n = nearest_index(stol_of, stols, stol, nearest[0])
                    nearest[0] = n
                Fbg = polint_window(stol_of, F_of, den, n - 1, stol)
                if not nopolar:
                    if fixed:
                        dx, dy, dz = ux, uy, uz
                    else:
                        dx, dy, dz, _ = unitize3(dx, dy, dz)
                    polar = polarization_of_unit_vectors(kahn, sources[s, 3], sources[s, 4],
                                                         sources[s, 5], dx, dy, dz, ax, ay, az)
                else:
                    polar = 1.0
                Ibg += source_term(Fbg, polar, omega, sources[s, 7])
    return Ibg, Fbg, stol, polar, omega, px, py, pz, n


@njit(inline="always", cache=True, error_model="numpy")
def _row(spixel, geom, flags, sources, stol_of, F_of, den, image, detail, keep, nearest,
         per_source, bucket, lo, width):
    fpixels = image.shape[1]
    for fpixel in range(fpixels):
        if (fpixel < flags[F_XMIN] or fpixel > flags[F_XMAX] or spixel < flags[F_YMIN]
                or spixel > flags[F_YMAX]):
            continue
        Ibg, Fbg, stol, polar, omega, px, py, pz, last = pixel_intensity(
            fpixel, spixel, geom, flags, sources, stol_of, F_of, den, nearest, per_source,
            bucket, lo, width)
        image[spixel, fpixel] = pixel_value(geom, flags, Ibg, Fbg)
        if keep:
            j = spixel * fpixels + fpixel
            detail[j, D_STOL] = stol
            detail[j, D_POLAR] = polar
            detail[j, D_OMEGA] = omega
            detail[j, D_NEAREST] = last
            detail[j, D_POS] = px
            detail[j, D_POS + 1] = py
            detail[j, D_POS + 2] = pz


@njit(inline="always", cache=True, error_model="numpy")
def _row_across(spixel, geom, flags, sources, stol_of, F_of, den, image, bucket, lo, width):
    """One row of :func:`pixel_intensity` for a strictly increasing table, without the
    per-pixel detail, turned inside out: per sub-pixel and source, each step is a pass
    across the row's pixels (stol, table row, interpolation, sum), so the passes without
    table lookups vectorise. Every pixel still sums its sub-pixels and sources in C's
    order with C's operations; the diffracted vector each source sees (C's
    polarization_factor re-unitizes it in place) is carried per pixel. A NaN stol gives a
    NaN F whatever the table row, so the walk's start, which C carries from pixel to
    pixel, does not matter here."""
    fpixels = image.shape[1]
    if spixel < flags[F_YMIN] or spixel > flags[F_YMAX]:
        return
    fa = max(0, flags[F_XMIN])
    fb = min(fpixels - 1, flags[F_XMAX])
    m = fb - fa + 1
    if m <= 0:
        return
    n_over, curved, point_pixel, nopolar, sub, kahn, ax, ay, az = loop_settings(geom, flags)
    nsrc = sources.shape[0]
    Ibg = np.zeros(m)
    Fbg = np.zeros(m)
    cx = np.empty(m)  # the diffracted vector as the next source sees it
    cy = np.empty(m)
    cz = np.empty(m)
    ux = np.empty(m)  # unitize(first unit vector): what polarization makes of it
    uy = np.empty(m)
    uz = np.empty(m)
    fixed = np.empty(m, dtype=np.bool_)
    moving = np.empty(m, dtype=np.int64)  # the pixels whose vector is not at its fixed point
    omega = np.empty(m)
    stol = np.empty(m)
    row = np.empty(m, dtype=np.int64)
    for subS in range(n_over):
        Sdet = sub * (spixel * n_over + subS) + sub / 2.0
        for subF in range(n_over):
            n_moving = 0
            for t in range(m):
                Fdet = sub * ((fa + t) * n_over + subF) + sub / 2.0
                px, py, pz = subpixel_position(geom, curved, Fdet, Sdet)
                dx, dy, dz, airpath = unitize3(px, py, pz)
                omega[t] = pixel_omega(geom, point_pixel, airpath)
                vx, vy, vz, _ = unitize3(dx, dy, dz)
                wx, wy, wz, _ = unitize3(vx, vy, vz)
                cx[t] = dx
                cy[t] = dy
                cz[t] = dz
                ux[t] = vx
                uy[t] = vy
                uz[t] = vz
                fixed[t] = wx == vx and wy == vy and wz == vz
            for t in range(m):
                if not fixed[t]:
                    moving[n_moving] = t
                    n_moving += 1
            for s in range(nsrc):
                ix = sources[s, 0]
                iy = sources[s, 1]
                iz = sources[s, 2]
                lam = sources[s, 6]
                for t in range(m):
                    stol[t] = source_stol(cx[t], cy[t], cz[t], ix, iy, iz, lam)
                for t in range(m):
                    row[t] = table_index(stol_of, bucket, lo, width, stol[t], 0)
                weight = sources[s, 7]
                for t in range(m):
                    Fbg[t] = polint_window(stol_of, F_of, den, row[t] - 1, stol[t])
                if nopolar:
                    for t in range(m):
                        Ibg[t] += source_term(Fbg[t], 1.0, omega[t], weight)
                    continue
                if s == 0:
                    # polarization_factor leaves a fixed pixel's vector at u for good
                    for t in range(m):
                        if fixed[t]:
                            cx[t] = ux[t]
                            cy[t] = uy[t]
                            cz[t] = uz[t]
                if kahn == 0.0:
                    _sum_fixed_kahn0(Ibg, Fbg, omega, ux, uy, uz, fixed, sources, s, kahn,
                                     weight)
                    for q in range(n_moving):
                        _sum_one(Ibg, Fbg, omega, cx, cy, cz, sources, s, kahn, weight,
                                 moving[q], ax, ay, az)
                    continue
                for t in range(m):
                    if fixed[t]:
                        polar = polarization_of_unit_vectors(
                            kahn, sources[s, 3], sources[s, 4], sources[s, 5], ux[t], uy[t],
                            uz[t], ax, ay, az)
                        Ibg[t] += source_term(Fbg[t], polar, omega[t], weight)
                    else:
                        _sum_one(Ibg, Fbg, omega, cx, cy, cz, sources, s, kahn, weight, t,
                                 ax, ay, az)
    for t in range(m):
        image[spixel, fa + t] = pixel_value(geom, flags, Ibg[t], Fbg[t])


@njit(inline="always", cache=True, error_model="numpy")
def _sum_fixed_kahn0(Ibg, Fbg, omega, ux, uy, uz, fixed, sources, s, kahn, weight):
    """The sum pass of :func:`_row_across` for a Kahn factor of 0 over the pixels whose
    vector sits at polarization's fixed point ``u``: branch- and call-free, it
    vectorises (the others are :func:`_sum_one`'s)."""
    ix = sources[s, 3]
    iy = sources[s, 4]
    iz = sources[s, 5]
    for t in range(Ibg.size):
        polar = polarization_of_unit_vectors_kahn0(kahn, ix, iy, iz, ux[t], uy[t], uz[t])
        if fixed[t]:
            Ibg[t] += source_term(Fbg[t], polar, omega[t], weight)


@njit(inline="always", cache=True, error_model="numpy")
def _sum_one(Ibg, Fbg, omega, cx, cy, cz, sources, s, kahn, weight, t, ax, ay, az):
    """Source ``s``'s term of pixel ``t`` whose vector C's polarization_factor still moves:
    unitized in place once more, as C does at every source."""
    dx, dy, dz, _ = unitize3(cx[t], cy[t], cz[t])
    cx[t] = dx
    cy[t] = dy
    cz[t] = dz
    polar = polarization_of_unit_vectors(kahn, sources[s, 3], sources[s, 4], sources[s, 5],
                                         dx, dy, dz, ax, ay, az)
    Ibg[t] += source_term(Fbg[t], polar, omega[t], weight)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def render_parallel(geom, flags, sources, stol_of, F_of, den, image, detail, keep, buckets):
    """All rows in parallel, each source's index walk starting at 0 (strictly increasing
    tables: the walk ends on the same row from any start); without ``keep`` (no per-pixel
    detail wanted) each row runs across its pixels (:func:`_row_across`)."""
    bucket, lo, width = buckets
    for spixel in prange(image.shape[0]):
        if keep:
            nearest = np.zeros(sources.shape[0], dtype=np.int64)
            _row(spixel, geom, flags, sources, stol_of, F_of, den, image, detail, keep,
                 nearest, True, bucket, lo, width)
        else:
            _row_across(spixel, geom, flags, sources, stol_of, F_of, den, image, bucket, lo,
                        width)


@njit(cache=True, nogil=True, error_model="numpy")
def render_serial(geom, flags, sources, stol_of, F_of, den, image, detail, keep):
    """All rows in C's order with C's persistent index (any table)."""
    nearest = np.zeros(1, dtype=np.int64)
    bucket = np.zeros(1, dtype=np.int64)
    for spixel in range(image.shape[0]):
        _row(spixel, geom, flags, sources, stol_of, F_of, den, image, detail, keep, nearest,
             False, bucket, 0.0, 1.0)


OMEGA_BLOCK = 1 << 18  # sub-pixels whose Ω one parallel pass of omega_sum holds


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _omega_rows(geom, flags, fpixels, first, rows, omega):
    """Ω of each ROI sub-pixel of ``rows`` rows from ``first``, in parallel by row, into
    ``omega`` in C's loop order (row, fpixel, subS, subF); sub-pixels outside the ROI
    are left alone."""
    n_over = flags[F_OVERSAMPLE]
    sub = geom[G_SUBPIXEL]
    per_pixel = n_over * n_over
    for r in prange(rows):
        spixel = first + r
        for fpixel in range(max(0, flags[F_XMIN]), min(fpixels - 1, flags[F_XMAX]) + 1):
            j = (r * fpixels + fpixel) * per_pixel
            for subS in range(n_over):
                Sdet = sub * (spixel * n_over + subS) + sub / 2.0
                for subF in range(n_over):
                    Fdet = sub * (fpixel * n_over + subF) + sub / 2.0
                    px, py, pz = subpixel_position(geom, flags[F_CURVED], Fdet, Sdet)
                    airpath = math.sqrt(px * px + py * py + pz * pz)
                    omega[j + subS * n_over + subF] = pixel_omega(geom, flags[F_POINT],
                                                                  airpath)


@njit(cache=True, nogil=True, error_model="numpy")
def omega_sum(geom, flags, fpixels, spixels):
    """C's omega_sum: Ω of every ROI sub-pixel added in C's order (line 1470).

    The Ω values are computed in parallel a block of rows at a time
    (:func:`_omega_rows`); only the sum runs serially, in C's order, so the result
    does not depend on the thread count.
    """
    n_over = flags[F_OVERSAMPLE]
    per_pixel = n_over * n_over
    fa = max(0, flags[F_XMIN])
    fb = min(fpixels - 1, flags[F_XMAX])
    sa = max(0, flags[F_YMIN])
    sb = min(spixels - 1, flags[F_YMAX])
    total = 0.0
    if fb < fa or sb < sa or per_pixel <= 0:
        return total
    per_row = fpixels * per_pixel
    block = max(1, OMEGA_BLOCK // per_row)
    omega = np.empty(min(block, sb - sa + 1) * per_row)
    first = sa
    while first <= sb:
        rows = min(block, sb - first + 1)
        _omega_rows(geom, flags, fpixels, first, rows, omega)
        for r in range(rows):
            for j in range((r * fpixels + fa) * per_pixel, (r * fpixels + fb + 1) * per_pixel):
                total += omega[j]
        first += rows
    return total


@njit(cache=True, error_model="numpy")
def img_bins(img, detail, fpixels, spixels, xmin, xmax, ymin, ymax, ignore, adc, gain,
             fluence, r_e_sqr, molecules, steps, stol_of, stols):
    """-img: F per pixel and its stol bin, as C's pixel loop computes them (lines 1547-1576).

    Returns ``(Fimage, bin_of, pixels_in)``; ROI-skipped pixels stay in bin 0
    with F = 0 and are not counted, as in C.
    """
    pixels = fpixels * spixels
    Fimage = np.zeros(pixels, dtype=np.float32)
    bin_of = np.zeros(pixels, dtype=np.int64)
    pixels_in = np.zeros(stols, dtype=np.int64)
    for spixel in range(spixels):
        for fpixel in range(fpixels):
            if fpixel < xmin or fpixel > xmax or spixel < ymin or spixel > ymax:
                continue
            j = spixel * fpixels + fpixel
            value = np.float32(img[j]) if j < img.size else np.float32(0.0)
            invalid = False
            for k in range(ignore.size):
                if value == ignore[k]:
                    invalid = True
            deviate = np.float32((np.float64(value) - adc) / gain)
            sign = np.float32(1.0)
            if deviate < 0.0:
                sign = np.float32(-1.0)
            deviate = abs(deviate)
            polar = detail[j, D_POLAR]
            omega = detail[j, D_OMEGA]
            stol = detail[j, D_STOL]
            Fimage[j] = np.float32(np.float64(sign) * math.sqrt(
                np.float64(deviate) / polar / omega / fluence / r_e_sqr / molecules * steps))
            b = 0
            if not invalid:
                b = int(detail[j, D_NEAREST])
                if stol > (stol_of[b] + stol_of[b + 1]) / 2.0:
                    b += 1
            pixels_in[b] += 1
            bin_of[j] = b
    return Fimage, bin_of, pixels_in


@njit(cache=True, error_model="numpy")
def bin_storage(Fimage, bin_of, pixels_in, stols):
    """C's packing of pixel F values into per-bin runs of one buffer (lines 1626-1650).

    Bin 0 also receives the ROI-skipped pixels it never counted, so it can run
    over into the next bins' storage; this reproduces C's memory layout.
    Returns ``(buffer, start)`` or a buffer of size 0 when C would write
    outside its allocation (or through an unset bin pointer).
    """
    pixels = Fimage.size
    buf = np.zeros(2 * pixels + 10 * stols, dtype=np.float32)
    start = np.zeros(stols, dtype=np.int64)
    start[0] = 1
    for b in range(1, stols - 1):
        start[b] = start[b - 1] + 2 * pixels_in[b - 1] + 2
    pos = start.copy()
    for j in range(pixels):
        b = bin_of[j]
        if b >= stols - 1 or pos[b] >= buf.size:
            return np.zeros(0, dtype=np.float32), start
        buf[pos[b]] = Fimage[j]
        pos[b] += 1
    return buf, start


@njit(cache=True, error_model="numpy")
def fmean_float32(arr):
    """C's fmean_with_rejection with no rejection (cutoff 1e99): float arithmetic.

    Returns ``(avg, rmsd)``; both 0 for an empty bin (C leaves them uninitialised).
    """
    points = arr.size
    if points == 0:
        return np.float32(0.0), np.float32(0.0)
    total = np.float32(0.0)
    for i in range(points):
        total = np.float32(total + arr[i])
    avg = np.float32(total / np.float32(points))
    sumd = np.float32(0.0)
    for i in range(points):
        deviate = np.float32(abs(arr[i] - avg))
        sumd = np.float32(sumd + np.float32(deviate * deviate))
    rmsd = np.float32(math.sqrt(np.float64(np.float32(sumd / np.float32(points)))))
    return avg, rmsd
