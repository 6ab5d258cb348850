"""Readers of other programs' experiment files (CrystFEL .geom, DIALS .expt) and the frame
mappings they share (specs/models.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main, slab_positions_crystfel

from nbnumba.errors import InputFileError
from nbnumba.models import frames
from nbnumba.readers import crystfel_geom, dials_expt

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


# ----------------------------------------------------------------------- CrystFEL .geom

DATA = Path(__file__).parent / "data"
GEOMS = ["jungfrau4m_like", "epix10k_like", "tilted_single"]


@pytest.mark.parametrize("name, cls", [("jungfrau4m_like", "JUNGFRAUGeometry"),
                                       ("epix10k_like", "Epix10KGeometry")])
def test_geom_pixel_centres_equal_extra_geom(name, cls):
    extra_geom = pytest.importorskip("extra_geom", reason="extra-geom (the test extra) absent")
    path = DATA / f"{name}.geom"
    ours = crystfel_geom.read_geom(path)
    theirs = getattr(extra_geom, cls).from_crystfel_geom(str(path)).get_pixel_positions()
    # extra-geom: (modules, ss, fs, 3), modules stacked along ss in the 2-D file; its z is
    # coffset only (clen is metadata to it)
    theirs = theirs.reshape(-1, theirs.shape[-2], 3)
    theirs[..., 2] += ours.clen_m
    mine = slab_positions_crystfel(ours.detector)
    assert mine.shape == theirs.shape
    assert np.abs(mine - theirs).max() <= 1e-9


def _cfel_fmt_centres(path) -> np.ndarray:
    """Pixel centres from cfel_fmt's parse (cfelpyutils' parser, extra-geom's too) and
    crystfel_geometry(5)'s formula, float64, slab-shaped."""
    from cfel_fmt.geometry import load_crystfel_geometry

    panels = load_crystfel_geometry(str(path)).detector["panels"]
    rows = max(p["orig_max_ss"] for p in panels.values()) + 1
    cols = max(p["orig_max_fs"] for p in panels.values()) + 1
    out = np.full((rows, cols, 3), np.nan)
    for p in panels.values():
        ss, fs = np.mgrid[0:p["orig_max_ss"] - p["orig_min_ss"] + 1,
                          0:p["orig_max_fs"] - p["orig_min_fs"] + 1] + 0.5
        block = np.stack([p["cnx"] + fs * p["fsx"] + ss * p["ssx"],
                          p["cny"] + fs * p["fsy"] + ss * p["ssy"],
                          fs * p["fsz"] + ss * p["ssz"]], axis=-1) / p["res"]
        block[..., 2] += p["clen"] + p["coffset"]
        out[p["orig_min_ss"]:p["orig_max_ss"] + 1, p["orig_min_fs"]:p["orig_max_fs"] + 1] = block
    return out


@pytest.mark.parametrize("name", GEOMS)
def test_geom_pixel_centres_equal_cfel_fmt(name):
    pytest.importorskip("cfel_fmt", reason="cfelpyutils/cfel_fmt (the test extra) absent")
    ours = crystfel_geom.read_geom(DATA / f"{name}.geom")
    mine = slab_positions_crystfel(ours.detector)
    theirs = _cfel_fmt_centres(DATA / f"{name}.geom")
    assert np.array_equal(np.isnan(mine), np.isnan(theirs))
    assert np.nanmax(np.abs(mine - theirs)) <= 1e-9


def test_geom_written_by_extra_geom_with_a_module_dimension(tmp_path):
    """extra-geom writes 3-D layouts (dim1 = module index): modules stack along ss."""
    extra_geom = pytest.importorskip("extra_geom", reason="extra-geom (the test extra) absent")
    eg = extra_geom.Epix10KGeometry.from_crystfel_geom(str(DATA / "epix10k_like.geom"))
    jf = extra_geom.JUNGFRAUGeometry.from_module_positions(
        offsets=[(0, 0), (0, 1200), (1100, 0)], orientations=[(-1, -1), (1, 1), (-1, -1)])
    for geom, cls in ((eg, "Epix10KGeometry"), (jf, "JUNGFRAUGeometry")):
        out = tmp_path / f"{cls}.geom"
        geom.write_crystfel_geom(str(out), clen=0.2, photon_energy=9000, adu_per_ev=0.01)
        if cls == "JUNGFRAUGeometry":
            assert "p2a0/dim1 = 2" in out.read_text()  # a 3-D layout
        ours = crystfel_geom.read_geom(out)
        theirs = getattr(extra_geom, cls).from_crystfel_geom(str(out)).get_pixel_positions()
        theirs = theirs.reshape(-1, theirs.shape[-2], 3)
        theirs[..., 2] += 0.2
        assert np.abs(slab_positions_crystfel(ours.detector) - theirs).max() <= 1e-9


