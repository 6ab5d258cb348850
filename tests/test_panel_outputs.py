"""-nxmx_out, -crystfel_out (and -expt_out) of a command line, one panel or several:
read back by the real programs (dials.import, extra-geom, cfel_fmt, dxtbx)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main, slab_positions_crystfel

from nbnumba.models import Detector, Panel
from nbnumba.readers import crystfel_geom, dials_expt

DATA = Path(__file__).parent / "data"
SYSTEM_PYTHON = "/usr/bin/python3"
CRYSTAL = "-cell 50 60 70 90 95 90 -misset 3 5 7 -N 3 -default_F 100 -oversample 1 -seed 2".split()
QUIET = ["-nopgm", "-noprogress"]


def _panels_json(path) -> Detector:
    doc = json.loads(Path(path).read_text())
    panels = tuple(Panel(name=p["name"], fdet=p["fdet"], sdet=p["sdet"], odet=p["odet"],
                         pix0_m=p["pix0_m"], pixel_m=p["pixel_m"], fpixels=p["fpixels"],
                         spixels=p["spixels"], slab_origin=tuple(p["slab_origin"]))
                   for p in doc["panels"])
    return Detector(panels, slab_shape=tuple(doc["slab_shape"]))


def _hdf5_env() -> dict:
    hdf5plugin = pytest.importorskip("hdf5plugin")
    return {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}


def _dials_import(folder, name) -> dials_expt.DialsExperiment:
    if shutil.which("dials.import") is None:
        pytest.skip("dials.import is not installed")
    run = subprocess.run(["dials.import", name, "output.experiments=imported.expt"],
                         cwd=folder, capture_output=True, text=True, timeout=300,
                         env=_hdf5_env())
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return dials_expt.read_expt(Path(folder) / "imported.expt")


def _same_panels(theirs: Detector, mine: Detector) -> None:
    assert len(theirs) == len(mine)
    for t, m in zip(theirs.panels, mine.panels, strict=True):
        assert (t.fpixels, t.spixels) == (m.fpixels, m.spixels)
        assert t.pixel_m == pytest.approx(m.pixel_m, rel=1e-12)
        assert np.abs(np.asarray(t.pix0_m) - m.pix0_m).max() <= 1e-9
        assert np.abs(np.asarray(t.fdet) - m.fdet).max() <= 1e-12
        assert np.abs(np.asarray(t.sdet) - m.sdet).max() <= 1e-12
        assert np.abs(t.pixel_centres_m() - m.pixel_centres_m()).max() <= 1e-9


@pytest.fixture(scope="module")
def geom_run(tmp_path_factory):
    """One -geom ePix10k run writing every panel format."""
    folder = tmp_path_factory.mktemp("geom_run")
    code, out, err = run_main(["-geom", str(DATA / "epix10k_like.geom"), *CRYSTAL, *QUIET,
                               "-nxmx_out", "run.h5", "-crystfel_out", "cf.h5",
                               "-panels_out", "p.json"], folder)
    assert code == 0, err
    return folder, out


def test_nxmx_out_of_a_geom_run_is_what_dials_import_reads(geom_run):
    folder, out = geom_run
    assert "writing run.h5 as NXmx (noise image, ADC offset removed, 4 panels)" in out
    back = _dials_import(folder, "run.h5")
    mine = _panels_json(folder / "p.json")
    _same_panels(back.detector, mine)
    assert [p.name.rsplit("/", 1)[-1] for p in back.detector.panels] == \
        [p.name for p in mine.panels]


def test_crystfel_out_of_a_geom_run_is_what_extra_geom_reads(geom_run):
    import h5py

    folder, out = geom_run
    assert "writing cf.h5 (CrystFEL /data/data: noise image, ADC offset removed) and " \
        "cf.geom" in out
    mine = _panels_json(folder / "p.json")
    g = crystfel_geom.read_geom(DATA / "epix10k_like.geom")
    with h5py.File(folder / "cf.h5") as f:
        data = f["/data/data"][()]
        assert data.shape == (352, 384)
        # the .geom's bad pixels: written as the mask, and not rendered (0 counts)
        assert np.array_equal(f["/data/mask"][()].astype(bool), g.mask)
        assert data[g.mask].max() == 0 and data[~g.mask].sum() > 0
    noise = np.fromfile(folder / "noiseimage.img", dtype="<u2")[-352 * 384:]
    assert np.array_equal(data, noise.reshape(352, 384).astype(np.int64) - 40)
    extra_geom = pytest.importorskip("extra_geom", reason="extra-geom (the test extra) absent")
    back = crystfel_geom.read_geom(folder / "cf.geom")
    theirs = extra_geom.Epix10KGeometry.from_crystfel_geom(str(folder / "cf.geom")
                                                           ).get_pixel_positions()
    theirs = theirs.reshape(-1, theirs.shape[-2], 3)
    theirs[..., 2] += back.clen_m  # extra-geom keeps clen as metadata
    assert np.abs(theirs - slab_positions_crystfel(mine)).max() <= 1e-9
    _same_panels(back.detector, mine)


def test_panel_outputs_of_a_one_panel_command_line(tmp_path):
    """Without a model file: the command line's one detector (tilted), in both formats,
    -nonoise: the int image; dials.import and cfel_fmt read them where -panels_out says."""
    import h5py

    code, out, err = run_main([*CRYSTAL, "-detpixels", "32", "-distance", "60", "-twotheta",
                               "5", "-nonoise", *QUIET, "-nxmx_out", "one.nxs",
                               "-crystfel_out", "one.h5", "-panels_out", "p.json"], tmp_path)
    assert code == 0, err
    assert "writing one.nxs as NXmx (int image, ADC offset removed, 1 panel)" in out
    mine = _panels_json(tmp_path / "p.json")
    back = crystfel_geom.read_geom(tmp_path / "one.geom")
    _same_panels(back.detector, mine)
    ints = np.fromfile(tmp_path / "intimage.img", dtype="<u2")[-32 * 32:].reshape(32, 32)
    with h5py.File(tmp_path / "one.h5") as f:
        assert np.array_equal(f["/data/data"][()], ints.astype(np.int64) - 40)
    cfel = pytest.importorskip("cfel_fmt.geometry", reason="cfelpyutils absent")
    (p,) = cfel.load_crystfel_geometry(str(tmp_path / "one.geom")).detector["panels"].values()
    ss, fs = np.mgrid[0:32, 0:32] + 0.5
    theirs = np.stack([p["cnx"] + fs * p["fsx"] + ss * p["ssx"],
                       p["cny"] + fs * p["fsy"] + ss * p["ssy"],
                       fs * p["fsz"] + ss * p["ssz"]], axis=-1) / p["res"]
    theirs[..., 2] += p["clen"] + p["coffset"]
    assert np.abs(theirs - slab_positions_crystfel(mine)).max() <= 1e-9
    imported = _dials_import(tmp_path, "one.nxs")
    _same_panels(imported.detector, mine)


@pytest.mark.parametrize("args, code, match", [
    (["-nxmx_out", "nofolder/x.h5"], 3, "does not exist"),
    (["-crystfel_out", "x.geom"], 2, "NAME.h5"),
    (["-crystfel_out", "x.h5", "-nxmx_out", "x.h5"], 2, "one file"),
    (["-crystfel_out", "x.h5", "-adc", "inf"], 2, "ADC offset must be finite"),
])
def test_panel_output_refusals_come_before_the_run(tmp_path, args, code, match):
    got, out, err = run_main([*CRYSTAL, "-detpixels", "8", *args, *QUIET], tmp_path)
    assert got == code, err
    assert match in err and err.count("error:") == 1 and "Traceback" not in err
    assert "writing" not in out and not any(tmp_path.iterdir())


def _dxtbx_read(path) -> dict:
    if shutil.which(SYSTEM_PYTHON) is None:
        pytest.skip("no /usr/bin/python3 (Debian's dxtbx)")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import dxtbx.model"],
                      capture_output=True).returncode != 0:
        pytest.skip("dxtbx is not installed for /usr/bin/python3")
    run = subprocess.run([SYSTEM_PYTHON, str(DATA / "dxtbx_read_panels.py"), str(path)],
                         capture_output=True, text=True, timeout=300, env=_hdf5_env())
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_expt_out_of_a_geom_run_describes_every_panel_of_its_nxmx(tmp_path):
    """-expt_out of a 4-panel run: dxtbx loads the experiment list with its image (the
    -nxmx_out file, check_format=True) and finds every panel where dxtbx's own reading of
    the NXmx puts it, with the same pixels; our reader finds -panels_out's panels."""
    code, out, err = run_main(["-geom", str(DATA / "epix10k_like.geom"), *CRYSTAL, *QUIET,
                               "-nxmx_out", "run.h5", "-expt_out", "run.expt",
                               "-panels_out", "p.json"], tmp_path)
    assert code == 0, err
    assert "writing run.expt (DIALS experiment list: the true models, 4 panels, image " \
        "run.h5)" in out
    from_expt = _dxtbx_read(tmp_path / "run.expt")
    from_image = _dxtbx_read(tmp_path / "run.h5")
    assert len(from_expt["panels"]) == 4
    for a, b in zip(from_expt["panels"], from_image["panels"], strict=True):
        assert a["name"] == b["name"] and a["size"] == b["size"]
        assert a["pixel"] == pytest.approx(b["pixel"], rel=1e-12)
        for key in ("origin", "fast", "slow"):
            assert np.abs(np.asarray(a[key]) - b[key]).max() <= 1e-9, key
        assert a["sum"] == b["sum"] and a["sum"] > 0
    assert np.allclose(from_expt["s0"], from_image["s0"], atol=1e-12)
    _same_panels(dials_expt.read_expt(tmp_path / "run.expt").detector,
                 _panels_json(tmp_path / "p.json"))


