"""nanoBragg.c's argument handling (nbnumba.cargs) against C's semantics and output."""

from __future__ import annotations

import json
import math
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import nbnumba
from nbnumba.cargs import ParseError, parse_args
from nbnumba.config import BEAM, CUSTOM, MOSFLM, SAMPLE, XDS, Options, unit_of
from nbnumba.constants import RTD
from nbnumba.io import c_atof as _c_atof
from nbnumba.io import c_atoi as _c_atoi

CELL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100"]


def parse(*args: str) -> tuple[Options, list[str]]:
    return parse_args(list(args))


def opts(*args: str) -> Options:
    return parse_args(list(args))[0]


def warned(warnings: list[str], *parts: str) -> bool:
    return any(all(p in w for p in parts) for w in warnings)


# ------------------------------------------------------------------ defaults

def test_defaults_are_c_initial_values():
    o = Options()
    assert (o.Na, o.Nb, o.Nc) == (1.0, 1.0, 1.0)
    assert o.distance == 0.1 and o.pixel_size == 1e-4 and o.lambda0 == 1e-10
    assert o.detsize_f == o.detsize_s == 102.4e-3
    assert o.fpixels == o.spixels == 0
    assert o.detector_pivot == BEAM and o.beam_convention == MOSFLM
    assert o.beam_vector == (1.0, 0.0, 0.0)
    assert o.fdet_vector == (0.0, 0.0, 1.0)
    assert o.sdet_vector == (0.0, -1.0, 0.0)
    assert o.odet_vector == (1.0, 0.0, 0.0)
    assert o.twotheta_axis == (0.0, 1.0, 0.0)  # C: {0,0,1,0}
    assert o.polar_vector == o.spindle_vector == (0.0, 0.0, 1.0)
    assert math.isnan(o.Xbeam) and math.isnan(o.close_distance) and math.isnan(o.ORGX)
    assert o.mosaic_seed == -12345678
    assert o.misset_seed == o.seed < 0
    assert o.interpolate == 2 and o.oversample == -1 and o.phisteps == -1
    assert o.dumpfilename == "Fdump.bin" and o.floatfilename == "floatimage.bin"
    assert o.intfilename == "intimage.img" and o.pgmfilename == "image.pgm"
    assert o.noisefilename == "noiseimage.img" and o.stoloutfilename == "output.stol"
    assert o.fluence == 125932015286227086360700780544.0
    assert o.mask_image is None and o.pix0_vector_given is False
    assert unit_of("distance") == "m" and unit_of("phi0") == "rad"


def test_no_arguments_no_warnings():
    o, w = parse()
    assert w == []
    assert o.misset_seed == o.seed


# --------------------------------------------------------------- C numbers

@pytest.mark.parametrize("text,value", [
    ("1.5", 1.5), ("  2e3", 2000.0), ("-0.25x", -0.25), ("abc", 0.0), ("", 0.0),
    (".5", 0.5), ("5.", 5.0), ("1e", 1.0), ("+7", 7.0), ("0x10", 16.0), ("0x1p3", 8.0),
    ("1e999", math.inf), ("-inf", -math.inf), ("Infinity", math.inf), ("1_000", 1.0),
])
def test_c_atof(text, value):
    assert _c_atof(text) == value


def test_c_atof_nan():
    assert math.isnan(_c_atof("nan(abc)"))


@pytest.mark.parametrize("text,value", [
    ("12", 12), ("  -7", -7), ("2.9", 2), ("1e3", 1), ("x", 0), ("+4", 4),
    ("4294967297", 1), ("99999999999999999999", -1),  # (int) of saturated strtol
])
def test_c_atoi(text, value):
    assert _c_atoi(text) == value


# ------------------------------------------------------- substring quirks

def test_mosaic_seed_does_not_match_seed():
    # strstr("-mosaic_seed", "-seed") is false: the character before "seed" is '_'
    o, w = parse("-seed", "7", "-mosaic_seed", "42")
    assert o.seed == -7 and o.mosaic_seed == -42
    assert not warned(w, "also matched")


def test_misset_seed_with_three_following_args_also_sets_misset():
    o, w = parse(*CELL, "-misset_seed", "777", "10", "20", "-N", "5")
    assert o.misset_seed == -777
    assert o.misset_flag == 1
    assert o.misset_angles == pytest.approx((777 / RTD, 10 / RTD, 20 / RTD))
    assert warned(w, "-misset_seed also matched -misset")


def test_misset_seed_last_on_the_line_sets_only_the_seed():
    o, w = parse(*CELL, "-misset", "random", "-misset_seed", "777")
    assert o.misset_flag == -1 and o.misset_seed == -777
    assert w == []


