"""nonbragg-nb and nbnumba.NonBragg against serial nonBragg.c's golden cases.

Every case of ../shared/companions/nonbragg (and the nonBragg steps of
../shared/companions/pipeline) runs through the CLI in-process, in a fresh
folder holding copies of companions/inputs/, and is compared at the README's
tolerances: float images (NaN positions exact), SMV headers byte for byte and
pixels, PGM header + W·H bytes, out.stol columns 1, 2, 3, 6, stdout line by line
except ``mmap(``.  A few run through the Python API too.  Bad input gets one
line, a documented exit code and no files.  Skips without ../shared.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main

from nbnumba.cli.nonbragg import main

REPO = Path(__file__).resolve().parents[1]
COMPANIONS = Path(os.environ.get("NB_COMPANIONS", REPO.parent / "shared" / "companions"))
MAX_ABS_FRACTION = 1e-5
MIN_CORRELATION = 0.999999
SUM_RATIO_TOL = 1e-6
EDGE_PIXEL_FRACTION = 1e-4


def _available() -> bool:
    return (COMPANIONS / "README.md").is_file()


def _case_names(kind: str) -> list[str]:
    if not _available():
        return []
    return sorted(p.parent.name for p in (COMPANIONS / kind).glob("*/case.json"))


def _pipeline_steps() -> list[tuple[str, int]]:
    out = []
    for name in _case_names("pipeline"):
        case = json.loads((COMPANIONS / "pipeline" / name / "case.json").read_text())
        for i, step in enumerate(case["steps"]):
            if step.get("prog") == "nonBragg":
                out.append((name, i))
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    if not _available():
        pytest.skip("../shared/companions is not present")
    for f in (COMPANIONS / "inputs").iterdir():
        shutil.copyfile(f, tmp_path / f.name)
    return tmp_path


def run_cli(args: list[str], folder: Path) -> tuple[int, str, str]:
    return run_main(args, folder, main)


# ------------------------------------------------------------------ comparisons

def check_float(ref_path: Path, ours_path: Path) -> None:
    ref = np.fromfile(ref_path, dtype="<f4")
    ours = np.fromfile(ours_path, dtype="<f4")
    assert ours.shape == ref.shape
    assert np.array_equal(np.isnan(ref), np.isnan(ours)), "NaN positions differ"
    fin = np.isfinite(ref)
    r, o = ref[fin].astype(np.float64), ours[fin].astype(np.float64)
    scale = max(np.max(np.abs(r)), 1e-300)
    assert np.max(np.abs(o - r)) <= MAX_ABS_FRACTION * scale
    if np.std(r) > 0:
        assert np.corrcoef(r, o)[0, 1] >= MIN_CORRELATION
    if r.sum() != 0:
        assert abs(o.sum() / r.sum() - 1) <= SUM_RATIO_TOL


def check_int_pixels(ref: np.ndarray, ours: np.ndarray) -> None:
    assert ours.shape == ref.shape
    diff = np.abs(ref.astype(np.int64) - ours.astype(np.int64))
    assert diff.max(initial=0) <= 1
    assert np.count_nonzero(diff) <= EDGE_PIXEL_FRACTION * ref.size


def check_smv(ref_path: Path, ours_path: Path) -> None:
    ref, ours = ref_path.read_bytes(), ours_path.read_bytes()
    assert ours[:512] == ref[:512], "SMV headers differ"
    check_int_pixels(np.frombuffer(ref[512:], "<u2"), np.frombuffer(ours[512:], "<u2"))


def check_pgm(ref_path: Path, ours_path: Path) -> None:
    ref, ours = ref_path.read_bytes(), ours_path.read_bytes()
    # header: 4 lines; the stored reference is cut to header + W·H bytes
    head = ref.split(b"\n", 4)
    header = b"\n".join(head[:4]) + b"\n"
    assert ours[:len(header)] == header
    assert len(ours) == len(ref), "nonbragg-nb writes exactly W·H pixel bytes"
    check_int_pixels(np.frombuffer(ref[len(header):], "u1"),
                     np.frombuffer(ours[len(header):], "u1"))


def check_stol(ref_path: Path, ours_path: Path) -> None:
    ref = [ln.split() for ln in ref_path.read_text().splitlines()]
    ours = [ln.split() for ln in ours_path.read_text().splitlines()]
    assert len(ours) == len(ref)
    for a, b in zip(ref, ours, strict=True):
        assert [a[i] for i in (0, 1, 2, 5)] == [b[i] for i in (0, 1, 2, 5)]


def check_stdout(ref_text: str, ours: str) -> None:
    ref = [ln for ln in ref_text.splitlines() if not ln.endswith("% done")]
    got = ours.splitlines()
    assert len(got) == len(ref), "\n".join(got)
    for a, b in zip(ref, got, strict=True):
        if a.startswith("mmap("):
            assert b.startswith("mmap(")
            continue
        assert b == a


def check_file(name: str, ref_dir: Path, folder: Path) -> None:
    ref, ours = ref_dir / name, folder / name
    assert ours.is_file(), f"{name} not written"
    if name.endswith(".bin"):
        check_float(ref, ours)
    elif name.endswith(".img"):
        check_smv(ref, ours)
    elif name.endswith(".pgm"):
        check_pgm(ref, ours)
    else:
        check_stol(ref, ours)


# ------------------------------------------------------------------ golden cases

@pytest.mark.parametrize("name", _case_names("nonbragg"))
def test_case_cli(name: str, workdir: Path) -> None:
    ref_dir = COMPANIONS / "nonbragg" / name
    case = json.loads((ref_dir / "case.json").read_text())
    code, out, err = run_cli(case["args"] + ["-noprogress"], workdir)
    assert code == case["exit_code"], err
    check_stdout((ref_dir / "c_stdout.txt").read_text(), out)
    for f in case["keep"]:
        check_file(f, ref_dir, workdir)
    assert "Traceback" not in err
    assert not list(workdir.glob(".*.tmp"))


@pytest.mark.parametrize("name,step", _pipeline_steps())
def test_pipeline_step_cli(name: str, step: int, workdir: Path) -> None:
    ref_dir = COMPANIONS / "pipeline" / name
    case = json.loads((ref_dir / "case.json").read_text())
    args = case["steps"][step]["args"]
    code, out, err = run_cli(args, workdir)
    assert code == 0, err
    stdout_file = ref_dir / f"step{step + 1:02d}_nonBragg_stdout.txt"
    check_stdout(stdout_file.read_text(), out)
    outputs = {args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-floatfile", "-intfile")}
    for f in sorted(outputs & set(case["keep"])):
        check_file(f, ref_dir, workdir)


@pytest.mark.parametrize("name", ["water_defaults", "img_extract_stolout", "nanoice_nan",
                                  "roi_noise_phi_osc"])
def test_case_api(name: str, workdir: Path) -> None:
    """The Python API gives the CLI's numbers and files."""
    from nbnumba import NonBragg

    ref_dir = COMPANIONS / "nonbragg" / name
    case = json.loads((ref_dir / "case.json").read_text())
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        result = NonBragg.from_args(case["args"]).run()
        written = result.write()
    finally:
        os.chdir(cwd)
    assert result.image.dtype == np.float32
    assert result.image.shape == tuple(case["shape"])
    check_stdout((ref_dir / "c_stdout.txt").read_text(), "\n".join(result.summary) + "\n")
    assert result.header["SIZE1"] == case["shape"][1]
    for f in case["keep"]:
        assert f in written
        check_file(f, ref_dir, workdir)


