"""``-trace_pixel``: our trace against the instrumented nanoBragg.c, the kernel and the image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN, golden_case_names, load_case
from golden import read_reference, run_nb

from nbnumba.compare import TRACE_TOLERANCE, compare_traces, parse_trace

SUPERVISOR_PIXEL = (1039, 685)
FAST_KERNEL_TOL = 1e-9  # tests/test_vectorised_engine.py: of the image maximum, per pixel
# a few pixels around the traced one keep the run fast; the trace needs only the scene
SUPERVISOR_ROI = ["-roi", "683", "687", "1037", "1041"]

# what the issue asks for at least, in C's order
REQUIRED_KEYS = [
    "pix0_vector_meters", "fdet_vec", "sdet_vec", "pixel_pos_meters", "R_distance_meters",
    "omega_pixel_sr", "close_distance_meters", "obliquity_factor", "diffracted_vec",
    "incident_vec", "lambda_meters", "lambda_angstroms", "scattering_vec_A_inv",
    "rot_a_angstroms", "rot_b_angstroms", "rot_c_angstroms", "rot_a_star_A_inv",
    "rot_b_star_A_inv", "rot_c_star_A_inv", "hkl_frac", "hkl_rounded", "F_latt_a", "F_latt_b",
    "F_latt_c", "F_latt", "F_cell", "I_before_scaling", "r_e_sqr", "fluence_photons_per_m2",
    "steps", "oversample_thick", "oversample_polar", "oversample_omega", "capture_fraction",
    "polar", "I_pixel_final",
]
GEOMETRY_KEYS = REQUIRED_KEYS[:13]
FINAL_KEYS = ["I_before_scaling", "r_e_meters", "r_e_sqr", "fluence_photons_per_m2", "steps",
              "oversample_thick", "oversample_polar", "oversample_omega", "capture_fraction",
              "polar", "omega_pixel", "cos_2theta", "I_pixel_final", "floatimage_accumulated"]


def _trace_value(entries, key: str) -> float:
    (value,) = [e.values for e in entries if e.key == key]
    return value[0]


@pytest.fixture(scope="module")
def supervisor_run(tmp_path_factory):
    if "supervisor" not in golden_case_names():
        pytest.skip("../shared/golden is not present")
    workdir = tmp_path_factory.mktemp("supervisor")
    for f in (GOLDEN / "inputs").iterdir():
        (workdir / f.name).write_bytes(f.read_bytes())
    case = load_case("supervisor")
    args = case["args"] + ["-c_parity", *SUPERVISOR_ROI, "-trace_pixel",
                           *map(str, SUPERVISOR_PIXEL)]
    res = run_nb(args, workdir)
    assert res.code == 0, res.stderr
    image = np.fromfile(workdir / case["float"], dtype="<f4").reshape(case["shape"])
    return res, image


def test_supervisor_trace_matches_instrumented_c(supervisor_run):
    """Key by key against trace_c.txt: same keys in the same order, relative error ≤ 1e-9."""
    res, _ = supervisor_run
    ours = parse_trace(res.stdout)
    ref = parse_trace((GOLDEN / "supervisor" / "trace_c.txt").read_text())
    assert [e.key for e in ours] == [e.key for e in ref]
    result = compare_traces(ours, ref)
    assert result["first_divergence"] is None, result["first_divergence"]
    assert result["max_rel_error"] <= TRACE_TOLERANCE, result["per_key"]
    # ten φ steps, each with its k, F_latt_b and F_latt
    assert sum(e.key.endswith(".k_frac") for e in ours) == 10


def test_supervisor_trace_lines_are_c_lines(supervisor_run):
    """Same names and %.15g text as TRACE_C, only the prefix differs."""
    res, _ = supervisor_run
    ours = [line.replace("TRACE_PY", "TRACE_C", 1) for line in res.stdout.splitlines()
            if line.startswith(("TRACE_PY", "TRACE_CONFIG"))]
    ref = (GOLDEN / "supervisor" / "trace_c.txt").read_text().splitlines()
    assert ours == ref


def test_supervisor_trace_keys_complete(supervisor_run):
    res, _ = supervisor_run
    keys = [e.key for e in parse_trace(res.stdout) if not e.key.startswith("PHI[")]
    positions = [keys.index(k) for k in REQUIRED_KEYS]
    assert positions == sorted(positions)
    assert keys[-len(FINAL_KEYS):] == FINAL_KEYS


def _assert_image_value(traced: float, image: np.ndarray, s: int, f: int) -> None:
    """The traced value is the image's, to the last bit when the exact engine rendered it.

    The default CPU backend may be the vectorised kernel, which agrees with the
    faithful one (and the trace) to FAST_KERNEL_TOL of the image maximum.
    """
    value = float(image[s, f])
    assert abs(float(np.float32(traced)) - value) <= FAST_KERNEL_TOL * float(image.max())


def test_supervisor_trace_equals_image(supervisor_run):
    """I_pixel_final is C's float image at the pixel, bit for bit, and ours."""
    res, image = supervisor_run
    entries = parse_trace(res.stdout)
    s, f = SUPERVISOR_PIXEL
    final = _trace_value(entries, "I_pixel_final")
    ref = np.frombuffer(read_reference(GOLDEN / "supervisor", "float.bin"),
                        dtype="<f4").reshape(image.shape)
    assert np.float32(final) == ref[s, f]
    assert np.float32(_trace_value(entries, "floatimage_accumulated")) == ref[s, f]
    _assert_image_value(final, image, s, f)