def test_misset_seed_overrides_misset_random_when_args_follow():
    o, w = parse(*CELL, "-misset", "random", "-misset_seed", "777", "-N", "5")
    assert o.misset_flag == 1  # atof("-N") = 0, atof("5") = 5 deg
    assert o.misset_angles == pytest.approx((777 / RTD, 0.0, 5 / RTD))
    assert o.Na == 5.0
    assert warned(w, "-misset_seed also matched -misset")


def test_misset_angles_and_random():
    o = opts("-misset", "15.0", "20.5", "30.25")
    assert o.misset_flag == 1
    assert o.misset_angles == (15.0 / RTD, 20.5 / RTD, 30.25 / RTD)
    assert opts("-misset", "rand").misset_flag == -1
    o, w = parse("-misset", "10", "20")
    assert o.misset_flag == 0 and warned(w, "-misset needs 3 arguments", "ignores it")


def test_pix0_vector_mm_is_pix0_vector_unconverted():
    o, w = parse("-pix0_vector_mm", "-216.3", "215.2", "-230.2")
    assert o.pix0_vector_given and o.pix0_vector == (-216.3, 215.2, -230.2)
    assert o.beam_convention == CUSTOM
    assert warned(w, "-pix0_vector_mm values are ignored")
    assert warned(w, "not converted from mm")


def test_pix0_vector_warning():
    o, w = parse("-pix0_vector", "0.1", "0.02", "-0.03")
    assert o.pix0_vector == (0.1, 0.02, -0.03) and o.beam_convention == CUSTOM
    assert warned(w, "-pix0_vector values are ignored")
    assert not warned(w, "mm")


def test_close_distance_does_not_match_distance():
    o, w = parse("-close_distance", "90")
    assert o.close_distance == pytest.approx(0.09) and o.distance == 0.1
    assert o.detector_pivot == SAMPLE
    assert not warned(w, "also matched")


def test_distance_ignored_when_close_distance_given():
    o, w = parse("-distance", "100", "-close_distance", "90")
    assert o.distance == pytest.approx(0.1) and o.close_distance == pytest.approx(0.09)
    assert warned(w, "-distance has no effect", "-close_distance")


def test_twotheta_axis_also_sets_twotheta_and_pivot():
    o, w = parse("-twotheta_axis", "1", "0", "0")
    assert o.twotheta_axis == (1.0, 0.0, 0.0) and o.beam_convention == CUSTOM
    assert o.detector_twotheta == pytest.approx(1 / RTD)
    assert o.detector_pivot == SAMPLE
    assert warned(w, "-twotheta_axis also matched -twotheta")


def test_detpixels_guard():
    o = opts("-detpixels", "64")
    assert (o.fpixels, o.spixels) == (64, 64)
    o = opts("-detpixels_x", "100", "-detpixels_y", "50")
    assert (o.fpixels, o.spixels) == (100, 50)
    o = opts("-detpixels_f", "10", "-detpixels_s", "20")
    assert (o.fpixels, o.spixels) == (10, 20)


def test_detsize_guard():
    o = opts("-detsize", "12.8")
    assert o.detsize_f == o.detsize_s == pytest.approx(0.0128)
    o = opts("-detsize_f", "10", "-detsize_s", "20")
    assert (o.detsize_f, o.detsize_s) == pytest.approx((0.01, 0.02))


def test_polar_vector_and_nopolar():
    o, w = parse("-polar", "0.95")
    assert o.polarization == 0.95 and o.nopolar == 0 and w == []
    o = opts("-polar_vector", "0", "1", "0")
    assert o.polar_vector == (0.0, 1.0, 0.0) and o.polarization == 0.0
    assert o.beam_convention == CUSTOM
    o = opts("-nopolar")
    assert o.nopolar == 1 and o.polarization == 0.0


def test_polar_after_nopolar_turns_it_back_on():
    o, w = parse("-nopolar", "-polar", "0.5")
    assert o.nopolar == 0
    assert warned(w, "polarization correction is back on", "-polar", "-nopolar")
    o, w = parse("-polar", "0.5", "-nopolar")
    assert o.nopolar == 1 and w == []


def test_phi_phistep_phisteps_guards():
    o = opts("-phi", "10", "-phistep", "0.5", "-phisteps", "4", "-osc", "20")
    assert o.phi0 == pytest.approx(10 / RTD)
    assert o.phistep == pytest.approx(0.5 / RTD)
    assert o.phisteps == 4
    assert o.osc == pytest.approx(20 / RTD)
    o = opts("-phisteps", "7")
    assert o.phi0 == 0.0 and o.phistep == -1.0 and o.phisteps == 7
    o = opts("-phistep", "2")
    assert o.phi0 == 0.0 and o.phisteps == -1


