"""``nanobragg-nb -h``: every flag with its units and default, grouped as in the README.

Our own words; the meaning of each flag is nanoBragg.c's (``specs/cli.md``).
Also the "did you mean" hint for a flag that matches nothing.
"""

from __future__ import annotations

import difflib
import textwrap

# (group, [(flag and values, what it does, default)])
FLAGS: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("crystal", [
        ("-cell a b c al be ga", "unit cell edges (A) and angles (deg)",
         "none: give -cell or -mat"),
        ("-mat A.mat", "mosflm orientation matrix (reciprocal vectors x wavelength)", "none"),
        ("-misset x y z | random", "crystal rotations about x, y, z (deg), or random", "0 0 0"),
        ("-N n", "unit cells along each axis (also -Na -Nb -Nc)", "1"),
        ("-xtalsize mm", "crystal size instead of -N (also -xtal_x/_y/_z, -sample_*)", "from -N"),
        ("-square_xtal", "parallelepiped crystal (lattice factor sin(Nx)/sin(x))", "on"),
        ("-round_xtal | -gauss_xtal | -tophat_spots", "other crystal shapes", "off"),
        ("-fudge f", "scale of the round/gauss/tophat spot size", "1"),
    ]),
    ("structure factors", [
        ("-hkl F.hkl", "h k l F records (P1)", "none: Fdump.bin or -default_F"),
        ("-default_F F", "F of every reflection not in the file", "0"),
        ("-interpolate | -nointerpolate", "tricubic interpolation of F between reflections",
         "on for crystals < 3 cells wide"),
        ("-dmin A", "skip scattering beyond this resolution", "0 (no cut)"),
        ("-dump file", "cache of the F table, read when no -hkl is given", "Fdump.bin"),
        ("-stol | -4stol | -Q file", "amorphous F table (read; not used by the image)", "none"),
    ]),
    ("beam", [
        ("-lambda A", "wavelength (also -wave)", "1 A"),
        ("-energy eV", "photon energy instead of -lambda", "12398.42 eV"),
        ("-dispersion %", "spectral width d(lambda)/lambda", "0"),
        ("-dispsteps n", "wavelengths across the width", "auto"),
        ("-divergence mrad", "beam divergence (also -hdivrange -vdivrange)", "0"),
        ("-hdivstep -vdivstep mrad", "divergence step", "auto"),
        ("-divsteps n", "divergence steps (also -hdivsteps -vdivsteps)", "auto"),
        ("-round_div | -square_div", "round off the divergence grid's corners, or not",
         "round"),
        ("-sourcefile file", "X Y Z weight lambda(m) per line, one source each", "none"),
        ("-fluence ph/m^2", "incident photons per area", "1.25932e+29"),
        ("-flux ph/s -exposure s -beamsize mm", "fluence = flux x exposure / beamsize^2",
         "0, 1 s, 0.1 mm"),
        ("-polar k", "Kahn polarization factor", "0 (unpolarized)"),
        ("-nopolar", "no polarization correction", "off"),
        ("-water um", "water droplet around the crystal (background)", "0"),
    ]),
    ("detector", [
        ("-distance mm", "sample to detector (beam pivot)", "100 mm"),
        ("-close_distance mm", "sample to the detector plane (sample pivot)", "from -distance"),
        ("-pixel mm", "pixel size", "0.1 mm"),
        ("-detpixels n", "pixels along each axis (also -detpixels_x/_y/_f/_s)", "1024"),
        ("-detsize mm", "detector size (also -detsize_f/_s)", "102.4 mm"),
        ("-Xbeam -Ybeam mm", "direct beam position on the detector", "centre"),
        ("-Xclose -Yclose mm", "point nearest the sample (sample pivot)", "from the beam"),
        ("-ORGX -ORGY pixels", "XDS beam centre", "from the beam"),
        ("-mosflm | -xds | -adxv | -denzo | -dials", "detector axis convention", "mosflm"),
        ("-fdet_vector -sdet_vector -odet_vector x y z", "detector axes (CUSTOM convention)",
         "convention's"),
        ("-beam_vector -polar_vector -spindle_axis -twotheta_axis x y z",
         "beam, E-vector, phi and two-theta axes (CUSTOM)", "convention's"),
        ("-pivot beam | sample", "what stays fixed when the detector rotates", "convention's"),
        ("-detector_rotx/_roty/_rotz deg", "detector rotations", "0"),
        ("-twotheta deg", "detector swing about the two-theta axis", "0"),
        ("-curved_det | -point_pixel", "sphere-shaped detector / no pixel solid angle", "off"),
        ("-detector_abs um", "sensor attenuation depth", "inf (off)"),
        ("-detector_thick um -thicksteps n", "sensor thickness and its layers", "0, 1"),
        ("-roi xmin xmax ymin ymax", "render only these pixels (inclusive)", "whole detector"),
        ("-mask mask.img", "SMV file: pixels that are 0 are skipped", "none"),
        ("-img header.img", "take the geometry from an SMV header", "none"),
    ]),
    ("sampling", [
        ("-phi deg -osc deg", "start and range of the rotation", "0, auto"),
        ("-phistep deg -phisteps n", "rotation step / number of steps", "auto"),
        ("-mosaic deg", "isotropic mosaic spread", "0"),
        ("-mosaic_dom n", "mosaic domains", "10 when -mosaic > 0"),
        ("-oversample n", "sub-pixels per pixel edge", "auto from crystal size"),
        ("-oversample_thick | _polar | _omega", "recompute that factor per sub-pixel", "off"),
    ]),
    ("output", [
        ("-floatfile file", "float32 image, photons per pixel", "floatimage.bin"),
        ("-intfile file", "SMV image, scaled to -scale", "intimage.img"),
        ("-noisefile file", "SMV image with Poisson noise", "noiseimage.img"),
        ("-pgmfile file", "8-bit PGM picture", "image.pgm"),
        ("-scale s", "int image scale", "55000 / max pixel"),
        ("-adc counts", "offset added to the int and noise images", "40"),
        ("-pgmscale s", "PGM scale", "auto"),
        ("-nonoise | -nopgm", "skip the noise image / the PGM", "off"),
        ("-noprogress | -progress", "progress bar (a terminal only)", "on"),
        ("-seed n", "noise seed", "time of day"),
        ("-mosaic_seed n -misset_seed n", "mosaic and random-misset seeds", "1234567, -seed"),
        ("-printout | -printout_pixel f s", "print pixel values (not implemented: see "
         "-trace_pixel)", "off"),
    ]),
    ("ours", [
        ("-c_parity", "serial nanoBragg.c exactly (its stale phi=0 rotation, its readers)", "off"),
        ("-device auto | cpu | cuda", "where the pixels are computed", "auto"),
        ("-engine auto | exact | vectorised | cuda", "which engine computes the pixels "
         "(exact: serial C's order)", "auto"),
        ("-precision double | single", "GPU arithmetic", "double"),
        ("-trace_pixel s f", "print every quantity of one pixel's loop", "off"),
        ("-quiet", "errors only", "off"),
        ("-cbffile file", "also a miniCBF image (PILATUS header) of the counts", "none"),
        ("-geometry_out file", "also the geometry for processing programs (XDS.INP, PONI)",
         "none"),
        ("-expt_out file", "also a DIALS experiment list (.expt) with the true models",
         "none"),
        ("-h, -help, --help / --version", "this listing / the version", ""),
    ]),
]


