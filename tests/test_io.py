"""nbnumba.io against nanoBragg.c's own files and C library semantics."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nbnumba import io as nbio
from nbnumba.errors import ResourceError

RTD = nbio.RTD


def golden_bytes(golden_dir: Path, case: str, name: str) -> bytes:
    path = golden_dir / case / name
    if path.is_file():
        return path.read_bytes()
    gz = path.with_name(name + ".gz")
    if gz.is_file():
        return gzip.decompress(gz.read_bytes())
    pytest.skip(f"{case}/{name} is not in the golden set")


def stdout_block(golden_dir: Path, case: str, first: str, stop: str) -> str:
    text = (golden_dir / case / "c_stdout.txt").read_text()
    start = text.index(first)
    return text[start:text.index(stop, start)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ C numbers


@pytest.mark.parametrize(("text", "value"), [
    ("1.5", 1.5), ("  -2e3xyz", -2000.0), ("\t\v\f+7", 7.0), ("", 0.0), ("abc", 0.0),
    ("-", 0.0), (".", 0.0), ("5.", 5.0), (".5", 0.5), ("1e", 1.0), ("1e+", 1.0),
    ("1e5.5", 1e5), ("0x1p3", 8.0), ("-0X1.8p1", -3.0), ("0x", 0.0), ("0xg", 0.0),
    ("inf", math.inf), ("-Infinity", -math.inf), ("INFINITE", math.inf), ("infx", math.inf),
    ("1e999", math.inf), ("1e-999", 0.0), ("  1 2", 1.0), ("1,5", 1.0), ("١", 0.0),
])
def test_c_atof(text: str, value: float) -> None:
    assert nbio.c_atof(text) == value
    assert nbio.c_atof(text.encode()) == value


def test_c_atof_nan_and_sign() -> None:
    assert math.isnan(nbio.c_atof("nan"))
    assert math.isnan(nbio.c_atof("NaN(123)xyz"))
    assert math.copysign(1.0, nbio.c_atof("-nan")) < 0
    assert math.copysign(1.0, nbio.c_atof("-0")) < 0
    assert nbio.c_strtod("  12abc") == (12.0, 4)
    value, used = nbio.c_strtod("nan(")
    assert math.isnan(value) and used == 3
    assert nbio.c_strtod("xyz")[1] == 0


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("  -17abc", -17), ("+3", 3), ("3.9", 3), ("0x10", 0), ("", 0), ("x1", 0),
    ("- 1", 0), ("2147483647", 2147483647), ("2147483648", -2147483648),
    ("3000000000", -1294967296), ("-2147483649", 2147483647),
    ("99999999999999999999", -1),  # strtol saturates at LONG_MAX, the int cast keeps -1
])
def test_c_atoi(text: str, value: int) -> None:
    assert nbio.c_atoi(text) == value


def test_c_format_g() -> None:
    assert nbio.c_format_g(0.00645 * 1000) == "6.45"
    assert nbio.c_format_g(-0.0) == "-0"
    assert nbio.c_format_g(1e-5) == "1e-05"
    assert nbio.c_format_g(123456789.0) == "1.23457e+08"
    assert nbio.c_format_g(math.inf) == "inf"
    assert nbio.c_format_g(math.nan) == "nan"
    assert nbio.c_format_g(-math.nan) == "-nan"  # glibc shows the sign, Python does not
    assert nbio.c_format_g(0.0 * math.inf) in ("nan", "-nan")


# ---------------------------------------------------------------- atomic_write


def test_atomic_write_bytes_and_chunks(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    nbio.atomic_write(target, b"abc")
    assert target.read_bytes() == b"abc"
    nbio.atomic_write(target, [b"x", bytearray(b"y"), memoryview(b"z"), np.arange(2, dtype="<u2")])
    assert target.read_bytes() == b"xyz\0\0\1\0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_cleans_up_on_error(tmp_path: Path, exc: type[BaseException]) -> None:
    target = tmp_path / "keep.img"
    target.write_bytes(b"old")

    def chunks():
        yield b"partial"
        raise exc("boom")

    with pytest.raises(exc):
        nbio.atomic_write(target, chunks())
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.img"]
    with pytest.raises(exc):
        nbio.atomic_write(tmp_path / "new.img", chunks())
    assert [p.name for p in tmp_path.iterdir()] == ["keep.img"]


def test_atomic_write_modes_links_devices(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    fresh = tmp_path / "fresh"
    nbio.atomic_write(fresh, b"1")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # as C's fopen
    kept = tmp_path / "kept"
    kept.write_bytes(b"")
    kept.chmod(0o640)
    nbio.atomic_write(kept, b"2")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    link = tmp_path / "link"
    link.symlink_to(kept)
    nbio.atomic_write(link, b"3")
    assert link.is_symlink() and kept.read_bytes() == b"3"
    if os.path.exists("/dev/null"):
        nbio.atomic_write("/dev/null", b"4")
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(OSError):
        nbio.atomic_write(tmp_path / "no" / "such" / "dir", b"5")


# ---------------------------------------------------------------------- writers


def test_float_image_round_trip(golden_dir: Path, tmp_path: Path) -> None:
    raw = golden_bytes(golden_dir, "int_autoscale", "float.bin")
    image = np.frombuffer(raw, dtype="<f4").reshape(128, 128)
    nbio.write_float_image(tmp_path / "f.bin", image)
    assert (tmp_path / "f.bin").read_bytes() == raw
    nbio.write_float_image(tmp_path / "g.bin", image.astype(np.float64) * (1 + 2.0**-40))
    assert (tmp_path / "g.bin").read_bytes() == raw  # rounded back as C's (float) cast


INT_AUTOSCALE_GEOMETRY = dict(
    fpixels=128, spixels=128, pixel_size=0.0001, distance=0.1, lambda0=1e-10, Xbeam=0.00645,
    Ybeam=0.00645, Fbeam=0.0065, Sbeam=0.0065, detsize_s=0.0128, dials_origin=(-6.5, 6.5, -100.0),
    ORGX=65.5, ORGY=65.5, close_distance=0.1, phi0=0.0, osc=0.0, detector_twotheta=0.0)


def test_smv_from_geometry(golden_dir: Path, tmp_path: Path) -> None:
    raw = golden_bytes(golden_dir, "int_autoscale", "int.img")
    header = nbio.smv_header(**INT_AUTOSCALE_GEOMETRY)
    assert len(header) == 512
    assert header == raw[:512]
    assert b"DIALS_ORIGIN=-6.5,6.5,-100\nXDS_ORGX" in header  # no ';', as C
    assert nbio.smv_header(**INT_AUTOSCALE_GEOMETRY, noise=True) == header
    c_vector = dict(INT_AUTOSCALE_GEOMETRY, dials_origin=(0.0, -6.5, 6.5, -100.0))
    assert nbio.smv_header(**c_vector) == header
    pixels = np.frombuffer(raw, dtype="<u2", offset=512).reshape(128, 128)
    nbio.write_smv(tmp_path / "int.img", header, pixels)
    assert (tmp_path / "int.img").read_bytes() == raw
    with pytest.raises(TypeError):
        nbio.write_smv(tmp_path / "bad.img", header, pixels.astype(np.int32))


SMV_LINE = re.compile(r"^([A-Z_0-9]+)=([^;\n]*);?$", re.M)


def header_inputs(header: bytes) -> dict:
    """The inputs that make smv_header print this header (inverse of C's formulas)."""
    v = dict(SMV_LINE.findall(header.decode("latin-1")))
    num = {k: float(x) for k, x in v.items() if k != "DIALS_ORIGIN" and re.match(r"^[-\d.e+]+$", x)}
    sbeam = num["DENZO_X_BEAM"] / 1000.0
    return dict(
        fpixels=int(num["SIZE1"]), spixels=int(num["SIZE2"]), pixel_size=num["PIXEL_SIZE"] / 1000,
        distance=num["DISTANCE"] / 1000, lambda0=num["WAVELENGTH"] / 1e10,
        Xbeam=num["BEAM_CENTER_X"] / 1000, Ybeam=num["BEAM_CENTER_Y"] / 1000,
        Fbeam=num["DENZO_Y_BEAM"] / 1000, Sbeam=sbeam,
        detsize_s=num["ADXV_CENTER_Y"] / 1000 + sbeam,
        dials_origin=[float(x) for x in v["DIALS_ORIGIN"].split(",")],
        ORGX=num["XDS_ORGX"], ORGY=num["XDS_ORGY"], close_distance=num["CLOSE_DISTANCE"] / 1000,
        phi0=num["PHI"] / RTD, osc=num["OSC_RANGE"] / RTD, detector_twotheta=num["TWOTHETA"] / RTD)


@pytest.mark.parametrize(("case", "name"), [
    ("int_autoscale", "int.img"), ("int_pgm_outputs", "int.img"), ("noise_seeded", "int.img"),
    ("noise_seeded", "noise.img"), ("noise_high_counts", "noise.img"), ("inputs", "header.img"),
    ("inputs", "mask.img"),
])
def test_smv_reemit_golden(golden_dir: Path, tmp_path: Path, case: str, name: str) -> None:
    raw = golden_bytes(golden_dir, case, name)
    header = nbio.smv_header(**header_inputs(raw[:512]), noise=name == "noise.img")
    assert header == raw[:512]
    frame = nbio.read_smv(golden_dir / case / name)
    nbio.write_smv(tmp_path / name, header, frame.data)
    assert (tmp_path / name).read_bytes() == raw


def test_smv_header_edge_cases() -> None:
    geo = dict(INT_AUTOSCALE_GEOMETRY, Sbeam=-0.0, Fbeam=-0.0)
    # the int image prints Sbeam-0.0*pixel, the noise image Sbeam+0.0*pixel
    assert b"DENZO_X_BEAM=-0;\nDENZO_Y_BEAM=-0;" in nbio.smv_header(**geo)
    assert b"DENZO_X_BEAM=0;\nDENZO_Y_BEAM=0;" in nbio.smv_header(**geo, noise=True)
    geo = dict(INT_AUTOSCALE_GEOMETRY, phi0=5.0 / RTD, osc=0.5 / RTD, detector_twotheta=20 / RTD)
    assert b"PHI=5;\nOSC_START=5;\nOSC_RANGE=0.5;\nTWOTHETA=20;\n" in nbio.smv_header(**geo)
    # C pads only up to 512: a longer header stays longer
    huge = {k: (-1.234567e300 if isinstance(v, float) else v)
            for k, v in INT_AUTOSCALE_GEOMETRY.items()}
    header = nbio.smv_header(**huge)
    assert len(header) > 512 and header.endswith(b"}\f")


def test_pgm_golden(golden_dir: Path, tmp_path: Path) -> None:
    raw = golden_bytes(golden_dir, "int_pgm_outputs", "img.pgm")
    head = b"P5\n128 128\n# pixels scaled by 2\n255\n"
    assert raw.startswith(head)
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=len(head)).reshape(128, 128)
    nbio.write_pgm(tmp_path / "img.pgm", pixels, 128, 128, 2.0)
    assert (tmp_path / "img.pgm").read_bytes() == raw
    nbio.write_pgm(tmp_path / "s.pgm", pixels, 128, 128, 0.0123456789)
    head = (tmp_path / "s.pgm").read_bytes()[:40]
    assert head.startswith(b"P5\n128 128\n# pixels scaled by 0.0123457\n")
    with pytest.raises(ValueError):
        nbio.write_pgm(tmp_path / "bad.pgm", pixels, 64, 128, 2.0)