def test_phi0_matches_nothing():
    o, w = parse("-phi0", "5")
    assert o.phi0 == 0.0
    assert warned(w, "-phi0 matches no nanoBragg.c option")


def test_detector_thick_guard_and_thicksteps():
    o = opts("-detector_thick", "450", "-detector_thicksteps", "5")
    assert o.detector_thick == pytest.approx(450e-6) and o.detector_thicksteps == 5
    o = opts("-thicksteps", "3")
    assert o.detector_thick == 0.0 and o.detector_thicksteps == 3
    o, w = parse("-detector_thickness", "450")
    assert o.detector_thick == 0.0 and warned(w, "matches no nanoBragg.c option")


def test_detector_abs():
    o = opts("-detector_abs", "500")
    assert o.detector_mu == pytest.approx(2000.0)
    o = opts("-detector_absorb", "inf")
    assert o.detector_mu == 0.0 and o.detector_thick == 0.0
    o, w = parse("-detector_thick", "100", "-detector_abs", "inf")
    assert o.detector_thick == 0.0 and warned(w, "resets detector_thick to 0")
    o, w = parse("-detector_abs", "inf", "-detector_thick", "100")
    assert o.detector_thick == pytest.approx(1e-4) and w == []


def test_ge_guard_flag_last_would_crash_c():
    o, w = parse("-detector_thick")
    assert o.detector_thick == 0.0
    assert warned(w, "-detector_thick is the last argument", "crash")


def test_hdivstep_vs_hdivsteps():
    o = opts("-hdivstep", "0.5", "-vdivstep", "0.25")
    assert o.hdivstep == pytest.approx(0.5e-3) and o.vdivstep == pytest.approx(0.25e-3)
    assert o.hdivsteps == -1 and o.vdivsteps == -1
    o = opts("-hdivsteps", "5", "-vdivsteps", "3")
    assert (o.hdivsteps, o.vdivsteps) == (5, 3) and o.hdivstep == -1.0
    o = opts("-divsteps", "4", "-divergence", "2")
    assert (o.hdivsteps, o.vdivsteps) == (4, 4)
    assert o.hdivrange == o.vdivrange == pytest.approx(2e-3)


@pytest.mark.parametrize("flag,mult", [
    ("-stol", 1e10), ("-4stol", 1e10 / 4), ("-Q", 1e10 / math.pi / 4),
])
def test_stol_variants(flag, mult):
    o = opts(flag, "f.stol")
    assert o.stolfilename == "f.stol" and o.stol_file_mult == mult
    assert o.stoloutfilename == "output.stol"


def test_stolout_is_only_the_output():
    o = opts("-stolout", "out.stol")
    assert o.stoloutfilename == "out.stol" and o.stolfilename is None
    assert o.stol_file_mult == 1e10


def test_oversample_variants_continue():
    o = opts("-oversample_omega", "-oversample_polar", "-oversample_thick", "-oversample", "3")
    assert (o.oversample_omega, o.oversample_polar, o.oversample_thick) == (1, 1, 1)
    assert o.oversample == 3
    o = opts("-oversample", "2")
    assert o.oversample == 2 and o.oversample_omega == 0


def test_n_flags_and_exact_N():
    o = opts("-N", "5")
    assert (o.Na, o.Nb, o.Nc) == (5.0, 5.0, 5.0)
    o = opts("-Na", "36", "-Nb", "47", "-Nc", "29")
    assert (o.Na, o.Nb, o.Nc) == (36.0, 47.0, 29.0)
    o, w = parse("-N", "2.5")
    assert o.Na == 2.0 and warned(w, "atoi() reads '2.5' as 2")
    o, w = parse("-Nx", "3")
    assert o.Na == 1.0 and warned(w, "-Nx matches no nanoBragg.c option")


def test_cell_stops_at_dash():
    o, w = parse("-cell", "70", "80", "90", "75", "85", "95")
    assert (o.cell_a, o.cell_b, o.cell_c) == (70.0, 80.0, 90.0)
    assert (o.alpha, o.beta, o.gamma) == (75 / RTD, 85 / RTD, 95 / RTD)
    assert o.user_cell == 1 and w == []
    o, w = parse("-cell", "70", "80", "-N", "3")
    assert (o.cell_a, o.cell_b, o.cell_c, o.alpha) == (70.0, 80.0, 0.0, 0.0)
    assert o.user_cell == 1 and o.Na == 3.0
    assert warned(w, "-cell read only 2 of 6 values")