def test_expt_out_of_several_panels_needs_nxmx_out(tmp_path):
    code, out, err = run_main(["-geom", str(DATA / "epix10k_like.geom"), *CRYSTAL, *QUIET,
                               "-expt_out", "run.expt"], tmp_path)
    assert code == 2 and err.count("error:") == 1
    assert "-expt_out of 4 panels points at their NXmx file: give -nxmx_out NAME.h5 too" in err
    assert not any(tmp_path.iterdir())


def test_a_command_line_mask_is_the_written_mask(tmp_path):
    """-mask's zeros (the pixels nanoBragg.c skips) are the CrystFEL file's /data/mask."""
    import h5py

    keep = np.ones((16, 16), dtype="<u2")
    keep[3:5, 2:9] = 0
    head = (b"{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            b"SIZE1=16;\nSIZE2=16;\n}\f")
    (tmp_path / "m.img").write_bytes(head.ljust(512, b" ") + keep.tobytes())
    code, out, err = run_main(["-mask", "m.img", *CRYSTAL, *QUIET, "-crystfel_out", "c.h5"],
                              tmp_path)
    assert code == 0, err
    with h5py.File(tmp_path / "c.h5") as f:
        assert np.array_equal(f["/data/mask"][()].astype(bool), keep == 0)
        assert f["/data/data"][()][keep == 0].max() == 0


