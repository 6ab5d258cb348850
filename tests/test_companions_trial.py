"""Findings of a new user's trial of nonbragg-nb, noisify-nb and nb-float-add.

Each test pins one finding: the command line a user ran, what serial C does with it
and what we must do. The C-differential tests run C (``NONBRAGG_C_BIN``,
``NOISIFY_C_BIN``) and ours in separate fresh folders holding copies of
``../shared/companions/inputs`` and compare exit code, stdout and every file
written byte for byte; they skip without the variable. The others hold the same
behaviour without C. Everything skips without ``../shared``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main

from nbnumba.cli.noisify import main as noisify_main
from nbnumba.cli.nonbragg import main as nonbragg_main

REPO = Path(__file__).resolve().parents[1]
COMPANIONS = Path(os.environ.get("NB_COMPANIONS", REPO.parent / "shared" / "companions"))
PROGRAMS = {"nonbragg": (nonbragg_main, "NONBRAGG_C_BIN"),
            "noisify": (noisify_main, "NOISIFY_C_BIN")}


def fresh_folder(folder: Path) -> Path:
    if not (COMPANIONS / "README.md").is_file():
        pytest.skip("../shared/companions is not present")
    folder.mkdir(parents=True, exist_ok=True)
    for f in (COMPANIONS / "inputs").iterdir():
        shutil.copyfile(f, folder / f.name)
    return folder


def run_ours(prog: str, args: list[str], folder: Path) -> tuple[int, str, str]:
    return run_main(args, folder, PROGRAMS[prog][0])


def c_binary(prog: str) -> str:
    path = os.environ.get(PROGRAMS[prog][1])
    if not path or not Path(path).is_file():
        pytest.skip(f"{PROGRAMS[prog][1]} is not set to a C build")
    return path


def new_files(folder: Path, before: set[str]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name not in before}


def pgm_meant(data: bytes) -> bytes:
    """nonBragg.c's PGM cut to header + W*H bytes (it writes twice that many)."""
    head = data.split(b"\n", 4)
    width, height = (int(v) for v in head[1].split())
    return data[:len(data) - len(head[4]) + width * height]