def test_sample_size_aliases():
    o, w = parse("-width", "0.002")
    assert o.sample_y == pytest.approx(2e-6) and w == []  # two ifs, same effect
    o = opts("-xtalsize", "0.0012")
    assert (o.sample_x, o.sample_y, o.sample_z) == pytest.approx((1.2e-6,) * 3)
    o = opts("-sample_thick", "1", "-sample_height", "2", "-xtal_width", "3")
    assert (o.sample_x, o.sample_y, o.sample_z) == pytest.approx((1e-3, 3e-3, 2e-3))


def test_printout_pixel_sets_printout_silently():
    o, w = parse("-printout_pixel", "10", "20")
    assert o.printout == 1 and (o.printout_fpixel, o.printout_spixel) == (10, 20)
    assert w == []


# --------------------------------------------------------- pivot/convention

@pytest.mark.parametrize("flag,pivot", [
    ("-Xbeam", BEAM), ("-Ybeam", BEAM), ("-distance", BEAM),
    ("-Xclose", SAMPLE), ("-Yclose", SAMPLE), ("-ORGX", SAMPLE), ("-ORGY", SAMPLE),
    ("-close_distance", SAMPLE), ("-twotheta", SAMPLE),
])
def test_flags_setting_the_pivot(flag, pivot):
    # CUSTOM first so that no convention forces the pivot afterwards
    o, w = parse("-fdet_vector", "0", "0", "1", flag, "10")
    assert o.detector_pivot == pivot
    assert not warned(w, "detector pivot")


@pytest.mark.parametrize("flag,conv,pivot", [
    ("-mosflm", MOSFLM, BEAM), ("-xds", XDS, SAMPLE), ("-adxv", "ADXV", BEAM),
    ("-denzo", "DENZO", BEAM), ("-dials", "DIALS", BEAM),  # C's -dials sets BEAM
])
def test_convention_flags(flag, conv, pivot):
    o, w = parse(flag)
    assert o.beam_convention == conv and o.detector_pivot == pivot
    assert w == []


@pytest.mark.parametrize("flag", ["-fdet_vector", "-sdet_vector", "-odet_vector",
                                  "-beam_vector", "-polar_vector", "-spindle_axis",
                                  "-twotheta_axis", "-pix0_vector"])
def test_vector_flags_select_custom(flag):
    o = opts(flag, "0.5", "-0.25", "1")
    assert o.beam_convention == CUSTOM
    name = {"-spindle_axis": "spindle_vector"}.get(flag, flag[1:])
    assert getattr(o, name) == (0.5, -0.25, 1.0)


def test_later_flag_changes_pivot_custom():
    o, w = parse("-fdet_vector", "0", "0", "1", "-distance", "100", "-twotheta", "5")
    assert o.detector_pivot == SAMPLE
    assert warned(w, "detector pivot is SAMPLE because -twotheta comes after -distance")
    o, w = parse("-fdet_vector", "0", "0", "1", "-twotheta", "5", "-distance", "100")
    assert o.detector_pivot == BEAM
    assert warned(w, "detector pivot is BEAM because -distance comes after -twotheta")


def test_explicit_pivot_is_not_a_surprise():
    o, w = parse("-fdet_vector", "0", "0", "1", "-twotheta", "5", "-pivot", "beam")
    assert o.detector_pivot == BEAM and not warned(w, "pivot")
    o, w = parse("-fdet_vector", "0", "0", "1", "-pivot", "sample")
    assert o.detector_pivot == SAMPLE and w == []
    o, w = parse("-pivot", "middle")
    assert o.detector_pivot == BEAM and warned(w, "'sample' or 'beam'")


def test_mosflm_forces_beam_pivot_warning():
    o, w = parse("-twotheta", "5")
    assert o.detector_pivot == SAMPLE  # C's variable after the loop
    assert warned(w, "detector pivot is BEAM, not SAMPLE", "-twotheta", "MOSFLM")
    o, w = parse("-mosflm", "-pivot", "beam", "-twotheta", "10", "-distance", "100")
    assert not warned(w, "pivot")


def test_xds_beam_side_effects_are_not_warned():
    o, w = parse("-xds", "-ORGX", "100", "-distance", "100")
    assert o.beam_convention == XDS and o.detector_pivot == BEAM
    assert w == []
    o, w = parse("-xds", "-pivot", "beam")
    assert warned(w, "detector pivot is SAMPLE, not BEAM", "-pivot")


