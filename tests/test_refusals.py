"""What nanoBragg.c runs, we run: inputs we used to refuse, compared with C's image.

Each row builds its small input files here, runs ``nanobragg-nb`` in-process and
compares the float image with what serial nanoBragg.c wrote for the same command
line: its sum, maximum, argmax and count of non-finite pixels, stored in
``tests/data/refusals_c.json`` (made with ``python tests/test_refusals.py NB_C_BIN``,
a few hundred bytes).  With ``NB_C_BIN`` set, the C program runs too and the
images are compared pixel by pixel.  Rows that C cannot compute (NaN image or a
crash) must stay refused; ``specs/cli.md`` lists every refusal and its C line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nbnumba.cli.main import main

DATA = Path(__file__).resolve().parent / "data" / "refusals_c.json"
BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
        "-detpixels", "32", "-pixel", "0.1", "-distance", "100", "-nonoise", "-nopgm",
        "-noprogress", "-floatfile", "float.bin", "-intfile", "int.img"]

# the ALS 8.3.1 ADSC header of issue 14, as `head --bytes=512 image.img` leaves it
ALS_HEADER = ("{\nHEADER_BYTES=  512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
              "SIZE1=3072;\nSIZE2=3072;\nPIXEL_SIZE=0.102592;\nBIN=2x2;\nDISTANCE=249.98;\n"
              "TWOTHETA=0.00;\nPHI=342.000;\nOSC_START=342.000;\nOSC_RANGE=1.000;\n"
              "WAVELENGTH=0.979340;\nBEAM_CENTER_X=154.96;\nBEAM_CENTER_Y=155.91;\n}\n")
# a header that repeats keys: C's ValueOf takes the last occurrence of the substring
REPEATED_HEADER = ("{\nHEADER_BYTES=  512;\nDIM=2;\nBYTE_ORDER=little_endian;\n"
                   "TYPE=unsigned_short;\nSIZE1=48;\nSIZE2=40;\nPIXEL_SIZE=0.2;\n"
                   "DISTANCE=80;\nWAVELENGTH=1.5;\nBEAM_CENTER_X=3;\nBEAM_CENTER_Y=4;\n"
                   "PIXEL_SIZE=0.1;\nDISTANCE=120;\nWAVELENGTH=1.1;\n}\n")
TWO_SOURCES = ("# Weighted two-source fixture\n# X Y Z weight wavelength(m)\n"
               "0.0 0.0 10.0 1.0 6.2e-10\n0.0 0.0 10.0 0.2 6.2e-10\n")


def _smv(header: str, width: int = 0, height: int = 0, pattern: bool = False) -> bytes:
    head = header.encode("ascii").ljust(512, b" ")
    if not pattern:
        return head
    mask = np.ones((height, width), dtype="<u2")
    mask[::3, :] = 0  # every third row masked, so the layout shows in the image
    mask[:, 5] = 0
    return head + mask.tobytes()


MASK64 = _smv("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
              "SIZE1=64;\nSIZE2=64;\nPIXEL_SIZE=0.1;\nDISTANCE=100;\n}\n", 64, 64, pattern=True)
FILES = {
    "als_header.img": _smv(ALS_HEADER),
    "repeated.img": _smv(REPEATED_HEADER),
    "mask64.img": MASK64,
    "two_sources.txt": TWO_SOURCES.encode(),
    "two_sources_plain.txt": "".join(TWO_SOURCES.splitlines(True)[2:]).encode(),
    "origin_source.txt": b"0 0 0 1 1e-10\n",
    "negative_lambda_source.txt": b"0 0 10 1 -1e-10\n",
    "stol_comment.txt": b"# stol F\n0.1 2.5\n0.2 1.0\n",
    "word.hkl": b"0 0 1 100\n1 0 0 200\n0 1 0 x\n0 0 2 50\n",
}
SOURCE_RUN = ["-lambda", "0.9768", "-default_F", "100", "-cell", "100", "100", "100", "90", "90",
              "90", "-distance", "100", "-detpixels", "64", "-pixel", "0.1", "-oversample", "1",
              "-phisteps", "1", "-mosaic_domains", "1", "-nointerpolate", "-nonoise", "-nopgm",
              "-noprogress", "-floatfile", "float.bin", "-intfile", "int.img"]

# (id, argv, expected): "c" compares with C's image; ("same", id) with another row's
# image (C reads the file differently there); (code, text) is a refusal that stays
CASES = [
    # issue 14, failing input 1: -img of a header only (C zero-fills, uses the header)
    ("img header only", ["-img", "als_header.img", *BASE[:11], "-roi", "1500", "1531",
                         "1500", "1531", *BASE[17:]], "c"),
    ("img header repeats keys", ["-img", "repeated.img", *BASE[:11], *BASE[17:]], "c"),
    # failing input 2: a mask larger than the detector (its first values, 16 wide)
    ("mask larger than detector", ["-mask", "mask64.img", *BASE, "-detpixels", "16"], "c"),
    # C reads past the end of its mask buffer (heap memory; the image happens to be finite)
    ("mask smaller than detector", ["-mask", "mask64.img", *BASE, "-detpixels", "80"],
     (2, "would read past the end of its mask")),
    # failing input 3: '#' lines in -sourcefile: skipped by default, C's reader under -c_parity
    ("sourcefile comments skipped", ["-sourcefile", "two_sources.txt", *SOURCE_RUN],
     ("same", "sourcefile without comments")),
    ("sourcefile without comments", ["-sourcefile", "two_sources_plain.txt", *SOURCE_RUN], "c"),
    ("sourcefile comments as C", ["-c_parity", "-sourcefile", "two_sources.txt", *SOURCE_RUN],
     "c"),
    ("sourcefile comments as C, N 5", ["-c_parity", "-sourcefile", "two_sources.txt",
                                       *SOURCE_RUN, "-N", "5"],
     (3, "wavelength 0 m (or an infinite position): nanoBragg.c's image would be NaN")),
    ("source at the origin", ["-sourcefile", "origin_source.txt", *BASE], "c"),
    ("source wavelength < 0", ["-sourcefile", "negative_lambda_source.txt", *BASE], "c"),
    ("stol with a comment", ["-stol", "stol_comment.txt", *BASE], "c"),
    ("hkl with a word", ["-hkl", "word.hkl", *BASE], "c"),
    # values C computes with (we used to refuse them)
    ("value not a number", [*BASE, "-N", "abc"], "c"),
    ("distance not a number", [*BASE, "-distance", "abc"], "c"),
    ("zero distance", [*BASE, "-distance", "0"], "c"),
    ("negative distance", [*BASE, "-distance", "-100"], "c"),
    ("negative wavelength", [*BASE, "-lambda", "-1"], "c"),
    ("negative pixel", [*BASE, "-pixel", "-0.1"], "c"),
    ("negative N", [*BASE, "-N", "-3"], "c"),
    ("negative water", [*BASE, "-water", "-5"], "c"),
    ("negative fluence", [*BASE, "-fluence", "-1e24"], "c"),
    ("dispersion 250%", [*BASE, "-dispersion", "250", "-dispsteps", "3"], "c"),
    ("zero beam vector", [*BASE, "-beam_vector", "0", "0", "0"], "c"),
    ("zero fdet vector", [*BASE, "-fdet_vector", "0", "0", "0"], "c"),
    ("zero polar vector", [*BASE, "-polar_vector", "0", "0", "0"], "c"),
    ("zero spindle axis", [*BASE, "-spindle_axis", "0", "0", "0"], "c"),
    ("missing -img", ["-img", "nope.img", *BASE], "c"),
    ("missing -mask", ["-mask", "nope.img", *BASE], "c"),
    # C's spread test (line 2795) is false for NaN: unrotated domains, as many as asked
    ("mosaic NaN", [*BASE, "-mosaic", "nan", "-mosaic_dom", "3"], "c"),
    # the ADC offset only enters the int and noise images (see test_adc_not_finite)
    ("adc inf", [*BASE, "-adc", "inf"], "c"),
    ("adc nan", [*BASE, "-adc", "nan"], "c"),
    # -dmin's cut tests dmin > 0.5/stol (line 2763); -density/-MW are overwritten (2098)
    ("dmin NaN", [*BASE, "-dmin", "nan"], "c"),
    ("dmin inf", [*BASE, "-dmin", "inf"], "c"),
    ("density and MW unused", [*BASE, "-density", "nan", "-MW", "inf"], "c"),
    # the attenuation only enters with a sensor thickness (lines 2686-2738)
    ("absorption NaN, no thickness", [*BASE, "-detector_abs", "nan"], "c"),
    ("absorption inf, thickness", [*BASE, "-detector_abs", "1e-320", "-detector_thick", "100"],
     "c"),
    # a non-finite value that nothing in this run's pixel loop uses (judged on the setup)
    ("fudge NaN, square crystal", [*BASE, "-fudge", "nan"], "c"),
    ("beamsize inf without flux", [*BASE, "-beamsize", "inf"], "c"),
    ("ORGX inf under a beam pivot", [*BASE, "-ORGX", "inf"], "c"),
    ("xtalsize -inf", [*BASE, "-xtalsize", "-inf"], "c"),
    ("mosaic -inf", [*BASE, "-mosaic", "-inf"], "c"),
    ("polarization NaN, polarization off", [*BASE, "-polar", "nan", "-nopolar"], "c"),
    # refusals that stay: C's image is NaN there (tests/data has its non-finite count)
    ("fudge NaN, round crystal", [*BASE, "-round_xtal", "-fudge", "nan"],
     (2, "it reaches nanoBragg.c's pixel loop (fudge)")),
    ("ORGX inf, XDS", [*BASE, "-xds", "-ORGX", "inf"], (2, "-ORGX: inf is not a finite number")),
    ("polarization NaN", [*BASE, "-polar", "nan"], (2, "-polar: nan is not a finite number")),
    ("absorption NaN, thickness", [*BASE, "-detector_abs", "nan", "-detector_thick", "100"],
     (2, "makes nanoBragg.c's image NaN")),
    ("absorption inf, thickness oversampled", [*BASE, "-detector_abs", "1e-320",
                                               "-detector_thick", "100", "-oversample_thick"],
     (2, "makes nanoBragg.c's image NaN")),
    ("zero wavelength", [*BASE, "-lambda", "0"], (2, "writes a NaN image")),
    ("hkl with NaN", ["-hkl", "nan.hkl", *BASE], (3, "'nan' is not a finite number")),
    ("osc NaN", [*BASE, "-osc", "nan"], (2, "-osc: nan is not a finite number")),
    ("zero phi steps", [*BASE, "-osc", "0", "-phistep", "0.1"], (2, "that is 0 phi steps")),
    ("zero beam size", [*BASE, "-flux", "1e12", "-beamsize", "0"], (2, "-beamsize 0")),
]
FILES["nan.hkl"] = b"0 0 1 nan\n1 0 0 100\n"
NAN_IN_C = {"zero wavelength", "hkl with NaN", "sourcefile comments as C, N 5", "osc NaN",
            "zero phi steps", "zero beam size", "absorption NaN, thickness",
            "fudge NaN, round crystal", "ORGX inf, XDS", "polarization NaN",
            "absorption inf, thickness oversampled"}


def _stats(path: Path) -> dict:
    image = np.fromfile(path, dtype="<f4")
    finite = np.isfinite(image)
    if not finite.any():
        return {"pixels": int(image.size), "nonfinite": int((~finite).sum())}
    return {"pixels": int(image.size), "nonfinite": int((~finite).sum()),
            "sum": float(image[finite].sum(dtype=np.float64)),
            "max": float(image[finite].max()), "argmax": int(np.argmax(np.where(finite, image,
                                                                                -np.inf)))}


def _write_files(folder: Path) -> None:
    for name, data in FILES.items():
        (folder / name).write_bytes(data)


def _references() -> dict:
    return json.loads(DATA.read_text()) if DATA.is_file() else {}


@pytest.mark.parametrize("label, args, expected", CASES, ids=[c[0] for c in CASES])
def test_runs_as_c_runs(label, args, expected, tmp_path, monkeypatch, capsys):
    _write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if isinstance(expected, tuple) and isinstance(expected[0], int):
        want_code, text = expected
        assert code == want_code, err
        assert text in err.strip().splitlines()[-1], err
        assert not (tmp_path / "float.bin").exists()
        ref = _references().get(label)
        if label in NAN_IN_C:  # C ran and wrote NaN: the refusal is justified
            assert ref["nonfinite"] > 0, ref
        return
    assert code == 0, err
    ours = _stats(tmp_path / "float.bin")
    assert ours["nonfinite"] == 0
    if expected == "c":
        ref = _references()[label]
        assert ref["nonfinite"] == 0 and ours["pixels"] == ref["pixels"]
        assert ours["sum"] == pytest.approx(ref["sum"], rel=1e-6, abs=1e-30)
        assert ours["max"] == pytest.approx(ref["max"], rel=1e-6, abs=1e-30)
        if ref["max"] > 0:
            assert ours["argmax"] == ref["argmax"]
        c_bin = os.environ.get("NB_C_BIN")
        if c_bin and Path(c_bin).is_file():
            (tmp_path / "c").mkdir()
            _write_files(tmp_path / "c")
            subprocess.run([c_bin, *args], cwd=tmp_path / "c", capture_output=True, check=True)
            c_image = np.fromfile(tmp_path / "c" / "float.bin", dtype="<f4")
            ours_image = np.fromfile(tmp_path / "float.bin", dtype="<f4")
            scale = max(float(np.abs(c_image).max()), 1e-30)
            assert np.abs(ours_image.astype(float) - c_image).max() <= 1e-5 * scale
    else:
        _, other = expected
        ref = _references()[other]
        assert ours["sum"] == pytest.approx(ref["sum"], rel=1e-6)
        assert ours["argmax"] == ref["argmax"]


def test_warnings_say_what_c_does(tmp_path, monkeypatch, capsys):
    _write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["-sourcefile", "two_sources.txt", *SOURCE_RUN]) == 0
    err = capsys.readouterr().err
    assert "2 comment lines (line 1, 2) skipped; nanoBragg.c reads each as a source" in err
    assert main([*BASE, "-mask", "mask64.img", "-detpixels", "16"]) == 0
    assert "its first 256 values are used as a 16-wide image" in capsys.readouterr().err


@pytest.mark.parametrize("adc, count", [("inf", 65535), ("-inf", 0), ("nan", 0)])
def test_adc_not_finite(adc, count, tmp_path, monkeypatch, capsys):
    """C clips v*scale + adc to 0..65535 (lines 3150-3170, 3250): inf is 65535 everywhere,
    -inf 0, and NaN fails both tests and converts to 0 (x86-64)."""
    _write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main([*BASE, "-adc", adc, "-noisefile", "noise.img", "-seed", "1"]) == 0
    for name in ("int.img", "noise.img"):
        pixels = np.frombuffer((tmp_path / name).read_bytes()[512:], dtype="<u2")
        assert (pixels == count).all(), name


@pytest.mark.parametrize("flags, int_count, pgm_level", [
    (["-scale", "nan"], 0, None), (["-scale", "-nan", "-pgmscale", "nan"], 0, 0),
    (["-pgmscale", "inf"], None, (0, 255)), (["-scale", "inf"], (0, 65535), None)])
def test_scale_not_finite(flags, int_count, pgm_level, tmp_path, monkeypatch, capsys):
    """C tests ``scale <= 0.0`` (lines 3135, 3191) and keeps NaN and inf: only the integer
    images see them (NaN converts to 0; inf saturates lit pixels, 0 x inf is NaN -> 0)."""
    _write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main([*BASE, *flags, "-pgmfile", "img.pgm"]) == 0
    captured = capsys.readouterr()
    assert "nanoBragg.c" in captured.err and "Traceback" not in captured.err
    assert ("intfile_scale = " + ("-nan" if "-nan" in flags else flags[1])) in captured.out \
        or flags[0] != "-scale"
    ints = np.frombuffer((tmp_path / "int.img").read_bytes()[512:], dtype="<u2")
    pgm = np.frombuffer((tmp_path / "img.pgm").read_bytes()[-ints.size:], dtype="u1")
    for pixels, want in ((ints, int_count), (pgm, pgm_level)):
        if isinstance(want, int):
            assert (pixels == want).all()
        elif want is not None:
            assert max(want) in pixels and set(np.unique(pixels)) <= set(want)
    c_bin = os.environ.get("NB_C_BIN")
    if c_bin and Path(c_bin).is_file():
        (tmp_path / "c").mkdir()
        c = subprocess.run([c_bin, *BASE, *flags, "-pgmfile", "img.pgm"], cwd=tmp_path / "c",
                           capture_output=True, text=True, check=True)
        for name in ("int.img", "img.pgm", "float.bin"):
            assert (tmp_path / "c" / name).read_bytes() == (tmp_path / name).read_bytes(), name
        assert [line for line in c.stdout.splitlines() if "scale" in line] == \
            [line for line in captured.out.splitlines() if "scale" in line]


def _make_references(c_bin: str) -> None:
    """Run C on every row and store the stats (``python tests/test_refusals.py NB_C_BIN``)."""
    import tempfile

    refs = {}
    for label, args, _expected in CASES:
        with tempfile.TemporaryDirectory() as folder:
            _write_files(Path(folder))
            proc = subprocess.run([c_bin, *args], cwd=folder, capture_output=True)
            image = Path(folder) / "float.bin"
            if proc.returncode == 0 and image.is_file():
                refs[label] = _stats(image)
            else:
                refs[label] = {"exit": proc.returncode}
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(refs, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    _make_references(sys.argv[1])
