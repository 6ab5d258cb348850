"""noisify.c's per-pixel loops as Numba kernels: shot noise, read noise, the PSF.

The random draws run serially in C's order (one shared generator state, see
:mod:`nbnumba.rng`); everything that does not draw runs in parallel where the
result cannot depend on the thread count: each output pixel is written by one
thread, with its float32 sums in C's order. Line numbers refer to noisify.c
(bl831/nanoBragg, "6-28-21"); ``specs/noisify.md`` describes the quirks kept.

All kernels use ``error_model="numpy"`` so that division and ``sqrt``/``log`` of
bad values give inf/NaN as in C instead of raising.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..rng import gaussdev_inline, lgamma_table, poidev_table_inline

GAUSS = 2  # C's psf_type enum (line 72): UNKNOWN, FIBER, GAUSS
FIBER = 1
INT_MIN = -(2**31)
LOG2 = math.log(2.0)
LOG16 = math.log(16.0)
SQRT_LOG2 = math.sqrt(LOG2)
SQRT_LOG16 = math.sqrt(LOG16)
SQRT_LOG16_OVER_LOG2 = math.sqrt(LOG16 / LOG2)
PHOTONLOSS_FACTOR = 10.0  # apply_psf's photonloss_factor (line 726)


@njit(inline="always", cache=True, error_model="numpy")
def c_int(x):
    """``(int) x`` for a double as gcc emits it on x86-64 (cvttsd2si): truncation,
    INT_MIN for NaN and out-of-range values."""
    if x != x or x >= 2147483648.0 or x <= -2147483649.0:
        return INT_MIN
    return int(x)


@njit(inline="always", cache=True, error_model="numpy")
def adu_to_uint(adu):
    """C's ``(unsigned int) adu`` and ``(unsigned short int) adu`` (lines 515-517, 630-635)
    as gcc -O3 compiles them on x86-64: a 32-bit truncating conversion (INT_MIN when out of
    range or NaN) whose low 32 and 16 bits are kept. Only negative or NaN ``adu`` (no
    ADC offset with read noise, negative input) makes this differ from plain truncation.
    The uint16 stores always convert this way; the uint32 store does only in the packed
    part of the noiseless loop (else :func:`adu_to_uint32_wide`)."""
    v = c_int(adu)
    return v & 0xFFFFFFFF, v & 0xFFFF


@njit(inline="always", cache=True, error_model="numpy")
def adu_to_uint32_wide(adu):
    """C's ``(unsigned int) adu`` where gcc -O3 emits a scalar 64-bit conversion
    (``cvttsd2si %xmm, %r64``; the noise loop, line 630, and the last ``pixels % 8``
    pixels of the noiseless loop, line 515): truncation to int64 whose low 32 bits are
    kept, so -1e10 keeps its low bits, and NaN or |adu| >= 2^63 (0x8000000000000000)
    gives 0. Differs from :func:`adu_to_uint` only below -2^31 and for NaN."""
    if adu != adu or adu >= 9223372036854775808.0 or adu < -9223372036854775808.0:
        return 0
    return np.int64(adu) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- noise

LGAMMA_MAX = 2**20  # entries of the gammln table at most (4 MiB)


@njit(cache=True, error_model="numpy")
def lgamma_for(photons):
    """gammln(k+1) (:func:`nbnumba.rng.lgamma_table`) up to a few sigma above the brightest
    finite mean, at most ``LGAMMA_MAX`` entries; empty when every mean is below 12 (the
    rejection branch is never taken)."""
    top = -np.inf
    for i in range(photons.size):
        v = np.float64(photons[i])
        if math.isfinite(v) and v > top:
            top = v
    if not top >= 12.0:
        return np.zeros(0, dtype=np.float32)
    return lgamma_table(int(min(LGAMMA_MAX, top + 10.0 * math.sqrt(top) + 100.0)))


@njit(cache=True, nogil=True, error_model="numpy")
def shot_noise(photons, flicker, calibration, seed, calib_seed, state):
    """C's noise loop (lines 571-590), serial in pixel order.

    Per pixel: flicker ``gaussdev(&seed)``, calibration ``gaussdev(&calib_seed)``, then
    ``poidev((float) p, &seed)``; both seeds share ``state`` (ran1's table, gaussdev's
    spare, poidev's cache). gammln of integer candidates comes from a table
    (:func:`lgamma_for`), made here so that the draws start without another kernel load.
    Returns the float32 Poisson counts and their double sum.
    """
    lgamma = lgamma_for(photons)
    n = photons.size
    out = np.empty(n, dtype=np.float32)
    total = 0.0
    for i in range(n):
        p = np.float64(photons[i])
        if flicker > 0.0:
            p *= 1.0 + flicker * np.float64(gaussdev_inline(seed, state))
        if calibration > 0.0:
            p *= 1.0 + calibration * np.float64(gaussdev_inline(calib_seed, state))
        v = poidev_table_inline(np.float32(p), seed, state, lgamma)
        out[i] = v
        total += np.float64(v)
    return out, total


@njit(cache=True, nogil=True, error_model="numpy")
def gauss_draws(n, seed, state):
    """n gaussdev(&seed) draws in order (the read noise of lines 616-618), float32."""
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        out[i] = gaussdev_inline(seed, state)
    return out


@njit(parallel=True, cache=True, error_model="numpy")
def photon_scale(image, factor):
    """``(float)(factor * I)`` per pixel (line 489; factor = fluence*r_e^2*scale)."""
    out = np.empty(image.size, dtype=np.float32)
    for i in prange(image.size):
        out[i] = np.float32(factor * np.float64(image[i]))
    return out


@njit(cache=True, error_model="numpy")
def serial_sum(values):
    """Double sum in index order, as C's ``sum += photonimage[i]``."""
    total = 0.0
    for i in range(values.size):
        total += np.float64(values[i])
    return total


@njit(parallel=True, cache=True, error_model="numpy")
def quantise(photons, gain, adc, readout, draws, count_bits):
    """Photons to ADU and C's integer images (lines 508-519 and 609-637).

    ``adu = photons*gain + adc (+ readout*draws[i])``, clamped at 2^31-1 (counted when
    ``count_bits`` is 32) before the uint32 store, then at 65535 (counted when 16) before
    the uint16 store. ``draws`` may be empty (no read noise). Returns (uint32, uint16,
    overloads).
    """
    n = photons.size
    out32 = np.empty(n, dtype=np.uint32)
    out16 = np.empty(n, dtype=np.uint16)
    over = np.zeros(n, dtype=np.uint8)
    with_noise = readout > 0.0 and draws.size == n
    for i in prange(n):
        adu = np.float64(photons[i]) * gain + adc
        if with_noise:
            adu += readout * np.float64(draws[i])
        if adu > 2147483647.0:
            adu = 2147483647.0
            if count_bits == 32:
                over[i] = 1
        out32[i] = adu_to_uint32_wide(adu)
        if adu > 65535.0:
            adu = 65535.0
            if count_bits == 16:
                over[i] = 1
        _, u16 = adu_to_uint(adu)
        out16[i] = u16
    overloads = 0
    for i in range(n):
        overloads += over[i]
    return out32, out16, overloads


@njit(parallel=True, cache=True, error_model="numpy")
def noiseless_int(photons, gain, adc):
    """The noiseless int images (lines 508-519): the 65535 clamp comes BEFORE the uint32
    store, so the 32-bit noiseless image never exceeds 65535 either.

    gcc -O3 vectorises this loop 8 pixels at a time with a packed 32-bit conversion
    (``cvttpd2dq``: INT_MIN for NaN and below -2^31) and converts the last
    ``pixels % 8`` pixels with the scalar 64-bit one (:func:`adu_to_uint32_wide`);
    the two differ only for NaN or ADU below -2^31 (checked against the C build)."""
    n = photons.size
    out32 = np.empty(n, dtype=np.uint32)
    out16 = np.empty(n, dtype=np.uint16)
    packed = n - n % 8
    for i in prange(n):
        adu = np.float64(photons[i]) * gain + adc
        if adu > 2147483647.0:
            adu = 2147483647.0
        if adu > 65535.0:
            adu = 65535.0
        u32, u16 = adu_to_uint(adu)
        out32[i] = u32 if i < packed else adu_to_uint32_wide(adu)
        out16[i] = u16
    return out32, out16


# ------------------------------------------------------------------------------- PSF

@njit(inline="always", cache=True, error_model="numpy")
def _gauss_integ(x, y):
    # ngauss2D_integ (line 676), same operation order
    return 0.125 * (math.erf(2 * x * SQRT_LOG2) * math.erf(y * SQRT_LOG16)
                    * SQRT_LOG16_OVER_LOG2)


@njit(inline="always", cache=True, error_model="numpy")
def _fiber_integ(x, y, g):
    # fiber2D_integ (line 701)
    return math.atan((x * y) / (g * math.sqrt(g * g + x * x + y * y))) / 2.0 / math.pi


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def psf_kernel(psftype, fwhm_pixels, g, radius):
    """C's cached kernel (lines 808-827): (2R+1)^2 doubles, index
    ``size*(size//2+dy) + size//2+dx``; the pixel integral of the PSF on the disc
    dx^2+dy^2 <= R^2, zero outside. Rows in parallel (each value is computed alone).

    The fiber integral at a pixel's right corners (x+0.5) is the next pixel's at its left
    ones ((x+1)-0.5, the same double), so each row evaluates each corner once (half of
    C's atan calls) and combines them in C's order: the same values bit for bit."""
    size = 2 * radius + 1
    kernel = np.zeros(size * size, dtype=np.float64)
    half = size // 2
    rr = radius * radius
    for row in prange(size):
        dy = row - radius
        if dy * dy > rr:
            continue
        w = min(_half_width(radius, dy), radius)
        base = size * (half + dy) + half
        if psftype == GAUSS:
            for dx in range(-w, w + 1):
                # integrate_gauss_over_pixel -> ngauss2D_pixel(x/fwhm, y/fwhm, 1/fwhm)
                x = dx / fwhm_pixels
                y = dy / fwhm_pixels
                p = 1.0 / fwhm_pixels
                kernel[base + dx] = (_gauss_integ(x + p / 2.0, y + p / 2.0)
                                     - _gauss_integ(x + p / 2.0, y - p / 2.0)
                                     - _gauss_integ(x - p / 2.0, y + p / 2.0)
                                     + _gauss_integ(x - p / 2.0, y - p / 2.0))
        else:
            y = np.float64(dy)
            # corner c sits at x = (c - w) - 0.5: pixel dx has corners c = dx+w, dx+w+1
            below = np.empty(2 * w + 2)
            above = np.empty(2 * w + 2)
            for c in range(2 * w + 2):
                xc = np.float64(c - w) - 0.5
                below[c] = _fiber_integ(xc, y - 0.5, g)
                above[c] = _fiber_integ(xc, y + 0.5, g)
            for dx in range(-w, w + 1):
                c = dx + w
                # fiber2D_pixel: f(x+.5,y+.5) - f(x+.5,y-.5) - f(x-.5,y+.5) + f(x-.5,y-.5)
                kernel[base + dx] = above[c + 1] - below[c + 1] - above[c] + below[c]
    return kernel


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def psf_radii(image, psftype, fwhm_pixels, g, user_radius, maxwidth):
    """Per-pixel rendering radius and lost photons (lines 836-887), in parallel.

    Returns (radius int64, lost float64, used bool): ``used`` is C's ``inimage[i] > 0``
    test passed (NaN passes, as in C); radius follows C's int conversions, INT_MIN where
    the automatic Gaussian formula takes sqrt of a negative number (0 < I < 0.01).
    """
    n = image.size
    radius = np.zeros(n, dtype=np.int64)
    lost = np.zeros(n, dtype=np.float64)
    used = np.zeros(n, dtype=np.bool_)
    for i in prange(n):
        v = np.float64(image[i])
        if v <= 0.0:
            continue
        used[i] = True
        if user_radius != 0:
            r = user_radius
        else:
            lost_photons = math.sqrt(v) / PHOTONLOSS_FACTOR
            r = 0
            if psftype == GAUSS:
                r = c_int(1.0 + math.ceil(math.sqrt(-math.log(lost_photons / v) / LOG16)
                                          * fwhm_pixels))
            else:
                r = c_int(1.0 + math.ceil(g * (v / lost_photons)))
        if r == 0:
            r = 1
        if r > maxwidth:
            r = maxwidth
        if psftype == GAUSS:
            rsq = np.float64(r)
            rsq = rsq / fwhm_pixels
            rsq = rsq * rsq
            lost[i] = v * math.exp(-LOG16 * rsq)
        else:
            r2 = (r * r + 2**31) % 2**32 - 2**31  # C's int product
            lost[i] = v * g / math.sqrt(g * g + r2)
        radius[i] = r
    return radius, lost, used


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def psf_wraps(radius, used, xpixels, ypixels):
    """Whether C's bounds test ``x > xpixels`` (line 901) puts any tap on column 0 of the
    next row: a rendered pixel whose radius reaches one column past the right edge, in
    every row but the last (there the tap falls off the image)."""
    hits = 0
    for i in prange(xpixels * (ypixels - 1) if ypixels > 1 else 0):
        if used[i] and radius[i] >= xpixels - i % xpixels:
            hits += 1
    return hits > 0


@njit(cache=True, error_model="numpy")
def psf_lost_total(lost, used):
    """total_lost_photons summed in pixel order (line 887)."""
    total = 0.0
    for i in range(lost.size):
        if used[i]:
            total += lost[i]
    return total


@njit(inline="always", cache=True, error_model="numpy")
def _tap_ok(d2, r):
    # C: the loop runs dx, dy over -r..r (nothing for r < 0), then skips rsq > r*r
    return r >= 0 and d2 <= r * r


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def psf_gather(image, xpixels, ypixels, kernel, kradius, radius, used, uniform,
               lost_per_pixel):
    """The blur of lines 830-919 as a gather: each output pixel sums its sources in C's
    order (source pixels ascending, then dx, then dy), in float32 as C's
    ``outimage[j] += inimage[i]*kernel[k]``, then gets ``lost_per_pixel`` added.

    Its work is every pixel times the kernel's (2*kradius+1)^2 taps, vectorised along
    rows: the faster way when the sources' radii are all (near) ``kradius``.

    C's bounds test ``x > xpixels`` (line 901) lets x == xpixels through, which lands on
    column 0 of the next row: column 0 therefore also collects the taps of the previous
    row's right edge, merged here in C's order. ``uniform``: every used pixel has the
    same radius ``kradius`` (user radius), so the per-tap radius test can be dropped.

    image: float32 (ypixels*xpixels,); kernel: from :func:`psf_kernel` with ``kradius``;
    radius/used: from :func:`psf_radii`. Returns float32 (ypixels*xpixels,).
    """
    size = 2 * kradius + 1
    half = size // 2
    # values of the used pixels (0 for the others: adding 0*k leaves a float unchanged)
    w = np.empty(image.size, dtype=np.float64)
    for i in prange(image.size):
        w[i] = np.float64(image[i]) if used[i] else 0.0
    out = np.empty(ypixels * xpixels, dtype=np.float32)
    for yj in prange(ypixels):
        acc = np.zeros(xpixels, dtype=np.float32)
        # source rows ascending (y0 = yj - dy), within a row x0 ascending (x0 = x - dx)
        for dy in range(kradius, -kradius - 1, -1):
            y0 = yj - dy
            if y0 < 0 or y0 >= ypixels:
                continue
            row = y0 * xpixels
            for dx in range(kradius, -kradius - 1, -1):
                kk = kernel[size * (half + dy) + half + dx]
                if kk == 0.0:
                    continue
                # output columns 1..xpixels-1 whose source x - dx is inside the row
                lo = max(1, dx)
                hi = min(xpixels, xpixels + dx)
                if hi <= lo:
                    continue
                # slices indexed from 0 let LLVM vectorise (no negative-index wraparound)
                a = acc[lo:hi]
                src = w[row + lo - dx:row + hi - dx]
                if uniform:
                    for t in range(a.size):
                        a[t] = np.float32(np.float64(a[t]) + src[t] * kk)
                else:
                    d2 = dx * dx + dy * dy
                    rad = radius[row + lo - dx:row + hi - dx]
                    for t in range(a.size):
                        # adding +0.0 leaves a float32 sum unchanged (it is never -0.0)
                        a[t] = np.float32(np.float64(a[t])
                                          + (src[t] * kk if _tap_ok(d2, rad[t]) else 0.0))
        # column 0: direct taps from rows yj-dy and the wrapped taps (x == xpixels) of
        # row yj-1's sources, merged in source order
        a0 = np.float32(0.0)
        ylo = max(0, yj - 1 - kradius)
        yhi = min(ypixels - 1, yj + kradius)
        for y0 in range(ylo, yhi + 1):
            dyd = yj - y0  # direct: y0 + dy == yj
            dyw = yj - 1 - y0  # wrapped: y0 + dy == yj - 1, x0 + dx == xpixels
            # only x0 <= kradius (direct) and x0 >= xpixels-kradius (wrapped) can reach
            split = min(kradius + 1, xpixels)
            x0 = -1
            while True:
                x0 += 1
                if x0 == split:
                    x0 = max(split, xpixels - kradius)
                if x0 >= xpixels:
                    break
                i = y0 * xpixels + x0
                if not used[i]:
                    continue
                r = radius[i]
                if -kradius <= dyd <= kradius and x0 <= kradius:
                    dx = -x0
                    kk = kernel[size * (half + dyd) + half + dx]
                    if kk != 0.0 and _tap_ok(dx * dx + dyd * dyd, r):
                        a0 = np.float32(np.float64(a0) + w[i] * kk)
                dx = xpixels - x0
                if yj >= 1 and -kradius <= dyw <= kradius and dx <= kradius:
                    kk = kernel[size * (half + dyw) + half + dx]
                    if kk != 0.0 and _tap_ok(dx * dx + dyw * dyw, r):
                        a0 = np.float32(np.float64(a0) + w[i] * kk)
        acc[0] = a0
        for x in range(xpixels):
            out[yj * xpixels + x] = np.float32(np.float64(acc[x]) + lost_per_pixel)
    return out


@njit(cache=True, error_model="numpy")
def _half_widths(table, r):
    # table[r*(r+1)//2 + a] = the largest dx with dx^2 + a^2 <= r^2, a = 0..r
    o = r * (r + 1) // 2
    d = r
    for a in range(r + 1):
        rem = r * r - a * a
        while d * d > rem:
            d -= 1
        table[o + a] = d


@njit(inline="always", cache=True, error_model="numpy")
def _half_width(r, dy):
    # the largest dx with dx^2 + dy^2 <= r^2 (|dy| <= r)
    rem = r * r - dy * dy
    d = np.int64(math.sqrt(np.float64(rem)))
    while d * d > rem:
        d -= 1
    while (d + 1) * (d + 1) <= rem:
        d += 1
    return d


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def psf_scatter(image, xpixels, ypixels, kernel, kradius, radius, used, lost_per_pixel):
    """The blur of lines 830-919: C's scatter, each source pixel spread over its own
    radius, in float32 as C's ``outimage[j] += inimage[i]*kernel[k]``; then every pixel
    gets ``lost_per_pixel`` added.

    The work is that of C's loop (the sum over rendered pixels of their disc areas), not
    of the largest radius for every pixel. It runs in parallel over bands of output rows:
    each band's thread visits the sources that reach it in C's order (pixel index
    ascending) and writes only its own rows, so every output pixel receives its taps in
    C's order whatever the number of threads or bands.

    Taps follow C's tests: ``|dx|, |dy| <= radius`` of the source, ``dx^2+dy^2 <=
    radius^2``, the kernel value not 0, and only the taps within the kernel's own
    ``kradius`` (a source radius beyond it would index outside C's kernel). C's bounds
    test ``x > xpixels`` (line 901) lets x == xpixels through, which lands on column 0 of
    the next row (j == pixels falls off the image). Within one source, C's dx-outer loop
    adds a direct tap to (y, 0) before the wrapped tap to the same pixel; rows are visited
    with dy descending so the same holds here.

    image: float32 (ypixels*xpixels,); kernel: from :func:`psf_kernel` with ``kradius``;
    radius/used: from :func:`psf_radii`. Returns float32 (ypixels*xpixels,).
    """
    size = 2 * kradius + 1
    half = kradius
    n = ypixels * xpixels
    out = np.zeros(n, dtype=np.float32)
    if kradius >= 0 and n > 0:
        # the disc's half width per row for every radius up to kradius
        widths = np.empty((kradius + 1) * (kradius + 2) // 2, dtype=np.int64)
        for r in prange(kradius + 1):
            _half_widths(widths, r)
        # the rendering sources per row, in pixel order (CSR), with their clipped radius
        count = np.zeros(ypixels + 1, dtype=np.int64)
        rowmax = np.full(ypixels, -1, dtype=np.int64)
        for y0 in prange(ypixels):
            c = 0
            m = -1
            for i in range(y0 * xpixels, (y0 + 1) * xpixels):
                if used[i] and radius[i] >= 0:
                    c += 1
                    m = max(m, min(radius[i], kradius))
            count[y0 + 1] = c
            rowmax[y0] = m
        start = np.cumsum(count)
        src = np.empty(start[ypixels], dtype=np.int64)
        for y0 in prange(ypixels):
            c = start[y0]
            for i in range(y0 * xpixels, (y0 + 1) * xpixels):
                if used[i] and radius[i] >= 0:
                    src[c] = i
                    c += 1
        bands = min(ypixels, 64)
        for b in prange(bands):
            ya = (b * ypixels) // bands
            yb = ((b + 1) * ypixels) // bands
            # a source row y0 reaches the band [ya, yb) when its radius covers the gap
            # (the wrapped taps reach one row further down)
            for y0 in range(max(0, ya - 1 - kradius), min(ypixels, yb + kradius)):
                gap = ya - 1 - y0 if y0 < ya else (y0 - yb + 1 if y0 >= yb else 0)
                if rowmax[y0] < gap:
                    continue
                for s in range(start[y0], start[y0 + 1]):
                    i = src[s]
                    r = radius[i]
                    rc = min(r, kradius)
                    if rc < gap:
                        continue
                    x0 = i - y0 * xpixels
                    v = np.float64(image[i])
                    wo = rc * (rc + 1) // 2
                    dy_hi = min(rc, yb - 1 - y0)
                    dy_lo = max(-rc, ya - 1 - y0, -y0)  # C skips y < 0
                    for dy in range(dy_hi, dy_lo - 1, -1):
                        y = y0 + dy
                        if y >= ypixels:
                            continue
                        # within C's radius r (dx^2+dy^2 <= r^2) and the kernel's
                        dxm = widths[wo + abs(dy)] if r == rc else min(
                            _half_width(r, dy), rc)
                        krow = size * (half + dy) + half  # the kernel's (0, dy)
                        if y >= ya:
                            xa = max(0, x0 - dxm)
                            xb = min(xpixels - 1, x0 + dxm)
                            # slices from index 0 let LLVM vectorise (no wraparound test)
                            row = out[y * xpixels + xa:y * xpixels + xb + 1]
                            kr = kernel[krow + xa - x0:krow + xb - x0 + 1]
                            for t in range(row.size):
                                kk = kr[t]
                                # adding +0.0 leaves a float32 sum unchanged (never -0.0)
                                row[t] = np.float32(np.float64(row[t])
                                                    + (v * kk if kk != 0.0 else 0.0))
                        if x0 + dxm >= xpixels and y + 1 < ypixels and y + 1 < yb:
                            kk = kernel[krow + xpixels - x0]
                            if kk != 0.0:
                                j = (y + 1) * xpixels
                                out[j] = np.float32(np.float64(out[j]) + v * kk)
    for j in prange(n):
        out[j] = np.float32(np.float64(out[j]) + lost_per_pixel)
    return out


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _scatter_work(radius, used, kradius):
    # sums over the rendering sources of 1, their rows (2r+1) and their squares (2r+1)^2
    count = 0
    rows = 0
    taps = 0
    for i in prange(radius.size):
        if used[i] and radius[i] >= 0:
            w = 2 * min(radius[i], kradius) + 1
            count += 1
            rows += w
            taps += w * w
    return count, rows, taps


# Cost model of the two PSF loops in ns per unit, single thread, measured on an AMD EPYC
# (bench/noisify_bench.py): the gather per pixel and kernel tap, the scatter per source,
# per source row and per tap. Only the speed depends on it: both give C's bytes.
GATHER_NS_PER_TAP = 0.17
SCATTER_NS = (25.0, 6.0, 0.3)


def psf_apply(image, xpixels, ypixels, kernel, kradius, radius, used, uniform,
              lost_per_pixel):
    """The blur of lines 830-919 with C's float32 sums: :func:`psf_gather` or
    :func:`psf_scatter`, whichever the cost model expects to be faster (identical
    results). Arguments as :func:`psf_gather`; returns float32 (ypixels*xpixels,)."""
    count, rows, taps = _scatter_work(radius, used, int(kradius))
    gather = GATHER_NS_PER_TAP * float(xpixels) * ypixels * (2.0 * kradius + 1) ** 2
    scatter = SCATTER_NS[0] * count + SCATTER_NS[1] * rows + SCATTER_NS[2] * taps
    if gather <= scatter:
        return psf_gather(image, xpixels, ypixels, kernel, kradius, radius, used, uniform,
                          lost_per_pixel)
    return psf_scatter(image, xpixels, ypixels, kernel, kradius, radius, used, lost_per_pixel)