def test_geom_panels_in_nanobragg_terms():
    g = crystfel_geom.read_geom(DATA / "jungfrau4m_like.geom")
    assert len(g.detector) == 64 and g.detector.slab_shape == (4096, 1024)
    p = g.detector.panels[9]  # p1a1: module 1, ASIC (0, 1)
    assert p.name == "p1a1" and p.slab_origin == (512, 256)
    assert (p.fpixels, p.spixels) == (256, 256)
    assert p.pixel_m == pytest.approx(75e-6, rel=1e-12)
    for p in g.detector.panels:
        centre = np.asarray(p.pix0_m) + 0.5 * p.pixel_m * (
            p.fpixels * np.asarray(p.fdet) + p.spixels * np.asarray(p.sdet))
        assert np.dot(p.odet, centre) > 0  # C's odet points away from the sample
        assert abs(abs(np.dot(np.cross(p.fdet, p.sdet), p.odet)) - 1) < 1e-12
        # handedness kept: (fs x ss) . corner has the same sign in both frames
        fs, ss, c = (frames.from_lab(v, "crystfel") for v in (p.fdet, p.sdet, p.pix0_m))
        assert np.sign(np.dot(np.cross(fs, ss), c)) == np.sign(
            np.dot(np.cross(p.fdet, p.sdet), p.pix0_m))
    assert g.photon_energy_eV == 9300 and g.adu_per_photon == 1.0 and g.clen_m == 0.12
    assert g.wavelength_m == pytest.approx(12398.42 / 9300 * 1e-10, rel=1e-15)
    assert any("groups" in n for n in g.notes)


def test_geom_mask_from_bad_regions():
    g = crystfel_geom.read_geom(DATA / "epix10k_like.geom")
    m = g.mask
    assert m.shape == (352, 384)
    assert m[200:202, 10:21].all() and not m[199, 10] and not m[200, 21]  # badrow (p0a2)
    edge = np.zeros((176, 192), bool)  # p0a3: mask_edge_pixels = 1
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    # badcentre: x, y of each pixel's first corner strictly within 3 pixels of 0
    # (corner_x/y from the file; fs = -x, ss = -y)
    xy = np.zeros((352, 384), bool)
    for a, (cx, cy) in enumerate([(193.62, 177.04), (-0.88, 177.04), (193.62, -1.46),
                                  (-0.88, -1.46)]):
        row, col = divmod(a, 2)
        ss, fs = np.mgrid[0:176, 0:192]
        x, y = cx - fs, cy - ss
        xy[row * 176:(row + 1) * 176, col * 192:(col + 1) * 192] = (
            (abs(x) < 3) & (abs(y) < 3))
    assert xy.sum() == 1 + 3 + 2 + 6  # by hand: 1x1, 1x3, 2x1, 2x3 pixels
    expect = xy.copy()
    expect[200:202, 10:21] = True
    expect[176:, 192:] |= edge
    assert np.array_equal(m, expect)
    assert g.photon_energy_eV == 8500 and g.adu_per_photon == pytest.approx(0.0125 * 8500)


def test_geom_units_defaults_and_old_files():
    base = ("res = 10000\nclen = {clen}\n{energy}\np/min_fs = 0\np/max_fs = 9\np/min_ss = 0\n"
            "p/max_ss = 4\np/fs = x\np/ss = -y\np/corner_x = -5\np/corner_y = 2.5\n")
    a = crystfel_geom.parse_geom(base.format(clen="250 mm", energy="photon_energy = 12 keV"))
    b = crystfel_geom.parse_geom(base.format(clen="0.25", energy="photon_energy = 12000"))
    c = crystfel_geom.parse_geom(base.format(clen="0.25 m", energy="wavelength = 1.0332 A"))
    assert a.clen_m == b.clen_m == c.clen_m == 0.25
    assert a.photon_energy_eV == b.photon_energy_eV == 12000
    assert c.wavelength_m == pytest.approx(1.0332e-10, rel=1e-15)
    assert a.detector.panels[0] == b.detector.panels[0] == c.detector.panels[0]
    p = a.detector.panels[0]
    assert np.allclose(p.pix0_m, frames.to_lab((-5e-4, 2.5e-4, 0.25), "crystfel"))
    # a default given after a panel applies only to panels first mentioned later
    two = crystfel_geom.parse_geom(
        "clen = 0.1\nphoton_energy = 9000\nres = 5000\na/min_fs = 0\na/max_fs = 1\n"
        "a/min_ss = 0\na/max_ss = 1\na/fs = x\na/ss = y\na/corner_x = 0\na/corner_y = 0\n"
        "res = 10000\nb/min_fs = 0\nb/max_fs = 1\nb/min_ss = 2\nb/max_ss = 3\nb/fs = x\n"
        "b/ss = y\nb/corner_x = 10\nb/corner_y = 0\n")
    assert [p.pixel_m for p in two.detector.panels] == [2e-4, 1e-4]
    # clen read from the data files: the caller gives it
    path_clen = base.format(clen="/LCLS/detector0-EncoderValue", energy="photon_energy = 9000")
    with pytest.raises(InputFileError, match="camera length"):
        crystfel_geom.parse_geom(path_clen)
    g = crystfel_geom.parse_geom(path_clen, clen_m=0.3)
    assert g.clen_m == 0.3 and any("data files" in n for n in g.notes)