def test_keywords_equal_argv(workdir: Path) -> None:
    """NonBragg(**flags) converts through the C parser: same image as the argv form."""
    from nbnumba import NonBragg

    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        kw = NonBragg(stol="water.stol", distance=100, detpixels=64, pixel=0.8, flux=1e12,
                      exposure=1, beamsize=0.1, roi=(5, 40, 6, 50), nonoise=True,
                      polar_vector=(0, 1, 0), polar=0.5).run()
        argv = NonBragg.from_args("-stol water.stol -distance 100 -detpixels 64 -pixel 0.8 "
                                  "-flux 1e12 -exposure 1 -beamsize 0.1 -roi 5 40 6 50 "
                                  "-nonoise -polar_vector 0 1 0 -polar 0.5").run()
    finally:
        os.chdir(cwd)
    assert np.array_equal(kw.image, argv.image)
    assert kw.image[0, 0] == 0 and kw.image[10, 10] > 0
    assert kw.noise_image() is None
    assert kw.header == argv.header


def test_unknown_keywords() -> None:
    from nbnumba import NonBragg

    with pytest.raises(TypeError, match="bogus, distanse"):
        NonBragg(stol="water.stol", distanse=100, bogus=1)
    with pytest.raises(TypeError, match="roi needs 4 values"):
        NonBragg(stol="water.stol", roi=(1, 2))