def test_later_convention_wins():
    o, w = parse("-xds", "-mosflm")
    assert o.beam_convention == MOSFLM and o.detector_pivot == BEAM and w == []
    o, w = parse("-xds", "-fdet_vector", "1", "0", "0")
    assert o.beam_convention == CUSTOM and o.detector_pivot == SAMPLE
    assert warned(w, "beam convention is CUSTOM because -fdet_vector comes after -xds")
    o, w = parse("-fdet_vector", "1", "0", "0", "-adxv")
    assert o.beam_convention == "ADXV"
    assert warned(w, "values of -fdet_vector are replaced by the ADXV convention")


def test_pgm_and_noise_overrides():
    o, w = parse("-nopgm", "-pgmscale", "2")
    assert o.write_pgm == 1 and warned(w, "PGM output is back on", "-pgmscale", "-nopgm")
    o, w = parse("-pgmfile", "a.pgm", "-nopgm")
    assert o.write_pgm == 0 and w == []
    o, w = parse("-nonoise", "-noisefile", "n.img")
    assert o.calculate_noise == 1 and warned(w, "noise image is back on")


# -------------------------------------------------------- unit conversions

def test_unit_conversions():
    o = opts("-distance", "231.27", "-pixel", "0.172", "-Xbeam", "217.7", "-Ybeam", "213.9",
             "-lambda", "0.9768", "-mosaic", "1.0", "-dispersion", "10", "-hdivrange", "2",
             "-beamsize", "0.05", "-dmin", "4", "-water", "50", "-density", "1.2",
             "-detector_rotx", "5", "-xtal_size", "0.002", "-Xclose", "10", "-ORGX", "100.5")
    assert o.distance == 231.27 / 1000.0
    assert o.pixel_size == 0.172 / 1000.0
    assert (o.Xbeam, o.Ybeam) == (217.7 / 1000.0, 213.9 / 1000.0)
    assert o.lambda0 == 0.9768 / 1.0e10
    assert o.mosaic_spread == 1.0 / RTD
    assert o.dispersion == 0.1
    assert o.hdivrange == 0.002 and o.vdivrange == -1.0
    assert o.beamsize == 0.05 / 1000
    assert o.dmin == 4 * 1e-10
    assert o.water_size == 50 / 1e6
    assert o.density == 1.2e6
    assert o.detector_rotx == 5 / RTD
    assert o.sample_x == 0.002 / 1000
    assert o.Xclose == 0.01 and o.ORGX == 100.5


def test_energy_and_misc():
    o = opts("-energy", "9000")
    assert o.lambda0 == (12398.42 / 9000.0) / 1.0e10
    o, w = parse("-energy", "0")
    assert math.isinf(o.lambda0) and w == []  # C divides by zero without complaint
    o = opts("-mosaic_dom", "12", "-mosaic_spread", "0.5", "-seed", "12345",
             "-roi", "20", "80", "30", "90", "-adc", "10", "-scale", "100", "-fudge", "1.5",
             "-flux", "1e12", "-exposure", "0.1", "-fluence", "1e30", "-default_F", "3")
    assert o.mosaic_domains == 12 and o.mosaic_spread == 0.5 / RTD
    assert o.seed == -12345
    assert (o.roi_xmin, o.roi_xmax, o.roi_ymin, o.roi_ymax) == (20, 80, 30, 90)
    assert (o.adc_offset, o.intfile_scale, o.fudge) == (10.0, 100.0, 1.5)
    assert (o.flux, o.exposure, o.fluence, o.default_F) == (1e12, 0.1, 1e30, 3.0)


def test_switches():
    o = opts("-nonoise", "-nopgm", "-coherent", "-printout", "-noprogress", "-nointerpolate",
             "-round_xtal", "-square_div", "-point_pixel", "-curved_det", "-nopolar")
    assert (o.calculate_noise, o.write_pgm, o.coherent, o.printout) == (0, 0, 1, 1)
    assert (o.progress_meter, o.interpolate, o.xtal_shape, o.round_div) == (0, 0, "ROUND", 0)
    assert (o.point_pixel, o.curved_detector, o.nopolar) == (1, 1, 1)
    assert opts("-gauss_xtal").xtal_shape == "GAUSS"
    assert opts("-tophat_spots").xtal_shape == "TOPHAT"
    assert opts("-binary_spots").xtal_shape == "TOPHAT"
    assert opts("-interpolate").interpolate == 1
    assert opts("-noprogress", "-progress").progress_meter == 1


def test_file_names():
    o = opts("-mat", "A.mat", "-hkl", "F.hkl", "-dump", "d.bin", "-sourcefile", "s.txt",
             "-floatimage", "f.bin", "-intfile", "i.img", "-pgmimage", "p.pgm",
             "-noiseimage", "n.img")
    assert (o.matfilename, o.hklfilename, o.dumpfilename) == ("A.mat", "F.hkl", "d.bin")
    assert (o.sourcefilename, o.floatfilename, o.intfilename) == ("s.txt", "f.bin", "i.img")
    assert (o.pgmfilename, o.noisefilename) == ("p.pgm", "n.img")


