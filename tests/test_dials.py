"""DIALS/dxtbx read what we write: NXmx, miniCBF and the ``.expt`` ground truth.

The first tests need no DIALS: the one nanoBragg → dxtbx frame mapping is a proper
rotation, and a mirror is caught. The others run the real programs (Debian's
``dials.import`` and dxtbx under ``/usr/bin/python3``) in subprocesses and skip with
the reason when they are absent; ``HDF5_PLUGIN_PATH`` is set to hdf5plugin's plugin
folder for them, as a DIALS user sets it (dxtbx needs it for bitshuffle/LZ4).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nbnumba.api import Simulation
from nbnumba.formats import DetectorGeometry, lab_to_dxtbx
from nbnumba.formats import geometry as geometry_module
from nbnumba.formats.expt import (
    cell_vectors_angstrom,
    crystal_at,
    rotation_experiment_list,
    stills_experiment_list,
)

SMALL = ("-cell 50 60 70 80 95 105 -misset 10 -20 30 -default_F 100 -lambda 1.3 "
         "-detpixels_f 40 -detpixels_s 30 -pixel 0.172 -distance 120 -phi 10 -osc 0.5 "
         "-oversample 1 -N 1 -nonoise").split()
CONVENTIONS = {
    "mosflm": [],
    "xds": ["-xds"],
    "adxv": ["-adxv"],
    "denzo": ["-denzo"],
    "dials": ["-dials"],
    "custom_beam": ["-dials", "-beam_vector", "0.1", "0.2", "1", "-spindle_axis", "0.3", "1",
                    "0", "-detector_rotx", "4", "-twotheta", "7"],
}


def scene_of(args):
    return Simulation.from_args(list(args)).scene


def reciprocal_at(cell_rows: np.ndarray, axis, phi_deg: float, hkl) -> np.ndarray:
    """r = Rot(axis, φ) · A · h with A's columns the reciprocal vectors of the rows."""
    rotated = crystal_at(cell_rows, axis, phi_deg)
    return np.linalg.inv(rotated) @ np.asarray(hkl, dtype=float)


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_frame_mapping_is_one_proper_rotation(name):
    """lab_to_dxtbx is a rotation (det +1) taking the beam to dxtbx's -z and the spindle
    into +x; the .expt's vectors are exactly R times ours, and the crystal seen by
    dxtbx's goniometer at φ is R times nanoBragg's crystal at φ (same sense of
    rotation)."""
    scene = scene_of([*SMALL, *CONVENTIONS[name]])
    g = DetectorGeometry.from_scene(scene)
    R = lab_to_dxtbx(g.beam, g.spindle)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-15)
    assert abs(np.linalg.det(R) - 1.0) < 1e-15
    assert np.allclose(R @ np.asarray(g.beam), (0, 0, -1), atol=1e-15)
    cell = cell_vectors_angstrom(scene)
    doc = rotation_experiment_list(g, cell, images="x_master.h5", n_images=3,
                                   image_format="nxmx")
    panel = doc["detector"][0]["panels"][0]
    assert np.allclose(panel["origin"], R @ np.asarray(g.pix0_m) * 1000, rtol=0, atol=1e-12)
    axis = np.asarray(doc["goniometer"][0]["rotation_axis"])
    crystal = doc["crystal"][0]
    rows = np.array([crystal[k] for k in ("real_space_a", "real_space_b", "real_space_c")])
    for phi in (0.0, 10.0, 37.5):
        for hkl in ((1, 2, 3), (-4, 0, 1)):
            ours = reciprocal_at(cell, g.spindle, phi, hkl)
            theirs = reciprocal_at(rows, axis, phi, hkl)
            assert np.allclose(theirs, R @ ours, rtol=0, atol=1e-14)


