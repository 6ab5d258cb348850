"""noisify-nb and nbnumba.Noisify against serial noisify.c's golden cases.

Cases: ../shared/companions/{noisify,pipeline} (README.md there gives the tolerances);
skipped cleanly without ../shared. With ``NOISIFY_C_BIN`` pointing at a noisify.c build,
the fuzz test also compares every file with C's.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbnumba.cli.float_add import main as float_add_main
from nbnumba.cli.noisify import main
from nbnumba.companions.floatadd import float_add
from nbnumba.companions.noisify import Noisify, parse_args
from nbnumba.errors import EXIT_CODES, InputFileError, UsageError

REPO = Path(__file__).resolve().parents[1]
COMPANIONS = Path(os.environ.get("NB_COMPANIONS", REPO.parent / "shared" / "companions"))
MAX_STEP_FRACTION = 1e-4  # ±1 on at most 0.01% of the pixels (README "Tolerances")


def companions_available() -> bool:
    return (COMPANIONS / "README.md").is_file()


def case_names(kind: str) -> list[str]:
    if not companions_available():
        return []
    return sorted(p.parent.name for p in (COMPANIONS / kind).glob("*/case.json"))


needs_shared = pytest.mark.skipif(not companions_available(),
                                  reason="../shared/companions is not present")


def load(kind: str, name: str) -> dict:
    return json.loads((COMPANIONS / kind / name / "case.json").read_text())


def run_cli(args: list[str], folder: Path, prog=main) -> tuple[int, str, str]:
    return run_main(args, folder, prog)


@contextlib.contextmanager
def inside(folder: Path):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)


def copy_inputs(folder: Path) -> None:
    for f in (COMPANIONS / "inputs").iterdir():
        shutil.copyfile(f, folder / f.name)


def smv_pixels(data: bytes) -> np.ndarray:
    dtype = "<u4" if b"TYPE=long_integer" in data[:512] else "<u2"
    return np.frombuffer(data[512:], dtype=dtype).astype(np.int64)


def assert_int_file(ref: bytes, ours: bytes, name: str, exact: bool = False) -> None:
    """README tolerances: identical header, pixels identical except ±1 on <= 0.01%."""
    if exact or ref == ours:
        assert ours == ref, f"{name}: not byte-identical"
        return
    if name.endswith(".pgm"):
        head = ref.index(b"255\n") + 4
        assert ours[:head] == ref[:head], f"{name}: PGM header differs"
        a = np.frombuffer(ref[head:], np.uint8).astype(int)
        b = np.frombuffer(ours[head:], np.uint8).astype(int)
    else:
        assert ours[:512] == ref[:512], f"{name}: SMV header differs"
        a, b = smv_pixels(ref), smv_pixels(ours)
    assert a.shape == b.shape, f"{name}: {b.size} pixels, C has {a.size}"
    diff = np.abs(a - b)
    assert diff.max() <= 1, f"{name}: max pixel difference {diff.max()}"
    assert np.count_nonzero(diff) <= MAX_STEP_FRACTION * a.size, f"{name}: too many ±1 pixels"


def compare_kept(case_dir: Path, folder: Path, keep: list[str]) -> None:
    for k in keep:
        ours = folder / k
        assert ours.is_file(), f"{k} not written"
        # the noise images: exact, since C's generator stream is reproduced draw for draw
        assert_int_file((case_dir / k).read_bytes(), ours.read_bytes(), k,
                        exact="noise" in k)


# --------------------------------------------------------------------- golden cases

@needs_shared
@pytest.mark.parametrize("name", case_names("noisify"))
def test_noisify_case_cli(name: str, tmp_path: Path) -> None:
    case = load("noisify", name)
    copy_inputs(tmp_path)
    code, out, err = run_cli(case["args"], tmp_path)
    assert code == case["exit_code"] == 0, err
    ref = (COMPANIONS / "noisify" / name / "c_stdout.txt").read_text()
    assert out.splitlines() == ref.splitlines()
    assert "Traceback" not in err
    compare_kept(COMPANIONS / "noisify" / name, tmp_path, case["keep"])


API_CASES = ["defaults_water", "flicker_calib_rect", "psf_gauss_noise", "psf_fiber_auto",
             "bits32_overload", "header_file", "psf_gauss_nonoise_radius"]


@needs_shared
@pytest.mark.parametrize("name", [n for n in API_CASES if n in case_names("noisify")])
def test_noisify_case_api(name: str, tmp_path: Path) -> None:
    case = load("noisify", name)
    copy_inputs(tmp_path)
    with inside(tmp_path):
        result = Noisify.from_args(case["args"]).run()
    ref = (COMPANIONS / "noisify" / name / "c_stdout.txt").read_text()
    assert result.stdout.splitlines() == ref.splitlines()
    assert result.int_image.shape == tuple(case["shape"])
    written = result.write(tmp_path / "api")  # the folder is created
    assert all(Path(p).is_file() for p in written)
    compare_kept(COMPANIONS / "noisify" / name, tmp_path / "api", case["keep"])


@needs_shared
def test_api_image_in_memory_and_keywords(tmp_path: Path) -> None:
    """run(image=array) gives what the file gives; keywords are C's flags in user units."""
    case = load("noisify", "psf_gauss_noise")
    image = np.fromfile(COMPANIONS / "inputs" / "spots128.bin", dtype="<f4").reshape(128, 128)
    job = Noisify(detpixels=128, pixel=0.2, psf="gauss", psf_fwhm=300, seed=8, calibration=0,
                  intfile="int.img", noisefile="noise.img", pgmfile="img.pgm")
    result = job.run(image=image)
    ref_dir = COMPANIONS / "noisify" / "psf_gauss_noise"
    assert result.noise_image.dtype == np.uint16
    np.testing.assert_array_equal(result.noise_image.ravel(),
                                  smv_pixels((ref_dir / "noise.img").read_bytes()))
    result.write(tmp_path)
    compare_kept(ref_dir, tmp_path, case["keep"])
    # the header is the file's first 512 bytes, the summary C's stdout with the input named
    assert result.header == (ref_dir / "int.img").read_bytes()[:512]
    assert any("(in-memory image)" in line for line in result.summary)


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="psf_width_um.*readnoise"):
        Noisify(psf_width_um=3, readnoise=2)
    with pytest.raises(TypeError, match="bool"):
        Noisify(readout=True)
    with pytest.raises(TypeError, match="list"):
        Noisify.from_args("-floatfile x.bin")
    job = Noisify(pixel=np.float64(0.2), detpixels=np.int32(8), seed=np.array(3))
    assert job.argv == ["-pixel", "0.2", "-detpixels", "8", "-seed", "3"]