# ------------------------------------------------------------------ warnings

def test_trailing_flag_without_values_is_ignored():
    o, w = parse("-distance")
    assert o.distance == 0.1
    assert warned(w, "-distance needs 1 argument after it but 0 follow")
    o, w = parse("-roi", "1", "2", "3")
    assert o.roi_xmin == -1 and warned(w, "-roi needs 4 arguments after it but 3 follow")
    o, w = parse("-curved_det")
    assert o.curved_detector == 0 and warned(w, "-curved_det needs 1 argument")


def test_guarded_flag_reported_even_when_a_substring_matched():
    o, w = parse("-printout_pixel", "1")
    assert o.printout == 1 and o.printout_fpixel == -1  # only -printout took effect
    assert warned(w, "-printout_pixel needs 2 arguments after it but 1 follows")
    o, w = parse("-misset_seed")
    assert warned(w, "-misset_seed needs 1 argument after it but 0 follow")
    o, w = parse("-mask")
    assert o.maskfilename is None and warned(w, "-mask needs 1 argument")


def test_unknown_and_stray_arguments():
    o, w = parse("-bogus", "stray")
    assert warned(w, "-bogus matches no nanoBragg.c option")
    assert warned(w, "'stray' is not the value of any option")


def test_negative_values_are_not_unknown_flags():
    o, w = parse("-spindle_axis", "-1", "0", "0", "-Xbeam", "-5")
    assert o.spindle_vector == (-1.0, 0.0, 0.0) and o.Xbeam == -0.005
    assert not warned(w, "matches no")


def test_non_numeric_values():
    o, w = parse("-distance", "abc")
    assert o.distance == 0.0
    assert warned(w, "-distance abc", "atof() reads 'abc' as 0")
    o, w = parse("-distance", "100mm")
    assert o.distance == 0.1
    assert warned(w, "reads '100mm' as 100", "ignores 'mm'")


def test_warnings_appear_once():
    o, w = parse("-bogus", "-bogus", "-distance", "x", "-distance", "x")
    assert len(w) == len(set(w))
    assert sum("-bogus" in x for x in w) == 1


# ------------------------------------------------------------- own flags

def test_own_flags_removed_before_c_loop():
    o, w = parse("-c_parity", "-device", "cpu", "-precision", "single",
                 "-trace_pixel", "1039", "685", "-quiet", "-pixel", "0.2")
    assert o.c_parity and o.quiet
    assert (o.device, o.precision, o.trace_pixel) == ("cpu", "single", (1039, 685))
    assert o.pixel_size == 0.2 / 1000.0  # -trace_pixel did not reach C's -pixel
    assert w == []


def test_own_flags_defaults():
    o = opts()
    assert (o.c_parity, o.device, o.precision, o.trace_pixel, o.quiet) == (
        False, "auto", "double", None, False)
    assert opts("-device", "gpu").device == "cuda"


@pytest.mark.parametrize("args,flag", [
    (["-device", "gpu2"], "-device"), (["-device"], "-device"),
    (["-precision", "half"], "-precision"), (["-trace_pixel", "x", "y"], "-trace_pixel"),
    (["-trace_pixel", "1"], "-trace_pixel"), (["-trace_pixel", "-1", "2"], "-trace_pixel"),
])
def test_own_flag_errors(args, flag):
    with pytest.raises(ParseError) as err:
        parse_args(args)
    msg = str(err.value)
    assert flag in msg and "\n" not in msg


# ---------------------------------------------------------- -img / -mask

def _fake_io(monkeypatch, frames: dict[str, tuple[dict, int, int, np.ndarray]]) -> None:
    """Replace nbnumba.io with a reader serving ``frames`` (keyword dict, w, h, data)."""

    def read_smv(path, allow_short=False):
        if path not in frames:
            raise FileNotFoundError(2, "No such file or directory", path)
        head, w, h, data = frames[path]
        text = "".join(f"{k}={v};\n" for k, v in head.items())
        return types.SimpleNamespace(header=text, header_size=512, width=w, height=h,
                                     data=data, missing_bytes=0)

    def smv_value(header, keyword):
        m = re.search(rf"^{keyword}=([^;]*);", header, re.M)
        return float(m.group(1)) if m else math.nan

    fake = types.SimpleNamespace(read_smv=read_smv, smv_value=smv_value)
    monkeypatch.setitem(sys.modules, "nbnumba.io", fake)
    monkeypatch.setattr(nbnumba, "io", fake, raising=False)