# ------------------------------------------------------------------- SMV reading


def test_read_smv_header_img(golden_dir: Path) -> None:
    frame = nbio.read_smv(golden_dir / "inputs" / "header.img")
    assert (frame.header_size, frame.width, frame.height) == (512, 96, 80)
    assert frame.data.shape == (80, 96) and frame.data.dtype == np.uint16
    assert not frame.swap_bytes and frame.missing_bytes == 0
    raw = (golden_dir / "inputs" / "header.img").read_bytes()
    assert frame.data.tobytes() == raw[512:512 + 2 * 96 * 80]
    values = {k: nbio.smv_value(frame, k) for k in (
        "PIXEL_SIZE", "DISTANCE", "CLOSE_DISTANCE", "WAVELENGTH", "BEAM_CENTER_X",
        "BEAM_CENTER_Y", "ORGX", "ORGY", "PHI", "OSC_RANGE", "TWOTHETA")}
    assert values == {"PIXEL_SIZE": 0.12, "DISTANCE": 120.0, "CLOSE_DISTANCE": 120.0,
                      "WAVELENGTH": 1.3, "BEAM_CENTER_X": 5.5, "BEAM_CENTER_Y": 6.5,
                      "ORGX": 55.1667, "ORGY": 46.8333, "PHI": 5.0, "OSC_RANGE": 1.0,
                      "TWOTHETA": 0.0}
    assert math.isnan(nbio.smv_value(frame.header, "NO_SUCH_KEY"))