def test_api_write_error_is_output_path_error(tmp_path: Path) -> None:
    from nbnumba.errors import OutputPathError

    res = Noisify(seed=1, nopgm=True).run(image=np.full((4, 4), 3.0, np.float32))
    with pytest.raises(OutputPathError, match="cannot write"):
        res.write(intfile=str(tmp_path / "no" / "x.img"))


# ------------------------------------------------------------------------ pipeline

def pipeline_step(name: str) -> tuple[int, list[str]]:
    steps = load("pipeline", name)["steps"]
    for i, step in enumerate(steps):
        if step.get("prog") == "noisify":
            return i + 1, step["args"]
    raise AssertionError("no noisify step")


@needs_shared
@pytest.mark.parametrize("name", case_names("pipeline"))
def test_pipeline_noisify_step_cli(name: str, tmp_path: Path) -> None:
    case = load("pipeline", name)
    number, args = pipeline_step(name)
    case_dir = COMPANIONS / "pipeline" / name
    shutil.copyfile(case_dir / "sum.bin", tmp_path / "sum.bin")
    code, out, err = run_cli(args, tmp_path)
    assert code == 0, err
    ref = (case_dir / f"step{number:02d}_noisify_stdout.txt").read_text()
    assert out.splitlines() == ref.splitlines()
    compare_kept(case_dir, tmp_path, [k for k in case["keep"] if k in
                                      ("int.img", "noise.img", "img.pgm")])