def test_write_is_atomic_and_byte_identical(workdir: Path) -> None:
    from nbnumba import NonBragg

    args = ["-stol", "water.stol", "-detpixels", "32", "-pixel", "1", "-seed", "3"]
    code, _, _ = run_cli(args, workdir)
    assert code == 0
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        r = NonBragg.from_args(args).run()
        r.write(floatfile="a.bin", intfile="a.img", noisefile="a_noise.img", pgmfile="a.pgm")
    finally:
        os.chdir(cwd)
    for ours, cli in (("a.bin", "floatimage.bin"), ("a.img", "intimage.img"),
                      ("a_noise.img", "noiseimage.img"), ("a.pgm", "image.pgm")):
        assert (workdir / ours).read_bytes() == (workdir / cli).read_bytes()
    with pytest.raises(ValueError):
        r.write(stolout="x.stol")


# ------------------------------------------------------------------ quirks

def test_nopgm_honoured_with_warning(workdir: Path) -> None:
    code, out, err = run_cli(["-stol", "water.stol", "-detpixels", "16", "-pixel", "2",
                              "-nopgm", "-nonoise"], workdir)
    assert code == 0
    assert not (workdir / "image.pgm").exists()
    assert "-nopgm" in err and "writing image.pgm" in out  # C's stdout kept


def test_twotheta_axis_quirk_warns() -> None:
    from nbnumba.companions.nonbragg_args import SAMPLE, parse_nonbragg_args

    o, warnings = parse_nonbragg_args(["-stol", "x", "-twotheta_axis", "0.6", "0.8", "0"])
    assert o.detector_pivot == SAMPLE
    assert abs(o.detector_twotheta - 0.6 / 57.29577951308232) < 1e-15
    assert any("also matched -twotheta" in w for w in warnings)


def test_nan_case_warns(workdir: Path) -> None:
    args = json.loads((COMPANIONS / "nonbragg" / "nanoice_nan" / "case.json").read_text())["args"]
    code, out, err = run_cli(args, workdir)
    assert code == 0
    assert "49 pixels are NaN" in err
    img = np.frombuffer((workdir / "int.img").read_bytes()[512:], "<u2")
    flt = np.fromfile(workdir / "float.bin", "<f4")
    assert np.all(img[np.isnan(flt)] == 0)


# ------------------------------------------------------------------ bad input

BAD = [
    (["-distance", "100"], 2, "no -stol"),
    (["-stol", "missing.stol"], 3, "missing.stol"),
    (["-stol", "water.stol", "-pixel", "0"], 2, "-pixel"),
    (["-stol", "water.stol", "-detpixels", "-5"], 2, "pixels"),
    (["-stol", "water.stol", "-lambda", "0"], 2, "wavelength"),
    (["-stol", "water.stol", "-img", "water.stol"], 3, "ADSC"),
    (["-stol", "water.stol", "-detpixels", "8", "-floatfile", "nodir/x.bin"], 3, "nodir"),
    (["-stol", "empty.stol"], 3, "no data"),
    (["-stol", "water.stol", "-flux", "1e12", "-beamsize", "0"], 2, "inf/NaN image"),
    (["-stol", "water.stol", "-twotheta", "inf"], 2, "infinite angle"),
]