@pytest.mark.parametrize("text, match", [
    ("clen = 0.1\np/min_fs = 0\n", "not given"),
    ("clen = 0.1\nres = 1e4\np/min_fs = 0\np/max_fs = 3\np/min_ss = 0\np/max_ss = 3\n"
     "p/fs = x\np/ss = 2y\np/corner_x = 0\np/corner_y = 0\n", "square"),
    ("clen = 0.1\nres = 1e4\np/min_fs = 0\np/max_fs = 3\np/min_ss = 0\np/max_ss = 3\n"
     "p/fs = x\np/ss = y\np/corner_x = 0\np/corner_y = 0\nq/min_fs = 2\nq/max_fs = 5\n"
     "q/min_ss = 0\nq/max_ss = 3\nq/fs = x\nq/ss = y\nq/corner_x = 9\nq/corner_y = 0\n",
     "overlaps"),
    ("clen = 0.1\nres = 1e4\np/min_fs = 0\np/max_fs = 3\np/min_ss = 0\np/max_ss = 3\n"
     "p/fs = x\np/ss = y\np/corner_x = 0\np/corner_y = 0\nbad1/min_fs = 2\nbad1/max_fs = 9\n"
     "bad1/min_ss = 0\nbad1/max_ss = 0\nbad1/panel = p\n", "outside"),
    ("clen = 0.1\np/fs = 1.0q\n", "direction"),
    ("clen = 0.1\nthis line has no equals sign\n", "key = value"),
])
def test_geom_refusals(text, match):
    with pytest.raises(InputFileError, match=match):
        crystfel_geom.parse_geom(text, path="x.geom")


# ------------------------------------------------------------------------- DIALS .expt