def test_read_smv_mask(golden_dir: Path) -> None:
    frame = nbio.read_smv(golden_dir / "inputs" / "mask.img")
    assert (frame.width, frame.height) == (64, 64)
    nonzero = int(np.count_nonzero(frame.data))
    # the mask case skips exactly the zero pixels
    stats = json.loads((golden_dir / "mask" / "case.json").read_text())
    assert nonzero == stats["float_stats"]["nonzero"] == 3882
    assert nbio.smv_value(frame.header, "BEAM_CENTER_Y") == 3.25


def test_smv_value_c_semantics() -> None:
    header = "DISTANCE=100;\nCLOSE_DISTANCE=90;\nFLAG;\nX=AA=1;\nAAA=7;\n"
    assert nbio.smv_value(header, "DISTANCE") == 90.0  # the last match is inside CLOSE_DISTANCE
    assert nbio.smv_value(header, "CLOSE_DISTANCE") == 90.0
    assert nbio.smv_value("A=1;\nFLAG", "FLAG") == 0.0  # no '=' after it
    assert nbio.smv_value(header, "FLAG") == 0.0  # the next '=' is X='s: atof("AA=1;...")
    assert nbio.smv_value("FLAG;\nX=12;", "FLAG") == 12.0
    # strstr restarts after each match: in "AAA" the last "AA" found starts at 0
    assert nbio.smv_value("AAA=7", "AA") == 7.0
    assert nbio.smv_value("AAAB=3;AA=4", "AA") == 4.0
    assert math.isnan(nbio.smv_value("SIZE1=5;\0SIZE1=6", "SIZE2"))
    assert nbio.smv_value(b"SIZE1=5;\0SIZE1=6", "SIZE1") == 5.0  # C strings end at NUL
    assert nbio.smv_value("K=  0x10;", "K") == 16.0
    with pytest.raises(ValueError):
        nbio.smv_value(header, "")