def test_series_says_it_ignores_one_runs_outputs(tmp_path):
    code, out, err = run_main(["series", "--frames", "1", "--template", "f_{frame:03d}.bin",
                               "--workers", "1", *CRYSTAL, "-detpixels", "8", "-nxmx_out",
                               "x.h5", "-cbffile", "x.cbf", "-noprogress"], tmp_path)
    assert code == 0, err
    assert "warning: -nxmx_out, -cbffile ignored: one run's outputs" in err
    assert not (tmp_path / "x.h5").exists()


def test_rerendering_our_own_expt_gives_the_same_image(tmp_path):
    """-expt_out's .expt (dxtbx needs a sensor thickness > 0: a nominal 1 um Si one) read
    back by -expt with the same crystal flags renders the first run's images bit for bit:
    a .expt's sensor is not turned into detector absorption unless -detector_thick asks."""
    flags = ["-N", "3", "-default_F", "100", "-oversample", "1", "-seed", "2", *QUIET]
    code, out, err = run_main(["-geom", str(DATA / "tilted_single.geom"), *CRYSTAL, *QUIET,
                               "-floatfile", "a.bin", "-intfile", "a.img",
                               "-nxmx_out", "r.h5", "-expt_out", "r.expt"], tmp_path)
    assert code == 0, err
    code, out, err = run_main(["-expt", "r.expt", *flags, "-floatfile", "b.bin",
                               "-intfile", "b.img"], tmp_path)
    assert code == 0, err
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    assert (tmp_path / "a.img").read_bytes() == (tmp_path / "b.img").read_bytes()
    assert "attenuation" not in out
    assert err.count("the file's sensor (0.001 mm Si) is not applied as detector "
                     "absorption") == 1
    # asked for: -detector_thick (microns, as C's) before or after -expt applies
    for where in (0, 2):
        args = ["-expt", "r.expt", *flags, "-floatfile", "c.bin"]
        args[where:where] = ["-detector_thick", "450"]
        code, out, err = run_main(args, tmp_path)
        assert code == 0 and "sensor is 0.00045 m thick" in out and "not applied" not in err


def test_rerendering_the_expt_of_a_geom_run_gives_each_panel(tmp_path):
    """The same for the four ePix10k panels (through the NXmx that -expt_out points at):
    every pixel the .geom's mask renders equals the .expt run's."""
    from nbnumba.api import Simulation

    geom = ["-geom", str(DATA / "epix10k_like.geom")]
    code, out, err = run_main([*geom, *CRYSTAL, *QUIET, "-nxmx_out", "r.h5",
                               "-expt_out", "r.expt"], tmp_path)
    assert code == 0, err
    first = Simulation.from_args([*geom, *CRYSTAL]).run()
    again = Simulation.from_args(["-expt", str(tmp_path / "r.expt"), "-N", "3",
                                  "-default_F", "100", "-oversample", "1"]).run()
    mask = crystfel_geom.read_geom(DATA / "epix10k_like.geom").mask
    for p, a, b in zip(first.detector.panels, first.panels, again.panels, strict=True):
        ss, fs = p.slab_origin
        keep = ~np.asarray(mask)[ss:ss + p.spixels, fs:fs + p.fpixels].astype(bool)
        assert np.array_equal(a[keep], b[keep]), p.name


def test_crystfel_out_writes_back_the_geoms_adu_per_photon(geom_run, tmp_path):
    """The .geom's adu_per_eV (times its photon energy) comes back as -crystfel_out's
    adu_per_photon (it used to be 1.0 always); a run without -geom writes 1."""
    folder, _ = geom_run
    theirs = crystfel_geom.read_geom(DATA / "epix10k_like.geom").adu_per_photon
    assert theirs is not None and theirs != 1.0
    assert crystfel_geom.read_geom(folder / "cf.geom").adu_per_photon == theirs
    code, out, err = run_main([*CRYSTAL, *QUIET, "-detpixels", "8", "-crystfel_out",
                               "one.h5"], tmp_path)
    assert code == 0, err
    assert crystfel_geom.read_geom(tmp_path / "one.geom").adu_per_photon == 1.0