def against_c(prog: str, args: list[str], tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    """Run C and ours on ``args``; assert same exit code 0, stdout and files."""
    c_bin = c_binary(prog)
    c_dir = fresh_folder(tmp_path / "c")
    ours_dir = fresh_folder(tmp_path / "ours")
    before = set(os.listdir(c_dir))
    argv = list(args) + (["-noprogress"] if prog == "nonbragg" else [])
    c = subprocess.run([c_bin, *argv], cwd=c_dir, capture_output=True)
    code, out, err = run_ours(prog, argv, ours_dir)
    assert c.returncode == 0
    assert code == 0, err
    c_lines = [ln for ln in c.stdout.decode().splitlines() if "% done" not in ln]
    assert out.splitlines() == c_lines
    c_files, ours = new_files(c_dir, before), new_files(ours_dir, before)
    assert sorted(c_files) == sorted(ours)
    for name, data in c_files.items():
        if prog == "nonbragg" and name.endswith(".pgm"):
            data = pgm_meant(data)
        assert ours[name] == data, name
    return out, ours


def write_floats(path: Path, values) -> None:
    np.asarray(values, dtype="<f4").tofile(path)


# ------------------------------------------------------------- nonBragg: wavelength sign

NEGATIVE_WAVELENGTHS = [
    "-stol water.stol -detpixels 32 -seed 1 -lambda -1",
    "-stol water.stol -detpixels 32 -seed 1 -energy -12398.42",
    "-stol shortwater.stol -detpixels 24 -nonoise -lambda -1.5 -dispersion 10 -dispsteps 3",
    # -energy 0: lambda = inf, stol = 0 at every pixel: a finite image (we refused it)
    "-stol water.stol -detpixels 16 -seed 1 -energy 0",
    "-stol water.stol -detpixels 16 -seed 1 -lambda -inf -dispersion 10 -dispsteps 3",
]


@pytest.mark.parametrize("args", NEGATIVE_WAVELENGTHS)
def test_negative_wavelength_runs_as_c(args: str, tmp_path: Path) -> None:
    """nonBragg.c's stol = |(d - i)/lambda|/2 is finite for lambda < 0: it writes the
    image of |lambda|. We refused it (exit 2)."""
    against_c("nonbragg", args.split(), tmp_path)


def test_negative_wavelength_is_the_image_of_its_magnitude(tmp_path: Path) -> None:
    folder = fresh_folder(tmp_path)
    base = ["-stol", "water.stol", "-detpixels", "32", "-nonoise", "-nopgm"]
    code, _, err = run_ours("nonbragg", base + ["-lambda", "-1", "-floatfile", "neg.bin"],
                            folder)
    assert code == 0, err
    assert "negative wavelength" in err
    code, _, err = run_ours("nonbragg", base + ["-lambda", "1", "-floatfile", "pos.bin"],
                            folder)
    assert code == 0, err
    assert (folder / "neg.bin").read_bytes() == (folder / "pos.bin").read_bytes()


# ------------------------------------------------------ noisify: NaN and huge ADU values

def nan_inputs(folder: Path) -> None:
    values = np.full(100, np.inf, dtype=np.float32)
    values[3] = np.nan
    values[5] = -np.inf
    values[7] = -3.0
    values[9] = 1e30
    values[11] = 3e9
    write_floats(folder / "weird.bin", values)
    # noiseless tail: the last pixels % 8 go through gcc's scalar (64-bit) conversion
    tail = np.full(13, -1e12, dtype=np.float32)
    tail[::3] = np.nan
    write_floats(folder / "tail.bin", tail)


NAN_CASES = [
    "-floatfile weird.bin -seed 1",
    "-floatfile weird.bin -seed 1 -bits 32",
    "-floatfile spots128.bin -seed 1 -readout 1e10 -bits 32",
    "-floatfile tail.bin -detpixels_x 13 -detpixels_y 1 -bits 32 -nonoise -seed 1",
]


@pytest.mark.parametrize("args", NAN_CASES)
def test_nan_and_huge_adu_as_c(args: str, tmp_path: Path) -> None:
    """C's noise loop converts with a 64-bit cvttsd2si (NaN -> 0, -1e10 -> its low 32
    bits); its noiseless loop with a packed 32-bit one for blocks of 8 pixels and the
    64-bit one for the rest. stdout prints a negative NaN sum as ``-nan``."""
    nan_inputs(fresh_folder(tmp_path / "c"))
    nan_inputs(fresh_folder(tmp_path / "ours"))
    against_c("noisify", args.split(), tmp_path)


def test_noise_image_conversions_without_c(tmp_path: Path) -> None:
    folder = fresh_folder(tmp_path)
    nan_inputs(folder)
    code, out, err = run_ours("noisify", ["-floatfile", "weird.bin", "-seed", "1",
                                          "-bits", "32", "-calibration", "0"], folder)
    assert code == 0, err
    assert "-nan photons on noise image" in out
    noise = np.fromfile(folder / "noiseimage.img", dtype="<u4", offset=512)
    assert noise[3] == 0 and noise[0] == 0  # NaN counts: the 64-bit conversion's low bits
    code, out, err = run_ours("noisify", ["-floatfile", "tail.bin", "-detpixels_x", "13",
                                          "-detpixels_y", "1", "-bits", "32", "-nonoise",
                                          "-seed", "1", "-intfile", "t.img"], folder)
    assert code == 0, err
    ints = np.fromfile(folder / "t.img", dtype="<u4", offset=512)
    low32 = (int(np.float32(-1e12)) + 40) % 2**32
    # pixels 0..7: packed conversion (INT_MIN); 8..12: scalar 64-bit (NaN -> 0)
    assert list(ints[:8]) == [2**31] * 8
    assert list(ints[8:]) == [low32, 0, low32, low32, 0]


# ------------------------------------------------------- nonBragg: float32 overflow

def huge_table(folder: Path) -> None:
    (folder / "huge.stol").write_text("0 1e30\n0.1 1e30\n0.2 1e30\n0.5 1e30\n")


@pytest.mark.parametrize("args", ["-stol huge.stol -detpixels 32 -seed 1",
                                  "-stol water.stol -detpixels 32 -seed 1 -point_pixel "
                                  "-distance 0"])
def test_infinite_pixels_clear_warning(args: str, tmp_path: Path) -> None:
    """F = 1e30 (F^2 overflows float32), or a pixel at R = 0 with -point_pixel: C writes
    inf pixels and prints inf/-nan stats. We printed numpy's 'invalid value encountered
    in subtract'; now one line that says what happened."""
    folder = fresh_folder(tmp_path)
    huge_table(folder)
    code, out, err = run_ours("nonbragg", args.split(), folder)
    assert code == 0, err
    assert "encountered" not in err
    assert "infinite (beyond float32" in err
    assert "rmsd= -nan" in out


def test_infinite_pixels_as_c(tmp_path: Path) -> None:
    huge_table(fresh_folder(tmp_path / "c"))
    huge_table(fresh_folder(tmp_path / "ours"))
    against_c("nonbragg", "-stol huge.stol -detpixels 32 -seed 1".split(), tmp_path)


# --------------------------------------------- noisify: a PSF without an int radius

NO_INT_RADIUS = [
    "-floatfile spots128.bin -seed 1 -psf gauss -pixel 0",
    "-floatfile spots128.bin -seed 1 -psf gauss -psf_fwhm 1e300",
    "-floatfile spots128.bin -seed 1 -psf fiber -psf_fwhm 1e12 -nonoise",
    "-floatfile spots128.bin -seed 1 -psf fiber -pixel 0 -nonoise",
]


@pytest.mark.parametrize("args", NO_INT_RADIUS)
def test_psf_without_int_radius_as_c(args: str, tmp_path: Path) -> None:
    """The automatic radius 1+ceil(...) is inf or beyond int: C's (int) gives INT_MIN,
    nothing renders and the 'lost photons' come back evenly. We stopped with exit 2 and
    'nanoBragg.c's setup fail (OverflowError ...)'."""
    against_c("noisify", args.split(), tmp_path)


def test_psf_without_int_radius_runs(tmp_path: Path) -> None:
    folder = fresh_folder(tmp_path)
    code, out, err = run_ours("noisify", ["-floatfile", "spots128.bin", "-seed", "1",
                                          "-psf", "gauss", "-psf_fwhm", "1e300", "-nonoise",
                                          "-calibration", "0"], folder)
    assert code == 0, err
    others = [ln for ln in err.splitlines() if "SMV headers take" not in ln]
    assert "encountered" not in err and not any("nanoBragg.c" in ln for ln in others)
    assert "no int rendering radius" in err
    assert "auto-selected psf_radius = -2147483648 pixels" in out
    ints = np.fromfile(folder / "intimage.img", dtype="<u2", offset=512)
    assert np.unique(ints).size == 1  # the photons spread evenly


def test_arithmetic_failure_names_the_right_c_program() -> None:
    from nbnumba.cli.common import failure

    for prog, name in [("noisify-nb", "noisify.c"), ("nonbragg-nb", "nonBragg.c"),
                       ("nanobragg-nb", "nanoBragg.c")]:
        code, message = failure(OverflowError("x"), prog)
        assert code == 2 and f"{name}'s setup fail" in message


# ------------------------------------------------------------ nonBragg: NaN numbers

NAN_NUMBERS = [
    "-stol water.stol -detpixels 16 -seed 1 -scale nan",
    "-stol water.stol -detpixels 16 -seed 1 -pgmscale nan",
    "-stol water.stol -detpixels 16 -seed 1 -scale -nan -pgmscale -nan",
    "-stol water.stol -detpixels 16 -seed 1 -polar -nan",
]


@pytest.mark.parametrize("args", NAN_NUMBERS)
def test_nan_numbers_as_c(args: str, tmp_path: Path) -> None:
    """C keeps a NaN -scale/-pgmscale (it tests `scale <= 0.0`): intfile_scale = nan and
    an int image of 0s; we took the automatic scale. `-polar -nan` prints `-nan`."""
    against_c("nonbragg", args.split(), tmp_path)


def test_nan_scale_without_c(tmp_path: Path) -> None:
    folder = fresh_folder(tmp_path)
    code, out, err = run_ours("nonbragg", "-stol water.stol -detpixels 16 -nonoise -scale "
                                          "nan -polar -nan".split(), folder)
    assert code == 0, err
    assert "intfile_scale = nan" in out and "Kahn polarization factor: -nan" in out
    assert "-scale nan: nonBragg.c keeps it" in err
    assert not np.fromfile(folder / "intimage.img", dtype="<u2", offset=512).any()
    # NaN pixels from the numbers given are not blamed on the table
    assert "repeated stol" not in err and "the numbers given make them NaN" in err


# ------------------------------------------------------- stdout on a full disk

class FullStdout(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")

    def flush(self) -> None:
        raise OSError(28, "No space left on device")


def run_full_stdout(main, args: list[str], folder: Path) -> tuple[int, str]:
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(FullStdout()), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


@pytest.mark.parametrize("prog, args", [
    ("noisify", ["-floatfile", "water256.bin", "-seed", "1"]),
    ("nonbragg", ["-stol", "water.stol", "-detpixels", "8"]),
    ("float_add", ["water256.bin", "water256.bin", "-o", "sum.bin"]),
])
def test_full_stdout_one_clear_line_no_files(prog: str, args: list[str],
                                             tmp_path: Path) -> None:
    """`noisify-nb ... > /dev/full` said '[Errno 28] No space left on device' (which
    file?); nb-float-add also left its sum behind while exiting 4."""
    from nbnumba.cli.float_add import main as float_add_main

    main = float_add_main if prog == "float_add" else PROGRAMS[prog][0]
    folder = fresh_folder(tmp_path)
    before = set(os.listdir(folder))
    code, err = run_full_stdout(main, args, folder)
    assert code == 4
    assert err.strip().endswith("error: cannot write stdout: No space left on device")
    assert set(os.listdir(folder)) == before


def test_float_add_in_place_keeps_the_sum_on_failure(tmp_path: Path) -> None:
    """`nb-float-add acc.bin next.bin -o acc.bin` replaced its input; a failure after the
    write must not delete it (the clean-up would lose the user's data)."""
    from nbnumba.cli.float_add import main as float_add_main

    folder = fresh_folder(tmp_path)
    shutil.copyfile(folder / "water256.bin", folder / "acc.bin")
    code, _ = run_full_stdout(float_add_main, ["acc.bin", "water256.bin", "-o", "acc.bin"],
                              folder)
    assert code == 4
    acc = np.fromfile(folder / "acc.bin", dtype="<f4")
    water = np.fromfile(folder / "water256.bin", dtype="<f4")
    assert np.array_equal(acc, water + water)


# ----------------------------------------------------------- API: write errors

def test_api_write_errors_are_output_path_errors(tmp_path: Path) -> None:
    """NonBraggResult.write raised a bare FileNotFoundError naming its temporary
    ('.x.bin.z1iu08iy.tmp'); NoisifyResult.write('a_file') a bare FileExistsError."""
    import nbnumba as nb
    from nbnumba.errors import OutputPathError

    folder = fresh_folder(tmp_path)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = nb.NonBragg(stol="water.stol", detpixels=8, nonoise=True).run()
        with pytest.raises(OutputPathError, match=r"cannot write nodir/x\.bin: No such"):
            result.write(floatfile="nodir/x.bin")
        noisy = nb.Noisify(seed=1).run(image=np.ones((4, 4), dtype=np.float32))
        with pytest.raises(OutputPathError, match="cannot write water256.bin"):
            noisy.write("water256.bin")
    finally:
        os.chdir(cwd)


def test_noisify_cli_names_the_output_as_given(tmp_path: Path) -> None:
    folder = fresh_folder(tmp_path)
    code, _, err = run_ours("noisify", ["-floatfile", "water256.bin", "-noisefile",
                                        "nodir/x.bin"], folder)
    assert code == 3
    # checked before anything is read or computed (issue 24), named as given
    assert err.strip().endswith("error: -noisefile nodir/x.bin: folder nodir does not exist")


# ------------------------------------------------------- API: in-memory images

def test_api_image_size_mismatch_is_refused() -> None:
    """Noisify(detpixels=100).run(image=<256x256 array>) silently used the first 10000
    values in memory order (as C reads a longer file), then warned (issue 24: raise)."""
    import nbnumba as nb

    image = np.ones((256, 256), dtype=np.float32)
    with pytest.raises(nb.errors.UsageError, match="a 256x256 .* array, not the 100x100"):
        nb.Noisify(seed=1, detpixels=100).run(image=image)
    res = nb.Noisify(seed=1).run(image=image)  # the array's own shape: nothing to say
    assert res.noise_image.shape == (256, 256)


def test_api_complex_image_is_refused() -> None:
    """A complex array printed numpy's ComplexWarning and dropped the imaginary part."""
    import nbnumba as nb
    from nbnumba.errors import UsageError

    with pytest.raises(UsageError, match="real numbers"):
        nb.Noisify(seed=1).run(image=np.ones((8, 8), dtype=np.complex64))


# ------------------------------------------------------------------- first contact

@pytest.mark.parametrize("prog", ["nonbragg", "noisify"])
@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_help_flag_gives_help_and_exit_0(prog: str, flag: str, capsys) -> None:
    """`nonbragg-nb -h` printed C's usage, 'warning: -h matches no nonBragg.c option'
    and an error line, exit 2 (C: usage, exit 9); nanobragg-nb -h gives help, exit 0."""
    main = PROGRAMS[prog][0]
    assert main([flag]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("nonBragg amorphous" if prog == "nonbragg"
                                   else "noisify - add noise")
    assert "all flags" in captured.out and "exit codes:" in captured.out
    if prog == "noisify":
        assert "-add F" in captured.out and "-calibration f (default 0.03!)" in captured.out
    else:
        assert "-detpixels N (-detpixels_f/_s)" in captured.out


@pytest.mark.parametrize("prog", ["nonbragg", "noisify"])
def test_version_flag(prog: str, capsys) -> None:
    from nbnumba import __version__

    assert PROGRAMS[prog][0](["--version"]) == 0
    assert capsys.readouterr().out == f"{prog}-nb (nbnumba) {__version__}\n"


# ----------------------------------------------------- nonBragg: the sign of zero

def test_negative_molecules_zero_pixels_are_plus_zero(tmp_path: Path) -> None:
    """ice.stol (F = 0 rows) with -thick -1: C adds -0.0 onto its calloc'd +0.0 and
    writes +0.0 ('mean= 0'); we wrote -0.0 ('mean= -0')."""
    folder = fresh_folder(tmp_path)
    code, out, err = run_ours("nonbragg", "-stol ice.stol -detpixels 8 -thick -1 -nonoise "
                                          "-floatfile f.bin".split(), folder)
    assert code == 0, err
    image = np.fromfile(folder / "f.bin", dtype="<f4")
    zeros = image == 0.0
    assert zeros.any() and not np.signbit(image[zeros]).any()
    assert "mean= 0 rms= 0 rmsd= 0" in out


def test_negative_molecules_as_c(tmp_path: Path) -> None:
    against_c("nonbragg", "-stol ice.stol -detpixels 8 -thick -1 -seed 1".split(), tmp_path)


NEGATIVE_PIXEL = [
    "-stol water.stol -seed 1 -detpixels 20 -pixel -0.1",
    "-stol water.stol -seed 1 -detpixels_f 20 -detpixels_s 10 -pixel -0.2 -Xbeam 1 -Ybeam 2 "
    "-oversample 2",
]


@pytest.mark.parametrize("args", NEGATIVE_PIXEL)
def test_negative_pixel_with_counts_runs_as_c(args: str, tmp_path: Path) -> None:
    """-detpixels 20 -pixel -0.1: C's count ceil(detsize/pixel) is 20 and it writes a
    finite image; we refused ('pixel count is undefined')."""
    against_c("nonbragg", args.split(), tmp_path)


def test_negative_pixel_warns(tmp_path: Path) -> None:
    folder = fresh_folder(tmp_path)
    code, _, err = run_ours("nonbragg", NEGATIVE_PIXEL[0].split() + ["-nonoise"], folder)
    assert code == 0, err
    assert "-pixel -0.1 mm is negative" in err
    code, _, err = run_ours("nonbragg", "-stol water.stol -pixel 0 -nonoise".split(), folder)
    assert code == 2 and "pixel count is undefined" in err


EMPTY_ROI = [
    "-stol shortwater.stol -seed 1 -detpixels 16 -divsteps 1 -roi 20 30 0 3",
    "-stol shortwater.stol -seed 1 -detpixels 16 -lambda 0 -roi 5 4 0 10",
    "-stol shortwater.stol -seed 1 -detpixels 16 -MW 0 -roi 5 4 0 10 -printout",
]


@pytest.mark.parametrize("args", EMPTY_ROI)
def test_nan_refusals_do_not_apply_to_an_empty_roi(args: str, tmp_path: Path) -> None:
    """With a -roi that holds no pixel C computes nothing and writes zeros, whatever the
    numbers; we refused (no source / wavelength 0 / inf molecules) or crashed
    (IndexError for the -printout weight with no source)."""
    against_c("nonbragg", args.split(), tmp_path)


def test_empty_roi_without_c(tmp_path: Path) -> None:
    folder = fresh_folder(tmp_path)
    code, _, err = run_ours("nonbragg", EMPTY_ROI[0].split() + ["-floatfile", "f.bin"],
                            folder)
    assert code == 0, err
    assert not np.fromfile(folder / "f.bin", dtype="<f4").any()


def test_summaries_are_lines_in_every_result() -> None:
    """NoisifyResult.summary held C's printf chunks with their newlines, while
    NonBraggResult.summary and nbnumba.Result.summary hold lines without them."""
    import nbnumba as nb

    for noise in (True, False):
        res = nb.Noisify(seed=1, nonoise=not noise).run(image=np.ones((8, 8), np.float32))
        assert res.summary[0] == "noisify - add noise to pixels - James Holton 3-19-16"
        assert not any("\n" in line for line in res.summary)
        assert res.stdout == "".join(line + "\n" for line in res.summary)
        assert res.stdout.endswith("integers\n")


def test_unreadable_input_prints_c_usage(tmp_path: Path) -> None:
    """noisify.c prints its usage when the input cannot be opened (floatfile == NULL);
    we printed only the banner (stdout is C's, exit code ours: 3)."""
    folder = fresh_folder(tmp_path)
    code, out, err = run_ours("noisify", ["-floatfile", "nothere.bin", "-seed", "1"], folder)
    assert code == 3
    assert out.splitlines()[1] == "usage: noisify -floatfile floatimage.bin"
    assert err.strip().endswith("nothere.bin: cannot read it: No such file or directory")


def test_float_add_names_the_output_as_given(tmp_path: Path) -> None:
    """nb-float-add ... -o nodir/x.bin said 'cannot write /abs/path/nodir/x.bin'."""
    from nbnumba.cli.float_add import main as float_add_main

    folder = fresh_folder(tmp_path)
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = float_add_main(["water256.bin", "water256.bin", "-o", "nodir/x.bin"])
    finally:
        os.chdir(cwd)
    assert code == 3
    # checked before the inputs are read (issue 24), named as given
    assert err.getvalue().strip() == ("nb-float-add: error: -o nodir/x.bin: folder nodir "
                                      "does not exist")