def smv_bytes(header_text: str, header_size: int, pixels: bytes) -> bytes:
    head = header_text.encode()
    return head + b" " * (header_size - len(head)) + pixels


def test_read_smv_errors_and_sizes(tmp_path: Path) -> None:
    p = tmp_path / "x.img"
    p.write_bytes(b"{\nHEADER_BYTES=512;\n")
    with pytest.raises(nbio.InputFileError, match="shorter than 512"):
        nbio.read_smv(p)
    p.write_bytes(b"P5\n" + b" " * 600)
    with pytest.raises(nbio.InputFileError, match="ADSC") as info:
        nbio.read_smv(p)
    assert info.value.path == str(p)
    base = "{\nHEADER_BYTES=%s;\nBYTE_ORDER=little_endian;\nSIZE1=%s;\nSIZE2=%s;\n}\f"
    pixels = np.arange(6, dtype="<u2").tobytes()
    # only the first 12 bytes are checked, and sizes are atof'd then truncated
    p.write_bytes(smv_bytes(base % ("512", "3.9", "2"), 512, pixels))
    frame = nbio.read_smv(p)
    assert frame.data.tolist() == [[0, 1, 2], [3, 4, 5]]
    # a bigger header is re-read; an odd size starts the pixels one byte early, as C does
    p.write_bytes(smv_bytes(base % ("1024", "3", "2"), 1024, pixels))
    assert nbio.read_smv(p).data.tolist() == [[0, 1, 2], [3, 4, 5]]
    odd = smv_bytes(base % ("513", "3", "2"), 513, pixels)
    p.write_bytes(odd)
    assert nbio.read_smv(p).data.reshape(-1).tolist() == list(
        np.frombuffer(odd[512:512 + 12], dtype="<u2"))
    # SIZE1=0 falls back to DETECTOR_DIMENSIONS for both
    p.write_bytes(smv_bytes(base % ("512", "0", "7") + "DETECTOR_DIMENSIONS=2;", 512, pixels[:8]))
    assert nbio.read_smv(p).data.shape == (2, 2)
    p.write_bytes(smv_bytes(base.replace("little", "big") % ("512", "3", "2"), 512, pixels))
    assert nbio.read_smv(p).swap_bytes  # noted, but never acted on, as in C
    assert nbio.read_smv(p).data.tolist() == [[0, 1, 2], [3, 4, 5]]
    p.write_bytes(smv_bytes(base % ("512", "3", "2"), 512, pixels[:7]))
    with pytest.raises(nbio.InputFileError, match="too short"):
        nbio.read_smv(p)
    short = nbio.read_smv(p, allow_short=True)
    assert short.missing_bytes == 5 and short.data.tolist() == [[0, 1, 2], [3, 0, 0]]
    for bad in (base % ("0", "3", "2"), base % ("x", "3", "2"), base % ("512", "-3", "2"),
                "{\nHEADER_BYTES=512;\nSIZE1=3;\nSIZE2=2;\n"):
        p.write_bytes(smv_bytes(bad, 512, pixels))
        with pytest.raises(nbio.InputFileError):
            nbio.read_smv(p)
    with pytest.raises(nbio.InputFileOpenError) as info:
        nbio.read_smv(tmp_path / "missing.img")
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)
    assert info.value.strerror and "missing.img" in str(info.value)