def _scene(name: str, workdir: Path):
    """The prepared scene of a golden case (C's mode: -c_parity where φ=0 carries over)."""
    from nbnumba import Simulation

    case = load_case(name)
    for before in case.get("before", []):
        assert run_nb(before, workdir).code == 0
    args = list(case["args"]) + (["-c_parity"] if case["carryover"] else [])
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        scene = Simulation.from_args(args).scene
    finally:
        os.chdir(cwd)
    return case, scene


def _probe_pixels(case: dict, scene) -> list[tuple[int, int]]:
    """The brightest pixel, the first and last pixel C computes, and one in between."""
    from nbnumba.simulate import serial_pixels

    serial = list(serial_pixels(scene))
    pixels = [serial[0], serial[len(serial) // 2], serial[-1]]
    argmax = case["float_stats"]["argmax"]
    if argmax >= 0:
        pixels.insert(0, divmod(argmax, scene.fpixels))
    return pixels


@pytest.mark.parametrize("name", golden_case_names())
def test_trace_walk_equals_kernel_and_c(name, case_workdir):
    """The traced walk returns the kernel's value bit for bit, and C's float image value."""
    from nbnumba.kernels.exact import render_one
    from nbnumba.trace import c_state_at, skip_reason, walk_pixel

    case, scene = _scene(name, case_workdir)
    ref = np.frombuffer(read_reference(GOLDEN / name, case["float"]),
                        dtype="<f4").reshape(case["shape"])
    args = (scene.params, scene.det, scene.sources, scene.cells, scene.a_star, scene.fhkl)
    for s, f in _probe_pixels(case, scene):
        assert skip_reason(scene, s, f) is None
        interpolate, first_pass = c_state_at(scene, s, f)
        walked = walk_pixel(scene, s, f, interpolate, first_pass)
        value, omega, fell, used, _, _, _ = render_one(*args, interpolate, s, f, first_pass)
        assert walked.value == value, (name, s, f)
        assert walked.omega_sum == omega
        assert (walked.fell_back, walked.first_pass_used) == (fell, used)
        assert np.float32(walked.value) == ref[s, f], (name, s, f)
        final = [line for line in walked.lines if line.startswith("TRACE_PY: I_pixel_final ")]
        assert final == [f"TRACE_PY: I_pixel_final {value:.15g}"]


@pytest.mark.parametrize("name", ["oversample_2", "absorption_layers", "dispersion"])
def test_trace_structure_follows_c_loops(name, case_workdir):
    """One geometry block per sensor layer × sub-pixel (source 0), φ lines per block."""
    from nbnumba.trace import trace_lines

    case, scene = _scene(name, case_workdir)
    P = scene.params
    s, f = divmod(case["float_stats"]["argmax"], scene.fpixels)
    entries = parse_trace("\n".join(trace_lines(scene, s, f)))
    keys = [e.key for e in entries]
    blocks = P.detector_thicksteps * P.oversample * P.oversample
    assert keys.count("pix0_vector_meters") == blocks
    assert keys.count("hkl_frac") == blocks  # no -dmin here: every block reaches the φ loop
    assert sum(k.endswith(".k_frac") for k in keys) == blocks * P.phisteps
    assert keys[-len(FINAL_KEYS):] == FINAL_KEYS
    first = keys.index("pix0_vector_meters")
    assert keys[first:first + len(GEOMETRY_KEYS)] == GEOMETRY_KEYS


def test_trace_of_skipped_pixel(case_workdir):
    """C prints nothing for a pixel outside the ROI; we say why."""
    from nbnumba.trace import trace_lines

    _, scene = _scene("roi", case_workdir)
    lines = trace_lines(scene, 0, 0)
    assert lines == ["TRACE_CONFIG: tracing pixel (spixel=0, fpixel=0)",
                     "TRACE_PY_SKIP reason=outside_roi"]
    assert trace_lines(scene, 10**6, 0)[1] == "TRACE_PY_SKIP reason=outside_detector"


def test_trace_pixel_flag_on_small_case(case_workdir):
    """nanobragg-nb -trace_pixel on cubic_128: the traced value is what the image holds."""
    case = load_case("cubic_128")
    s, f = divmod(case["float_stats"]["argmax"], case["shape"][1])
    res = run_nb(case["args"] + ["-trace_pixel", str(s), str(f)], case_workdir)
    assert res.code == 0, res.stderr
    image = np.fromfile(case_workdir / case["float"], dtype="<f4").reshape(case["shape"])
    entries = parse_trace(res.stdout)
    final = _trace_value(entries, "I_pixel_final")
    assert np.float32(final) == np.float32(case["float_stats"]["max"])  # C's image there
    _assert_image_value(final, image, s, f)
    # the trace sits before the closing summary, which is unchanged
    out = res.stdout.splitlines()
    last_trace = max(i for i, line in enumerate(out) if line.startswith("TRACE_"))
    assert any(line.startswith("solid angle subtended") for line in out[last_trace:])


def test_trace_without_c_parity_diverges_at_rotation(case_workdir):
    """Correct φ=0 rotation: the first quantity that differs from C is the rotated cell."""
    from nbnumba import Simulation
    from nbnumba.trace import trace_lines

    cwd = os.getcwd()
    os.chdir(case_workdir)
    try:
        scene = Simulation.from_args(load_case("supervisor")["args"]).scene
    finally:
        os.chdir(cwd)
    ours = parse_trace("\n".join(trace_lines(scene, *SUPERVISOR_PIXEL)))
    ref = parse_trace((GOLDEN / "supervisor" / "trace_c.txt").read_text())
    result = compare_traces(ours, ref)
    assert result["keys_match"]
    first = result["first_divergence"]
    assert first["key"] == "rot_a_angstroms" and first["rel_error"] > 1e-6
    assert result["per_key"]["pixel_pos_meters"] == 0.0
