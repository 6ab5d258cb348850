"""CPU kernel: the per-pixel loop over the detector, parallel over rows."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .physics import pixel_intensity, pixel_skipped


@njit(parallel=True, nogil=True, cache=True)
def render_exact(P, det, sources, cells, a_star, fhkl, mask, interpolate, row_lo, row_hi,
               col_lo, col_hi, start_index, image, omega_rows, fell_back):
    """Fill ``image`` (float32, [slow, fast]) for the rectangle of pixels given.

    Only pixels whose row-major index is ``>= start_index`` are computed, so
    the host can recompute the tail of the image after C's global switch-off
    of interpolation.  ``mask`` is empty or holds 0 where C skips a pixel.
    ``omega_rows[s]`` receives the row's solid-angle sum and ``fell_back[s]``
    the first column (or -1) where interpolation left the table.
    """
    fpixels = image.shape[1]
    use_mask = mask.size > 0
    for spixel in prange(row_lo, row_hi):
        omega_row = 0.0
        first_fell = -1
        for fpixel in range(col_lo, col_hi):
            if pixel_skipped(spixel * fpixels + fpixel, start_index, use_mask, mask):
                continue
            value, omega, fell, _, _, _, _ = pixel_intensity(
                spixel, fpixel, P, det, sources, cells, a_star, fhkl, interpolate, False)
            image[spixel, fpixel] = np.float32(value)
            omega_row += omega
            if fell and first_fell < 0:
                first_fell = fpixel
        omega_rows[spixel] = omega_row
        fell_back[spixel] = first_fell


@njit(cache=True)
def render_one(P, det, sources, cells, a_star, fhkl, interpolate, spixel, fpixel, first_pass):
    """One pixel, serially: used for C's first pass (``-c_parity``) and for tracing."""
    return pixel_intensity(spixel, fpixel, P, det, sources, cells, a_star, fhkl, interpolate,
                           first_pass)
