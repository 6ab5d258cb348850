"""Output quantisation and statistics: what C does with the float image after the pixel loop.

C's running statistics (max_I and where, mean, rms, rmsd; nanoBragg.c lines
3035-3062 and 3097-3130), the SMV integer pixels (3150-3170), the PGM bytes
(3180-3200) and the Poisson noise image (3230-3288).  These passes are
serial and in C's pixel order where the order matters (sums, the random
stream), so their results do not depend on the number of threads; they are
separate from the kernel modules so that every engine shares them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["Stats", "image_stats", "roi_deviation_sqr", "statistics", "int_scale",
           "pgm_scale", "smv_counts", "pgm_levels", "noise_counts", "max_position"]


@dataclass(frozen=True)
class Stats:
    """C's summary statistics of a float image over its ROI (photons/pixel).

    ``max_I`` and ``max_index`` (row-major, -1 when no pixel exceeds 0) over the
    unmasked pixels; ``mean`` and ``rms`` over the unmasked pixels with C's
    guards against empty sums; ``rmsd`` over the whole ROI, masked pixels
    included, as C computes it.
    """

    max_I: float
    max_index: int
    mean: float
    rms: float
    rmsd: float

    def max_slow_fast(self, fpixels: int) -> tuple[int, int] | None:
        """(slow, fast) of the brightest pixel, or None."""
        return divmod(self.max_index, fpixels) if self.max_index >= 0 else None


@njit(cache=True)
def image_stats(image, mask, row_lo, row_hi, col_lo, col_hi):
    """C's running statistics in serial pixel order (nanoBragg.c lines 3035-3045).

    Returns ``(sum, sumsqr, n, max_I, max_index)`` over the rendered,
    unmasked pixels; ``max_index`` is -1 when no pixel exceeds 0.
    """
    fpixels = image.shape[1]
    use_mask = mask.size > 0
    total = 0.0
    total_sqr = 0.0
    n = 0
    max_value = 0.0
    max_index = -1
    for spixel in range(row_lo, row_hi):
        for fpixel in range(col_lo, col_hi):
            index = spixel * fpixels + fpixel
            if use_mask and mask[index] == 0:
                continue
            pixel = image[spixel, fpixel]
            v = np.float64(pixel)
            if v > max_value:
                max_value = v
                max_index = index
            total += v
            # C (line 3048) squares the float pixel in float, then adds it to a double
            total_sqr += np.float64(pixel * pixel)
            n += 1
    return total, total_sqr, n, max_value, max_index


@njit(cache=True)
def roi_deviation_sqr(image, avg, row_lo, row_hi, col_lo, col_hi):
    """Sum of squared deviations from ``avg`` over the ROI, masked pixels included (C 3062)."""
    total = 0.0
    n = 0
    for spixel in range(row_lo, row_hi):
        for fpixel in range(col_lo, col_hi):
            d = np.float64(image[spixel, fpixel]) - avg
            total += d * d
            n += 1
    return total, n




@njit(cache=True, error_model="numpy")
def smv_counts(image, scale, offset, row_lo, row_hi, col_lo, col_hi, out):
    """C's SMV int pixels over the ROI: floorf(clip(v·scale + offset, 0, 65535) + 0.5).

    ``out`` (uint16, image shape) is written inside the ROI only; NaN gives 0.
    """
    for s in range(row_lo, row_hi):
        for f in range(col_lo, col_hi):
            test = np.float64(image[s, f]) * scale + offset
            test = 65535.0 if test > 65535.0 else test
            test = 0.0 if test < 0.0 else test
            # C: floorf(test+0.5), the double rounded to float first
            counts = np.floor(np.float32(test + 0.5))
            out[s, f] = np.uint16(counts) if counts == counts else np.uint16(0)


@njit(cache=True, error_model="numpy")
def pgm_levels(image, scale, row_lo, row_hi, col_lo, col_hi, out):
    """C's PGM bytes over the ROI: min(v·scale, 255) truncated, negatives and NaN as 0."""
    for s in range(row_lo, row_hi):
        for f in range(col_lo, col_hi):
            test = np.float64(image[s, f]) * scale
            test = 255.0 if test > 255.0 else test
            out[s, f] = np.uint8(test) if test > 0.0 else np.uint8(0)


@njit(cache=True, error_model="numpy")
def noise_counts(photons, offset, row_lo, row_hi, col_lo, col_hi, out):
    """C's noise image over the ROI from ``photons`` (ROI pixels in C's order, float32).

    Writes ``min(photons + offset, 65535)`` truncated to uint16 into ``out``
    (negative values wrap modulo 2**16, as NumPy's cast does on x86; NaN gives
    0) and returns C's running double sum of the photons and the overloads.
    """
    total = 0.0
    overloads = 0
    i = 0
    for s in range(row_lo, row_hi):
        for f in range(col_lo, col_hi):
            photon = np.float64(photons[i])
            i += 1
            total += photon
            test = photon + offset
            if test > 65535.0:
                overloads += 1
                test = 65535.0
            out[s, f] = np.uint16(np.int64(test) & 0xFFFF) if test == test else np.uint16(0)
    return total, overloads


def statistics(image: np.ndarray, mask: np.ndarray, rows: tuple[int, int],
               cols: tuple[int, int]) -> Stats:
    """C's statistics of ``image`` (float32 [slow, fast]) over the ROI ``rows`` × ``cols``.

    ``mask``: flat uint16 (0 = skipped) or empty.  Follows nanoBragg.c lines
    3035-3045 (running sums in pixel order) and 3097-3130 (mean, rms, rmsd).
    """
    total, total_sqr, sumn, max_I, max_index = image_stats(image, mask, rows[0], rows[1],
                                                           cols[0], cols[1])
    if sumn <= 0:
        sumn = 1
    avg = total / sumn
    if sumn <= 1:
        sumn = 2
    rms = math.sqrt(total_sqr / (sumn - 1))
    dev_sqr, n_roi = roi_deviation_sqr(image, avg, rows[0], rows[1], cols[0], cols[1])
    if n_roi <= 1:
        n_roi = 2
    rmsd = math.sqrt(dev_sqr / (n_roi - 1))
    return Stats(max_I=float(max_I), max_index=int(max_index), mean=float(avg), rms=rms,
                 rmsd=rmsd)


def int_scale(requested: float, max_I: float) -> float:
    """C's ``intfile_scale``: the one given, else 55000 counts at the brightest pixel (3140).

    C tests ``intfile_scale <= 0.0``, so a NaN scale is kept (an int image of 0s)."""
    if not requested <= 0.0:
        return requested
    return 55000.0 / max_I if max_I > 0.0 else 1.0


def pgm_scale(requested: float, intfile_scale: float, rmsd: float) -> float:
    """C's ``pgm_scale``: the one given, else 250 grey levels at 5 rmsd (3178); NaN is kept,
    as C tests ``pgm_scale <= 0.0``."""
    if not requested <= 0.0:
        return requested
    return 250.0 / (5.0 * rmsd) if rmsd > 0.0 else intfile_scale


def max_position(max_index: int, fpixels: int, oversample: int,
                 subpixel_size: float) -> tuple[float, float]:
    """C's ``max_I_x, max_I_y`` (m): the last sub-pixel's centre of the brightest pixel."""
    if max_index < 0:
        return 0.0, 0.0
    s, f = divmod(int(max_index), fpixels)
    last = oversample - 1
    return (subpixel_size * (f * oversample + last) + subpixel_size / 2.0,
            subpixel_size * (s * oversample + last) + subpixel_size / 2.0)
