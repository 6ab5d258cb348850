"""``-h``/``-help``/``--help`` and ``--version`` for the companion commands.

nonBragg.c and noisify.c have no help flag: given ``-h`` they print their usage and
exit 9 because no input was named. A new user of ``nonbragg-nb -h`` expects help and
exit 0, as ``nanobragg-nb -h`` gives; these functions print C's usage (banner and
option lines, verbatim) followed by every flag C actually reads (its own usage lists
only some) and what nbnumba adds. Anything else on the command line is ignored, as by
``nanobragg-nb -h``.
"""

from __future__ import annotations

from collections.abc import Callable

from .common import Console, Job, answer_help, run_job

__all__ = ["help_text", "first_contact", "companion_main"]

_EXIT_CODES = ("exit codes: 0 done, 2 usage, 3 input or output file, 4 resources (memory, "
               "disk),\n130 SIGINT, 143 SIGTERM; a failed run leaves none of its files "
               "behind.\n")

_NONBRAGG_MORE = """
all flags nonBragg.c reads (matched as C does: substring, in argv order, later wins):
  tables     -stol F | -4stol F | -Q F (first column stol, 4*stol or 4*pi*stol, 1/A),
             -img in.img (geometry and F per pixel from an SMV image) -stolout out.stol,
             -ignore N (-img pixel value to skip)
  sample     -thick mm -width mm -height mm -samplesize mm -density g/cm3 -MW g/mol
             -molecules N
  beam       -lambda A (-wave) | -energy eV, -dispersion % -dispsteps N, -fluence ph/m2 |
             -flux ph/s -exposure s -beamsize mm, -divergence mrad -divsteps N
             (-hdivrange -vdivrange -hdivstep -vdivstep -hdivsteps -vdivsteps),
             -round_div | -square_div, -sourcefile F (X Y Z weight lambda[m]),
             -source_distance mm, -polar K | -nopolar, -polar_vector x y z,
             -beam_vector x y z
  detector   -distance mm | -close_distance mm, -detsize mm (-detsize_x/_y),
             -detpixels N (-detpixels_f/_s), -pixel mm, -Xbeam -Ybeam mm (fast, slow
             from the first pixel's corner), -Xclose -Yclose mm, -ORGX -ORGY px,
             -pivot beam|sample, -twotheta deg, -detector_rotx/_roty/_rotz deg,
             -fdet_vector -sdet_vector x y z, -curved_det X, -point_pixel,
             -oversample N, -roi xmin xmax ymin ymax
  output     -floatfile -intfile -pgmfile -noisefile F, -scale s -pgmscale s -adc ADU,
             -nonoise, -nopgm, -seed N, -Fmap, -phi -osc deg (header only),
             -printout, -printout_pixel f s, -noprogress
nbnumba: stdout and files are nonBragg.c's, byte for byte; where C is odd it warns on
stderr (details and the few deliberate differences: specs/nonbragg.md).
"""

_NOISIFY_MORE = """
all flags noisify.c reads (matched as C does: substring, in argv order, later wins):
  input      -floatfile F (-floatimage, -bin, or any argument containing
             "floatimage.bin"), -header F.img (size, pixel, beam and header bytes)
  size       -detpixels N (-detpixels_x/_y; else guessed from the file size),
             -pixel mm, -distance mm -lambda A -Xbeam -Ybeam mm -phi -osc deg (header)
  signal     -scale s, -fluence ph/m2, -gain ADU/photon, -adc ADU (default 40)
  noise      -readout ADU, -flicker f, -calibration f (default 0.03!), -seed N,
             -calib_seed N, -nonoise
  PSF        -psf gauss|fiber, -psf_fwhm um (default 46), -psf_radius px (0: automatic)
  output     -intfile -noisefile -pgmfile F, -bits 16|32, -nopgm
nbnumba adds -add F (repeatable): float32 images summed onto the input first, in order,
in float32 (as nb-float-add). stdout and files are noisify.c's, byte for byte with the
same -seed (details and the few deliberate differences: specs/noisify.md).
"""


def help_text(prog: str) -> str:
    """The ``-h`` text of ``nonbragg-nb`` or ``noisify-nb``."""
    if prog == "nonbragg-nb":
        from ..companions.nonbragg_setup import BANNER, USAGE

        more = _NONBRAGG_MORE
    else:
        from ..companions.noisify import BANNER, USAGE

        more = _NOISIFY_MORE
    return BANNER + USAGE + more + _EXIT_CODES


def first_contact(argv: list[str], prog: str) -> int | None:
    """``-h``/``-help``/``--help`` anywhere: the help on stdout, exit 0; ``--version``.
    None: an ordinary run (an empty command line runs too: C's usage, exit 2)."""
    return answer_help(argv, prog, lambda: help_text(prog))


def companion_main(argv: list[str], prog: str, make_run: Callable[[list[str], Console], Job]
                   ) -> int:
    """A companion program's entry: -h/--version answered, else one run through ``run_job``."""
    first = first_contact(argv, prog)
    if first is not None:
        return first
    return run_job(make_run(argv, Console(prog)))