@needs_shared
@pytest.mark.parametrize("name", case_names("pipeline"))
def test_pipeline_noisify_step_api_from_arrays(name: str, tmp_path: Path) -> None:
    """The combine rule then noisify, all in memory: float_add of the stored float
    images equals sum.bin bit for bit, and Noisify on the list gives C's files."""
    case = load("pipeline", name)
    case_dir = COMPANIONS / "pipeline" / name
    combine = next(s for s in case["steps"] if "combine" in s)["combine"]
    arrays = [np.fromfile(case_dir / f, dtype="<f4").reshape(case["shape"]) for f in combine]
    total = float_add(arrays)
    assert total.tobytes() == (case_dir / "sum.bin").read_bytes()
    _, args = pipeline_step(name)
    result = Noisify.from_args(args).run(image=arrays)
    result.write(tmp_path)
    compare_kept(case_dir, tmp_path, [k for k in case["keep"] if k in
                                      ("int.img", "noise.img", "img.pgm")])


@needs_shared
def test_noisify_add_and_float_add_tool(tmp_path: Path) -> None:
    """noisify-nb -add and nb-float-add both follow the combine rule ((a + b) + c)."""
    name = "pipe_water_air_spots_readout"
    case_dir = COMPANIONS / "pipeline" / name
    for f in ("water.bin", "air.bin", "spots.bin"):
        shutil.copyfile(case_dir / f, tmp_path / f)
    code, out, err = run_cli(["water.bin", "air.bin", "spots.bin", "-o", "sum.bin"], tmp_path,
                             prog=float_add_main)
    assert code == 0, err
    assert (tmp_path / "sum.bin").read_bytes() == (case_dir / "sum.bin").read_bytes()
    _, args = pipeline_step(name)
    args = ["water.bin" if a == "sum.bin" else a for a in args] + ["-add", "air.bin",
                                                                   "-add", "spots.bin"]
    code, out, err = run_cli(args, tmp_path)
    assert code == 0, err
    compare_kept(case_dir, tmp_path, ["int.img", "noise.img", "img.pgm"])


# ------------------------------------------------------------ quirks and refusals

def write_floats(path: Path, values) -> None:
    np.asarray(values, dtype="<f4").tofile(path)


def test_negative_adu_wraps_as_gcc_build(tmp_path: Path) -> None:
    """Negative ADU (no offset, negative photons) converts as gcc's x86-64 noisify.c:
    a 32-bit truncating conversion whose low bits are kept (values from a C run)."""
    vals = np.zeros(16, np.float32)
    vals[:8] = [0, -5.3, -1e10, np.nan, -np.inf, np.inf, -70000.7, -3e9]
    write_floats(tmp_path / "neg.bin", vals)
    common = ["-floatfile", "neg.bin", "-detpixels", "4", "-nonoise", "-adc", "0", "-seed", "1"]
    code, out, err = run_cli(common + ["-bits", "32", "-intfile", "i32.img"], tmp_path)
    assert code == 0, err
    code, out, err = run_cli(common + ["-intfile", "i16.img"], tmp_path)
    assert code == 0, err
    assert out.count("WARNING: negative intensity in neg.bin") == 5
    assert "maximum value in input file: inf ( inf on photon scale)" in out
    i32 = smv_pixels((tmp_path / "i32.img").read_bytes())
    i16 = smv_pixels((tmp_path / "i16.img").read_bytes())
    assert i32[:8].tolist() == [0, 4294967291, 2147483648, 2147483648, 2147483648, 65535,
                                4294897296, 2147483648]
    assert i16[:8].tolist() == [0, 65531, 0, 0, 0, 65535, 61072, 0]