def package_version() -> str:
    """nbnumba's version as installed (importlib.metadata), or "unknown"."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nbnumba")
    except PackageNotFoundError:
        return "unknown"


def usage_line(prog: str) -> str:
    return (f"usage: {prog} -cell a b c al be ga | -mat A.mat  -hkl F.hkl | -default_F F  "
            "[flags]  (see -h)")


def usage_text(prog: str) -> str:
    """The full listing: every flag, its units and default, by group."""
    lines = [usage_line(prog), "",
             "nanoBragg.c's command line, computed with Numba kernels (nbnumba "
             f"{package_version()}). Flags take", "nanoBragg.c's meaning, substring matching "
             "included; units as given below.", ""]
    width, column = 96, 30
    for group, flags in FLAGS:
        lines.append(f"{group}:")
        for flag, what, default in flags:
            text = what + (f" [default: {default}]" if default else "")
            body = textwrap.wrap(text, width - column - 3)
            if len(flag) > column:
                lines.append(f"  {flag}")
                lines += [" " * (column + 3) + part for part in body]
            else:
                lines.append(f"  {flag:<{column}} {body[0]}")
                lines += [" " * (column + 3) + part for part in body[1:]]
        lines.append("")
    lines.append("example: nanobragg-nb -cell 100 100 100 90 90 90 -default_F 100 -N 5 "
                 "-lambda 1")
    lines.append("             -detpixels 256 -floatfile float.bin")
    return "\n".join(lines) + "\n"


def flag_names() -> list[str]:
    """Every flag name nanoBragg.c and we accept (for "did you mean")."""
    names: set[str] = set()
    for _, flags in FLAGS:
        for flag, _, _ in flags:
            for word in flag.replace("|", " ").replace(",", " ").split():
                if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
                    names.add(word)
    names.update(["-Na", "-Nb", "-Nc", "-wave", "-hdivrange", "-vdivrange", "-hdivsteps",
                  "-vdivsteps", "-detpixels_x", "-detpixels_y", "-detsize_f", "-detsize_s",
                  "-xtal_x", "-xtal_y", "-xtal_z", "-detector_rotx", "-detector_roty",
                  "-detector_rotz", "-oversample_thick", "-oversample_polar",
                  "-oversample_omega", "-pix0_vector", "-stol", "-4stol", "-Q", "-stolout",
                  "-thicksteps", "-detector_thicksteps", "-detector_thick"])
    return sorted(names)


def did_you_mean(arg: str) -> str | None:
    """The closest flag name to a mistyped ``arg`` (``-distnace`` → ``-distance``)."""
    close = difflib.get_close_matches(arg, flag_names(), n=1, cutoff=0.75)
    return close[0] if close else None
