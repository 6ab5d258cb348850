"""A frame as a detector records it: background photons added, then noisify.c's model.

``series --background FILE --noisify 'FLAGS'`` and :meth:`nbnumba.api.Result.detected`
turn a run's float image (photons/pixel from the crystal) into what a detector reads:

1. ``background`` (float32 photons/pixel, e.g. ``nonbragg-nb`` water + air) is added to
   every pixel in float32, as ``noisify-nb -add`` and ``nb-float-add`` add
   (:func:`nbnumba.companions.floatadd.float_add`);
2. ``noisify`` flags run noisify.c's detector model (``nbnumba.companions.noisify``,
   the code behind ``noisify-nb``) on that sum, with the frame's own seed: the frame
   then holds noisify's counts.

Frame ``i`` of a series with ``--noisify 'FLAGS'`` equals the noise image of ::

    noisify-nb -floatfile frame_i.bin [-add BACKGROUND] FLAGS \\
               -detpixels_x NF -detpixels_y NS -pixel P -seed SEED+i -nopgm

(:func:`noisify_argv` gives that argv); ``specs/series.md`` has the rules.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import InputFileError, UsageError

__all__ = ["NoisifyFlags", "add_background", "check_noisify_flags", "noisify_argv",
           "noisify_frame", "read_background"]

# a noisify.c argv, as given by the user (the frame's geometry and seed are added)
NoisifyFlags = str | Sequence[str] | Mapping[str, object]


def check_noisify_flags(flags: NoisifyFlags) -> tuple[tuple[str, ...], list[str]]:
    """The noisify.c flags of ``--noisify`` as an argv, and noisify's parse warnings.

    Parameters
    ----------
    flags : str, sequence of str or mapping
        One string split as a shell would (``'-readout 3 -psf gauss -psf_fwhm 100'``),
        an argv, or :class:`nbnumba.companions.noisify.Noisify`'s keywords.

    Raises
    ------
    UsageError
        A flag the series sets itself or that makes no sense per frame: an input image
        (``-floatfile``, anything containing ``floatimage.bin``, ``-add``, ``-header``),
        ``-seed`` (frame i uses the series' SEED+i), ``-detpixels``/``-pixel`` (the
        simulated detector's), ``-bits`` other than 16 (the formats' saturation is
        16-bit); or a string a shell cannot split.
    """
    from .companions.noisify import keywords_to_argv, parse_args

    if isinstance(flags, str):
        try:
            argv = shlex.split(flags)
        except ValueError as exc:
            raise UsageError(f"--noisify {flags!r}: {exc}") from None
    elif isinstance(flags, Mapping):
        argv = keywords_to_argv(dict(flags))
    else:
        argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in flags]
    if "-add" in argv:
        raise UsageError("--noisify: leave out -add (give the photons to add as "
                         "--background FILE)")
    o, warnings = parse_args(argv)
    if o.floatfilename is not None or o.headerfilename is not None:
        raise UsageError("--noisify: the input image is each frame (leave out -floatfile, "
                         "-header and names containing 'floatimage.bin')")
    if o.seed is not None:
        raise UsageError("--noisify: leave out -seed (frame i's noise uses the series' "
                         "-seed plus i)")
    # noisify.c matches flags as substrings (strstr), so "-detpixels_x" is "-detpixels"
    if any(a.startswith("-") and ("-pixel" in a or "-detpixels" in a) for a in argv):
        raise UsageError("--noisify: leave out -detpixels and -pixel (the simulated "
                         "detector gives them)")
    if o.intimage_bits != 16:
        raise UsageError("--noisify: -bits must stay 16 (the frames' formats saturate at "
                         "16-bit counts)")
    return tuple(argv), warnings


def noisify_argv(flags: Sequence[str], fast_pixels: int, slow_pixels: int, pixel_m: float,
                 seed: int) -> list[str]:
    """noisify.c's argv for one frame: the user's ``flags``, then the simulated
    detector's size and pixel (mm), the frame's ``seed`` (as typed: noisify negates it)
    and ``-nopgm``; later flags win in noisify's loop, so these cannot be overridden.
    The pixel is written as typed (15 significant digits of the size in mm)."""
    pixel_mm = float(f"{float(pixel_m) * 1e3:.15g}")  # "0.172", not 0.17200000000000001
    return [*flags, "-detpixels_x", str(int(fast_pixels)), "-detpixels_y", str(int(slow_pixels)),
            "-pixel", repr(pixel_mm), "-seed", str(int(seed)), "-nopgm"]


def read_background(path: str | os.PathLike, fast_pixels: int, slow_pixels: int) -> np.ndarray:
    """A raw float32 image (photons/pixel, C's ``-floatfile`` layout) of the detector's size.

    Returns float32 [slow, fast]. Raises :class:`InputFileError` (exit 3) if it cannot be
    read or holds another number of pixels.
    """
    from .companions.floatadd import read_float_image

    flat = read_float_image(path)
    if flat.size != int(fast_pixels) * int(slow_pixels):
        raise InputFileError(path, f"holds {flat.size} floats; the detector has "
                                   f"{fast_pixels} x {slow_pixels} = "
                                   f"{int(fast_pixels) * int(slow_pixels)} pixels")
    return flat.reshape(int(slow_pixels), int(fast_pixels))


def add_background(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``image + background`` in float32 (``noisify-nb -add``'s rule); a new array."""
    from .companions.floatadd import float_add

    background = np.asarray(background)
    if background.shape != image.shape:
        if background.size != image.size:
            raise UsageError(f"background: {background.size} pixels, the image has "
                             f"{image.size} ({image.shape[1]} x {image.shape[0]})")
        background = background.reshape(image.shape)
    return float_add([image, background])


def noisify_frame(image: np.ndarray, flags: Sequence[str], pixel_m: float, seed: int):
    """noisify.c's detector model on ``image`` (float32 photons/pixel [slow, fast]).

    Returns :class:`nbnumba.companions.noisify.NoisifyResult` (``.image``: the counts,
    uint16 with noisify's ADC offset; ``.options.adc_offset``).
    """
    from .companions.noisify import Noisify

    slow, fast = image.shape
    return Noisify.from_args(noisify_argv(flags, fast, slow, pixel_m, seed)).run(image=image)