def test_psf_last_argument_does_what_c_meant(tmp_path: Path) -> None:
    write_floats(tmp_path / "a.bin", np.full(64, 5.0))
    code, out, err = run_cli(["-floatfile", "a.bin", "-seed", "1", "-psf"], tmp_path)
    assert code == 0
    assert "-psf is the last argument" in err
    assert "PSF" not in out


@pytest.mark.parametrize("flags, warning", [
    (["-psf", "bogus"], "warning: -psf bogus: neither 'gauss' nor 'fiber' in it; noisify.c "
                        "turns the PSF off"),
    (["-psf", "gauss", "-psf_fwhm", "-5"], "warning: -psf_fwhm -5: noisify.c applies no PSF "
                                           "unless its FWHM is above 0 um"),
    (["-psf", "fiber", "-psf_fwhm", "0"], "warning: -psf_fwhm 0: noisify.c applies no PSF "
                                          "unless its FWHM is above 0 um"),
])
def test_psf_that_c_turns_off_is_warned(flags: list[str], warning: str,
                                        tmp_path: Path) -> None:
    """C runs without a PSF (its files: those of a run without -psf); we say so once."""
    write_floats(tmp_path / "a.bin", np.arange(64.0))
    base = ["-floatfile", "a.bin", "-seed", "1", "-nopgm"]
    code, plain, err = run_cli([*base, "-noisefile", "plain.img", "-intfile", "plain_i.img"],
                               tmp_path)
    assert code == 0 and "PSF" not in err, err
    code, out, err = run_cli([*base, *flags, "-noisefile", "n.img", "-intfile", "i.img"],
                             tmp_path)
    assert code == 0, err
    assert err.splitlines().count(warning) == 1, err
    assert "applying PSF" not in out
    for ours, theirs in (("n.img", "plain.img"), ("i.img", "plain_i.img")):
        assert (tmp_path / ours).read_bytes() == (tmp_path / theirs).read_bytes()
    code, out, err = run_cli([*base, "-psf", "gauss", "-psf_fwhm", "50"], tmp_path)
    assert code == 0 and "applying PSF" in out, err
    assert "-psf gauss:" not in err and "-psf_fwhm 50:" not in err, err


def test_bits_other_than_16_32_writes_header_only(tmp_path: Path) -> None:
    write_floats(tmp_path / "a.bin", np.full(64, 5.0))
    code, out, err = run_cli(["-floatfile", "a.bin", "-bits", "8", "-seed", "1"], tmp_path)
    assert code == 0
    for name in ("intimage.img", "noiseimage.img"):
        data = (tmp_path / name).read_bytes()
        assert len(data) == 512 and data.startswith(b"SIZE1=8;\nSIZE2=8;\n")
    assert "writing intimage.img" not in out


def test_psf_wrap_reaches_next_row(tmp_path: Path) -> None:
    """One photon source at the right edge: C's x > xpixels test puts taps of column
    xpixels onto column 0 of the next row."""
    img = np.zeros((8, 8), np.float32)
    img[3, 7] = 100.0
    res = Noisify(detpixels=8, nonoise=True, psf="gauss", psf_fwhm=150, psf_radius=2,
                  pixel=0.1, seed=1).run(image=img)
    assert res.photons[4, 0] > res.photons[4, 1] > 0  # wrapped tap (dx=1) and its neighbour
    assert any("line 901" in w for w in res.warnings)


def test_psf_is_thread_count_independent() -> None:
    import numba

    from nbnumba.kernels import noisify as k

    rng = np.random.default_rng(3)
    img = rng.poisson(20.0, size=(37, 41)).astype(np.float32)
    kernel = k.psf_kernel(k.GAUSS, 2.5, 2.5 * 0.652383013252053, 6)
    for user in (6, 0):
        radii, lost, used = k.psf_radii(img.ravel(), k.GAUSS, 2.5, 1.63, user, 41)
        outs = []
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            outs.append(k.psf_apply(img.ravel(), 41, 37, kernel, 6, radii, used, user > 0,
                                    0.1))
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert outs[0].tobytes() == outs[1].tobytes()