HEAD = {"PIXEL_SIZE": 0.1, "DISTANCE": 100, "CLOSE_DISTANCE": 95, "WAVELENGTH": 1.5,
        "BEAM_CENTER_X": 3.25, "BEAM_CENTER_Y": 2.5, "ORGX": 33.5, "ORGY": 30,
        "PHI": 5, "OSC_RANGE": 1, "TWOTHETA": 0}


def test_img_header_fields(monkeypatch):
    _fake_io(monkeypatch, {"h.img": (HEAD, 64, 48, np.zeros(64 * 48, np.uint16))})
    o, w = parse("-img", "h.img")
    assert o.imginfilename == "h.img" and o.mask_image is None
    assert (o.fpixels, o.spixels) == (64, 48)
    assert o.pixel_size == 0.1 / 1000.0
    assert (o.detsize_f, o.detsize_s) == (o.pixel_size * 64, o.pixel_size * 48)
    assert o.distance == 0.1 and o.close_distance == 0.095
    assert o.lambda0 == 1.5 / 1e10
    assert (o.Xbeam, o.Ybeam) == (3.25 / 1000.0, 2.5 / 1000.0)
    assert (o.ORGX, o.ORGY) == (33.5, 30.0)
    assert (o.phi0, o.osc) == (5 / RTD, 1 / RTD)
    assert o.detector_pivot == BEAM  # header values do not touch the pivot
    assert w == []


def test_mask_header_flips_ybeam_and_keeps_pixels(monkeypatch):
    data = np.arange(64 * 48, dtype=np.uint16) % 2
    _fake_io(monkeypatch, {"m.img": (HEAD, 64, 48, data)})
    o, w = parse("-mask", "m.img")
    assert o.maskfilename == "m.img"
    assert o.Ybeam == o.pixel_size * 48 - 2.5 / 1000.0
    assert o.mask_image.dtype == np.uint16 and o.mask_image.shape == (64 * 48,)
    assert np.array_equal(o.mask_image, data)
    assert warned(w, "BEAM_CENTER_Y in the -mask header")
    assert not warned(w, "matches no")


def test_img_overrides_mask_and_flags_override_headers(monkeypatch):
    head2 = dict(HEAD, BEAM_CENTER_Y=4.0, TWOTHETA=20)
    _fake_io(monkeypatch, {"m.img": (HEAD, 64, 48, np.ones(64 * 48, np.uint16)),
                           "h.img": (head2, 32, 32, np.zeros(32 * 32, np.uint16))})
    o, w = parse("-img", "h.img", "-mask", "m.img", "-detpixels", "16", "-distance", "80")
    assert (o.fpixels, o.spixels) == (16, 16)
    assert o.Ybeam == 4.0 / 1000.0
    assert o.mask_image.shape == (64 * 48,)
    assert o.distance == 0.08
    assert warned(w, "TWOTHETA=20", "ignored")
    assert warned(w, "-distance has no effect", "CLOSE_DISTANCE")


def test_missing_mask_file_is_a_warning(monkeypatch):
    _fake_io(monkeypatch, {})
    o, w = parse("-mask", "nope.img")
    assert o.maskfilename == "nope.img" and o.mask_image is None
    assert warned(w, "-mask nope.img: cannot read it")


# --------------------------------------------------------------- golden cases

def _cases(golden_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(golden_dir.glob("*/case.json"))]


def _effective_pivot(o: Options) -> str:
    """The pivot after C's convention block (lines 1172-1257)."""
    forced = {"ADXV": BEAM, "MOSFLM": BEAM, "DENZO": BEAM, "XDS": SAMPLE, "DIALS": SAMPLE}
    return forced.get(o.beam_convention, o.detector_pivot)


def _needs_real_io(case: dict) -> bool:
    return any(a in ("-img", "-mask") for a in case["args"])


def test_golden_args_parse(golden_dir, monkeypatch):
    monkeypatch.chdir(golden_dir / "inputs")
    have_io = True
    try:
        import nbnumba.io  # noqa: F401
    except ImportError:
        have_io = False
    cases = _cases(golden_dir)
    assert cases
    for case in cases:
        if _needs_real_io(case) and not have_io:
            continue
        for before in case.get("before", []):
            parse_args(before)
        o, w = parse_args(case["args"] + ["-noprogress"])
        assert o.progress_meter == 0
        assert all(x.startswith("warning: ") and "\n" not in x for x in w), case["name"]
        assert not any("matches no" in x or "not the value" in x for x in w), case["name"]


def _printed(stdout: str, pattern: str) -> re.Match | None:
    return re.search(pattern, stdout, re.M)