# tests/data/dxtbx_make_expts.py, run by Debian's python3 with dxtbx, writes experiment
# lists with dxtbx's own constructors and prints what dxtbx computes from them.
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def dxtbx_made(tmp_path_factory):
    if shutil.which(SYSTEM_PYTHON) is None:
        pytest.skip("no /usr/bin/python3 (Debian's dxtbx)")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import dxtbx.model"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("dxtbx is not installed for /usr/bin/python3")
    folder = tmp_path_factory.mktemp("dxtbx")
    run = subprocess.run([SYSTEM_PYTHON, str(DATA / "dxtbx_make_expts.py"), str(folder / "t")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return folder, json.loads(run.stdout)


@pytest.mark.parametrize("name", ["multi", "single"])
def test_expt_panels_equal_dxtbx(dxtbx_made, name):
    folder, truth = dxtbx_made
    ours = dials_expt.read_expt(folder / f"t_{name}.expt")
    t = truth[name]
    assert len(ours.detector) == len(t["panels"])
    row = 0
    for p, q in zip(ours.detector.panels, t["panels"], strict=True):
        assert p.name == q["name"]
        assert (p.fpixels, p.spixels) == tuple(q["size"])
        assert p.pixel_m == pytest.approx(q["pixel"][0] * 1e-3, rel=1e-15)
        assert p.slab_origin == (row, 0)  # stacked along slow in file order
        row += p.spixels
        origin = frames.from_lab(p.pix0_m, "dxtbx")
        assert np.abs(origin - np.asarray(q["origin"]) * 1e-3).max() <= 1e-9
        assert np.abs(frames.from_lab(p.fdet, "dxtbx") - q["fast"]).max() <= 1e-12
        assert np.abs(frames.from_lab(p.sdet, "dxtbx") - q["slow"]).max() <= 1e-12
        # dxtbx's pixel coordinate (2.5, 3.5) is the centre of pixel (fast 2, slow 3)
        centre = frames.from_lab(p.pixel_centres_m()[3, 2], "dxtbx")
        assert np.abs(centre - np.asarray(q["centre"]) * 1e-3).max() <= 1e-9
        assert np.dot(p.odet, np.asarray(p.pix0_m)) > 0
    assert ours.detector.slab_shape == (row, max(p.fpixels for p in ours.detector.panels))
    if name == "single":
        # dxtbx's "+x"/"-y" detector and beam along -z are nanoBragg's MOSFLM detector and
        # beam: fdet = +z, sdet = -y, beam = +x (the frame mapping, not only its inverse)
        p = ours.detector.panels[0]
        assert np.array_equal(p.fdet, (0, 0, 1.0)) and np.array_equal(p.sdet, (0, -1.0, 0))
        assert np.array_equal(p.odet, (1.0, 0, 0))
        assert np.array_equal(ours.beam_direction, (1.0, 0, 0))


@pytest.mark.parametrize("name", ["multi", "single"])
def test_expt_beam_crystal_goniometer_scan_equal_dxtbx(dxtbx_made, name):
    folder, truth = dxtbx_made
    ours = dials_expt.read_expt(folder / f"t_{name}.expt")
    t = truth[name]
    # s0 = -direction / wavelength points along the beam's travel
    s0 = np.asarray(t["s0"])
    assert ours.wavelength_m == pytest.approx(t["wavelength"] * 1e-10, rel=1e-15)
    assert np.allclose(frames.from_lab(ours.beam_direction, "dxtbx"),
                       s0 / np.linalg.norm(s0), rtol=0, atol=1e-15)
    assert np.allclose(frames.from_lab(ours.spindle, "dxtbx"), t["axis"], rtol=0, atol=1e-15)
    assert np.allclose(frames.from_lab(ours.real_space_m, "dxtbx") * 1e10, t["abc"],
                       rtol=0, atol=1e-12)
    assert (ours.phi_start_deg, ours.osc_deg) == tuple(t["osc"])
    assert ours.image_range == tuple(t["image_range"])
    assert np.allclose(frames.from_lab(ours.polarization_normal, "dxtbx"), t["pn"], atol=1e-15)


def test_expt_refusals(tmp_path):
    bad = tmp_path / "bad.expt"
    for text, match in [("{", "not JSON"), ("[]", "not a DIALS"),
                        ('{"experiment": []}', "empty"),
                        ('{"experiment": [{"detector": 0}], "detector": []}', "no detector"),
                        ('{"experiment": [{"beam": 0}], "beam": [{"direction": [0,0,1]}]}',
                         "wavelength")]:
        bad.write_text(text)
        with pytest.raises(InputFileError, match=match):
            dials_expt.read_expt(bad)
    with pytest.raises(InputFileError, match="cannot read"):
        dials_expt.read_expt(tmp_path / "missing.expt")


# ---------------------------------------------------------- -geom / -expt / -panels_out

CRYSTAL = "-cell 50 60 70 90 95 90 -misset 3 5 7 -N 3 -default_F 100 -oversample 1 -seed 2".split()


def test_geom_flag_renders_the_slab_and_lists_the_panels(tmp_path):
    geom = DATA / "epix10k_like.geom"
    code, out, err = run_main(["-geom", str(geom), *CRYSTAL, "-pixel", "0.2", "-Xbeam", "3",
                               "-floatfile", "f.bin", "-panels_out", "p.json", "-nonoise",
                               "-nopgm", "-noprogress", "-distance", "80"], tmp_path)
    assert code == 0, err
    image = np.fromfile(tmp_path / "f.bin", dtype="<f4")
    assert image.size == 352 * 384 and image.reshape(352, 384).max() > 0
    assert err.count("-pixel, -Xbeam ignored: the detector comes from -geom") == 1
    doc = json.loads((tmp_path / "p.json").read_text())
    # -distance after -geom is CrystFEL's clen
    g = crystfel_geom.read_geom(geom, clen_m=0.08)
    assert doc["slab_shape"] == [352, 384]
    assert [p["name"] for p in doc["panels"]] == [p.name for p in g.detector.panels]
    for mine, p in zip(doc["panels"], g.detector.panels, strict=True):
        for key in ("name", "fdet", "sdet", "odet", "pix0_m", "pixel_m", "fpixels", "spixels",
                    "slab_origin"):
            assert mine[key] == p.as_dict()[key], key
    assert doc["panels"][3]["slab_origin"] == [176, 192]
    assert doc["panels"][0]["pix0_m"][0] == pytest.approx(0.08)


def test_geom_run_equals_the_same_models_rendered_from_python():
    from dataclasses import replace

    from nbnumba.api import Simulation

    geom = DATA / "tilted_single.geom"
    sim = Simulation.from_args([*CRYSTAL, "-geom", str(geom), "-energy", "9000"])
    assert sim.experiment.beam.wavelength_m == (12398.42 / 9000.0) / 1e10  # -energy after
    before = Simulation.from_args(["-energy", "9000", *CRYSTAL, "-geom", str(geom)])
    assert before.experiment.beam.wavelength_m == (12398.42 / 12000.0) / 1e10  # the file's
    assert any("replaced by the photon energy" in w for w in before.warnings)
    flags = Simulation.from_args([*CRYSTAL, "-energy", "9000"]).experiment
    g = crystfel_geom.read_geom(geom)
    exp = replace(flags, detector=g.detector)
    by_hand = Simulation.from_models(exp, oversample=1, seed=2).run()
    result = sim.run()
    assert result.image.shape == (195, 240)
    assert np.array_equal(result.image, by_hand.image)


def _write_smv_mask(path, keep):
    """An SMV file of 0 (skip) / 1 (render) with no header value but its size: nanoBragg.c's
    -mask then changes nothing else (its header values would override the flags before)."""
    spixels, fpixels = keep.shape
    head = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            f"SIZE1={fpixels};\nSIZE2={spixels};\n}}\f").encode()
    path.write_bytes(head.ljust(512, b" ") + keep.astype("<u2").tobytes())


def test_geom_bad_pixels_are_skipped_as_c_skips_mask_zeros(tmp_path):
    """The .geom's mask (bad regions, mask_edge_pixels) is applied per panel: those pixels
    are 0 in the float image and out of max/mean (C's -mask), the int image holds the ADC
    offset there; Simulation.from_models takes the same mask as bad_pixels=."""
    from nbnumba.api import Simulation

    geom = DATA / "epix10k_like.geom"
    g = crystfel_geom.read_geom(geom)
    sim = Simulation.from_args([*CRYSTAL, "-geom", str(geom)])
    np.testing.assert_array_equal(sim.bad_pixels, g.mask)
    result = sim.run()
    assert result.image[g.mask].max() == 0.0 and g.mask.sum() > 700
    assert result.panels[3][[0, -1], :].max() == 0.0  # p0a3: mask_edge_pixels = 1
    assert (result.image[~g.mask] > 0).mean() > 0.99
    assert result.int_image()[g.mask].max() == 40  # floorf(0 * scale + adc + 0.5)
    unmasked = Simulation.from_models(sim.experiment, oversample=1, seed=2).run()
    np.testing.assert_array_equal(unmasked.image[~g.mask], result.image[~g.mask])
    assert unmasked.image[g.mask].min() > 0
    # C's mean: over the rendered pixels only
    assert result.stats.mean == pytest.approx(
        result.image[~g.mask].astype(np.float64).mean(), rel=1e-12)
    by_models = Simulation.from_models(sim.experiment, bad_pixels=g.mask, oversample=1,
                                       seed=2).run()
    np.testing.assert_array_equal(by_models.image, result.image)
    with pytest.raises(ValueError, match="bad_pixels of shape"):
        Simulation.from_models(sim.experiment, bad_pixels=g.mask[:-1])


@pytest.mark.parametrize("name, energy, exact", [("epix10k_like", "8500", True),
                                                 ("tilted_single", "12000", False)])
def test_geom_panels_equal_nanoBragg_c(c_binary, tmp_path, name, energy, exact):
    """Each panel of a -geom -c_parity run against nanoBragg.c given that panel's vectors
    as flags (-fdet_vector ... -Xclose -Yclose -close_distance -pivot sample). The ePix10k
    panels' numbers survive the decimal text exactly: bit for bit. The tilted panel's
    last bits do not (C reads mm from text): to 1e-6 there."""
    import subprocess

    from nbnumba.api import Simulation

    geom = DATA / f"{name}.geom"
    result = Simulation.from_args([*CRYSTAL, "-geom", str(geom), "-c_parity"]).run()
    g = crystfel_geom.read_geom(geom)
    bad = g.detector.split(g.mask)
    assert any(b.any() for b in bad) == (name == "epix10k_like")
    for p, image, b in zip(g.detector.panels, result.panels, bad, strict=True):
        # the .geom's bad pixels are what nanoBragg.c's -mask makes of zeros
        mask = ["-mask", "m.img"] if b.any() else []
        if mask:
            _write_smv_mask(tmp_path / "m.img", ~b)
        pix0 = np.asarray(p.pix0_m)
        vec: list[str] = []
        for flag, v in (("-fdet_vector", p.fdet), ("-sdet_vector", p.sdet),
                        ("-odet_vector", p.odet)):
            vec += [flag, *(repr(float(c)) for c in v)]
        args = [*mask, *CRYSTAL, "-energy", energy, *vec,
                "-Xclose", repr(float(-pix0 @ p.fdet) * 1e3),
                "-Yclose", repr(float(-pix0 @ p.sdet) * 1e3),
                "-close_distance", repr(float(pix0 @ p.odet) * 1e3), "-pivot", "sample",
                "-pixel", repr(p.pixel_m * 1e3), "-detpixels_f", str(p.fpixels),
                "-detpixels_s", str(p.spixels), "-floatfile", "c.bin", "-nonoise", "-nopgm"]
        subprocess.run([str(c_binary), *args], cwd=tmp_path, capture_output=True, check=True,
                       timeout=300)
        c_image = np.fromfile(tmp_path / "c.bin", dtype="<f4").reshape(p.spixels, p.fpixels)
        if exact:
            assert np.array_equal(image, c_image), p.name
        else:
            assert np.allclose(image, c_image, rtol=1e-6, atol=1e-6 * c_image.max()), p.name


def test_expt_flag_takes_beam_crystal_scan_and_panels(dxtbx_made, tmp_path):
    from nbnumba.api import Simulation

    folder, truth = dxtbx_made
    expt = str(folder / "t_multi.expt")
    sim = Simulation.from_args(["-lambda", "1.5", "-phi", "3", "-expt", expt, "-N", "2",
                                "-default_F", "10", "-oversample", "1", "-seed", "1"])
    exp = sim.experiment
    e = dials_expt.read_expt(expt)
    assert exp.beam.wavelength_m == pytest.approx(0.9793e-10, rel=1e-15)  # the file's
    assert np.allclose(exp.beam.direction, e.beam_direction, atol=1e-15)
    assert exp.beam.polarization == pytest.approx(2 * 0.99 - 1)
    assert np.allclose(exp.crystal.reciprocal_vectors_per_angstrom,
                       np.linalg.inv(e.real_space_m * 1e10).T, rtol=1e-14)
    assert exp.scan.phi_start_rad == pytest.approx(np.radians(10.0))
    assert exp.scan.oscillation_rad == pytest.approx(np.radians(0.2))
    assert np.allclose(exp.scan.goniometer.axis, e.spindle, atol=1e-15)
    assert any("-lambda, -phi replaced by -expt" in w for w in sim.warnings)
    assert [p.slab_origin for p in exp.detector.panels] == [(0, 0), (30, 0), (60, 0), (90, 0)]
    result = sim.run()
    assert result.image.shape == (120, 40) and len(result.panels) == 4
    later = Simulation.from_args(["-expt", expt, "-lambda", "1.5", "-phi", "3", "-N", "2",
                                  "-default_F", "10"])
    assert later.experiment.beam.wavelength_m == 1.5e-10
    assert later.experiment.scan.phi_start_rad == pytest.approx(np.radians(3.0))


@pytest.mark.parametrize("args, code, match", [
    (["-geom", "a.geom", "-expt", "b.expt"], 2, "give one"),
    (["-geom", "missing.geom"], 3, "missing.geom"),
    (["-geom", str(DATA / "epix10k_like.geom"), "-mask", "m.img"], 2, "-img/-mask"),
    (["-geom", str(DATA / "epix10k_like.geom"), "-cbffile", "x.cbf"], 2, "one flat panel"),
    (["-expt", str(DATA / "epix10k_like.geom")], 3, "not JSON"),
])
def test_model_file_refusals(tmp_path, args, code, match):
    got, out, err = run_main([*args, *CRYSTAL, "-noprogress"], tmp_path)
    assert got == code, err
    assert match in err and err.count("error:") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*.bin"))


# ------------------------------------------------------------- writers: NXmx, CrystFEL

def _hdf5_plugin_env() -> dict:
    import os

    hdf5plugin = pytest.importorskip("hdf5plugin")
    return {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}


def _dxtbx_read(path) -> dict:
    if shutil.which(SYSTEM_PYTHON) is None:
        pytest.skip("no /usr/bin/python3 (Debian's dxtbx)")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import dxtbx.model"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("dxtbx is not installed for /usr/bin/python3")
    run = subprocess.run([SYSTEM_PYTHON, str(DATA / "dxtbx_read_panels.py"), str(path)],
                         capture_output=True, text=True, timeout=300, env=_hdf5_plugin_env())
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def epix_run():
    from nbnumba.api import Simulation

    geom = DATA / "epix10k_like.geom"
    return crystfel_geom.read_geom(geom), Simulation.from_args(
        [*CRYSTAL, "-geom", str(geom)]).run()


def _check_dxtbx_panels(theirs, result, mask_counts=None):
    from nbnumba.formats.geometry import DetectorGeometry

    g = DetectorGeometry.from_scene(result.scene)
    R = g.dxtbx()  # the writers' one lab -> dxtbx turn
    assert len(theirs["panels"]) == len(result.detector)
    for i, (q, p, image) in enumerate(zip(theirs["panels"], result.detector.panels,
                                          result.panels, strict=True)):
        assert q["name"].endswith("/" + p.name)
        assert tuple(q["size"]) == (p.fpixels, p.spixels)
        assert q["pixel"] == pytest.approx([p.pixel_m * 1e3] * 2, rel=1e-15)
        assert np.abs(np.asarray(q["origin"]) * 1e-3 - R @ p.pix0_m).max() <= 1e-9
        assert np.abs(np.asarray(q["fast"]) - R @ p.fdet).max() <= 1e-12
        assert np.abs(np.asarray(q["slow"]) - R @ p.sdet).max() <= 1e-12
        assert q["sum"] == pytest.approx(float(image.astype(np.float64).sum()), rel=1e-12)
        if mask_counts is not None:
            assert q["masked"] == mask_counts[i]
    s0 = np.asarray(theirs["s0"])
    assert np.allclose(s0 / np.linalg.norm(s0), R @ np.asarray(g.beam), atol=1e-12)
    assert theirs["wavelength"] == pytest.approx(g.wavelength_m * 1e10, rel=1e-15)


def test_multi_panel_nxmx_loads_in_dxtbx(epix_run, tmp_path):
    from nbnumba.formats.nxmx import write_result_nxmx

    g, result = epix_run
    notes = write_result_nxmx(str(tmp_path / "epix.nxs"), result, pixel_mask=g.mask)
    assert any("pixel_mask_slab" in n for n in notes)  # side-by-side modules: see nxmx.py
    _check_dxtbx_panels(_dxtbx_read(tmp_path / "epix.nxs"), result)


def test_multi_panel_nxmx_from_an_expt_loads_in_dxtbx(dxtbx_made, tmp_path):
    """A hierarchical .expt's panels (tilted beam: the turn depends on it), rendered and
    written as NXmx, come back through dxtbx where they were; its pixel_mask too."""
    from nbnumba.api import Simulation
    from nbnumba.formats.nxmx import write_result_nxmx

    folder, _ = dxtbx_made
    result = Simulation.from_args(["-expt", str(folder / "t_multi.expt"), "-N", "2",
                                   "-default_F", "10", "-oversample", "1"]).run()
    mask = np.zeros(result.detector.slab_shape, dtype=bool)
    mask[31, 5:9] = True  # panel 1, row 1
    mask[100, 0] = True  # panel 3
    write_result_nxmx(str(tmp_path / "expt.nxs"), result, pixel_mask=mask)
    _check_dxtbx_panels(_dxtbx_read(tmp_path / "expt.nxs"), result, mask_counts=[0, 4, 0, 1])


@pytest.mark.parametrize("name, cls", [("epix10k_like", "Epix10KGeometry"),
                                       ("jungfrau4m_like", "JUNGFRAUGeometry"),
                                       ("tilted_single", None)])
def test_crystfel_writer_round_trip(name, cls, tmp_path):
    """/data/data + the .geom beside it: our reader and extra-geom read the written .geom
    back to the same pixel centres (1e-9 m)."""
    import h5py

    from nbnumba.formats.crystfel import write_crystfel

    g = crystfel_geom.read_geom(DATA / f"{name}.geom")
    slab = np.arange(np.prod(g.detector.slab_shape), dtype=np.float32).reshape(
        g.detector.slab_shape)
    h5, geom = write_crystfel(str(tmp_path / "img.h5"), g.detector, slab,
                              photon_energy_eV=g.photon_energy_eV, mask=g.mask)
    assert geom == str(tmp_path / "img.geom")
    with h5py.File(h5) as f:
        assert np.array_equal(f["/data/data"][()], slab)
        assert np.array_equal(f["/data/mask"][()].astype(bool), g.mask)
    back = crystfel_geom.read_geom(geom)
    assert [p.name for p in back.detector.panels] == [p.name for p in g.detector.panels]
    assert back.photon_energy_eV == g.photon_energy_eV
    mine = slab_positions_crystfel(g.detector)
    assert np.nanmax(np.abs(slab_positions_crystfel(back.detector) - mine)) <= 1e-9
    assert np.nanmax(np.abs(_cfel_fmt_centres(geom) - mine)) <= 1e-9
    if cls is not None:
        extra_geom = pytest.importorskip("extra_geom")
        theirs = getattr(extra_geom, cls).from_crystfel_geom(geom).get_pixel_positions()
        theirs = theirs.reshape(-1, theirs.shape[-2], 3)
        theirs[..., 2] += back.clen_m
        assert np.abs(theirs - mine).max() <= 1e-9


def test_crystfel_writer_from_a_run(epix_run, tmp_path):
    from nbnumba.formats.crystfel import write_result_crystfel

    g, result = epix_run
    h5, geom = write_result_crystfel(str(tmp_path / "run.h5"), result, mask=g.mask)
    back = crystfel_geom.read_geom(geom)
    assert back.photon_energy_eV == pytest.approx(8500.0, rel=1e-12)
    assert np.nanmax(np.abs(slab_positions_crystfel(back.detector)
                            - slab_positions_crystfel(g.detector))) <= 1e-9
    import h5py

    with h5py.File(h5) as f:
        assert np.array_equal(f["/data/data"][()], result.image)


def test_dials_import_of_multi_panel_nxmx_reads_back_as_our_panels(epix_run, tmp_path):
    """dials.import (the real program) of the multi-panel NXmx, and its .expt read by our
    reader: the ePix10k panels where the .geom put them (beam +x, spindle +z: the writers'
    turn is the readers' fixed mapping)."""
    from nbnumba.formats.nxmx import write_result_nxmx

    if shutil.which("dials.import") is None:
        pytest.skip("dials.import is not installed")
    g, result = epix_run
    write_result_nxmx(str(tmp_path / "epix.nxs"), result)
    run = subprocess.run(["dials.import", "epix.nxs", "output.experiments=imported.expt"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=_hdf5_plugin_env())
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    back = dials_expt.read_expt(tmp_path / "imported.expt")
    assert len(back.detector) == 4
    for mine, theirs in zip(g.detector.panels, back.detector.panels, strict=True):
        assert theirs.name.endswith(mine.name)
        assert (theirs.fpixels, theirs.spixels) == (mine.fpixels, mine.spixels)
        assert np.abs(theirs.pixel_centres_m() - mine.pixel_centres_m()).max() <= 1e-9
        assert np.allclose(theirs.odet, mine.odet, atol=1e-12)
    assert np.allclose(back.beam_direction, (1, 0, 0), atol=1e-12)
    assert back.wavelength_m == pytest.approx(result.scene.header["lambda0"], rel=1e-12)


def test_panels_out_of_a_command_line_detector(tmp_path):
    from nbnumba.formats.geometry import DetectorGeometry

    code, out, err = run_main([*CRYSTAL, "-detpixels", "24", "-distance", "50", "-twotheta",
                               "10", "-floatfile", "f.bin", "-panels_out", "p.json",
                               "-nonoise", "-nopgm", "-noprogress"], tmp_path)
    assert code == 0, err
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["slab_shape"] == [24, 24] and len(doc["panels"]) == 1
    from nbnumba.api import Simulation

    g = DetectorGeometry.from_scene(Simulation.from_args(
        [*CRYSTAL, "-detpixels", "24", "-distance", "50", "-twotheta", "10"]).scene)
    p = doc["panels"][0]
    assert p["pix0_m"] == list(g.pix0_m) and p["fdet"] == list(g.fdet)
    assert p["slab_origin"] == [0, 0] and p["fpixels"] == 24


def test_frames_of_an_expt_run_step_from_the_files_scan(dxtbx_made, tmp_path):
    from nbnumba.api import Simulation

    folder, _ = dxtbx_made
    sim = Simulation.from_args(["-expt", str(folder / "t_multi.expt"), "-N", "2",
                                "-default_F", "10", "-oversample", "1", "-seed", "4"])
    f2 = sim.frame(2)
    # the file's scan: start 10 deg, 0.2 deg per image
    assert f2.options.phi0 == pytest.approx(np.radians(10.4))
    assert f2.detector is sim.detector and f2.experiment.scan.phi_start_rad == f2.options.phi0
    assert f2.run().image.shape == (120, 40)
    code, out, err = run_main(["series", "--frames", "2", "--template", "f_{frame:03d}.bin",
                               "-expt", str(folder / "t_multi.expt"), "-default_F", "10"],
                              tmp_path)
    assert code == 2 and "not supported yet" in err