# ------------------------------------------------------------------------ hkl


def table_key(t: nbio.HKLTable) -> tuple:
    return (t.fhkl.shape, t.fhkl.tobytes(), t.h_min, t.h_max, t.k_min, t.k_max, t.l_min,
            t.l_max, t.h_range, t.k_range, t.l_range, t.hkls, t.messages, t.warnings)


def test_read_hkl_scaled_fast(golden_dir: Path) -> None:
    """The fast path on the real file equals the faithful one (its speed is in bench/)."""
    path = golden_dir / "inputs" / "scaled.hkl"
    table = nbio.read_hkl(path, 0.0)
    assert (table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max) == (
        -24, 24, -28, 28, -31, 30)
    assert table.hkls == 64333 and table.fhkl.shape == (50, 58, 63)
    assert table.fhkl[23 + 24, 15 + 28, -1 + 31] == 23.0
    assert table.fhkl[24 + 24, 17 + 28, 6 + 31] == 18.98
    assert np.count_nonzero(table.fhkl) == 64333
    F = table.fhkl
    assert not F[-1].any() and not F[:, -1].any() and not F[..., -1].any()
    assert table.messages == [f"counting entries in {path}\n", f"re-reading {path}\n"]
    assert table.warnings == []
    assert table_key(nbio.read_hkl(path, 0.0, faithful=True)) == table_key(table)


@pytest.mark.parametrize(("name", "default_F", "case"), [
    ("pattern.hkl", 0.0, None), ("sparse.hkl", 10.0, "sparse_hkl_default_F"),
    ("pattern_sigma.hkl", 0.0, "hkl_extra_columns"),
])
def test_read_hkl_golden(golden_dir: Path, case_workdir: Path, monkeypatch, name: str,
                         default_F: float, case: str | None) -> None:
    monkeypatch.chdir(case_workdir)
    table = nbio.read_hkl(name, default_F)
    assert table_key(nbio.read_hkl(name, default_F, faithful=True)) == table_key(table)
    if case is not None:
        # what C printed between opening the file and writing Fdump.bin
        block = stdout_block(golden_dir, case, "counting entries", "writing dump file")
        assert "".join(table.messages) == block


def test_read_hkl_pattern(case_workdir: Path) -> None:
    table = nbio.read_hkl(case_workdir / "pattern.hkl", 0.0)
    assert table.fhkl.shape == (10, 10, 10) and table.hkls == 729
    assert table.fhkl[0, 0, 0] == 7.06 and table.fhkl[0, 0, 1] == 309.53
    assert np.count_nonzero(table.fhkl[:9, :9, :9]) == 729


def test_read_hkl_sparse_default_F(case_workdir: Path) -> None:
    table = nbio.read_hkl(case_workdir / "sparse.hkl", 10.0)
    assert (table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max) == (
        -1, 1, 0, 2, 0, 1)
    F = table.fhkl
    assert F.shape == (4, 4, 3) and table.hkls == 5
    assert F[1, 0, 1] == 1000 and F[2, 0, 0] == 50 and F[1, 1, 0] == 200
    assert F[2, 1, 1] == 700 and F[0, 2, 0] == 30 and F[1, 0, 0] == 10
    # C's init loops stop at h_range etc.: the extra planes stay 0
    assert not F[3].any() and not F[:, 3].any() and not F[:, :, 2].any()
    assert np.count_nonzero(F[:3, :3, :2] == 10.0) == 3 * 3 * 2 - 5


def test_read_hkl_extra_columns(case_workdir: Path) -> None:
    table = nbio.read_hkl(case_workdir / "pattern_sigma.hkl", 0.0)
    name = str(case_workdir / "pattern_sigma.hkl")
    assert table.warnings[0] == (
        f"warning: {name} line 1 has more than four columns; nanoBragg.c reads hkl files as a "
        "stream of h k l F records, so extra columns shift later records")
    assert "stops after 1 of 1093 records" in table.warnings[1]
    assert table.hkls == 1093 and table.fhkl.shape == (30, 505, 30)
    # pass 2 stores "-4 -4 -4 7.06" and then stops at "0.35": nothing else
    assert table.fhkl[0, 0, 0] == 7.06 and np.count_nonzero(table.fhkl) == 1
    assert table.messages[1] == "WARNING: non-integer value for h (0.35) at line 1\n"
    assert sum(m.startswith("WARNING") for m in table.messages) == 1079