@pytest.mark.parametrize("psftype, fwhm, radius", [(1, 0.46, 23), (1, 3.3, 9), (2, 2.5, 11)])
def test_psf_kernel_is_cs_table(psftype: int, fwhm: float, radius: int) -> None:
    """The kernel table holds C's values bit for bit (lines 808-827, libm's atan/erf in
    C's expressions), zero outside the disc."""
    import math

    from nbnumba.kernels import noisify as k

    g = fwhm * 0.652383013252053

    def fiber(x, y):
        return math.atan((x * y) / (g * math.sqrt(g * g + x * x + y * y))) / 2.0 / math.pi

    def gauss(x, y):
        return 0.125 * (math.erf(2 * x * math.sqrt(math.log(2)))
                        * math.erf(y * math.sqrt(math.log(16)))
                        * math.sqrt(math.log(16) / math.log(2)))

    size = 2 * radius + 1
    want = np.zeros(size * size)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            if psftype == 1:
                x, y, p, f = float(dx), float(dy), 1.0, fiber
            else:
                x, y, p, f = dx / fwhm, dy / fwhm, 1.0 / fwhm, gauss
            want[size * (radius + dy) + radius + dx] = (
                f(x + p / 2.0, y + p / 2.0) - f(x + p / 2.0, y - p / 2.0)
                - f(x - p / 2.0, y + p / 2.0) + f(x - p / 2.0, y - p / 2.0))
    got = k.psf_kernel(psftype, fwhm, g, radius)
    assert got.tobytes() == want.tobytes()


def test_psf_wraps_only_where_a_tap_reaches_the_next_row() -> None:
    from nbnumba.kernels import noisify as k

    radius = np.zeros(12, np.int64)  # 4 columns x 3 rows
    used = np.ones(12, np.bool_)
    radius[3] = 1  # right edge of row 0: x == 4 is column 0 of row 1
    assert k.psf_wraps(radius, used, 4, 3)
    assert not k.psf_wraps(radius, ~used, 4, 3)
    radius[3], radius[11], radius[5] = 0, 9, 2  # last row falls off; column 1 reaches x=3
    assert not k.psf_wraps(radius, used, 4, 3)
    radius[5] = 3
    assert k.psf_wraps(radius, used, 4, 3)


