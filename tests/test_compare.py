"""``nb-compare`` and ``nbnumba.compare``: numbers, exit codes, saved C output, real C."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import GOLDEN, load_case

from nbnumba.cli.compare import EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from nbnumba.compare import (
    compare_images,
    compare_traces,
    find_peaks,
    parse_trace,
)

SUPERVISOR_ROI = [600, 760, 980, 1100]  # xmin xmax ymin ymax around the brightest spots


def _summary(outdir) -> dict:
    return json.loads((outdir / "summary.json").read_text())


# ------------------------------------------------------------------ the API


def test_compare_images_numbers():
    ref = np.zeros((40, 50), dtype=np.float32)
    ref[10, 20] = 100.0
    ref[30, 40] = 50.0
    ours = np.roll(ref, 2, axis=1)  # every spot two pixels along fast
    ours[0, 0] = 1.0
    m = compare_images(ours, ref, top_n=2)
    assert m["peak_distance_px"] == pytest.approx(2.0)
    assert m["max_abs_diff"] == 100.0
    assert m["max_abs_diff_at"] in ([10, 20], [10, 22])
    assert m["sum_ratio"] == pytest.approx(151.0 / 150.0)
    assert m["rmse"] == pytest.approx(math.sqrt((2 * 100**2 + 2 * 50**2 + 1) / ref.size))
    same = compare_images(ref, ref)
    assert (same["correlation"], same["sum_ratio"], same["rmse"], same["max_abs_diff"],
            same["peak_distance_px"]) == (1.0, 1.0, 0.0, 0.0, 0.0)
    # C's -roi is inclusive and x is the fast index
    roi = compare_images(ours, ref, roi=[15, 25, 5, 12])
    assert roi["pixels"] == 11 * 8
    assert roi["max_abs_diff_at"] in ([10, 20], [10, 22])


def test_find_peaks_counts_a_flat_spot_once():
    img = np.zeros((20, 20))
    img[5:7, 5:7] = 3.0
    img[15, 12] = 2.0
    peaks = find_peaks(img, n=5)
    assert len(peaks) == 2
    assert tuple(peaks[1]) == (15, 12)


def test_compare_traces_finds_first_divergence():
    text = ("TRACE_C: hkl_frac 1 2 3\nTRACE_C: F_latt 10\n"
            "TRACE_C_PHI phi_tic=0 phi_deg=0 k_frac=2 F_latt_b=5 F_latt=10\n"
            "TRACE_C: F_cell 7\n")
    ref = parse_trace(text)
    assert [e.key for e in ref] == ["hkl_frac", "F_latt", "PHI[0].phi_deg", "PHI[0].k_frac",
                                    "PHI[0].F_latt_b", "PHI[0].F_latt", "F_cell"]
    ours = parse_trace(text.replace("TRACE_C", "TRACE_PY").replace("k_frac=2", "k_frac=2.0001")
                       .replace("F_cell 7", "F_cell 8"))
    result = compare_traces(ours, ref)
    assert result["keys_match"]
    first = result["first_divergence"]
    assert first["key"] == "PHI[0].k_frac"
    assert first["rel_error"] == pytest.approx(0.0001 / 2.0001)
    assert result["per_key"]["F_cell"] == pytest.approx(1 / 8)
    assert compare_traces(ref, ref)["first_divergence"] is None
    shorter = compare_traces(ours[:3], ref)
    assert shorter["first_divergence"]["reason"] == "C has more lines"


# ------------------------------------------------------------ nb-compare, no C


def test_nb_compare_saved_image_cubic_128(case_workdir, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("NB_C_BIN", raising=False)
    monkeypatch.chdir(case_workdir)
    case = load_case("cubic_128")
    out = tmp_path / "out"
    code = main(["--outdir", str(out), "--c-image", str(GOLDEN / "cubic_128" / "float.bin"),
                 "--", *case["args"]])
    printed = capsys.readouterr().out
    assert code == EXIT_OK, printed
    s = _summary(out)
    assert s["correlation"] >= 0.999999
    assert abs(s["sum_ratio"] - 1.0) <= 1e-6
    assert s["max_abs_diff"] <= 1e-5 * case["float_stats"]["max"]
    assert s["rmse"] <= 1e-5 * case["float_stats"]["max"]
    assert s["peak_distance_px"] == 0.0
    assert s["shape"] == case["shape"]
    assert s["sum_c"] == pytest.approx(case["float_stats"]["sum"], rel=1e-12)
    assert s["c_runtime_s"] is None and s["ours_runtime_s"] > 0
    assert s["passed"] is True
    assert "correlation" in printed and "PASS" in printed
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib" in s["png_note"]
    else:
        for name in ("c.png", "ours.png", "diff.png", "comparison.png"):
            assert (out / name).stat().st_size > 0


def test_nb_compare_supervisor_roi_with_trace(case_workdir, monkeypatch, tmp_path):
    """-c_parity against C's own float.bin over an ROI, with the saved C trace."""
    monkeypatch.delenv("NB_C_BIN", raising=False)
    monkeypatch.chdir(case_workdir)
    case = load_case("supervisor")
    out = tmp_path / "out"
    code = main(["--outdir", str(out), "--c-image", str(GOLDEN / "supervisor" / "float.bin"),
                 "--roi", *map(str, SUPERVISOR_ROI), "--c-parity", "--no-png",
                 "--trace", "1039", "685", "--c-trace",
                 str(GOLDEN / "supervisor" / "trace_c.txt"), "--", *case["args"]])
    assert code == EXIT_OK
    s = _summary(out)
    xmin, xmax, ymin, ymax = SUPERVISOR_ROI
    assert s["pixels"] == (xmax - xmin + 1) * (ymax - ymin + 1)
    # C's full run has the stale first φ pass at pixel (0, 0); with -roi it moves to the
    # ROI's first pixel, so that pixel differs slightly from the full image (a C run with
    # the same -roi agrees there too); the vectorised CPU kernel may differ in last bits
    assert s["identical_pixels"] >= 0.99 * s["pixels"]
    assert s["max_abs_diff"] <= 1e-5 * case["float_stats"]["max"]
    assert s["correlation"] >= 0.999999 and abs(s["sum_ratio"] - 1.0) <= 1e-6
    assert s["peak_distance_px"] == 0.0
    assert s["ours_command"][-9:] == ["-c_parity", "-roi", *map(str, SUPERVISOR_ROI),
                                      "-trace_pixel", "1039", "685"]
    t = s["trace"]
    assert t["first_divergence"] is None
    assert t["keys_match"] and t["lines_ours"] == t["lines_c"] == 80
    assert t["max_rel_error"] <= 1e-9
    assert (out / "trace_py.txt").read_text().startswith("TRACE_CONFIG: tracing pixel")