def test_a_mirror_is_caught(monkeypatch):
    """Positions and 2θ survive a mirror; the crystal's handedness and the sense of
    rotation do not: a mirrored mapping is refused (left-handed cell) and, written
    anyway, puts reciprocal lattice points elsewhere at φ ≠ 0."""
    scene = scene_of(SMALL)
    g = DetectorGeometry.from_scene(scene)
    cell = cell_vectors_angstrom(scene)
    proper = lab_to_dxtbx(g.beam, g.spindle)
    mirror = np.diag([1.0, 1.0, -1.0]) @ proper
    monkeypatch.setattr(geometry_module, "lab_to_dxtbx", lambda beam, spindle=None: mirror)
    with pytest.raises(ValueError, match="left-handed"):
        rotation_experiment_list(g, cell, images="x.h5", n_images=1, image_format="nxmx")
    # the mirrored writer with the cell's handedness forced back
    rows = (mirror @ cell.T).T
    axis = mirror @ np.asarray(g.spindle)
    ours = reciprocal_at(cell, g.spindle, 20.0, (1, 2, 3))
    theirs = reciprocal_at(rows, axis, 20.0, (1, 2, 3))
    assert not np.allclose(theirs, mirror @ ours, rtol=0, atol=1e-6)


def test_stills_list_points_each_experiment_at_its_image(tmp_path):
    scene = scene_of(SMALL)
    g = DetectorGeometry.from_scene(scene)
    cell = cell_vectors_angstrom(scene)
    cells = [crystal_at(cell, (0, 1, 0), 30.0 * i) for i in range(3)]
    doc = stills_experiment_list(g, cells, image_path=str(tmp_path / "shots.h5"),
                                 indices=[4, 5, 6], wavelengths_m=[1.0e-10, 1.1e-10, 1.2e-10])
    assert len(doc["experiment"]) == 3 and doc["scan"] == [] and doc["goniometer"] == []
    for i, e in enumerate(doc["experiment"]):
        assert e["crystal"] == i and e["beam"] == i and "scan" not in e
        imageset = doc["imageset"][e["imageset"]]
        assert imageset["single_file_indices"] == [4 + i]
        assert imageset["images"] == [str(tmp_path / "shots.h5")]
    assert [b["wavelength"] for b in doc["beam"]] == pytest.approx([1.0, 1.1, 1.2])
    json.dumps(doc)  # plain JSON


def test_polarization_matches_kahn_factor():
    """dxtbx's fraction (XDS convention) is (1 + K)/2 for C's Kahn factor K, its normal
    the normal to the plane of the beam and the E-vector."""
    for flags, fraction in (([], 0.5), (["-polar", "0.9"], 0.95), (["-nopolar"], 0.5)):
        g = DetectorGeometry.from_scene(scene_of([*SMALL, *flags]))
        doc = rotation_experiment_list(g, np.eye(3) * 50, images="a.h5", n_images=1,
                                       image_format="nxmx")
        beam = doc["beam"][0]
        assert beam["polarization_fraction"] == pytest.approx(fraction, abs=1e-15)
        R = g.dxtbx()
        n = np.asarray(beam["polarization_normal"])
        assert abs(np.dot(n, R @ np.asarray(g.polar))) < 1e-15
        assert abs(np.dot(n, beam["direction"])) < 1e-15
        assert math.isclose(np.linalg.norm(n), 1.0, rel_tol=1e-15)


# ---------------------------------------------------------------- the real programs