@pytest.mark.parametrize("args,code,text", BAD)
def test_bad_input(args: list[str], code: int, text: str, workdir: Path) -> None:
    (workdir / "empty.stol").write_text("")
    before = set(os.listdir(workdir))
    got, out, err = run_cli(args + ["-nonoise"], workdir)
    assert got == code, err
    lines = [ln for ln in err.splitlines() if ln.startswith("nonbragg-nb: error:")]
    assert len(lines) == 1 and text in lines[0], err
    assert "Traceback" not in err
    assert set(os.listdir(workdir)) == before  # nothing written, no temporaries


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = ("import sys, nbnumba; nbnumba.NonBragg; "
            "assert 'numba' not in sys.modules, 'numba imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ fuzz

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

FLAGS = ["-stol", "-4stol", "-Q", "-sourcefile", "-lambda", "-energy", "-dispersion",
         "-dispsteps", "-divergence", "-hdivrange", "-vdivsteps", "-hdivstep", "-square_div",
         "-thick", "-samplesize", "-density", "-MW", "-molecules", "-distance",
         "-close_distance", "-Xbeam", "-Ybeam", "-ORGX", "-twotheta", "-twotheta_axis",
         "-detector_rotx", "-detsize", "-detpixels", "-pixel", "-curved_det", "-point_pixel",
         "-polar", "-nopolar", "-oversample", "-roi", "-fluence", "-flux", "-beamsize",
         "-scale", "-pgmscale", "-adc", "-seed", "-nonoise", "-nopgm", "-Fmap", "-printout",
         "-phi", "-osc", "-pivot", "-floatfile", "-intfile", "-noisefile", "-img"]
VALUES = ["1", "2", "0.5", "0", "-1", "nan", "inf", "abc", "water.stol", "sources.txt",
          "in.img", "sample", "3", "out/x.bin", ""]

if given is not None:
    @settings(max_examples=50, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(st.lists(st.one_of(st.sampled_from(FLAGS), st.sampled_from(VALUES)), max_size=12))
    def test_fuzz_flags(workdir: Path, words: list[str]) -> None:
        """Any argv on a tiny detector: a documented exit code, one error line, no debris."""
        args = ["-stol", "shortwater.stol", *words, "-detpixels", "4", "-pixel", "25",
                "-noprogress"]
        for f in workdir.iterdir():
            if f.suffix in (".bin", ".img", ".pgm", ".stol") and f.name not in (
                    "water.stol", "shortwater.stol", "in.img", "header.img", "air.stol",
                    "ice.stol", "nanoice.stol", "unity.stol"):
                f.unlink()
        code, out, err = run_cli(args, workdir)
        assert code in (0, 2, 3, 4), err
        assert "Traceback" not in err
        errors = [ln for ln in err.splitlines() if ln.startswith("nonbragg-nb: error:")]
        assert len(errors) == (0 if code == 0 else 1), err
        assert not list(workdir.glob(".*.tmp"))


def test_thread_count_does_not_matter(workdir: Path) -> None:
    """Rows are independent: 1 thread and all threads give the same bytes."""
    import numba

    from nbnumba import NonBragg

    args = ("-stol water.stol -lambda 1 -dispersion 2 -dispsteps 3 -divergence 1 -divsteps 3 "
            "-oversample 2 -distance 100 -detpixels 48 -pixel 1 -nonoise").split()
    cwd = os.getcwd()
    os.chdir(workdir)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = NonBragg.from_args(args).run().image
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = NonBragg.from_args(args).run().image
    finally:
        numba.set_num_threads(before)
        os.chdir(cwd)
    assert one.tobytes() == many.tobytes()


ACROSS_ROWS = [
    "-stol water.stol -lambda 1 -dispersion 2 -dispsteps 3 -divergence 1 -divsteps 3 "
    "-oversample 2 -distance 100 -detpixels 24 -pixel 1",
    "-stol ice.stol -polar 0.9 -polar_vector 0 1 1 -curved_det -distance 60 -detpixels 20 "
    "-pixel 5 -detector_roty 5 -oversample 3 -roi 3 15 2 17",
    "-stol water.stol -nopolar -point_pixel -twotheta 20 -detpixels_f 21 -detpixels_s 9 "
    "-pixel 2 -distance 40",
    "-stol air.stol -sourcefile sources.txt -twotheta 10 -detpixels_f 30 "
    "-detpixels_s 20 -pixel 1.5 -Fmap",
    "-stol water.stol -distance 0 -detpixels 6 -pixel 1",  # NaN stol, as C
]


@pytest.mark.parametrize("args", ACROSS_ROWS)
def test_rows_across_pixels_equal_pixel_loop(args: str, workdir: Path) -> None:
    """The image from the row-wise kernel (each step across a row's pixels; used when no
    per-pixel detail is wanted) is byte for byte the per-pixel loop's, which follows C's
    loop literally: polarization's in-place unitize carried per pixel, curved detector,
    ROI, -nopolar, point pixels, several sources, -Fmap, NaN geometry."""
    from nbnumba.companions.nonbragg import render
    from nbnumba.companions.nonbragg_args import parse_nonbragg_args
    from nbnumba.companions.nonbragg_setup import setup

    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        options, _ = parse_nonbragg_args(args.split() + ["-nonoise", "-noprogress"])
        scene = setup(options, lambda text: None, lambda text: None)
    finally:
        os.chdir(cwd)
    assert scene.table_increasing
    across, _ = render(scene, keep_detail=False)
    per_pixel, _ = render(scene, keep_detail=True)
    assert across.tobytes() == per_pixel.tobytes()
    assert np.count_nonzero(across) > 0


EXTRA_VS_C = [
    "-stol water.stol -lambda 1 -dispersion 2 -dispsteps 3 -divergence 1 -divsteps 3 "
    "-oversample 2 -distance 100 -detpixels 48 -pixel 1 -nonoise -seed 4",
    "-stol ice.stol -polar 0.9 -polar_vector 0 1 1 -curved_det -distance 60 -detpixels 40 "
    "-pixel 1 -detector_roty 5 -oversample 3 -seed 5 -roi 3 30 2 35",
    "-4stol shortwater.stol -sourcefile sources.txt -twotheta 10 -detpixels_f 30 "
    "-detpixels_s 20 -pixel 1.5 -Fmap -nonoise",
    "-stol nanoice.stol -Xbeam 3 -Ybeam 4 -detpixels 32 -pixel 1 -square_div -hdivrange 2 "
    "-hdivstep 0.7 -seed 9 -adc 0 -scale 3",
]


@pytest.mark.parametrize("args", EXTRA_VS_C)
def test_more_argv_against_c(args: str, workdir: Path, tmp_path_factory) -> None:
    """With NONBRAGG_C_BIN: other flag mixes give C's bytes and stdout."""
    import subprocess

    c_bin = os.environ.get("NONBRAGG_C_BIN")
    if not c_bin or not Path(c_bin).is_file():
        pytest.skip("NONBRAGG_C_BIN is not set to a nonBragg.c build")
    argv = args.split() + ["-noprogress"]
    c_dir = tmp_path_factory.mktemp("c")
    for f in (COMPANIONS / "inputs").iterdir():
        shutil.copyfile(f, c_dir / f.name)
    c = subprocess.run([c_bin, *argv], cwd=c_dir, capture_output=True, text=True)
    code, out, err = run_cli(argv, workdir)
    assert code == c.returncode == 0, err
    check_stdout(c.stdout, out)
    for name in ("floatimage.bin", "intimage.img", "noiseimage.img"):
        if (c_dir / name).exists():
            assert (workdir / name).read_bytes() == (c_dir / name).read_bytes(), name
    pgm = (c_dir / "image.pgm").read_bytes()
    assert (workdir / "image.pgm").read_bytes() == pgm[:len((workdir / "image.pgm").read_bytes())]


def _scene(args: str, workdir: Path):
    from nbnumba.companions.nonbragg_args import parse_nonbragg_args
    from nbnumba.companions.nonbragg_setup import setup

    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        options, _ = parse_nonbragg_args(args.split() + ["-nonoise", "-noprogress"])
        return setup(options, lambda text: None, lambda text: None)
    finally:
        os.chdir(cwd)


def test_rows_across_with_moving_vectors_equal_pixel_loop(workdir: Path) -> None:
    """Kahn factor 0 (nonBragg's default): the row kernel sums the pixels whose unit vector
    is a fixed point of C's in-place unitize in a vectorised pass and the others one by one
    (:func:`nbnumba.kernels.nonbragg._sum_one`); both kinds are in this image, and the
    result is byte for byte the per-pixel loop's."""
    from numba import njit

    from nbnumba.companions.nonbragg import _pack, render
    from nbnumba.kernels import nonbragg as k
    from nbnumba.kernels.physics import unitize3

    @njit
    def moving_subpixels(geom, flags, fpixels, spixels):
        n_over = flags[k.F_OVERSAMPLE]
        sub = geom[k.G_SUBPIXEL]
        moving = 0
        for s in range(spixels * n_over):
            for f in range(fpixels * n_over):
                px, py, pz = k.subpixel_position(geom, False, sub * f + sub / 2.0,
                                                 sub * s + sub / 2.0)
                dx, dy, dz, _ = unitize3(px, py, pz)
                vx, vy, vz, _ = unitize3(dx, dy, dz)
                wx, wy, wz, _ = unitize3(vx, vy, vz)
                moving += not (wx == vx and wy == vy and wz == vz)
        return moving

    scene = _scene("-stol water.stol -lambda 1 -dispersion 0.1 -dispsteps 3 -divergence 0.28 "
                   "-divsteps 3 -oversample 2 -distance 100 -detpixels 160 -pixel 0.1", workdir)
    assert scene.polarization == 0.0 and not scene.nopolar
    geom, flags = _pack(scene)
    moving = moving_subpixels(geom, flags, scene.fpixels, scene.spixels)
    assert 0 < moving < scene.pixels
    across, _ = render(scene, keep_detail=False)
    per_pixel, _ = render(scene, keep_detail=True)
    assert across.tobytes() == per_pixel.tobytes()


def test_omega_sum_blocks_equal_one_serial_loop(workdir: Path) -> None:
    """The solid angle's Ω values are computed in parallel blocks of rows and added in C's
    order: over several blocks, with a ROI, the sum equals C's loop taken literally."""
    from numba import njit

    from nbnumba.companions.nonbragg import _pack
    from nbnumba.kernels import nonbragg as k

    @njit
    def literal(geom, flags, fpixels, spixels):
        n_over = flags[k.F_OVERSAMPLE]
        sub = geom[k.G_SUBPIXEL]
        total = 0.0
        for spixel in range(spixels):
            for fpixel in range(fpixels):
                if (fpixel < flags[k.F_XMIN] or fpixel > flags[k.F_XMAX]
                        or spixel < flags[k.F_YMIN] or spixel > flags[k.F_YMAX]):
                    continue
                for subS in range(n_over):
                    Sdet = sub * (spixel * n_over + subS) + sub / 2.0
                    for subF in range(n_over):
                        Fdet = sub * (fpixel * n_over + subF) + sub / 2.0
                        px, py, pz = k.subpixel_position(geom, flags[k.F_CURVED], Fdet, Sdet)
                        airpath = np.sqrt(px * px + py * py + pz * pz)
                        total += k.pixel_omega(geom, flags[k.F_POINT], airpath)
        return total

    for args in ("-stol water.stol -distance 50 -detpixels 400 -pixel 0.1 -oversample 3 "
                 "-roi 7 390 11 380",
                 "-stol water.stol -curved_det -distance 40 -detpixels_f 700 -detpixels_s 500 "
                 "-pixel 0.1 -point_pixel"):
        scene = _scene(args, workdir)
        geom, flags = _pack(scene)
        rows = k.OMEGA_BLOCK // (scene.fpixels * int(flags[k.F_OVERSAMPLE]) ** 2)
        assert scene.spixels > rows  # several blocks
        assert (k.omega_sum(geom, flags, scene.fpixels, scene.spixels)
                == literal(geom, flags, scene.fpixels, scene.spixels))