def test_nb_compare_fails_below_min_corr(case_workdir, monkeypatch, tmp_path, capsys):
    """Another case's image of the same size: low correlation, exit 1."""
    monkeypatch.chdir(case_workdir)
    case = load_case("cubic_128")
    out = tmp_path / "out"
    code = main(["--outdir", str(out), "--no-png", "--c-image",
                 str(GOLDEN / "dispersion" / "float.bin"), "--", *case["args"]])
    assert code == EXIT_FAILED
    s = _summary(out)
    assert s["passed"] is False and s["correlation"] < 0.9995
    assert "FAIL" in capsys.readouterr().out


def test_nb_compare_usage_and_errors(case_workdir, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("NB_C_BIN", raising=False)
    monkeypatch.chdir(case_workdir)
    args = load_case("cubic_128")["args"]
    assert main(["--outdir", str(tmp_path)]) == EXIT_USAGE
    assert main(["--bogus", "--", *args]) == EXIT_USAGE
    assert main(["--outdir", str(tmp_path), "--", *args]) == EXIT_ERROR  # no C at all
    assert main(["--c-image", "missing.bin", "--", *args]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "NB_C_BIN" in err and "missing.bin" in err
    assert "Traceback" not in err


# ------------------------------------------------------------ with a C build


def test_nb_compare_real_c(c_binary, case_workdir, monkeypatch, tmp_path):
    """The real nanoBragg.c on cubic_128; a plain build prints no TRACE_C lines."""
    monkeypatch.chdir(case_workdir)
    case = load_case("cubic_128")
    out = tmp_path / "out"
    code = main(["--outdir", str(out), "--c-bin", str(c_binary), "--no-png",
                 "--trace", "64", "64", "--", *case["args"]])
    assert code == EXIT_OK
    s = _summary(out)
    assert s["c_source"] == "program"
    assert s["correlation"] >= 0.999999 and abs(s["sum_ratio"] - 1.0) <= 1e-6
    assert s["c_runtime_s"] > 0 and s["speedup"] > 0
    assert s["trace"]["lines_ours"] > 0
    if "note" not in s["trace"]:  # an instrumented build
        assert s["trace"]["first_divergence"] is None


def test_input_files_copied(tmp_path):
    """Files named in ARGS are staged, output names are not; Fdump.bin only without -hkl."""
    from nbnumba.compare import _input_files

    for name in ("A.mat", "P1.hkl", "float.bin", "Fdump.bin"):
        (tmp_path / name).write_bytes(b"x")
    args = ["-mat", "A.mat", "-hkl", "P1.hkl", "-floatfile", "float.bin", "-N", "5"]
    assert _input_files(args, tmp_path) == ["A.mat", "P1.hkl"]
    assert _input_files(["-mat", "A.mat", "-default_F", "1"], tmp_path) == ["A.mat",
                                                                            "Fdump.bin"]