def test_golden_values_match_c_stdout(golden_dir, monkeypatch):
    monkeypatch.chdir(golden_dir / "inputs")
    try:
        import nbnumba.io  # noqa: F401
        have_io = True
    except ImportError:
        have_io = False
    checked = 0
    for case in _cases(golden_dir):
        if _needs_real_io(case) and not have_io:
            continue
        name = case["name"]
        out = (golden_dir / name / "c_stdout.txt").read_text()
        o, _ = parse_args(case["args"])
        conv = _printed(out, r"^(\w+) convention selected\.$")
        assert conv and conv.group(1) == o.beam_convention.lower(), name
        piv = "sample" if _effective_pivot(o) == SAMPLE else "direct beam spot"
        assert f"pivoting detector around {piv}\n" in out, name
        lam = _printed(out, r"^  wave=(\S+) meters \+/- (\S+)% in")
        assert lam and float(lam.group(1)) == pytest.approx(o.lambda0, rel=1e-5), name
        assert float(lam.group(2)) == pytest.approx(o.dispersion * 100, abs=1e-9), name
        px = _printed(out, r"pixel=(\S+) meters \((\d+)x(\d+) pixels\)")
        assert px and float(px.group(1)) == pytest.approx(o.pixel_size, rel=1e-6), name
        if o.fpixels > 0:
            assert (int(px.group(2)), int(px.group(3))) == (o.fpixels, o.spixels), name
        if not math.isnan(o.Xbeam):
            xb = _printed(out, r"^  Xbeam=(\S+) Ybeam=(\S+)$")
            assert float(xb.group(1)) == pytest.approx(o.Xbeam, rel=1e-5), name
            assert float(xb.group(2)) == pytest.approx(o.Ybeam, rel=1e-5), name
        if o.user_cell and o.matfilename is None:
            cell = _printed(out, r"^Unit Cell: (\S+) (\S+) (\S+)")
            assert tuple(map(float, cell.groups())) == pytest.approx(
                (o.cell_a, o.cell_b, o.cell_c), rel=1e-5), name
        if o.phisteps > 0 and o.osc >= 0:
            ph = _printed(out, r"^  (\d+) phi steps from (\S+) to (\S+) degrees")
            assert int(ph.group(1)) == o.phisteps, name
            assert float(ph.group(2)) == pytest.approx(o.phi0 * RTD, abs=1e-9), name
            assert float(ph.group(3)) == pytest.approx((o.phi0 + o.osc) * RTD, rel=1e-5), name
        if o.oversample > 0:
            assert f"  {o.oversample}x{o.oversample} pixel oversample steps" in out, name
        if o.roi_xmin >= 0:
            assert (f"  roi: {o.roi_xmin} < x < {o.roi_xmax} && {o.roi_ymin} < y < "
                    f"{o.roi_ymax}") in out, name
        if o.mosaic_domains > 0:
            mo = _printed(out, r"^  (\d+) mosaic domains over mosaic spread of (\S+) degrees")
            assert int(mo.group(1)) == o.mosaic_domains, name
            assert float(mo.group(2)) == pytest.approx(o.mosaic_spread * RTD, rel=1e-5), name
        if o.calculate_noise and "-seed" in case["args"]:
            assert f"  seed: {o.seed}\n" in out, name
        if o.detector_thicksteps > 0:
            se = _printed(out, r"^  sensor is (\S+) m thick in (\d+) layers with mu= (\S+)$")
            assert float(se.group(1)) == pytest.approx(o.detector_thick, rel=1e-5), name
            assert int(se.group(2)) == o.detector_thicksteps, name
            assert float(se.group(3)) == pytest.approx(o.detector_mu, rel=1e-5), name
        if "-polar" in case["args"]:
            kahn = _printed(out, r"Kahn polarization factor: (\S+)")
            assert float(kahn.group(1)) == pytest.approx(o.polarization), name
        checked += 1
    assert checked >= 40


def test_golden_supervisor_quirks(golden_dir):
    case = json.loads((golden_dir / "supervisor" / "case.json").read_text())
    o, w = parse_args(case["args"])
    assert o.beam_convention == CUSTOM and o.detector_pivot == SAMPLE
    assert o.pix0_vector_given
    assert (o.fpixels, o.spixels) == (2463, 2527)
    assert (o.Na, o.Nb, o.Nc) == (36.0, 47.0, 29.0)
    assert o.spindle_vector == (-1.0, 0.0, 0.0)
    assert o.calculate_noise == 0 and o.write_pgm == 0 and o.interpolate == 0
    assert warned(w, "detector pivot is SAMPLE because -twotheta comes after -distance")
    assert warned(w, "-pix0_vector_mm")