DXTBX_PYTHON = "/usr/bin/python3"
# run by dxtbx's Python: every experiment list given, as dxtbx sees it (JSON on stdout)
DXTBX_SCRIPT = r"""
import json, math, sys
from dxtbx.model.experiment_list import ExperimentListFactory
jobs = json.loads(sys.argv[1])  # {experiment list: {first image path: pixels}}
out = {}
for path, by_image in jobs.items():
    experiments = ExperimentListFactory.from_json_file(path, check_format=True)
    found = []
    for e in experiments:
        pixels = by_image[e.imageset.get_path(0)]
        p = e.detector[0]
        s0 = e.beam.get_s0()
        px = p.get_pixel_size()
        tt, tt_parallax = [], []
        for s, f in pixels:
            lab = p.get_lab_coord(((f + 0.5) * px[0], (s + 0.5) * px[1]))
            n = math.sqrt(sum(c * c for c in lab))
            cross = [lab[1] * s0[2] - lab[2] * s0[1], lab[2] * s0[0] - lab[0] * s0[2],
                     lab[0] * s0[1] - lab[1] * s0[0]]
            tt.append(math.atan2(math.sqrt(sum(c * c for c in cross)),
                                 sum(a * b for a, b in zip(lab, s0))))
            tt_parallax.append(p.get_two_theta_at_pixel(s0, (f + 0.5, s + 0.5)))
        data = e.imageset.get_raw_data(0)[0]
        record = {
            "path": e.imageset.get_path(0), "n_images": len(e.imageset),
            "fast": list(p.get_fast_axis()), "slow": list(p.get_slow_axis()),
            "origin": list(p.get_origin()), "pixel_size": list(px),
            "image_size": list(p.get_image_size()), "trusted": list(p.get_trusted_range()),
            "thickness": p.get_thickness(), "material": p.get_material(), "mu": p.get_mu(),
            "name": p.get_name(), "mask": [list(m) for m in p.get_mask()],
            "px_mm": type(p.get_px_mm_strategy()).__name__,
            "s0": list(s0), "wavelength": e.beam.get_wavelength(),
            "polarization_fraction": e.beam.get_polarization_fraction(),
            "two_theta": tt, "two_theta_parallax": tt_parallax,
            "data_shape": list(data.all()), "data_sum": float(sum(data)),
            "detector": e.detector.to_dict(),
        }
        if e.goniometer is not None:
            record["axis"] = list(e.goniometer.get_rotation_axis())
        if e.scan is not None:
            record["image_range"] = list(e.scan.get_image_range())
            record["oscillation"] = list(e.scan.get_oscillation())
        if e.crystal is not None:
            record["A"] = list(e.crystal.get_A())
            # fractional hkl of each pixel at the middle of the first image's range
            from scitbx import matrix
            A = matrix.sqr(e.crystal.get_A())
            phi = 0.0
            axis = matrix.col((1.0, 0.0, 0.0))
            if e.scan is not None and e.goniometer is not None:
                start, width = e.scan.get_oscillation()
                phi = start + 0.5 * width
                axis = matrix.col(e.goniometer.get_rotation_axis())
            back = axis.axis_and_angle_as_r3_rotation_matrix(-phi, deg=True)
            hkl = []
            for s, f in pixels:
                lab = matrix.col(p.get_lab_coord(((f + 0.5) * px[0], (s + 0.5) * px[1])))
                s1 = lab.normalize() / e.beam.get_wavelength()
                hkl.append(list(A.inverse() * (back * (s1 - matrix.col(s0)))))
            record["hkl"] = hkl
        found.append(record)
    out[path] = found
print(json.dumps(out))
"""


def dials_available() -> str | None:
    """Why the DIALS tests cannot run here (None: they can)."""
    if shutil.which("dials.import") is None:
        return "dials.import is not on the PATH (Debian: apt-get install dials)"
    if not os.path.exists(DXTBX_PYTHON):
        return f"{DXTBX_PYTHON} (dxtbx's Python) is missing"
    done = subprocess.run([DXTBX_PYTHON, "-c", "import dxtbx"], capture_output=True)
    if done.returncode != 0:
        return f"{DXTBX_PYTHON} cannot import dxtbx"
    return None


needs_dials = pytest.mark.skipif(dials_available() is not None,
                                 reason=str(dials_available()))


def dials_env() -> dict:
    """The environment of a DIALS user: HDF5_PLUGIN_PATH at hdf5plugin's filters."""
    hdf5plugin = pytest.importorskip("hdf5plugin")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["HDF5_PLUGIN_PATH"] = hdf5plugin.PLUGIN_PATH
    return env