def hkl(tmp_path: Path, text: bytes, default_F: float = 0.0) -> nbio.HKLTable:
    path = tmp_path / "t.hkl"
    path.write_bytes(text)
    fast = nbio.read_hkl(path, default_F)
    assert table_key(nbio.read_hkl(path, default_F, faithful=True)) == table_key(fast)
    return fast


def test_hkl_stream_quirks(tmp_path: Path) -> None:
    # records are 4 numbers of a stream, whatever the lines
    t = hkl(tmp_path, b"0 0 0\n5 1 1 1 6\n")
    assert t.hkls == 2 and t.fhkl[0, 0, 0] == 5.0 and t.fhkl[1, 1, 1] == 6.0
    assert len(t.warnings) == 2 and "fewer than four" in t.warnings[1]
    # %d stops at '.', and the next %d fails on it: pass 2 reads nothing
    t = hkl(tmp_path, b"1.5 2 3 4\n1 2 3 5\n")
    assert t.hkls == 2 and not t.fhkl.any()
    assert t.messages[1] == "WARNING: non-integer value for h (1.5) at line 0\n"
    assert (t.h_min, t.h_max) == (1, 1)  # (int)1.5
    # an l of "1.5" is read by %d as 1 and its ".5" becomes F
    t = hkl(tmp_path, b"0 0 1.5 9.0\n")
    assert t.fhkl[0, 0, 0] == 0.5 and "differ" in t.warnings[0]
    # a repeated hkl keeps the last F; signs and exponents as strtod reads them
    t = hkl(tmp_path, b"+1 -1 0 1e1\n1 -1 0 2.5E+1\n")
    assert t.fhkl[0, 0, 0] == 25.0 and t.hkls == 2
    # ceil(h-0.4) tolerates nothing non-integer, NaN warns, and the warning uses %g
    t = hkl(tmp_path, b"0.6 -0.0000001 nan 1\n0 0 0 1\n")
    assert t.messages[1:4] == ["WARNING: non-integer value for h (0.6) at line 0\n",
                               "WARNING: non-integer value for k (-1e-07) at line 0\n",
                               "WARNING: non-integer value for l (nan) at line 0\n"]


def test_hkl_errors(tmp_path: Path) -> None:
    path = tmp_path / "e.hkl"
    path.write_bytes(b"# comment\n1 2 3 4\n")
    with pytest.raises(nbio.InputFileError, match="not enough HKL indices") as info:
        nbio.read_hkl(path, 0.0)
    assert info.value.messages[-4:] == [
        "h: 1000000000 - -1000000000\n", "k: 1000000000 - -1000000000\n",
        "l: 1000000000 - -1000000000\n", f"ERROR: not enough HKL indices in {path}\n"]
    path.write_bytes(b"26 29 -24 482.3 -28\n11\t1.0\n")
    with pytest.raises(nbio.InputFileError, match="outside"):
        nbio.read_hkl(path, 0.0)
    with pytest.raises(nbio.InputFileError, match="outside"):
        nbio.read_hkl(path, 0.0, faithful=True)
    path.write_bytes(b"0 0 0 1\n100000 100000 100000 1\n")
    # more than memory: a resource error (exit 4), not a bad file (issue 18)
    with pytest.raises(ResourceError, match="too large"):
        nbio.read_hkl(path, 0.0)
    with pytest.raises(nbio.InputFileOpenError) as info:
        nbio.read_hkl(tmp_path / "none.hkl", 0.0)
    assert info.value.messages == [f"ERROR: unable to open {tmp_path / 'none.hkl'}."]


# ---------------------------------------------------------------------- Fdump

C_FDUMP_SHA256 = {  # Fdump.bin written by nanoBragg.c after reading these files
    ("pattern.hkl", 0.0): "1cf6df83c2f0fa02616bdc27d730532fe2008844a082e5d4f645e006c80c533f",
    ("sparse.hkl", 10.0): "b8ee3751ab1e404acfc3cadff3316035db3b33198a08aa2e165f0f48c2eb0718",
    ("pattern_sigma.hkl", 0.0): "561996720c9bab2a164925acd607f4fe4377df3439b1c43b9fd9e6e8ff54ff2d",
    ("scaled.hkl", 0.0): "29a427209e14ce2f1fc8e4f5f61eacc194f6c4cb1f5c6a6ca20bf19c244978c5",
}