@functools.lru_cache(maxsize=1)
def _c_psf_loop_compiled():
    """noisify.c's PSF loop (lines 843-919) transcribed literally, serial: the reference
    for :func:`nbnumba.kernels.noisify.psf_apply` (taps beyond the kernel's radius are
    left out: C would read outside its kernel there). Compiled once per session."""
    from numba import njit

    @njit(error_model="numpy")
    def loop(image, xp, yp, kernel, kradius, radius, used, lost):
        size = 2 * kradius + 1
        pixels = xp * yp
        out = np.zeros(pixels + 10, np.float32)
        for i in range(pixels):
            if not used[i]:
                continue
            x0 = i % xp
            y0 = i // xp
            r = radius[i]
            for dx in range(-r, r + 1):
                for dy in range(-r, r + 1):
                    if abs(dx) > kradius or abs(dy) > kradius:
                        continue
                    k = size * (size // 2 + dy) + size // 2 + dx
                    if kernel[k] == 0.0:
                        continue
                    if dx * dx + dy * dy > r * r:
                        continue
                    x = x0 + dx
                    y = y0 + dy
                    if x < 0 or x > xp or y < 0 or y > yp:
                        continue
                    j = y * xp + x
                    if j < 0 or j > pixels:
                        continue
                    out[j] = np.float32(np.float64(out[j]) + np.float64(image[i]) * kernel[k])
        res = out[:pixels].copy()
        for j in range(pixels):
            res[j] = np.float32(np.float64(res[j]) + lost)
        return res

    return loop


def _c_psf_loop(image, xp, yp, kernel, kradius, radius, used, lost_per_pixel):
    return _c_psf_loop_compiled()(image, xp, yp, kernel, kradius, radius, used,
                                  lost_per_pixel)


PSF_IMAGES = {
    # name: (slow, fast, psf type, fwhm pixels, user radius)
    "fiber_auto_spots": (23, 31, 1, 0.7, 0),
    "gauss_auto_spots": (29, 17, 2, 1.9, 0),
    "gauss_user_radius": (19, 26, 2, 2.5, 5),
    "fiber_user_radius_wide": (9, 40, 1, 1.1, 30),
    "fiber_one_bright_capped": (12, 15, 1, 0.46, 0),
}


@pytest.mark.parametrize("name", sorted(PSF_IMAGES))
def test_psf_apply_is_c_scatter_loop(name: str) -> None:
    """Both PSF loops (the gather and the scatter psf_apply chooses between) give C's
    loop's float32 sums bit for bit, for every thread count:
    per-pixel automatic radii (bright spots over a faint background, one pixel so bright
    its radius is capped at the image width), user radii reaching past both edges (C's
    x == xpixels wrap, the direct and wrapped taps of one source on the same pixel),
    Gaussian kernels with exact zeros, NaN and zero pixels."""
    import numba

    from nbnumba.kernels import noisify as k

    slow, fast, psftype, fwhm, user = PSF_IMAGES[name]
    rng = np.random.default_rng(len(name))
    img = rng.gamma(1.5, 0.8, size=(slow, fast)).astype(np.float32)
    img[rng.random(img.shape) < 0.1] = 0.0
    for _ in range(4):
        img[rng.integers(slow), rng.integers(fast)] = rng.uniform(50, 3000)
    img[slow // 2, fast - 1] = 400.0  # right edge: wrapped taps
    img[1, 2] = np.nan
    if name == "fiber_one_bright_capped":
        img[:] = 0.0
        img[5, 7] = 1e5
    flat = img.ravel()
    g = fwhm * 0.652383013252053
    maxwidth = max(slow, fast)
    finite = flat[~np.isnan(flat)]
    if user:
        kradius = min(user, maxwidth)
    else:
        m = float(finite.max())
        lost = np.sqrt(m) / 10
        if psftype == k.GAUSS:
            kradius = int(1 + np.ceil(np.sqrt(-np.log(lost / m) / np.log(4) / 2) * fwhm))
        else:
            kradius = int(1 + np.ceil(g * (m / lost)))
        kradius = min(kradius, maxwidth)
    kernel = k.psf_kernel(psftype, fwhm, g, kradius)
    radii, _, used = k.psf_radii(flat, psftype, fwhm, g, user, maxwidth)
    assert radii[used].max() >= min(kradius, 5)
    want = _c_psf_loop(flat, fast, slow, kernel, kradius, radii, used, 0.125)
    args = (flat, fast, slow, kernel, kradius, radii, used)
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            got = {"apply": k.psf_apply(*args, user > 0, 0.125),
                   "gather": k.psf_gather(*args, user > 0, 0.125),
                   "scatter": k.psf_scatter(*args, 0.125)}
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        for how, result in got.items():
            assert result.tobytes() == want.tobytes(), how


BAD = [
    (["-seed", "1"], 2, "no input float image"),
    (["-floatfile", "missing.bin"], 3, "-floatfile missing.bin: cannot read it"),
    (["-floatfile", "empty.bin"], 3, "empty"),
    (["-floatfile", "a.bin", "-detpixels", "100"], 3, "fewer than"),
    (["-floatfile", "a.bin", "-header", "a.bin"], 3, "-header a.bin"),
    (["-floatfile", "a.bin", "-add", "short.bin"], 3, "-add short.bin"),
    (["-floatfile", "a.bin", "-add"], 2, "-add needs"),
    (["-floatfile", "a.bin", "-detpixels_x", "-8", "-detpixels_y", "8"], 2, "pixel image"),
    # checked before anything is read or computed (issue 24)
    (["-floatfile", "a.bin", "-intfile", "nodir/x.img"], 3,
     "-intfile nodir/x.img: folder nodir does not exist"),
    (["-floatfile", "a.bin", "-noisefile", "nodir/x.img"], 3,
     "-noisefile nodir/x.img: folder nodir does not exist"),
]


@pytest.mark.parametrize("args,code,text", BAD)
def test_bad_input_one_line_exit_code_no_leftovers(args, code, text, tmp_path: Path) -> None:
    write_floats(tmp_path / "a.bin", np.full(64, 5.0))
    write_floats(tmp_path / "short.bin", np.full(10, 5.0))
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "a.bin").chmod(0o644)
    before = sorted(p.name for p in tmp_path.iterdir())
    got, out, err = run_cli(args, tmp_path)
    assert got == code, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("noisify-nb: error: ") and text in lines[-1], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing half-written


def test_negative_sizes_run_as_in_c(tmp_path: Path) -> None:
    """-detpixels -8 on 64 floats: C writes SIZE1=-8 and a "-8 -8" PGM; so do we."""
    write_floats(tmp_path / "a.bin", np.full(64, 5.0))
    code, out, err = run_cli(["-floatfile", "a.bin", "-detpixels", "-8", "-seed", "1"],
                             tmp_path)
    assert code == 0, err
    assert b"SIZE1=-8;\nSIZE2=-8;" in (tmp_path / "intimage.img").read_bytes()
    assert (tmp_path / "image.pgm").read_bytes().startswith(b"P5\n-8 -8\n")
    assert "325 photons on noise image (0 overloads)" in out  # C's line for this run


def test_parse_quirks() -> None:
    o, w = parse_args(["-bin", "x.bin", "-detpixels_x", "30", "-psf", "gaussian",
                       "-psf_radius", "3.9", "-seed", "-5", "-calib_seed", "7", "-phistep", "2"])
    assert o.floatfilename == "x.bin" and o.xpixels == 30 and o.ypixels == 0
    assert o.psf_radius == 3 and o.seed == 5 and o.calib_seed == -7
    assert o.phi0 == 2.0  # "-phistep" contains "-phi"
    o, w = parse_args(["-psf", "box", "-intfile", "my_floatimage.bin.img"])
    assert o.parse_stdout == ["WARNING: unknown psf type: box\n"]
    assert o.floatfilename == "my_floatimage.bin.img"  # any argument containing it
    assert any("even as the value of -intfile" in x for x in w)
    with pytest.raises(UsageError):
        parse_args(["-add"])


def test_library_errors_are_nb_errors(tmp_path: Path) -> None:
    with inside(tmp_path), pytest.raises(InputFileError):
        Noisify(floatfile="nothing.bin").run()


# ----------------------------------------------------------------------------- fuzz

FLAG_VALUES = {
    "-scale": ["0.5", "2", "1e3", "-1"], "-gain": ["1", "2.5", "0"], "-adc": ["40", "0", "10"],
    "-readout": ["0", "3"], "-flicker": ["0", "0.05"], "-calibration": ["0", "0.03", "0.2"],
    "-seed": ["1", "77", "-3"], "-calib_seed": ["5", "123"], "-psf": ["gauss", "fiber", "x"],
    "-psf_fwhm": ["50", "150", "0"], "-psf_radius": ["0", "2", "5", "-1"],
    "-bits": ["16", "32", "8"], "-pixel": ["0.1", "0.2"], "-distance": ["100", "50"],
    "-lambda": ["1", "1.5"], "-Xbeam": ["1", "2.5"], "-Ybeam": ["0.3"], "-phi": ["10"],
    "-osc": ["0.5"], "-fluence": ["1e29"], "-detpixels_x": ["12", "16"],
    "-detpixels_y": ["12"], "-detsize": ["2"],
}
SWITCHES = ["-nonoise", "-nopgm"]


@st.composite
def command_lines(draw) -> list[str]:
    args = ["-floatfile", "in.bin"]
    for flag in draw(st.lists(st.sampled_from(sorted(FLAG_VALUES) + SWITCHES), max_size=7)):
        if flag in SWITCHES:
            args.append(flag)
        else:
            args += [flag, draw(st.sampled_from(FLAG_VALUES[flag]))]
    if "-seed" not in args:
        args += ["-seed", "2"]
    return args


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command_lines())
def test_fuzz_flags(tmp_path_factory, args: list[str]) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    img = np.random.default_rng(len(args)).gamma(2.0, 20.0, size=192).astype(np.float32)
    img[5] = 0.0
    write_floats(folder / "in.bin", img)
    code, out, err = run_cli(args, folder)
    assert code in EXIT_CODES
    assert "Traceback" not in err and "internal error" not in err
    cbin = os.environ.get("NOISIFY_C_BIN")
    if not cbin or code != 0:
        return
    cdir = folder / "c"
    cdir.mkdir()
    shutil.copyfile(folder / "in.bin", cdir / "in.bin")
    proc = subprocess.run([cbin, *args], cwd=cdir, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert out.splitlines() == proc.stdout.splitlines()
    for f in sorted(p.name for p in cdir.iterdir() if p.name != "in.bin"):
        assert (folder / f).read_bytes() == (cdir / f).read_bytes(), f


@pytest.mark.parametrize("bright", [False, True])
def test_gauss_auto_radius_below_001_photons_as_gcc_build(bright: bool, tmp_path: Path) -> None:
    """-nonoise, Gaussian PSF, automatic radius, pixels of 0 < I < 0.01: sqrt of a negative
    number in C (UB); gcc's build renders nothing for them (checked against it: same
    stdout and files; compared again here when NOISIFY_C_BIN is set)."""
    img = np.full(64, 0.005, np.float32)
    if bright:
        img[10], img[20] = 3.0, 0.5
    write_floats(tmp_path / "tiny.bin", img)
    args = ["-floatfile", "tiny.bin", "-nonoise", "-psf", "gauss", "-psf_fwhm", "200",
            "-seed", "1"]
    code, out, err = run_cli(args, tmp_path)
    assert code == 0 and "undefined in noisify.c" in err
    ints = smv_pixels((tmp_path / "intimage.img").read_bytes())
    if not bright:
        assert "auto-selected psf_radius = -2147483648 pixels" in out
        assert (ints == 40).all()
    cbin = os.environ.get("NOISIFY_C_BIN")
    if cbin:
        cdir = tmp_path / "c"
        cdir.mkdir()
        shutil.copyfile(tmp_path / "tiny.bin", cdir / "tiny.bin")
        proc = subprocess.run([cbin, *args], cwd=cdir, capture_output=True, text=True)
        assert proc.stdout == out
        for f in ("intimage.img", "image.pgm"):
            assert (cdir / f).read_bytes() == (tmp_path / f).read_bytes()


def test_lgamma_table_size_follows_the_brightest_finite_mean() -> None:
    """The shot-noise kernel makes its own gammln table: none when every finite mean is
    below 12 (C's rejection branch never runs), else up to 10 sigma above the brightest
    finite mean, capped; NaN and inf pixels do not count."""
    from nbnumba.kernels import noisify as k
    from nbnumba.rng import lgamma_table

    f32 = np.float32
    assert k.lgamma_for(np.array([1, 11.9, np.nan, -np.inf], dtype=f32)).size == 0
    assert k.lgamma_for(np.array([np.nan], dtype=f32)).size == 0
    table = k.lgamma_for(np.array([3, 400, np.inf, np.nan], dtype=f32))
    assert table.size == int(400 + 10 * 20 + 100)
    assert table.tobytes() == lgamma_table(700).tobytes()
    assert k.lgamma_for(np.array([1e12], dtype=f32)).size == k.LGAMMA_MAX