def dials_import(folder: Path, files: list[str], name: str) -> Path:
    out = folder / f"{name}.expt"
    done = subprocess.run(["dials.import", *files, f"output.experiments={out}",
                           f"output.log={folder / (name + '.log')}"], cwd=folder,
                          env=dials_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def as_dxtbx_sees(jobs: dict[str, dict[str, list]]) -> dict:
    """Each experiment list as dxtbx loads it: per experiment (in order) its panel, beam,
    goniometer, scan, crystal, the 2θ of the pixels given for its first image, and
    its first image's pixels read back."""
    done = subprocess.run([DXTBX_PYTHON, "-c", DXTBX_SCRIPT, json.dumps(jobs)],
                          env=dials_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


BASE = ("-cell 50 60 70 90 90 90 -default_F 100 -lambda 1.3 -detpixels_f 40 -detpixels_s 30 "
        "-pixel 0.172 -distance 120 -phi 10 -osc 0.5 -oversample 1 -N 1 -nonoise").split()
AWKWARD = [*BASE, "-Xbeam", "3", "-Ybeam", "9", "-detector_rotx", "3", "-detector_roty", "-7",
           "-detector_rotz", "11", "-twotheta", "20"]
# NXmx describes every flat geometry; miniCBF the perpendicular ones (fast axis = spindle)
NXMX_CASES = {
    "mosflm_sample_pivot": [*AWKWARD, "-pivot", "sample"],
    "mosflm_beam_pivot": [*AWKWARD, "-pivot", "beam"],
    "xds": [*BASE, "-xds", "-ORGX", "30.5", "-ORGY", "-4", "-detector_roty", "5",
            "-twotheta", "-12"],
    "adxv": [*BASE, "-adxv", "-Xbeam", "2", "-Ybeam", "8", "-detector_rotz", "30"],
    "denzo": [*BASE, "-denzo", "-Xbeam", "1", "-Ybeam", "2", "-detector_rotx", "5"],
    "dials_custom_beam": [*BASE, "-dials", "-beam_vector", "0.1", "0.2", "1",
                          "-detector_rotx", "4", "-spindle_axis", "0.3", "1", "0",
                          "-polar", "0.9"],
    "thick_sensor": [*BASE, "-detector_thick", "450", "-detector_abs", "300"],
    "noise_counts": [*BASE, "-Xbeam", "4", "-Ybeam", "2"],  # int32 counts, saturation
}
CBF_CASES = {
    "mosflm_off_centre": [*BASE, "-Xbeam", "3.3", "-Ybeam", "9.1"],
    "xds": [*BASE, "-xds", "-ORGX", "10", "-ORGY", "7"],
    "denzo": [*BASE, "-denzo", "-Xbeam", "2", "-Ybeam", "1"],
    "pilatus_size": [*BASE, "-detpixels_f", "487", "-detpixels_s", "195", "-Xbeam", "40",
                     "-Ybeam", "20"],
}
FRAMES = 2


def chosen_pixels(g: DetectorGeometry) -> list[list[int]]:
    s, f = g.slow_pixels - 1, g.fast_pixels - 1
    return [[0, 0], [s, f], [s // 3, f - 2], [s, 0], [s // 2, f // 2]]


def frames_of(g: DetectorGeometry, content: str) -> list[np.ndarray]:
    ramp = np.arange(g.slow_pixels * g.fast_pixels).reshape(g.slow_pixels, g.fast_pixels) % 7
    if content == "float":
        return [(ramp + 0.25 * i).astype(np.float32) for i in range(FRAMES)]
    return [(ramp + 40 + i).astype(np.uint16) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Our files for every case, our .expt beside them, dials.import of all of them, and
    what dxtbx makes of both (one dials.import per format, one dxtbx run)."""
    if dials_available():
        pytest.skip(dials_available())
    from nbnumba.formats.cbf import write_minicbf
    from nbnumba.formats.expt import dxtbx_template, write_experiment_list
    from nbnumba.formats.nxmx import write_nxmx

    folder = tmp_path_factory.mktemp("dials")
    cases, h5_files, cbf_files = {}, [], []
    for fmt, table in (("nxmx", NXMX_CASES), ("cbf", CBF_CASES)):
        for name, args in table.items():
            key = f"{fmt}-{name}"
            scene = scene_of(args)
            g = DetectorGeometry.from_scene(scene)
            cell = cell_vectors_angstrom(scene)
            if fmt == "nxmx":
                content = "noise" if name == "noise_counts" else "float"
                master = str(folder / f"{name}_master.h5")
                write_nxmx(master, g, frames_of(g, content), FRAMES, content=content)
                images, first, path = master, 1, master
                h5_files.append(master)
            else:
                content = "int"
                assert not g.minicbf_problems(), name
                for i, raw in enumerate(frames_of(g, content)):
                    frame = str(folder / f"{name}_{i:05d}.cbf")
                    assert write_minicbf(frame, raw, g.with_phi(g.phi_start_deg
                                                                + i * g.osc_deg),
                                         frame=i) == []
                    cbf_files.append(frame)
                path = str(folder / f"{name}_00000.cbf")
                images, first = dxtbx_template(path)
            ours = folder / f"{key}.expt"
            write_experiment_list(str(ours), rotation_experiment_list(
                g, cell, images=images, n_images=FRAMES, image_format=fmt, content=content,
                first_image=first))
            cases[key] = {"g": g, "cell": cell, "ours": str(ours), "path": path,
                          "pixels": chosen_pixels(g), "content": content,
                          "frames": frames_of(g, content)}
    imported = [dials_import(folder, h5_files, "nxmx_imported"),
                dials_import(folder, cbf_files, "cbf_imported")]
    by_image = {c["path"]: c["pixels"] for c in cases.values()}
    jobs = {str(p): by_image for p in imported}
    jobs.update({c["ours"]: by_image for c in cases.values()})
    seen = as_dxtbx_sees(jobs)
    records = seen[str(imported[0])] + seen[str(imported[1])]
    for key, c in cases.items():
        (c["ours_seen"],) = seen[c["ours"]]
        matches = [r for r in records if r["path"] == c["path"]]
        assert len(matches) == 1, (key, [r["path"] for r in records])
        c["imported_seen"] = matches[0]
    return cases


ALL_CASES = [f"nxmx-{n}" for n in NXMX_CASES] + [f"cbf-{n}" for n in CBF_CASES]


def close(a, b, tol: float) -> bool:
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=tol)


@needs_dials
@pytest.mark.parametrize("key", ALL_CASES)
def test_dials_imports_our_files_with_our_geometry(written, key):
    """dials.import loads our NXmx/miniCBF, and the models dxtbx builds from the image
    files are those of our .expt; the 2θ of chosen pixels equals nanoBragg's to 1e-9."""
    c = written[key]
    g, ours, theirs = c["g"], c["ours_seen"], c["imported_seen"]
    # nanoBragg's 2θ of the pixel centres (the traced positions; tests/test_formats.py)
    truth = [float(g.two_theta(s, f)) for s, f in c["pixels"]]
    for name, record in (("our .expt", ours), ("dials.import", theirs)):
        for (s, f), got, want in zip(c["pixels"], record["two_theta"], truth, strict=True):
            assert abs(got - want) <= 1e-9 * abs(want), f"{name} pixel {(s, f)}"
    # the detector dxtbx builds from the files is the one our .expt states
    for field in ("fast", "slow"):
        assert close(ours[field], theirs[field], 1e-12), field
    assert close(ours["origin"], theirs["origin"], 1e-9)
    assert close(ours["pixel_size"], theirs["pixel_size"], 1e-12)
    for field in ("image_size", "trusted", "material", "name", "px_mm", "mask"):
        assert ours[field] == theirs[field], field
    assert ours["thickness"] == pytest.approx(theirs["thickness"], rel=1e-12)
    if key != "nxmx-thick_sensor":  # our mu is the run's -detector_abs there
        assert ours["mu"] == pytest.approx(theirs["mu"], rel=1e-9)
        # the nominal 1 um sensor: dxtbx's parallax correction moves no pixel measurably
        assert close(ours["two_theta_parallax"], ours["two_theta"], 1e-5)
    else:
        assert ours["thickness"] == pytest.approx(0.45) and ours["mu"] == pytest.approx(
            1 / 0.3)
    assert close(ours["s0"], theirs["s0"], 1e-12)
    assert ours["wavelength"] == pytest.approx(theirs["wavelength"], rel=1e-15)
    assert close(ours["axis"], theirs["axis"], 1e-12)
    assert ours["image_range"] == theirs["image_range"]
    assert close(ours["oscillation"], theirs["oscillation"], 1e-12)
    assert ours["n_images"] == theirs["n_images"] == FRAMES
    # both read the same first image, as written
    first = c["frames"][0].astype(np.float64)
    expected = first.sum() if c["content"] == "float" else (first - 40).sum()
    if key == "nxmx-noise_counts":
        assert ours["trusted"] == [-2.0, 65495.0]
    assert ours["data_sum"] == theirs["data_sum"] == pytest.approx(expected)
    assert ours["data_shape"] == [g.slow_pixels, g.fast_pixels]
    # the crystal: dxtbx's A = UB is the reciprocal of our (mapped) real-space vectors
    R = g.dxtbx()
    A = np.asarray(ours["A"]).reshape(3, 3)
    assert close(A, np.linalg.inv(c["cell"] @ R.T), 1e-15)
    fraction = 0.95 if "-polar" in (NXMX_CASES | CBF_CASES).get(key.split("-", 1)[1], []) \
        else 0.5
    assert ours["polarization_fraction"] == pytest.approx(fraction)


# a crystal with sharp spots (N = 10) on a small detector: the true .expt must index them
SPOTS = ("-cell 200 220 250 80 95 100 -misset 10 -20 30 -default_F 100 -lambda 1 -N 10 "
         "-detpixels_f 64 -detpixels_s 48 -pixel 0.5 -distance 100 -phi 30 -osc 0.2 "
         "-phisteps 2 -oversample 1 -seed 1 -Xbeam 17 -Ybeam 13").split()
# a thin wedge (0.2 deg): a spot's hkl at mid-frame is within ~0.03 of its integers;
# a wrong crystal (φ sense, misset, a mirror) gives arbitrary fractions


def brightest(image: np.ndarray, args, count: int = 3) -> list[list[int]]:
    """The brightest pixels away from the direct beam (nanoBragg renders F000 there)."""
    g = DetectorGeometry.from_scene(scene_of(args))
    slow, fast = np.indices(image.shape)
    away = np.where(g.two_theta(slow, fast) > math.radians(1.5), image, -np.inf)
    order = np.argsort(away, axis=None)[::-1][:count]
    return [[int(i // image.shape[1]), int(i % image.shape[1])] for i in order]


def assert_indexed(record: dict, what: str) -> None:
    """The brightest pixels sit on reciprocal lattice points of the true crystal."""
    for hkl in record["hkl"]:
        h = np.asarray(hkl)
        assert np.abs(h).max() > 0.5 and np.abs(h - np.round(h)).max() < 0.1, (what, hkl)


@needs_dials
def test_single_run_cbf_without_number_and_expt_out(tmp_path, monkeypatch, capsys):
    """``-cbffile spot.cbf -expt_out spot.expt``: the miniCBF gets an image number
    (dxtbx reads it from the name), dials.import loads it with our .expt's detector,
    and the true crystal indexes the brightest pixels (φ, misset and frames right)."""
    from nbnumba.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main([*SPOTS, "-cbffile", "spot.cbf", "-expt_out", "spot.expt",
                 "-floatfile", "spot.bin"]) == 0
    err = capsys.readouterr().err
    assert "written as spot_0001.cbf" in err
    image = np.fromfile(tmp_path / "spot.bin", dtype="<f4").reshape(48, 64)
    pixels = brightest(image, SPOTS)
    imported = dials_import(tmp_path, ["spot_0001.cbf"], "imported")
    cbf = str(tmp_path / "spot_0001.cbf")
    seen = as_dxtbx_sees({"spot.expt": {cbf: pixels}, str(imported): {cbf: pixels}})
    (ours,), (theirs,) = seen["spot.expt"], seen[str(imported)]
    for field in ("fast", "slow", "origin", "s0", "axis", "oscillation"):
        assert close(ours[field], theirs[field], 1e-9), field
    assert ours["image_range"] == theirs["image_range"] == [1, 1]
    assert_indexed(ours, "spot.expt")


def test_expt_out_of_an_smv_image_without_number_refused(tmp_path, monkeypatch, capsys):
    """Trial finding 6: ``-expt_out`` alone pointed at ``noiseimage.img``, which dxtbx's
    SMV reader cannot open (it takes the image number from the file name:
    ``dials.find_spots`` "Could not determine filename template"). Refused before the
    run, exit 2, one line naming -cbffile/-nxmx_out; nothing written."""
    from nbnumba.cli.main import main

    monkeypatch.chdir(tmp_path)
    for extra, flag in (([], "-noisefile"), (["-nonoise", "-intfile", "spot.img"], "-intfile")):
        capsys.readouterr()
        assert main([*SPOTS, *extra, "-expt_out", "spot.expt"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("nanobragg-nb: error: -expt_out spot.expt"), err
        assert "-cbffile" in err[0] and "-nxmx_out" in err[0] and f"{flag} NAME_001" in err[0]
        assert os.listdir(tmp_path) == []
    # a one-panel -geom run: checked once the file is read
    geom = Path(__file__).parent / "data" / "tilted_single.geom"
    assert main(["-geom", str(geom), "-cell", "50", "60", "70", "90", "95", "90", "-N", "2",
                 "-default_F", "100", "-expt_out", "spot.expt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dxtbx cannot open" in err[0], err
    assert os.listdir(tmp_path) == []


@needs_dials
def test_expt_out_of_a_numbered_smv_image_loads_in_dials(tmp_path, monkeypatch, capsys):
    """``-noisefile spot_001.img -expt_out spot.expt``: dxtbx loads the experiment list
    with its image (check_format=True), reads C's pixels, the true crystal indexes the
    brightest pixels, and ``dials.find_spots spot.expt`` runs."""
    from nbnumba.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main([*SPOTS, "-noisefile", "spot_001.img", "-expt_out", "spot.expt",
                 "-floatfile", "spot.bin"]) == 0
    image = np.fromfile(tmp_path / "spot.bin", dtype="<f4").reshape(48, 64)
    pixels = brightest(image, SPOTS)
    smv = str(tmp_path / "spot_001.img")
    (ours,) = as_dxtbx_sees({"spot.expt": {smv: pixels}})["spot.expt"]
    assert ours["path"] == smv and ours["image_range"] == [1, 1]
    raw = (tmp_path / "spot_001.img").read_bytes()
    counts = np.frombuffer(raw[-48 * 64 * 2:], dtype="<u2")
    assert ours["data_shape"] == [48, 64] and ours["data_sum"] == float(counts.sum())
    assert_indexed(ours, "spot.expt")
    # a small, busy image: more strong pixels than DIALS' default fraction (0.25) allows
    done = subprocess.run(["dials.find_spots", "spot.expt", "output.log=find_spots.log",
                           "spotfinder.filter.max_strong_pixel_fraction=1"],
                          cwd=tmp_path, env=dials_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "strong.refl").is_file()


@needs_dials
def test_series_expt_out_through_the_cli(tmp_path, capsys):
    """``series --expt-out`` for an NXmx stack (tilted detector) and for miniCBF
    frames: dials.import's models equal our .expt's and the true crystal indexes the
    brightest pixels of frame 0."""
    import h5py

    from nbnumba.cli.main import main
    from nbnumba.distributed import local_cluster_client

    hdf5plugin = pytest.importorskip("hdf5plugin")
    tilted = [*SPOTS, "-detector_rotx", "3", "-twotheta", "5", "-pivot", "sample",
              "-polar", "0.8"]
    client = local_cluster_client(
        1, env={"NUMBA_NUM_THREADS": "1", "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH})
    try:
        for template, args, expt in (("run_master.h5", tilted, "run.expt"),
                                     ("img_{frame:03d}.cbf", SPOTS, "img.expt")):
            code = main(["series", "--frames", "2", "--template", str(tmp_path / template),
                         "--scheduler", client.scheduler.address, "--no-progress",
                         "--expt-out", str(tmp_path / expt), *args])
            out, err = capsys.readouterr()
            assert code == 0, err
            assert f"DIALS experiment list (true models) in {tmp_path / expt}" in out
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    with h5py.File(tmp_path / "run_master.h5") as h5:
        stokes = h5["entry/instrument/beam/incident_polarization_stokes"][()]
        frame0 = h5["entry/data/data"][0]
    assert close(stokes, [1.0, 0.8, 0.0, 0.0], 1e-12)  # E along McStas x, K = 0.8
    master = str(tmp_path / "run_master.h5")
    first_cbf = str(tmp_path / "img_000.cbf")
    imported = dials_import(tmp_path, [master, first_cbf, str(tmp_path / "img_001.cbf")],
                            "imported")
    fabio = pytest.importorskip("fabio")
    pixels = {master: brightest(frame0, tilted),
              first_cbf: brightest(np.asarray(fabio.open(first_cbf).data, float), SPOTS)}
    seen = as_dxtbx_sees({str(tmp_path / "run.expt"): pixels,
                          str(tmp_path / "img.expt"): pixels, str(imported): pixels})
    by_path = {r["path"]: r for r in seen[str(imported)]}
    for expt, path in (("run.expt", master), ("img.expt", first_cbf)):
        (ours,) = seen[str(tmp_path / expt)]
        theirs = by_path[path]
        for field in ("fast", "slow", "origin", "s0", "axis", "oscillation"):
            assert close(ours[field], theirs[field], 1e-9), (expt, field)
        assert ours["image_range"] == theirs["image_range"]
        assert ours["n_images"] == theirs["n_images"] == 2
        assert_indexed(ours, expt)
    (run,) = seen[str(tmp_path / "run.expt")]
    assert run["polarization_fraction"] == pytest.approx(0.9)
