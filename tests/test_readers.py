"""Readers of other programs' experiment files (CrystFEL .geom, DIALS .expt) and the frame
mappings they share (specs/models.md)."""

from __future__ import annotations

import numpy as np
import pytest

from nbnumba.models import frames

# ----------------------------------------------------------------------------- frames


@pytest.mark.parametrize("name", ["crystfel", "dxtbx"])
def test_frame_mappings_are_proper_rotations(name):
    R = frames.FRAMES[name]
    assert np.allclose(R @ R.T, np.eye(3), atol=0)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-15)
    # the beam goes to nanoBragg's +x, "up" stays +y (both frames have +y up)
    beam = {"crystfel": (0, 0, 1), "dxtbx": (0, 0, -1)}[name]
    assert np.array_equal(frames.to_lab(beam, name), [1.0, 0.0, 0.0])
    assert np.array_equal(frames.to_lab((0, 1, 0), name), [0.0, 1.0, 0.0])
    v = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -3.0]])
    assert np.allclose(frames.from_lab(frames.to_lab(v, name), name), v, atol=1e-15)


def test_crystfel_to_dxtbx_is_the_mcstas_imgcif_turn():
    # NeXus McStas (CrystFEL's frame) and imgCIF (dxtbx's) differ by 180 degrees about +y
    # (x and z negated): an independent statement the two mappings must agree with.
    composed = frames.DXTBX_TO_LAB.T @ frames.CRYSTFEL_TO_LAB
    assert np.array_equal(composed, np.diag([-1.0, 1.0, -1.0]))


def test_a_mirrored_mapping_is_caught():
    mirror = frames.CRYSTFEL_TO_LAB @ np.diag([-1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="mirror"):
        frames.check_proper(mirror)
    swap = frames.DXTBX_TO_LAB[[1, 0, 2]]
    with pytest.raises(ValueError, match="mirror"):
        frames.check_proper(swap)
    # what a mirror does to a panel: (fs x ss) . corner keeps its sign under our
    # rotation, and flips under the mirror (a right-handed panel becomes left-handed)
    fs, ss, corner = np.array([-1.0, 0, 0]), np.array([0, -1.0, 0]), np.array([0.02, 0.03, 0.1])
    triple = np.dot(np.cross(fs, ss), corner)
    lab = [frames.to_lab(v, "crystfel") for v in (fs, ss, corner)]
    assert np.dot(np.cross(lab[0], lab[1]), lab[2]) == pytest.approx(triple)
    bad = [mirror @ v for v in (fs, ss, corner)]
    assert np.dot(np.cross(bad[0], bad[1]), bad[2]) == pytest.approx(-triple)


def test_known_pixels_land_where_each_program_says():
    # CrystFEL's GUI shows +x to the right "from the into-the-beam perspective": a point at
    # CrystFEL +x lies to the LEFT when looking along the beam. nanoBragg.c's MOSFLM
    # detector (fdet = +z, sdet = -y: an image seen looking along the beam, fast to the
    # right) must therefore put it at a fast coordinate below the beam centre (lab z < 0),
    # same 2theta, azimuth mirrored about the vertical as seen from the other side.
    p = frames.to_lab((0.05, 0.0, 0.1), "crystfel")
    assert p[2] < 0 and p[1] == 0
    two_theta = np.arctan2(np.hypot(p[1], p[2]), p[0])
    assert two_theta == pytest.approx(np.arctan(0.5))
    # dxtbx's usual detector (DLS, imgCIF): fast along +x = the spindle, slow along -y.
    # nanoBragg.c's MOSFLM convention puts fdet and the spindle both along +z, sdet along
    # -y: the same image orientation, so these must map onto each other exactly.
    assert np.array_equal(frames.to_lab((1, 0, 0), "dxtbx"), [0, 0, 1.0])   # fast/spindle
    assert np.array_equal(frames.to_lab((0, -1, 0), "dxtbx"), [0, -1.0, 0])  # slow
    # a DLS pixel up and towards +x (dxtbx) is up and towards +z (lab): azimuth kept
    q = frames.to_lab((0.03, 0.04, -0.2), "dxtbx")
    assert np.allclose(q, [0.2, 0.04, 0.03])