@pytest.mark.parametrize(("name", "default_F"), list(C_FDUMP_SHA256))
def test_fdump_matches_c(case_workdir: Path, name: str, default_F: float) -> None:
    table = nbio.read_hkl(case_workdir / name, default_F)
    nbio.write_fdump(case_workdir / "Fdump.bin", table)
    raw = (case_workdir / "Fdump.bin").read_bytes()
    assert sha256(raw) == C_FDUMP_SHA256[(name, default_F)]
    back = nbio.read_fdump(case_workdir / "Fdump.bin")
    assert back.fhkl.tobytes() == table.fhkl.tobytes() and back.warnings == []
    assert (back.h_min, back.h_max, back.k_min, back.k_max, back.l_min, back.l_max) == (
        table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max)
    assert back.hkls == back.h_range * back.k_range * back.l_range


@pytest.mark.parametrize(("name", "default_F"), [("pattern.hkl", 0.0), ("sparse.hkl", 10.0),
                                                 ("pattern_sigma.hkl", 0.0)])
def test_fdump_against_c_binary(c_binary: Path, case_workdir: Path, name: str,
                                default_F: float) -> None:
    args = [str(c_binary), "-cell", "100", "100", "100", "90", "90", "90", "-hkl", name,
            "-N", "1", "-detpixels", "4", "-nopgm", "-nonoise", "-noprogress"]
    if default_F:
        args += ["-default_F", str(default_F)]
    run = subprocess.run(args, cwd=case_workdir, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    c_dump = (case_workdir / "Fdump.bin").read_bytes()
    table = nbio.read_hkl(case_workdir / name, default_F)
    block = run.stdout[run.stdout.index("counting entries"):run.stdout.index("writing dump")]
    assert "".join(table.messages) == block.replace(name, str(case_workdir / name))
    nbio.write_fdump(case_workdir / "ours.bin", table)
    assert (case_workdir / "ours.bin").read_bytes() == c_dump
    assert nbio.read_fdump(case_workdir / "Fdump.bin").fhkl.tobytes() == table.fhkl.tobytes()


def test_fdump_whitespace_quirk(tmp_path: Path) -> None:
    # F = 0.09 is stored as 0a d7 a3 70 3d 0a b7 3f: its first byte is '\n', which the
    # "\n\f" of C's fscanf format swallows, so every value is read one byte late
    F = np.zeros((3, 2, 2))
    F[0, 0, 0], F[0, 0, 1], F[1, 1, 1] = 0.09, 1.5, 7.0
    assert struct.pack("<d", 0.09)[0] == 0x0A
    table = nbio.HKLTable(F, 0, 1, 0, 0, 0, 0, 2, 1, 1, 2)
    nbio.write_fdump(tmp_path / "Fdump.bin", table)
    raw = (tmp_path / "Fdump.bin").read_bytes()
    assert raw.startswith(b"0 1 0 0 0 0\n\f\n\xd7")
    back = nbio.read_fdump(tmp_path / "Fdump.bin")
    shifted = raw[len(b"0 1 0 0 0 0\n\f") + 1:] + b"\0"
    assert back.fhkl.tobytes() == shifted
    assert back.fhkl[0, 0, 0] != 0.09 and len(back.warnings) == 1
    assert "1 whitespace byte" in back.warnings[0]
    assert back.hkls == 2 * 1 * 1


def test_fdump_errors(tmp_path: Path) -> None:
    p = tmp_path / "Fdump.bin"
    p.write_bytes(b"0 1 0 0\n\f")
    with pytest.raises(nbio.InputFileError, match="4 of its 6"):
        nbio.read_fdump(p)
    p.write_bytes(b"0 1 0 0 0 0\n\f" + bytes(8 * 12 - 1))
    with pytest.raises(nbio.InputFileError, match="1 bytes too short"):
        nbio.read_fdump(p)
    p.write_bytes(b"0 1 0 0 0 0\n\f" + bytes(8 * 12 + 5))  # trailing bytes are ignored
    assert nbio.read_fdump(p).fhkl.shape == (3, 2, 2)
    with pytest.raises(ValueError):
        nbio.write_fdump(p, nbio.HKLTable(np.zeros((2, 2, 2)), 0, 1, 0, 0, 0, 0, 2, 1, 1, 2))


def test_hkl_table_empty() -> None:
    empty = nbio.HKLTable.empty()
    assert empty.hkls == 0 and empty.fhkl.shape == (1, 1, 1) and empty.messages == []


# ------------------------------------------------------------------ mat, text


def test_read_mat(golden_dir: Path, tmp_path: Path) -> None:
    a, b, c = nbio.read_mat(golden_dir / "inputs" / "A.mat")
    # each line of the file holds the x, y or z components of a*, b*, c*
    assert a.tolist() == [-0.02837711, -0.02871390, 0.01050048]
    assert b.tolist() == [-0.00305386, 0.01019549, -0.03209440]
    assert c.tolist() == [0.02535816, -0.01400049, -0.01036054]
    a, b, c = nbio.read_mat(golden_dir / "inputs" / "ortho.mat")
    assert (a.tolist(), b.tolist(), c.tolist()) == (
        [0.02142857, 0.0, 0.0], [0.0, 0.01875, 0.0], [0.0, 0.0, 0.01666667])
    p = tmp_path / "m.mat"
    p.write_bytes(b"1 2 3 4 5 6 7 8 9 junk\n 0.0 0.0 0.0\n")  # a stream: lines do not matter
    a, b, c = nbio.read_mat(p)
    assert (a.tolist(), b.tolist(), c.tolist()) == ([1, 4, 7], [2, 5, 8], [3, 6, 9])
    p.write_bytes(b"1 2 3\n4 5 6\n7 8 x\n")
    with pytest.raises(nbio.InputFileError, match="8 numbers"):
        nbio.read_mat(p)


def test_read_text_file_sources(golden_dir: Path) -> None:
    cols = nbio.read_text_file(golden_dir / "inputs" / "sources.txt", 5)
    assert [c.tolist() for c in cols] == [
        [-10.0, -10.0, -10.0], [0.0, 0.02, -0.015], [0.0, 0.01, 0.02], [1.0, 0.5, 2.0],
        [1e-10, 1.01e-10, 0.99e-10]]
    # what C echoed for them
    block = stdout_block(golden_dir, "sourcefile", "  created a total of 3",
                         "  created a total of 1")
    echoed = [[float(x) for x in line.split()] for line in block.splitlines()[1:]]
    assert np.array_equal(np.array(echoed), np.array([c.tolist() for c in cols]).T)


def test_read_text_file_c_quirks(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_bytes(b"1,2;3\n\n  \t\n,,4 : 5!6 7\n8 abc 9\n1e-3x 2\n")
    cols = nbio.read_text_file(p, 2)
    assert [c.tolist() for c in cols] == [[1, 4, 8, 1e-3], [2, 5, 0, 2]]
    cols = nbio.read_text_file(p, 5)
    assert np.array_equal(cols[3], [np.nan, 7, np.nan, np.nan], equal_nan=True)
    assert np.isnan(cols[4]).all()
    assert np.array_equal(cols[2], [3, 6, 9, np.nan], equal_nan=True)
    # a last line without '\n' fills the missing columns with 0, not NaN
    p.write_bytes(b"1 2\n3 4")
    cols = nbio.read_text_file(p, 3)
    assert np.array_equal(cols[2], [np.nan, 0.0], equal_nan=True)
    # so does a CRLF line; and a line of only '\r' is data, not blank
    p.write_bytes(b"1 2\r\n\r\n")
    assert [c.tolist() for c in nbio.read_text_file(p, 3)] == [[1, 0], [2, 0], [0, 0]]
    # fgets splits lines longer than 10239 bytes
    p.write_bytes(b"5 " + b" " * 10237 + b"6 7\n")
    assert [c.tolist() for c in nbio.read_text_file(p, 2)] == [[5, 6], [0, 7]]
    p.write_bytes(b"")
    assert [c.size for c in nbio.read_text_file(p, 2)] == [0, 0]
    with pytest.raises(nbio.InputFileOpenError):
        nbio.read_text_file(tmp_path / "nope.txt", 2)


def test_input_file_error() -> None:
    err = nbio.InputFileError("a.hkl", "bad", line=3)
    assert (err.path, err.line, str(err)) == ("a.hkl", 3, "a.hkl line 3: bad")
    assert isinstance(err, ValueError)


def test_import_is_light() -> None:
    code = ("import sys, nbnumba.io; "
            "print(any(m in sys.modules for m in ('numba', 'fabio', 'llvmlite')))")
    out = subprocess.run([sys.executable, "-c", code],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
