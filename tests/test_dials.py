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
